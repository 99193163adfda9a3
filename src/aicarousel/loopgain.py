"""Loop gains of the named reinforcing loops and the open-loop gain G, from the full model.

Everything is derived from the model file through the IR:

* **Link gains.** The gain of a link x -> y is the partial derivative dy/dx of y's own
  equation (for a link into a stock: of its net flow), taken symbolically by sympy on that one
  equation (:func:`aicarousel.symbolic.local_equations`; never on the whole substituted
  system) and evaluated at the model's state at time t of a run (:func:`aicarousel.ir.evaluate`).
* **The reinforcing structure.** For each named loop of ``models/named_loops.yaml`` with
  polarity R whose key variables exist in the model (for models without named loops: every
  reinforcing loop found at the reference time), one path: the shortest cycle through its key
  variables that is active with polarity R at the reference time (else the shortest active,
  else the shortest), among the cycles :func:`aicarousel.loops.named_cycles` finds through
  them (the one cycle search of the package; ties go to the first in
  :func:`aicarousel.loops.find_loops`' order, so the choice does not depend on hash seeds). The structure is the union ``U`` of the links of these paths.
* **Open-loop residence time of a stock.** ``a_s = d rhs_s / d s`` (total, through every
  auxiliary, by the chain rule over the link gains) minus the part that runs along ``U``
  (the reinforcing loops themselves); ``tau_s = -1 / a_s`` when ``a_s < 0``. A stock with no
  own outflow (``a_s >= 0``: an integrator, or one that grows on its own) gets the stated
  horizon ``integrator_horizon`` (1 year) instead, as :mod:`aicarousel.stability` does.
* **Loop gain.** The product of a path's link gains times ``tau_s`` of each stock on it
  (dimensionless: a unit change of a variable on the loop comes back as ``g`` units once the
  stocks have adjusted).
* **G, the open-loop gain of the reinforcing structure.** With ``A[s2, s1] = tau_s2 *``
  (sum over paths of ``U`` from stock s1 to the net flow of stock s2 of the product of link
  gains), ``G = 1 - det(I - A)``: Mason's graph determinant of the structure. For one loop
  G is its gain; for loops that share a variable (touching loops) G is the sum of their gains
  (the README's former ``G = R1 + R2``); disjoint loops also subtract their products. G = 1
  exactly where the linearised structure with the stocks' own adjustment,
  ``dx/dt = (A - I) x / tau``, has a zero eigenvalue: below 1 a deviation fed into the loops
  dies out (outside money is multiplied by ``1 / (1 - G)``), above 1 it grows on its own.

G and the loop gains are evaluated at the state of one run (the baseline unless a scenario
or parameters are given) at one time (:func:`loop_gains_at`) or along the run
(:func:`loop_gains_along`); :func:`loop_gain_dataset` puts them in an xarray Dataset (loop x
time) with units. :mod:`aicarousel.reduce` builds the reduced model from the same quantities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import networkx as nx
import numpy as np
import sympy as sp
import xarray as xr

from aicarousel.errors import AicarouselError, ParameterValueError
from aicarousel.ir import ModelIR, evaluate, simulate

__all__ = ["LoopGainError", "LinkDerivatives", "ReinforcingStructure", "structure",
           "loop_gains_at", "loop_gains_along", "loop_gain_dataset", "REFERENCE_TIME",
           "INTEGRATOR_HORIZON", "run_state", "check_time",
           "gains_at_state", "GainsAt", "structure_constants", "constant_thresholds",
           "threshold_runs", "structure_growth_rate"]

#: Reference time of the carousel's headline G (years): the state of the baseline run there.
REFERENCE_TIME = 2028.0
#: Residence time (years) given to a stock with no own outflow (an integrator such as a cash
#: balance, or a stock that grows on its own), as in ``stability.analyse_along_baseline``.
INTEGRATOR_HORIZON = 1.0


class LoopGainError(AicarouselError):
    """Loop gains cannot be computed as asked (message names the loop, time or model)."""


# --------------------------------------------------------------------------------------------
# Link gains: partial derivatives of each equation, by sympy, evaluated at a state
# --------------------------------------------------------------------------------------------
class LinkDerivatives:
    """Partial derivative of every link of a model, symbolic per equation and lazily lambdified.

    Parameters
    ----------
    ir : ModelIR
    graph : networkx.DiGraph, optional
        :func:`aicarousel.loops.dependency_graph` of ``ir`` (built when not given).
    """

    def __init__(self, ir: ModelIR, graph: nx.DiGraph | None = None) -> None:
        from aicarousel.loops import dependency_graph
        from aicarousel.symbolic import local_equations

        self.ir = ir
        self.graph = graph if graph is not None else dependency_graph(ir)
        self.equations = local_equations(ir)
        self._sym: dict[tuple[str, str], sp.Expr] = {}
        self._fn: dict[tuple[str, str], tuple] = {}

    def symbolic(self, x: str, y: str) -> sp.Expr:
        """dy/dx as a sympy expression of the model's variables, constants and ``t``."""
        key = (x, y)
        if key not in self._sym:
            self._sym[key] = sp.diff(self.equations[y], sp.Symbol(x, real=True))
        return self._sym[key]

    def value(self, x: str, y: str, env: Mapping[str, float], t: float) -> float:
        """dy/dx at the point ``env`` (values of every variable, py_name -> float) and time t."""
        key = (x, y)
        if key not in self._fn:
            e = self.symbolic(x, y)
            args = sorted(e.free_symbols, key=lambda s: s.name)
            fn = sp.lambdify(args, e, modules=[{"Heaviside": _heaviside}, "numpy"])
            self._fn[key] = (fn, [a.name for a in args])
        fn, names = self._fn[key]
        with np.errstate(all="ignore"):
            return float(fn(*[np.float64(t if n == "t" else env[n]) for n in names]))

    def chain(self, sources: Iterable[str], targets: Iterable[str], env: Mapping[str, float],
              t: float, edges: set | None = None) -> dict[tuple[str, str], float]:
        """d rhs_s2 / d s1 through auxiliaries only (chain rule over link gains).

        Parameters
        ----------
        sources, targets : iterable of str
            Stocks (py_names).
        edges : set of (x, y), optional
            Only these links are followed (default every link).

        Returns
        -------
        dict
            ``(s1, s2) -> derivative`` of s2's net flow with respect to s1 (other stocks held).
        """
        g = self.graph
        ir = self.ir
        targets = list(targets)
        out = {}
        for s1 in sources:
            d = {s1: 1.0}
            # auxiliaries reachable from s1 without passing through another stock
            reach = [s1]
            seen = {s1}
            while reach:
                x = reach.pop()
                for y in g.successors(x):
                    if y in seen or ir.variables[y].kind != "aux":
                        continue
                    if edges is not None and (x, y) not in edges:
                        continue
                    seen.add(y)
                    reach.append(y)
            for y in (n for n in ir.order if n in seen and n != s1):
                tot = 0.0
                for x in g.predecessors(y):
                    if x in d and (edges is None or (x, y) in edges):
                        tot += self.value(x, y, env, t) * d[x]
                d[y] = tot
            for s2 in targets:
                tot = 0.0
                for x in g.predecessors(s2):
                    if x in d and (edges is None or (x, s2) in edges):
                        tot += self.value(x, s2, env, t) * d[x]
                out[(s1, s2)] = tot
        return out


