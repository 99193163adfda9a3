"""Who paid for the carousel: the loop's flows by origin of the money, baseline vs stress.

Reads ``results/whopaid/<scenario>/trace.nc`` (written by ``analysis/whopaid.py``; never
simulates). One row per loop flow (Lab -> Cloud, Cloud -> Chips, Chips -> Lab), one column per
scenario; each panel stacks the rate at which each origin (end users, equity investors,
lenders, outside cloud customers, outside chip buyers, opening balances, overdraft) pays the
flow, in $B/Year, under the well-mixed assumption. Rows share their y axis so the scenarios
compare directly.
Output: ``figures/out/whopaid.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from aicarousel import plotting

#: Scenarios side by side (left to right) and how they are titled.
SCENARIOS = {"baseline": "Baseline", "funding_stop": "Outside funding stops (mid-2026)"}
#: Results this figure reads.
NEEDS = ["results/whopaid/baseline/trace.nc", "results/whopaid/funding_stop/trace.nc"]
#: Short row titles for the loop flows.
FLOW_TITLES = {"Lab payments to Cloud": "Lab pays Cloud",
               "GPU purchases": "Cloud buys GPUs from Chips",
               "Chips investment in Lab": "Chips invests in Lab\nper GW",
               "Chips equity in Lab round": "Chips' equity in\nLab's round"}
#: Colours of the origins that are not sectors.
EXTRA_COLORS = {"Opening balances": plotting.OKABE_ITO["grey"], "Overdraft": "#E8E8E8"}


def _color(origin: str) -> str:
    return plotting.SECTOR_COLORS.get(origin, EXTRA_COLORS.get(origin, plotting.OKABE_ITO["grey"]))


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    data = {s: xr.load_dataset(plotting.require(results / "whopaid" / s / "trace.nc",
                                                "python analysis/whopaid.py"))
            for s in SCENARIOS}
    flows = [str(f) for f in data["baseline"]["flow"].values]
    origins = [str(o) for o in data["baseline"]["origin"].values]
    plotting.use_style()
    fig, axes = plotting.figure("double", height=1.55 * len(flows) + 0.9, nrows=len(flows),
                                ncols=len(SCENARIOS), sharex=True, sharey="row")
    axes = np.atleast_2d(axes)
    shown = set()
    for j, (scen, title) in enumerate(SCENARIOS.items()):
        ds = data[scen]
        t = ds["time"].values
        for i, flow in enumerate(flows):
            ax = axes[i, j]
            rate = ds["paid_rate"].sel(flow=flow)
            # show only origins that pay a visible part somewhere
            keep = [o for o in origins
                    if float(np.abs(rate.sel(origin=o)).max()) > 1e-3 * float(rate.sum("origin").max())]
            shown.update(keep)
            if keep:
                ax.stackplot(t, *[rate.sel(origin=o).values for o in keep],
                             colors=[_color(o) for o in keep], linewidth=0, zorder=2)
            else:  # a flow that is zero in this scenario (the per-GW letter lapsed in 2026)
                ax.text(0.5, 0.5, "none in this run", transform=ax.transAxes, ha="center",
                        va="center", fontsize=7, color=plotting.OKABE_ITO["grey"])
            ax.set_xlim(t[0], t[-1])
            ax.margins(x=0)
            if i == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{FLOW_TITLES.get(flow, flow)}\n($B/year)", fontsize=7)
            if i == len(flows) - 1:
                ax.set_xlabel("Year")
    handles = [plotting.plt.Rectangle((0, 0), 1, 1, facecolor=_color(o), edgecolor="none")
               for o in origins if o in shown]
    labels = [o for o in origins if o in shown]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False,
               fontsize=7, bbox_to_anchor=(0.5, 0.0))
    fig.set_layout_engine("tight", rect=(0, 0.07 if len(labels) > 4 else 0.045, 1, 1))
    prov = plotting.provenance(data["baseline"], scenario=",".join(SCENARIOS),
                               source=",".join(NEEDS))
    plotting.savefig(fig, "whopaid", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
