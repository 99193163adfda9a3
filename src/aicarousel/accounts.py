"""Stock-flow-consistent accounts and money tracing ("who paid?").

Everything here is derived from the model's own tags, found at the start of each variable's
comment (documentation) field:

``[flow: A -> B]``
    a money flow ($B/Year) that leaves sector ``A`` and enters sector ``B``;
``[cash: X]``
    the cash stock of loop sector ``X`` (a sector that has a cash stock is a *loop sector*;
    every other sector named in a flow tag belongs to the Rest of World, RoW);
``[claim: D -> C]``
    a financial claim stock: a liability of debtor ``D`` and an asset of creditor ``C``, at
    book value (equity is paid-in capital, debt is principal outstanding);
``[real: X]``
    a real (non-financial) asset of ``X`` at book value;
``[memo]``
    an off-balance-sheet commitment (shown below the balance sheet, never summed).

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
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from . import paths, tables
from .errors import AicarouselError

#: Canonical order of the Rest-of-World sectors in tables (others follow alphabetically).
ROW_ORDER = ("End users", "Equity investors", "Lenders", "Cloud customers", "Chip buyers",
             "Suppliers")
#: Origin of the cash stocks' initial values.
OPENING = "Opening balances"
#: Origin of money paid out of a negative cash balance.
OVERDRAFT = "Overdraft"
#: The flows of the carousel loop (R1), in loop order, then Chips' other way into Lab: equity
#: in a funding round (how Chips' money came in 2026, when the per-GW letter lapsed).
LOOP_FLOWS = ("Lab payments to Cloud", "GPU purchases", "Chips investment in Lab",
              "Chips equity in Lab round")

_TAG_RE = re.compile(r"^\s*\[(?P<kind>flow|cash|claim|real|memo|stock)\s*(?::\s*(?P<body>[^\]]*))?\]")
_ARROW_RE = re.compile(r"^\s*(?P<a>[^-][^>]*?)\s*->\s*(?P<b>.+?)\s*$")


class AccountingError(AicarouselError):
    """The model's accounts do not add up (message names the row, sector and time)."""


# --------------------------------------------------------------------------------------------
# Structure: tags and INTEG equations
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Flow:
    """A tagged money flow.

    Attributes
    ----------
    name : str
        Vensim name of the flow variable ($B/Year).
    source, target : str
        Paying and receiving sector.
    financial : bool
        True when the flow changes a ``[claim]`` stock (a financial transaction).
    """

    name: str
    source: str
    target: str
    financial: bool = False


@dataclasses.dataclass(frozen=True)
class Holding:
    """A tagged stock on (or below) the balance sheet.

    Attributes
    ----------
    name : str
        Vensim name of the stock ($B).
    kind : str
        ``"cash"``, ``"claim"``, ``"real"`` or ``"memo"``.
    holder : str or None
        Sector holding the asset (cash, real) or the creditor (claim); None for memo items.
    debtor : str or None
        Sector owing a claim; None otherwise.
    """

    name: str
    kind: str
    holder: str | None = None
    debtor: str | None = None


@dataclasses.dataclass(frozen=True)
class Accounts:
    """The accounting structure read from a model's tags and INTEG equations.

    Attributes
    ----------
    flows : tuple of Flow
        Tagged money flows in model order.
    holdings : tuple of Holding
        Tagged cash, claim, real and memo stocks in model order.
    loop_sectors : tuple of str
        Sectors with a ``[cash]`` stock, in model order.
    row_sectors : tuple of str
        Rest-of-World sectors (named in flow or claim tags, without a cash stock).
    stock_flows : dict
        For each tagged stock, its INTEG net flow as ``((sign, flow name), ...)``; ``None``
        when the net flow is not a signed sum of variables.
    model_file : str
        Model file the structure was read from (relative to the repository when inside it).
    time : (float, float, float)
        INITIAL TIME, FINAL TIME and TIME STEP of the model (years).
    """

    flows: tuple[Flow, ...]
    holdings: tuple[Holding, ...]
    loop_sectors: tuple[str, ...]
    row_sectors: tuple[str, ...]
    stock_flows: Mapping[str, tuple[tuple[int, str], ...] | None]
    model_file: str = ""
    time: tuple[float, float, float] = (math.nan, math.nan, math.nan)

    @property
    def sectors(self) -> tuple[str, ...]:
        """Loop sectors then RoW sectors: the columns of both matrices."""
        return self.loop_sectors + self.row_sectors

    @property
    def cash(self) -> dict[str, str]:
        """Cash stock name by loop sector."""
        return {h.holder: h.name for h in self.holdings if h.kind == "cash"}

    @property
    def origins(self) -> tuple[str, ...]:
        """Origins of traced money: paying RoW sectors, opening balances, overdraft."""
        payers = {f.source for f in self.flows if f.source in self.row_sectors}
        return tuple(s for s in self.row_sectors if s in payers) + (OPENING, OVERDRAFT)

    def flow(self, name: str) -> Flow:
        """Return the tagged flow called ``name`` (case-insensitive).

        Raises
        ------
        AccountingError
            Unknown flow; the message suggests the closest tagged flow names.
        """
        for f in self.flows:
            if f.name.lower() == name.strip().lower():
                return f
        names = [f.name for f in self.flows]
        from .params import suggest  # the one name resolver's suggestions
        close = suggest(name, names)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else \
            f"tagged flows are: {', '.join(names)}"
        raise AccountingError(f"unknown flow {name!r}: {hint}")


