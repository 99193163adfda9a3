"""Figures: shared style, provenance metadata, journal sizes, determinism, the build runner.

Figure scripts are run on small results (three scenarios) written to a temporary
directory; outputs go to another temporary directory.
"""

from __future__ import annotations

import hashlib
import re
import warnings

import numpy as np
import pytest
import yaml
from PIL import Image

from aicarousel import paths, plotting

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

MY_FIGURES = {  # script -> (output stem, width in inches); None: not a PDF/PNG figure
    "fig_baseline_dashboard": ("baseline_dashboard", plotting.DOUBLE),
    "fig_causal_loop_diagram": ("causal_loop_diagram", plotting.DOUBLE),
    "fig_scenarios": ("scenarios", plotting.DOUBLE),
    "fig_scenario_outcomes": ("scenario_outcomes", plotting.DOUBLE),
    "fig_scenario_bars": ("scenario_bars", plotting.SINGLE),
    "fig_experiments_table": None,
}
FIXED_COMMIT = "0" * 40


@pytest.fixture(autouse=True)
def fixed_commit(monkeypatch):
    # other commits may land while the suite runs; determinism is about the drawing
    monkeypatch.setattr(plotting, "git_commit", lambda short=False: FIXED_COMMIT)


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def small_results(tmp_path_factory, load_script):
    from aicarousel.experiments import run_experiments

    d = tmp_path_factory.mktemp("results")
    run_experiments(["baseline", "funding_stop", "vendor_financing_ends"], output=d / "experiments.nc",
                    table=d / "experiments_table", progress=False)
    ms = load_script(paths.ANALYSIS_DIR / "model_structure.py")
    ms.write_json(ms.build(), d / "model_structure.json")
    return d


@pytest.fixture
def build(load_script):
    """``build(script, results, out)`` runs a figure script and returns its module."""
    def run(script, results, out):
        mod = load_script(paths.FIGURES_DIR / f"{script}.py")
        assert mod.main(["--results", str(results), "--out", str(out)]) == 0
        return mod
    return run


def pdf_width_inches(path):
    m = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", path.read_bytes())
    assert m, f"no MediaBox in {path.name}"
    return float(m.group(1)) / 72.0


@pytest.mark.parametrize("script", sorted(MY_FIGURES))
def test_figure_script_writes_right_size(script, small_results, tmp_path, build):
    mod = build(script, small_results, tmp_path)
    assert mod.NEEDS and all(n.startswith("results/") for n in mod.NEEDS)
    spec = MY_FIGURES[script]
    if spec is None:
        tex = tmp_path / "experiments_table.tex"
        assert tex.stat().st_size > 0 and r"\begin{table*}" in tex.read_text()
        return
    stem, width = spec
    pdf, png = tmp_path / f"{stem}.pdf", tmp_path / f"{stem}.png"
    assert pdf.stat().st_size > 1000 and png.stat().st_size > 1000
    assert pdf_width_inches(pdf) == pytest.approx(width, abs=1e-6)
    with Image.open(png) as im:
        assert im.size[0] == round(width * plotting.DPI)
        assert im.info.get("dpi", (0, 0))[0] == pytest.approx(plotting.DPI, abs=0.5)
        assert np.asarray(im.convert("L")).std() > 5  # not blank
    for f in (pdf, png):
        meta = plotting.read_metadata(f)
        assert meta["git_commit"] == FIXED_COMMIT
        assert re.fullmatch(r"[0-9a-f]{64}", meta["model_hash"]), meta
        assert meta["scenario"] != "" and "seed" in meta


@pytest.mark.parametrize("script", ["fig_scenarios", "fig_causal_loop_diagram"])
def test_rebuild_is_byte_identical(script, small_results, tmp_path, build):
    a, b = tmp_path / "a", tmp_path / "b"
    build(script, small_results, a)
    build(script, small_results, b)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir()) and files
    for name in files:
        assert hashlib.sha256((a / name).read_bytes()).digest() == \
            hashlib.sha256((b / name).read_bytes()).digest(), name


