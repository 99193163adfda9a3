"""The reduced model of the reinforcing structure, derived from the full model (never typed).

:func:`derive` keeps the stocks and links of the named reinforcing loops
(:func:`aicarousel.loopgain.structure`) and folds everything else into constants at a stated
reference state (the run's state at :data:`aicarousel.loopgain.REFERENCE_TIME`):

* every kept auxiliary y: ``y = y_ref + sum over kept links x -> y of L_xy * (x - x_ref)``;
* every kept stock s: ``ds/dt = f_ref + a_s * (s - s_ref) + sum over kept links x -> s of
  L_xs * (x - x_ref)``,

where ``L_xy`` is the full model's partial derivative dy/dx at the reference state
(:class:`aicarousel.loopgain.LinkDerivatives`), ``a_s`` the stock's own rate with the
reinforcing loops taken out (the full model's total d(net flow)/ds minus the part along the
kept links, so the reduced model's total own derivative equals the full one), and ``f_ref`` the
full model's net flow at the reference state. Time-dependent inputs are frozen at the
reference time, so the reduced model is linear and autonomous. A loop that is inactive at the
reference state (a link gain of exactly zero: a MIN or IF branch not taken) is left out, with
the reason stated.

:func:`write_mdl` generates ``models/core_loop_derived.mdl`` from it (``aicarousel loopgain
--write-reduced``); each link constant carries a ``[link: x -> y]`` tag, so
``tests/test_reduce.py`` checks every link exists in the full model with the same partial
derivative (1e-6 relative). :func:`closed_forms` gives the equilibrium, Jacobian,
characteristic polynomial, Routh-Hurwitz determinants, G in symbols
(``1 - det(I - A)``, A in terms of the link symbols and own rates) and the G = 1 threshold of
each link gain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import sympy as sp

from aicarousel.ir import ModelIR
from aicarousel.loopgain import (GainsAt, LoopGainError, ReinforcingStructure, check_time,
                                 gains_at_state, run_state, structure)

__all__ = ["ReducedModel", "derive", "to_mdl", "write_mdl", "closed_forms", "ClosedForms",
           "DERIVED_FILE", "LINK_TAG", "link_name", "ref_name"]

LINK_TAG = re.compile(r"\[link:\s*(.+?)\s*->\s*(.+?)\s*\]")


def _derived_file() -> Path:
    from aicarousel import paths
    return paths.MODELS_DIR / "core_loop_derived.mdl"


DERIVED_FILE = _derived_file()


@dataclass
class ReducedModel:
    """The reduced model's structure and numbers (py_names of the full model)."""

    full: ModelIR
    structure: ReinforcingStructure
    gains: GainsAt
    reference_time: float
    stocks: list[str]
    auxiliaries: list[str]
    links: dict[tuple[str, str], float]           # kept link -> L (full model's dy/dx)
    own_rate: dict[str, float]                    # stock -> a_s (1/year)
    reference: dict[str, float]                   # kept variable -> value at reference
    net_flow: dict[str, float]                    # stock -> full net flow at reference
    left_out: dict[str, str] = field(default_factory=dict)  # loop id -> why


