"""Subscripted models in every engine: the IR's reference evaluator, the ensemble and the sympy
system agree with PySD to a relative 1e-12 on every saved step of every subscripted shared test
model they claim (with per-run values of subscripted constants, element by element); results
keep the subscript dimensions; what is not supported is refused with the feature named."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from aicarousel.ensemble import CompiledModel
from aicarousel.errors import ParameterValueError, UnsupportedFeatureError
from aicarousel.ir import build_ir, simulate
from engines import compare_all, pysd_model, pysd_run
from reference_models import TM
from test_ir import SUPPORTED

SUBSCRIPTED = [r for r in SUPPORTED if build_ir(TM / r).arrays] if TM.is_dir() else []

CONTROL = ("INITIAL TIME = 0\n~ ~ |\nFINAL TIME = 4\n~ ~ |\nTIME STEP = 0.5\n~ ~ |\n"
           "SAVEPER = TIME STEP\n~ ~ |\n")


def _mdl(tmp_path, body, name="m"):
    p = tmp_path / f"{name}.mdl"
    p.write_text("{UTF-8}\n" + body + CONTROL)
    return p


def _param_sets(ir, k=2):
    """The model's values, then each of up to ``k`` subscripted constants scaled (one element
    per set, so the ensemble gets different per-run values element by element)."""
    whole = {a for a, info in ir.arrays.items()  # PySD replaces the whole array
             if all(ir.variables[e].kind == "constant" for e in info.elements.values())}
    elems = [n for n, v in ir.variables.items() if v.array is not None and v.kind == "constant"
             and v.array[0] in whole and v.expr.value != 0.0]
    sets = [{}]
    for i, n in enumerate(elems[:k]):
        sets.append({n: ir.variables[n].expr.value * (1.25 + 0.5 * i)})
    return sets


def test_some_models_are_subscripted():
    if not TM.is_dir():
        pytest.skip("shared test models not available")
    assert len(SUBSCRIPTED) >= 40


@pytest.mark.skipif(not TM.is_dir(), reason="shared test models not available")
@pytest.mark.parametrize("rel", SUBSCRIPTED)
def test_subscripted_model_matches_pysd_in_every_engine(rel, tmp_path):
    """IR, ensemble (N = 1 and N > 1 with per-run element values) and sympy equal PySD's run
    to a relative 1e-12 on every saved step (PySD given the same values as a DataArray)."""
    ir = build_ir(TM / rel)
    diffs = compare_all(TM / rel, tmp_path, _param_sets(ir))
    bad = {k: v[:3] for k, v in diffs.items() if v}
    assert not bad, bad


ARRAY_MODEL = """Region: north, south, east
~ ~ |
Good: food, fuel
~ ~ |
capacity[Region, Good] = 10, 20; 30, 40; 50, 60
~ ~ |
growth[Region] = 0.1, 0.2, 0.3
~ ~ |
Stock[Region, Good] = INTEG(growth[Region] * Stock[Region, Good] * (1 - Stock[Region, Good] / capacity[Region, Good]), 1)
~ ~ |
total[Good] = SUM(Stock[Region!, Good])
~ ~ |
smoothed[Region] = SMOOTH(SUM(Stock[Region, Good!]), 1)
~ ~ |
"""


@pytest.fixture
def array_model(tmp_path):
    return _mdl(tmp_path, ARRAY_MODEL, "logistic")


def test_dataset_keeps_subscript_dims(array_model):
    cm = CompiledModel(build_ir(array_model))
    ds = cm.run(n=2)
    assert ds["Stock"].dims == ("run", "time", "Region", "Good")
    assert list(ds["Region"].values) == ["north", "south", "east"]
    assert ds["total"].dims == ("run", "time", "Good")
    assert ds["growth"].dims == ("run", "time", "Region")
    out = simulate(cm.ir)
    np.testing.assert_array_equal(ds["Stock"].sel(Region="south", Good="fuel").values[0],
                                  out["stock__south__fuel"])
    np.testing.assert_array_equal(ds["total"].sel(Good="food").values[1], out["total__food"])


def test_subscripted_constant_varied_per_run_element_by_element(array_model, tmp_path):
    """A (runs, Region) array, a DataArray with a run dimension and one run's values each give
    PySD's numbers (PySD given the same values as a DataArray)."""
    ir = build_ir(array_model)
    cm = CompiledModel(ir)
    g = np.array([[0.1, 0.2, 0.3], [0.5, 0.05, 0.3], [0.2, 0.2, 0.9]])
    _, v = cm.run_arrays({"growth": g}, outputs=["Stock", "smoothed"])
    da = xr.DataArray(g, dims=["run", "Region"],
                      coords={"Region": ["north", "south", "east"]})
    _, w = cm.run_arrays({"growth": da}, outputs=["Stock", "smoothed"])
    model = pysd_model(array_model, tmp_path)
    for r in range(3):
        params = {f"growth__{reg}": g[r, i] for i, reg in enumerate(["north", "south", "east"])}
        ref = pysd_run(model, ir, params)
        mine = simulate(ir, {"growth": g[r]})
        for k in v:
            np.testing.assert_array_equal(v[k][r], w[k][r])
            np.testing.assert_allclose(v[k][r], ref[k], rtol=1e-12, atol=0, err_msg=k)
            np.testing.assert_allclose(mine[k], ref[k], rtol=1e-12, atol=0, err_msg=k)
    assert not np.allclose(v["stock__south__fuel"][0], v["stock__south__fuel"][1])
    # one element by its own name, all runs
    _, e = cm.run_arrays({"growth[south]": np.array([0.2, 0.05])}, outputs=["Stock"])
    np.testing.assert_array_equal(e["stock__south__food"][1], v["stock__south__food"][1])