def _heaviside(x, h0=0.5):
    return np.heaviside(x, h0)


# --------------------------------------------------------------------------------------------
# The reinforcing structure: which paths, chosen at a reference state
# --------------------------------------------------------------------------------------------
@dataclass
class ReinforcingStructure:
    """The named reinforcing loops of a model as paths, and the links and stocks they use."""

    ir: ModelIR
    paths: dict[str, list[str]]                 # loop id -> py_names in causal order
    names: dict[str, str] = field(default_factory=dict)   # loop id -> descriptive name
    reference_time: float = 0.0
    derivs: LinkDerivatives | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def edges(self) -> set[tuple[str, str]]:
        """Links of the union of the paths."""
        return {(p[i], p[(i + 1) % len(p)]) for p in self.paths.values() for i in range(len(p))}

    @property
    def stocks(self) -> list[str]:
        """Stocks on the paths, in the model's stock order."""
        on = {v for p in self.paths.values() for v in p}
        return [s for s in self.ir.stocks if s in on]

    @property
    def variables(self) -> list[str]:
        """Every variable on the paths, in the model's evaluation order (stocks first)."""
        on = {v for p in self.paths.values() for v in p}
        return self.stocks + [n for n in self.ir.order if n in on and n not in self.ir.stocks]


def _closest(name: str, names: Iterable[str]) -> str:
    from aicarousel.params import suggest

    close = suggest(name, names)
    return f" (closest: {', '.join(close)})" if close else ""


