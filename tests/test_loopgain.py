"""Loop gains and G of the full model (aicarousel.loopgain), the loopgain command, bad input.

Tolerances: textbook answers exact to 1e-12 (the link gains are sympy derivatives of the
equations); sympy link gains vs central finite differences of the IR equations 1e-5 relative
(finite-difference error); README numbers to the digits the README prints.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from aicarousel import loopgain as LG
from aicarousel import paths
from aicarousel.cli import main
from aicarousel.ir import build_ir, simulate
from aicarousel.loops import link_gains, load_named_loops

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

TEXTBOOK = paths.ROOT / "tests" / "data" / "textbook"


@pytest.fixture(scope="module")
def first_order():
    return build_ir(TEXTBOOK / "first_order_positive.mdl")


@pytest.fixture(scope="module")
def carousel():
    ir = build_ir(paths.MODEL_FILE)
    st = LG.structure(ir)
    return ir, st, LG.loop_gains_at(ir, st=st)


# ------------------------------------------------------------------ textbook: known answers
def test_first_order_positive_loop_gain_is_g_tau(first_order):
    """S' = g S - S/tau + 1: the reinforcing loop's open-loop gain is g tau = 0.05 * 4 = 0.2."""
    at = LG.loop_gains_at(first_order, 50.0)
    assert list(at.loop_gain) == ["R1"]
    assert at.loop_gain["R1"] == pytest.approx(0.2, rel=1e-12)
    assert at.G == pytest.approx(0.2, rel=1e-12)
    (s,) = at.tau
    assert at.tau[s] == pytest.approx(4.0, rel=1e-12) and not at.horizon[s]
    # the loop's own gain is left out of the residence time: total own rate g - 1/tau
    assert at.own_total[s] == pytest.approx(0.05 - 0.25, rel=1e-12)


@pytest.mark.parametrize("g", [0.1, 0.25, 0.3])
def test_first_order_threshold_exact(first_order, g):
    """G = g tau for any g, so G = 1 exactly at g = 1/tau = 0.25."""
    at = LG.loop_gains_at(first_order, 50.0, params={"growth fraction": g})
    assert at.G == pytest.approx(g * 4.0, rel=1e-12)


@pytest.mark.parametrize("side", [0.96, 1.04])
def test_first_order_runs_below_and_above_threshold(first_order, side):
    """Runs of the model just below G = 1 return to equilibrium, just above it run away: the
    deviation from the equilibrium 1 / (1/tau - g) changes at rate g - 1/tau (Euler, 1 %)."""
    g = 0.25 * side
    out = simulate(first_order, params={"growth fraction": g})
    dev = np.abs(out["stock"] - 1.0 / (0.25 - g))
    t = out["time"]
    rate = np.polyfit(t, np.log(dev), 1)[0]
    assert np.sign(rate) == (-1 if side < 1 else 1)
    assert rate == pytest.approx(g - 0.25, rel=1e-2)


# ------------------------------------------------------------------ the carousel
def test_carousel_structure_named_loops(carousel):
    ir, st, at = carousel
    assert set(st.paths) == {"R1", "R2", "R3"}
    for lid, p in st.paths.items():
        keys = load_named_loops()[lid]["key_variables"]["ai_carousel"]
        assert {ir.resolve(k) for k in keys} <= set(p), lid
    # R1 runs through Lab's cash constraint, which never binds in the baseline
    assert at.loop_gain["R1"] == 0.0 and "R1" in st.notes
    assert at.loop_gain["R2"] > 0 and at.loop_gain["R3"] > 0


def test_sympy_link_gains_equal_finite_differences(carousel):
    """Each link gain (sympy derivative of the one equation) equals the IR's central finite
    difference at the same state: two independent ways to the same partial derivative."""
    ir, st, at = carousel
    t, state = LG.run_state(ir, at.time)
    fd = link_gains(ir, t, state)
    for (x, y), v in at.links.items():
        assert v == pytest.approx(fd[(x, y)], rel=1e-5, abs=1e-9), (x, y)


def test_G_is_mason_determinant_of_loop_gains(carousel):
    """G = 1 - det(I - A): touching loops add, so with one loop active G is its gain."""
    ir, st, at = carousel
    n = len(st.stocks)
    assert at.G == pytest.approx(1 - np.linalg.det(np.eye(n) - at.A), rel=1e-12)
    only_r3 = LG.ReinforcingStructure(ir=ir, paths={"R3": st.paths["R3"]}, names=st.names,
                                      reference_time=st.reference_time, derivs=st.derivs)
    t, state = LG.run_state(ir, at.time)
    g3 = LG.gains_at_state(only_r3, t, state)
    assert g3.G == pytest.approx(g3.loop_gain["R3"], rel=1e-9)


def test_readme_G_along_the_baseline(carousel):
    ir, st, _ = carousel
    res = LG.loop_gains_along(ir, st=st)
    below = [r.time for r in res if r.G < 1]
    sec = _readme_section()
    m = re.search(r"except\s+(.*?), when", " ".join(sec.split()))
    assert m, "README: 'except <periods>, when' not found"
    spans = []
    for part in m.group(1).split(" and "):
        ends = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", part)]
        spans.append((ends[0], ends[-1]))
    assert below == [t for t in (r.time for r in res)
                     if any(a <= t <= b for a, b in spans)]
    assert all(abs(r.G) < 1e-9 for r in res if r.G < 1)


def test_readme_smooth_thresholds(carousel):
    ir, st, _ = carousel
    names = ["ai_demand_multiplier", "revenue_potential_per_gw"]
    sec = " ".join(_readme_section().split())
    for row in LG.constant_thresholds(st, constants=names):
        m = re.search(rf"{row['name']} from (\d+(?:\.\d+)?) to (\d+(?:\.\d+)?)", sec)
        assert m and _close(m.group(1), row["value"]) and _close(m.group(2), row["threshold"])
        assert row["kind"] == "crossing"


def test_dataset_along_the_run(carousel, tmp_path):
    ir, st, _ = carousel
    res = LG.loop_gains_along(ir, st=st, every=2.0)
    ds = LG.loop_gain_dataset(st, res)
    assert ds["gain"].dims == ("loop", "time") and ds["gain"].attrs["units"] == "1"
    assert list(ds["loop"].values) == ["R1", "R2", "R3"]
    assert ds["time"].values[0] == ir.time.initial and len(ds["time"]) == 6
    assert np.all(np.isfinite(ds["G"].values))
    assert ds["tau"].attrs["units"] == "year"


# ------------------------------------------------------------------ README numbers
def _readme_section() -> str:
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- loopgain:begin -->(.*?)<!-- loopgain:end -->", text, re.S)
    assert m, "README.md lacks the loopgain block (<!-- loopgain:begin --> ... end)"
    return m.group(1)


def _close(shown: str, value: float) -> bool:
    """``shown`` is ``value`` rounded to the digits written."""
    dec = len(shown.split(".")[1]) if "." in shown else 0
    return abs(float(shown) - value) <= 0.5 * 10 ** -dec + 1e-12


def test_readme_G_and_loop_gains_come_from_the_command(carousel, capsys):
    ir, st, at = carousel
    sec = _readme_section()
    assert main(["loopgain"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"at reference time (\d+(?:\.\d+)?)", sec, re.I)
    assert m and float(m.group(1)) == at.time == LG.REFERENCE_TIME
    for lid in ("R1", "R2", "R3"):
        shown = re.search(rf"\b{lid} = (\d+(?:\.\d+)?)", sec).group(1)
        assert _close(shown, at.loop_gain[lid]), (lid, shown, at.loop_gain[lid])
        assert re.search(rf"{lid} .*: gain {at.loop_gain[lid]:.4g}", out)
    shown = re.search(r"\bG = (\d+(?:\.\d+)?)", sec).group(1)
    assert _close(shown, at.G) and f"= {at.G:.4g}" in out


def test_readme_thresholds_come_from_the_command(carousel):
    from aicarousel import reduce as RD

    ir, st, at = carousel
    cf = RD.closed_forms(RD.derive(ir, st=st))
    sec = _readme_section()
    num = r"(\d+(?:\.\d+)?)"
    rows = re.findall(rf"([A-Z][\w ]+?) -> ([A-Z][\w ]+?) from {num} to {num}", sec)
    assert len(rows) >= 2
    by_link = {(ir.variables[x].real_name, ir.variables[y].real_name): s
               for s, (kind, x, y) in cf.symbols.items() if kind == "link"}
    for x, y, ref, thr in rows:
        s = by_link[(x.strip(), y.strip())]
        assert _close(ref, cf.values[s]) and _close(thr, cf.thresholds[s]), (x, y)


# ------------------------------------------------------------------ bad input: one line
def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_model_with_no_loops(tiny_mdl, capsys):
    f = tiny_mdl("Stock = INTEG(inflow, 1) ~ u ~ |\ninflow = 2 ~ u ~ |\n", final_time=4)
    assert main(["loopgain", "--model", str(f)]) == 2
    assert "has no feedback loops" in _one_line(capsys)


def test_model_with_no_stocks(tiny_mdl, capsys):
    f = tiny_mdl("a = 2 ~ u ~ |\nb = a * 3 ~ u ~ |\n", final_time=4)
    assert main(["loopgain", "--model", str(f)]) == 2
    assert "has no stocks" in _one_line(capsys)


def test_unknown_loop_name_lists_closest(capsys):
    assert main(["loopgain", "--loop", "R22"]) == 2
    err = _one_line(capsys)
    assert "'R22' is not in named_loops.yaml" in err and "closest: R2" in err


def test_time_outside_the_run(capsys):
    assert main(["loopgain", "--time", "2050"]) == 2
    err = _one_line(capsys)
    assert "2050 lies outside the run" in err and "2024-2035" in err


def test_unknown_scenario(capsys):
    assert main(["loopgain", "--scenario", "no_such_scenario"]) == 2
    assert "no_such_scenario" in _one_line(capsys)


# ------------------------------------------------------------------ thresholds of constants
def test_first_order_constant_threshold_exact(first_order):
    st = LG.structure(first_order, time=50.0)
    (row,) = LG.constant_thresholds(st)
    assert row["name"] == "growth fraction" and row["kind"] == "crossing"
    assert row["threshold"] == pytest.approx(0.25, rel=1e-9)
    below, above = LG.threshold_runs(st, "growth fraction", row["threshold"])
    assert below["G_reference"] == pytest.approx(0.9, rel=1e-9) and below["as_predicted"]
    assert above["G_reference"] == pytest.approx(1.1, rel=1e-9) and above["as_predicted"]


def test_carousel_threshold_is_a_switch_and_full_runs_agree(carousel):
    """Lab target compute intensity and the other switch constants: G falls below 1 where Lab
    stops ordering (a MAX branch), a jump, not a smooth crossing; full runs at 0.9 and 1.1
    times each threshold: the run at 1.1 lands above 1 as predicted, the one at 0.9 does not
    (since the third round: the run's state moves with the constant; the README says so)."""
    ir, st, at = carousel
    rows = LG.constant_thresholds(st, constants=["lab_target_compute_intensity",
                                                 "contract_price_per_gw_year",
                                                 "contract_length", "planning_horizon",
                                                 "commitment_to_valuation_ratio"])
    sec = " ".join(_readme_section().split())
    for row in rows:
        m = re.search(rf"{row['name']} from (\d+(?:\.\d+)?) to (\d+(?:\.\d+)?)", sec)
        assert m and _close(m.group(1), row["value"]) and _close(m.group(2), row["threshold"])
        assert row["kind"].startswith("switch"), row
        assert abs(min(row["G_below"], row["G_above"])) < 1e-9   # "jumps to 0"
        assert max(row["G_below"], row["G_above"]) > 1    # ... from well above 1
    # the README: at 1.1 times each switch threshold the full run lands above 1 as predicted;
    # at 0.9 times none lands below 1 (the run's state moves with the constant)
    for row in rows:
        runs = LG.threshold_runs(st, row["name"], row["threshold"])
        assert [r["as_predicted"] for r in runs] == [False, True], (row["name"], runs)
        assert runs[0]["G_reference"] > 1


def test_reduced_thresholds_checked_by_full_runs(carousel):
    """Every G = 1 threshold of the reduced model's link gains is either checked by full runs
    at 0.9 and 1.1 times it (through the full model's constant that scales that link exactly:
    elasticity +-1 by sympy) or reported with the reason it cannot be. Each run, at the
    reference time of that run: G on the predicted side of 1 (exact comparison) and the growth
    rate of the loops' stocks (largest real eigenvalue of the full Jacobian over them) of the
    predicted sign, or else the loops are cut there (a link with zero gain: the full model's
    MIN/IF switch that the linearisation holds fixed), G is then 0 and deviations decay."""
    from aicarousel import reduce as RD

    ir, st, at = carousel
    rm = RD.derive(ir, st=st)
    cf = RD.closed_forms(rm)
    rows = RD.full_model_checks(rm, cf)
    assert {r["symbol"] for r in rows} == {str(s) for s, t in cf.thresholds.items()
                                           if t is not None}
    checked = [r for r in rows if r["runs"]]
    assert checked, "no threshold of the reduced model was checked by a full run"
    for r in rows:
        assert r["runs"] or r["why"], r
    for r in checked:

        # the constant's threshold puts the link gain at its threshold (state held)
        s = next(s for s in cf.values if str(s) == r["symbol"])
        kind, x, y = cf.symbols[s]
        p = {r["constant"]: r["constant_threshold"]}
        t, state = LG.run_state(ir, rm.reference_time)
        g = LG.gains_at_state(st, t, state, p)
        if not r["why"]:  # the constant moves this link alone
            assert g.links[(x, y)] == pytest.approx(r["threshold"], rel=1e-9)
        else:  # it moves other links of the loops too: its own threshold is used
            assert "also changes the gain" in r["why"]
        if abs(g.G) < 1e-9:  # the constant's G = 1 threshold is a switch: G jumps from 0
            up = LG.gains_at_state(st, t, state, {r["constant"]: r["constant_threshold"] * 1.001})
            down = LG.gains_at_state(st, t, state, {r["constant"]: r["constant_threshold"] * 0.999})
            assert max(up.G, down.G) > 1, (r["symbol"], up.G, down.G)
        else:
            assert g.G == pytest.approx(1.0, rel=1e-6)
        for run in r["runs"]:
            if run["as_predicted"] and run["growth_as_predicted"]:
                continue
            # not as predicted: either the loops are cut in that run (a switch the
            # linearisation holds fixed: G is 0 and deviations decay) or the run's state moved
            # with the constant so far that G stays on the other side (reported as such)
            if abs(run["G_reference"]) < 1e-12:
                assert run["inactive_links"] and run["growth_rate"] < 0, (r["symbol"], run)
            else:
                assert (run["G_reference"] > 1) == (run["growth_rate"] > 0), (r["symbol"], run)