def derive(ir: ModelIR, time: float | None = None, params: Mapping | None = None,
           st: ReinforcingStructure | None = None) -> ReducedModel:
    """Derive the reduced model at the reference state (see the module docstring)."""
    t_ref = check_time(ir, time)
    st = st or structure(ir, time=t_ref, params=params)
    t, state = run_state(ir, t_ref, params)
    g = gains_at_state(st, t, state, params)
    left_out = {}
    paths = {}
    for lid, p in st.paths.items():
        zero = [(p[i], p[(i + 1) % len(p)]) for i in range(len(p))
                if g.links[(p[i], p[(i + 1) % len(p)])] == 0.0]
        if zero:
            x, y = zero[0]
            left_out[lid] = (f"inactive at {t:g}: the link {ir.variables[x].real_name} -> "
                             f"{ir.variables[y].real_name} has zero gain there")
        else:
            paths[lid] = p
    if not paths:
        raise LoopGainError(f"no named reinforcing loop of {ir.path.name} is active at "
                            f"{t:g}, so there is nothing to reduce; give another --time")
    kept = ReinforcingStructure(ir=ir, paths=paths, names=st.names, reference_time=t,
                                derivs=st.derivs, notes=st.notes)
    g = gains_at_state(kept, t, state, params)
    on = {v for p in paths.values() for v in p}
    stocks = [s for s in ir.stocks if s in on]
    auxes = [n for n in ir.order if n in on and n not in ir.stocks]
    _, ddt = _evaluate(ir, state, t, params)
    return ReducedModel(full=ir, structure=kept, gains=g, reference_time=t, stocks=stocks,
                        auxiliaries=auxes, links=dict(g.links), own_rate=dict(g.own_rate),
                        reference={v: float(g.env[v]) for v in stocks + auxes},
                        net_flow={s: float(ddt[s]) for s in stocks}, left_out=left_out)


def _evaluate(ir, state, t, params):
    from aicarousel.ir import evaluate
    return evaluate(ir, state, t, params)


# --------------------------------------------------------------------------------------------
# The generated Vensim file
# --------------------------------------------------------------------------------------------
def _unit(u: str) -> str:
    u = (u or "").strip()
    return u or "Dmnl"


def _ratio(uy: str, ux: str) -> str:
    uy, ux = _unit(uy), _unit(ux)
    if uy == ux:
        return "Dmnl"
    if ux == "Dmnl":
        return uy
    if uy == "Dmnl":
        return f"1/({ux})"
    return f"({uy})/({ux})"


def link_name(rm: ReducedModel, x: str, y: str) -> str:
    """Name of the constant holding the gain of link x -> y in the generated model."""
    v = rm.full.variables
    return f"Link {v[x].real_name} to {v[y].real_name}"


def ref_name(rm: ReducedModel, x: str) -> str:
    """Name of the constant holding x's value at the reference state."""
    return f"{rm.full.variables[x].real_name} at reference"


def _num(x: float) -> str:
    return repr(float(x))


def _wrap(text: str, width: int = 88) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return " \\\n\t\t".join(lines)