def check_time(ir: ModelIR, time: float | None) -> float:
    """The time to evaluate at, refused in one line when outside the run."""
    if time is None:
        inside = ir.time.initial <= REFERENCE_TIME <= ir.time.final
        return REFERENCE_TIME if inside else 0.5 * (ir.time.initial + ir.time.final)
    if not np.isfinite(time) or not ir.time.initial <= time <= ir.time.final:
        raise ParameterValueError(
            f"--time {time:g} lies outside the run of {ir.path.name} "
            f"({ir.time.initial:g}-{ir.time.final:g}); give a time inside it")
    return float(time)


def run_state(ir: ModelIR, time: float, params: Mapping | None = None,
              run: dict | None = None) -> tuple[float, dict[str, float]]:
    """Stocks of the run at the Euler step nearest ``time``: ``(t, {stock: value})``."""
    out = run if run is not None else simulate(ir, params=params, every_step=True)
    tt = out["time"]
    k = int(np.argmin(np.abs(tt - time)))
    return float(tt[k]), {s: float(out[s][k]) for s in ir.stocks}


def structure(ir: ModelIR, loops: Iterable[str] | None = None, time: float | None = None,
              params: Mapping | None = None,
              named: Mapping[str, dict] | None = None) -> ReinforcingStructure:
    """Choose the path of each reinforcing loop at the reference state.

    Parameters
    ----------
    ir : ModelIR
    loops : iterable of str, optional
        Loop ids of ``named_loops.yaml`` (default: every loop with polarity R that the model
        has). An id that is not there raises :class:`LoopGainError` naming the closest ids.
    time : float, optional
        Reference time (default :data:`REFERENCE_TIME` when inside the run, else mid-run).
    params : mapping, optional
        Constant overrides of the run.
    named : mapping, optional
        Named-loop definitions (default ``models/named_loops.yaml``).

    Raises
    ------
    LoopGainError
        The model has no feedback loop, no reinforcing loop, or a loop id is unknown.
    """
    from aicarousel.loops import dependency_graph, find_loops, load_named_loops, named_cycles

    t_ref = check_time(ir, time)
    if not ir.stocks:
        raise LoopGainError(f"model {ir.path.name} has no stocks, so it has no feedback loops "
                            "and no loop gain; add at least one INTEG")
    named = dict(load_named_loops() if named is None else named)
    model_key = ir.path.stem
    keys: dict[str, list[str]] = {}
    for lid, spec in named.items():
        kv = spec.get("key_variables", {})
        kv = kv.get(model_key) if isinstance(kv, dict) else kv
        if not kv:
            continue
        try:
            keys[lid] = [ir.resolve(k) for k in kv]
        except KeyError:
            continue
    if loops is not None:
        loops = list(loops)
        for lid in loops:
            if lid not in named:
                raise LoopGainError(f"loop {lid!r} is not in named_loops.yaml"
                                    f"{_closest(lid, named)}; give one of its ids")
            if lid not in keys:
                raise LoopGainError(f"loop {lid!r} has no key variables for model "
                                    f"{ir.path.name} in named_loops.yaml (it names loops of "
                                    f"{', '.join(named[lid].get('key_variables', {})) or 'none'})")
    t, state = run_state(ir, t_ref, params)
    g = dependency_graph(ir)
    if nx.is_directed_acyclic_graph(g):
        raise LoopGainError(f"model {ir.path.name} has no feedback loops (no cycle in its "
                            "variable graph), so it has no loop gain")
    wanted = (loops if loops is not None else
              [lid for lid in keys if named[lid].get("polarity") == "R"])
    if keys:
        # the one owner of cycle search: every cycle through each loop's key variables,
        # found depth-first in model order (complete up to its bound, order-independent)
        per_loop, _cut, _bound = named_cycles(ir, {lid: named[lid] for lid in wanted}, g)
        seen: dict[tuple, list[str]] = {}
        for found in per_loop.values():
            for cyc in found:
                k = cyc.index(min(cyc))
                seen.setdefault(tuple(cyc[k:] + cyc[:k]), cyc)
        rep = find_loops(ir, point=(t, state), cycles=list(seen.values()))
    else:
        rep = find_loops(ir, point=(t, state), length_bound=None)
    paths, names, notes = {}, {}, {}
    if keys:
        for lid in wanted:
            ks = set(keys[lid])
            matches = [lp for lp in rep.loops if ks <= set(lp.variables)]
            if not matches:
                notes[lid] = "no cycle passes through its key variables"
                continue
            pol = named[lid].get("polarity")
            pick = (min((lp for lp in matches if lp.polarity == pol), key=lambda lp:
                        len(lp.variables), default=None)
                    or min((lp for lp in matches if lp.polarity != "0"),
                           key=lambda lp: len(lp.variables), default=None)
                    or min(matches, key=lambda lp: len(lp.variables)))
            if pick.polarity != pol:
                notes[lid] = (f"no cycle through its key variables has polarity {pol} at "
                              f"{t:g}; the shortest "
                              f"{'active one' if pick.polarity != '0' else 'one'} is used")
            paths[lid] = list(pick.variables)
            names[lid] = named[lid].get("name", lid)
    else:
        if loops is not None:
            raise LoopGainError(f"named_loops.yaml names no loop of model {ir.path.name}; "
                                "leave out --loop to use every reinforcing loop")
        rs = [lp for lp in rep.loops if lp.polarity == "R"]
        if not rs:
            raise LoopGainError(f"model {ir.path.name} has no reinforcing loop active at time "
                                f"{t:g} (its {len(rep.loops)} loops are balancing or "
                                "inactive there), so there is no reinforcing gain")
        for i, lp in enumerate(rs):
            lid = f"R{i + 1}"
            paths[lid] = list(lp.variables)
            names[lid] = " -> ".join(ir.variables[v].real_name for v in lp.variables)
    if not paths:
        raise LoopGainError(f"none of the named reinforcing loops exists in model "
                            f"{ir.path.name}: " + "; ".join(f"{k}: {v}" for k, v in notes.items()))
    return ReinforcingStructure(ir=ir, paths=paths, names=names, reference_time=t,
                                derivs=LinkDerivatives(ir, g), notes=notes)