def _parse_tag(comment: str) -> tuple[str, str | None] | None:
    m = _TAG_RE.match(comment or "")
    if not m:
        return None
    return m.group("kind"), (m.group("body") or "").strip() or None


def _arrow(body: str | None, name: str, kind: str) -> tuple[str, str]:
    m = _ARROW_RE.match(body or "")
    if not m:
        raise AccountingError(f"variable {name!r}: malformed tag [{kind}: {body}]; write "
                              f"[{kind}: <from sector> -> <to sector>]")
    a, b = m.group("a").strip(), m.group("b").strip()
    if a == b:
        raise AccountingError(f"variable {name!r}: tag [{kind}: {body}] names the same sector "
                              f"twice; a flow or claim links two different sectors")
    return a, b


def _signed_refs(expr: Any) -> list[tuple[int, str]] | None:
    """Flatten an IR expression that is a signed sum of references.

    Returns ``[(sign, py_name), ...]`` or None when the expression is anything else.
    """
    from .ir import Op, Ref
    if isinstance(expr, Ref):
        return [(1, expr.name)]
    if isinstance(expr, Op) and expr.op == "neg" and len(expr.args) == 1:
        inner = _signed_refs(expr.args[0])
        return None if inner is None else [(-s, n) for s, n in inner]
    if isinstance(expr, Op) and expr.op in ("+", "-") and len(expr.args) == 2:
        a, b = _signed_refs(expr.args[0]), _signed_refs(expr.args[1])
        if a is None or b is None:
            return None
        sign = 1 if expr.op == "+" else -1
        return a + [(sign * s, n) for s, n in b]
    return None


def read_accounts(model_file: str | os.PathLike | None = None, check: bool = True) -> Accounts:
    """Read the accounting structure from a model's tags and INTEG equations.

    Parameters
    ----------
    model_file : path, optional
        Vensim (.mdl) or XMILE model; default ``paths.MODEL_FILE``.
    check : bool
        Run :func:`check_structure` (default True).

    Returns
    -------
    Accounts

    Raises
    ------
    AccountingError
        Malformed tags, or (with ``check``) a cash or claim stock whose INTEG flows are not
        exactly the tagged flows touching it.
    """
    path = Path(model_file) if model_file is not None else paths.MODEL_FILE
    if not path.is_file():
        raise AccountingError(f"model file not found: {path} (give an existing .mdl or .xmile)")
    st = path.stat()
    acc = _read_accounts_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)
    if check:
        check_structure(acc)
    return acc


@functools.lru_cache(maxsize=16)
def _read_accounts_cached(path_str: str, mtime_ns: int, size: int) -> Accounts:
    """Parse once per file version (the key holds its modification time and size)."""
    path = Path(path_str)
    from .errors import ModelFileError, UnsupportedFeatureError
    from .ir import build_ir
    try:
        ir = build_ir(path)
    except (ModelFileError, UnsupportedFeatureError) as exc:
        raise AccountingError(f"cannot read the accounts of {path.name}: {exc}") from None
    flows, holdings, integ = [], [], {}
    for el in (v for v in ir.variables.values() if not v.internal):
        if el.kind == "stock":
            refs = _signed_refs(el.expr)
            integ[el.real_name] = None if refs is None else tuple(
                (s, ir.variables[n].real_name if n in ir.variables else n) for s, n in refs)
        tag = _parse_tag(el.comment or "")
        if tag is None:
            continue
        kind, body = tag
        if kind == "flow":
            a, b = _arrow(body, el.real_name, kind)
            flows.append(Flow(el.real_name, a, b))
        elif kind == "claim":
            d, c = _arrow(body, el.real_name, kind)
            holdings.append(Holding(el.real_name, "claim", holder=c, debtor=d))
        elif kind in ("cash", "real"):
            if not body:
                raise AccountingError(f"variable {el.real_name!r}: tag [{kind}] names no sector; "
                                      f"write [{kind}: <sector>]")
            holdings.append(Holding(el.real_name, kind, holder=body))
        elif kind == "memo":
            holdings.append(Holding(el.real_name, "memo"))
    for h in holdings:
        if h.name not in integ:
            raise AccountingError(f"variable {h.name!r} is tagged [{h.kind}] but is not a stock "
                                  f"(INTEG); tag only stocks as cash, claim, real or memo")
    cash_sectors = [h.holder for h in holdings if h.kind == "cash"]
    dup = {s for s in cash_sectors if cash_sectors.count(s) > 1}
    if dup:
        raise AccountingError(f"sector(s) {sorted(dup)} have more than one [cash] stock; "
                              f"tag exactly one cash stock per sector")
    if not cash_sectors:
        raise AccountingError(f"{path.name}: no [cash: X] stock is tagged; the accounts need at "
                              f"least one sector with cash")
    named = []
    for f in flows:
        named += [f.source, f.target]
    for h in holdings:
        named += [x for x in (h.holder, h.debtor) if x]
    row = {s for s in named if s not in cash_sectors}
    row_sectors = tuple(s for s in ROW_ORDER if s in row) + tuple(sorted(row - set(ROW_ORDER)))
    claim_flows = {n for h in holdings if h.kind == "claim" for _, n in (integ[h.name] or ())}
    flows = [dataclasses.replace(f, financial=f.name in claim_flows) for f in flows]
    acc = Accounts(tuple(flows), tuple(holdings), tuple(cash_sectors), row_sectors,
                   {h.name: integ[h.name] for h in holdings}, paths.relative_to_root(path),
                   (float(ir.time.initial), float(ir.time.final), float(ir.time.dt)))
    return acc


