"""The vectorised ensemble engine agrees with PySD and with the shared test models.

Tolerances: relative 1e-9 against PySD on the carousel model (baseline, every scenario, 100
random parameter sets inside the table's ranges); rtol = atol = 1e-5 against the expected
outputs of the SDXorg test models (as PySD's own test suite uses).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from aicarousel.ensemble import CompiledModel, compile_model, time_grid
from aicarousel.errors import (ModelFileError, ParameterValueError, UnknownParameterError,
                               UnsupportedFeatureError)
from aicarousel.scenarios import scenario_files, to_params
from reference_models import (PYSD_DIFFERS, TM, expected_mismatches, expected_output,
                              supported_models)

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

RTOL = 1e-9
N_RANDOM = 100
N_GROUPS = 10  # the random sets are split so pytest-xdist can spread the PySD runs


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def cm():
    return compile_model()


def _pysd_run(params=None, **kw):
    from aicarousel.model import run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(params=params or {}, **kw)


def _assert_close_to_pysd(cm, values: dict, row: int, ds, label: str):
    """Every variable of run ``row`` equals PySD's to a relative RTOL."""
    checked = 0
    for k, arr in values.items():
        name = cm.real_name(k)
        if name not in ds.data_vars:
            continue
        ref = np.broadcast_to(np.asarray(ds[name].values, float), arr[row].shape)
        got = arr[row]
        both_nan = np.isnan(ref) & np.isnan(got)
        scale = np.maximum(np.abs(ref), 1e-12)
        err = np.where(both_nan, 0.0, np.abs(got - ref) / scale)
        assert np.all(err <= RTOL), (
            f"{label}: {name} differs from PySD by {np.nanmax(err):.3g} (relative)")
        checked += 1
    assert checked > 100, f"{label}: only {checked} variables compared"


def test_baseline_matches_pysd(cm):
    t, v = cm.run_arrays()
    ds = _pysd_run()
    np.testing.assert_array_equal(t, ds["time"].values)
    _assert_close_to_pysd(cm, v, 0, ds, "baseline")


def _scenario_names():
    names = [p.stem for p in scenario_files()]
    assert names, "no scenario files found: the parametrised comparison would run nothing"
    return names


@pytest.mark.parametrize("scenario", _scenario_names())
def test_scenarios_match_pysd(cm, scenario):
    """Scenarios include time-series overrides (pandas Series interpolated like PySD)."""
    params = to_params(scenario)
    t, v = cm.run_arrays(params)
    _assert_close_to_pysd(cm, v, 0, _pysd_run(params), scenario)


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def random_sets(cm):
    """100 parameter sets drawn uniformly inside the table ranges, run as one ensemble."""
    from aicarousel.sensitivity import load_problem, sample

    problem = load_problem(model=cm)
    X = sample(problem, "mc", N_RANDOM, seed=20251110)
    params = {n: X[:, i] for i, n in enumerate(problem.names)}
    t, v = cm.run_arrays(params)
    return problem, X, v


@pytest.mark.parametrize("group", range(N_GROUPS))
def test_random_parameter_sets_match_pysd(cm, random_sets, group):
    problem, X, v = random_sets
    for row in range(group, N_RANDOM, N_GROUPS):
        p = {n: float(X[row, i]) for i, n in enumerate(problem.names)}
        _assert_close_to_pysd(cm, v, row, _pysd_run(p), f"random set {row}")


def test_vector_run_equals_single_runs_bitwise(cm):
    """A run inside an ensemble gives exactly the numbers it gives alone (chunking too)."""
    mult = np.array([0.4, 0.9, 1.3, 1.9, 1.0])
    life = np.array([2.5, 6.0, 3.0, 7.0, 4.5])
    outs = ["Cloud Debt", "Lab Cash", "Spot price", "Lab Market Value"]
    t, v = cm.run_arrays({"AI demand multiplier": mult, "GPU economic life": life},
                         outputs=outs, chunk_size=2)
    for i in range(mult.size):
        _, w = cm.run_arrays({"AI demand multiplier": mult[i], "GPU economic life": life[i]},
                             outputs=outs)
        for k in v:
            np.testing.assert_array_equal(v[k][i], w[k][0])


def test_dataset_output_has_dims_and_units(cm):
    ds = cm.run({"AI demand multiplier": np.array([0.8, 1.2])},
                outputs=["Cloud Debt", "Lab Revenue"])
    assert ds["Cloud Debt"].dims == ("run", "time")
    assert ds.sizes["run"] == 2
    assert ds["Cloud Debt"].attrs["units"] == cm.ir.variables[cm.py_name("Cloud Debt")].units
    assert ds.attrs["model_hash"] == cm.model_hash
    # more demand, more revenue at the end (behaviour, not a number)
    rev = ds["Lab Revenue"].isel(time=-1).values
    assert rev[1] > rev[0]


