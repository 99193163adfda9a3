"""Accounting structure: the model's tags and INTEG equations (part of :mod:`aicarousel.accounts`).

:func:`read_accounts` reads the tagged flows and stocks (through :mod:`aicarousel.tags`) and
each stock's INTEG terms from the IR; :func:`check_structure` proves the equations agree with
the tags.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from pathlib import Path
from typing import Any, Mapping

from .. import paths, tags
from ..errors import AicarouselError

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
        from ..params import suggest  # the one name resolver's suggestions
        close = suggest(name, names)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else \
            f"tagged flows are: {', '.join(names)}"
        raise AccountingError(f"unknown flow {name!r}: {hint}")


def _arrow(body: str | None, name: str, kind: str) -> tuple[str, str]:
    ends = tags.sectors(body)
    if ends is None:
        raise AccountingError(f"variable {name!r}: malformed tag [{kind}: {body}]; write "
                              f"[{kind}: <from sector> -> <to sector>]")
    a, b = ends
    if a == b:
        raise AccountingError(f"variable {name!r}: tag [{kind}: {body}] names the same sector "
                              f"twice; a flow or claim links two different sectors")
    return a, b


def _signed_refs(expr: Any) -> list[tuple[int, str]] | None:
    """Flatten an IR expression that is a signed sum of references.

    Returns ``[(sign, py_name), ...]`` or None when the expression is anything else.
    """
    from ..ir import Op, Ref
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
    from ..errors import ModelFileError, UnsupportedFeatureError
    from ..ir import build_ir
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
        tag = tags.parse(el.comment)
        if tag is None:
            continue
        kind, body = tag.kind, tag.body
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
