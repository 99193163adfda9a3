"""Posterior of the carousel's parameters: ``aicarousel calibrate --max-params 20``.

Runs :func:`aicarousel.calibrate.calibrate` (point estimate, SMC posterior of the 20 uncertain
parameters that move the targets most, diagnostics, predictive bands 2024-2035) and writes its
files into ``results/calibration/`` (see :func:`aicarousel.calibrate.write_results`): 11-12 min
on 2 cores (``bench/bench_calibrate.py``). An interrupted run continues with
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


#: Parameters estimated: the screened ones that move the targets most (a converged posterior
#: over them takes 11-12 min on 2 cores; over the whole default selection of 50, not measured
#: converged: docs/model.md).
MAX_PARAMS = 20


def main(argv: list[str] | None = None) -> int:
    """Run ``aicarousel calibrate --max-params 20 --force`` (or ``--resume``) into
    results/calibration."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--resume" not in argv:
        argv.append("--force")
    if "--params" not in argv and "--max-params" not in argv:
        argv += ["--max-params", str(MAX_PARAMS)]
    return cli_main(["calibrate", *argv])


if __name__ == "__main__":
    sys.exit(main())
