"""Feedback loops of a model, found from the IR dependency graph.

Every cycle of the variable graph (auxiliaries and stocks; an edge x -> y when y's equation
or net flow uses x) is a feedback loop. For each loop the module gives

* its variables (py_names, in causal order),
* its polarity: the sign of the product of the link gains dy/dx along it, each evaluated by
  central finite differences on the IR equations at one baseline state (``"R"`` positive,
  ``"B"`` negative, ``"0"`` when a link is inactive there, e.g. the unused branch of a MIN);
* its gain where linearisable: the product of the link gains times the residence time
  ``tau_s = -1 / (d rhs_s / d s)`` of each stock s on it (the steady-state gain of a
  first-order stock); ``None`` when a stock on the loop is a pure integrator
  (``d rhs_s / d s = 0``, e.g. a cash balance) or grows on its own.

Named loops (R1-R3, B1-B4 of the carousel) are defined in ``models/named_loops.yaml`` by a
few key variables each must pass through; :func:`match_named_loops` reports, for each, the
cycles that contain all of them, the shortest such cycle and its polarity.

:func:`compare_with_simlin` lists pysimlin's loops (its Loops That Matter engine) next to
ours, mapped onto the same variable names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np
import xarray as xr

from aicarousel.errors import AicarouselError
from aicarousel.ir import Evaluator, ModelIR, eval_expr, simulate

__all__ = ["FeedbackLoop", "LoopReport", "dependency_graph", "find_loops", "link_gains",
           "edge_gains", "stock_residence_times", "baseline_point", "match_named_loops", "load_named_loops",
           "compare_with_simlin", "analyse_loops", "DEFAULT_MAX_LOOPS"]

#: Most cycles enumerated before stopping (the carousel has a few tens of thousands).
DEFAULT_MAX_LOOPS = 200_000


@dataclass
class FeedbackLoop:
    """One feedback loop.

    Attributes
    ----------
    variables : list of str
        py_names in causal order (each influences the next; the last influences the first).
    polarity : str
        ``"R"`` (reinforcing), ``"B"`` (balancing) or ``"0"`` (a link is inactive at the
        evaluation point).
    gain : float or None
        Linearised loop gain (dimensionless), or None when not linearisable.
    link_gains : list of float
        dy/dx of each link, in order (units of y per unit of x).
    note : str
        Why the gain is None, if it is.
    """

    variables: list[str]
    polarity: str
    gain: float | None
    link_gains: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def stocks(self) -> list[str]:
        """Stocks on the loop (filled by :func:`find_loops`)."""
        return self._stocks

    _stocks: list[str] = field(default_factory=list, repr=False)


@dataclass
class LoopReport:
    """All loops of a model plus the named-loop matches."""

    loops: list[FeedbackLoop]
    truncated: bool
    time: float
    named: dict[str, dict] = field(default_factory=dict)
    #: Longest cycle enumerated (variables), or None when unbounded.
    length_bound: int | None = None


def dependency_graph(ir: ModelIR) -> nx.DiGraph:
    """Directed graph of auxiliaries and stocks (constants and lookup tables left out).

    Edge ``x -> y`` when y's equation (for a stock: its net flow) references x.
    """
    g = nx.DiGraph()
    for n, v in ir.variables.items():
        if v.kind in ("aux", "stock"):
            g.add_node(n, kind=v.kind, real_name=v.real_name)
    for n in list(g.nodes):
        for d in ir.dependencies(n):
            if d in g:
                g.add_edge(d, n)
    return g


def baseline_point(ir: ModelIR, time: float | None = None,
                   params: Mapping | None = None) -> tuple[float, dict[str, float]]:
    """Stock values of the baseline run at ``time`` (default: mid-run).

    Returns
    -------
    (t, state) : tuple
        The saved time nearest ``time`` and the stock values there.
    """
    out = simulate(ir, params=params)
    tt = out["time"]
    if time is None:
        time = 0.5 * (ir.time.initial + ir.time.final)
    i = int(np.argmin(np.abs(tt - time)))
    return float(tt[i]), {s: float(out[s][i]) for s in ir.stocks}


def _env(ir: ModelIR, t: float, state: Mapping[str, float], params=None):
    st = Evaluator(ir, params)
    with np.errstate(all="ignore"):
        env = st.env_at(t, state)
    return st, env


def link_gains(ir: ModelIR, t: float, state: Mapping[str, float],
               params: Mapping | None = None, graph: nx.DiGraph | None = None,
               rel_step: float = 1e-6) -> dict[tuple[str, str], float]:
    """Partial derivative dy/dx of every edge, by central differences at one point.

    For an edge into a stock, y is the stock's net flow (so an outflow has gain -1).
    """
    g = graph if graph is not None else dependency_graph(ir)
    st, env = _env(ir, t, state, params)
    return edge_gains(ir, env, t, st.time.dt, g.edges, rel_step)


def edge_gains(ir: ModelIR, env: Mapping[str, float], t: float, dt: float,
               edges: Iterable[tuple[str, str]], rel_step: float = 1e-6,
               ) -> dict[tuple[str, str], float]:
    """:func:`link_gains` of the given ``edges`` in an environment already evaluated
    (``Evaluator.env_at``), for callers that ask for a few edges at a time at one point."""
    out = {}
    with np.errstate(all="ignore"):
        for x, y in edges:
            expr = ir.variables[y].expr
            x0 = env[x]
            h = rel_step * max(abs(x0), 1.0)
            e = dict(env)
            e[x] = x0 + h
            fp = float(eval_expr(expr, e, ir, t, dt))
            e[x] = x0 - h
            fm = float(eval_expr(expr, e, ir, t, dt))
            out[(x, y)] = (fp - fm) / (2 * h)
    return out


def stock_residence_times(ir: ModelIR, t: float, state: Mapping[str, float],
                          params: Mapping | None = None,
                          rel_step: float = 1e-6) -> dict[str, float]:
    """``tau_s = -1 / (d rhs_s / d s)`` for each stock (inf for a pure integrator).

    The derivative is total (through all auxiliaries), by central differences.
    """
    st = Evaluator(ir, params)
    out = {}
    with np.errstate(all="ignore"):
        for s in ir.stocks:
            h = rel_step * max(abs(state[s]), 1.0)
            sp_ = dict(state)
            sp_[s] = state[s] + h
            fp = st.derivatives(st.env_at(t, sp_), t)[s]
            sp_[s] = state[s] - h
            fm = st.derivatives(st.env_at(t, sp_), t)[s]
            d = (fp - fm) / (2 * h)
            out[s] = float("inf") if abs(d) < 1e-12 else -1.0 / d
    return out


def find_loops(ir: ModelIR, time: float | None = None, params: Mapping | None = None,
               max_loops: int = DEFAULT_MAX_LOOPS, length_bound: int | None = None,
               point: tuple[float, dict] | None = None,
               cycles: Iterable[list[str]] | None = None) -> LoopReport:
    """Enumerate the feedback loops of a model with polarity and gain.

    Parameters
    ----------
    ir : ModelIR
    time : float, optional
        Baseline time at which polarities and gains are evaluated (default mid-run).
    params : mapping, optional
        Constant overrides for the baseline run.
    max_loops : int
        Stop after this many cycles (``LoopReport.truncated`` is then True).
    length_bound : int, optional
        Only cycles with at most this many variables.
    point : (t, state), optional
        Evaluate at this point instead of on the baseline run.
    cycles : iterable of lists of py_names, optional
        Score these cycles instead of enumerating all (see :func:`cycles_through`).

    Returns
    -------
    LoopReport
        Loops sorted by length, then name.

    Raises
    ------
    aicarousel.errors.AicarouselError
        If the model has no stocks.
    """
    if not ir.stocks:
        raise AicarouselError(f"model {ir.path.name} has no stocks, so it has no feedback "
                              "loops; add at least one INTEG")
    g = dependency_graph(ir)
    t, state = point if point is not None else baseline_point(ir, time, params)
    gains = link_gains(ir, t, state, params, g)
    taus = stock_residence_times(ir, t, state, params)
    loops: list[FeedbackLoop] = []
    truncated = False
    source = cycles if cycles is not None else nx.simple_cycles(g, length_bound=length_bound)
    for cyc in source:
        if len(loops) >= max_loops:
            truncated = True
            break
        # rotate so the loop starts at a stock if it has one (stable, readable)
        stocks = [n for n in cyc if ir.variables[n].kind == "stock"]
        if stocks:
            k = cyc.index(min(stocks))
            cyc = cyc[k:] + cyc[:k]
        lg = [gains[(cyc[i], cyc[(i + 1) % len(cyc)])] for i in range(len(cyc))]
        prod = float(np.prod(lg))
        pol = "R" if prod > 0 else "B" if prod < 0 else "0"
        note = ""
        gain: float | None = prod
        for s in stocks:
            tau = taus[s]
            if not np.isfinite(tau):
                gain, note = None, f"{ir.variables[s].real_name} is a pure integrator"
                break
            if tau <= 0:
                gain, note = None, f"{ir.variables[s].real_name} grows on its own"
                break
            gain *= tau
        fl = FeedbackLoop(variables=list(cyc), polarity=pol, gain=gain, link_gains=lg,
                          note=note)
        fl._stocks = stocks
        loops.append(fl)
    loops.sort(key=lambda lp: (len(lp.variables), lp.variables))
    return LoopReport(loops=loops, truncated=truncated, time=t)


# --------------------------------------------------------------------------------------------
# Named loops
# --------------------------------------------------------------------------------------------
def load_named_loops(path: Path | None = None) -> dict[str, dict]:
    """Read ``models/named_loops.yaml``: ``{id: {name, polarity, key_variables}}``."""
    import yaml

    from aicarousel import paths

    path = Path(path) if path is not None else paths.MODELS_DIR / "named_loops.yaml"
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return data


def match_named_loops(ir: ModelIR, report: LoopReport,
                      named: Mapping[str, dict] | None = None) -> dict[str, dict]:
    """Match named loops to enumerated cycles by their key variables.

    A cycle matches a named loop when it passes through every key variable. Named loops
    whose key variables are not in the model are skipped (so the same file serves the
    carousel and the core loop: each loop lists key variables per model).

    Returns
    -------
    dict
        ``id -> {name, expected, n_cycles, shortest (list of model names), polarity,
        gain, polarity_ok, missing}``.
    """
    named = load_named_loops() if named is None else named
    model_key = ir.path.stem
    out = {}
    for lid, spec in named.items():
        keys_by_model = spec.get("key_variables", {})
        keys = keys_by_model.get(model_key) if isinstance(keys_by_model, dict) else keys_by_model
        if not keys:
            continue
        missing = []
        pys = []
        for k in keys:
            try:
                pys.append(ir.resolve(k))
            except KeyError:
                missing.append(k)
        if missing:
            out[lid] = {"name": spec.get("name", lid), "expected": spec.get("polarity"),
                        "n_cycles": 0, "n_active": 0, "missing": missing, "shortest": [], "polarity": None,
                        "gain": None, "polarity_ok": False}
            continue
        matches = [lp for lp in report.loops if set(pys) <= set(lp.variables)]
        active = [lp for lp in matches if lp.polarity != "0"]
        # the shortest loop that is active at the evaluation point, else the shortest
        short = min(active or matches, key=lambda lp: len(lp.variables)) if matches else None
        pols = sorted({lp.polarity for lp in matches})
        out[lid] = {
            "name": spec.get("name", lid),
            "expected": spec.get("polarity"),
            "n_cycles": len(matches),
            "n_active": len(active),
            "missing": [],
            "shortest": [ir.variables[v].real_name for v in short.variables] if short else [],
            "polarity": short.polarity if short else None,
            "polarities": pols,
            "gain": short.gain if short else None,
            "polarity_ok": bool(short) and short.polarity == spec.get("polarity"),
            "n_R": sum(lp.polarity == "R" for lp in active),
            "n_B": sum(lp.polarity == "B" for lp in active),
            "shortest_expected": next(
                ([ir.variables[v].real_name for v in lp.variables]
                 for lp in sorted(active, key=lambda lp: len(lp.variables))
                 if lp.polarity == spec.get("polarity")), []),
        }
    report.named = out
    return out


def cycles_through(g: nx.DiGraph, keys: Sequence[str], length_bound: int,
                   cap: int = 5_000) -> tuple[list[list[str]], bool]:
    """Simple cycles of ``g`` through every node of ``keys``, at most ``length_bound`` long.

    A depth-first search from the first key that only steps to nodes from which the first key
    is still reachable within the remaining length, so it never enumerates the model's other
    cycles (the carousel has about 178k).

    Returns
    -------
    (cycles, truncated)
        Cycles as node lists starting at ``keys[0]``; ``truncated`` when ``cap`` was reached.
    """
    k0, need = keys[0], set(keys)
    if any(k not in g for k in need):
        return [], False
    dist = nx.single_source_shortest_path_length(g.reverse(copy=False), k0,
                                                 cutoff=length_bound)
    out: list[list[str]] = []
    path, on = [k0], {k0}

    def dfs(u: str) -> bool:
        for w in g.successors(u):
            if w == k0:
                if need <= on:
                    out.append(list(path))
                    if len(out) >= cap:
                        return True
                continue
            if w in on or len(path) + dist.get(w, length_bound + 1) > length_bound:
                continue
            path.append(w)
            on.add(w)
            stop = dfs(w)
            path.pop()
            on.discard(w)
            if stop:
                return True
        return False

    return out, dfs(k0)


def named_cycles(ir: ModelIR, named: Mapping[str, dict] | None = None,
                 g: nx.DiGraph | None = None, *,
                 bounds: Sequence[int] = (8, 12, 16, 20, 24, 28, 32), extra: int = 4,
                 cap: int = 20_000) -> tuple[dict[str, list[list[str]]], bool, int]:
    """The cycles through each named loop's key variables (see :func:`find_named_loops`).

    Returns
    -------
    (cycles, truncated, bound)
        ``loop id -> cycles`` (py_name lists, shortest first) for the named loops whose key
        variables are in the model; whether a cap was reached; the largest bound used.
    """
    named = load_named_loops() if named is None else named
    g = dependency_graph(ir) if g is None else g
    out: dict[str, list[list[str]]] = {}
    truncated, used = False, 0
    for lid, spec in named.items():  # the search starts at the loop's first key variable
        kv = spec.get("key_variables", {})
        kv = kv.get(ir.path.stem) if isinstance(kv, dict) else kv
        try:
            keys = [ir.resolve(k) for k in (kv or [])]
        except KeyError:
            continue
        if not keys:
            continue
        # a loop whose active path is long says so in named_loops.yaml (active_in.length_bound)
        least = int((spec.get("active_in") or {}).get("length_bound") or 0)
        found, cut, lb = [], False, bounds[-1]
        for lb in bounds:
            found, cut = cycles_through(g, keys, lb, cap)
            if found:
                lb = max(min(lb + extra, bounds[-1] + extra), least)
                found, cut = cycles_through(g, keys, lb, cap)
                break
        used = max(used, lb)
        truncated |= cut
        out[lid] = sorted(found, key=len)
    return out, truncated, used


def find_named_loops(ir: ModelIR, named: Mapping[str, dict] | None = None, *,
                     time: float | None = None, point=None, params: Mapping | None = None,
                     bounds: Sequence[int] = (8, 12, 16, 20, 24, 28, 32), extra: int = 4,
                     cap: int = 20_000) -> LoopReport:
    """The cycles through each named loop's key variables, scored, and the named matches.

    A large model has too many cycles to enumerate them all (the carousel about 178k), and
    an enumeration cut at a maximum count finds only some, so named loops would match none.
    This searches, per named loop, only the cycles through all its key variables
    (:func:`cycles_through`), with the length bound raised in ``bounds`` until some are found,
    plus ``extra`` for alternative paths; then scores them with :func:`find_loops`.

    Parameters
    ----------
    ir : ModelIR
    named : mapping, optional
        Named loops (default :func:`load_named_loops`).
    time, point, params
        As for :func:`find_loops` (the state at which polarities and gains are evaluated).
    bounds : sequence of int
        Length bounds (variables per cycle) to try, shortest first.
    extra : int
        Added to the first bound at which a loop's cycles are found (at least the loop's
        ``active_in.length_bound`` in ``named_loops.yaml``, where its active path is long).
    cap : int
        Most cycles kept per named loop (``LoopReport.truncated`` when reached).

    Returns
    -------
    LoopReport
        The scored cycles, with ``named`` set by :func:`match_named_loops` and
        ``length_bound`` the largest bound used.
    """
    named = load_named_loops() if named is None else named
    if not ir.stocks:
        raise AicarouselError(f"model {ir.path.name} has no stocks, so it has no feedback "
                              "loops; add at least one INTEG")
    per_loop, truncated, used = named_cycles(ir, named, bounds=bounds, extra=extra, cap=cap)
    seen: dict[tuple, list[str]] = {}
    for found in per_loop.values():
        for cyc in found:
            k = cyc.index(min(cyc))
            seen.setdefault(tuple(cyc[k:] + cyc[:k]), cyc)
    rep = find_loops(ir, time=time, params=params, point=point, cycles=list(seen.values()))
    rep.truncated, rep.length_bound = truncated, used or None
    match_named_loops(ir, rep, named)
    return rep


def analyse_loops(ir: ModelIR, time: float | None = None, **kw) -> LoopReport:
    """:func:`find_loops` plus :func:`match_named_loops` (if the YAML file exists)."""
    rep = find_loops(ir, time=time, **kw)
    try:
        match_named_loops(ir, rep)
    except FileNotFoundError:
        pass
    return rep


# --------------------------------------------------------------------------------------------
# pysimlin comparison
# --------------------------------------------------------------------------------------------
def _canon(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def compare_with_simlin(ir: ModelIR, report: LoopReport | None = None) -> dict:
    """Compare our loop list with pysimlin's on the same model file.

    pysimlin adds a synthetic ``<stock>_net_flow`` node per stock with inline net flows;
    those are dropped before comparing variable sets.

    Returns
    -------
    dict
        ``{"simlin": [(id, polarity, [py_names])], "ours_count", "simlin_count",
        "only_simlin": [...], "only_ours_count", "common", "polarity_differs": [...],
        "importance"}``; ``importance`` is pysimlin's relative loop score series (an
        xarray Dataset, ``loop`` x ``time``; the same measure as
        :func:`aicarousel.dominance.loop_dominance`'s ``relative_score``) or None when
        pysimlin gives none.
    """
    import simlin

    report = report or find_loops(ir)
    m = simlin.load(str(ir.path))
    canon = {_canon(n): n for n in ir.variables}
    source = "run"
    times = None
    try:  # small models: pysimlin's run lists every loop with its importance series
        run = m.run()
        found = list(run.loops)
        times = np.asarray(run.results.index, dtype=float)
    except Exception:  # noqa: BLE001 - pysimlin's LTM compile can fail on large models
        found = []
    universe = len(found)
    if not found:  # large models: simlin's run lists none; use its loop discovery
        a = m.analyze(timeout=120)
        found, universe, source = list(a.loops), a.universe_loops, "analyze"
        times = None
    sl = []
    importance: dict[str, np.ndarray] = {}
    for lp in found:
        vs = []
        for v in lp.variables:
            if v.startswith("$"):  # simlin's internal stock of a SMOOTH/DELAY of variable X
                parts = v.split("\u205a")
                base = _canon(parts[1]) if len(parts) > 1 else _canon(v)
                cands = [n for n in ir.variables if ir.variables[n].internal
                         and n.endswith("_" + base)]
                vs.append(cands[0] if cands else v)
                continue
            c = _canon(v)
            if c.endswith("_net_flow") and c[:-len("_net_flow")] in canon:
                continue
            vs.append(canon.get(c, v))
        pol = lp.polarity.name if hasattr(lp.polarity, "name") else str(lp.polarity)
        sl.append((lp.id, pol, vs))
        series = getattr(lp, "behavior_time_series", None)
        if series is not None:
            importance[lp.id] = np.asarray(series, dtype=float)
    ours = {frozenset(lp.variables): lp for lp in report.loops}
    only_simlin, common, pol_diff = [], 0, []
    matched = set()
    for lid, pol, vs in sl:
        key = frozenset(vs)
        if key in ours:
            common += 1
            matched.add(key)
            mine = ours[key].polarity
            theirs = {"REINFORCING": "R", "BALANCING": "B", "MOSTLY_REINFORCING": "R",
                      "MOSTLY_BALANCING": "B"}.get(pol, "?")
            if theirs != mine:
                pol_diff.append((lid, pol, mine, vs))
        else:
            only_simlin.append((lid, pol, vs))
    imp = None
    if importance:
        n = len(next(iter(importance.values())))
        t = times if times is not None and len(times) == n else np.arange(n, dtype=float)
        ids = list(importance)
        imp = xr.Dataset(
            {"importance": (("loop", "time"), np.array([importance[i] for i in ids]),
                            {"units": "1", "long_name": "pysimlin relative loop score"})},
            coords={"loop": ids, "time": t,
                    "path": ("loop", [" -> ".join(ir.variables[v].real_name
                                                  if v in ir.variables else v for v in vs)
                                      for lid, _pol, vs in sl if lid in importance]),
                    "polarity": ("loop", [p for lid, p, _ in sl if lid in importance])},
            attrs={"source": f"pysimlin {getattr(simlin, '__version__', '')} ({source})",
                   "time_is_index": int(times is None or len(times) != n)})
    return {"importance": imp, "simlin": sl, "simlin_count": len(sl), "simlin_universe": universe,
            "simlin_source": source, "ours_count": len(report.loops),
            "common": common, "only_simlin": only_simlin,
            "only_ours_count": len(report.loops) - len(matched),
            "polarity_differs": pol_diff, "truncated": report.truncated}
