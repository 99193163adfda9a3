"""Engine semantics that once gave wrong numbers (or crashed) silently, each checked on a small
model against PySD (relative 1e-12 on every step) in every engine: the IR's reference
evaluator, the ensemble (N = 1 and N > 1 with per-run parameters) and the sympy system."""

from __future__ import annotations

import numpy as np
import pytest

from aicarousel.ensemble import CompiledModel
from aicarousel.ir import build_ir
from engines import compare_all

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

CONTROL = ("INITIAL TIME = 0\n~ ~ |\nFINAL TIME = 4\n~ ~ |\nTIME STEP = 0.5\n~ ~ |\n"
           "SAVEPER = TIME STEP\n~ ~ |\n")


def _mdl(tmp_path, name, body):
    p = tmp_path / f"{name}.mdl"
    p.write_text("{UTF-8}\n" + body + CONTROL)
    return p


def _assert_agree(diffs):
    bad = {k: v for k, v in diffs.items() if v}
    assert not bad, bad


# -- unary minus before ^ ------------------------------------------------------------------
NEG_POW = """S = INTEG(growth, 1)
~ ~ |
growth = -0.5^2 * S
~ ~ |
k = 0.5
~ ~ |
a1 = -2^2
~ ~ |
a2 = 2^-2^2
~ ~ |
a3 = -2^-2 + 3 - -2^2
~ ~ |
a4 = 2 * -3^2 * S
~ ~ |
a5 = POWER(-2, 2)
~ ~ |
a6 = -k^2 * S
~ ~ |
a7 = (-2)^2
~ ~ |
"""


def test_unary_minus_binds_looser_than_power(tmp_path):
    """Vensim (and the pinned PySD) read -0.5^2 as -(0.5^2): the stock decays.

    PySD also reads (-2)^2 as -4 (its parser folds the parenthesised -2 into a literal);
    Vensim would give 4. The engines follow PySD (a7), their reference.
    """
    mdl = _mdl(tmp_path, "negpow", NEG_POW)
    ir = build_ir(mdl)
    from aicarousel.ir import simulate
    out = simulate(ir)
    assert out["growth"][0] == -0.25 and out["a1"][0] == -4.0 and out["a2"][0] == 2.0 ** -4
    assert out["s"][-1] < out["s"][0]
    _assert_agree(compare_all(mdl, tmp_path, [{}, {"k": 0.25}, {"k": 2.0}]))


def test_stability_of_negative_power_decay(tmp_path):
    """The closed-form analysis calls the decaying model stable (eigenvalue -0.25/month)."""
    from aicarousel.stability import analyse_closed_form

    mdl = _mdl(tmp_path, "decay", "S = INTEG(growth, 1)\n~ ~ |\ngrowth = -0.5^2 * S\n~ ~ |\n")
    res = analyse_closed_form(build_ir(mdl))
    assert res.stable
    np.testing.assert_allclose(res.eigenvalues.real, [-0.25])


# -- ACTIVE INITIAL of a constant-only expression -------------------------------------------
ACTIVE = """c = 3
~ ~ |
a = ACTIVE INITIAL(c * 2, 5)
~ ~ |
b = a + 1
~ ~ |
S = INTEG(a, a)
~ ~ |
S2 = INTEG(b * Time, b)
~ ~ |
d = ACTIVE INITIAL(S * c, c)
~ ~ |
"""


def test_active_initial_of_constants_takes_its_value_after_initialisation(tmp_path):
    """a = ACTIVE INITIAL(c * 2, 5) is 5 only while initialising (S starts at 5), then 6;
    varying c per run changes a in each run."""
    mdl = _mdl(tmp_path, "active", ACTIVE)
    cm = CompiledModel(build_ir(mdl))
    _, v = cm.run_arrays({"c": np.array([3.0, 4.0])})
    np.testing.assert_array_equal(v["a"][:, 0], [6.0, 8.0])
    np.testing.assert_array_equal(v["b"][:, -1], [7.0, 9.0])
    np.testing.assert_array_equal(v["s"][:, 0], [5.0, 5.0])
    _assert_agree(compare_all(mdl, tmp_path, [{}, {"c": 4.0}, {"c": -1.5}]))


