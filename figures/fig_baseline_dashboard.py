"""Baseline dashboard: compute, commitments, cash, claims, market values and Lab's money.

Reads the ``baseline`` scenario of ``results/experiments.nc`` (written by
``analysis/experiments.py``; never simulates). Six panels, double column.
Output: ``figures/out/baseline_dashboard.{pdf,png}``.
"""

from __future__ import annotations

import sys

from aicarousel import plotting
from aicarousel.experiments import load_results

#: Results this figure reads.
NEEDS = ["results/experiments.nc"]
SCENARIO = "baseline"
C = plotting.SECTOR_COLORS
#: Panels: (quantity shown on the y axis, {Vensim name: legend label}, colours, log scale).
#: Legends go where matplotlib finds room, except where named in LEGEND_LOC.
PANELS = [
    ("Compute", {"Cloud Installed Compute": "Cloud installed", "Compute Under Construction": "Cloud under construction",
                 "Lab Compute Online": "Lab online (all providers)"},
     [C["Cloud"], plotting.OKABE_ITO["sky"], C["Lab"]], False),
    ("Commitments", {"Contract Backlog": "Lab-Cloud contract backlog",
                     "Vendor Commitment Remaining": "Chips' unpaid commitment"},
     [C["Cloud"], C["Chips"]], False),
    ("Cash", {"Lab Cash": "Lab", "Cloud Cash": "Cloud", "Chips Cash": "Chips"},
     [C["Lab"], C["Cloud"], C["Chips"]], False),
    ("Claims", {"Cloud Debt": "Cloud debt", "Lab Equity from Outside Investors": "Lab equity, outside investors",
                "Lab Equity from Chips": "Lab equity, Chips"},
     [C["Lenders"], C["Equity investors"], C["Chips"]], False),
    ("Market value", {"Lab Market Value": "Lab", "Cloud Market Value": "Cloud", "Chips Market Value": "Chips"},
     [C["Lab"], C["Cloud"], C["Chips"]], True),
    ("Lab's money", {"Lab revenue from end users": "End-user revenue", "Outside equity raised": "Outside equity",
                     "Chips investment in Lab": "Chips investment", "Lab payments to Cloud": "Paid to Cloud"},
     [C["End users"], C["Equity investors"], C["Chips"], C["Cloud"]], False),
]


#: Legend positions that "best" gets wrong (it may cover a line where the data are dense).
LEGEND_LOC = {"Claims": "upper left"}


def main(argv=None) -> int:
    """Build the figure."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    path = plotting.require(results / "experiments.nc", "python analysis/experiments.py")
    data = load_results(path)
    ds = data.sel(scenario=SCENARIO)
    fig, axes = plotting.figure("double", height=4.8, nrows=2, ncols=3, sharex=True)
    for ax, (quantity, variables, colors, logy) in zip(axes.flat, PANELS):
        present = {k: v for k, v in variables.items() if k in ds}
        plotting.panel(ax, ds, present, quantity, colors=colors[: len(present)], logy=logy, legend=False)
        plotting.legend(ax, loc=LEGEND_LOC.get(quantity, "best"))
        ax.set_xlim(float(ds.time[0]), float(ds.time[-1]))
        plotting.year_axis(ax)
    for ax in axes[-1]:
        ax.set_xlabel("Year")
    plotting.panel_letters(axes.flat)
    prov = plotting.provenance(data, scenario=SCENARIO, source="results/experiments.nc")
    plotting.savefig(fig, "baseline_dashboard", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
