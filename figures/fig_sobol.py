"""Sobol indices: first-order S1 and total ST with confidence intervals, one panel per output.

Reads ``results/sensitivity/sobol.nc`` (written by ``analysis/sensitivity.py``; never
simulates). Bars are the share of the output's variance due to each parameter alone (S1) and
including its interactions (ST); whiskers are the bootstrap confidence intervals.
Output: ``figures/out/sensitivity_sobol.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from aicarousel import plotting

NEEDS = ["results/sensitivity/sobol.nc"]


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    results, out_dir = plotting.script_dirs(argv, __doc__.splitlines()[0])
    ds = xr.load_dataset(plotting.require(results / "sensitivity" / "sobol.nc",
                                          "python analysis/sensitivity.py"))
    outputs = [str(o) for o in ds["output"].values]
    params = [str(p) for p in ds["param"].values]
    ncols = 3
    nrows = -(-len(outputs) // ncols)
    fig, axes = plotting.figure("double", height=0.16 * len(params) * nrows + 0.9 * nrows,
                                nrows=nrows, ncols=ncols, sharey=True)
    axes = np.atleast_1d(axes).ravel()
    y = np.arange(len(params))
    h = 0.38
    for ax, out in zip(axes, outputs):
        for k, (key, col, dy) in enumerate((("S1", "blue", -h / 2), ("ST", "orange", h / 2))):
            v = ds[key].sel(output=out).values
            c = ds[f"{key}_conf"].sel(output=out).values
            ax.barh(y + dy, np.nan_to_num(v), height=h, xerr=np.nan_to_num(c),
                    color=plotting.OKABE_ITO[col], error_kw={"lw": 0.5, "capsize": 1},
                    label=key)
        ax.axvline(0, lw=0.5, color="black")
        ax.set_title(out, fontsize=7)
        ax.set_xlabel("Sobol index (dimensionless)", fontsize=7)
        ax.set_yticks(y, params, fontsize=5.5)
        ax.invert_yaxis()
    axes[0].legend(fontsize=6, frameon=False, loc="lower right")
    for ax in axes[len(outputs):]:
        ax.set_visible(False)
    fig.set_layout_engine("tight")
    prov = plotting.provenance(ds, seed=int(ds.attrs.get("seed", 0)), source=",".join(NEEDS),
                               n_runs=str(ds.attrs.get("n_runs")))
    plotting.savefig(fig, "sensitivity_sobol", prov, directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
