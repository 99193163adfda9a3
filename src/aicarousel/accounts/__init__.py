"""Stock-flow-consistent accounts and money tracing ("who paid?").

Everything here is derived from the model's own tags, found at the start of each variable's
comment (documentation) field and read by :mod:`aicarousel.tags` (the one parser):
``[flow: A -> B]``, ``[cash: X]``, ``[claim: D -> C]`` (book value: equity is paid-in capital,
debt is principal outstanding), ``[real: X]``, ``[memo]`` and ``[stock]`` (ignored here).
Sectors without a ``[cash]`` stock form the Rest of World (RoW).

Accounting conventions (Godley and Lavoie, *Monetary Economics*, 2007)
-----------------------------------------------------------------------
Transaction-flow matrix (TFM)
    One row per tagged flow, one column per sector; the flow's value is entered with a minus
    sign in the paying column and a plus sign in the receiving column, so every row sums to
    zero. A flow is *financial* when it changes a ``[claim]`` stock (it appears in the stock's
    INTEG equation: equity issued, new borrowing, repayment); all other flows are *current*
    (revenue, payments, interest, dividends, capital expenditure). For a loop sector the sum of
    its column over all rows is its net cash flow and equals the change of its ``[cash]``
    stock; the sum over current rows only is its net lending, which equals the change of its
    net financial worth (cash plus claims held minus claims owed, book value). Values over a
    period are the flows integrated with the model's own Euler scheme
    (``sum(dt * flow(t))`` over the steps ``start <= t < end``), so they match stock changes to
    rounding.
Balance-sheet matrix (BSM)
    One row per cash, claim and real stock; assets positive, liabilities negative. Claim rows
    sum to zero across sectors; cash is an asset whose issuer (the banking system) lies outside
    the model and real assets have no counterpart, so those rows do not. The bottom row is each
    sector's net worth at book value (market values are not on the balance sheet).

Money tracing (well-mixed assumption)
-------------------------------------
The cash of every loop sector is split by *origin*: each RoW sector that pays into the loop
(end users, equity investors, lenders, outside cloud customers, outside chip buyers, ...), the
``Opening balances`` of the cash stocks, and ``Overdraft``. A flow from a RoW sector brings its
own origin. Cash in a sector is assumed *well mixed*: money is not earmarked, so every outflow
of a sector carries the origin mix of the cash it is paid from, and a flow from another loop
sector brings the payer's mix. The tracing follows the model's own Euler steps (flows constant
over a step, read from a run saved at every time step), so it is exact with respect to the
model: the sum over origins equals the model's cash stock to rounding, at every step.

Within a step, the cash a sector pays from is its cash at the start of the step plus the
step's inflows (the flows are simultaneous over the step); the mixes of the three loop sectors
in a step are therefore solved together (a small linear system, since they pay each other).

Negative cash: if a step's outflows exceed that cash, the excess is paid with ``Overdraft``
money (money the payer does not have; in reality a credit line) and the sector's deficit
grows. Later inflows first repay the deficit (that money leaves the tracing and is recorded
as ``repaid``) before they add to the sector's cash. The holding of origin ``Overdraft`` is
negative while a sector is overdrawn, and its share is 1 when the cash stock is negative.

Definitions of the answers are in the docstrings of :func:`who_paid`,
:func:`who_paid_by_year` and :func:`market_value_per_commitment`.

Layout
------
``accounts.structure`` (tags and INTEG equations -> :class:`Accounts`), ``accounts.series``
(a run saved at every time step, periods), ``accounts.matrices`` (Godley matrices, the
per-step checks, table export) and ``accounts.tracing`` (who paid; :func:`trace_step` is one
step as a pure function). This package re-exports every public name, so
``aicarousel.accounts.<name>`` is the API; the market-value counterfactual (two runs compared)
is an analysis, in ``analysis/whopaid.py``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .matrices import (balance_sheet, check_accounts, net_financial_worth, table_files,
                       to_latex, transaction_matrix, write_table)
from .series import check_period, parse_period, run_for_accounts
from .structure import (LOOP_FLOWS, OPENING, OVERDRAFT, ROW_ORDER, AccountingError, Accounts,
                        Flow, Holding, check_structure, read_accounts)
from .tracing import (flow_origins, market_value_per_commitment, paid_rates, trace_origins,
                      trace_step, who_paid, who_paid_by_year)

__all__ = [
    "ROW_ORDER", "OPENING", "OVERDRAFT", "LOOP_FLOWS", "AccountingError", "Flow", "Holding",
    "Accounts", "read_accounts", "check_structure", "run_for_accounts", "check_period",
    "parse_period", "transaction_matrix", "balance_sheet", "net_financial_worth",
    "check_accounts", "trace_step", "trace_origins", "flow_origins", "who_paid",
    "who_paid_by_year", "market_value_per_commitment", "paid_rates", "to_latex", "write_table",
    "table_files", "analyse", "who_paid_summary", "write_results",
]

# --------------------------------------------------------------------------------------------
# One call for the command line and the analysis script
# --------------------------------------------------------------------------------------------


def analyse(params: Mapping[str, Any] | None = None, model_file: str | os.PathLike | None = None,
            acc: Accounts | None = None, check: bool = True
            ) -> tuple[Accounts, xr.Dataset, xr.Dataset]:
    """Read the accounts, run the model at every time step, check the accounts and trace.

    Parameters
    ----------
    params : mapping, optional
        Overrides (e.g. ``aicarousel.scenarios.to_params(name)``).
    model_file : path, optional
    acc : Accounts, optional
        Structure already read from ``model_file``.
    check : bool
        Run :func:`check_accounts` (default True).

    Returns
    -------
    (Accounts, xarray.Dataset, xarray.Dataset)
        Structure, run (every time step), :func:`trace_origins`.
    """
    acc = acc or read_accounts(model_file)
    ds = run_for_accounts(params, model_file=model_file, acc=acc)
    if check:
        check_accounts(ds, acc)
    return acc, ds, trace_origins(ds, acc)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def who_paid_summary(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts,
                     flows: Sequence[str] = LOOP_FLOWS,
                     period: tuple[float, float] | None = None) -> pd.DataFrame:
    """Amount ($B) and share (1) paid by each origin for several flows over one period.

    Returns
    -------
    pandas.DataFrame
        Index: origins and ``Total``; columns ``(flow, "amount" | "share")``.
    """
    parts = {acc.flow(f).name: who_paid(ds, trace, acc, f, period) for f in flows}
    return pd.concat(parts, axis=1, names=["flow", "measure"])


def write_results(directory: str | os.PathLike, acc: Accounts, ds: xr.Dataset, trace: xr.Dataset,
                  flows: Sequence[str] = LOOP_FLOWS, period: tuple[float, float] | None = None,
                  scenario: str = "baseline") -> Path:
    """Write every "who paid" table (CSV and LaTeX) and the traced series (netCDF).

    Only these files are written (each to a temporary file first, then all renamed): other
    files in ``directory`` are never removed or replaced, and a failure before the renames
    leaves the old files. ``directory`` must be a directory or a new path. Files:
    ``who_paid.{csv,tex}`` (the flows over the period),
    ``who_paid_by_year_<flow>.{csv,tex}`` (cumulative, one per flow), ``tfm.{csv,tex}``
    (transaction-flow matrix over the period), ``balance_sheet.{csv,tex}`` (at the end of the
    period), ``mv_per_commitment.{csv,tex}``, ``trace.nc`` (holdings, shares, outflow mixes,
    ``paid_rate`` of the loop flows; attrs: scenario, period, provenance).

    Returns
    -------
    pathlib.Path
        The written directory.

    Raises
    ------
    OutputError
        ``directory`` is a file or not writable, or a target is not a regular file.
    """
    from ..atomic import check_output_dir, netcdf_writer, text_writer, write_files
    out = check_output_dir(directory, "output directory")
    t = np.asarray(ds["time"].values, dtype=float)
    per = period or (float(t[0]), float(t[-1]))
    label = f"{per[0]:g}:{per[1]:g}"
    texts = table_files(who_paid_summary(ds, trace, acc, flows, per), "who_paid",
                        caption=f"Who paid, {scenario}, {label} ($B and share)", digits=3)
    for f in flows:
        texts.update(table_files(who_paid_by_year(ds, trace, acc, f, per),
                                 f"who_paid_by_year_{_slug(acc.flow(f).name)}",
                                 caption=f"{acc.flow(f).name}: cumulative amount paid by origin, "
                                         f"{scenario} ($B)"))
    texts.update(table_files(transaction_matrix(ds, acc, period=per), "tfm",
                             caption=f"Transaction-flow matrix, {scenario}, {label} ($B)"))
    texts.update(table_files(balance_sheet(ds, acc, per[1]), "balance_sheet",
                             caption=f"Balance sheet at {per[1]:g}, {scenario} ($B, book value)"))
    try:
        mv = market_value_per_commitment(ds, trace, acc)
        texts.update(table_files(mv, "mv_per_commitment", digits=3,
                                 caption=f"Market value per dollar of commitment, {scenario}"))
    except AccountingError:
        pass  # a model without the announced commitments
    tr = trace.copy()
    tr["paid_rate"] = paid_rates(ds, trace, acc, flows)
    tr.attrs.update({"scenario": scenario, "period": label})
    writers = {k: text_writer(v) for k, v in texts.items()}
    writers["trace.nc"] = netcdf_writer(tr)
    return write_files(out, writers)