def test_bad_array_values_name_the_variable(array_model):
    cm = CompiledModel(build_ir(array_model))
    with pytest.raises(ParameterValueError, match="growth.*shape"):
        cm.run_arrays({"growth": np.ones(4)})
    with pytest.raises(ParameterValueError, match="growth.*Good"):
        cm.run_arrays({"growth": xr.DataArray(np.ones(2), dims=["Good"])})


def test_subscripted_constants_through_the_one_validator(array_model):
    """params.validate knows a subscripted constant as a whole and per element (any case and
    spacing); a bad element, a wrong number of subscripts, a value out of range or one
    element given twice is refused naming the variable and its elements."""
    from aicarousel.errors import UnknownParameterError
    from aicarousel.params import facts_from_ir, validate

    ir = build_ir(array_model)
    fx = facts_from_ir(ir)
    clean, _ = validate({"growth": [0.1, 0.2, 0.4], "Capacity[ South , fuel ]": 3.0}, fx)
    assert set(clean) == {"growth", "capacity[south,fuel]"}
    clean, _ = validate({"growth": np.full((5, 3), 0.2)}, fx, per_run=True)
    with pytest.raises(UnknownParameterError, match=r"'growth' has no element 'west' in "
                       r"Region \(its elements: north, south, east\)"):
        validate({"growth[west]": 0.1}, fx)
    with pytest.raises(UnknownParameterError, match=r"1 subscript\(s\) \(Region\)"):
        validate({"growth[north, food]": 0.1}, fx)
    with pytest.raises(ParameterValueError, match=r"'growth' and 'growth\[south\]' both name"):
        validate({"growth": 0.2, "growth[south]": 0.1}, fx)
    with pytest.raises(ParameterValueError, match="growth.*shape"):
        validate({"growth": np.ones((5, 3))}, fx)  # per-run values where one run is meant
    cm = CompiledModel(ir)
    _, a = cm.run_arrays({"GROWTH[ South ]": np.array([0.2, 0.05])}, outputs=["Stock"])
    _, b = cm.run_arrays({"growth": np.array([[0.1, 0.2, 0.3], [0.1, 0.05, 0.3]])},
                         outputs=["Stock"])
    for k in a:
        np.testing.assert_array_equal(a[k][1], b[k][1])
    from aicarousel import model  # PySD through model.run: the array is passed as a DataArray
    model.run({"growth[south]": 0.3, "capacity": 50.0}, model_file=array_model)


# -- refusals: the feature and the variable are named --------------------------------------
ORDER_MODEL = """Dim: a, b, c, d
~ ~ |
R: r1, r2
~ ~ |
k[Dim] = 1, 2, -3, 0
~ ~ |
x[Dim] = SIN(Time * k[Dim])
~ ~ |
order[Dim] = VECTOR SORT ORDER(x[Dim], 1)
~ ~ |
order desc[Dim] = VECTOR SORT ORDER(x[Dim], -1)
~ ~ |
rank[Dim] = VECTOR RANK(x[Dim], 1)
~ ~ |
rank desc[Dim] = VECTOR RANK(x[Dim], 0)
~ ~ |
sorted[Dim] = VECTOR REORDER(x[Dim], order[Dim])
~ ~ |
scale[R] = 1, -1
~ ~ |
y[R, Dim] = x[Dim] * scale[R]
~ ~ |
rank2[R, Dim] = VECTOR RANK(y[R, Dim], 1)
~ ~ |
S[Dim] = INTEG(rank[Dim] * 0.1 + sorted[Dim] + SUM(rank2[R!, Dim]), 0)
~ ~ |
"""


