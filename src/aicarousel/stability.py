"""Equilibria, Jacobian, eigenvalues, Routh-Hurwitz conditions, loop gains and thresholds.

Two analyses, both derived from the model file through the IR and the sympy system:

* :func:`analyse_closed_form` (for small autonomous models such as ``models/core_loop.mdl``):
  the equilibrium in closed form, the symbolic Jacobian, the characteristic polynomial, the
  eigenvalues at the baseline parameters, the Hurwitz determinants (all > 0 <=> every
  eigenvalue has a negative real part), the loop gains as products of link gains, the total
  gain G of the reinforcing loops relative to the balancing loop through the same integrating
  stock, the critical value of each parameter at which G = 1, and, numerically, the value at
  which oscillation starts or stops (a complex dominant eigenvalue appears or disappears).
* :func:`analyse_along_baseline` (for the full carousel, which is non-autonomous and has no
  equilibrium): the Jacobian (finite differences on the lambdified sympy RHS) and its dominant
  eigenvalue along the baseline run, a balanced-growth test and the gains of named loops over
  time.

Loop gain convention
--------------------
A link x -> y has gain dy/dx (for an edge into a stock: +1 inflow, -1 outflow). A stock s
with self-adjustment has steady-state gain tau_s = -1 / (d rhs_s / d s) (its residence
time). A loop's gain is the product of its link gains and of the tau of its stocks. A loop
through an integrating stock c (d rhs_c / d c = 0, e.g. a cash balance) has no such gain; it
is measured per unit of the flow leaving c instead (the edges out of c are left out of the
product). The total gain is ``G = sum(gains of R loops through c) / sum(|gains of B loops
through c|)``: the reinforcing loops return G dollars for each dollar the balancing loop
takes, so the loop needs outside money while G < 1 and runs away when G > 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import sympy as sp

from aicarousel.errors import AicarouselError
from aicarousel.ir import ModelIR, build_ir, simulate
from aicarousel.loops import find_loops, load_named_loops, match_named_loops
from aicarousel.symbolic import SymbolicSystem, local_equations, to_sympy

__all__ = ["StabilityError", "NoEquilibriumError", "SingularJacobianError",
           "ClosedFormResult", "analyse_closed_form", "find_equilibria", "hurwitz_determinants",
           "analyse_along_baseline", "BaselineResult", "sync_core_loop", "carousel_values_for",
           "LAMBDA", "plain_words", "report_markdown", "report_latex", "baseline_markdown",
           "write_text_atomic"]

LAMBDA = sp.Symbol("lambda")


#: Most stocks for the closed-form analysis (symbolic Jacobian, characteristic polynomial,
#: Hurwitz determinants); larger models are analysed along their baseline instead.
MAX_CLOSED_FORM_STOCKS = 8


class StabilityError(AicarouselError):
    """The stability analysis cannot proceed (message says why and what to do)."""


class NoEquilibriumError(StabilityError):
    """The model has no equilibrium (at the given parameters)."""


class SingularJacobianError(StabilityError):
    """The Jacobian at the equilibrium is singular (equilibria not isolated)."""


# --------------------------------------------------------------------------------------------
# Core loop parameters from the carousel
# --------------------------------------------------------------------------------------------
_FROM_TAG = re.compile(r"^\s*\[from:\s*([^\]]+)\]")


def carousel_values_for(core: ModelIR, carousel: ModelIR) -> dict[str, tuple[str, float, float]]:
    """Constants of ``core`` tagged ``[from: X]`` with their carousel source and values.

    Returns
    -------
    dict
        ``py_name -> (carousel name, core value, carousel value)``.
    """
    out = {}
    for n, v in core.variables.items():
        m = _FROM_TAG.match(v.comment or "")
        if m and v.kind == "constant":
            src = m.group(1).strip()
            try:
                val = carousel.constants[carousel.resolve(src)]
            except KeyError:
                raise StabilityError(f"{core.path.name}: {v.real_name!r} says it comes from "
                                     f"{src!r}, which is not a constant of "
                                     f"{carousel.path.name}; fix the [from: ...] tag") from None
            out[n] = (src, float(v.expr.value), float(val))
    return out


def sync_core_loop(core_file: Path, carousel_file: Path) -> list[str]:
    """Rewrite the ``[from: X]`` constants of the core loop model with the carousel's values.

    Writes atomically (temp file, then rename). Returns the names changed.
    """
    core, car = build_ir(core_file), build_ir(carousel_file)
    vals = carousel_values_for(core, car)
    text = Path(core_file).read_text(encoding="utf-8")
    changed = []
    for n, (src, mine, theirs) in vals.items():
        if mine == theirs:
            continue
        real = core.variables[n].real_name
        pat = re.compile(r"(^" + re.escape(real) + r"\s*=\s*\n?\s*)([-+0-9.eE]+)", re.M)
        text, k = pat.subn(lambda m: m.group(1) + repr(theirs).rstrip("0").rstrip(".")
                           if "." in repr(theirs) else m.group(1) + repr(theirs), text, count=1)
        if k:
            changed.append(real)
    if changed:
        from .atomic import write_text
        write_text(core_file, text)
    return changed


# --------------------------------------------------------------------------------------------
# Equilibria and Routh-Hurwitz
# --------------------------------------------------------------------------------------------
def find_equilibria(system: SymbolicSystem, numeric: bool = False) -> list[dict]:
    """Equilibria of dx/dt = f(x, p): ``[{state symbol: expr}]``.

    Solved with sympy for rational right-hand sides (closed form in the parameters);
    otherwise (or with ``numeric=True``) with scipy at the baseline parameters from the
    baseline run's final state.

    Raises
    ------
    NoEquilibriumError
        If no equilibrium exists or the RHS depends on time.
    SingularJacobianError
        If the equilibria form a continuum (not isolated).
    """
    name = system.ir.path.name
    if any(system.t in e.free_symbols for e in system.rhs):
        raise NoEquilibriumError(
            f"model {name} has no equilibrium: its equations depend on Time (STEP, PULSE, "
            "RAMP or Time itself), so it is not autonomous; use the analysis along the "
            "baseline run (aicarousel stability --along-baseline)")
    rational = all(e.is_rational_function(*system.states) and not e.has(sp.Piecewise, sp.Min,
                                                                          sp.Max)
                   for e in system.rhs)
    if rational and not numeric:
        sols = sp.solve(system.rhs, system.states, dict=True)
        if not sols:
            raise NoEquilibriumError(
                f"model {name} has no equilibrium: dx/dt = 0 has no solution for any "
                "parameter values (a stock always grows or shrinks)")
        for sol in sols:
            missing = [s for s in system.states if s not in sol]
            if missing:
                raise SingularJacobianError(
                    f"model {name}: the equilibria are not isolated ({', '.join(map(str, missing))} "
                    "can take any value), so the Jacobian there is singular and the "
                    "eigenvalues cannot decide stability; add a stock that anchors them")
        return sols
    return [_numeric_equilibrium(system)]


def _numeric_equilibrium(system: SymbolicSystem) -> dict:
    from scipy.optimize import root

    ir = system.ir
    f = system.lambdify()
    p = system.param_vector()
    out = simulate(ir)
    x0 = np.array([out[s][-1] for s in ir.stocks])
    best = None
    for start in (x0, np.array([out[s][0] for s in ir.stocks])):
        r = root(lambda x: f(ir.time.final, x, p), start, method="hybr")
        res = np.max(np.abs(f(ir.time.final, r.x, p)))
        if best is None or res < best[1]:
            best = (r.x, res)
    x, res = best
    scale = max(1.0, float(np.max(np.abs(x))))
    if not np.isfinite(res) or res > 1e-8 * scale:
        raise NoEquilibriumError(
            f"model {ir.path.name} has no equilibrium near its baseline run (smallest "
            f"|dx/dt| found {res:.3g}); use the analysis along the baseline run")
    return {s: sp.Float(v) for s, v in zip(system.states, x)}


def hurwitz_determinants(coeffs: list) -> list:
    """Hurwitz determinants Delta_1..Delta_n of ``a0*l^n + a1*l^(n-1) + ... + an`` (a0 > 0).

    All roots have negative real parts iff every Delta_k > 0 (Routh-Hurwitz).
    """
    n = len(coeffs) - 1
    a = list(coeffs)

    def coef(i):
        return a[i] if 0 <= i <= n else 0

    dets = []
    for k in range(1, n + 1):
        m = sp.Matrix(k, k, lambda i, j: coef(2 * (j + 1) - (i + 1)))
        dets.append(sp.factor(m.det()))
    return dets


# --------------------------------------------------------------------------------------------
# Closed-form analysis
# --------------------------------------------------------------------------------------------
@dataclass
class ClosedFormResult:
    """Everything :func:`analyse_closed_form` derives (symbolic and at baseline)."""

    system: SymbolicSystem
    equilibrium: dict
    equilibrium_values: dict
    jacobian: sp.Matrix
    charpoly: sp.Expr
    charpoly_coeffs: list
    eigenvalues: np.ndarray
    hurwitz: list
    hurwitz_values: list
    loops: list = field(default_factory=list)       # (id, polarity, variables, gain, value)
    cut_stock: str | None = None
    G: sp.Expr | None = None
    G_value: float | None = None
    thresholds: dict = field(default_factory=dict)  # param -> (expr or None, value or None)
    stability_bounds: dict = field(default_factory=dict)   # param -> value or None (numeric)
    oscillation_bounds: dict = field(default_factory=dict)  # param -> value or None
    multiplier: sp.Expr | None = None
    other_equilibria: list = field(default_factory=list)  # real equilibria not analysed

    @property
    def stable(self) -> bool:
        """True when every eigenvalue has a negative real part at baseline."""
        return bool(np.all(self.eigenvalues.real < 0))

    @property
    def verdict(self) -> str:
        """``"stable"``, ``"unstable"`` or ``"neutral"`` at baseline.

        Neutral: the largest real part is zero to rounding (relative 1e-9 of the largest
        eigenvalue modulus), so small deviations neither decay nor grow: a sustained
        oscillation when the dominant pair is imaginary (a harmonic oscillator), a drift along a
        conserved quantity when it is zero. Linearisation alone cannot say more there.
        """
        ev = self.eigenvalues
        tol = 1e-9 * max(1.0, float(np.max(np.abs(ev)))) if ev.size else 0.0
        top = float(np.max(ev.real)) if ev.size else 0.0
        if top < -tol:
            return "stable"
        if top > tol:
            return "unstable"
        return "neutral"

    @property
    def dominant(self) -> complex:
        """Eigenvalue with the largest real part (1/time unit)."""
        return complex(self.eigenvalues[np.argmax(self.eigenvalues.real)])

    def subs_values(self) -> dict:
        """Baseline parameter substitution dict (symbol -> value)."""
        return {self.system.params[n]: sp.Float(v) if not float(v).is_integer()
                else sp.Integer(int(v)) for n, v in self.system.param_values.items()}


def analyse_closed_form(model=None, values: Mapping[str, float] | None = None,
                        scan_factor: float = 10.0) -> ClosedFormResult:
    """Closed-form stability analysis of a small autonomous model.

    Parameters
    ----------
    model : path or ModelIR, optional
        Default ``models/core_loop.mdl``.
    values : mapping, optional
        Baseline parameter values overriding the model's (model names or py_names).
    scan_factor : float
        Numeric thresholds are searched within [p / scan_factor, p * scan_factor].

    Returns
    -------
    ClosedFormResult

    Raises
    ------
    NoEquilibriumError, SingularJacobianError, aicarousel.errors.UnsupportedFeatureError
        With messages naming the model and the reason.
    """
    from aicarousel import paths

    ir = model if isinstance(model, ModelIR) else build_ir(model or paths.CORE_LOOP_FILE)
    if len(ir.stocks) > MAX_CLOSED_FORM_STOCKS:
        raise StabilityError(
            f"model {ir.path.name} has {len(ir.stocks)} stocks (subscript elements and delay "
            f"stages count); closed forms are for at most {MAX_CLOSED_FORM_STOCKS} (the "
            "characteristic polynomial of a larger symbolic Jacobian does not finish); use "
            "the analysis along the baseline run (aicarousel stability --along-baseline)")
    system = to_sympy(ir, values=values)
    if values:
        for k, v in values.items():
            n = ir.resolve(k)
            if n in system.param_values:
                system.param_values[n] = float(v)
    sols = find_equilibria(system)
    # prefer an equilibrium with non-negative stocks at baseline
    subs = {system.params[n]: v for n, v in system.param_values.items()}
    def _vals(sol):
        return {s.name: complex(sp.N(sol[s].subs(subs))) for s in system.states}
    def _rank(cand):  # 0: every stock positive, 1: non-negative, 2: otherwise
        vv = _vals(cand).values()
        if not all(abs(z.imag) < 1e-12 for z in vv):
            return 3
        return 0 if all(z.real > 1e-12 for z in vv) else 1 if all(
            z.real >= -1e-12 for z in vv) else 2

    # prefer an interior equilibrium (every stock positive), then a non-negative one: the
    # trivial equilibrium of Lotka-Volterra (no prey, no predators) is not the one of interest
    sol = min(sols, key=_rank)
    eq_vals = {k: float(z.real) for k, z in _vals(sol).items()}
    J = system.jacobian()
    Jeq = sp.simplify(J.subs(sol))
    Jnum = np.array(sp.N(Jeq.subs(subs)).tolist(), dtype=complex).real.astype(float)
    if abs(np.linalg.det(Jnum)) < 1e-12 * max(1.0, np.max(np.abs(Jnum))) ** len(Jnum):
        raise SingularJacobianError(
            f"model {ir.path.name}: the Jacobian at the equilibrium is singular at the "
            "baseline parameters (a zero eigenvalue), so linear stability is undecided; move "
            "a parameter off the threshold")
    eig = np.linalg.eigvals(Jnum)
    cp = sp.Poly((LAMBDA * sp.eye(J.shape[0]) - Jeq).det(), LAMBDA)
    coeffs = [sp.factor(c) for c in cp.all_coeffs()]
    hur = hurwitz_determinants(coeffs)
    hur_vals = [float(sp.N(h.subs(subs))) for h in hur]
    res = ClosedFormResult(system=system, equilibrium=sol, equilibrium_values=eq_vals,
                           jacobian=Jeq, charpoly=sp.factor(cp.as_expr()),
                           charpoly_coeffs=coeffs, eigenvalues=eig, hurwitz=hur,
                           hurwitz_values=hur_vals)
    res.other_equilibria = [{k: float(z.real) for k, z in _vals(c).items()} for c in sols
                            if c is not sol and _rank(c) < 3]
    _loop_gains(res, sol, subs)
    _numeric_bounds(res, scan_factor)
    return res


def _loop_gains(res: ClosedFormResult, sol: dict, subs: dict) -> None:
    system = res.system
    ir = system.ir
    local = local_equations(ir, system.param_names)
    rhs = dict(zip(system.state_names, system.rhs))
    dself = {s: sp.simplify(sp.diff(rhs[s], sp.Symbol(s, real=True)).subs(sol))
             for s in system.state_names}
    integrators = [s for s, d in dself.items() if d == 0]
    point = (ir.time.initial, {s: res.equilibrium_values[s] for s in ir.stocks})
    rep = find_loops(ir, point=point)
    try:
        match_named_loops(ir, rep, load_named_loops())
        names = {tuple(v["shortest"]): k for k, v in rep.named.items()}
    except FileNotFoundError:
        names = {}
    cut = integrators[0] if len(integrators) == 1 else None
    res.cut_stock = cut
    r_sum, b_sum = sp.Integer(0), sp.Integer(0)
    for i, lp in enumerate(rep.loops):
        vs = lp.variables
        g = sp.Integer(1)
        ok = True
        for k in range(len(vs)):
            x, y = vs[k], vs[(k + 1) % len(vs)]
            if cut is not None and x == cut:
                continue
            g *= sp.diff(local[y], sp.Symbol(x, real=True))
        for s in vs:
            if ir.variables[s].kind != "stock" or s == cut:
                continue
            if dself[s] == 0:
                ok = False
            else:
                g *= -1 / dself[s]
        g = sp.simplify(g.subs({sp.Symbol(s, real=True): sol.get(sp.Symbol(s, real=True),
                                                                   sp.Symbol(s, real=True))
                                for s in system.state_names}))
        if not ok or (cut is None and any(ir.variables[s].kind == "stock" and dself[s] == 0
                                          for s in vs)):
            g = None
        val = float(sp.N(g.subs(subs))) if g is not None else None
        real = [ir.variables[v].real_name for v in vs]
        lid = names.get(tuple(real), f"L{i + 1}")
        res.loops.append((lid, lp.polarity, real, g, val))
        if cut is not None and cut in vs and g is not None:
            if val > 0:
                r_sum += g
            elif val < 0:
                b_sum += -g
    if cut is not None and b_sum != 0:
        res.G = sp.simplify(r_sum / b_sum)
        res.G_value = float(sp.N(res.G.subs(subs)))
        res.multiplier = sp.simplify(1 / (1 - res.G))
        for n, sym in system.params.items():
            if sym not in res.G.free_symbols:
                continue
            sols = sp.solve(sp.Eq(res.G, 1), sym)
            p0 = system.param_values[n]
            best = (None, None)
            for s_ in sols:
                z = complex(sp.N(s_.subs({k: v for k, v in subs.items() if k != sym})))
                if abs(z.imag) > 1e-12 or not np.isfinite(z.real) or z.real <= 0:
                    continue
                # the root nearest the baseline value (in ratio)
                if best[1] is None or (p0 > 0 and abs(np.log(z.real / p0))
                                       < abs(np.log(best[1] / p0))):
                    best = (s_, z.real)
            res.thresholds[n] = best


def _numeric_bounds(res: ClosedFormResult, factor: float) -> None:
    """Where the max real part of the eigenvalues crosses 0 and where oscillation starts."""
    system = res.system
    J = res.system.jacobian()
    args = list(system.params.values())
    if any(s in J.free_symbols for s in system.states):
        J = J.subs(res.equilibrium)
    jf = sp.lambdify(args, J, modules="numpy")
    base = system.param_vector()

    def eig(i, v):
        p = base.copy()
        p[i] = v
        with np.errstate(all="ignore"):
            m = np.array(jf(*p), dtype=float)
        if not np.all(np.isfinite(m)):
            return None
        return np.linalg.eigvals(m)

    def stab(ev):
        return float(np.max(ev.real))

    def osc(ev):
        d = ev[np.argmax(ev.real)]
        return abs(d.imag) > 1e-9

    for i, n in enumerate(system.param_names):
        p0 = base[i]
        if p0 == 0 or not any(system.params[n] in e.free_symbols for e in J):
            continue
        grid = np.concatenate([p0 * np.logspace(-np.log10(factor), 0, 40)[:-1],
                               p0 * np.logspace(0, np.log10(factor), 40)])
        evs = [eig(i, v) for v in grid]
        k0 = 39  # index of p0 in grid
        for key, fn, store in (("stab", lambda ev: stab(ev) < 0, res.stability_bounds),
                               ("osc", osc, res.oscillation_bounds)):
            ref = evs[k0]
            if ref is None:
                continue
            state0 = fn(ref)
            found = None
            # nearest change on either side, refined by bisection
            for direction in (1, -1):
                k = k0
                while 0 <= k + direction < len(grid):
                    e = evs[k + direction]
                    if e is not None and fn(e) != state0:
                        lo, hi = grid[k], grid[k + direction]
                        for _ in range(60):
                            mid = 0.5 * (lo + hi)
                            em = eig(i, mid)
                            if em is None:
                                break
                            if fn(em) == state0:
                                lo = mid
                            else:
                                hi = mid
                        cand = 0.5 * (lo + hi)
                        if found is None or abs(np.log(cand / p0)) < abs(np.log(found / p0)):
                            found = cand
                        break
                    k += direction
            store[n] = found


# --------------------------------------------------------------------------------------------
# Along the baseline run (full carousel)
# --------------------------------------------------------------------------------------------
@dataclass
class BaselineResult:
    """Jacobian eigenvalues and loop gains along the baseline run."""

    time: np.ndarray
    dominant: np.ndarray            # complex, 1/time unit
    dominant_stock: list            # stock with the largest share of the dominant eigenvector
    growth_rates: dict              # stock -> d ln x / dt over the last years
    balanced_growth: str            # plain-words verdict
    equilibrium: str                # plain-words verdict
    loop_gains: dict                # loop id -> array over loop_times (None where inactive)
    loop_polarity: dict             # loop id -> list of polarity strings
    loop_times: np.ndarray


def analyse_along_baseline(model=None, params: Mapping | None = None,
                           loop_every: float = 1.0,
                           integrator_horizon: float = 1.0,
                           progress: bool = False) -> BaselineResult:
    """Numerical stability analysis of a (large, non-autonomous) model along its baseline.

    Parameters
    ----------
    model : path or ModelIR, optional
        Default the carousel.
    params : mapping, optional
        Constant overrides.
    loop_every : float
        Spacing of the times at which named-loop gains are evaluated (time units).
    integrator_horizon : float
        Loops through a pure integrator (a cash stock) get that stock's gain over this horizon
        (time units) instead of a residence time, so their gain is per ``integrator_horizon``.
    progress : bool
        Show progress bars (loop enumeration and loop gains take a minute on the carousel).

    Returns
    -------
    BaselineResult
    """
    from scipy.optimize import root

    from aicarousel import paths
    from aicarousel.loops import dependency_graph, link_gains, stock_residence_times

    ir = model if isinstance(model, ModelIR) else build_ir(model or paths.MODEL_FILE)
    system = to_sympy(ir)
    f = system.lambdify()
    p = system.param_vector(params)
    out = simulate(ir, params=params)
    tt = out["time"]
    X = np.array([out[s] for s in ir.stocks])  # (n, T)
    n = len(ir.stocks)
    # stocks in the feedback structure (on some cycle); accounting stocks that feed nothing
    # back (e.g. cumulative equity) only add zero eigenvalues and are left out
    import networkx as nx

    from aicarousel.loops import dependency_graph as _dg
    g0 = _dg(ir)
    fb = set()
    for comp in nx.strongly_connected_components(g0):
        if len(comp) > 1 or any(g0.has_edge(c, c) for c in comp):
            fb |= comp
    keep = np.array([s in fb for s in ir.stocks], dtype=bool)
    dom = np.zeros(len(tt), dtype=complex)
    dom_stock = []
    if not keep.any():
        # no stock on a feedback loop: the Jacobian's graph is acyclic, so it is nilpotent and
        # every eigenvalue is exactly 0 (the stocks only accumulate what flows in)
        dom_stock = ["none (no stock is on a feedback loop)"] * len(tt)
    for k, t in enumerate(tt if keep.any() else []):
        x = X[:, k]
        h = 1e-6 * np.maximum(np.abs(x), 1.0)
        xp = x[:, None] + np.diag(h)
        xm = x[:, None] - np.diag(h)
        J = (f(np.full(n, t), xp, np.repeat(p[:, None], n, 1))
             - f(np.full(n, t), xm, np.repeat(p[:, None], n, 1))) / (2 * h)[None, :]
        J = J[np.ix_(keep, keep)]
        w, v = np.linalg.eig(J)
        i = int(np.argmax(w.real))
        dom[k] = w[i]
        # stock most involved in the dominant mode (scaled by the state size)
        comp = np.abs(v[:, i]) / np.maximum(np.abs(x[keep]), 1e-9)
        kept = [s for s, kk in zip(ir.stocks, keep) if kk]
        dom_stock.append(ir.variables[kept[int(np.argmax(comp))]].real_name)
    # balanced growth: common growth rate over the last quarter of the run
    k0 = int(0.75 * len(tt))
    span = tt[-1] - tt[k0]
    rates = {}
    for s in ir.stocks:
        a, b = out[s][k0], out[s][-1]
        rates[ir.variables[s].real_name] = (float(np.log(b / a) / span)
                                            if a > 0 and b > 0 else float("nan"))
    finite = np.array([r for r in rates.values() if np.isfinite(r)])
    if finite.size and np.ptp(finite) < 0.1 * max(np.max(np.abs(finite)), 1e-3):
        bgp = (f"balanced growth: every positive stock grows at about {np.mean(finite):.3g} "
               "per time unit at the end of the run")
    else:
        lo, hi = (float(np.min(finite)), float(np.max(finite))) if finite.size else (0, 0)
        bgp = (f"no balanced-growth path within the horizon: stock growth rates over the "
               f"last quarter of the run range from {lo:.3g} to {hi:.3g} per time unit")
    # equilibrium with time frozen at the final time
    r = root(lambda x: f(tt[-1], x, p), X[:, -1], method="hybr")
    resid = float(np.max(np.abs(f(tt[-1], r.x, p))))
    if r.success and resid < 1e-8 * max(1.0, float(np.max(np.abs(r.x)))) \
            and not any(system.t in e.free_symbols for e in system.rhs):
        eq = "equilibrium found near the final state"
    elif any(system.t in e.free_symbols for e in system.rhs):
        eq = ("no equilibrium: the model is not autonomous (its equations depend on Time: "
              "exogenous growth, STEP and PULSE inputs)"
              + ("; with Time frozen at the final time a fixed point exists"
                 if r.success and resid < 1e-6 else
                 f"; even with Time frozen at the final time no fixed point was found "
                 f"(smallest |dx/dt| {resid:.3g})"))
    else:
        eq = f"no equilibrium found near the baseline (smallest |dx/dt| {resid:.3g})"
    # named loop gains over time
    g = dependency_graph(ir)
    named = load_named_loops()
    loop_times = np.arange(tt[0], tt[-1] + 1e-9, loop_every)
    lg: dict = {}
    lpol: dict = {}
    from aicarousel.loops import FeedbackLoop  # noqa: F401
    keys = {}
    for lid, spec in named.items():
        kv = spec.get("key_variables", {})
        kv = kv.get(ir.path.stem) if isinstance(kv, dict) else kv
        if kv:
            try:
                keys[lid] = {ir.resolve(k) for k in kv}
            except KeyError:
                continue
    import networkx as nx
    from tqdm import tqdm

    cand: dict = {lid: [] for lid in keys}
    if keys:  # every cycle is enumerated only when some named loop must be matched
        for c in tqdm(nx.simple_cycles(g), desc="enumerating loops", unit=" loops",
                      disable=not progress or not keys, leave=False, mininterval=1.0):
            for lid, ks in keys.items():
                if ks <= set(c):
                    cand[lid].append(c)
        cand = {lid: sorted(cs, key=len) for lid, cs in cand.items()}
    for lid in keys:
        lg[lid], lpol[lid] = [], []
    for t in tqdm(loop_times if keys else [], desc="named-loop gains", unit=" times",
                  disable=not progress or not keys, leave=False):
        k = int(np.argmin(np.abs(tt - t)))
        state = {s: float(out[s][k]) for s in ir.stocks}
        gains = link_gains(ir, float(tt[k]), state, params, g)
        taus = stock_residence_times(ir, float(tt[k]), state, params)
        for lid, cyc_list in cand.items():
            best = None
            for cyc in cyc_list:
                prod = 1.0
                for i in range(len(cyc)):
                    prod *= gains[(cyc[i], cyc[(i + 1) % len(cyc)])]
                if prod == 0:
                    continue
                for s in cyc:
                    if ir.variables[s].kind == "stock":
                        tau = taus[s]
                        prod *= tau if np.isfinite(tau) and tau > 0 else integrator_horizon
                best = prod
                break  # shortest active cycle
            lg[lid].append(best)
            lpol[lid].append("0" if best is None else ("R" if best > 0 else "B"))
    return BaselineResult(time=tt, dominant=dom, dominant_stock=dom_stock, growth_rates=rates,
                          balanced_growth=bgp, equilibrium=eq, loop_gains=lg,
                          loop_polarity=lpol, loop_times=loop_times)


# --------------------------------------------------------------------------------------------
# Plain words and reports
# --------------------------------------------------------------------------------------------
def _fmt(x, digits=4) -> str:
    if x is None:
        return "none in range"
    if isinstance(x, complex):
        if abs(x.imag) < 1e-12:
            return f"{x.real:.{digits}g}"
        return f"{x.real:.{digits}g} {'+' if x.imag >= 0 else '-'} {abs(x.imag):.{digits}g}i"
    return f"{float(x):.{digits}g}"


def plain_words(res: ClosedFormResult) -> list[str]:
    """The stability conditions of a closed-form result, as sentences."""
    ir = res.system.ir
    rn = {n: v.real_name for n, v in ir.variables.items()}
    lines = []
    eq = ", ".join(f"{rn[k]} = {_fmt(v)}" for k, v in res.equilibrium_values.items())
    lines.append(f"Equilibrium at baseline parameters: {eq}.")
    if res.other_equilibria:
        others = "; ".join(", ".join(f"{rn[k]} = {_fmt(v)}" for k, v in e.items())
                           for e in res.other_equilibria)
        lines.append(f"Other equilibria (not analysed; the one above is preferred because "
                     f"its stocks are all positive or non-negative): {others}.")
    d = res.dominant
    verdict = res.verdict
    osc = abs(d.imag) > 1e-9
    if verdict == "neutral":
        kind = ("a sustained oscillation (neither damped nor growing)" if osc else
                "neither decay nor growth (a zero eigenvalue: a conserved quantity or a pure "
                "integrator)")
    else:
        kind = ("a damped oscillation" if osc and d.real < 0 else
                "a growing oscillation" if osc else
                "monotonic decay" if d.real < 0 else "monotonic growth")
    per = f", period {2 * np.pi / abs(d.imag):.3g} {ir.variables.get('time_step').units or 'time units'}" \
        if abs(d.imag) > 1e-9 else ""
    lines.append(f"Eigenvalues: {', '.join(_fmt(complex(e)) for e in res.eigenvalues)} per "
                 f"time unit. The equilibrium is {verdict.upper()}"
                 + (" (linearly: neither attracting nor repelling)" if verdict == "neutral"
                    else "") + ": "
                 f"the dominant eigenvalue {_fmt(d)} gives {kind}{per}.")
    ok = all(v > 0 for v in res.hurwitz_values)
    lines.append("Routh-Hurwitz: the Hurwitz determinants are "
                 + ", ".join(_fmt(v) for v in res.hurwitz_values)
                 + (" - all positive, so every eigenvalue has a negative real part."
                    if ok else " - not all positive, so some eigenvalue has a non-negative "
                    "real part."))
    for lid, pol, real, g, val in res.loops:
        if lid.startswith("L"):
            continue
        lines.append(f"Loop {lid} ({'reinforcing' if pol == 'R' else 'balancing'}: "
                     f"{' -> '.join(real)}): gain {_fmt(val)}"
                     + (f" per unit of the flow out of {rn[res.cut_stock]}"
                        if res.cut_stock and rn[res.cut_stock] in real else "") + ".")
    if res.G is not None:
        lines.append(
            f"Total reinforcing gain G = {_fmt(res.G_value)} (reinforcing loops per unit the "
            f"balancing loop takes through {rn[res.cut_stock]}). "
            + ("G < 1: the loop needs outside money and settles; each unit of outside inflow "
               f"is multiplied by 1/(1-G) = {_fmt(1 / (1 - res.G_value))}."
               if res.G_value < 1 else
               "G > 1: the loop runs away on its own (no outside money needed)."))
        for n, (expr, val) in res.thresholds.items():
            p0 = res.system.param_values[n]
            lines.append(f"  G = 1 when {rn[n]} = {_fmt(val)} (baseline {_fmt(p0)}).")
    for n, v in res.oscillation_bounds.items():
        if v is not None:
            lines.append(f"  The dominant mode {'stops' if abs(res.dominant.imag) > 1e-9 else 'starts'}"
                         f" oscillating when {rn[n]} crosses {_fmt(v)} (baseline "
                         f"{_fmt(res.system.param_values[n])}).")
    return lines


def _latex_name(n: str) -> str:
    return r"\mathit{" + n.replace("_", r"\_") + "}"


def report_markdown(res: ClosedFormResult) -> str:
    """Markdown report of a closed-form analysis (formulas in LaTeX math)."""
    ir = res.system.ir
    rn = {n: v.real_name for n, v in ir.variables.items()}
    names = {s: sp.Symbol(_latex_name(str(s))) for s in
             list(res.system.states) + list(res.system.params.values())}

    def L(e):
        return sp.latex(sp.sympify(e).subs(names) if hasattr(e, "subs") else e)

    out = [f"# Stability of {ir.path.name}", "",
           f"Model hash (sha256): `{ir.sha256[:16]}`. Derived automatically from the model file "
           "by `aicarousel.stability` (sympy); nothing below was typed by hand.", "",
           "## In plain words", ""]
    out += [f"- {s.strip()}" for s in plain_words(res)]
    out += ["", "## Equilibrium", ""]
    for s in res.system.states:
        out.append(f"- {rn[s.name]}: $${L(res.equilibrium[s])}$$ = "
                   f"{_fmt(res.equilibrium_values[s.name])}")
    out += ["", "## Jacobian at the equilibrium", "",
            "State order: " + ", ".join(rn[s] for s in res.system.state_names) + ".", "",
            f"$$J = {L(res.jacobian)}$$", "",
            "## Characteristic polynomial", "",
            f"$$p(\\lambda) = {L(sp.expand(sum(c * LAMBDA ** (len(res.charpoly_coeffs) - 1 - i) for i, c in enumerate(res.charpoly_coeffs))))}$$",
            "", "Eigenvalues at baseline: "
            + ", ".join(_fmt(complex(e)) for e in res.eigenvalues) + ".", "",
            "## Routh-Hurwitz conditions (all must be > 0)", ""]
    for k, (h, v) in enumerate(zip(res.hurwitz, res.hurwitz_values), 1):
        out.append(f"- $\\Delta_{k} = {L(h)}$ = {_fmt(v)} ({'holds' if v > 0 else 'FAILS'})")
    out += ["", "## Feedback loops and gains", "",
            "| loop | polarity | variables | gain (closed form) | gain |", "|---|---|---|---|---|"]
    for lid, pol, real, g, val in res.loops:
        out.append(f"| {lid} | {pol} | {' -> '.join(real)} | "
                   f"{'$' + L(g) + '$' if g is not None else '-'} | {_fmt(val)} |")
    if res.G is not None:
        out += ["", f"Total gain $G = {L(res.G)}$ = {_fmt(res.G_value)}; multiplier "
                f"$1/(1-G)$ = {_fmt(1 / (1 - res.G_value))}.", "",
                "## Thresholds", "", "| parameter | baseline | G = 1 at (closed form) | value | "
                "stability lost at (numeric) | oscillation switches at (numeric) |",
                "|---|---|---|---|---|---|"]
        for n in res.system.param_names:
            if n not in res.thresholds and res.oscillation_bounds.get(n) is None:
                continue
            expr, val = res.thresholds.get(n, (None, None))
            out.append(f"| {rn[n]} | {_fmt(res.system.param_values[n])} | "
                       f"{'$' + L(expr) + '$' if expr is not None else '-'} | {_fmt(val)} | "
                       f"{_fmt(res.stability_bounds.get(n))} | "
                       f"{_fmt(res.oscillation_bounds.get(n))} |")
    return "\n".join(out) + "\n"


def report_latex(res: ClosedFormResult) -> str:
    """LaTeX fragment (no preamble) of a closed-form analysis, for \\input in a paper."""
    ir = res.system.ir
    rn = {n: v.real_name for n, v in ir.variables.items()}
    names = {s: sp.Symbol(_latex_name(str(s))) for s in
             list(res.system.states) + list(res.system.params.values())}

    def L(e):
        return sp.latex(sp.sympify(e).subs(names))

    from aicarousel.tables import latex_escape as esc

    out = [f"% Stability of {esc(ir.path.name)} (model sha256 {ir.sha256[:16]}), "
           "generated by aicarousel.stability; do not edit.",
           r"\paragraph{Equilibrium.}", r"\begin{align*}"]
    out += [f"{_latex_name(s.name)}^* &= {L(res.equilibrium[s])} "
            f"= {_fmt(res.equilibrium_values[s.name])}\\\\" for s in res.system.states]
    out += [r"\end{align*}", r"\paragraph{Jacobian.}", r"\[", f"J = {L(res.jacobian)}", r"\]",
            r"\paragraph{Characteristic polynomial.}", r"\[",
            f"p(\\lambda) = {L(sp.expand(sum(c * LAMBDA ** (len(res.charpoly_coeffs) - 1 - i) for i, c in enumerate(res.charpoly_coeffs))))}",
            r"\]", "Eigenvalues at baseline: "
            + ", ".join(f"${_fmt(complex(e))}$" for e in res.eigenvalues) + ".",
            r"\paragraph{Routh--Hurwitz conditions.}", r"\begin{align*}"]
    out += [f"\\Delta_{k} &= {L(h)} = {_fmt(v)} > 0\\\\"
            for k, (h, v) in enumerate(zip(res.hurwitz, res.hurwitz_values), 1)]
    out += [r"\end{align*}"]
    if res.G is not None:
        out += [r"\paragraph{Loop gain.}", r"\[", f"G = {L(res.G)} = {_fmt(res.G_value)}", r"\]",
                r"\begin{tabular}{lrr}", r"\hline parameter & baseline & $G=1$ at\\ \hline"]
        out += [f"{esc(rn[n])} & {_fmt(res.system.param_values[n])} & {_fmt(v)}\\\\"
                for n, (e, v) in res.thresholds.items()]
        out += [r"\hline", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def baseline_markdown(b: BaselineResult, ir: ModelIR) -> str:
    """Markdown report of :func:`analyse_along_baseline`."""
    out = [f"# {ir.path.name} along its baseline run", "",
           f"Model hash (sha256): `{ir.sha256[:16]}`.", "",
           f"- Equilibrium: {b.equilibrium}.", f"- Growth: {b.balanced_growth}.", "",
           "## Dominant eigenvalue of the Jacobian (finite differences on the sympy RHS)", "",
           "| time | dominant eigenvalue (1/time) | most involved stock |", "|---|---|---|"]
    step = max(1, int(round(1.0 / (b.time[1] - b.time[0])))) if len(b.time) > 1 else 1
    for k in range(0, len(b.time), step):
        out.append(f"| {b.time[k]:g} | {_fmt(complex(b.dominant[k]))} | {b.dominant_stock[k]} |")
    out += ["", "## Named loop gains over time", "",
            "Gain of the shortest loop through the named loop's key variables that is active "
            "(every link gain non-zero) at that time; stocks count by their residence time, "
            "pure integrators (cash) over one time unit; 0 = no active loop.", "",
            "| time | " + " | ".join(b.loop_gains) + " |", "|---|" + "---|" * len(b.loop_gains)]
    for i, t in enumerate(b.loop_times):
        out.append(f"| {t:g} | " + " | ".join(
            ("0" if v[i] is None else f"{v[i]:.3g} ({b.loop_polarity[k][i]})")
            for k, v in b.loop_gains.items()) + " |")
    out += ["", "Stock growth rates over the last quarter of the run (1/time):", ""]
    out += [f"- {k}: {_fmt(v, 3)}" for k, v in b.growth_rates.items()]
    return "\n".join(out) + "\n"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`aicarousel.atomic.write_text`)."""
    from .atomic import write_text
    write_text(path, text)