def check_structure(acc: Accounts) -> None:
    """Check that the model's equations agree with its tags.

    Each ``[cash: X]`` stock's INTEG net flow must be exactly the tagged flows touching X,
    inflows with ``+`` and outflows with ``-``, each once. Each ``[claim: D -> C]`` stock
    may only change through tagged flows between D and C: ``+`` for a flow C -> D (the
    creditor pays in), ``-`` for a flow D -> C (repayment).

    Parameters
    ----------
    acc : Accounts

    Raises
    ------
    AccountingError
        Names the stock, the offending or missing flow and the fix.
    """
    by_name = {f.name: f for f in acc.flows}
    for h in acc.holdings:
        terms = acc.stock_flows.get(h.name)
        if h.kind == "cash":
            if terms is None:
                raise AccountingError(f"cash stock {h.name!r}: its INTEG net flow is not a sum of "
                                      f"flow variables; write it as inflows minus outflows")
            x = h.holder
            expected = {f.name: (1 if f.target == x else -1) for f in acc.flows
                        if x in (f.source, f.target)}
            seen: dict[str, int] = {}
            for sign, name in terms:
                if name in seen:
                    raise AccountingError(f"cash stock {h.name!r}: flow {name!r} appears twice "
                                          f"in its INTEG equation; enter each flow once")
                seen[name] = sign
            for name, sign in seen.items():
                if name not in expected:
                    why = (f"it is tagged [flow: {by_name[name].source} -> {by_name[name].target}]"
                           if name in by_name else "it carries no [flow: A -> B] tag")
                    raise AccountingError(f"cash stock {h.name!r} (sector {x}) changes with "
                                          f"{name!r} but {why}; tag the flow with the sectors it "
                                          f"links or remove it from the INTEG equation")
                if sign != expected[name]:
                    raise AccountingError(f"cash stock {h.name!r} (sector {x}): flow {name!r} "
                                          f"enters with sign {'+' if sign > 0 else '-'} but its "
                                          f"tag makes it an {'inflow' if expected[name] > 0 else 'outflow'}"
                                          f" of {x}; fix the sign or the tag")
            for name, sign in expected.items():
                if name not in seen:
                    f = by_name[name]
                    raise AccountingError(f"cash stock {h.name!r} (sector {x}) is missing flow "
                                          f"{name!r} tagged [flow: {f.source} -> {f.target}]; add "
                                          f"'{'+' if sign > 0 else '-'} {name}' to its INTEG "
                                          f"equation or fix the tag")
        elif h.kind == "claim" and terms is not None:
            for sign, name in terms:
                f = by_name.get(name)
                ok = f is not None and (
                    (sign > 0 and (f.source, f.target) == (h.holder, h.debtor)) or
                    (sign < 0 and (f.source, f.target) == (h.debtor, h.holder)))
                if not ok:
                    tag = f"[flow: {f.source} -> {f.target}]" if f else "no flow tag"
                    raise AccountingError(f"claim stock {h.name!r} [claim: {h.debtor} -> "
                                          f"{h.holder}] changes with {'+' if sign > 0 else '-'}"
                                          f"{name!r} which has {tag}; a claim grows with a flow "
                                          f"creditor -> debtor and shrinks with one debtor -> "
                                          f"creditor")


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

def needed_columns(acc: Accounts, extra: Iterable[str] = ()) -> list[str]:
    """Variables a run must return for the accounts, tracing and the market-value answer."""
    cols = [f.name for f in acc.flows] + [h.name for h in acc.holdings]
    cols += [f"{s} Market Value" for s in acc.loop_sectors]
    cols += list(extra)
    return list(dict.fromkeys(cols))


