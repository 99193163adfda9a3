"""The sympy system derived from the model file equals PySD's own derivatives.

At 1,000 random states, times and parameter sets for the carousel (250 per SDXorg test model
by default, see N_POINTS_TEST_MODELS; states around the baseline trajectory
scaled by U(0.7, 1.3), every constant scaled by U(0.8, 1.2)) the lambdified right-hand side
equals the ``ddt()`` of PySD's stateful objects to a relative 1e-9.
"""

from __future__ import annotations

import os
import shutil
import warnings

import numpy as np
import pytest
import sympy as sp

from aicarousel import paths
from aicarousel.errors import UnsupportedFeatureError
from aicarousel.ir import build_ir, simulate
from aicarousel.symbolic import lookup_piecewise, to_sympy

from reference_models import TM
from test_ir import SUPPORTED

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

#: Random points for the carousel (the full proof).
N_POINTS = 1000
#: Random points per SDXorg test model: PySD's xarray lookups cost ~10 ms a call, so the
#: default keeps the suite fast; AICAROUSEL_SYMBOLIC_POINTS=1000 runs the full check.
N_POINTS_TEST_MODELS = int(os.environ.get("AICAROUSEL_SYMBOLIC_POINTS", "250"))


def _translate(src, tmp_dir):
    import pysd

    dst = tmp_dir / src.name
    shutil.copy(src, dst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if src.suffix == ".mdl":
            return pysd.read_vensim(str(dst))
        return pysd.read_xmile(str(dst))


def pysd_ddt(model, ir, t, state, params):
    """Derivatives of PySD's stateful objects at a given time, state and parameter set."""
    model.set_components(params)
    model.time.update(t)
    for s, v in state.items():
        if s in ir.internal_map:
            obj, k = ir.internal_map[s]
            if np.ndim(model._stateful_elements[obj].state) == 0:  # INITIAL: a scalar
                model._stateful_elements[obj].state = v
            else:
                model._stateful_elements[obj].state[k] = v
        else:
            model._stateful_elements["_integ_" + s].state = v
    model.clean_caches()
    out = []
    for s in state:
        if s in ir.internal_map:
            obj, k = ir.internal_map[s]
            if not hasattr(model._stateful_elements[obj], "ddt"):  # INITIAL: constant
                out.append(0.0)
                continue
            out.append(float(np.asarray(model._stateful_elements[obj].ddt())[k]))
        else:
            out.append(float(model._stateful_elements["_integ_" + s].ddt()))
    return np.array(out)


def _random_points(ir, system, n, seed):
    rng = np.random.default_rng(seed)
    out = simulate(ir)
    idx = rng.integers(0, len(out["time"]), n)
    x = np.array([out[s][idx] for s in ir.stocks]).reshape(len(ir.stocks), n)
    x = x * rng.uniform(0.7, 1.3, x.shape) + rng.normal(0, 1e-3, x.shape) * (x == 0)
    p0 = system.param_vector()
    p = p0[:, None] * rng.uniform(0.8, 1.2, (len(p0), n))
    t = rng.uniform(ir.time.initial, ir.time.final, n)
    return t, x, p


def _check(model_file, tmp_path, n, seed=0, ir=None, system=None):
    ir = ir or build_ir(model_file)
    system = system or to_sympy(ir)
    f = system.lambdify()
    t, x, p = _random_points(ir, system, n, seed)
    mine = f(t, x, p)
    model = _translate(model_file, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.run()  # initialise the stateful objects
        for j in range(n):
            ref = pysd_ddt(model, ir, t[j], dict(zip(ir.stocks, x[:, j])),
                           dict(zip(system.param_names, p[:, j])))
            np.testing.assert_allclose(mine[:, j], ref, rtol=1e-9, atol=1e-12,
                                       err_msg=f"point {j}, t={t[j]}")


@pytest.fixture(scope="module")
def carousel_system():
    ir = build_ir(paths.MODEL_FILE)
    return ir, to_sympy(ir)


def test_carousel_rhs_equals_pysd(tmp_path, carousel_system):
    ir, system = carousel_system
    _check(paths.MODEL_FILE, tmp_path, N_POINTS, ir=ir, system=system)


def _symbolic_models() -> list[str]:
    """Supported shared models with stocks and no discrete state (DELAY FIXED, DELAY N with
    a varying delay time: no ODE describes them, to_sympy refuses them by name). Stocks of
    inlined macros live in PySD's Macro sub-models, out of reach of pysd_ddt: those models
    are checked against PySD's runs in test_engine_semantics / test_reference_models.
    Subscripted models are left to test_subscripts.py (its sympy check integrates the system
    along PySD's steps and compares every step with PySD's run, 1e-12): PySD keeps a
    subscripted stock as one array, which pysd_ddt does not address element by element."""
    out = []
    for r in SUPPORTED:
        ir = build_ir(TM / r)
        if ir.stocks and not ir.arrays and not any(v.discrete for v in ir.variables.values()) and all(
                s in ir.internal_map for s in ir.stocks if ir.variables[s].internal):
            out.append(r)
    return out


WITH_STOCKS = _symbolic_models() if TM.is_dir() else []


@pytest.mark.skipif(not TM.is_dir(), reason="shared test models not available")
@pytest.mark.parametrize("rel", WITH_STOCKS)
def test_test_model_rhs_equals_pysd(rel, tmp_path):
    _check(TM / rel, tmp_path, N_POINTS_TEST_MODELS)


def test_lookup_piecewise_interpolates_and_holds():
    x = sp.Symbol("x")
    pw = lookup_piecewise(((0.0, 1.0, 3.0), (0.0, 2.0, 1.0)), x)
    f = sp.lambdify(x, pw)
    for xv, yv in [(-1, 0), (0, 0), (0.5, 1), (1, 2), (2, 1.5), (3, 1), (9, 1)]:
        assert f(xv) == pytest.approx(yv, abs=1e-15)


def test_no_stocks_is_clear_error(tiny_mdl):
    mdl = tiny_mdl("a = 1\n~ ~ |\n", "flat.mdl")
    with pytest.raises(UnsupportedFeatureError, match="no stocks"):
        to_sympy(build_ir(mdl))


def test_symbols_are_named_by_py_name(carousel_system):
    ir, s = carousel_system
    assert s.state_names == ir.stocks
    assert set(s.param_names) <= set(ir.constants)
    free = set().union(*(e.free_symbols for e in s.rhs))
    assert free <= set(s.states) | set(s.params.values()) | {s.t}


def test_large_minmax_abs_piecewise_kept_as_written_with_same_value():
    """Arguments above EVALUATE_MAX_NODES skip sympy's simplification search (minutes on the
    carousel) and keep the equation's form; small ones still get sympy's canonical form."""
    from aicarousel.symbolic import EVALUATE_MAX_NODES, _function, _piecewise

    xs = sp.symbols(f"x0:{EVALUATE_MAX_NODES}", real=True)
    big = sum(x ** 2 for x in xs)
    assert _function(sp.Max, xs[0], xs[0] + 1) == xs[0] + 1  # small: evaluated as before
    m = _function(sp.Max, big, big + 1)
    assert isinstance(m, sp.Max) and m.args == (big, big + 1)
    a = _function(sp.Abs, big)
    assert isinstance(a, sp.Abs)
    assert sp.Abs(big) == big  # what sympy's evaluation would have found
    pw = _piecewise((big, big > 1), (big + 1, sp.true))
    assert isinstance(pw, sp.Piecewise) and pw.args[0].cond == (big > 1)
    f = sp.lambdify([xs], [m, a, pw])
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(0, 0.1, len(xs))
        s = float(np.sum(v ** 2))
        np.testing.assert_allclose(f(v), [s + 1, s, s if s > 1 else s + 1], rtol=1e-14)