# -- division by an exact zero ---------------------------------------------------------------
ZERO_DIV = """S = INTEG(1, 0)
~ ~ |
Z = INTEG(0, 0)
~ ~ |
guard = IF THEN ELSE(S > 0, 1/S, 1)
~ ~ |
x1 = XIDZ(1, S, 5)
~ ~ |
z1 = ZIDZ(1, S)
~ ~ |
z0 = ZIDZ(0, Z) + XIDZ(Z, Z, -1)
~ ~ |
big = EXP(1000)
~ ~ |
nan = EXP(1000) - EXP(1000 + Z)
~ ~ |
"""


def _refusals(ir, **params):
    """The SimulationError message of the IR and of an N = 1 and an N = 3 ensemble run."""
    from aicarousel.errors import SimulationError
    from aicarousel.ir import simulate

    msgs = []
    with pytest.raises(SimulationError) as e:
        simulate(ir)
    msgs.append(str(e.value))
    cm = CompiledModel(ir)
    with pytest.raises(SimulationError) as e:
        cm.run_arrays()
    msgs.append(str(e.value))
    with pytest.raises(SimulationError) as e:
        cm.run_arrays({k: np.array([v] * 3) for k, v in params.items()}, n=3)
    msgs.append(str(e.value))
    return msgs


def test_guarded_division_by_exact_zero_gives_pysds_numbers(tmp_path):
    """Guarded divisions by a stock at exactly 0 (IF THEN ELSE, XIDZ, ZIDZ) run in every
    engine with PySD's numbers. The inf and nan of EXP overflow make the run numerically
    meaningless: every engine refuses it with one message naming the first such variable and
    the time (issue 9 item 5), and with allow_nonfinite=True (validate's diagnostic runs) each
    returns PySD's inf and nan."""
    from aicarousel import model
    from aicarousel.errors import SimulationError
    from aicarousel.ir import simulate

    mdl = _mdl(tmp_path, "zerodiv", ZERO_DIV)
    ir = build_ir(mdl)
    msgs = _refusals(ir)
    assert msgs[0].startswith("the run produced inf in 'big' at time 0;"), msgs[0]
    assert msgs[1] == msgs[0].replace("at time 0;", "at time 0 (run 0);")
    assert msgs[2] == msgs[1]
    with pytest.raises(SimulationError, match="'big'"):  # PySD through model.run refuses too
        model.run(model_file=mdl)
    cm = CompiledModel(ir)
    _, v = cm.run_arrays(allow_nonfinite=True)
    assert v["guard"][0, 0] == 1.0 and v["x1"][0, 0] == 5.0 and v["z1"][0, 0] == 0.0
    assert v["big"][0, 0] == np.inf and np.isnan(v["nan"][0, 0])
    ref = simulate(ir, allow_nonfinite=True)
    assert ref["big"][0] == np.inf and np.isnan(ref["nan"][0])
    diffs = compare_all(mdl, tmp_path, [{}])  # (the comparison runs allow non-finite values)
    _assert_agree(diffs)
    assert diffs["sympy[0]"] == []


def test_unguarded_division_by_exact_zero_is_refused_alike_or_ieee_on_request(tmp_path):
    """PySD stops with ZeroDivisionError on 1/Z at Z = 0 (it computes with Python floats).
    Every engine refuses the run with the same message (variable and time); with
    allow_nonfinite=True they give IEEE inf/nan, the same in the IR, in an N = 1 ensemble run
    and in each run of an N > 1 ensemble."""
    from aicarousel.ir import simulate
    from engines import pysd_model, pysd_run

    mdl = _mdl(tmp_path, "unguarded", "Z = INTEG(0, 0)\n~ ~ |\nc = 1\n~ ~ |\n"
               "inv = c / Z\n~ ~ |\nninv = -c / Z\n~ ~ |\nq = Z / Z\n~ ~ |\n")
    ir = build_ir(mdl)
    with pytest.raises(ZeroDivisionError):
        pysd_run(pysd_model(mdl, tmp_path), ir)
    msgs = _refusals(ir, c=1.0)
    assert msgs[0].startswith("the run produced inf in 'inv' at time 0;"), msgs[0]
    assert msgs[1] == msgs[2] == msgs[0].replace("at time 0;", "at time 0 (run 0);")
    ref = simulate(ir, allow_nonfinite=True)
    assert np.all(ref["inv"] == np.inf) and np.all(ref["ninv"] == -np.inf)
    assert np.all(np.isnan(ref["q"]))
    cm = CompiledModel(ir)
    _, one = cm.run_arrays(allow_nonfinite=True)
    _, many = cm.run_arrays({"c": np.array([1.0, 1.0, 1.0])}, allow_nonfinite=True)
    for k in ("inv", "ninv", "q"):
        np.testing.assert_array_equal(one[k][0], ref[k])
        np.testing.assert_array_equal(many[k], np.broadcast_to(ref[k], many[k].shape))


