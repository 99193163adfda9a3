"""Who paid for the carousel? Accounts and money tracing for the baseline and a stress case.

For each scenario: run the model at every time step, check the stock-flow-consistent accounts
at every step, trace each sector's cash to its origins (well-mixed, exact) and write to
``results/whopaid/<scenario>/`` the tables (CSV and LaTeX: who paid for the loop flows, by
year, the transaction-flow and balance-sheet matrices, market value per dollar of commitment)
and ``trace.nc`` (read by ``figures/fig_whopaid.py``). It also runs each scenario without the
announced commitments (``accounts.NO_COMMITMENTS``) and writes ``mv_counterfactual.{csv,tex}``:
market value each sector gained per dollar of commitment against that counterfactual.

Usage: ``python analysis/whopaid.py [--scenarios baseline funding_stop] [--period 2025:2030]``.
"""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from aicarousel import accounts as A
from aicarousel import paths, scenarios
from aicarousel.errors import AicarouselError

#: Scenarios shown side by side in the figure: the baseline and a stress case.
SCENARIOS = ["baseline", "funding_stop"]
#: Results this script writes (read by the figure).
PRODUCES = ["results/whopaid/baseline/trace.nc", "results/whopaid/funding_stop/trace.nc"]


def main(argv: list[str] | None = None) -> int:
    """Write the who-paid results of each scenario; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=SCENARIOS, metavar="S",
                        help=f"scenario names (default: {' '.join(SCENARIOS)})")
    parser.add_argument("--period", default=None, metavar="START:END",
                        help="years [START, END) for the tables (default: the whole run)")
    args = parser.parse_args(argv)
    try:
        acc = A.read_accounts()
        period = A.parse_period(args.period) if args.period else None
        if period:
            A.check_period(period, acc.time[:2])
        for name in tqdm(args.scenarios, desc="who paid", unit="scenario"):
            acc, ds, trace = A.analyse(scenarios.to_params(name), acc=acc)
            params = scenarios.to_params(name)
            _, ds_cf, _ = A.analyse({**params, **A.NO_COMMITMENTS}, acc=acc, check=False)
            mv = A.market_value_counterfactual(ds, ds_cf, trace, acc)
            out = A.write_results(paths.RESULTS_DIR / "whopaid" / name, acc, ds, trace,
                                  period=period, scenario=name)
            A.write_table(mv, out, "mv_counterfactual", digits=3,
                          caption=f"Market value gained per dollar of commitment against a run "
                                  f"without the announced commitments, {name}")
            summary = A.who_paid_summary(ds, trace, acc, period=period)
            shares = summary.xs("share", axis=1, level="measure").drop("Total")
            cols = ["commitment", "gain", "gain_per_dollar", "own_commitment",
                    "gain_per_own_dollar", "end_user_backing", "backed_gain_per_dollar"]
            tqdm.write(f"{name}: shares of the loop flows by origin\n"
                       f"{shares.round(3).to_string()}\n"
                       f"market value per dollar of commitment (vs no commitments, $B)\n"
                       f"{mv[cols].round(3).to_string()}\nwrote {paths.relative_to_root(out)}/")
    except AicarouselError as exc:
        print(f"whopaid: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
