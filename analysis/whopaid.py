"""Who paid for the carousel? Accounts and money tracing for the baseline and a stress case.

For each scenario: run the model at every time step, check the stock-flow-consistent accounts
at every step, trace each sector's cash to its origins (well-mixed, exact) and write to
``results/whopaid/<scenario>/`` the tables (CSV and LaTeX: who paid for the loop flows, by
year, the transaction-flow and balance-sheet matrices, market value per dollar of commitment)
and ``trace.nc`` (read by ``figures/fig_whopaid.py``). It also runs each scenario without the
announced commitments (:data:`NO_COMMITMENTS`) and writes ``mv_counterfactual.{csv,tex}``:
market value each sector gained per dollar of commitment against that counterfactual
(:func:`market_value_counterfactual`: an analysis of two runs, so it lives here and not in the
accounts package).

Usage: ``python analysis/whopaid.py [--scenarios baseline funding_stop] [--period 2025:2030]``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from aicarousel import accounts as A
from aicarousel import paths, scenarios
from aicarousel.accounts.series import run_time_step, run_values
from aicarousel.errors import AicarouselError

#: Scenarios shown side by side in the figure: the baseline and a stress case.
SCENARIOS = ["baseline", "funding_stop"]
#: Results this script writes (read by the figure).
PRODUCES = ["results/whopaid/baseline/trace.nc", "results/whopaid/funding_stop/trace.nc"]


#: Overrides that remove the announced commitments (the counterfactual of
#: :func:`market_value_counterfactual`).
NO_COMMITMENTS = {"Announced contract value": 0.0, "Vendor commitment value": 0.0}


def market_value_counterfactual(ds: xr.Dataset, ds_cf: xr.Dataset, trace: xr.Dataset,
                                acc: A.Accounts, at: float | None = None, after: float = 0.25,
                                contract_flow: str = "New Cloud contracts",
                                vendor_flow: str = "Vendor commitment signing",
                                backed_flow: str = "Lab payments to Cloud") -> pd.DataFrame:
    """Market value the commitments created, against a run without them.

    Definitions
    -----------
    counterfactual
        ``ds_cf``: the same scenario with the announced commitments removed (e.g.
        :data:`NO_COMMITMENTS`), everything else equal.
    at
        Year of comparison; default the end of the announcement window of
        :func:`aicarousel.accounts.market_value_per_commitment`.
    commitment ($B)
        Extra ``New Cloud contracts`` plus ``Vendor commitment signing`` up to ``at`` in
        ``ds`` compared with ``ds_cf`` (includes contracts the announcement induced).
    gain ($B)
        ``<Sector> Market Value`` at ``at`` in ``ds`` minus in ``ds_cf``.
    own commitment ($B)
        the commitment the sector itself booked: Cloud the extra ``New Cloud contracts``
        (its backlog), Chips the extra ``Vendor commitment signing``; Lab, the counterparty of
        both, and the loop as a whole the total. ``gain_per_own_dollar`` divides by it.
    end-user backing (1)
        as in :func:`aicarousel.accounts.market_value_per_commitment` (from ``at`` minus the window to the end).

    Returns
    -------
    pandas.DataFrame
        One row per loop sector plus ``All loop sectors``; columns ``at``, ``commitment``,
        ``mv``, ``mv_counterfactual``, ``gain``, ``gain_per_dollar``, ``end_user_backing``,
        ``backed_gain``, ``backed_gain_per_dollar``.
    """
    window = A.market_value_per_commitment(ds, trace, acc, after=after, contract_flow=contract_flow,
                                         vendor_flow=vendor_flow, backed_flow=backed_flow)
    t = np.asarray(ds["time"].values, dtype=float)
    t_cf = np.asarray(ds_cf["time"].values, dtype=float)
    if t.shape != t_cf.shape or not np.allclose(t, t_cf):
        raise A.AccountingError("the run and its counterfactual have different time grids; run "
                              "both with run_for_accounts")
    at = float(window["window_end"].iloc[0]) if at is None else float(at)
    A.check_period((float(t[0]), at), (float(t[0]), float(t[-1])))
    dt = run_time_step(ds)
    k = int(np.argmin(np.abs(t - at)))

    def committed(d: xr.Dataset, names: Sequence[str]) -> float:
        return float(dt * sum(run_values(d, n)[:k] for n in names).sum())

    both = (contract_flow, vendor_flow)
    commit = committed(ds, both) - committed(ds_cf, both)
    own_flows = {"Cloud": (contract_flow,), "Chips": (vendor_flow,)}
    own = {s: committed(ds, f) - committed(ds_cf, f) for s, f in own_flows.items()}
    backing = float(window["end_user_backing"].iloc[0])
    rows = []
    for s in list(window.index):
        if s == "All loop sectors":
            mv = sum(float(run_values(ds, f"{x} Market Value")[k]) for x in acc.loop_sectors
                     if f"{x} Market Value" in ds)
            cf = sum(float(run_values(ds_cf, f"{x} Market Value")[k]) for x in acc.loop_sectors
                     if f"{x} Market Value" in ds_cf)
        else:
            mv = float(run_values(ds, f"{s} Market Value")[k])
            cf = float(run_values(ds_cf, f"{s} Market Value")[k])
        gain = mv - cf
        mine = own.get(s, commit)
        rows.append({"sector": s, "at": t[k], "commitment": commit, "mv": mv,
                     "mv_counterfactual": cf, "gain": gain,
                     "gain_per_dollar": gain / commit if commit else np.nan,
                     "own_commitment": mine,
                     "gain_per_own_dollar": gain / mine if mine else np.nan,
                     "end_user_backing": backing, "backed_gain": gain * backing,
                     "backed_gain_per_dollar": gain * backing / commit if commit else np.nan})
    return pd.DataFrame(rows).set_index("sector")


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
            _, ds_cf, _ = A.analyse({**params, **NO_COMMITMENTS}, acc=acc, check=False)
            mv = market_value_counterfactual(ds, ds_cf, trace, acc)
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
