"""Stock-level causal structure of the carousel model, for the causal loop diagram.

Reads the model through the shared intermediate representation
(:mod:`aicarousel.ir`) and writes ``results/model_structure.json``:

- ``nodes``: every stock that is not internal to a SMOOTH/DELAY (Vensim name,
  units, sector = the model's group, e.g. ``.Lab``);
- ``edges``: stock A -> stock B when B's net flow depends on A through
  auxiliaries only (paths through other stocks do not count), with the path's
  intermediate variables and the polarity of d(dB/dt)/dA measured by central
  finite differences on the baseline trajectory (majority sign at a few
  dates; ``"?"`` if it is zero at all of them, e.g. a MIN branch never taken);
- ``loops``: the feedback-loop codes (R1, B1, ...) named in the variables'
  comments, with the stocks the commented variables feed.

Usage: ``python analysis/model_structure.py [--model MDL] [--output JSON]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np

from aicarousel import paths
from aicarousel.ir import build_ir, simulate

#: Results this script writes (read by figures/build.py to order the build).
PRODUCES = ["results/model_structure.json"]

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
        from aicarousel.ir import _State  # the reference evaluator's context

        self.ir = ir
        self.nodes = set(nodes)
        self.st = _State(ir, None)
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
    nodes = select_nodes(ir)
    edges_raw = node_edges(ir, nodes)
    loop_vars: dict[str, list[str]] = {}
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
        tag = re.match(r"\s*\[(\w+)", v.comment or "")
        node_recs.append({"id": n, "name": v.real_name, "units": v.units, "kind": v.kind,
                          "sector": grp.get(v.real_name, "Other"), "tag": tag.group(1) if tag else ""})
    edge_recs = [{"source": a, "target": b, "polarity": signs[(a, b)], "via": path}
                 for (a, b), path in sorted(edges_raw.items())]
    loops = []
    for code in sorted(loop_vars, key=lambda c: (c[0] != "R", c)):
        cyc = cycles.get(code, [])
        ring = list(zip(cyc, cyc[1:] + cyc[:1])) if cyc else []
        ps = [signs[e] for e in ring]
        sign = "?" if (not ps or "?" in ps) else ("R" if ps.count("-") % 2 == 0 else "B")
        loops.append({"code": code, "variables": [ir.variables[n].real_name for n in loop_vars[code]],
                      "cycle": cyc, "polarity": sign, "matches_code": sign == code[0]})
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model file (default models/ai_carousel.mdl)")
    ap.add_argument("--output", default=None, help="JSON file (default results/model_structure.json)")
    args = ap.parse_args(argv)
    data = build(Path(args.model) if args.model else None)
    out = Path(args.output) if args.output else paths.RESULTS_DIR / "model_structure.json"
    write_json(data, out)
    print(f"wrote {paths.relative_to_root(out)}: {len(data['nodes'])} nodes, {len(data['edges'])} "
          f"influences, loops {', '.join(l['code'] + ':' + l['polarity'] for l in data['loops'])}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
