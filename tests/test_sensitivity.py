"""Sensitivity analysis: problem from the parameter table, seeded sampling, reducers, Morris
and Sobol indices, Monte Carlo bands, and the PySD reference engine."""

from __future__ import annotations

import numpy as np
import pytest

from aicarousel.ensemble import compile_model
from aicarousel.errors import ParameterValueError, UnknownParameterError
from aicarousel.sensitivity import (Problem, analyze, evaluate, evaluate_series, load_problem,
                                    parse_output, percentile_bands, sample)

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

PARAMS = ["AI demand multiplier", "Construction time", "Cloud dividend rate"]


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def cm():
    return compile_model()


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def problem(cm):
    return load_problem(PARAMS, model=cm)


def test_problem_from_table_uses_table_ranges(cm):
    import pandas as pd

    from aicarousel import paths

    table = pd.read_csv(paths.PARAMETERS_CSV)
    full = load_problem(model=cm)
    uncertain = (table["low"] < table["high"]) & (table["role"] == "uncertain")
    assert len(full.names) == int(uncertain.sum())
    # levers (switches, shocks) are not uncertainties: only varied when named
    assert "Outside funding availability" not in full.names
    lever = load_problem(["Outside funding availability"], model=cm)
    assert lever.bounds == ((0.0, 1.0),)
    row = table[table["name"] == "Construction time"].iloc[0]
    i = full.names.index("Construction time")
    assert full.bounds[i] == (row["low"], row["high"])
    for n in full.names:  # every name is a constant of the model
        assert cm.ir.variables[cm.py_name(n)].kind == "constant"


def test_problem_errors():
    with pytest.raises(UnknownParameterError, match="Constructon time"):
        load_problem(["Constructon time"])
    with pytest.raises(ParameterValueError, match="low >= high"):
        load_problem(["Construction time"], ranges={"Construction time": (3.0, 1.0)})
    with pytest.raises(ParameterValueError, match="low >= high"):
        Problem(("a",), ((1.0, 1.0),))