def run_for_accounts(params: Mapping[str, Any] | None = None,
                     model_file: str | os.PathLike | None = None,
                     acc: Accounts | None = None) -> xr.Dataset:
    """Run the model saved at every time step (SAVEPER = TIME STEP), as tracing needs.

    Parameters
    ----------
    params : mapping, optional
        Overrides by Vensim name, as for :func:`aicarousel.model.run`.
    model_file : path, optional
        Model file; default ``paths.MODEL_FILE``.
    acc : Accounts, optional
        Structure already read from ``model_file``.

    Returns
    -------
    xarray.Dataset
        All model variables at every time step.
    """
    from .model import run
    params = dict(params or {})
    ts = params.get("TIME STEP")
    if ts is None:
        if acc is None:
            from .model import load
            ts = float(load(model_file).components.time_step())
        else:
            ts = acc.time[2]
    params.pop("SAVEPER", None)
    return run(params=params, model_file=model_file, saveper=float(ts))


def _time_step(ds: xr.Dataset) -> float:
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size < 2:
        raise AccountingError("the run has fewer than two saved times; run with SAVEPER = TIME STEP")
    d = np.diff(t)
    dt = float(d[0])
    if not np.allclose(d, dt, rtol=1e-9, atol=0):
        raise AccountingError("the run's saved times are not evenly spaced; run with SAVEPER = "
                              "TIME STEP (aicarousel.accounts.run_for_accounts)")
    ts = _control(ds, "time_step")
    if ts is not None and not math.isclose(ts, dt, rel_tol=1e-9):
        raise AccountingError(f"the run was saved every {dt:g} years but its time step is {ts:g}; "
                              f"exact accounts and tracing need every step: run with SAVEPER = "
                              f"TIME STEP (aicarousel.accounts.run_for_accounts)")
    return dt


def _control(ds: xr.Dataset, key: str) -> float | None:
    import json
    for name in ("TIME STEP",) if key == "time_step" else ():
        if name in ds and ds[name].ndim == 1:
            return float(ds[name].values[0])
    raw = ds.attrs.get("run_control") or ds.attrs.get("provenance")
    if isinstance(raw, str):
        try:
            obj = json.loads(raw)
        except ValueError:
            return None
        obj = obj.get("run_control", obj) if isinstance(obj, dict) else {}
        if isinstance(obj, dict) and key in obj:
            return float(obj[key])
    return None


def _values(ds: xr.Dataset, name: str) -> np.ndarray:
    if name not in ds:
        raise AccountingError(f"the run has no variable {name!r}; run with all variables "
                              f"(aicarousel.accounts.run_for_accounts)")
    return np.asarray(ds[name].values, dtype=float)


def _period_mask(t: np.ndarray, period: tuple[float, float] | None) -> np.ndarray:
    if period is None:
        return np.ones(t.size - 1, dtype=bool) if t.size > 1 else np.zeros(0, dtype=bool)
    start, end = period
    check_period(period, (float(t[0]), float(t[-1])))
    tt = t[:-1]  # flows at the last saved time are never integrated
    eps = 1e-9 * max(1.0, abs(end))
    return (tt >= start - eps) & (tt < end - eps)


def check_period(period: tuple[float, float], bounds: tuple[float, float]) -> None:
    """Check a period [start, end) lies in the run.

    Raises
    ------
    AccountingError
        Start not before end, or outside the run's time range.
    """
    start, end = period
    t0, t1 = bounds
    if not (np.isfinite(start) and np.isfinite(end)) or start >= end:
        raise AccountingError(f"bad period {start:g}:{end:g}: the start must come before the end "
                              f"(e.g. 2025:2030)")
    if start < t0 - 1e-9 or end > t1 + 1e-9:
        raise AccountingError(f"period {start:g}:{end:g} lies outside the run ({t0:g}:{t1:g}); "
                              f"choose years within it")


def parse_period(text: str) -> tuple[float, float]:
    """Parse ``"2025:2030"`` into ``(2025.0, 2030.0)``: the half-open interval [start, end).

    Raises
    ------
    AccountingError
        Not two numbers separated by a colon, or start not before end.
    """
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = float(parts[0]), float(parts[1])
    except ValueError:
        raise AccountingError(f"bad period {text!r}: write START:END in years, e.g. 2025:2030 "
                              f"(from the start of 2025 to the start of 2030)") from None
    if not (np.isfinite(start) and np.isfinite(end)) or start >= end:
        raise AccountingError(f"bad period {text!r}: the start must come before the end "
                              f"(e.g. 2025:2030)")
    return start, end


# --------------------------------------------------------------------------------------------
# Matrices
# --------------------------------------------------------------------------------------------

def _flow_matrix(ds: xr.Dataset, acc: Accounts) -> np.ndarray:
    """Flow values, shape (time, flow), $B/Year."""
    return np.stack([_values(ds, f.name) for f in acc.flows], axis=1)


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
        dt = _time_step(ds)
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
        v = float(_values(ds, h.name)[k])
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
            out[h.holder] = out[h.holder] + sign(_values(ds, h.name))
        elif h.kind == "claim":
            v = _values(ds, h.name)
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
    dt = _time_step(ds)
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
        c = _values(ds, cname)
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
        v = _values(ds, h.name)
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
# Money tracing
# --------------------------------------------------------------------------------------------