def test_time_series_override_per_run_and_shared(cm):
    """A Series applies to all runs; a DataFrame (time x runs) gives one series per run."""
    idx = [2024.0, 2027.0, 2035.0]  # must cover the run (model.run refuses it otherwise)
    s = pd.Series([1.0, 0.5, 0.5], index=idx)
    t, shared = cm.run_arrays({"AI demand multiplier": s}, n=2, outputs=["Lab Revenue"])
    np.testing.assert_array_equal(shared["lab_revenue"][0], shared["lab_revenue"][1])
    df = pd.DataFrame({0: [1.0, 0.5, 0.5], 1: [1.0, 1.0, 1.0]}, index=idx)
    t, per = cm.run_arrays({"AI demand multiplier": df}, outputs=["Lab Revenue"])
    np.testing.assert_array_equal(per["lab_revenue"][0], shared["lab_revenue"][0])
    _, base = cm.run_arrays(outputs=["Lab Revenue"])
    np.testing.assert_array_equal(per["lab_revenue"][1], base["lab_revenue"][0])


def test_time_grid_like_pysd():
    t, save = time_grid(2024.0, 2035.0, 1 / 64, 0.25)
    assert t.size == 11 * 64 + 1
    assert save.sum() == 11 * 4 + 1
    assert t[-1] == 2035.0


def test_bad_inputs_name_the_problem(cm):
    with pytest.raises(UnknownParameterError, match="Clod Debt"):
        cm.run_arrays({"Clod Debt": 1.0})
    with pytest.raises(UnknownParameterError, match="stock"):
        cm.run_arrays({"Cloud Debt": 1.0})  # a stock, not a constant
    with pytest.raises(UnknownParameterError, match="output"):
        cm.run_arrays(outputs=["No such output"])
    with pytest.raises(ParameterValueError, match="runs"):
        cm.run_arrays({"AI demand multiplier": np.ones(3), "GPU economic life": np.ones(4)})
    with pytest.raises(ParameterValueError, match="finite"):
        cm.run_arrays({"AI demand multiplier": np.array([1.0, np.nan])})
    with pytest.raises(ModelFileError):
        compile_model("no_such_model.mdl")


# ------------------------------------------------------------------------------------------
# shared test models
# ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not TM.is_dir(), reason="shared test models not available")
@pytest.mark.parametrize("rel", supported_models())
def test_shared_test_models(rel):
    """Every shared model the engines claim runs in the engine and matches its expected
    output (rtol = atol = 1e-5); the refused ones are checked in test_ir (one list,
    reference_models.REFUSED)."""
    from aicarousel.ir import build_ir

    ir = build_ir(TM / rel)
    cm = CompiledModel(ir)
    t, v = cm.run_arrays()
    exp = expected_output(TM / rel)
    assert exp is not None, f"no expected output beside {rel}"
    if rel in PYSD_DIFFERS:
        pytest.xfail(f"PySD itself differs from the expected output: {PYSD_DIFFERS[rel]}")
    names = {var.real_name.lower(): k for k, var in ir.variables.items()}
    checked, bad = expected_mismatches(exp, t, {k: a[0] for k, a in v.items()}, names)
    assert not bad, bad[:5]
    assert checked > 0, f"no variable of {rel} found in its expected output"


def test_forked_processes_give_identical_results(cm):
    """processes=2 splits the runs over two forked children; numbers must not change."""
    mult = np.linspace(0.3, 2.0, 40)
    outs = ["Cloud Debt", "Lab Cash", "Spot price"]
    _, a = cm.run_arrays({"AI demand multiplier": mult}, outputs=outs, chunk_size=7)
    _, b = cm.run_arrays({"AI demand multiplier": mult}, outputs=outs, chunk_size=7, processes=2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_control_overrides_reported_like_pysd(cm):
    t, v = cm.run_arrays(outputs=["SAVEPER", "TIME STEP"], saveper=1.0, time_step=1 / 32)
    assert np.all(v["saveper"] == 1.0) and np.all(v["time_step"] == 1 / 32)
    assert t.size == int(round(cm.ir.time.final - cm.ir.time.initial)) + 1


def test_pruned_outputs_equal_full_run(cm):
    """Asking for a few outputs skips variables nothing needs; the numbers do not change."""
    mult = np.linspace(0.3, 2.0, 12)
    _, full = cm.run_arrays({"AI demand multiplier": mult})
    for name in ["Cloud Debt", "Spot price", "Lab payments to Cloud", "Investor Sentiment"]:
        _, one = cm.run_arrays({"AI demand multiplier": mult}, outputs=[name])
        k = cm.py_name(name)
        np.testing.assert_array_equal(one[k], full[k])


@pytest.mark.parametrize("use_c", [True, False])
def test_pow_is_the_c_library_pow(monkeypatch, use_c):
    """Vensim ^ gives exactly math.pow's numbers (PySD's), via the C loop or the Python loop."""
    from aicarousel import ensemble as E

    if not use_c:
        monkeypatch.setattr(E, "_VPOW", False)
    rng = np.random.default_rng(3)
    a = rng.uniform(1e-3, 50.0, 20_000)
    b = rng.uniform(-3.0, 3.0, 20_000)
    ref = np.array([math.pow(x, y) for x, y in zip(a, b)])
    np.testing.assert_array_equal(E._pow(a, b), ref)
    np.testing.assert_array_equal(E._pow(a, -0.8), [math.pow(x, -0.8) for x in a])
    np.testing.assert_array_equal(E._pow(2.0, b[:5]), [math.pow(2.0, y) for y in b[:5]])
    edge = E._pow(np.array([-2.0, 0.0, 4.0]), np.array([0.5, -1.0, 0.5]))
    assert np.isnan(edge[0]) and edge[1] == np.inf and edge[2] == 2.0
