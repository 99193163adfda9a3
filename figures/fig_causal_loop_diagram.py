"""Causal loop diagram of the carousel, drawn from the model's own structure.

Reads ``results/model_structure.json`` (written by ``analysis/model_structure.py``
from the shared IR): stocks are the nodes, placed in one column per model group
(Lab, Cloud, Chips, Investors), together with the auxiliaries that
are key variables of the project's named loops (``models/named_loops.yaml``).
For each loop (R1-R3, B1-B4) the analysis takes the shortest cycle through its key
variables with the expected polarity; the diagram draws the union of these
cycles and labels each loop, with its name, near its centre. An arrow A -> B means B (or
B's net flow) depends on A through unnamed auxiliaries; solid for a positive,
dashed for a negative measured polarity, dotted where the link is inactive in
the baseline (e.g. a MIN branch never taken).
Output: ``figures/out/causal_loop_diagram.{pdf,png}`` (double column).
"""

from __future__ import annotations

import json
import sys
import textwrap

import networkx as nx
import numpy as np
from matplotlib.patches import FancyArrowPatch

from aicarousel import plotting

#: Results this figure reads.
NEEDS = ["results/model_structure.json"]
#: Columns with more nodes than this are drawn as a zig-zag of half-width ``ZIGZAG`` (column units).
ZIGZAG_ABOVE = 6
#: Loop-label placement: cost of moving a label one data unit from its loop's centre, in
#: covered edge sample points (each edge is sampled at ``EDGE_SAMPLES`` points, dense enough
#: that an arrow crossing a label's corner is seen).
LABEL_DISTANCE_COST = 3.0
EDGE_SAMPLES = 400
#: Weight of a covered sample point on an arrow's last ``HEAD_SHARE`` before its target box
#: (the head, which shows the link's direction, must stay visible) and elsewhere (a shaft
#: passes behind the label's white box and stays legible). In the Lab column no spot near R3's
#: centre is free of shafts; with equal weights R3's label sat on the head of Chips -> Lab Cash.
HEAD_WEIGHT, SHAFT_WEIGHT, HEAD_SHARE = 25.0, 0.25, 1 / 12
ZIGZAG = 0.6
#: Column order of the model groups.
COLUMN_ORDER = ["Lab", "Investors", "Cloud", "Chips"]
#: Loop names shown beside the codes when the results carry none (models/named_loops.yaml
#: names them; these follow the brief, section 4).
LOOP_NAMES = {
    "R1": "vendor financing", "R2": "valuation", "R3": "compute-revenue",
    "B1": "debt service", "B2": "spot price", "B3": "Lab cash", "B4": "obsolescence",
}


def layout(nodes, edges, columns):
    """Deterministic layered layout: sectors in columns, barycentre ordering within.

    Parameters
    ----------
    nodes : list of dict
        Node records (``id``, ``sector``).
    edges : list of (str, str)
    columns : list of str
        Sector order, left to right.

    Returns
    -------
    dict
        ``id -> (x, y)`` in data units (x: column index, y in [0, 1]).
    """
    g = nx.DiGraph()
    g.add_nodes_from(n["id"] for n in nodes)
    g.add_edges_from(edges)
    col = {n["id"]: columns.index(n["sector"]) if n["sector"] in columns else len(columns) for n in nodes}
    members = {c: [n["id"] for n in nodes if col[n["id"]] == c] for c in sorted(set(col.values()))}
    order = {c: list(m) for c, m in members.items()}  # model order to start
    pos_rank = {}
    for _ in range(8):  # barycentre sweeps
        for c, ids in order.items():
            for i, n in enumerate(ids):
                pos_rank[n] = (i + 0.5) / len(ids)
        for c, ids in order.items():
            def bary(n):
                nb = [pos_rank[m] for m in nx.all_neighbors(g, n) if col[m] != c]
                return (np.mean(nb) if nb else pos_rank[n], pos_rank[n], n)
            order[c] = sorted(ids, key=bary)
    pos = {}
    x = 0.0
    for c in sorted(order):
        ids = order[c]
        k = len(ids)
        zig = ZIGZAG if k > ZIGZAG_ABOVE else 0.0
        x += zig
        for i, n in enumerate(ids):
            y = 0.5 if k == 1 else 1.0 - i / (k - 1)
            pos[n] = (x + (zig if i % 2 else -zig), y)
        pos[f"__column_{c}"] = (x, 1.0)
        x += 1.0 + zig
    return pos


