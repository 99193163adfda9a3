"""Scenario comparison: key trajectories of every policy/stress scenario against the baseline.

Reads ``results/experiments.nc`` (written by ``analysis/experiments.py``; never
simulates). Six panels, double column; the baseline is the thick black line, each
scenario has its own colour and line style (colour-blind safe, readable in grey).
Output: ``figures/out/scenarios.{pdf,png}``.
"""

from __future__ import annotations

import sys

from aicarousel import plotting
from aicarousel.experiments import load_results, scenario_labels

#: Results this figure reads.
NEEDS = ["results/experiments.nc"]
#: Panels: (Vensim name, quantity shown on the y axis).
PANELS = [
    ("Cloud Installed Compute", "Cloud installed compute"),
    ("Contract Backlog", "Contract backlog"),
    ("Lab Cash", "Lab cash"),
    ("Cloud Debt", "Cloud debt"),
    ("Lab Market Value", "Lab market value"),
    ("Lab Equity from Chips", "Chips' stake in Lab"),
]
BASELINE = "baseline"
STYLES = ["-", (0, (4, 1.5)), (0, (1.2, 1.2)), (0, (5, 1.5, 1.2, 1.5))]


def styles(names):
    """Colour and line style of each scenario (baseline: thick black)."""
    # yellow is too pale for thin lines on white: six colours times four line styles
    colors = [c for c in plotting.PALETTE if c not in (plotting.OKABE_ITO["black"], plotting.OKABE_ITO["yellow"])]
    out, k = {}, 0
    for n in names:
        if n == BASELINE:
            out[n] = dict(color="black", linestyle="-", linewidth=1.8, zorder=5)
            continue
        out[n] = dict(color=colors[k % len(colors)], linestyle=STYLES[(k // len(colors)) % len(STYLES)],
                      linewidth=1.0)
        k += 1
    return out


def main(argv=None) -> int:
    """Build the figure."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    data = load_results(plotting.require(results / "experiments.nc", "python analysis/experiments.py"))
    names = [str(s) for s in data.scenario.values]
    labels = scenario_labels(names)
    sty = styles(names)
    fig, axes = plotting.figure("double", height=5.4, nrows=2, ncols=3, sharex=True)
    t = data.time.values
    for ax, (var, quantity) in zip(axes.flat, PANELS):
        if var not in data:
            ax.set_visible(False)
            continue
        for n in names:
            ax.plot(t, data[var].sel(scenario=n).values, label=labels[n], **sty[n])
        ax.set_ylabel(plotting.axis_label(name=quantity, unit=data[var].attrs.get("units_vensim", "")))
        ax.set_xlim(float(t[0]), float(t[-1]))
        plotting.year_axis(ax)
    for ax in axes[-1]:
        ax.set_xlabel("Year")
    plotting.panel_letters(axes.flat)
    handles, labs = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="outside lower center", ncol=4, fontsize=6.5, handlelength=2.6)
    prov = plotting.provenance(data, scenario=",".join(names), source="results/experiments.nc")
    plotting.savefig(fig, "scenarios", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
