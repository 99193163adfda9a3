"""Monte Carlo fan chart: percentile bands over time of key outputs.

Reads ``results/sensitivity/montecarlo.nc`` (written by ``analysis/sensitivity.py``; never
simulates): Latin hypercube runs over every ranged parameter of ``data/parameters.csv``. Shaded
bands are the 5-95 and 25-75 percentile ranges, the line the median, the dashed line the
baseline run.
Output: ``figures/out/montecarlo_fan.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from aicarousel import plotting

NEEDS = ["results/sensitivity/montecarlo.nc"]


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    ds = xr.load_dataset(plotting.require(results / "sensitivity" / "montecarlo.nc",
                                          "python analysis/sensitivity.py"))
    names = [v for v in ds.data_vars if not v.endswith("(baseline)")]
    ncols = 3
    nrows = -(-len(names) // ncols)
    fig, axes = plotting.figure("double", height=1.9 * nrows, nrows=nrows, ncols=ncols,
                                sharex=True)
    axes = np.atleast_1d(axes).ravel()
    t = ds["time"].values
    pct = list(ds["percentile"].values)
    color = plotting.OKABE_ITO["blue"]
    for ax, name in zip(axes, names):
        q = ds[name]
        for lo, hi, alpha in ((5, 95, 0.2), (25, 75, 0.4)):
            if lo in pct and hi in pct:
                ax.fill_between(t, q.sel(percentile=lo), q.sel(percentile=hi), color=color,
                                alpha=alpha, lw=0, label=f"{lo}-{hi}%")
        if 50 in pct:
            ax.plot(t, q.sel(percentile=50), color=color, lw=1, label="median")
        if f"{name} (baseline)" in ds:
            ax.plot(t, ds[f"{name} (baseline)"], color="black", lw=0.7, ls="--",
                    label="baseline")
        ax.set_title(name, fontsize=7)
        ax.set_ylabel(plotting.axis_label(q, name=" ", unit=q.attrs.get("units")), fontsize=7)
        ax.set_xlim(t[0], t[-1])
        plotting.year_axis(ax, step=3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax in axes[-ncols:]:
        ax.set_xlabel("Year")
    axes[0].legend(fontsize=5.5, frameon=False, loc="upper left")
    fig.set_layout_engine("tight")
    prov = plotting.provenance(ds, seed=int(ds.attrs.get("seed", 0)), source=",".join(NEEDS),
                               n_runs=str(ds.attrs.get("n_runs")))
    plotting.savefig(fig, "montecarlo_fan", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