def best_curvature(p0, p1, obstacles, first: float, frame=None) -> float:
    """Curvature (matplotlib ``arc3`` rad) of the first arc from p0 to p1 that misses every box.

    Parameters
    ----------
    p0, p1 : array-like
        End points in display coordinates (pixels).
    obstacles : list of matplotlib.transforms.Bbox
        Boxes of the other nodes, in display coordinates.
    first : float
        Preferred curvature; alternatives of growing bend on either side are tried next.
    frame : matplotlib.transforms.Bbox, optional
        The arc must stay inside this box (the axes).

    Returns
    -------
    float
        The chosen rad (``first`` when no candidate is free).
    """
    for rad in (first, -first, 0.0, 0.2, -0.2, 0.35, -0.35, 0.5, -0.5):
        pts = arc_points(p0, p1, rad, lo=0.08, hi=0.92)
        if frame is not None and not all(frame.contains(x, y) for x, y in pts):
            continue
        if not any(bb.contains(x, y) for bb in obstacles for x, y in pts):
            return rad
    return first


def arc_points(p0, p1, rad: float, n: int = 40, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """Points on matplotlib's ``arc3`` connection (a quadratic Bezier) between p0 and p1 (pixels)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    ctrl = (p0 + p1) / 2 + rad * np.array([d[1], -d[0]])  # as matplotlib's arc3
    s = np.linspace(lo, hi, n)[:, None]
    return (1 - s) ** 2 * p0 + 2 * (1 - s) * s * ctrl + s ** 2 * p1


def main(argv=None) -> int:
    """Build the figure."""
    results, out = plotting.script_dirs(argv, __doc__.splitlines()[0])
    path = plotting.require(results / "model_structure.json", "python analysis/model_structure.py")
    data = json.loads(path.read_text(encoding="utf-8"))
    pol = {(e["source"], e["target"]): e["polarity"] for e in data["edges"]}
    ring_edges = []
    for loop in data["loops"]:
        cyc = loop["cycle"]
        ring = [(a, b) for a, b in zip(cyc, cyc[1:] + cyc[:1]) if a != b]
        ring_edges += ring
        # along a named loop, a link's sign is that of the loop's own path (other paths
        # between the same two nodes may differ)
        for e, sign in zip(ring, loop.get("ring_polarity") or []):
            pol[e] = sign
    ring_edges = sorted(set(ring_edges))
    on_loop = {n for e in ring_edges for n in e}
    nodes = [n for n in data["nodes"] if n["id"] in on_loop]
    columns = [c for c in COLUMN_ORDER if c in {n["sector"] for n in nodes}]
    columns += sorted({n["sector"] for n in nodes} - set(columns))
    pos = layout(nodes, ring_edges, columns)

    fig, ax = plotting.figure("double", height=5.2)
    ax.set_axis_off()
    ax.grid(False)
    xscale, yscale = 1.8, 4.6  # data units per column / per unit height
    P = {n: (x * xscale, y * yscale) for n, (x, y) in pos.items()}
    node_xy = {n: p for n, p in P.items() if not n.startswith("__")}
    sector_color = {c: plotting.SECTOR_COLORS.get(c, plotting.OKABE_ITO["grey"]) for c in columns}
    for i, c in enumerate(columns):
        ax.text(P[f"__column_{i}"][0], yscale + 0.5, c, ha="center", va="bottom", fontsize=8, fontweight="bold",
                color=sector_color[c])
    boxes = {}
    for n in nodes:
        x, y = P[n["id"]]
        label = "\n".join(textwrap.wrap(n["name"], 15))
        stock = n["kind"] == "stock"
        t = ax.text(x, y, label, ha="center", va="center", fontsize=6.2, zorder=3,
                    fontweight="bold" if stock else "normal",
                    bbox=dict(boxstyle="square,pad=0.3" if stock else "round,pad=0.3", fc="white",
                              ec=sector_color.get(n["sector"], "grey") if stock else "#bbbbbb", lw=0.9))
        boxes[n["id"]] = t
    style = {"+": dict(color=plotting.OKABE_ITO["blue"], linestyle="-"),
             "-": dict(color=plotting.OKABE_ITO["vermillion"], linestyle=(0, (3, 2))),
             "?": dict(color=plotting.OKABE_ITO["grey"], linestyle=(0, (1, 1.5)))}
    xs = [p[0] for p in node_xy.values()]
    ax.set_xlim(min(xs) - 0.85, max(xs) + 0.85)
    ax.set_ylim(-0.55, yscale + 0.9)
    for k, lab in (("+", "positive link (+)"), ("-", "negative link (−)"),
                   ("?", "inactive in the baseline")):
        ax.plot([], [], label=lab, **style[k])
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.05), ncol=3, fontsize=7)
    # fix the layout before measuring in pixels: the layout engine moves the axes at draw time
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    box_px = {n: t.get_window_extent(renderer).expanded(1.05, 1.15) for n, t in boxes.items()}
    edge_pts, edge_weights = [], []
    for a, b in ring_edges:
        (xa, ya), (xb, yb) = P[a], P[b]
        same_col = abs(xa - xb) < 0.5 * xscale
        first = (0.25 if abs(ya - yb) > 1.2 else 0.12) if same_col else 0.1
        q0, q1 = ax.transData.transform((xa, ya)), ax.transData.transform((xb, yb))
        rad = best_curvature(q0, q1, [bb for n, bb in box_px.items() if n not in (a, b)], first,
                             frame=ax.get_window_extent(renderer))
        px = arc_points(q0, q1, rad, n=EDGE_SAMPLES)
        edge_pts.append(ax.transData.inverted().transform(px))
        outside = np.flatnonzero([not box_px[b].contains(x, y) for x, y in px])
        w = np.full(len(px), SHAFT_WEIGHT)
        if len(outside):  # the head: the last points before the curve enters the target box
            w[max(0, outside[-1] - int(HEAD_SHARE * len(px))):outside[-1] + 1] = HEAD_WEIGHT
        edge_weights.append(w)
        arrow = FancyArrowPatch(
            (xa, ya), (xb, yb), connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>,head_length=3,head_width=1.6",
            patchA=boxes[a].get_bbox_patch(), patchB=boxes[b].get_bbox_patch(), shrinkA=1, shrinkB=1,
            lw=0.7, zorder=2, **style[pol.get((a, b), "?")])
        ax.add_patch(arrow)
    # loop labels: as near the centre of each loop's cycle as possible without covering a box
    to_data = ax.transData.inverted()

    def extent(artist, pad=0.04):
        bb = artist.get_window_extent(renderer).transformed(to_data)
        return (bb.x0 - pad, bb.y0 - pad, bb.x1 + pad, bb.y1 + pad)

    def overlaps(r, q):
        return not (r[2] < q[0] or q[2] < r[0] or r[3] < q[1] or q[3] < r[1])

    taken = [extent(t) for t in boxes.values()]
    candidates = sorted(((dx * 0.12, dy * 0.12) for dx in range(-16, 17) for dy in range(-16, 17)),
                        key=lambda d: (d[0] ** 2 + (1.6 * d[1]) ** 2, d))
    for loop in data["loops"]:
        pts = np.array([node_xy[s] for s in loop["cycle"] if s in node_xy])
        if not len(pts):
            continue
        cx, cy = pts.mean(axis=0)
        reinforcing = loop["code"].startswith("R")
        title = loop.get("name") or LOOP_NAMES.get(loop["code"], "")
        label = ax.text(cx, cy, "\n".join([loop["code"]] + textwrap.wrap(title, 16)), ha="center",
                        va="center", fontsize=6.5, fontweight="bold", zorder=4,
                        color=plotting.OKABE_ITO["green"] if reinforcing else plotting.OKABE_ITO["purple"],
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
        best = None
        for dx, dy in candidates:  # free of boxes and labels; few edge points covered, near
            dist = float(np.hypot(dx, dy))
            if best is not None and LABEL_DISTANCE_COST * dist >= best[0]:
                break
            label.set_position((cx + dx, cy + dy))
            r = extent(label)
            inside = r[0] > ax.get_xlim()[0] and r[2] < ax.get_xlim()[1] and r[1] > -0.3 \
                and r[3] < yscale + 0.3
            if not inside or any(overlaps(r, q) for q in taken):
                continue
            hits = sum(float((w * ((pts[:, 0] > r[0]) & (pts[:, 0] < r[2]) & (pts[:, 1] > r[1])
                                   & (pts[:, 1] < r[3]))).sum())
                       for pts, w in zip(edge_pts, edge_weights))
            score = hits + LABEL_DISTANCE_COST * dist
            if best is None or score < best[0]:
                best = (score, cx + dx, cy + dy)
        if best is not None:
            label.set_position(best[1:])
        taken.append(extent(label))
    prov = plotting.provenance(scenario="baseline", source="results/model_structure.json")
    prov["model_hash"] = data.get("model_hash", "none")
    plotting.savefig(fig, "causal_loop_diagram", prov, directory=out)
    return 0


if __name__ == "__main__":
    sys.exit(plotting.run_script(main))