# --------------------------------------------------------------------------------------------
# Stability map
# --------------------------------------------------------------------------------------------
#: Outcome classes of :func:`stability_map` (code -> label).
OUTCOMES = {0: "decay", 1: "damped oscillation", 2: "growth", 3: "growing oscillation"}


def stability_map(res: ClosedFormResult, xparam: str, yparam: str, n: int = 41,
                  xrange: tuple[float, float] | None = None,
                  yrange: tuple[float, float] | None = None, years: float = 100.0,
                  dt: float | None = None):
    """Simulated outcome over a plane of two parameters, with the sympy G = 1 curve.

    Every grid point is simulated from the model's initial state by Euler integration of the
    lambdified sympy RHS (proven equal to PySD's derivatives), all points at once. Outcome:
    growth when the distance from the point's equilibrium grows over the second half of the
    run, oscillation when the backlog-like first stock's rate of change flips sign at least
    three times.

    Parameters
    ----------
    res : ClosedFormResult
    xparam, yparam : str
        Parameters (model names or py_names) on the axes.
    n : int
        Grid points per axis.
    xrange, yrange : tuple, optional
        Axis ranges (default 0.25x to 2.5x the baseline value).
    years : float
        Simulated horizon (time units).
    dt : float, optional
        Euler step (default the model's TIME STEP).

    Returns
    -------
    xarray.Dataset
        ``outcome`` (code, see :data:`OUTCOMES`), ``growth_rate`` (1/time), ``eig_real``,
        ``eig_complex`` on (y, x); ``g1_x``/``g1_y``: the G = 1 curve (y as a function of x).
    """
    import xarray as xr

    system = res.system
    ir = system.ir
    xp, yp = ir.resolve(xparam), ir.resolve(yparam)
    names = system.param_names
    ix, iy = names.index(xp), names.index(yp)
    base = system.param_vector()
    xr_ = xrange or (0.25 * base[ix], 2.5 * base[ix])
    yr_ = yrange or (0.25 * base[iy], 2.5 * base[iy])
    xs = np.linspace(*xr_, n)
    ys = np.linspace(*yr_, n)
    X, Y = np.meshgrid(xs, ys)
    P = np.repeat(base[:, None], X.size, axis=1)
    P[ix], P[iy] = X.ravel(), Y.ravel()
    # equilibrium and eigenvalues at every grid point
    eqf = sp.lambdify(list(system.params.values()),
                      [res.equilibrium[s] for s in system.states], modules="numpy")
    Jf = sp.lambdify(list(system.params.values()), system.jacobian().subs(res.equilibrium),
                     modules="numpy")
    with np.errstate(all="ignore"):
        xstar = np.array([np.broadcast_to(v, X.size) for v in eqf(*P)], dtype=float)
    eig_re = np.empty(X.size)
    eig_cx = np.empty(X.size, dtype=bool)
    for k in range(X.size):
        w = np.linalg.eigvals(np.array(Jf(*P[:, k]), dtype=float))
        d = w[np.argmax(w.real)]
        eig_re[k], eig_cx[k] = d.real, abs(d.imag) > 1e-9
    # simulate all points at once
    f = system.lambdify()
    from aicarousel.ir import Evaluator
    x0 = Evaluator(ir, None).initial_state()
    x = np.repeat(np.array([x0[s] for s in ir.stocks])[:, None], X.size, axis=1)
    h = float(dt or ir.time.dt)
    steps = int(round(years / h))
    t = ir.time.initial
    rec_every = max(1, int(round(0.25 / h)))
    dist, d1 = [], []
    for k in range(steps + 1):
        if k % rec_every == 0:
            dev = (x - xstar) / np.maximum(np.abs(xstar), 1e-9)
            dist.append(np.sqrt(np.sum(dev ** 2, axis=0)))
        dx = f(t, x, P)
        if k % rec_every == 0:
            d1.append(dx[0].copy())
        x = x + h * dx
        t += h
    dist = np.array(dist)
    d1 = np.array(d1)
    tt = np.arange(len(dist)) * rec_every * h
    half = tt >= tt[-1] / 2
    with np.errstate(all="ignore"):
        rate = np.polyfit(tt[half], np.log(np.maximum(dist[half], 1e-300)), 1)[0]
    sign = np.sign(d1)
    flips = np.sum(np.abs(np.diff(sign, axis=0)) > 1, axis=0)
    grows = rate > 0
    osc = flips >= 3
    outcome = np.where(grows, np.where(osc, 3, 2), np.where(osc, 1, 0))
    # sympy G = 1 curve: y as a function of x
    g1x, g1y = xs, np.full_like(xs, np.nan)
    if res.G is not None:
        ysym = system.params[yp]
        sols = sp.solve(sp.Eq(res.G, 1), ysym)
        if sols:
            others = {system.params[m]: v for m, v in system.param_values.items()
                      if m not in (xp, yp)}
            fy = sp.lambdify(system.params[xp], sols[0].subs(others), modules="numpy")
            with np.errstate(all="ignore"):
                g1y = np.broadcast_to(np.asarray(fy(xs), dtype=float), xs.shape).copy()
    shape = X.shape
    rn = {m: v.real_name for m, v in ir.variables.items()}
    ds = xr.Dataset(
        {"outcome": (("y", "x"), outcome.reshape(shape)),
         "growth_rate": (("y", "x"), rate.reshape(shape)),
         "eig_real": (("y", "x"), eig_re.reshape(shape)),
         "eig_complex": (("y", "x"), eig_cx.reshape(shape).astype("int8")),
         "g1_y": (("x",), g1y)},
        coords={"x": xs, "y": ys})
    ds["growth_rate"].attrs["units"] = "1/" + (ir.variables["time_step"].units or "time")
    ds.attrs.update({
        "x_name": rn[xp], "y_name": rn[yp], "x_units": ir.variables[xp].units,
        "y_units": ir.variables[yp].units, "x_baseline": float(base[ix]),
        "y_baseline": float(base[iy]), "outcomes": str(OUTCOMES), "years": years,
        "model": ir.path.name, "model_hash": ir.sha256,
        "G": str(res.G) if res.G is not None else ""})
    return ds
