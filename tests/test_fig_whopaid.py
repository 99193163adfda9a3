"""figures/fig_whopaid.py draws from results only (no simulation) and refuses missing results."""

from __future__ import annotations

import pytest

from aicarousel import accounts as A
from aicarousel import paths, plotting

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


@pytest.fixture
def fig(load_script):
    return load_script(paths.FIGURES_DIR / "fig_whopaid.py")


def test_figure_is_drawn_from_results_and_missing_results_are_refused(fig, tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(plotting, "out_dir", lambda: tmp_path / "out")
    (tmp_path / "out").mkdir()
    assert plotting.run_script(fig.main, []) == 2
    err = capsys.readouterr().err
    assert "analysis/whopaid.py" in err and err.startswith("fig_whopaid: error:") and err.count("\n") == 1
    acc, ds, trace = A.analyse()
    for name in fig.SCENARIOS:  # the same run twice keeps the test fast
        A.write_results(tmp_path / "results" / "whopaid" / name, acc, ds, trace, scenario=name)
    monkeypatch.setattr(A, "analyse", lambda *a, **k: pytest.fail("the figure simulated"))
    assert fig.main([]) == 0
    png = tmp_path / "out" / "whopaid.png"
    assert png.exists() and png.stat().st_size > 10_000
    assert plotting.read_metadata(png).get("scenario") == ",".join(fig.SCENARIOS)


def test_declared_results_are_literal_and_match_the_scenarios(fig):
    """figures/build.py reads NEEDS/PRODUCES from the source text: they must be literals."""
    import ast
    found = {}
    for script, name in ((paths.FIGURES_DIR / "fig_whopaid.py", "NEEDS"),
                         (paths.ANALYSIS_DIR / "whopaid.py", "PRODUCES")):
        tree = ast.parse(script.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == name
                                                    for t in node.targets):
                found[name] = ast.literal_eval(node.value)
    expected = [f"results/whopaid/{s}/trace.nc" for s in fig.SCENARIOS]
    assert found["NEEDS"] == expected and found["PRODUCES"] == expected
