"""``aicarousel params``: list the model's parameters with units, values, ranges and sources."""

from __future__ import annotations

import argparse
import math


def register(subparsers) -> None:
    """Add the ``params`` subcommand."""
    p = subparsers.add_parser(
        "params", help="list parameters with units, values, ranges and sources",
        description="List every model constant: value (from the model), unit, plausible range "
                    "and source (from data/parameters.csv).")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a text table")
    p.add_argument("--grep", default=None, metavar="TEXT", help="only names containing TEXT")
    p.set_defaults(func=_main)


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if math.isnan(f) else f"{f:g}"


def _main(args: argparse.Namespace) -> int:
    from .. import paths
    from ..params import model_constants, read_table

    consts = model_constants()
    if paths.PARAMETERS_CSV.exists():
        table = read_table()
        df = consts[["value", "unit"]].join(table[["low", "high", "source", "date"]], how="left")
    else:
        df = consts[["value", "unit", "min", "max"]].rename(columns={"min": "low", "max": "high"})
        df["source"], df["date"] = "", ""
    if args.grep:
        df = df[df.index.str.contains(args.grep, case=False, regex=False)]
    if args.csv:
        print(df.reset_index().to_csv(index=False), end="")
        return 0
    w = max([len(n) for n in df.index] + [4])
    print(f"{'name':<{w}}  {'value':>10}  {'unit':<14} {'low':>8} {'high':>8}  source")
    for n, r in df.iterrows():
        src = str(r["source"]) if isinstance(r["source"], str) else ""
        print(f"{n:<{w}}  {_fmt(r['value']):>10}  {str(r['unit']):<14} {_fmt(r['low']):>8} "
              f"{_fmt(r['high']):>8}  {src[:70]}")
    return 0