def trace_origins(ds: xr.Dataset, acc: Accounts) -> xr.Dataset:
    """Trace each loop sector's cash back to its origins (well-mixed, exact Euler).

    See the module docstring for the rules. The state of sector X at time t is its funded
    pool ``P[X, o] >= 0`` by origin and its deficit ``D[X] >= 0`` (cash = sum(P) - D). In the
    step from t to t + dt, with gross outflow ``O[X] = dt * sum(outflows of X)(t)``, inflows
    ``R[X, o]`` from RoW origins and ``A[Y, X]`` from loop sector Y:

    - the step's pool is ``Q[X] = P[X] + R[X] + sum_Y A[Y, X] * m[Y]``, where ``m[Y]`` is
      Y's outflow mix in the step; its total does not depend on the mixes;
    - ``Q`` first repays ``D`` (pro rata across origins; recorded in ``repaid``); what is left,
      ``avail = sum(Q) - D``, pays the outflows; if ``avail < O`` the rest, ``O - avail``, is
      ``Overdraft`` and adds to ``D``;
    - hence ``m[X] = w * Q[X] / sum(Q[X]) + (1 - w) * e_Overdraft`` with
      ``w = clip(avail / O, 0, 1)``: linear in the mixes, solved exactly each step;
    - the new pool is what is left of ``Q`` after the repayment and the outflows.

    Parameters
    ----------
    ds : xarray.Dataset
        Run saved at every time step (:func:`run_for_accounts`).
    acc : Accounts

    Returns
    -------
    xarray.Dataset
        Dimensions ``sector`` (loop sectors), ``origin`` (:attr:`Accounts.origins`), ``time``.
        ``holdings`` ($B): cash of each sector by origin (``Overdraft`` holds minus the
        deficit), sums over origins to the cash stock; ``shares`` (1): holdings / cash (NaN
        when cash is exactly 0); ``outflow_mix`` (1): the mix ``m`` of the sector's outflows
        in the step starting at ``time``; ``repaid`` ($B): cumulative inflow used to repay
        deficits, by origin.
    """
    dt = _time_step(ds)
    t = np.asarray(ds["time"].values, dtype=float)
    n_t = t.size
    L = list(acc.loop_sectors)
    origins = list(acc.origins)
    o_idx = {o: i for i, o in enumerate(origins)}
    ovd = o_idx[OVERDRAFT]
    s_idx = {s: i for i, s in enumerate(L)}
    F = _flow_matrix(ds, acc)
    if (F < 0).any():
        k, j = np.argwhere(F < 0)[0]
        f = acc.flows[j]
        raise AccountingError(f"flow {f.name!r} [flow: {f.source} -> {f.target}] is negative "
                              f"({F[k, j]:.6g}) at time {t[k]:g}; tracing needs flows that keep "
                              f"their direction: split it into two tagged flows, one each way")
    nL, nO = len(L), len(origins)
    P = np.zeros((nL, nO))
    D = np.zeros(nL)
    cash0 = np.array([_values(ds, acc.cash[s])[0] for s in L])
    for i, c in enumerate(cash0):
        if c >= 0:
            P[i, o_idx[OPENING]] = c
        else:
            D[i] = -c
    holdings = np.zeros((nL, nO, n_t))
    mixes = np.full((nL, nO, n_t), np.nan)
    repaid = np.zeros((nL, nO, n_t))
    rep_cum = np.zeros((nL, nO))
    src = np.array([s_idx.get(f.source, -1) for f in acc.flows])
    dst = np.array([s_idx.get(f.target, -1) for f in acc.flows])
    row_origin = np.array([o_idx.get(f.source, -1) for f in acc.flows])
    e_ovd = np.zeros(nO)
    e_ovd[ovd] = 1.0
    for k in range(n_t):
        H = P.copy()
        H[:, ovd] -= D
        holdings[:, :, k] = H
        repaid[:, :, k] = rep_cum
        amounts = dt * F[k]
        if k == n_t - 1:
            amounts = np.zeros_like(amounts)  # no step follows the last time
        O = np.zeros(nL)                      # gross outflow of each sector in the step
        R = np.zeros((nL, nO))                # inflows from RoW, by origin
        A = np.zeros((nL, nL))                # A[y, x]: amount loop sector y pays x
        for j in range(len(acc.flows)):
            if src[j] >= 0:
                O[src[j]] += amounts[j]
                if dst[j] >= 0:
                    A[src[j], dst[j]] += amounts[j]
            elif dst[j] >= 0:
                R[dst[j], row_origin[j]] += amounts[j]
        # the pool of the step: start-of-step cash plus the step's inflows; its total does not
        # depend on the payers' mixes (they sum to 1), so the regime of each sector is known
        tot = P.sum(axis=1) + R.sum(axis=1) + A.sum(axis=0)
        avail = tot - D
        w = np.where(O > 0, np.clip(avail / np.where(O > 0, O, 1.0), 0.0, 1.0),
                     (avail > 0).astype(float))
        c = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 0.0)
        # m_x = c_x * (P_x + R_x + sum_y A[y, x] m_y) + (1 - w_x) e_ovd : linear in the mixes
        lhs = np.eye(nL) - c[:, None] * A.T
        rhs = c[:, None] * (P + R) + (1.0 - w)[:, None] * e_ovd[None, :]
        try:
            M = np.linalg.solve(lhs, rhs)
        except np.linalg.LinAlgError:
            M = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        mixes[:, :, k] = M
        if k == n_t - 1:
            break
        pool = P + R + A.T @ M
        for i in range(nL):
            pt = pool[i].sum()
            if D[i] > 0 and pt > 0:              # inflows first repay the deficit
                pay = min(D[i], pt)
                used = pool[i] * (pay / pt)
                rep_cum[i] += used
                pool[i] -= used
                D[i] -= pay
                pt -= pay
            take = min(O[i], max(pt, 0.0))
            if pt > 0 and take > 0:
                pool[i] *= (1.0 - take / pt)
            D[i] += O[i] - take
        P = pool
    cash = np.stack([_values(ds, acc.cash[s]) for s in L])
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = holdings / np.where(cash == 0, np.nan, cash)[:, None, :]
    coords = {"sector": L, "origin": origins, "time": t}
    out = xr.Dataset(
        {"holdings": (("sector", "origin", "time"), holdings,
                      {"units": "$B", "description": "cash of each loop sector by origin"}),
         "shares": (("sector", "origin", "time"), shares,
                    {"units": "1", "description": "holdings / cash stock"}),
         "outflow_mix": (("sector", "origin", "time"), mixes,
                         {"units": "1", "description": "origin mix of the sector's outflows in "
                                                      "the step starting at time"}),
         "repaid": (("sector", "origin", "time"), repaid,
                    {"units": "$B", "description": "cumulative inflow used to repay the "
                                                   "sector's overdraft, by origin"}),
         "cash": (("sector", "time"), cash, {"units": "$B", "description": "model cash stock"})},
        coords=coords)
    out.attrs.update({k: v for k, v in ds.attrs.items() if isinstance(v, (str, int, float))})
    out.attrs["assumption"] = "well-mixed cash; outflows carry the payer's start-of-step mix"
    out.attrs["time_step"] = dt
    return out


