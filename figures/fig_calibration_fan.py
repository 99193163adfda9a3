"""Posterior predictive fan with the calibration data on it.

Reads ``results/calibration/predictive.nc`` (written by ``analysis/posterior.py``; never
simulates): percentile bands 2024-2035 of the key outputs and of every target's variable over
posterior draws (5-95 and 25-75 %), the run at the parameters' marginal posterior medians (one
parameter set; when parameters correlate it lies off the posterior's ridge and can leave the
middle band, so the bands, not this line, are the projection), and the data points with
their measurement error (one sigma). Targets over a period (integrals, means) are drawn as the
average rate over the period, a horizontal bar; filled markers were fitted, open ones held out
(``--until``).
Output: ``figures/out/calibration_fan.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr

from aicarousel import plotting

NEEDS = ["results/calibration/predictive.nc"]


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    ds = xr.load_dataset(plotting.require(results / "calibration" / "predictive.nc",
                                          "python analysis/posterior.py"))
    tvars = [str(v) for v in ds["target_variable"].values]
    names = list(dict.fromkeys(tvars))
    ncols = 3
    nrows = -(-len(names) // ncols)
    fig, axes = plotting.figure("double", height=min(9.0, 1.7 * nrows), nrows=nrows,
                                ncols=ncols, sharex=True, squeeze=False)
    axes = axes.ravel()
    t = ds["time"].values
    pct = list(ds["percentile"].values)
    color = plotting.OKABE_ITO["blue"]
    data_color = plotting.OKABE_ITO["vermillion"]
    for ax, name in zip(axes, names):
        q = ds[name]
        for lo, hi, alpha in ((5, 95, 0.2), (25, 75, 0.4)):
            if lo in pct and hi in pct:
                ax.fill_between(t, q.sel(percentile=lo), q.sel(percentile=hi), color=color,
                                alpha=alpha, lw=0, label=f"{lo}-{hi}%")
        med = f"{name} (posterior median)"
        if med in ds:
            ax.plot(t, ds[med], color=color, lw=1, label="run at marginal medians")
        for k in np.flatnonzero(np.array(tvars) == name):
            start, end = float(ds["target_start"][k]), float(ds["target_end"][k])
            value, sigma = float(ds["target_value"][k]), float(ds["target_sigma"][k])
            stat = str(ds["target_statistic"][k].values)
            if stat == "integral":  # average rate over the period
                value = value / (end - start)
            x = 0.5 * (start + end)
            fitted = bool(ds["target_fitted"][k])
            ax.errorbar(x, value, yerr=sigma * abs(value),
                        xerr=None if end == start else 0.5 * (end - start),
                        fmt="o", ms=2.5, lw=0.7, color=data_color,
                        mfc=data_color if fitted else "white", zorder=3)
        ax.set_title(name, fontsize=7)
        ax.set_ylabel(plotting.axis_label(q, name=" ", unit=q.attrs.get("units")), fontsize=6)
        ax.set_xlim(t[0], t[-1])
        plotting.year_axis(ax, step=3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    for ax in axes[-ncols:]:
        ax.set_xlabel("Year")
    axes[0].legend(fontsize=5, frameon=False, loc="upper left")
    fig.set_layout_engine("tight")
    prov = plotting.provenance(ds, seed=int(ds.attrs.get("seed", 0) or 0),
                               source=",".join(NEEDS), converged=ds.attrs.get("converged", ""),
                               until=ds.attrs.get("until", ""))
    plotting.savefig(fig, "calibration_fan", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