def to_mdl(rm: ReducedModel) -> str:
    """The reduced model as Vensim text (deterministic: same full model, same bytes)."""
    ir, V = rm.full, rm.full.variables
    tu = "Year"
    ins: dict[str, list[str]] = {}
    for (x, y) in sorted(rm.links):
        ins.setdefault(y, []).append(x)
    blocks = []

    def eq(name, rhs, units, comment):
        blocks.append(f"{name}=\n\t{rhs}\n\t~\t{units}\n\t~\t{_wrap(comment)}\n\t|\n")

    def terms(y):
        return [f"{link_name(rm, x, y)} * ({V[x].real_name} - {ref_name(rm, x)})"
                for x in sorted(ins.get(y, []), key=lambda n: V[n].real_name)]

    loops = "; ".join(f"{lid} ({rm.structure.names.get(lid, '')}): "
                      + " -> ".join(V[v].real_name for v in p)
                      for lid, p in rm.structure.paths.items())
    out_ = "; ".join(f"{lid} left out, {why}" for lid, why in rm.left_out.items())
    head = (f"GENERATED by `aicarousel loopgain --write-reduced` from {ir.path.name} "
            f"(sha256 {ir.sha256[:16]}); do not edit. The reduced model of the carousel's "
            f"named reinforcing loops, linearised at the state of the baseline run at "
            f"{rm.reference_time:g}: each kept variable is its reference value plus the full "
            f"model's partial derivative times the change of each input on the loops; each "
            f"stock keeps its full net flow at the reference and its own rate with the "
            f"reinforcing loops taken out; everything else is folded into these constants "
            f"(aicarousel.reduce). Loops kept: {loops}." + (f" {out_}." if out_ else ""))
    blocks.append("{UTF-8}\n********************************************************\n"
                  f"\t.Reduced loop\n********************************************************~"
                  f"\n\t\t{_wrap(head)}\n\t|\n")
    for s in rm.stocks:
        rhs = " + ".join([f"{V[s].real_name} net flow at reference",
                          f"{V[s].real_name} own rate * ({V[s].real_name} - {ref_name(rm, s)})"]
                         + terms(s))
        blocks.append(f"{V[s].real_name}= INTEG (\n\t{rhs},\n\t\t{ref_name(rm, s)})\n\t~\t"
                      f"{_unit(V[s].units)}\n\t~\t{_wrap('[stock] Reduced from the full model.')}"
                      "\n\t|\n")
        eq(f"{V[s].real_name} net flow at reference", _num(rm.net_flow[s]),
           f"{_unit(V[s].units)}/{tu}",
           f"[flow: {V[s].real_name}] Net flow of {V[s].real_name} in the full model at the "
           "reference state.")
        eq(f"{V[s].real_name} own rate", _num(rm.own_rate[s]), f"1/{tu}",
           f"[own: {V[s].real_name}] d(net flow)/d(stock) of the full model at the reference "
           "state, less the part along the reinforcing loops (the stock's own adjustment).")
    for y in rm.auxiliaries:
        rhs = " + ".join([ref_name(rm, y)] + terms(y))
        eq(V[y].real_name, rhs, _unit(V[y].units), "Reduced from the full model.")
    for v in rm.stocks + rm.auxiliaries:
        eq(ref_name(rm, v), _num(rm.reference[v]), _unit(V[v].units),
           f"[ref: {V[v].real_name}] Value in the full model at the reference state.")
    for (x, y), val in sorted(rm.links.items(), key=lambda kv: link_name(rm, *kv[0])):
        uy = f"({_unit(V[y].units)})/{tu}" if y in rm.stocks else V[y].units  # a net flow
        eq(link_name(rm, x, y), _num(val), _ratio(uy, V[x].units),
           f"[link: {V[x].real_name} -> {V[y].real_name}] Partial derivative of "
           f"{V[y].real_name} with respect to {V[x].real_name} in the full model at the "
           "reference state.")
    t0 = rm.reference_time
    blocks.append("********************************************************\n\t.Control\n"
                  "********************************************************~\n"
                  "\t\tSimulation Control Parameters\n\t|\n")
    for name, val, u in (("FINAL TIME", t0 + 20, tu), ("INITIAL TIME", t0, tu),
                         ("SAVEPER", ir.time.saveper, f"{tu} [0,?]"),
                         ("TIME STEP", ir.time.dt, f"{tu} [0,?]")):
        blocks.append(f"{name}  = {_num(val) if not float(val).is_integer() else int(val)}"
                      f"\n\t~\t{u}\n\t~\t\n\t|\n")
    return "\n".join(blocks) + "\n\\\\\\---/// Sketch information - do not modify anything " \
        "except names\nV300  Do not put anything below this section - it will be ignored\n"


def write_mdl(rm: ReducedModel, path: Path | None = None) -> Path:
    """Write :func:`to_mdl` atomically (default ``models/core_loop_derived.mdl``)."""
    from aicarousel.atomic import write_text
    return write_text(path or DERIVED_FILE, to_mdl(rm))


