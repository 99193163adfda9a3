"""Loop dominance over a run: the Loops That Matter method on the IR.

Schoenberg, Davidsen and Eberlein (2020, *System Dynamics Review* 36(2)) measure how much each
feedback loop contributes to the behaviour at each time from the changes along a run:

* **Link score** of an edge ``x -> y`` (``y = f(x, ...)``) over one Euler step ``k-1 -> k``::

      LS(x -> y) = |Δ_x y / Δy| * sign(Δ_x y / Δx)

  where ``Δy = y_k - y_{k-1}``, ``Δx = x_k - x_{k-1}`` and ``Δ_x y = f(x_k, others_{k-1}) -
  y_{k-1}`` is the change of ``y`` had only ``x`` moved. The score is 0 when ``Δy`` or ``Δx``
  is 0. For an edge into a stock, ``y`` is the stock's net flow, so an inflow's score is
  ``+|Δi / Δ(net flow)|`` and an outflow's ``-|Δo / Δ(net flow)|``, as in the paper's
  flow-to-stock link score (there written with the stock's second difference, which is ``dt``
  times the change of the net flow under Euler).
* **Loop score**: the product of the link scores along the loop (dimensionless, signed: the
  sign is the loop's polarity at that step).
* **Relative loop score**: the loop score divided by the sum of the absolute loop scores of
  all loops found, at each step (so the absolute relative scores sum to 1).

Loops: when the model has at most ``max_loops`` cycles they are all enumerated; otherwise (the
carousel has about 178,000) the strongest-path search of Eberlein and Schoenberg (2020,
"Finding the loops that matter") finds, at a set of sample times, the loops with the largest
scores through each stock, and relative scores are taken over the loops found (the Dataset's
``enumeration_complete`` attribute says which). pysimlin does the same.

A **dominant set** at a step (:func:`dominant_sets`) is the smallest set of loops of the
dominant polarity (the sign of the sum of relative scores), taken in order of decreasing absolute
relative score, whose absolute relative scores add up to at least one half;
:func:`dominant_periods` merges consecutive steps with the same set.

The run is the IR's reference evaluator (:func:`aicarousel.ir.simulate`, every Euler step),
so link scores use exactly the equations, numerics and overrides of every other engine.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Mapping, Sequence

import networkx as nx
import numpy as np
import xarray as xr

from aicarousel.errors import AicarouselError
from aicarousel.ir import Evaluator, ModelIR, eval_expr, simulate
from aicarousel.loops import dependency_graph, load_named_loops

__all__ = ["LinkScores", "link_scores", "find_loops_exhaustive", "strongest_loops",
           "loop_dominance", "dominant_sets", "dominant_periods", "window_mean",
           "compare_with_simlin", "DEFAULT_MAX_LOOPS", "DominanceError"]

#: Most cycles enumerated exactly; above this the strongest-path search is used.
DEFAULT_MAX_LOOPS = 5_000
#: Number of sample times at which the strongest-path search runs.
DEFAULT_SEARCH_TIMES = 60


class DominanceError(AicarouselError):
    """A loop-dominance analysis cannot be done (no loops, bad time, ...)."""


@dataclass
class LinkScores:
    """Link scores of every edge at every Euler step.

    Attributes
    ----------
    time : numpy.ndarray
        Times of the steps (model time unit), shape (T,).
    edges : list of (str, str)
        Edges ``(x, y)`` of the dependency graph (py_names).
    scores : numpy.ndarray
        Link scores, shape (E, T), dimensionless; column 0 is 0 (no change before the start).
    graph : networkx.DiGraph
        The dependency graph (nodes: auxiliaries and stocks).
    """

    time: np.ndarray
    edges: list[tuple[str, str]]
    scores: np.ndarray
    graph: nx.DiGraph

    def index(self) -> dict[tuple[str, str], int]:
        """Edge -> row of :attr:`scores`."""
        return {e: i for i, e in enumerate(self.edges)}


def _trajectory(ir: ModelIR, params: Mapping | None):
    """Every step's full environment and each stock's net flow, from the reference run."""
    out = simulate(ir, params=params, every_step=True)
    st = Evaluator(ir, params)
    times = out["time"]
    names = [n for n in out if n != "time"]
    envs = []
    netflow = {s: np.empty(len(times)) for s in ir.stocks}
    with np.errstate(all="ignore"):
        for k, t in enumerate(times):
            env = dict(st.base)
            for n, f in st.funcs.items():
                env[n] = f(t)
            for n in names:
                env[n] = float(out[n][k])
            d = st.derivatives(env, t)
            for s in ir.stocks:
                netflow[s][k] = d[s]
            envs.append(env)
    return times, envs, netflow, st.time.dt


def link_scores(ir: ModelIR, params: Mapping | None = None) -> LinkScores:
    """Link scores of every edge of the model's dependency graph along one run.

    Parameters
    ----------
    ir : ModelIR
    params : mapping, optional
        Overrides (as :func:`aicarousel.ir.simulate` takes them).

    Returns
    -------
    LinkScores
    """
    if not ir.stocks:
        raise DominanceError(f"model {ir.path.name} has no stocks, so it has no feedback "
                             "loops; add at least one INTEG")
    g = dependency_graph(ir)
    times, envs, netflow, dt = _trajectory(ir, params)
    T = len(times)
    edges = list(g.edges)
    scores = np.zeros((len(edges), T))

    def value(n, k):
        return netflow[n][k] if ir.variables[n].kind == "stock" else envs[k][n]

    with np.errstate(all="ignore"):
        for i, (x, y) in enumerate(edges):
            expr = ir.variables[y].expr
            for k in range(1, T):
                prev = envs[k - 1]
                y0, y1 = value(y, k - 1), value(y, k)
                x0, x1 = prev[x], envs[k][x]
                dy, dx = y1 - y0, x1 - x0
                if dy == 0 or dx == 0 or not np.isfinite(dy) or not np.isfinite(dx):
                    continue
                prev[x] = x1
                try:
                    dxy = float(eval_expr(expr, prev, ir, float(times[k - 1]), dt)) - y0
                except (ZeroDivisionError, OverflowError, ValueError):
                    dxy = float("nan")
                finally:
                    prev[x] = x0
                if not np.isfinite(dxy) or dxy == 0:
                    continue
                scores[i, k] = abs(dxy / dy) * np.sign(dxy / dx)
    return LinkScores(time=np.asarray(times), edges=edges, scores=scores, graph=g)


def _rotate(cycle: Sequence[str], ir: ModelIR) -> tuple[str, ...]:
    """Start a cycle at its alphabetically first stock (else first node): a canonical form."""
    cyc = list(cycle)
    stocks = [n for n in cyc if ir.variables[n].kind == "stock"]
    start = min(stocks) if stocks else min(cyc)
    k = cyc.index(start)
    return tuple(cyc[k:] + cyc[:k])


def find_loops_exhaustive(ir: ModelIR, graph: nx.DiGraph, max_loops: int) -> list | None:
    """All cycles of the graph, or None when there are more than ``max_loops``."""
    cycles = list(itertools.islice(nx.simple_cycles(graph), max_loops + 1))
    if len(cycles) > max_loops:
        return None
    return sorted({_rotate(c, ir) for c in cycles}, key=lambda c: (len(c), c))


def strongest_loops(ir: ModelIR, ls: LinkScores, n_times: int = DEFAULT_SEARCH_TIMES,
                    budget: int = 200_000) -> list[tuple[str, ...]]:
    """Loops found by the strongest-path search at ``n_times`` sample times.

    At each sample step and from each stock, a depth-first search follows outgoing links in
    order of decreasing absolute link score, remembering the best path score with which each
    variable was reached and abandoning a path that arrives at a variable with a score no
    better than that; reaching the start again closes a loop (Eberlein and Schoenberg 2020).
    ``budget`` bounds the number of link visits per search.
    """
    g = ls.graph
    idx = ls.index()
    T = len(ls.time)
    ks = sorted(set(np.linspace(1, T - 1, min(n_times, T - 1)).astype(int).tolist()))
    found: set[tuple[str, ...]] = set()
    for k in ks:
        w = {e: abs(ls.scores[i, k]) for e, i in idx.items()}
        succ = {n: sorted(((w[(n, m)], m) for m in g.successors(n) if w[(n, m)] > 0),
                          reverse=True) for n in g.nodes}
        for start in ir.stocks:
            if start not in g:
                continue
            best: dict[str, float] = {}
            visits = 0
            stack = [(start, 1.0, (start,))]
            while stack and visits < budget:
                node, score, path = stack.pop()
                # push in reverse so the strongest link is explored first
                for wt, m in reversed(succ[node]):
                    visits += 1
                    s2 = score * wt
                    if m == start:
                        found.add(_rotate(path, ir))
                        continue
                    if m in path or s2 <= best.get(m, 0.0):
                        continue
                    best[m] = s2
                    stack.append((m, s2, path + (m,)))
    return sorted(found, key=lambda c: (len(c), c))


def _named_ids(ir: ModelIR, loops: list[tuple[str, ...]]) -> tuple[list[str], dict]:
    """For each loop, the named loops (models/named_loops.yaml) whose key variables it holds,
    and the names of the named loops that apply to this model."""
    try:
        named = load_named_loops()
    except FileNotFoundError:
        return [""] * len(loops), {}
    keys = {}
    for lid, spec in named.items():
        kv = spec.get("key_variables", {})
        kv = kv.get(ir.path.stem) if isinstance(kv, dict) else kv
        if not kv:
            continue
        try:
            keys[lid] = {ir.resolve(k) for k in kv}
        except KeyError:
            continue
    return ([",".join(lid for lid, ks in keys.items() if ks <= set(lp)) for lp in loops],
            {lid: named[lid].get("name", lid) for lid in keys})


def loop_dominance(ir: ModelIR, params: Mapping | None = None, *,
                   max_loops: int = DEFAULT_MAX_LOOPS,
                   search_times: int = DEFAULT_SEARCH_TIMES,
                   loops: Sequence[Sequence[str]] | None = None) -> xr.Dataset:
    """Loop scores and relative loop scores of a model's loops along one run.

    Parameters
    ----------
    ir : ModelIR
    params : mapping, optional
        Overrides (a scenario's, as :func:`aicarousel.scenarios.to_params` gives them).
    max_loops : int
        Enumerate all cycles when there are at most this many; else strongest-path search.
    search_times : int
        Sample times of the strongest-path search.
    loops : sequence of sequences of str, optional
        Score exactly these loops (py_names in causal order) instead of finding them.

    Returns
    -------
    xarray.Dataset
        ``score`` and ``relative_score`` (dims ``loop`` x ``time``, dimensionless), coords
        ``loop`` (ids ``L1``... by decreasing mean absolute relative score), ``path``
        (model names joined by " -> "), ``length``, ``polarity`` (R/B/0 by the sign of the
        mean score), ``named`` (named-loop ids whose key variables the loop holds); attrs
        ``method``, ``enumeration_complete``, ``loops_found``.
    """
    if max_loops < 1:
        raise DominanceError(f"max_loops must be at least 1, not {max_loops}")
    ls = link_scores(ir, params)
    complete = True
    if loops is not None:
        cand = [tuple(lp) for lp in loops]
        complete = False
    else:
        cand = find_loops_exhaustive(ir, ls.graph, max_loops)
        if cand is None:
            cand, complete = strongest_loops(ir, ls, search_times), False
    if not cand:
        raise DominanceError(f"model {ir.path.name} has no feedback loops (no cycle in its "
                             "variable graph), so no loop can dominate")
    idx = ls.index()
    S = np.ones((len(cand), len(ls.time)))
    for j, lp in enumerate(cand):
        for a, b in zip(lp, lp[1:] + lp[:1]):
            try:
                S[j] *= ls.scores[idx[(a, b)]]
            except KeyError:
                raise DominanceError(f"{ir.variables[a].real_name!r} -> "
                                     f"{ir.variables[b].real_name!r} is not a link of "
                                     f"{ir.path.name}") from None
    tot = np.abs(S).sum(axis=0)
    with np.errstate(all="ignore"):
        rel = np.where(tot > 0, S / np.where(tot > 0, tot, 1.0), 0.0)
    order = np.argsort(-np.abs(rel).mean(axis=1), kind="stable")
    S, rel = S[order], rel[order]
    cand = [cand[i] for i in order]
    mean = S.mean(axis=1)
    ids = [f"L{i + 1}" for i in range(len(cand))]
    names = [" -> ".join(ir.variables[v].real_name for v in lp) for lp in cand]
    member, named_names = _named_ids(ir, cand)
    ds = xr.Dataset(
        {"score": (("loop", "time"), S, {"units": "1", "long_name": "loop score"}),
         "relative_score": (("loop", "time"), rel,
                            {"units": "1", "long_name": "relative loop score"})},
        coords={"loop": ids, "time": ("time", ls.time, {"units": "year"}),
                "path": ("loop", names), "length": ("loop", [len(c) for c in cand]),
                "polarity": ("loop", ["R" if m > 0 else "B" if m < 0 else "0" for m in mean]),
                "named": ("loop", member)},
        attrs={"method": "Loops That Matter (Schoenberg, Davidsen and Eberlein 2020); "
                         "link scores over each Euler step of the IR reference run",
               "enumeration_complete": int(complete),
               "loops_found": len(cand), "model": ir.path.name,
               "named_loops": json.dumps(named_names),
               "model_sha256": ir.sha256})
    return ds


def dominant_sets(ds: xr.Dataset, share: float = 0.5) -> list[tuple[str, ...]]:
    """At each step, the loops that dominate the behaviour.

    The dominant polarity is the sign of the sum of the relative loop scores (reinforcing if
    positive); the dominant set is the smallest set of loops of that polarity, taken in order
    of decreasing absolute relative score, whose absolute relative scores reach ``share``
    (all loops of that polarity if they never do). pysimlin uses the same rule.
    """
    rel = ds["relative_score"].values
    ids = list(ds["loop"].values)
    out = []
    for k in range(rel.shape[1]):
        col = rel[:, k]
        total = col.sum()
        if not np.any(col) or total == 0:
            out.append(())
            continue
        same = np.flatnonzero(np.sign(col) == np.sign(total))
        same = same[np.argsort(-np.abs(col[same]), kind="stable")]
        acc, chosen = 0.0, []
        for i in same:
            chosen.append(ids[i])
            acc += abs(col[i])
            if acc >= share - 1e-12:
                break
        out.append(tuple(sorted(chosen, key=ids.index)))
    return out


def dominant_periods(ds: xr.Dataset, share: float = 0.5) -> list[dict]:
    """Consecutive steps (or windows) with the same dominant set: ``{start, end, loops}``.

    ``end`` is the last step's time, or the end of the last window for a Dataset from
    :func:`window_mean`.
    """
    sets = dominant_sets(ds, share)
    t = ds["time"].values
    width = float(ds.attrs.get("window", 0.0))  # windows from :func:`window_mean`
    periods: list[dict] = []
    for k, s in enumerate(sets):
        if k == 0 and not s:
            continue
        if periods and periods[-1]["loops"] == s:
            periods[-1]["end"] = float(t[k]) + width
        else:
            periods.append({"start": float(t[k]), "end": float(t[k]) + width, "loops": s})
    return periods


def window_mean(ds: xr.Dataset, window: float) -> xr.Dataset:
    """Relative scores averaged over consecutive windows of ``window`` time units.

    Per-step dominance flickers where scores are close; a modeller reads dominance per
    period. Each window ``[t0 + i w, t0 + (i + 1) w)`` is labelled by its start; the first step
    (no change yet) is left out.
    """
    if not window > 0:
        raise DominanceError(f"window must be positive, not {window}")
    t = ds["time"].values
    body = ds.isel(time=slice(1, None))
    # the score at step k measures the change over [t_{k-1}, t_k]: file it by t_{k-1}
    k = np.floor((t[:-1] - t[0]) / window + 1e-9).astype(int)
    starts = t[0] + window * k
    out = body.assign_coords(window=("time", starts)).groupby("window").mean().rename(
        window="time").transpose("loop", "time")
    out.attrs = dict(ds.attrs, window=float(window))
    return out


def _cycle_order(ir: ModelIR, graph: nx.DiGraph, nodes: Sequence[str]) -> tuple[str, ...] | None:
    """The nodes in causal order along a simple cycle of the graph through all of them."""
    want = set(nodes)
    if not want <= set(graph.nodes):
        return None
    sub = graph.subgraph(want)
    for cyc in nx.simple_cycles(sub):
        if len(cyc) == len(want):
            return _rotate(cyc, ir)
    return None


def compare_with_simlin(ir: ModelIR, timeout: float = 120.0) -> dict:
    """Relative loop scores of pysimlin's loops, by pysimlin and by this module, side by side.

    pysimlin (its own Loops That Matter engine) finds loops on the same model file; each is
    mapped onto our variables (:func:`aicarousel.loops.compare_with_simlin`) and scored here
    over exactly the same set of loops, so the two relative scores measure the same thing.

    Returns
    -------
    dict
        ``{"common": n, "max_abs_diff": {simlin_id: float}, "unmapped": [simlin ids],
        "seconds_ours": s}``; ``max_abs_diff`` is over pysimlin's time points (every step
        of a small model, the saved steps of a large one).
    """
    import time as _time

    from aicarousel.loops import compare_with_simlin as _loops_vs_simlin

    c = _loops_vs_simlin(ir, report=_EmptyReport())
    imp = c["importance"]
    if imp is None:
        raise DominanceError("pysimlin gave no loop importance series for "
                             f"{ir.path.name}; nothing to compare")
    g = dependency_graph(ir)
    loops, ids, unmapped = [], [], []
    for lid, _pol, vs in c["simlin"]:
        order = _cycle_order(ir, g, vs) if lid in imp["loop"].values else None
        if order is None:
            unmapped.append(lid)
            continue
        loops.append(order)
        ids.append(lid)
    if not loops:
        raise DominanceError(f"none of pysimlin's loops of {ir.path.name} map onto ours")
    t0 = _time.perf_counter()
    ds = loop_dominance(ir, loops=loops)
    seconds = _time.perf_counter() - t0
    # loop_dominance sorts loops by importance: map back through the path strings
    ours_by_path = {p: k for k, p in enumerate(ds["path"].values)}
    # pysimlin reports every Euler step of run() but only the saved steps of analyze(),
    # where its time axis is the index of the saved step
    t_ours = ds["time"].values
    t_sim = imp["time"].values
    if imp.attrs.get("time_is_index"):
        t_sim = ir.time.initial + t_sim * ir.time.saveper
    pick = np.array([int(np.argmin(np.abs(t_ours - t))) for t in t_sim])
    if np.max(np.abs(t_ours[pick] - t_sim)) > 1e-6 * max(1.0, abs(t_sim[-1])):
        raise DominanceError(f"pysimlin's time axis for {ir.path.name} does not match the "
                             "model's steps; cannot compare")
    diffs = {}
    for lid, lp in zip(ids, loops):
        path = " -> ".join(ir.variables[v].real_name for v in lp)
        a = ds["relative_score"].values[ours_by_path[path]][pick]
        b = imp["importance"].sel(loop=lid).values
        # pysimlin normalises over all loops it found, we over those that map: renormalise
        b_tot = np.abs(imp["importance"].sel(loop=ids).values).sum(axis=0)
        with np.errstate(all="ignore"):
            b = np.where(b_tot > 0, b / np.where(b_tot > 0, b_tot, 1.0), 0.0)
        n = min(len(a), len(b))
        diffs[lid] = float(np.max(np.abs(a[:n] - b[:n])))
    return {"common": len(ids), "max_abs_diff": diffs, "unmapped": unmapped,
            "seconds_ours": seconds}


class _EmptyReport:
    """Stands in for a loop enumeration where only pysimlin's list is wanted."""

    loops: list = []
    truncated = False
