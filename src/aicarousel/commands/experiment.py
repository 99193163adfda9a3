"""``aicarousel experiment``: run policy/stress scenarios and write the comparison table.

With ``--from-posterior DIR`` each scenario runs over draws of a calibration's posterior and the
table gives each outcome's median and 5-95 % band
(:func:`aicarousel.experiments.run_posterior_experiments`)."""

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
    p.add_argument("--from-posterior", default=None, metavar="DIR",
                   help="run each scenario over draws of a calibration's posterior (DIR of "
                        "`aicarousel calibrate`, or its posterior_draws.nc) and report the "
                        "outcomes' median and 5-95%% band (default files "
                        "results/experiments_posterior.nc and "
                        "results/experiments_posterior_table.csv)")
    p.add_argument("--draws", type=int, default=None, metavar="N",
                   help="with --from-posterior: posterior draws per scenario (default 100)")
    p.add_argument("--seed", type=int, default=0,
                   help="with --from-posterior: seed of the choice of draws (default 0)")
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

    if args.from_posterior is not None:
        return _posterior(args, names)
    if args.draws is not None:
        from ..errors import AicarouselError
        raise AicarouselError("--draws is for --from-posterior; add --from-posterior DIR")

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


def _posterior(args: argparse.Namespace, names) -> int:
    """``--from-posterior``: every scenario over posterior draws; bands of the outcomes."""
    from .. import paths
    from ..atomic import check_output
    from ..calibrate import load_posterior_draws
    from ..experiments import (POSTERIOR_DATASET_FILE, POSTERIOR_DRAWS, POSTERIOR_TABLE_FILE,
                               run_posterior_experiments)

    load_posterior_draws(args.from_posterior)  # a missing posterior first, one line
    out = args.output or paths.RESULTS_DIR / POSTERIOR_DATASET_FILE
    table = args.table + ".csv" if args.table else paths.RESULTS_DIR / POSTERIOR_TABLE_FILE
    check_output(out, "--output")
    check_output(table, "--table")
    _, df = run_posterior_experiments(
        names, posterior=args.from_posterior,
        n_draws=POSTERIOR_DRAWS if args.draws is None else args.draws, seed=args.seed,
        scenarios_dir=args.scenarios_dir, model_file=args.model, output=out, table=table,
        progress=not args.quiet)
    if not args.quiet:
        print(df.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {paths.relative_to_root(out)} and {paths.relative_to_root(table)}",
          file=sys.stderr)
    return 0
