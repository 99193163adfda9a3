"""Posterior of the carousel's parameters: ``aicarousel calibrate`` with its defaults.

Runs :func:`aicarousel.calibrate.calibrate` (point estimate, SMC posterior of the uncertain
parameters the targets inform, diagnostics, predictive bands 2024-2035) and writes its files
into ``results/calibration/`` (see :func:`aicarousel.calibrate.write_results`). Over the default
selection (every uncertain parameter that moves a target by a sigma, about 50) it takes tens of
minutes; ``bench/bench_calibrate.py`` measures 20 parameters. An interrupted run continues with
``--resume``. Exit status 1 (and a warning) when the chains did not converge.

Usage::

    python analysis/posterior.py [--seed 0] [--particles 2000] [--resume]
"""

from __future__ import annotations

import sys

from aicarousel.cli import main as cli_main

#: A slow step: figures/build.py runs it only with --slow; `make calibrate` runs it alone.
SLOW = "make calibrate"
#: Results this script writes (read by the figures).
PRODUCES = ["results/calibration/posterior_draws.nc", "results/calibration/predictive.nc",
            "results/calibration/posterior.csv", "results/calibration/calibration.csv"]


def main(argv: list[str] | None = None) -> int:
    """Run ``aicarousel calibrate --force`` (or ``--resume``) into results/calibration."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--resume" not in argv:
        argv.append("--force")
    return cli_main(["calibrate", *argv])


if __name__ == "__main__":
    sys.exit(main())
