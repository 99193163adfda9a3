"""Two headline outcomes per scenario as bars (single column).

Reads ``results/experiments_table.csv`` (written by ``analysis/experiments.py``;
never simulates): (a) peak installed compute, (b) share of Lab's spending paid by
end-user revenue, one bar per scenario, the baseline in black with a reference line.
Output: ``figures/out/scenario_bars.{pdf,png}`` (single column).
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np

from aicarousel import plotting
from aicarousel.experiments import load_table, results_attrs, scenario_labels

#: Results this figure reads.
NEEDS = ["results/experiments_table.csv"]
BASELINE = "baseline"
#: Panels: (column of the comparison table, axis quantity).
PANELS = [("Peak installed compute (GW)", "Peak installed compute"),
          ("Lab spending paid by end users (%)", "Lab spending paid by end users")]


def main(argv=None) -> int:
    """Build the figure."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    table = load_table(plotting.require(results / "experiments_table.csv", "python analysis/experiments.py"))
    rows = [BASELINE] + [r for r in table.index if r != BASELINE]
    labels = scenario_labels(rows)
    fig, axes = plotting.figure("single", height=1.0 + 0.34 * len(rows), nrows=1, ncols=2, sharey=True)
    y = np.arange(len(rows))
    for ax, (col, quantity) in zip(axes, PANELS):
        vals = table.loc[rows, col].astype(float).to_numpy()
        colors = ["black" if r == BASELINE else plotting.OKABE_ITO["blue"] for r in rows]
        ax.barh(y, vals, color=colors, height=0.65)
        ax.axvline(vals[0], color="black", lw=0.6, ls=(0, (2, 2)))
        unit = col[col.rindex("(") + 1:-1]
        ax.set_xlabel("\n".join(textwrap.wrap(plotting.axis_label(name=quantity, unit=unit), 20)), fontsize=7)
        ax.set_axisbelow(True)
        ax.grid(axis="y", visible=False)
        ax.set_xlim(0, np.nanmax(vals) * 1.08)
    axes[0].set_yticks(y, [labels[r] for r in rows])
    axes[0].invert_yaxis()
    plotting.panel_letters(axes)
    prov = plotting.provenance(results_attrs(results), scenario=",".join(rows),
                               source="results/experiments_table.csv")
    plotting.savefig(fig, "scenario_bars", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