def flow_origins(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts, flow: str) -> xr.DataArray:
    """Amount of a flow paid by each origin in each step ($B per step).

    Parameters
    ----------
    ds : xarray.Dataset
        The traced run.
    trace : xarray.Dataset
        :func:`trace_origins` of ``ds``.
    acc : Accounts
    flow : str
        Vensim name of a tagged flow.

    Returns
    -------
    xarray.DataArray
        Dimensions ``(origin, time)``: ``dt * flow(t) * mix(t)``; the last time is 0 (no step
        follows it).
    """
    f = acc.flow(flow)
    dt = _time_step(ds)
    v = dt * _values(ds, f.name)
    v[-1] = 0.0
    if f.source in acc.loop_sectors:
        mix = trace["outflow_mix"].sel(sector=f.source).transpose("origin", "time").values
        mix = np.nan_to_num(mix)
    else:
        mix = np.zeros((len(acc.origins), v.size))
        mix[list(acc.origins).index(f.source)] = 1.0
    return xr.DataArray(mix * v[None, :], dims=("origin", "time"),
                        coords={"origin": list(acc.origins), "time": trace["time"].values},
                        name=f.name, attrs={"units": "$B", "flow": f.name})


def who_paid(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts, flow: str,
             period: tuple[float, float] | None = None) -> pd.DataFrame:
    """Who paid for a flow over a period: amount and share by origin.

    Definition: the amount of ``flow`` paid by origin ``o`` over [start, end) is
    ``sum(dt * flow(t) * mix_o(t))`` over the model's steps ``start <= t < end``, where
    ``mix(t)`` is the paying sector's outflow mix (well-mixed cash) or, for a flow paid by a
    RoW sector, 1 for that sector's own origin.

    Parameters
    ----------
    ds, trace, acc
        The run, its :func:`trace_origins` and the accounts structure.
    flow : str
        Vensim name of a tagged flow, e.g. ``"Chips investment in Lab"``.
    period : (float, float), optional
        Half-open interval in years; default the whole run.

    Returns
    -------
    pandas.DataFrame
        Index: origins, then ``Total``; columns ``amount`` ($B) and ``share`` (1; sums to 1).
    """
    per = flow_origins(ds, trace, acc, flow)
    mask = _period_mask(np.asarray(ds["time"].values, dtype=float), period)
    amounts = per.values[:, :-1][:, mask].sum(axis=1)
    total = float(amounts.sum())
    df = pd.DataFrame({"amount": amounts,
                       "share": amounts / total if total != 0 else np.full(amounts.size, np.nan)},
                      index=pd.Index(list(acc.origins), name="origin"))
    df.loc["Total"] = [total, 1.0 if total != 0 else np.nan]
    return df


