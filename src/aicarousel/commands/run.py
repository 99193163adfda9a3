"""``aicarousel run``: run the model (baseline or with --set overrides), write netCDF, print a summary."""

from __future__ import annotations

import argparse
import sys

from . import add_model, add_output


#: Variables shown in the summary table (those missing from the model are skipped).
SUMMARY_VARIABLES = [
    "Lab revenue from end users", "Lab Compute Online", "Cloud Installed Compute", "Contract Backlog",
    "Cloud Debt", "Lab Cash", "Cloud Cash", "Chips Cash", "Lab Equity from Chips",
    "Lab Market Value", "Cloud Market Value", "Chips Market Value",
]
SUMMARY_YEARS = [2025.0, 2027.0, 2030.0, 2035.0]


def register(subparsers) -> None:
    """Add the ``run`` subcommand."""
    p = subparsers.add_parser(
        "run", help="run the model and write a netCDF file",
        description="Run the carousel model (baseline, or with --set overrides), write the result "
                    "as netCDF (atomically) and print a short summary table.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar='"Name=value"',
                   help='override a model constant by its Vensim name, e.g. --set "AI demand '
                        'multiplier=0.8" (repeatable)')
    add_output(p, "netCDF file to write (e.g. results/baseline.nc); default: write nothing",
               metavar="PATH")
    add_model(p)
    p.add_argument("--final-time", type=float, default=None, help="final time in years")
    p.add_argument("--time-step", type=float, default=None, help="Euler time step in years")
    p.add_argument("--saveper", type=float, default=None, help="output interval in years")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print the summary table")
    p.set_defaults(func=_main)


def summary_table(ds, names=None, years=None) -> str:
    """Format a few key variables at a few years as a plain-text table with units.

    Parameters
    ----------
    ds : xarray.Dataset
        Result of :func:`aicarousel.model.run`.
    names, years : list, optional
        Variables (Vensim names) and years (default :data:`SUMMARY_VARIABLES`, :data:`SUMMARY_YEARS`).

    Returns
    -------
    str
    """
    names = [n for n in (names or SUMMARY_VARIABLES) if n in ds]
    t = ds["time"].values
    years = [y for y in (years or SUMMARY_YEARS) if t[0] <= y <= t[-1]]
    w = max([len(n) for n in names] + [8])
    head = f"{'variable':<{w}}  {'unit':<10}" + "".join(f"{y:>10g}" for y in years)
    lines = [head, "-" * len(head)]
    for n in names:
        vals = [float(ds[n].sel(time=y, method="nearest")) for y in years]
        unit = ds[n].attrs.get("units_vensim", "")
        lines.append(f"{n:<{w}}  {unit:<10}" + "".join(f"{v:>10.3g}" for v in vals))
    return "\n".join(lines)


def _main(args: argparse.Namespace) -> int:
    from ..model import run
    from ..params import parse_assignment
    from ..errors import ParameterValueError

    if args.output is not None:  # before any run: a FIFO, a directory, an unwritable place
        from ..atomic import check_output
        check_output(args.output, "--output")
    params = {}
    for text in args.overrides:
        name, value = parse_assignment(text)
        if name in params:
            raise ParameterValueError(f"--set {name!r} given twice; give it once")
        params[name] = value
    ds = run(params=params, model_file=args.model, final_time=args.final_time,
             time_step=args.time_step, saveper=args.saveper, output=args.output)
    if not args.quiet:
        print(summary_table(ds))
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
