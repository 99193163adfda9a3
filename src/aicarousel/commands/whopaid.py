"""``aicarousel whopaid``: who paid for the carousel's flows, by origin of the money.

Prints the amount and share paid by each origin (end users, equity investors, lenders, outside
cloud and chip buyers, opening balances, overdraft) for the loop flows (or one ``--flow``)
over a period, and the cumulative table by year; writes every table as CSV and LaTeX, plus the
traced series, to ``results/whopaid/<scenario>/``.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add the ``whopaid`` subcommand."""
    p = subparsers.add_parser(
        "whopaid", help="trace who paid for the loop's flows (money by origin)",
        description="Run the model at every time step, check its stock-flow-consistent "
                    "accounts, trace each sector's cash to its origins (well-mixed) and print "
                    "who paid for the loop flows over a period. Tables are written as CSV and "
                    "LaTeX to results/whopaid/<scenario>/.")
    p.add_argument("--scenario", default="baseline", metavar="S",
                   help="scenario name (a file in scenarios/, e.g. funding_stop); default baseline")
    p.add_argument("--flow", default=None, metavar="NAME",
                   help='one tagged flow by its Vensim name, e.g. "Chips investment in Lab"; '
                        "default: the three loop flows")
    p.add_argument("--period", default=None, metavar="START:END",
                   help="years [START, END), e.g. 2025:2030 (start of 2025 to start of 2030); "
                        "default: the whole run")
    p.add_argument("--output-dir", default=None, metavar="DIR",
                   help="where to write the tables (default results/whopaid/<scenario>)")
    p.add_argument("--model", default=None, metavar="MDL",
                   help="model file (default models/ai_carousel.mdl)")
    p.set_defaults(func=_main)


def _params(scenario: str, model_file) -> dict:
    from .. import scenarios
    return scenarios.to_params(scenario, model_file=model_file)


def _main(args: argparse.Namespace) -> int:
    import pandas as pd

    from .. import accounts as A
    from .. import paths

    acc = A.read_accounts(args.model)
    flows = [acc.flow(args.flow).name] if args.flow else list(A.LOOP_FLOWS)
    for f in flows:  # a model without the default loop flows
        acc.flow(f)
    period = None
    if args.period is not None:
        period = A.parse_period(args.period)
        A.check_period(period, acc.time[:2])
    params = _params(args.scenario, args.model)
    acc, ds, trace = A.analyse(params, model_file=args.model, acc=acc)
    t = ds["time"].values
    per = period or (float(t[0]), float(t[-1]))
    out = args.output_dir or (paths.RESULTS_DIR / "whopaid" / args.scenario)
    out = A.write_results(out, acc, ds, trace, flows=flows, period=per, scenario=args.scenario)
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.float_format", "{:,.3f}".format):
        print(f"Who paid ({args.scenario}, {per[0]:g} to {per[1]:g}; $B and share of the flow)")
        print(A.who_paid_summary(ds, trace, acc, flows, per).to_string())
        for f in flows:
            print()
            print(f"{f}: cumulative $B paid by origin")
            print(A.who_paid_by_year(ds, trace, acc, f, per).to_string())
    print(f"wrote {paths.relative_to_root(out)}/", file=sys.stderr)
    return 0