def who_paid_by_year(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts, flow: str,
                     period: tuple[float, float] | None = None,
                     cumulative: bool = True) -> pd.DataFrame:
    """Who paid for a flow, year by year.

    Definition: row ``y`` holds the amount of ``flow`` paid by each origin in the steps
    ``y <= t < y + 1`` (see :func:`who_paid`); with ``cumulative`` the running total from the
    start of the period to the end of year ``y``. A period starting or ending inside a year
    gives partial first or last rows (only the steps inside the period count).

    Parameters
    ----------
    ds, trace, acc
    flow : str
    period : (float, float), optional
        Years to include, [start, end); default the whole run.
    cumulative : bool
        Running totals (default) or amounts within each year.

    Returns
    -------
    pandas.DataFrame
        Index ``year`` (int); columns: origins then ``Total`` ($B).
    """
    per = flow_origins(ds, trace, acc, flow)
    t = np.asarray(ds["time"].values, dtype=float)
    mask = _period_mask(t, period)
    tt = t[:-1][mask]
    vals = per.values[:, :-1][:, mask]
    years = np.floor(tt + 1e-9).astype(int)
    df = pd.DataFrame(vals.T, columns=list(acc.origins))
    df["year"] = years
    table = df.groupby("year").sum()
    if cumulative:
        table = table.cumsum()
    table["Total"] = table.sum(axis=1)
    table.columns.name = "origin"
    return table


def market_value_per_commitment(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts,
                                window: tuple[float, float] | None = None,
                                after: float = 0.25,
                                backing_period: tuple[float, float] | None = None,
                                contract_flow: str = "New Cloud contracts",
                                vendor_flow: str = "Vendor commitment signing",
                                backed_flow: str = "Lab payments to Cloud") -> pd.DataFrame:
    """Market value each loop sector gained per dollar of commitment, and its revenue backing.

    Definitions
    -----------
    window
        [start, end): by default from the earlier of ``Announced contract time`` and
        ``Vendor commitment time`` to the later plus ``Signing duration`` plus ``after`` years
        (the market values adjust with a delay), all read from the run.
    commitment ($B)
        ``New Cloud contracts`` plus ``Vendor commitment signing`` integrated over the window.
    gain ($B)
        ``<Sector> Market Value`` at the end of the window minus at its start.
    gain per dollar (1)
        gain / commitment.
    end-user backing (1)
        share of ``Lab payments to Cloud`` over ``backing_period`` (default: from the window's
        start to the end of the run) paid with money whose origin is ``End users``: the part
        of the contract's cash actually funded by AI revenue rather than by investors,
        lenders, vendor financing round trips or opening balances.
    backed gain ($B)
        gain times end-user backing: market value backed by end-user revenue.

    Returns
    -------
    pandas.DataFrame
        One row per loop sector with a market-value stock, plus ``All loop sectors``; columns
        ``window_start``, ``window_end``, ``commitment``, ``mv_start``, ``mv_end``, ``gain``,
        ``gain_per_dollar``, ``end_user_backing``, ``backed_gain``, ``backed_gain_per_dollar``.
    """
    t = np.asarray(ds["time"].values, dtype=float)
    dt = _time_step(ds)
    if window is None:
        def const(name: str) -> float:
            return float(_values(ds, name)[0])
        times = [const("Announced contract time"), const("Vendor commitment time")]
        window = (min(times), max(times) + const("Signing duration") + after)
    check_period(window, (float(t[0]), float(t[-1])))
    mask = _period_mask(t, window)
    commit = float(dt * (_values(ds, contract_flow)[:-1][mask]
                         + _values(ds, vendor_flow)[:-1][mask]).sum())
    k0 = int(np.argmin(np.abs(t - window[0])))
    k1 = int(np.argmin(np.abs(t - window[1])))
    if backing_period is None:
        backing_period = (window[0], float(t[-1]))
    paid = who_paid(ds, trace, acc, backed_flow, backing_period)
    backing = float(paid.loc["End users", "share"]) if "End users" in paid.index else 0.0
    rows = {}
    for s in acc.loop_sectors:
        name = f"{s} Market Value"
        if name not in ds:
            continue
        mv = _values(ds, name)
        rows[s] = (mv[k0], mv[k1])
    if not rows:
        raise AccountingError("the run has no '<Sector> Market Value' stock for any loop sector; "
                              "market value per dollar of commitment needs them")
    rows["All loop sectors"] = (sum(a for a, _ in rows.values()), sum(b for _, b in rows.values()))
    out = []
    for s, (a, b) in rows.items():
        gain = b - a
        out.append({"sector": s, "window_start": t[k0], "window_end": t[k1], "commitment": commit,
                    "mv_start": a, "mv_end": b, "gain": gain,
                    "gain_per_dollar": gain / commit if commit else np.nan,
                    "end_user_backing": backing, "backed_gain": gain * backing,
                    "backed_gain_per_dollar": gain * backing / commit if commit else np.nan})
    return pd.DataFrame(out).set_index("sector")