# --------------------------------------------------------------------------------------------
# Closed forms of the reduced model
# --------------------------------------------------------------------------------------------
@dataclass
class ClosedForms:
    """Closed forms of the reduced model (symbols: link gains ``L_i`` and own rates ``a_s``)."""

    symbols: dict            # symbol -> (kind, x, y) with kind "link" or "own"
    values: dict             # symbol -> value at the reference state
    jacobian: sp.Matrix      # d(ds/dt)/d(stock), stocks x stocks
    equilibrium: dict        # stock -> value (numbers; linear solve)
    charpoly_coeffs: list    # numbers
    eigenvalues: np.ndarray
    hurwitz: list            # numbers
    G: sp.Expr               # 1 - det(I - A) in the symbols
    G_value: float
    thresholds: dict         # symbol -> value of the same sign at which G = 1 (or None)

    @property
    def verdict(self) -> str:
        """Stable, unstable or neutral at the reference values."""
        top = float(np.max(self.eigenvalues.real))
        tol = 1e-9 * max(1.0, float(np.max(np.abs(self.eigenvalues))))
        return "stable" if top < -tol else "unstable" if top > tol else "neutral"


def closed_forms(rm: ReducedModel) -> ClosedForms:
    """Jacobian, equilibrium, eigenvalues, Routh-Hurwitz, G and thresholds of the reduced model."""
    from aicarousel.stability import hurwitz_determinants

    stocks = rm.stocks
    syms, vals = {}, {}
    Ls = {}
    for i, ((x, y), v) in enumerate(sorted(rm.links.items())):
        s = sp.Symbol(f"L{i + 1}", real=True)
        Ls[(x, y)] = s
        syms[s], vals[s] = ("link", x, y), v
    As = {}
    for s_ in stocks:
        a = sp.Symbol(f"a_{s_}", real=True)
        As[s_] = a
        syms[a], vals[a] = ("own", s_, s_), rm.own_rate[s_]
    # path sums along kept links (chain rule through auxiliaries, in evaluation order)
    preds: dict[str, list[str]] = {}
    for (x, y) in rm.links:
        preds.setdefault(y, []).append(x)
    n = len(stocks)
    P = sp.zeros(n, n)
    for j, s1 in enumerate(stocks):
        d = {s1: sp.Integer(1)}
        for y in rm.auxiliaries:
            d[y] = sum((Ls[(x, y)] * d[x] for x in preds.get(y, []) if x in d), sp.Integer(0))
        for i, s2 in enumerate(stocks):
            P[i, j] = sum((Ls[(x, s2)] * d[x] for x in preds.get(s2, []) if x in d),
                          sp.Integer(0))
    J = P + sp.diag(*[As[s] for s in stocks])
    A = sp.Matrix(n, n, lambda i, j: -P[i, j] / As[stocks[i]])
    G = sp.expand(1 - (sp.eye(n) - A).det(method="berkowitz"))
    Jn = np.array(J.subs(vals).evalf().tolist(), dtype=float)
    f = np.array([rm.net_flow[s] for s in stocks])
    xr_ = np.array([rm.reference[s] for s in stocks])
    try:
        eq = dict(zip(stocks, xr_ - np.linalg.solve(Jn, f)))
    except np.linalg.LinAlgError:
        eq = {}
    coeffs = [float(c) for c in np.poly(Jn)]
    hur = [float(h) for h in hurwitz_determinants(coeffs)]
    thresholds = {}
    for s in syms:
        if s not in G.free_symbols:
            continue
        others = {k: v for k, v in vals.items() if k != s}
        sol = sp.solve(sp.Eq(G.subs(others), 1), s)
        real = []
        for z in sol:
            c = complex(sp.N(z))
            # the same sign as at the reference: a link or rate that changes sign is
            # another structure, not a threshold of this one
            if abs(c.imag) < 1e-12 and np.isfinite(c.real) and c.real * vals[s] > 0:
                real.append(c.real)
        thresholds[s] = min(real, key=lambda z: abs(z - vals[s])) if real else None
    return ClosedForms(symbols=syms, values=vals, jacobian=J, equilibrium=eq,
                       charpoly_coeffs=coeffs, eigenvalues=np.linalg.eigvals(Jn),
                       hurwitz=hur, G=G, G_value=float(G.subs(vals)), thresholds=thresholds)