# --------------------------------------------------------------------------------------------
# Gains at one state
# --------------------------------------------------------------------------------------------
@dataclass
class GainsAt:
    """Link gains, residence times, loop gains and G at one state."""

    time: float
    links: dict[tuple[str, str], float]     # link -> dy/dx (units of y per unit of x)
    own_total: dict[str, float]             # stock -> d rhs / d s, total (1/time unit)
    own_on_structure: dict[str, float]      # stock -> the part along the structure U
    own_rate: dict[str, float]              # a_s = total - on structure (1/time unit)
    tau: dict[str, float]                   # stock -> open-loop residence time (time units)
    horizon: dict[str, bool]                # stock -> tau is the integrator horizon
    loop_gain: dict[str, float]             # loop id -> gain (1)
    A: np.ndarray                           # stock x stock gain matrix over U
    G: float
    env: dict[str, float] = field(default_factory=dict)


def gains_at_state(st: ReinforcingStructure, t: float, state: Mapping[str, float],
                   params: Mapping | None = None,
                   integrator_horizon: float = INTEGRATOR_HORIZON) -> GainsAt:
    """Every quantity of the module docstring at one state of the model."""
    ir, dv = st.ir, st.derivs
    env, _ = evaluate(ir, state, t, params)
    U = st.edges
    stocks = st.stocks
    links = {e: dv.value(e[0], e[1], env, t) for e in sorted(U)}
    total = {s: dv.chain([s], [s], env, t)[(s, s)] for s in stocks}
    onU = dv.chain(stocks, stocks, env, t, edges=U)
    own = {s: total[s] - onU[(s, s)] for s in stocks}
    tau, hz = {}, {}
    for s in stocks:
        if own[s] < -1e-12 * max(1.0, abs(total[s])):
            tau[s], hz[s] = -1.0 / own[s], False
        else:
            tau[s], hz[s] = float(integrator_horizon), True
    n = len(stocks)
    A = np.zeros((n, n))
    for i, s2 in enumerate(stocks):
        for j, s1 in enumerate(stocks):
            A[i, j] = tau[s2] * onU[(s1, s2)]
    G = float(1.0 - np.linalg.det(np.eye(n) - A)) if n else 0.0
    lg = {}
    for lid, p in st.paths.items():
        g = 1.0
        for i in range(len(p)):
            g *= links[(p[i], p[(i + 1) % len(p)])]
        for v in p:
            if v in tau:
                g *= tau[v]
        lg[lid] = float(g)
    return GainsAt(time=t, links=links, own_total=total,
                   own_on_structure={s: onU[(s, s)] for s in stocks}, own_rate=own, tau=tau,
                   horizon=hz, loop_gain=lg, A=A, G=G, env=dict(env))