def test_nonfinite_later_in_the_run_is_named_alike(tmp_path):
    """A value that overflows only after some steps (and only in some runs): the IR and the
    ensemble name the same variable and time, the ensemble the first run that fails."""
    from aicarousel.errors import SimulationError
    from aicarousel.ir import simulate

    mdl = _mdl(tmp_path, "late", "S = INTEG(1, 0)\n~ ~ |\nk = 1\n~ ~ |\n"
               "late = EXP(k * 400 * S)\n~ ~ |\nlater = late * 2\n~ ~ |\n")
    ir = build_ir(mdl)
    with pytest.raises(SimulationError) as e:
        simulate(ir, {"k": 2.0})
    assert str(e.value).startswith("the run produced inf in 'late' at time 1;"), str(e.value)
    with pytest.raises(SimulationError) as e2:
        CompiledModel(ir).run_arrays({"k": np.array([0.1, 2.0, 3.0])})
    assert str(e2.value) == str(e.value).replace("at time 1;", "at time 1 (run 1);")
    assert np.isfinite(simulate(ir, {"k": 0.1})["late"]).all()


# -- DELAY FIXED and DELAY N with a varying delay time (discrete states) ------------------------
DELAYS = """k = 1
~ ~ |
dtime = 1.5
~ ~ |
inp = k * Time^2 + STEP(3, 1)
~ ~ |
df = DELAY FIXED(inp, dtime, -2)
~ ~ |
dn = DELAY N(inp, 1 + 0.5 * SIN(Time) + k, 4, 3)
~ ~ |
S = INTEG(df - dn * 0.1, 0)
~ ~ |
"""


def test_delay_fixed_and_varying_delay_n_match_pysd(tmp_path):
    """Both run as discrete states in the IR and the ensemble (N = 1 and per-run k), with
    PySD's numbers; the sympy system refuses them, naming the feature; the DELAY FIXED time
    fixes the pipe length, so overriding it is refused in both engines."""
    from aicarousel.errors import ParameterValueError, UnsupportedFeatureError
    from aicarousel.ir import simulate
    from aicarousel.symbolic import to_sympy

    mdl = _mdl(tmp_path, "delays", DELAYS)
    _assert_agree(compare_all(mdl, tmp_path, [{}, {"k": 0.5}, {"k": 2.0}], symbolic=False))
    ir = build_ir(mdl)
    with pytest.raises(UnsupportedFeatureError, match="DELAY FIXED"):
        to_sympy(ir)
    with pytest.raises(ParameterValueError, match="DELAY FIXED"):
        simulate(ir, {"dtime": 2.0})
    with pytest.raises(ParameterValueError, match="DELAY FIXED"):
        CompiledModel(ir).run_arrays({"dtime": np.array([1.0, 2.0])})


# -- macros ----------------------------------------------------------------------------------
MACROS = """:MACRO: GROWTH(input, rate)
GROWTH = INTEG(input * rate - GROWTH * half, input)
~ ~ |
half = SMOOTH(rate, 1) / 2
~ ~ |
:END OF MACRO:
k = 0.3
~ ~ |
x = GROWTH(2, k) + GROWTH(k * Time, 0.5)
~ ~ |
S = INTEG(x - S, 0)
~ ~ |
"""


def test_macros_are_inlined_per_call(tmp_path):
    """Each call of a macro gets its own copy of the macro's variables (stocks included), with
    PySD's numbers in every engine, per-run k included."""
    mdl = _mdl(tmp_path, "macros", MACROS)
    ir = build_ir(mdl)
    assert sum(1 for v in ir.variables.values() if v.internal and v.kind == "stock") == 4
    _assert_agree(compare_all(mdl, tmp_path, [{}, {"k": 0.1}, {"k": 1.2}]))


def test_macro_with_several_outputs_is_refused(tmp_path):
    from aicarousel.errors import UnsupportedFeatureError

    # (PySD parses such a definition but not a call of it, 'TWO(1 : y)')
    mdl = _mdl(tmp_path, "multi", ":MACRO: TWO(a : b)\nTWO = a\n~ ~ |\nb = 2 * a\n~ ~ |\n"
               ":END OF MACRO:\nx = 1\n~ ~ |\n")
    with pytest.raises(UnsupportedFeatureError, match="macro.*several outputs"):
        build_ir(mdl)
