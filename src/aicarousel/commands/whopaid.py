"""``aicarousel whopaid`` and ``aicarousel accounts``: who paid, and the Godley matrices.

Prints the amount and share paid by each origin (end users, equity investors, lenders, outside
cloud and chip buyers, opening balances, overdraft) for the loop flows (or one ``--flow``)
over a period, and the cumulative table by year; writes every table as CSV and LaTeX, plus the
traced series, to ``results/whopaid/<scenario>/``. ``accounts`` prints and writes the
transaction-flow matrix at a time or over a period and the balance-sheet matrix at a time.
"""

from __future__ import annotations

import argparse
import sys

from . import add_model


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
    add_model(p)
    p.set_defaults(func=_main)

    q = subparsers.add_parser(
        "accounts", help="transaction-flow and balance-sheet matrices of a run",
        description="Run the model at every time step, check its accounts at every step and "
                    "print the transaction-flow matrix (flows at --time in $B/Year, or "
                    "integrated over --period in $B) and the balance-sheet matrix (at --time, "
                    "or the end of --period). Written as CSV and LaTeX to "
                    "results/accounts/<scenario>/.")
    q.add_argument("--scenario", default="baseline", metavar="S",
                   help="scenario name (a file in scenarios/); default baseline")
    when = q.add_mutually_exclusive_group()
    when.add_argument("--time", type=float, default=None, metavar="YEAR",
                      help="a time in years, e.g. 2030")
    when.add_argument("--period", default=None, metavar="START:END",
                      help="years [START, END), e.g. 2025:2030; default: the whole run")
    q.add_argument("--output-dir", default=None, metavar="DIR",
                   help="where to write the tables (default results/accounts/<scenario>)")
    add_model(q)
    q.set_defaults(func=_accounts_main)


def _accounts_main(args: argparse.Namespace) -> int:
    import pandas as pd

    from .. import accounts as A
    from .. import paths

    out = _check_dir(args.output_dir or (paths.RESULTS_DIR / "accounts" / args.scenario))
    acc = A.read_accounts(args.model)
    t0, t1, _ = acc.time
    if args.time is not None:
        if not (t0 <= args.time <= t1):
            raise A.AccountingError(f"time {args.time:g} lies outside the run ({t0:g}:{t1:g}); "
                                    f"choose a year within it")
        period, at, label = None, args.time, f"{args.time:g}"
    else:
        period = A.parse_period(args.period) if args.period else (t0, t1)
        A.check_period(period, (t0, t1))
        at, label = period[1], f"{period[0]:g}_{period[1]:g}"
    ds = A.run_for_accounts(_params(args.scenario, args.model), model_file=args.model, acc=acc)
    A.check_accounts(ds, acc)
    tfm = A.transaction_matrix(ds, acc, time=args.time, period=period)
    bs = A.balance_sheet(ds, acc, at)
    unit = "$B/Year" if args.time is not None else "$B"
    A.write_table(tfm, out, f"tfm_{label}",
                  caption=f"Transaction-flow matrix, {args.scenario}, {label} ({unit})")
    A.write_table(bs, out, f"balance_sheet_{at:g}",
                  caption=f"Balance sheet at {at:g}, {args.scenario} ($B, book value)")
    with pd.option_context("display.width", 250, "display.max_columns", 20,
                           "display.float_format", "{:,.1f}".format):
        what = f"at {args.time:g}" if args.time is not None else f"{period[0]:g} to {period[1]:g}"
        print(f"Transaction-flow matrix ({args.scenario}, {what}; {unit})")
        print(tfm.to_string())
        print()
        print(f"Balance sheet ({args.scenario}, at {at:g}; $B, book value)")
        print(bs.to_string())
    print(f"wrote {paths.relative_to_root(out)}/", file=sys.stderr)
    return 0


def _check_dir(output_dir):
    """Refuse an output directory that is a file or not writable before anything runs."""
    from ..atomic import check_output_dir
    return check_output_dir(output_dir, "output directory")


def _params(scenario: str, model_file) -> dict:
    from .. import scenarios
    return scenarios.to_params(scenario, model_file=model_file)


def _main(args: argparse.Namespace) -> int:
    import pandas as pd

    from .. import accounts as A
    from .. import paths

    out = _check_dir(args.output_dir or (paths.RESULTS_DIR / "whopaid" / args.scenario))
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
