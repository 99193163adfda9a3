"""Scenario outcomes relative to the baseline, as an annotated heat map.

Reads ``results/experiments_table.csv`` (written by ``analysis/experiments.py``;
never simulates). Rows are scenarios (baseline first, for reference), columns the outcomes of the comparison table
that are amounts or shares (dates are in the LaTeX table). The colour is the change
from the baseline in per cent (capped at +/-100 %; orange-purple diverging map,
colour-blind safe); each cell prints the scenario's own value in the column's unit.
Output: ``figures/out/scenario_outcomes.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np

from aicarousel import plotting
from aicarousel.experiments import results_attrs, load_table, scenario_labels

#: Results this figure reads.
NEEDS = ["results/experiments_table.csv"]
BASELINE = "baseline"
CAP = 100.0


def main(argv=None) -> int:
    """Build the figure."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    table = load_table(plotting.require(results / "experiments_table.csv", "python analysis/experiments.py"))
    cols = [c for c in table.columns if "(year)" not in c]
    base = table.loc[BASELINE, cols].astype(float)
    rows = [BASELINE] + [r for r in table.index if r != BASELINE]  # baseline row: the reference values
    vals = table.loc[rows, cols].astype(float).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100.0 * (vals - base.to_numpy()) / np.abs(base.to_numpy())
    rel = np.where(np.isfinite(rel), rel, np.nan)
    fig, ax = plotting.figure("double", height=4.6)
    ax.grid(False)
    cmap = plotting.plt.get_cmap("PuOr_r").with_extremes(bad="#eeeeee")
    im = ax.imshow(np.clip(rel, -CAP, CAP), cmap=cmap, vmin=-CAP, vmax=CAP, aspect="auto")
    for i in range(len(rows)):
        for j, c in enumerate(cols):
            v = vals[i, j]
            text = "--" if not np.isfinite(v) else (f"{v:.2f}" if "(ratio)" in c else
                                                    f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}")
            dark = np.isfinite(rel[i, j]) and abs(rel[i, j]) > 0.6 * CAP
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color="white" if dark else "black")
    labels = scenario_labels(rows)
    ax.set_yticks(range(len(rows)), [labels[r] for r in rows])
    ax.set_xticks(range(len(cols)), ["\n".join(textwrap.wrap(c, 18)) for c in cols], rotation=90, fontsize=6)
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
    cb.set_label(plotting.axis_label(name="Change from baseline", unit="%"))
    cb.ax.tick_params(labelsize=6)
    prov = plotting.provenance(results_attrs(results), scenario=",".join(table.index), source="results/experiments_table.csv")
    plotting.savefig(fig, "scenario_outcomes", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