#: Overrides that remove the announced commitments (the counterfactual of
#: :func:`market_value_counterfactual`).
NO_COMMITMENTS = {"Announced contract value": 0.0, "Vendor commitment value": 0.0}


def market_value_counterfactual(ds: xr.Dataset, ds_cf: xr.Dataset, trace: xr.Dataset,
                                acc: Accounts, at: float | None = None, after: float = 0.25,
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
        :func:`market_value_per_commitment`.
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
        as in :func:`market_value_per_commitment` (from ``at`` minus the window to the end).

    Returns
    -------
    pandas.DataFrame
        One row per loop sector plus ``All loop sectors``; columns ``at``, ``commitment``,
        ``mv``, ``mv_counterfactual``, ``gain``, ``gain_per_dollar``, ``end_user_backing``,
        ``backed_gain``, ``backed_gain_per_dollar``.
    """
    window = market_value_per_commitment(ds, trace, acc, after=after, contract_flow=contract_flow,
                                         vendor_flow=vendor_flow, backed_flow=backed_flow)
    t = np.asarray(ds["time"].values, dtype=float)
    t_cf = np.asarray(ds_cf["time"].values, dtype=float)
    if t.shape != t_cf.shape or not np.allclose(t, t_cf):
        raise AccountingError("the run and its counterfactual have different time grids; run "
                              "both with run_for_accounts")
    at = float(window["window_end"].iloc[0]) if at is None else float(at)
    check_period((float(t[0]), at), (float(t[0]), float(t[-1])))
    dt = _time_step(ds)
    k = int(np.argmin(np.abs(t - at)))

    def committed(d: xr.Dataset, names: Sequence[str]) -> float:
        return float(dt * sum(_values(d, n)[:k] for n in names).sum())

    both = (contract_flow, vendor_flow)
    commit = committed(ds, both) - committed(ds_cf, both)
    own_flows = {"Cloud": (contract_flow,), "Chips": (vendor_flow,)}
    own = {s: committed(ds, f) - committed(ds_cf, f) for s, f in own_flows.items()}
    backing = float(window["end_user_backing"].iloc[0])
    rows = []
    for s in list(window.index):
        if s == "All loop sectors":
            mv = sum(float(_values(ds, f"{x} Market Value")[k]) for x in acc.loop_sectors
                     if f"{x} Market Value" in ds)
            cf = sum(float(_values(ds_cf, f"{x} Market Value")[k]) for x in acc.loop_sectors
                     if f"{x} Market Value" in ds_cf)
        else:
            mv = float(_values(ds, f"{s} Market Value")[k])
            cf = float(_values(ds_cf, f"{s} Market Value")[k])
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
    from .atomic import text_writer, write_files
    texts = table_files(df, name, caption, digits)
    write_files(d, {k: text_writer(v) for k, v in texts.items()})
    return d / f"{name}.csv", d / f"{name}.tex"


def table_files(df: pd.DataFrame, name: str, caption: str = "", digits: int = 1) -> dict[str, str]:
    """``{"<name>.csv": text, "<name>.tex": text}`` of a table (see :func:`write_table`)."""
    return {f"{name}.csv": _flat(df).to_csv(index=False, float_format="%.12g"),
            f"{name}.tex": to_latex(df, caption=caption, label=f"tab:{name}", digits=digits)}


# --------------------------------------------------------------------------------------------
# One call for the command line and the analysis script
# --------------------------------------------------------------------------------------------

def paid_rates(ds: xr.Dataset, trace: xr.Dataset, acc: Accounts,
               flows: Sequence[str] = LOOP_FLOWS) -> xr.DataArray:
    """Rate at which each origin pays each flow over time ($B/Year).

    Returns
    -------
    xarray.DataArray
        Dimensions ``(flow, origin, time)``: ``flow(t) * mix(t)`` (see :func:`flow_origins`).
    """
    arrs = []
    for name in flows:
        f = acc.flow(name)
        if f.source in acc.loop_sectors:
            mix = np.nan_to_num(trace["outflow_mix"].sel(sector=f.source)
                                .transpose("origin", "time").values)
        else:
            mix = (np.array(acc.origins) == f.source).astype(float)[:, None]
        arrs.append(xr.DataArray(mix * _values(ds, f.name)[None, :], dims=("origin", "time"),
                                 coords={"origin": list(acc.origins),
                                         "time": trace["time"].values}))
    out = xr.concat(arrs, dim=pd.Index([acc.flow(f).name for f in flows], name="flow"))
    out.name = "paid_rate"
    out.attrs = {"units": "$B/Year", "description": "rate at which each origin pays each flow"}
    return out


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
    from .atomic import check_output_dir, netcdf_writer, text_writer, write_files
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
