"""Run every policy/stress scenario and write the comparison the paper quotes.

Writes ``results/experiments.nc`` (one Dataset, dimensions scenario x time) and
``results/experiments_table.{csv,tex}`` through :func:`aicarousel.experiments.run_experiments`;
the same as ``aicarousel experiment``. Every scenario file is validated before any run.

Usage: ``python analysis/experiments.py [SCENARIO ...] [--results DIR]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aicarousel import paths
from aicarousel.errors import AicarouselError
from aicarousel.experiments import DATASET_FILE, TABLE_STEM, run_experiments

#: Results this script writes (read by figures/build.py to order the build).
PRODUCES = ["results/experiments.nc", "results/experiments_table.csv", "results/experiments_table.tex"]


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", help="scenario names (default: all in scenarios/)")
    ap.add_argument("--results", default=None, help="output directory (default results/)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    out = Path(args.results) if args.results else paths.RESULTS_DIR
    try:
        ds, table = run_experiments(args.scenarios or None, output=out / DATASET_FILE,
                                    table=out / TABLE_STEM, progress=not args.quiet)
    except AicarouselError as exc:
        print(f"analysis/experiments.py: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"wrote {paths.relative_to_root(out / DATASET_FILE)} ({ds.sizes['scenario']} scenarios) and "
          f"{paths.relative_to_root(out / TABLE_STEM)}.csv/.tex", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