def test_figure_reports_missing_results(tmp_path, load_script):
    mod = load_script(paths.FIGURES_DIR / "fig_scenarios.py")
    with pytest.raises(FileNotFoundError, match="analysis/experiments.py"):
        mod.main(["--results", str(tmp_path), "--out", str(tmp_path)])


def test_causal_loop_structure_comes_from_the_model(small_results):
    import json

    from aicarousel.ir import build_ir

    data = json.loads((small_results / "model_structure.json").read_text())
    ir = build_ir(paths.MODEL_FILE)
    stocks = {n for n, v in ir.variables.items() if v.kind == "stock" and not v.internal}
    assert stocks <= {n["id"] for n in data["nodes"]}
    assert {n["sector"] for n in data["nodes"]} >= {"Lab", "Cloud", "Chips"}
    codes = {l["code"] for l in data["loops"]}
    assert {"R1", "B1"} <= codes
    spec = yaml.safe_load((paths.MODELS_DIR / "named_loops.yaml").read_text())
    assert codes == {k for k, v in spec.items()  # the project's loop definitions are the ones drawn
                     if paths.MODEL_FILE.stem in (v.get("key_variables") or {})}
    for loop in data["loops"]:
        cyc = loop["cycle"]
        assert len(cyc) >= 2
        assert len(loop.get("ring_polarity", cyc)) == len(cyc)
        for a, b in zip(cyc, cyc[1:] + cyc[:1]):  # every link is a real dependency path
            assert any(e["source"] == a and e["target"] == b for e in data["edges"])
    for e in data["edges"]:
        first = e["via"][0] if e["via"] else e["source"]
        assert first in ir.dependencies(e["target"])


# ------------------------------------------------------------------ plotting unit tests
def test_axis_label_uses_units():
    import xarray as xr

    da = xr.DataArray([1.0], dims="time", name="Cloud Debt", attrs={"units": "$B"})
    assert plotting.axis_label(da) == r"Cloud Debt (\$B)"
    assert plotting.axis_label(name="Rate", unit="$B/Year") == r"Rate (\$B/year)"
    assert plotting.axis_label(name="Share", unit="Dmnl") == "Share (dimensionless)"
    with pytest.raises(ValueError, match="no unit"):
        plotting.axis_label(xr.DataArray([1.0], dims="time", name="x"))


def test_savefig_validates_and_warns(tmp_path):
    fig, ax = plotting.figure("single")
    ax.plot([0, 1], [0, 1])
    with pytest.raises(ValueError, match="lacks model_hash"):
        plotting.savefig(fig, "x", {"git_commit": "a", "scenario": "b", "seed": "c"}, directory=tmp_path)
    with pytest.raises(ValueError, match="invalid"):
        plotting.savefig(fig, "../x", plotting.provenance(), directory=tmp_path)
    fig2, _ = plotting.plt.subplots(figsize=(5, 3))
    with pytest.warns(UserWarning, match="journals want"):
        plotting.savefig(fig2, "odd", plotting.provenance(), directory=tmp_path)
    pdf, png = plotting.savefig(fig, "single", plotting.provenance(scenario="s", seed=7), directory=tmp_path)
    assert plotting.read_metadata(png)["seed"] == "7" == plotting.read_metadata(pdf)["seed"]
    assert b"CreationDate" not in pdf.read_bytes()
    with Image.open(png) as im:
        assert im.size[0] == round(plotting.SINGLE * plotting.DPI)


def test_style_palette_is_okabe_ito():
    plotting.use_style()
    cyc = [c["color"].upper().lstrip("#") for c in plotting.plt.rcParams["axes.prop_cycle"]]
    assert ["#" + c for c in cyc] == [c.upper() for c in plotting.PALETTE]
    assert plotting.plt.rcParams["savefig.dpi"] == plotting.DPI
    assert plotting.plt.rcParams["pdf.fonttype"] == 42


