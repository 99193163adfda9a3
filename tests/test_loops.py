"""Feedback loops from the IR dependency graph, named loops, and the pysimlin comparison."""

from __future__ import annotations

import numpy as np
import pytest

from aicarousel import paths
from aicarousel.errors import AicarouselError
from aicarousel.ir import build_ir
from aicarousel.loops import compare_with_simlin, find_loops, load_named_loops, \
    match_named_loops


@pytest.fixture(scope="module")
def core_ir():
    """The carousel's reduced model (generated from the full model)."""
    return build_ir(paths.REDUCED_MODEL_FILE)


#: The rebuilt carousel has more than 200,000 feedback loops in all (three construction stages,
#: finance and distress links); the tests enumerate every loop of at most this many variables,
#: which holds every named loop.
CAROUSEL_LENGTH_BOUND = 18


@pytest.fixture(scope="module")
def carousel():
    ir = build_ir(paths.MODEL_FILE)
    return ir, find_loops(ir, length_bound=CAROUSEL_LENGTH_BOUND)


def test_core_loops_polarity_and_names(core_ir):
    rep = find_loops(core_ir)
    assert not rep.truncated and len(rep.loops) >= 2
    named = match_named_loops(core_ir, rep)
    assert set(named) == {"R2", "R3"}
    assert all(v["n_cycles"] >= 1 and v["polarity_ok"] for v in named.values())
    # every loop of the derived model is a reinforcing loop or a stock's own adjustment
    assert all(lp.polarity == "R" or len(lp.variables) == 1 for lp in rep.loops)


def test_core_loops_match_simlin(core_ir):
    c = compare_with_simlin(core_ir)
    assert c["simlin_count"] > 0 and c["common"] == c["simlin_count"] and not c["only_simlin"]


def test_carousel_loops_enumerated_and_named(carousel):
    ir, rep = carousel
    assert len(rep.loops) > 1000 and not rep.truncated
    named = match_named_loops(ir, rep)
    spec = load_named_loops()
    assert set(named) == {k for k, v in spec.items() if "ai_carousel" in v["key_variables"]}
    for lid, v in named.items():
        assert not v["missing"], lid
        assert v["n_cycles"] > 0, lid
    assert named["B4"]["polarity"] == "B"


def test_carousel_simlin_loops_are_all_in_ours(carousel):
    ir, rep = carousel
    c = compare_with_simlin(ir, rep)
    assert c["simlin_count"] > 0
    missing = [x for x in c["only_simlin"] if len(x[2]) <= CAROUSEL_LENGTH_BOUND]
    assert not missing, missing[:3]


def test_enumeration_cap_is_reported(carousel):
    ir, _ = carousel
    rep = find_loops(ir, max_loops=10)
    assert rep.truncated and len(rep.loops) == 10


def test_no_stocks_has_no_loops(tiny_mdl):
    p = tiny_mdl("a = 1\n~ ~ |\n", "flat.mdl")
    with pytest.raises(AicarouselError, match="no stocks"):
        find_loops(build_ir(p))


def test_simlin_comparison_keeps_pysimlins_importance_series():
    """``loops --simlin`` used to drop pysimlin's loop scores; they are kept as loop x time."""
    from aicarousel.loops import compare_with_simlin

    ir = build_ir(paths.TEST_MODELS_DIR / "samples" / "SIR" / "SIR.mdl")
    imp = compare_with_simlin(ir)["importance"]
    assert imp["importance"].dims == ("loop", "time")
    assert imp.sizes["loop"] == 3 and imp.sizes["time"] == 3201
    s = abs(imp["importance"]).sum("loop").values[1:]
    np.testing.assert_allclose(s, 1.0, rtol=1e-9)
