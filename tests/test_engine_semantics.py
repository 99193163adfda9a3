"""Engine semantics that once gave wrong numbers (or crashed) silently, each checked on a small
model against PySD (relative 1e-12 on every step) in every engine: the IR's reference
evaluator, the ensemble (N = 1 and N > 1 with per-run parameters) and the sympy system."""

from __future__ import annotations

import numpy as np
import pytest

from aicarousel.ensemble import CompiledModel
from aicarousel.ir import build_ir
from engines import compare_all

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