def loop_gains_at(ir: ModelIR, time: float | None = None, params: Mapping | None = None,
                  loops: Iterable[str] | None = None, st: ReinforcingStructure | None = None,
                  named: Mapping[str, dict] | None = None) -> GainsAt:
    """Loop gains and G at one time of a run (default :data:`REFERENCE_TIME`)."""
    t = check_time(ir, time)
    st = st or structure(ir, loops=loops, time=t, params=params, named=named)
    tt, state = run_state(ir, t, params)
    return gains_at_state(st, tt, state, params)


def loop_gains_along(ir: ModelIR, params: Mapping | None = None,
                     loops: Iterable[str] | None = None, every: float | None = None,
                     st: ReinforcingStructure | None = None, progress: bool = False,
                     named: Mapping[str, dict] | None = None) -> list[GainsAt]:
    """Loop gains and G at every ``every`` time units of the run (default SAVEPER)."""
    from tqdm import tqdm

    st = st or structure(ir, loops=loops, params=params, named=named)
    out = simulate(ir, params=params, every_step=True)
    every = float(every or ir.time.saveper)
    if not every > 0:
        raise ParameterValueError(f"--every {every:g}: give a positive time step")
    times = np.arange(ir.time.initial, ir.time.final + 1e-9, every)
    res = []
    for t in tqdm(times, desc="loop gains", unit=" times", disable=not progress, leave=False):
        tt, state = run_state(ir, t, params, run=out)
        res.append(gains_at_state(st, tt, state, params))
    return res


def loop_gain_dataset(st: ReinforcingStructure, results: list[GainsAt],
                      attrs: Mapping | None = None) -> xr.Dataset:
    """Dataset of loop gains (loop x time) and G (time), with units and definitions."""
    ir = st.ir
    ids = list(st.paths)
    t = np.array([r.time for r in results])
    gain = np.array([[r.loop_gain[lid] for r in results] for lid in ids])
    stocks = st.stocks
    ds = xr.Dataset(
        {"gain": (("loop", "time"), gain,
                  {"units": "1", "long_name": "loop gain (product of link gains and of the "
                   "open-loop residence times of the loop's stocks)"}),
         "G": (("time",), np.array([r.G for r in results]),
               {"units": "1", "long_name": "open-loop gain of the reinforcing structure, "
                "G = 1 - det(I - A)"}),
         "tau": (("stock", "time"), np.array([[r.tau[s] for r in results] for s in stocks]),
                 {"units": "year",
                  "long_name": "open-loop residence time of each stock on the structure "
                  "(integrator horizon where the stock has no own outflow)"}),
         "tau_is_horizon": (("stock", "time"),
                            np.array([[r.horizon[s] for r in results] for s in stocks]),
                            {"units": "1"})},
        coords={"loop": ids, "time": ("time", t, {"units": "year"}),
                "stock": [ir.variables[s].real_name for s in stocks],
                "name": ("loop", [st.names.get(lid, "") for lid in ids]),
                "path": ("loop", [" -> ".join(ir.variables[v].real_name for v in st.paths[lid])
                                  for lid in ids])},
        attrs={"model": ir.path.name, "reference_time": st.reference_time,
               "integrator_horizon_years": INTEGRATOR_HORIZON,
               "definition": ("link gain dy/dx of y's own equation (sympy); loop gain = "
                              "product of link gains x open-loop residence times tau_s = "
                              "-1/a_s, a_s = d(net flow)/d(stock) minus the part along the "
                              "reinforcing loops; G = 1 - det(I - A), A[s2,s1] = tau_s2 x "
                              "sum of link-gain products of the loops' paths from s1 to s2"),
               "paths_chosen_at": (f"paths chosen at time {st.reference_time:g} of the same "
                                   "run: the shortest cycle through each loop's key "
                                   "variables with its stated polarity")})
    for lid, note in st.notes.items():
        ds.attrs[f"note_{lid}"] = note
    if attrs:
        ds.attrs.update(attrs)
    return ds


