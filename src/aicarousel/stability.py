"""Equilibria, Jacobian, eigenvalues, Routh-Hurwitz conditions, loop gains and thresholds.

Two analyses, both derived from the model file through the IR and the sympy system:

* :func:`analyse_closed_form` (for small autonomous models, e.g. the textbook models of
  ``tests/data/textbook``; the carousel's reduced model has its own closed forms in
  :func:`aicarousel.reduce.closed_forms`):
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

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import sympy as sp

from aicarousel.errors import AicarouselError
from aicarousel.ir import ModelIR, build_ir, simulate
from aicarousel.loops import find_loops, load_named_loops, match_named_loops
from aicarousel.symbolic import SymbolicSystem, local_equations, to_sympy

__all__ = ["StabilityError", "NoEquilibriumError", "SingularJacobianError",
           "ClosedFormResult", "analyse_closed_form", "find_equilibria", "hurwitz_determinants",
           "analyse_along_baseline", "BaselineResult", "LAMBDA", "classify_outcomes",
           "OUTCOMES"]

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


def analyse_closed_form(model, values: Mapping[str, float] | None = None,
                        scan_factor: float = 10.0) -> ClosedFormResult:
    """Closed-form stability analysis of a small autonomous model.

    Parameters
    ----------
    model : path or ModelIR
        A small autonomous model.
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
    ir = model if isinstance(model, ModelIR) else build_ir(model)
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

    The steps, each a function of this module: run the reference evaluator, find the stocks on
    feedback loops (:func:`_feedback_stocks`), the dominant eigenvalue of the Jacobian at every
    time (:func:`_dominant_modes`), a balanced-growth test (:func:`_balanced_growth`), the
    equilibrium with Time frozen at the end (:func:`_frozen_equilibrium`) and the named loops'
    gains over time (:func:`_named_loop_gains`). The dependency graph is built once.

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
        Show progress bars: one over the steps, one over the named-loop gains' times.

    Returns
    -------
    BaselineResult
    """
    from aicarousel import paths
    from aicarousel.loops import dependency_graph

    from tqdm import tqdm

    # one bar over the steps (the sympy system and the named-loop gains take most of the time;
    # the loop gains have their own bar below)
    bar = tqdm(total=5, desc="stability along the baseline", unit=" steps", disable=not progress,
               leave=False)
    bar.set_postfix_str("sympy system")
    ir = model if isinstance(model, ModelIR) else build_ir(model or paths.MODEL_FILE)
    system = to_sympy(ir)
    f = system.lambdify()
    p = system.param_vector(params)
    bar.update()
    bar.set_postfix_str("baseline run")
    out = simulate(ir, params=params)
    tt = out["time"]
    X = np.array([out[s] for s in ir.stocks])  # (n, T)
    bar.update()
    bar.set_postfix_str("Jacobian eigenvalues")
    g = dependency_graph(ir)
    keep = _feedback_stocks(ir, g)
    dom, dom_stock = _dominant_modes(ir, f, p, tt, X, keep)
    bar.update()
    bar.set_postfix_str("balanced growth, frozen equilibrium")
    rates, bgp = _balanced_growth(ir, out)
    eq = _frozen_equilibrium(system, f, p, tt, X)
    bar.update()
    bar.set_postfix_str("named-loop gains")
    loop_times, lg, lpol = _named_loop_gains(ir, g, out, params, loop_every, integrator_horizon,
                                             progress)
    bar.update()
    bar.close()
    return BaselineResult(time=tt, dominant=dom, dominant_stock=dom_stock, growth_rates=rates,
                          balanced_growth=bgp, equilibrium=eq, loop_gains=lg,
                          loop_polarity=lpol, loop_times=loop_times)


def _feedback_stocks(ir: ModelIR, g) -> np.ndarray:
    """Mask over ``ir.stocks``: True for the stocks on some cycle of the dependency graph ``g``.

    Accounting stocks that feed nothing back (e.g. cumulative equity) only add zero
    eigenvalues and are left out of the Jacobian.
    """
    import networkx as nx

    fb = set()
    for comp in nx.strongly_connected_components(g):
        if len(comp) > 1 or any(g.has_edge(c, c) for c in comp):
            fb |= comp
    return np.array([s in fb for s in ir.stocks], dtype=bool)


def _dominant_modes(ir: ModelIR, f, p: np.ndarray, tt: np.ndarray, X: np.ndarray,
                    keep: np.ndarray) -> tuple[np.ndarray, list]:
    """Dominant eigenvalue (1/time unit) of the Jacobian at every saved time, and the stock
    most involved in it (central finite differences on the lambdified RHS ``f``)."""
    n = len(ir.stocks)
    dom = np.zeros(len(tt), dtype=complex)
    dom_stock = []
    if not keep.any():
        # no stock on a feedback loop: the Jacobian's graph is acyclic, so it is nilpotent and
        # every eigenvalue is exactly 0 (the stocks only accumulate what flows in)
        return dom, ["none (no stock is on a feedback loop)"] * len(tt)
    kept = [s for s, kk in zip(ir.stocks, keep) if kk]
    for k, t in enumerate(tt):
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
        dom_stock.append(ir.variables[kept[int(np.argmax(comp))]].real_name)
    return dom, dom_stock


def _balanced_growth(ir: ModelIR, out: Mapping) -> tuple[dict, str]:
    """Growth rate of every stock over the last quarter of the run (1/time unit) and the
    plain-words verdict on balanced growth (one common rate)."""
    tt = out["time"]
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
    return rates, bgp


def _frozen_equilibrium(system: SymbolicSystem, f, p: np.ndarray, tt: np.ndarray,
                        X: np.ndarray) -> str:
    """Plain-words verdict on an equilibrium near the final state, with Time frozen there."""
    from scipy.optimize import root

    r = root(lambda x: f(tt[-1], x, p), X[:, -1], method="hybr")
    resid = float(np.max(np.abs(f(tt[-1], r.x, p))))
    timed = any(system.t in e.free_symbols for e in system.rhs)
    if r.success and resid < 1e-8 * max(1.0, float(np.max(np.abs(r.x)))) and not timed:
        return "equilibrium found near the final state"
    if timed:
        return ("no equilibrium: the model is not autonomous (its equations depend on Time: "
                "exogenous growth, STEP and PULSE inputs)"
                + ("; with Time frozen at the final time a fixed point exists"
                   if r.success and resid < 1e-6 else
                   f"; even with Time frozen at the final time no fixed point was found "
                   f"(smallest |dx/dt| {resid:.3g})"))
    return f"no equilibrium found near the baseline (smallest |dx/dt| {resid:.3g})"


def _named_loop_gains(ir: ModelIR, g, out: Mapping, params: Mapping | None, loop_every: float,
                      integrator_horizon: float, progress: bool) -> tuple[np.ndarray, dict, dict]:
    """Gain of each named loop every ``loop_every`` time units along the run ``out``.

    A named loop's gain at a time is that of the shortest cycle of ``g`` through its key
    variables whose link gains are all non-zero; stocks count by their residence time (pure
    integrators over ``integrator_horizon``). Returns the times, the gains (None where no cycle
    is active) and the polarities (``"R"``, ``"B"`` or ``"0"``).
    """
    from tqdm import tqdm

    from aicarousel.loops import link_gains, named_cycles, stock_residence_times

    tt = out["time"]
    loop_times = np.arange(tt[0], tt[-1] + 1e-9, loop_every)
    # only the cycles through each named loop's key variables (the carousel has millions of
    # cycles; enumerating them all took more than 10 GB and never finished); the keys are
    # those of the named loops this model has
    cand: dict = named_cycles(ir, g=g)[0]
    keys = list(cand)
    lg: dict = {lid: [] for lid in keys}
    lpol: dict = {lid: [] for lid in keys}
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
    return loop_times, lg, lpol


# --------------------------------------------------------------------------------------------
# Reports: moved to aicarousel.stability_report (names kept here for existing callers)
# --------------------------------------------------------------------------------------------
_MOVED_TO_REPORT = ("plain_words", "report_markdown", "report_latex", "baseline_markdown")


def __getattr__(name: str):
    if name in _MOVED_TO_REPORT:
        from aicarousel import stability_report
        return getattr(stability_report, name)
    if name == "write_text_atomic":
        from aicarousel.atomic import write_text
        return write_text
    raise AttributeError(f"module 'aicarousel.stability' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# Outcomes of simulated runs (the reduced model's stability map, aicarousel.reduce)
# --------------------------------------------------------------------------------------------
#: Outcome classes of simulated runs (code -> label; :func:`classify_outcomes`).
OUTCOMES = {0: "decay", 1: "damped oscillation", 2: "growth", 3: "growing oscillation"}


def classify_outcomes(tt: np.ndarray, dist: np.ndarray, d1: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Outcome of simulated runs (:data:`OUTCOMES`) from their recorded paths.

    Parameters
    ----------
    tt : array (T,)
        Recording times (time units).
    dist : array (T, m)
        Distance of each of m runs from its equilibrium (relative).
    d1 : array (T, m)
        Rate of change of one stock in each run.

    Returns
    -------
    (rate, outcome)
        Growth rate of the distance over the second half (1/time unit; positive: growth) and
        the outcome code; oscillation when the rate of change flips sign at least 3 times.
    """
    half = tt >= tt[-1] / 2
    with np.errstate(all="ignore"):
        rate = np.polyfit(tt[half], np.log(np.maximum(dist[half], 1e-300)), 1)[0]
    flips = np.sum(np.abs(np.diff(np.sign(d1), axis=0)) > 1, axis=0)
    grows, osc = rate > 0, flips >= 3
    return rate, np.where(grows, np.where(osc, 3, 2), np.where(osc, 1, 0))