def test_vector_sort_order_rank_reorder_match_pysd(tmp_path):
    """Orders and ranks of a vector that changes (with ties at t = 0), ascending and
    descending, 1-d and along the last axis of a 2-d array, in every engine."""
    mdl = _mdl(tmp_path, ORDER_MODEL, "order")
    # (the sympy system of these nested IF THEN ELSEs takes minutes to build: left out)
    diffs = compare_all(mdl, tmp_path, [{}, {"k__b": -1.0}, {"k__d": 0.5}], symbolic=False)
    bad = {k: v[:3] for k, v in diffs.items() if v}
    assert not bad, bad


STATEFUL_MODEL = """Dim: a, b, c
~ ~ |
Sub: a, b
~ ~ |
x[Dim] = 1, 2, 4
~ ~ |
T[Dim] = 1, 1.5, 2
~ ~ |
input[Dim] = x[Dim] * (1 + STEP(1, 1)) + RAMP(0.5, 2, 3)
~ ~ |
sm[Dim] = SMOOTH3(input[Dim], T[Dim])
~ ~ |
smi[Dim] = SMOOTHI(input[Dim], 1, x[Dim])
~ ~ |
d1[Dim] = DELAY1(input[Dim], T[Dim])
~ ~ |
d3[Sub] = DELAY3I(input[Sub], 2, 0.5)
~ ~ |
tr[Dim] = TREND(input[Dim], 1, 0)
~ ~ |
init[Dim] = INITIAL(sm[Dim] + 1)
~ ~ |
tab[a]([(0,0)-(10,10)],(0,0),(5,10),(10,10))
~ ~ |
tab[b]([(0,0)-(10,10)],(0,1),(10,0))
~ ~ |
tab[c]([(0,0)-(10,10)],(0,2),(3,3),(10,5))
~ ~ |
looked[Dim] = tab[Dim](input[Dim])
~ ~ |
S[Dim] = INTEG(sm[Dim] + smi[Dim] + d1[Dim] + tr[Dim] - 0.1 * S[Dim] + looked[Dim], init[Dim])
~ ~ |
S2[Sub] = INTEG(d3[Sub], 0)
~ ~ |
"""


def test_subscripted_delays_smooths_lookups_match_pysd(tmp_path):
    """SMOOTH3/SMOOTHI/DELAY1/DELAY3I/TREND/INITIAL and a lookup with one table per element,
    with per-run values of subscripted constants, equal PySD in every engine (1e-12)."""
    mdl = _mdl(tmp_path, STATEFUL_MODEL, "stateful")
    diffs = compare_all(mdl, tmp_path, [{}, {"t__b": 0.8, "x__c": 3.0}, {"x__a": 2.5}])
    bad = {k: v[:3] for k, v in diffs.items() if v}
    assert not bad, bad


REFUSED = {
    "VECTOR RANK with a direction that varies": """Dim: a, b, c
~ ~ |
x[Dim] = 3, 1, 2
~ ~ |
r[Dim] = VECTOR RANK(x[Dim], Time - 1)
~ ~ |
""",
    "VECTOR SELECT with a selection array that varies": """Dim: a, b
~ ~ |
x[Dim] = 3, 1
~ ~ |
s[Dim] = STEP(1, 2)
~ ~ |
v = VECTOR SELECT(s[Dim!], x[Dim!], 0, 0, 0)
~ ~ |
""",
    "VECTOR ELM MAP": """Dim: a, b, c
~ ~ |
x[Dim] = 1, 2, 3
~ ~ |
y[Dim] = VECTOR ELM MAP(x[a], 1)
~ ~ |
""",
    "which the left-hand side lacks": """Dim: a, b
~ ~ |
x[Dim] = 3, 1
~ ~ |
y = x[Dim] * 2
~ ~ |
""",
}


@pytest.mark.parametrize("feature", sorted(REFUSED))
def test_unsupported_subscript_features_are_named(feature, tmp_path):
    mdl = _mdl(tmp_path, REFUSED[feature])
    with pytest.raises(UnsupportedFeatureError) as exc:
        build_ir(mdl)
    msg = str(exc.value)
    assert feature.lower() in msg.lower() and "variable '" in msg


def test_carousel_builds_without_the_array_path():
    """The unsubscripted carousel takes the scalar builder: no arrays, no element names."""
    from aicarousel import paths

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ir = build_ir(paths.MODEL_FILE)
    assert ir.arrays == {} and all(v.array is None for v in ir.variables.values())


def test_table_of_the_wrong_size_is_a_model_file_error(tmp_path):
    from aicarousel.errors import ModelFileError

    mdl = _mdl(tmp_path, "Dim: a, b, c\n~ ~ |\nx[Dim] = 1, 2\n~ ~ |\n")
    with pytest.raises(ModelFileError, match="'x'.*2 numbers for 3 elements"):
        build_ir(mdl)
