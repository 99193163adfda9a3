"""Godley matrices and the per-step accounting checks (part of :mod:`aicarousel.accounts`).

The conventions are in the docstring of :mod:`aicarousel.accounts`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .. import tables
from .series import _period_mask, run_time_step, run_values
from .structure import AccountingError, Accounts

# --------------------------------------------------------------------------------------------
# Matrices
# --------------------------------------------------------------------------------------------

def _flow_matrix(ds: xr.Dataset, acc: Accounts) -> np.ndarray:
    """Flow values, shape (time, flow), $B/Year."""
    return np.stack([run_values(ds, f.name) for f in acc.flows], axis=1)


def _incidence(acc: Accounts) -> np.ndarray:
    """Sign matrix (flow, sector): -1 payer, +1 receiver."""
    cols = {s: j for j, s in enumerate(acc.sectors)}
    m = np.zeros((len(acc.flows), len(acc.sectors)))
    for i, f in enumerate(acc.flows):
        m[i, cols[f.source]] = -1.0
        m[i, cols[f.target]] = 1.0
    return m


def transaction_matrix(ds: xr.Dataset, acc: Accounts, time: float | None = None,
                       period: tuple[float, float] | None = None) -> pd.DataFrame:
    """Transaction-flow matrix at one time ($B/Year) or integrated over a period ($B).

    Parameters
    ----------
    ds : xarray.Dataset
        A run; a period needs a run saved at every time step.
    acc : Accounts
    time : float, optional
        Year at which to read the flows (nearest saved time). Exclusive with ``period``.
    period : (float, float), optional
        Half-open interval [start, end) in years; flows are integrated with the model's Euler
        steps. Default when neither is given: the whole run.

    Returns
    -------
    pandas.DataFrame
        Rows: one per flow (index ``(kind, flow)`` with kind ``current`` or ``financial``),
        then ``Net lending (sum of current rows)`` and ``Net cash flow (column sum)``; columns:
        sectors, then ``Row sum`` (zero for every flow row).
    """
    if time is not None and period is not None:
        raise AccountingError("give either a time or a period, not both")
    F = _flow_matrix(ds, acc)
    if time is not None:
        t = np.asarray(ds["time"].values, dtype=float)
        k = int(np.argmin(np.abs(t - time)))
        vals = F[k]
    else:
        dt = run_time_step(ds)
        mask = _period_mask(np.asarray(ds["time"].values, dtype=float), period)
        vals = dt * F[:-1][mask].sum(axis=0)
    M = _incidence(acc) * vals[:, None]
    idx = pd.MultiIndex.from_tuples([("financial" if f.financial else "current", f.name)
                                     for f in acc.flows], names=["kind", "flow"])
    df = pd.DataFrame(M, index=idx, columns=list(acc.sectors))
    df = df.sort_index(level=0, sort_remaining=False, key=lambda s: s.map({"current": 0,
                                                                           "financial": 1}))
    current = df.xs("current", level=0).sum(axis=0) if "current" in df.index.get_level_values(0) \
        else pd.Series(0.0, index=df.columns)
    total = df.sum(axis=0)
    df.loc[("total", "Net lending (sum of current rows)"), :] = current.values
    df.loc[("total", "Net cash flow (column sum)"), :] = total.values
    df["Row sum"] = df.sum(axis=1)
    return df


def balance_sheet(ds: xr.Dataset, acc: Accounts, time: float) -> pd.DataFrame:
    """Balance-sheet matrix at a time ($B, book values).

    Parameters
    ----------
    ds : xarray.Dataset
    acc : Accounts
    time : float
        Year (nearest saved time).

    Returns
    -------
    pandas.DataFrame
        Rows ``(kind, stock)`` for cash, claim and real stocks (assets +, liabilities -), then
        ``Net worth (book)``, then memo items (not summed); columns: sectors and ``Row sum``
        (zero for every claim row).
    """
    t = np.asarray(ds["time"].values, dtype=float)
    k = int(np.argmin(np.abs(t - time)))
    rows, idx = [], []
    memo_rows, memo_idx = [], []
    for h in acc.holdings:
        v = float(run_values(ds, h.name)[k])
        r = dict.fromkeys(acc.sectors, 0.0)
        if h.kind == "memo":
            memo_idx.append(("memo", h.name))
            memo_rows.append({**r, "Row sum": v})
            continue
        r[h.holder] = v
        if h.kind == "claim":
            r[h.debtor] = -v
        rows.append(r)
        idx.append((h.kind, h.name))
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(idx, names=["kind", "stock"]),
                      columns=list(acc.sectors))
    order = {"cash": 0, "claim": 1, "real": 2}
    df = df.sort_index(level=0, sort_remaining=False, key=lambda s: s.map(order))
    df["Row sum"] = df.sum(axis=1)
    net = df[list(acc.sectors)].sum(axis=0)
    df.loc[("total", "Net worth (book)"), :] = list(net.values) + [float(net.sum())]
    if memo_rows:
        memo = pd.DataFrame(memo_rows, index=pd.MultiIndex.from_tuples(memo_idx,
                                                                       names=["kind", "stock"]))
        memo[list(acc.sectors)] = np.nan
        df = pd.concat([df, memo[df.columns]])
    return df


def net_financial_worth(ds: xr.Dataset, acc: Accounts, absolute: bool = False) -> pd.DataFrame:
    """Net financial worth of each sector over time ($B, book): cash + claims held - owed.

    RoW sectors have no cash stock in the model; their column holds only their claims.
    With ``absolute`` the sum of the absolute values of the terms (a scale for rounding).
    """
    sign = (lambda x: np.abs(x)) if absolute else (lambda x: x)
    out = {s: np.zeros(ds.sizes["time"]) for s in acc.sectors}
    for h in acc.holdings:
        if h.kind == "cash":
            out[h.holder] = out[h.holder] + sign(run_values(ds, h.name))
        elif h.kind == "claim":
            v = run_values(ds, h.name)
            out[h.holder] = out[h.holder] + sign(v)
            out[h.debtor] = out[h.debtor] + sign(-v)
    return pd.DataFrame(out, index=pd.Index(ds["time"].values, name="time"))


def _net_of_rounding(resid: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """Residual beyond the rounding of a stock difference (a few ulps of the larger stock)."""
    mag = np.maximum(np.abs(stock[:-1]), np.abs(stock[1:]))
    return np.maximum(resid - 8.0 * np.finfo(float).eps * mag, 0.0)


def check_accounts(ds: xr.Dataset, acc: Accounts, rtol: float = 1e-9) -> dict[str, float]:
    """Check the accounts at every saved step; raise on the first violation.

    Checks, for every step t -> t + dt of a run saved at every time step:

    1. every TFM row sums to zero (each flow leaves one sector and enters another);
    2. each loop sector's column sum times dt equals the change of its cash stock;
    3. each sector's net lending (current rows) times dt equals the change of its net
       financial worth (from the balance sheet);
    4. the change of each claim stock equals dt times its financial flows.

    The residual of each check, less the rounding of the stock difference (8 ulps of the
    larger stock), is relative to the gross flow through the sector (or stock) over the step,
    ``dt * sum(|flows|)``, floored at 1e-12 $B.

    Parameters
    ----------
    ds : xarray.Dataset
        Run saved at every time step (:func:`run_for_accounts`).
    acc : Accounts
    rtol : float
        Largest relative residual allowed (default 1e-9).

    Returns
    -------
    dict
        Largest relative residual of each check (keys ``rows``, ``cash``, ``net_worth``,
        ``claims``).

    Raises
    ------
    AccountingError
        Names the row (flow or stock), the sector and the time of the first violation.
    """
    dt = run_time_step(ds)
    t = np.asarray(ds["time"].values, dtype=float)
    F = _flow_matrix(ds, acc)[:-1]           # flows at the start of each step
    inc = _incidence(acc)
    worst = {"rows": 0.0, "cash": 0.0, "net_worth": 0.0, "claims": 0.0}
    # 1. row sums: entries are built as -v, +v, so this verifies the tags link two sectors
    rows = np.abs(inc.sum(axis=1))
    if rows.max(initial=0.0) > 0:
        i = int(np.argmax(rows))
        raise AccountingError(f"row {acc.flows[i].name!r} does not sum to zero across sectors "
                              f"at time {t[0]:g}")
    cols = {s: j for j, s in enumerate(acc.sectors)}
    gross_by_sector = dt * (np.abs(F) @ np.abs(inc))           # (time, sector)
    net_by_sector = dt * (F @ inc)
    current = np.array([not f.financial for f in acc.flows], dtype=float)
    lending = dt * (F @ (inc * current[:, None]))

    def _fail(kind: str, row: str, sector: str, k: int, resid: float, scale: float) -> None:
        raise AccountingError(f"accounts do not add up: row {row!r}, sector {sector}, time "
                              f"{t[k]:g}: {kind} residual {resid:.3g} $B is {resid / scale:.3g} of "
                              f"the gross flow (tolerance {rtol:g}); check that flow tags and "
                              f"INTEG equations agree")

    for s, cname in acc.cash.items():
        j = cols[s]
        c = run_values(ds, cname)
        resid = _net_of_rounding(np.abs(np.diff(c) - net_by_sector[:, j]), c)
        scale = np.maximum(gross_by_sector[:, j], 1e-12)
        rel = resid / scale
        worst["cash"] = max(worst["cash"], float(rel.max(initial=0.0)))
        if (rel > rtol).any():
            k = int(np.argmax(rel > rtol))
            _fail("cash", cname, s, k, float(resid[k]), float(scale[k]))
    nfw = net_financial_worth(ds, acc)
    nfw_scale = net_financial_worth(ds, acc, absolute=True)
    claim_gross = np.zeros_like(gross_by_sector)
    for h in acc.holdings:
        if h.kind != "claim":
            continue
        v = run_values(ds, h.name)
        terms = acc.stock_flows.get(h.name) or ()
        idx = {f.name: i for i, f in enumerate(acc.flows)}
        expected = np.zeros(t.size - 1)
        gross = np.zeros(t.size - 1)
        for sign, name in terms:
            if name in idx:
                expected += sign * dt * F[:, idx[name]]
                gross += dt * np.abs(F[:, idx[name]])
        resid = _net_of_rounding(np.abs(np.diff(v) - expected), v)
        scale = np.maximum(gross, 1e-12)
        rel = resid / scale
        worst["claims"] = max(worst["claims"], float(rel.max(initial=0.0)))
        if (rel > rtol).any():
            k = int(np.argmax(rel > rtol))
            _fail("claim", h.name, f"{h.debtor} -> {h.holder}", k, float(resid[k]), float(scale[k]))
        claim_gross[:, cols[h.holder]] += gross
        claim_gross[:, cols[h.debtor]] += gross
    for s in acc.loop_sectors:
        j = cols[s]
        resid = _net_of_rounding(np.abs(np.diff(nfw[s].to_numpy()) - lending[:, j]),
                                 nfw_scale[s].to_numpy())
        scale = np.maximum(gross_by_sector[:, j] + claim_gross[:, j], 1e-12)
        rel = resid / scale
        worst["net_worth"] = max(worst["net_worth"], float(rel.max(initial=0.0)))
        if (rel > rtol).any():
            k = int(np.argmax(rel > rtol))
            _fail("net financial worth", "Net lending", s, k, float(resid[k]), float(scale[k]))
    return worst


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------

def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """Index as leading columns; multi-level column names joined by a space."""
    df = df.copy()
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = [" ".join(str(p) for p in c if str(p)) for c in df.columns]
    return df.reset_index()


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "", digits: int = 1) -> str:
    """Render a table as a LaTeX ``table`` (booktabs), numbers with ``digits`` decimals.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table of this module (multi-level rows are flattened into columns).
    caption, label : str
        LaTeX caption and label.
    digits : int
        Decimals of non-integer numbers.

    Returns
    -------
    str
    """
    flat = _flat(df)
    fmt = {c: (lambda v: "" if pd.isna(v) else f"{float(v):.{digits}f}") for c in flat.columns
           if pd.api.types.is_numeric_dtype(flat[c]) and not pd.api.types.is_integer_dtype(flat[c])}
    return tables.to_latex(flat, formatters=fmt, caption=caption, label=label, position="htbp")


def write_table(df: pd.DataFrame, directory: str | os.PathLike, name: str, caption: str = "",
                digits: int = 1) -> tuple[Path, Path]:
    """Write ``df`` as ``<name>.csv`` and ``<name>.tex`` atomically.

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The CSV and LaTeX files.
    """
    d = Path(directory)
    from ..atomic import text_writer, write_files
    texts = table_files(df, name, caption, digits)
    write_files(d, {k: text_writer(v) for k, v in texts.items()})
    return d / f"{name}.csv", d / f"{name}.tex"


def table_files(df: pd.DataFrame, name: str, caption: str = "", digits: int = 1) -> dict[str, str]:
    """``{"<name>.csv": text, "<name>.tex": text}`` of a table (see :func:`write_table`)."""
    return {f"{name}.csv": _flat(df).to_csv(index=False, float_format="%.12g"),
            f"{name}.tex": to_latex(df, caption=caption, label=f"tab:{name}", digits=digits)}