@pytest.mark.parametrize("method,n", [("morris", 4), ("sobol", 16), ("lhs", 20), ("mc", 20)])
def test_sampling_is_seeded_and_inside_ranges(problem, method, n):
    a = sample(problem, method, n, seed=7)
    b = sample(problem, method, n, seed=7)
    c = sample(problem, method, n, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    lo = np.array([x[0] for x in problem.bounds])
    hi = np.array([x[1] for x in problem.bounds])
    assert np.all(a >= lo - 1e-12) and np.all(a <= hi + 1e-12)


def test_n_too_small_or_invalid(problem):
    with pytest.raises(ParameterValueError, match="too small"):
        sample(problem, "morris", 1)
    with pytest.raises(ParameterValueError, match="power of 2"):
        sample(problem, "sobol", 100)
    with pytest.raises(ParameterValueError, match="unknown method"):
        sample(problem, "fast", 100)


def test_output_specs(cm):
    assert parse_output("Cloud Debt", cm).label == "final(Cloud Debt)"
    assert parse_output("peak(cloud debt)", cm).label == "peak(Cloud Debt)"
    s = parse_output("cross(Lab Revenue, 50)", cm)
    assert (s.reducer, s.arg) == ("cross", 50.0)
    with pytest.raises(UnknownParameterError, match="Clod"):
        parse_output("Clod Debt", cm)
    with pytest.raises(UnknownParameterError, match="reducer"):
        parse_output("median(Cloud Debt)", cm)
    with pytest.raises(ParameterValueError, match="needs a number"):
        parse_output("at(Cloud Debt)", cm)


def test_reducers_on_known_series():
    t = np.array([2024.0, 2025.0, 2026.0, 2027.0])
    y = np.array([[0.0, 3.0, 1.0, 2.0], [5.0, 4.0, -1.0, 0.0]])
    red = {s: parse_output(s).reduce(t, y) for s in
           ["final(X)", "peak(X)", "min(X)", "mean(X)", "at(X, 2025)", "cross(X, 2.5)",
            "drop(X, 0)"]}
    np.testing.assert_array_equal(red["final(X)"], [2.0, 0.0])
    np.testing.assert_array_equal(red["peak(X)"], [3.0, 5.0])
    np.testing.assert_array_equal(red["min(X)"], [0.0, -1.0])
    np.testing.assert_allclose(red["mean(X)"], [1.5, 2.0])
    np.testing.assert_array_equal(red["at(X, 2025)"], [3.0, 4.0])
    np.testing.assert_array_equal(red["cross(X, 2.5)"], [2025.0, 2024.0])
    np.testing.assert_array_equal(red["drop(X, 0)"], [2024.0, 2026.0])
    # never crossed -> censored at the end plus one save interval
    np.testing.assert_array_equal(parse_output("cross(X, 99)").reduce(t, y), [2028.0, 2028.0])
    with pytest.raises(ParameterValueError, match="saved time"):
        parse_output("at(X, 2024.5)").reduce(t, y)


OUTPUTS = ["final(Lab Revenue)", "peak(Cloud Debt)"]


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def morris_result(problem):
    X = sample(problem, "morris", 12, seed=3)
    Y = evaluate(problem, X, OUTPUTS)
    return X, Y, analyze(problem, X, Y, "morris", seed=3)


def test_morris_indices(problem, morris_result):
    X, Y, res = morris_result
    assert set(res.data_vars) == {"mu", "mu_star", "sigma", "mu_star_conf"}
    assert res["mu_star"].dims == ("output", "param")
    assert np.all(np.isfinite(res["mu_star"].values)) and np.all(res["mu_star"].values >= 0)
    again = analyze(problem, X, Y, "morris", seed=3)
    np.testing.assert_array_equal(res["mu_star_conf"].values, again["mu_star_conf"].values)
    # end-user revenue is driven by demand, not by Cloud's dividend
    ms = res["mu_star"].sel(output="final(Lab Revenue)")
    assert float(ms.sel(param="AI demand multiplier")) > float(ms.sel(param="Cloud dividend rate"))


def test_sobol_indices(problem):
    X = sample(problem, "sobol", 64, seed=5)
    Y = evaluate(problem, X, ["final(Lab Revenue)"])
    res = analyze(problem, X, Y, "sobol", seed=5)
    st, s1 = res["ST"].values[0], res["S1"].values[0]
    conf = res["ST_conf"].values[0] + res["S1_conf"].values[0]
    assert np.all(np.isfinite(st)) and np.all(res["ST_conf"].values >= 0)
    # total effect >= first order, within the intervals plus 0.01 (estimator noise at N=64)
    assert np.all(st >= s1 - conf - 0.01)
    i = list(problem.names).index("AI demand multiplier")
    assert st[i] == st.max()


def test_constant_output_gives_nan_indices(problem):
    X = sample(problem, "morris", 4, seed=1)
    res = analyze(problem, X, {"flat": np.ones(X.shape[0])}, "morris")
    assert np.all(np.isnan(res["mu_star"].values))


def test_pysd_engine_agrees_with_ensemble(problem):
    X = sample(problem, "mc", 3, seed=11)
    a = evaluate(problem, X, OUTPUTS, engine="ensemble")
    b = evaluate(problem, X, OUTPUTS, engine="pysd")
    for k in OUTPUTS:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-9)


def test_montecarlo_bands(problem):
    X = sample(problem, "lhs", 40, seed=2)
    ds = evaluate_series(problem, X, ["Cloud Debt", "Lab Revenue"])
    assert ds["Cloud Debt"].dims == ("run", "time") and ds.sizes["run"] == 40
    bands = percentile_bands(ds, (5, 50, 95))
    q = bands["Lab Revenue"].values
    assert np.all(q[0] <= q[1]) and np.all(q[1] <= q[2])
    assert bands["Lab Revenue"].attrs["units"]
    assert np.any(q[2] > q[0])  # the parameters do spread the outcome