# --------------------------------------------------------------------------------------------
# G = 1 thresholds of the full model's constants, and the runs that check them
# --------------------------------------------------------------------------------------------
def structure_constants(st: ReinforcingStructure) -> list[str]:
    """Constants (py_names) in the link gains of the structure, dates left out."""
    ir = st.ir
    out = set()
    for (x, y) in st.edges:
        for s in st.derivs.symbolic(x, y).free_symbols:
            n = s.name
            # a date (a time-unit constant of 1000 or more, as aicarousel.params rules) is
            # not a parameter one scales
            if n in ir.constants and abs(ir.constants[n]) < 1000 and ir.constants[n] != 0 \
                    and n not in getattr(ir, "structural", set()):
                out.add(n)
    return sorted(out, key=lambda n: ir.variables[n].real_name)


def constant_thresholds(st: ReinforcingStructure, params: Mapping | None = None,
                        constants: Iterable[str] | None = None, factor: float = 100.0,
                        progress: bool = False) -> list[dict]:
    """For each constant, the value at which G = 1 with the state held at the reference.

    The search runs over [value / factor, value * factor] within the constant's range (units
    field), on a log grid refined by bisection. Holding the state is the linearisation's
    premise; :func:`threshold_runs` checks what full runs do.

    Returns
    -------
    list of dict
        ``{"constant", "name", "value", "threshold" (None if G stays on one side),
        "G_at_value", "kind", "G_below", "G_above"}`` (G just below and above the
        threshold), nearest thresholds (in ratio) first; ``kind`` is
        ``"crossing"`` when G passes 1 continuously, else says that G jumps there.
    """
    from scipy.optimize import brentq
    from tqdm import tqdm

    from aicarousel.params import facts_from_ir

    ir = st.ir
    facts = facts_from_ir(ir).constants
    t, state = run_state(ir, st.reference_time, params)
    base = dict(params or {})
    names = list(constants) if constants is not None else structure_constants(st)
    rows = []
    for n in tqdm(names, desc="G = 1 thresholds", unit=" constants", disable=not progress,
                  leave=False):
        real = ir.variables[n].real_name
        v0 = float(base.get(real, ir.constants[n])) if not hasattr(base.get(real), "index") \
            else float(ir.constants[n])
        c = facts.get(real)
        lo_b = c.low if c is not None and np.isfinite(c.low) else -np.inf
        hi_b = c.high if c is not None and np.isfinite(c.high) else np.inf

        def G(v, n=n, real=real):
            p = dict(base)
            p[real] = v
            with np.errstate(all="ignore"):
                return gains_at_state(st, t, state, p).G

        g0 = G(v0)
        best = None
        for direction in (1.0, -1.0):
            prev_v, prev_g = v0, g0
            for k in range(1, 17):
                v = v0 * factor ** (direction * k / 16)
                if not lo_b <= v <= hi_b:
                    break
                gv = G(v)
                if np.isfinite(gv) and np.isfinite(prev_g) and (gv - 1) * (prev_g - 1) < 0:
                    root = brentq(lambda z: G(z) - 1.0, min(prev_v, v), max(prev_v, v),
                                  rtol=1e-10)
                    if best is None or abs(np.log(root / v0)) < abs(np.log(best / v0)):
                        best = root
                    break
                prev_v, prev_g = v, gv
        kind, below, above = None, None, None
        if best is not None:
            below, above = G(best * (1 - 1e-7)), G(best * (1 + 1e-7))
            kind = ("crossing" if max(abs(below - 1), abs(above - 1)) < 1e-3 else
                    f"switch: G jumps from {below:.3g} to {above:.3g} there (a MIN, MAX or "
                    "IF branch changes), not a smooth crossing")
        rows.append({"constant": n, "name": real, "value": v0, "threshold": best,
                     "G_at_value": g0, "kind": kind, "G_below": below, "G_above": above})
    rows.sort(key=lambda r: (r["threshold"] is None,
                             abs(np.log(r["threshold"] / r["value"])) if r["threshold"] else 0))
    return rows