# ------------------------------------------------------------------ build runner
def test_build_plan_finds_every_figure_and_its_analysis(load_script):
    b = load_script(paths.FIGURES_DIR / "build.py")
    scripts = b.figure_scripts()
    assert {s.stem for s in scripts} >= set(MY_FIGURES)
    steps, orphans, deferred = b.plan(scripts, reuse=False)
    names = {s.name for s in steps}
    assert {"experiments.py", "model_structure.py"} <= names
    # the posterior is a slow step: a plain build never runs it
    assert "posterior.py" not in names
    assert "posterior.py" in {s.name for s in b.plan(scripts, reuse=False, slow=True)[0]}
    assert b.slow_hint(paths.ANALYSIS_DIR / "posterior.py") == "make calibrate"
    assert not {k.stem for k in orphans} & set(MY_FIGURES)
    assert b.declared(paths.ANALYSIS_DIR / "experiments.py", "PRODUCES")[0] == "results/experiments.nc"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SystemExit, match="no figure script for nosuch"):
            b.figure_scripts(["nosuch"])


@pytest.mark.parametrize("script", sorted(p.stem for p in paths.FIGURES_DIR.glob("fig_*.py")))
def test_every_figure_script_follows_the_contract(script, load_script, tmp_path, capsys):
    """main(argv) with --results/--out, declared NEEDS, and missing results reported one way:
    one line on stderr naming the analysis step, exit status 2."""
    import inspect

    path = paths.FIGURES_DIR / f"{script}.py"
    mod = load_script(path)
    assert list(inspect.signature(mod.main).parameters) == ["argv"]
    assert "sys.exit(plotting.run_script(main))" in path.read_text(encoding="utf-8")
    assert load_script(paths.FIGURES_DIR / "build.py").declared(path, "NEEDS") == mod.NEEDS
    status = plotting.run_script(mod.main, ["--results", str(tmp_path / "none"),
                                            "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"{script}: error: ") and err.count("\n") == 1, err
    assert "python analysis/" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_causal_loop_labels_clear_of_node_boxes(small_results, tmp_path, load_script, monkeypatch):
    # the label placement measures boxes in pixels; measured before the layout engine moved the
    # axes, the labels landed on boxes and arrows of the saved figure (seen in round 3)
    saved = {}
    real = plotting.savefig

    def keep(fig, name, provenance, directory=None, close=True):
        saved["fig"] = fig
        return real(fig, name, provenance, directory=directory, close=False)

    monkeypatch.setattr(plotting, "savefig", keep)
    mod = load_script(paths.FIGURES_DIR / "fig_causal_loop_diagram.py")
    assert mod.main(["--results", str(small_results), "--out", str(tmp_path)]) == 0
    fig = saved["fig"]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_bbox_patch() is not None]
    labels = [t for t in texts if re.match(r"[RB]\d+\n", t.get_text())]
    boxes = [t for t in texts if t not in labels]
    assert len(labels) >= 2 and boxes
    from matplotlib.patches import FancyArrowPatch

    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    covered = {}
    for lab in labels:
        r = lab.get_window_extent(renderer)
        for b in boxes:
            assert not r.overlaps(b.get_window_extent(renderer)), (lab.get_text(), b.get_text())
        # arrows crossing the label: sample every arrow's drawn path (display coordinates)
        n = 0
        for a in arrows:
            curve = [seg(t) for seg, _ in a.get_path().iter_bezier()
                     for t in np.linspace(0, 1, 30)]  # on the curves, not their control points
            pts = ax.transData.transform(np.array(curve))  # data -> pixels
            n += int(sum(r.contains(x, y) for x, y in pts))
        covered[lab.get_text().split("\n")[0]] = n
    # at most a touch (an arrow head at a corner: 10 of 30 points per Bezier segment), not a
    # label lying across an arrow
    assert max(covered.values()) <= 12, covered
    # no arrow head under a label: the head shows the link's direction (round 4: R3's label sat
    # on the head of Chips investment -> Lab Cash)
    for a in arrows:
        path = a.get_path()
        start = int(np.flatnonzero(path.codes == path.MOVETO)[-1])  # the head's polygon
        head = ax.transData.transform(path.vertices[start:-1])
        for lab in labels:
            r = lab.get_window_extent(renderer)
            assert not any(r.contains(x, y) for x, y in head), (lab.get_text(), head)
