"""``aicarousel experiment``: run policy/stress scenarios and write the comparison table."""

from __future__ import annotations

import argparse
import sys

from . import add_model, add_output


def register(subparsers) -> None:
    """Add the ``experiment`` subcommand."""
    p = subparsers.add_parser(
        "experiment", help="run scenarios (all by default) and compare their outcomes",
        description="Validate the scenario files, run each scenario through the model and write one "
                    "netCDF Dataset with a 'scenario' dimension plus a comparison table (CSV and "
                    "LaTeX). Every scenario is checked before anything runs.")
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help="scenario names (file stems in scenarios/); default: all")
    add_output(p, "netCDF file (default results/experiments.nc)", metavar="PATH")
    p.add_argument("--table", default=None, metavar="STEM",
                   help="path stem of the table files, .csv and .tex are added "
                        "(default results/experiments_table)")
    p.add_argument("--scenarios-dir", default=None, metavar="DIR", help="directory of scenario files")
    add_model(p)
    p.add_argument("--list", action="store_true", help="list the scenarios with their descriptions and exit")
    p.add_argument("--check", action="store_true", help="validate the scenario files and exit without running")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table on stdout")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from .. import paths
    from ..scenarios import validate_all

    names = args.scenarios or None
    if args.list or args.check:
        resolved = validate_all(names, scenarios_dir=args.scenarios_dir, model_file=args.model)
        for name, rs in resolved.items():
            if args.list:
                print(f"{name}: {rs.description}")
        if args.check:
            print(f"{len(resolved)} scenario(s) valid: {', '.join(resolved)}")
        return 0
    from ..atomic import check_output
    from ..experiments import run_experiments

    # every output path is checked before any scenario runs
    check_output(args.output or paths.RESULTS_DIR / "experiments.nc", "--output")
    stem = str(args.table or paths.RESULTS_DIR / "experiments_table")
    for suffix in (".csv", ".tex"):
        check_output(stem + suffix, "--table")
    _, table = run_experiments(names, scenarios_dir=args.scenarios_dir, model_file=args.model,
                               output=args.output or "default", table=args.table or "default",
                               progress=not args.quiet)
    if not args.quiet:
        with_units = table.T
        print(with_units.to_string(float_format=lambda v: f"{v:.4g}"))
    out = args.output or paths.RESULTS_DIR / "experiments.nc"
    stem = args.table or paths.RESULTS_DIR / "experiments_table"
    print(f"wrote {paths.relative_to_root(out)} and {paths.relative_to_root(stem)}.csv/.tex",
          file=sys.stderr)
    return 0
