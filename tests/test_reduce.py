"""The reduced model derived from the full carousel (aicarousel.reduce).

Tolerances: every link of the generated model equals the full model's partial derivative at the
reference state to 1e-6 relative (the brief's bound; observed: equal, both are the same sympy
derivative written with repr) and the IR's central finite differences to 1e-5 (their own
error); the reduced model's G equals the full model's to 1e-9; the generated model's runs
diverge from its equilibrium at the dominant eigenvalue's rate within 2 % (Euler error).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy as sp

from aicarousel import loopgain as LG
from aicarousel import paths
from aicarousel import reduce as RD
from aicarousel.ir import build_ir, evaluate, simulate
from aicarousel.loops import dependency_graph, link_gains, stock_residence_times

TEXTBOOK = paths.ROOT / "tests" / "data" / "textbook"


@pytest.fixture(scope="module")
def full():
    ir = build_ir(paths.MODEL_FILE)
    rm = RD.derive(ir)
    return ir, rm


@pytest.fixture(scope="module")
def derived():
    return build_ir(RD.DERIVED_FILE)


def _tagged(ir, tag):
    """``{(x, y) or x: value}`` of the derived model's constants tagged ``[tag: ...]``."""
    out = {}
    for v in ir.variables.values():
        if v.kind != "constant":
            continue
        if tag == "link":
            m = RD.LINK_TAG.search(v.comment or "")
            if m:
                out[(m.group(1), m.group(2))] = float(v.expr.value)
        else:
            m = re.search(rf"\[{tag}:\s*(.+?)\s*\]", v.comment or "")
            if m:
                out[m.group(1)] = float(v.expr.value)
    return out


def test_derived_file_is_current(full):
    ir, rm = full
    assert RD.DERIVED_FILE.read_text(encoding="utf-8") == RD.to_mdl(rm), (
        "models/core_loop_derived.mdl is out of date with models/ai_carousel.mdl; run "
        "`aicarousel loopgain --write-reduced`")


def test_every_link_exists_in_the_full_model_with_the_same_derivative(full, derived):
    ir, rm = full
    links = _tagged(derived, "link")
    assert len(links) == len(rm.links) > 0
    g = dependency_graph(ir)
    t, state = LG.run_state(ir, rm.reference_time)
    env, _ = evaluate(ir, state, t)
    fd = link_gains(ir, t, state)
    dv = LG.LinkDerivatives(ir, g)
    for (xr, yr), val in links.items():
        x, y = ir.resolve(xr), ir.resolve(yr)
        assert g.has_edge(x, y), f"link {xr} -> {yr} is not in the full model"
        exact = dv.value(x, y, env, t)
        assert val == pytest.approx(exact, rel=1e-6, abs=1e-300), (xr, yr)
        assert val == pytest.approx(fd[(x, y)], rel=1e-5, abs=1e-9), (xr, yr)


def test_own_rates_and_reference_values_match_the_full_model(full, derived):
    """a_s = the full model's total d(net flow)/ds (finite differences through every
    auxiliary) minus the part along the kept links; references = the full state there."""
    ir, rm = full
    t, state = LG.run_state(ir, rm.reference_time)
    taus = stock_residence_times(ir, t, state)
    own = _tagged(derived, "own")
    assert set(own) == {ir.variables[s].real_name for s in rm.stocks}
    for s in rm.stocks:
        total_fd = -1.0 / taus[s]
        a = own[ir.variables[s].real_name]
        assert a + rm.gains.own_on_structure[s] == pytest.approx(total_fd, rel=1e-5, abs=1e-9)
    env, _ = evaluate(ir, state, t)
    for name, val in _tagged(derived, "ref").items():
        assert val == env[ir.resolve(name)], name


def test_reduced_model_has_the_full_models_G(full, derived):
    """The generated model, analysed by the same loop-gain code at its initial (= reference)
    state, gives the full model's G and loop gains."""
    ir, rm = full
    at = LG.loop_gains_at(derived, derived.time.initial)
    assert at.G == pytest.approx(rm.gains.G, rel=1e-9)
    cf = RD.closed_forms(rm)
    assert cf.G_value == pytest.approx(rm.gains.G, rel=1e-9)
    assert "R1" in rm.left_out and set(rm.structure.paths) == {"R2", "R3"}


def test_closed_forms_agree_with_runs_of_the_reduced_model(full, derived):
    """Deviations from the closed-form equilibrium grow at the dominant eigenvalue's rate."""
    ir, rm = full
    cf = RD.closed_forms(rm)
    lam = float(np.max(cf.eigenvalues.real))
    assert cf.verdict == ("unstable" if lam > 0 else "stable")
    assert (cf.verdict == "stable") == all(h > 0 for h in cf.hurwitz)
    out = simulate(derived)
    names = [derived.resolve(ir.variables[s].real_name) for s in rm.stocks]
    dev = np.array([out[n] - cf.equilibrium[s] for n, s in zip(names, rm.stocks)])
    t = out["time"]
    k = t >= t[0] + 8
    rate = np.polyfit(t[k], np.log(np.linalg.norm(dev[:, k], axis=0)), 1)[0]
    assert rate == pytest.approx(lam, rel=0.02)


def test_first_order_reduction_threshold_exact():
    """Textbook: the reduced first-order loop has G = g tau and its G = 1 threshold of the
    link Stock -> inflow is exactly 1/tau = 0.25."""
    ir = build_ir(TEXTBOOK / "first_order_positive.mdl")
    rm = RD.derive(ir, time=50.0)
    cf = RD.closed_forms(rm)
    assert cf.G_value == pytest.approx(0.2, rel=1e-12)
    (sym,) = [s for s, (k, x, y) in cf.symbols.items() if (k, x, y) == ("link", "stock", "inflow")]
    assert cf.values[sym] == pytest.approx(0.05, rel=1e-12)
    assert cf.thresholds[sym] == pytest.approx(0.25, rel=1e-12)
    (a,) = [s for s, (k, *_) in cf.symbols.items() if k == "own"]
    assert cf.values[a] == pytest.approx(-0.25, rel=1e-12)
    # S* = 1 / (1/tau - g) = 5, eigenvalue g - 1/tau = -0.2, G = -L1 L2 / a in symbols
    assert cf.equilibrium["stock"] == pytest.approx(5.0, rel=1e-12)
    assert cf.eigenvalues.real == pytest.approx([-0.2], rel=1e-12) and cf.verdict == "stable"
    assert cf.hurwitz == pytest.approx([0.2], rel=1e-12)
    L = {k: s for s, (k2, x, y) in cf.symbols.items() for k in [(x, y)] if k2 == "link"}
    assert sp.simplify(cf.G + L[("inflow", "stock")] * L[("stock", "inflow")] / a) == 0
