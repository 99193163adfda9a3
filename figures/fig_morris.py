"""Morris screening: mu* against sigma for every uncertain parameter, one panel per output.

Reads ``results/sensitivity/morris.nc`` (written by ``analysis/sensitivity.py``; never
simulates). mu* (mean absolute elementary effect) measures overall influence, sigma its
non-linearity or interaction; both are in the output's unit. The five most influential
parameters of each output are labelled; the dashed line is sigma = mu*.
Output: ``figures/out/sensitivity_morris.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from aicarousel import plotting

NEEDS = ["results/sensitivity/morris.nc"]
N_LABELS = 5


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    results, out_dir = plotting.script_dirs(argv, __doc__.splitlines()[0])
    ds = xr.load_dataset(plotting.require(results / "sensitivity" / "morris.nc",
                                          "python analysis/sensitivity.py"))
    outputs = [str(o) for o in ds["output"].values]
    ncols = 3
    nrows = -(-len(outputs) // ncols)
    fig, axes = plotting.figure("double", height=2.3 * nrows, nrows=nrows, ncols=ncols)
    axes = np.atleast_1d(axes).ravel()
    for ax, out in zip(axes, outputs):
        mu = ds["mu_star"].sel(output=out).values
        sd = ds["sigma"].sel(output=out).values
        conf = ds["mu_star_conf"].sel(output=out).values
        ok = np.isfinite(mu)
        ax.errorbar(mu[ok], sd[ok], xerr=conf[ok], fmt="o", ms=2.5, lw=0.5,
                    color=plotting.OKABE_ITO["blue"], ecolor=plotting.OKABE_ITO["grey"])
        hi = max(float(np.nanmax(mu)) if ok.any() else 1.0,
                 float(np.nanmax(sd)) if ok.any() else 1.0)
        ax.plot([0, hi], [0, hi], ls="--", lw=0.6, color=plotting.OKABE_ITO["grey"])
        ax.set_title(out, fontsize=7)
        unit = str(ds["unit"].sel(output=out).values) if "unit" in ds.coords else ""
        unit = plotting.format_unit(unit) or "output unit"
        ax.set_xlabel(f"mu* ({unit})", fontsize=7)
        ax.set_ylabel(f"sigma ({unit})", fontsize=7)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    for ax in axes[len(outputs):]:
        ax.set_visible(False)
    fig.set_layout_engine("tight")
    fig.canvas.draw()  # final layout first: labels are placed in display coordinates
    names = ds["param"].values
    for ax, out in zip(axes, outputs):
        mu = ds["mu_star"].sel(output=out).values
        sd = ds["sigma"].sel(output=out).values
        top = np.argsort(np.where(np.isfinite(mu), mu, -np.inf))[::-1][:N_LABELS]
        plotting.label_points(ax, mu[top], sd[top], names[top], fontsize=5)
    fig.set_layout_engine("none")  # keep the layout the labels were placed in
    prov = plotting.provenance(ds, seed=int(ds.attrs.get("seed", 0)), source=",".join(NEEDS),
                               n_runs=str(ds.attrs.get("n_runs")))
    plotting.savefig(fig, "sensitivity_morris", prov, directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