def structure_growth_rate(st: ReinforcingStructure, t: float, state: Mapping[str, float],
                          params: Mapping | None = None) -> float:
    """Largest real part (1/time unit) of the full model's Jacobian over the structure's stocks.

    Central finite differences of the full model's net flows (through every auxiliary, every
    other stock held) with respect to the stocks on the reinforcing loops, at one state:
    positive when a deviation fed into the loops grows there, negative when it decays.
    """
    from aicarousel.ir import evaluate

    stocks = st.stocks
    n = len(stocks)
    J = np.zeros((n, n))
    with np.errstate(all="ignore"):
        for j, s in enumerate(stocks):
            h = 1e-6 * max(abs(state[s]), 1.0)
            up, dn = dict(state), dict(state)
            up[s], dn[s] = state[s] + h, state[s] - h
            fu = evaluate(st.ir, up, t, params)[1]
            fd = evaluate(st.ir, dn, t, params)[1]
            for i, s2 in enumerate(stocks):
                J[i, j] = (fu[s2] - fd[s2]) / (2 * h)
    return float(np.max(np.linalg.eigvals(J).real)) if n else float("nan")


def threshold_runs(st: ReinforcingStructure, name: str, threshold: float,
                   params: Mapping | None = None, factors=(0.9, 1.1),
                   predicted: list[str] | None = None) -> list[dict]:
    """Full-model runs with a constant just below and above its G = 1 threshold.

    The linearisation predicts G < 1 on one side and G > 1 on the other at the reference
    time (``predicted``: ``"G < 1"`` or ``"G > 1"`` per factor; default G < 1 below the
    threshold and G > 1 above); in a run the state itself moves with the
    constant, so each row gives, at the reference time of that run (the same loop paths), G
    and the growth rate of the reinforcing structure (:func:`structure_growth_rate`: the
    largest real eigenvalue of the full model's Jacobian over the loops' stocks; positive =
    a deviation grows), and whether both lie on the predicted side.

    Returns
    -------
    list of dict
        ``{"factor", "value", "G_reference", "growth_rate", "predicted", "as_predicted",
        "growth_as_predicted", "inactive_links"}`` (links of the loops with zero gain in that
        run at the reference time and non-zero gain in the unperturbed run: a MIN, MAX or IF
        branch that the change of the constant switched).
    """
    ir = st.ir
    real = ir.variables[ir.resolve(name)].real_name
    rows = []
    predicted = predicted or ["G < 1" if f < 1 else "G > 1" for f in factors]
    t0, state0 = run_state(ir, st.reference_time, dict(params or {}))
    with np.errstate(all="ignore"):
        live0 = {e for e, v in gains_at_state(st, t0, state0, dict(params or {})).links.items()
                 if v != 0.0}
    for f, pred in zip(factors, predicted):
        p = dict(params or {})
        p[real] = threshold * f
        t, state = run_state(ir, st.reference_time, p)
        with np.errstate(all="ignore"):
            gat = gains_at_state(st, t, state, p)
        g = gat.G
        rate = structure_growth_rate(st, t, state, p)
        # cut by the run: zero gain here, non-zero in the unperturbed run (links already zero
        # there, such as an inactive loop's, explain nothing about this run)
        cut = [f"{ir.variables[x].real_name} -> {ir.variables[y].real_name}"
               for (x, y), v in sorted(gat.links.items()) if v == 0.0 and (x, y) in live0]
        above = pred == "G > 1"
        rows.append({"factor": f, "value": threshold * f, "G_reference": g,
                     "growth_rate": rate, "predicted": "G > 1" if above else "G < 1",
                     "as_predicted": bool((g > 1) if above else (g < 1)),
                     "growth_as_predicted": bool((rate > 0) if above else (rate < 0)),
                     "inactive_links": cut})
    return rows
