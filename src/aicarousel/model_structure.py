"""Stock-level causal structure of the carousel model, for the causal loop diagram.

Reads the model through the shared intermediate representation
(:mod:`aicarousel.ir`) and builds the record written to ``results/model_structure.json``:

- ``nodes``: every stock that is not internal to a SMOOTH/DELAY and every key
  variable of a named loop (Vensim name, units, sector = the model's group,
  e.g. ``.Lab``);
- ``edges``: stock A -> stock B when B's net flow depends on A through
  auxiliaries only (paths through other stocks do not count), with the path's
  intermediate variables and the polarity of d(dB/dt)/dA measured by central
  finite differences on the baseline trajectory (majority sign at a few
  dates; ``"?"`` if it is zero at all of them, e.g. a MIN branch never taken);
- ``loops``: the project's named loops (``models/named_loops.yaml``, matched to
  cycles of the dependency graph by :mod:`aicarousel.loops`): the shortest cycle
  through each loop's key variables with the expected polarity, contracted onto
  the nodes (stocks and key variables). Without that file, loop codes (R1, B1,
  ...) named in the variables' comments and the shortest cycle through them.

:func:`build` assembles the record and :func:`write_json` writes it;
``analysis/model_structure.py`` is the script that calls them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np

from aicarousel import paths, tags
from aicarousel.ir import build_ir, simulate

#: Dates (fractions of the run) at which edge polarity is measured.
POLARITY_FRACTIONS = (0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)
#: Scalings of the source's baseline value at which polarity is measured when it is zero on
#: the baseline itself (reaches table regions the baseline never visits, e.g. Lab short of cash).
STRESS_SCALES = (0.25, 4.0)
#: Shortest cycle length that counts as a named loop (excludes a stock and its own net flow).
MIN_CYCLE = 3
#: Relative step of the finite differences.
REL_STEP = 1e-4

_GROUP_RE = re.compile(r"^\*{10,}\s*\n\s*\.(?P<name>[^\n~]+?)\s*\n\*{10,}", re.M)
_LOOP_RE = re.compile(r"\b([RB]\d+)\b")


def groups(model_file: Path) -> dict[str, str]:
    """Model group (sector) of every variable, from the ``.Group`` headers of the .mdl file.

    Parameters
    ----------
    model_file : Path
        Vensim model.

    Returns
    -------
    dict of str to str
        Vensim name -> group name (e.g. ``"Lab"``); variables before any group are absent.
    """
    text = model_file.read_text(encoding="utf-8", errors="replace")
    text = text.split("\\\\\\---///")[0]
    heads = [(m.start(), m.group("name").strip()) for m in _GROUP_RE.finditer(text)]
    out: dict[str, str] = {}
    for m in re.finditer(r"^([A-Za-z][^=\n~|]*?)\s*=", text, re.M):
        name = " ".join(m.group(1).split())
        g = [h for pos, h in heads if pos < m.start()]
        if g:
            out[name] = g[-1]
    return out


def select_nodes(ir) -> list[str]:
    """Nodes of the diagram: visible stocks and the auxiliaries whose comments name a loop.

    Parameters
    ----------
    ir : aicarousel.ir.ModelIR

    Returns
    -------
    list of str
        py_names in model order.
    """
    out = []
    for n, v in ir.variables.items():
        if v.kind == "stock" and not v.internal:
            out.append(n)
        elif v.kind == "aux" and _LOOP_RE.search(v.comment or ""):
            out.append(n)
    return out


def node_edges(ir, nodes) -> dict[tuple[str, str], list[str]]:
    """Influences between nodes through non-node variables (internal stocks included).

    Parameters
    ----------
    ir : aicarousel.ir.ModelIR
    nodes : iterable of str

    Returns
    -------
    dict
        ``(source, target) -> [intermediate py_names]`` along one shortest path.
    """
    nodes = set(nodes)
    edges: dict[tuple[str, str], list[str]] = {}
    for target in sorted(nodes):
        frontier = [(d, []) for d in sorted(ir.dependencies(target))]
        seen: set[str] = set()
        while frontier:
            nxt = []
            for name, path in frontier:
                if name in seen or name not in ir.variables:
                    continue
                seen.add(name)
                if name in nodes:
                    if name != target:
                        edges.setdefault((name, target), path)
                    continue
                if ir.variables[name].kind in ("aux", "stock"):
                    nxt.extend((d, path + [name]) for d in sorted(ir.dependencies(name)))
            frontier = nxt
    return edges


class _Polarity:
    """Sign of d(target)/d(source) with every other node held fixed.

    The target is an auxiliary's value or a stock's net flow; the derivative is a
    central finite difference at states of the baseline trajectory, recomputing
    the non-node auxiliaries in evaluation order.
    """

    def __init__(self, ir, nodes, traj, fractions=POLARITY_FRACTIONS):
        from aicarousel.ir import Evaluator  # the reference evaluator's context

        self.ir = ir
        self.nodes = set(nodes)
        self.st = Evaluator(ir, None)
        t = np.asarray(traj["time"])
        self.envs = []
        for frac in fractions:
            i = int(round(frac * (len(t) - 1)))
            state = {s: float(traj[s][i]) for s in ir.stocks}
            self.envs.append((float(t[i]), self.st.env_at(float(t[i]), state)))
        self.recompute = [n for n in self.st.order if n not in self.nodes]

    def _target(self, env, target, t):
        from aicarousel.ir import eval_expr

        env = dict(env)
        for n in self.recompute:
            env[n] = eval_expr(self.ir.variables[n].expr, env, self.ir, t, self.st.time.dt)
        return eval_expr(self.ir.variables[target].expr, env, self.ir, t, self.st.time.dt)

    def sign(self, source, target) -> str:
        for scale in (1.0,) + STRESS_SCALES:
            s = self._sign(source, target, scale)
            if s != "?":
                return s
        return "?"

    def _sign(self, source, target, scale) -> str:
        votes = Counter()
        for t, env in self.envs:
            env = dict(env)
            env[source] = x = env[source] * scale
            h = REL_STEP * max(abs(x), 1e-3)
            up, dn = dict(env), dict(env)
            up[source], dn[source] = x + h, x - h
            try:
                with np.errstate(all="ignore"):
                    g = (self._target(up, target, t) - self._target(dn, target, t)) / (2 * h)
                    base = abs(self._target(env, target, t))
            except Exception:  # a stressed state may divide by zero: skip that state
                continue
            if np.isfinite(g) and abs(g) * h > 1e-10 * max(base, 1e-12):
                votes["+" if g > 0 else "-"] += 1
        return votes.most_common(1)[0][0] if votes else "?"


def loop_cycles(edges, loop_vars: dict[str, list[str]]) -> dict[str, list[str]]:
    """The shortest feedback cycle through each named loop's variables.

    For every variable a loop's comments name, the shortest cycle through it is
    found; the cycle holding most of the loop's variables (then the shortest,
    then the first in name order) represents the loop.

    Parameters
    ----------
    edges : iterable of (str, str)
    loop_vars : dict
        Loop code -> py_names whose comments name it.

    Returns
    -------
    dict
        Loop code -> cycle as a node list (first node not repeated).
    """
    g = nx.DiGraph()
    g.add_edges_from(edges)
    out = {}
    for code, members in loop_vars.items():
        best = None
        for v in sorted(members):
            if v not in g:
                continue
            for s in sorted(g.successors(v)):
                try:
                    path = nx.shortest_path(g, s, v)
                except nx.NetworkXNoPath:
                    continue
                cyc = [v] + path[:-1]
                if len(cyc) < MIN_CYCLE:
                    continue
                key = (-len(set(cyc) & set(members)), len(cyc), cyc)
                if best is None or key < best:
                    best = key
        if best is not None:
            out[code] = best[2]
    return out


def segment_signs(full: list[str], links: list[str], nodes: list[str]) -> list[str]:
    """Polarity of each contracted link of a cycle: the product of its full links' signs.

    Parameters
    ----------
    full : list of str
        The cycle in full (py_names, causal order); ``links[i]`` is the sign of
        ``full[i] -> full[i + 1]`` (cyclically).
    links : list of str
        ``"+"``, ``"-"`` or ``"?"`` (inactive) per full link.
    nodes : list of str
        The cycle's nodes, a subsequence of ``full``.

    Returns
    -------
    list of str
        Sign of ``nodes[j] -> nodes[j + 1]`` (cyclically); ``"?"`` if any link on it is inactive.
    """
    idx = [full.index(n) for n in nodes]
    out = []
    for j, i0 in enumerate(idx):
        i1 = idx[(j + 1) % len(idx)]
        span = range(i0, i1) if i1 > i0 else list(range(i0, len(full))) + list(range(0, i1))
        seg = [links[k] for k in span]
        out.append("?" if "?" in seg else ("+" if seg.count("-") % 2 == 0 else "-"))
    return out


def named_loop_cycles(ir) -> dict[str, dict]:
    """The project's named loops (``models/named_loops.yaml``) matched by :mod:`aicarousel.loops`.

    For each loop: its key variables (py_names), its name, the expected polarity, and the
    shortest cycle through all key variables that has the expected polarity at the
    baseline point (else the shortest active one), as py_names in causal order.

    Parameters
    ----------
    ir : aicarousel.ir.ModelIR

    Returns
    -------
    dict
        ``code -> {name, expected, polarity, keys, cycle, full_cycle, links}`` (``links``: sign
        of each link of the full cycle at the baseline point); empty when the
        loop definitions cannot be read or analysed.
    """
    from aicarousel.loops import find_named_loops, load_named_loops

    try:
        spec = load_named_loops()
        rep = find_named_loops(ir, spec)
    except (OSError, ValueError, KeyError):
        return {}
    out = {}
    for code, rec in (getattr(rep, "named", None) or {}).items():
        if rec.get("missing"):
            continue
        keys_spec = spec.get(code, {}).get("key_variables", {})
        keys = keys_spec.get(ir.path.stem, []) if isinstance(keys_spec, dict) else keys_spec
        names = rec.get("shortest_expected") or rec.get("shortest") or []
        by_name = ir.by_real_name()
        cycle = [by_name[n] for n in names if n in by_name]
        gains = next((lp.link_gains for lp in rep.loops if lp.variables == cycle), [])
        links = ["?" if not g or not np.isfinite(g) else ("+" if g > 0 else "-") for g in gains]
        out[code] = {"name": rec.get("name", code), "expected": rec.get("expected"),
                     "polarity": rec.get("polarity") if not rec.get("shortest_expected")
                     else rec.get("expected"),
                     "keys": [ir.resolve(k) for k in keys], "cycle": cycle, "full_cycle": names,
                     "links": links}
    return out


def build(model_file: Path | None = None) -> dict:
    """Assemble the structure record (see module docstring).

    Parameters
    ----------
    model_file : Path, optional
        Default ``models/ai_carousel.mdl``.

    Returns
    -------
    dict
        JSON-serialisable structure.
    """
    model_file = Path(model_file) if model_file is not None else paths.MODEL_FILE
    ir = build_ir(model_file)
    grp = groups(model_file)
    named = named_loop_cycles(ir)
    if named:  # the project's loop definitions (models/named_loops.yaml via aicarousel.loops)
        keys = {n for rec in named.values() for n in rec["keys"]}
        nodes = [n for n, v in ir.variables.items()
                 if (v.kind == "stock" and not v.internal) or n in keys]
    else:  # fallback: loops named in the model's comments
        nodes = select_nodes(ir)
    node_set = set(nodes)
    edges_raw = node_edges(ir, nodes)
    if named:
        cycles = {code: [n for n in rec["cycle"] if n in node_set] for code, rec in named.items()}
        loop_vars = {code: rec["keys"] for code, rec in named.items()}
    else:
        loop_vars = {}
        for n in nodes:
            for code in sorted(set(_LOOP_RE.findall(ir.variables[n].comment or ""))):
                loop_vars.setdefault(code, []).append(n)
        cycles = loop_cycles(list(edges_raw), loop_vars)
    traj = simulate(ir)
    pol = _Polarity(ir, nodes, traj)
    signs = {e: pol.sign(*e) for e in sorted(edges_raw)}
    node_recs = []
    for n in nodes:
        v = ir.variables[n]
        tag = tags.parse(v.comment)
        node_recs.append({"id": n, "name": v.real_name, "units": v.units, "kind": v.kind,
                          "sector": grp.get(v.real_name, "Other"), "tag": tag.kind if tag else ""})
    edge_recs = [{"source": a, "target": b, "polarity": signs[(a, b)], "via": path}
                 for (a, b), path in sorted(edges_raw.items())]
    loops = []
    for code in sorted(loop_vars, key=lambda c: (c[0] != "R", c)):
        cyc = cycles.get(code, [])
        ring = [e for e in zip(cyc, cyc[1:] + cyc[:1]) if e[0] != e[1]] if len(cyc) > 1 else []
        ps = [signs.get(e, "?") for e in ring]
        if named and named.get(code, {}).get("links"):
            ps = segment_signs(named[code]["cycle"], named[code]["links"], cyc)
        sign = "?" if (not ps or "?" in ps) else ("R" if ps.count("-") % 2 == 0 else "B")
        rec = named.get(code, {}) if named else {}
        loops.append({"code": code, "name": rec.get("name", ""),
                      "expected": rec.get("expected", code[0]),
                      "variables": [ir.variables[n].real_name for n in loop_vars[code]],
                      "cycle": cyc, "full_cycle": rec.get("full_cycle", []),
                      "ring_polarity": ps,
                      "polarity": rec.get("polarity") or sign,
                      "matches_code": (rec.get("polarity") or sign) == code[0]})
    order = list(dict.fromkeys(grp.values()))
    return {
        "model_file": paths.relative_to_root(model_file),
        "model_hash": ir.sha256,
        "sectors": sorted({nd["sector"] for nd in node_recs},
                          key=lambda s: order.index(s) if s in order else len(order)),
        "nodes": node_recs,
        "edges": edge_recs,
        "loops": loops,
    }


def write_json(data: dict, out: Path) -> Path:
    """Write ``data`` as pretty JSON atomically."""
    from aicarousel.atomic import write_text
    return write_text(out, json.dumps(data, indent=1, sort_keys=True) + "\n")
