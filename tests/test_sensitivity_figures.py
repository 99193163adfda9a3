"""analysis/sensitivity.py writes complete, seeded results; the three figures draw from them
only (no simulation) and refuse missing results."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from aicarousel import paths, plotting

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

FIGURES = {"fig_morris": "sensitivity_morris", "fig_sobol": "sensitivity_sobol",
           "fig_montecarlo_fan": "montecarlo_fan"}


@pytest.fixture(scope="module")
def results(tmp_path_factory, load_script):
    root = tmp_path_factory.mktemp("sens")
    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "RESULTS_DIR", root / "results")
    analysis = load_script(paths.ANALYSIS_DIR / "sensitivity.py")
    args = ["--morris-n", "4", "--sobol-n", "16", "--mc-n", "30", "--seed", "3"]
    assert analysis.main(args) == 0
    first = {n: xr.load_dataset(root / "results" / "sensitivity" / f"{n}.nc")
             for n in ("morris", "sobol", "montecarlo")}
    assert analysis.main(args) == 0  # same seed, same numbers
    second = {n: xr.load_dataset(root / "results" / "sensitivity" / f"{n}.nc") for n in first}
    yield root, analysis, first, second
    mp.undo()


def test_analysis_is_seeded_and_complete(results):
    root, analysis, first, second = results
    for n in first:
        for v in first[n].data_vars:
            np.testing.assert_array_equal(first[n][v].values, second[n][v].values)
    assert list(first["morris"]["output"].values) == analysis.OUTPUTS
    assert first["sobol"].sizes["param"] == analysis.N_SOBOL_PARAMS
    assert set(analysis.BAND_VARIABLES) <= set(first["montecarlo"].data_vars)
    attrs = first["morris"].attrs  # provenance as flat attributes, not a JSON blob
    assert attrs["model_hash"] and attrs["aicarousel_version"] and "provenance" not in attrs
    assert sorted(p.name for p in (root / "results" / "sensitivity").iterdir()) == \
        ["montecarlo.nc", "morris.nc", "sobol.nc"]  # no temp files left


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_figures_read_results_only(results, script, tmp_path, monkeypatch, capsys, load_script):
    root, analysis, first, _ = results
    fig = load_script(paths.FIGURES_DIR / f"{script}.py")
    monkeypatch.setattr(plotting, "out_dir", lambda: tmp_path)
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "missing")
    assert plotting.run_script(fig.main, []) == 2
    err = capsys.readouterr().err
    assert "analysis/sensitivity.py" in err and err.startswith(f"{script}: error:") and err.count("\n") == 1
    monkeypatch.setattr(paths, "RESULTS_DIR", root / "results")
    import aicarousel.ensemble as ens
    monkeypatch.setattr(ens.CompiledModel, "run_arrays",
                        lambda *a, **k: pytest.fail("the figure simulated"))
    assert fig.main([]) == 0
    png = tmp_path / f"{FIGURES[script]}.png"
    assert png.exists() and png.stat().st_size > 10_000
    assert fig.NEEDS[0] in analysis.PRODUCES
