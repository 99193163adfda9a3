"""Pair plot of the posterior: the parameters the calibration data constrain.

Reads ``results/calibration/posterior_draws.nc`` (written by ``analysis/posterior.py``; never
simulates). Shows the :data:`MAX_PARAMS` parameters with the smallest ratio of posterior to
prior 90 % width (at most those below ``aicarousel.calibrate.CONSTRAINED_RATIO``, at least two):
histograms on the diagonal over the whole prior range, 2-d histograms below it, the point
estimate as a cross.
Output: ``figures/out/calibration_corner.{pdf,png}`` (double column).
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import xarray as xr

from aicarousel import plotting

NEEDS = ["results/calibration/posterior_draws.nc"]
MAX_PARAMS = 6


def main(argv=None) -> int:
    """Draw the figure from ``--results`` into ``--out``; return the exit status."""
    from aicarousel.calibrate import CONSTRAINED_RATIO

    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    ds = xr.load_dataset(plotting.require(results / "calibration" / "posterior_draws.nc",
                                          "python analysis/posterior.py"))
    draws = ds["draws"].values
    lo, hi = ds["prior_low"].values, ds["prior_high"].values
    q5, q95 = np.percentile(draws, [5, 95], axis=0)
    ratio = (q95 - q5) / (0.9 * (hi - lo))
    order = [int(i) for i in np.argsort(ratio)]
    keep = [i for i in order if ratio[i] < CONSTRAINED_RATIO][:MAX_PARAMS] or order[:2]
    if len(keep) < 2:
        keep = order[:2]
    names = [str(n) for n in ds["parameter"].values]
    k = len(keep)
    fig, axes = plotting.figure("double", height=7.2, nrows=k, ncols=k, squeeze=False)
    color = plotting.OKABE_ITO["blue"]
    pe = ds["point_estimate"].values
    for r, i in enumerate(keep):
        for c, j in enumerate(keep):
            ax = axes[r, c]
            if c > r:
                ax.set_visible(False)
                continue
            if r == c:
                ax.hist(draws[:, i], bins=30, range=(lo[i], hi[i]), color=color, alpha=0.7)
                ax.set_yticks([])
            else:
                ax.hist2d(draws[:, j], draws[:, i], bins=30, range=[[lo[j], hi[j]], [lo[i], hi[i]]],
                          cmap="Blues")
                ax.plot(pe[j], pe[i], "x", color=plotting.OKABE_ITO["vermillion"], ms=4)
            ax.set_xlim(lo[j], hi[j])
            ax.tick_params(labelsize=5)
            if r == k - 1:
                ax.set_xlabel(textwrap.fill(names[j], 22), fontsize=5.5)
            else:
                ax.set_xticklabels([])
            if c == 0 and r > 0:
                ax.set_ylabel(textwrap.fill(names[i], 22), fontsize=5.5)
            elif c > 0:
                ax.set_yticklabels([])
    fig.suptitle(f"Posterior of the {k} most constrained parameters "
                 f"({draws.shape[0]} draws; x: point estimate)", fontsize=7)
    fig.set_layout_engine("tight")
    prov = plotting.provenance(ds, seed=int(ds.attrs.get("seed", 0) or 0),
                               source=",".join(NEEDS), converged=ds.attrs.get("converged", ""))
    plotting.savefig(fig, "calibration_corner", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
