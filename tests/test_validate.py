"""`aicarousel validate`: each section catches a planted defect of its kind in a copy of the
carousel; the carousel passes the units and reality checks (the CI gate); bad input gives one
line, exit status 2 and nothing written; any model the engines accept gets a report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from aicarousel import paths
from aicarousel import validate as V
from aicarousel.cli import main
from aicarousel.errors import ChecksError

from conftest import at_machinery_step
from reference_models import TM

MODEL = paths.MODEL_FILE
CHECKS = V.checks_path(MODEL)


def _copy(tmp_path: Path, old: str | None = None, new: str | None = None, checks: bool = True,
          extra_checks: str = "", sub: str = "m") -> Path:
    """A copy of the carousel (optionally with one equation changed) and of its checks file,
    with the checks file's relative paths made absolute. The copy runs at TIME STEP 1/64
    (conftest, ``machinery_step``): a planted defect is caught at any step."""
    d = tmp_path / sub
    d.mkdir(exist_ok=True)
    text = at_machinery_step(MODEL.read_text(encoding="utf-8"))
    if old is not None:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    f = d / MODEL.name
    f.write_text(text, encoding="utf-8")
    if checks:
        c = CHECKS.read_text(encoding="utf-8")
        for rel in ("../data/parameters.csv", "../data/calibration_targets.csv", "../scenarios"):
            c = c.replace(rel, str((MODEL.parent / rel).resolve()))
        c = c.replace("named_loops: named_loops.yaml",
                      f"named_loops: {paths.MODELS_DIR / 'named_loops.yaml'}")
        (d / CHECKS.name).write_text(c + extra_checks, encoding="utf-8")
    return f


def _ctx(f: Path) -> V._Context:
    return V._Context(f, quick=True)


# --------------------------------------------------------------------------------------------
# the carousel itself (CI gate)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def carousel_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("validate")
    status = main(["validate", "--quick", "--report", str(out)])
    return status, out, json.loads((out / "validation.json").read_text())


def test_ci_gate_carousel_has_no_units_error_and_no_failed_reality_check(carousel_report):
    status, _, rep = carousel_report
    sec = {s["key"]: s for s in rep["sections"]}
    assert sec["units"]["data"]["issues"] == [], sec["units"]["evidence"]
    assert sec["checks"]["data"]["failed"] == 0, sec["checks"]["evidence"]
    # an expected failure that passes must be turned into a hard check (remove the mark)
    assert sec["checks"]["data"]["unexpected_passes"] == []
    assert status == 0


def test_carousel_report_has_every_section_with_a_verdict(carousel_report):
    _, out, rep = carousel_report
    keys = [s["key"] for s in rep["sections"]]
    assert keys == ["units", "extreme", "checks", "integration", "loops", "parameters",
                    "reproduction", "random"]
    assert all(s["status"] in ("pass", "fail", "not applicable") for s in rep["sections"])
    sec = {s["key"]: s for s in rep["sections"]}
    assert sec["checks"]["data"]["n"] >= 15
    assert all(r["why"] for r in sec["checks"]["data"]["results"])
    assert sec["random"]["data"]["n"] == 200  # --quick
    # each failing random set can be replayed
    for f in sec["random"]["data"]["failures"]:
        assert f["replay"].startswith("aicarousel run --model ai_carousel.mdl --set")
    md = (out / "validation.md").read_text()
    assert md.count("**Result: ") == 8
    tex = (out / "validation.tex").read_text()
    assert tex.count(r"Result: \textbf{") == 8
    from aicarousel.plotting import read_metadata
    meta = read_metadata(out / "validation.png")
    assert meta["model_hash"] == rep["model_hash"]
    assert sorted(p.name for p in out.iterdir()) == [
        "validation.json", "validation.md", "validation.pdf", "validation.png", "validation.tex"]


def test_carousel_passes_every_section(carousel_report):
    """Issue 13: where the validate command exists, the model passes it with no failures.
    Until TIME STEP 1/512 the integration section failed (18 stocks above 1% at 1/64; two
    order flows at 5.2% at 1/256: docs/model.md, "Time step")."""
    _, _, rep = carousel_report
    bad = {s["key"]: s["summary"] for s in rep["sections"] if s["status"] != "pass"}
    assert bad == {}


def test_rk4_is_no_reference_downstream_of_a_per_step_drain():
    """A drain written per Euler step (``Lab Round Pending / TIME STEP``) means nothing at an
    RK4 stage, and neither does a sum that contains it: ``Outside equity raised`` adds a
    round's payments to other inflows. At TIME STEP 1/256 RK4 had converged on it (0.1% when
    its step was halved) yet differed from Euler by 100%, and section 4 flagged it; the rule
    now follows the auxiliaries a variable is computed from (stocks end the walk: they
    integrate the drain, whose total is exact)."""
    from aicarousel.ensemble import compile_model
    ir = compile_model(MODEL).ir
    assert V._reads_time_step(ir, ir.resolve("Outside round payments"))
    assert V._reads_time_step(ir, ir.resolve("Outside equity raised"))
    assert not V._reads_time_step(ir, ir.resolve("Lab revenue growth"))
    assert not V._reads_time_step(ir, ir.resolve("Lab Revenue"))


def test_carousel_known_findings(carousel_report):
    """What the independent review found by hand, checked by the command: NaN at t = 0 in
    extreme runs (gone since the third round's zero-guards; a removed guard is still caught:
    test_planted_missing_zero_guard_gives_nan_named_at_its_source), one-off bookings that
    change with TIME STEP."""
    _, _, rep = carousel_report
    sec = {s["key"]: s for s in rep["sections"]}
    nan = [r for r in sec["extreme"]["data"]["failures"] if r["problem"].startswith("NaN")]
    # the parameter validator refuses some extremes (durations below TIME STEP) before any
    # run; those are listed as refused, and no run accepted gives NaN
    assert nan == []
    integ = sec["integration"]["data"]
    assert integ["rk4"] and "RK4" in integ["rk4_note"]  # pysimlin runs the same .mdl with RK4
    rk4 = [v["dt vs RK4"] for v in integ["variables"] if v["dt vs RK4"] is not None]
    assert len(rk4) >= 0.9 * len(integ["variables"]) and max(rk4) > 0
    books = {b["variable"]: b for b in integ["bookings"]}
    # the first model booked the contract as a PULSE (0.7 x TIME STEP: not 300); the rebuilt
    # one drains a stock, so the same $300B is booked at every TIME STEP
    b = books["Announced contract signing"]
    assert b["integral at dt"] == pytest.approx(300, rel=1e-9)
    assert b["integral at dt/2"] == pytest.approx(300, rel=1e-9) and b["flag"] == ""


# --------------------------------------------------------------------------------------------
# planted defects, each caught by its own section
# --------------------------------------------------------------------------------------------
def test_planted_unit_error(tmp_path):
    text = MODEL.read_text(encoding="utf-8")
    units = re.search(r"AI earnings multiple=\n\t[^\n]*\n\t~\tYear[^\n]*", text).group(0)
    f = _copy(tmp_path, units, units.replace("Year", "Dmnl"), checks=False)
    s = V._units_section(_ctx(f))
    assert s.status == "fail"
    assert {r["variable"] for r in s.table} == {"Cloud enterprise value"}
    assert "ai_carousel.mdl:" in s.evidence[0]


def test_planted_flow_draining_a_stock_below_zero(tmp_path):
    f = _copy(tmp_path, "\tCloud Debt / Average debt maturity\n", "\t40\n", checks=False)
    s = V._extreme_section(_ctx(f))
    assert s.status == "fail"
    assert any("negative: Cloud Debt" in r["problem"] for r in s.table)


def test_planted_missing_zero_guard_gives_nan_named_at_its_source(tmp_path):
    # the first model's logistic, used both ways and without its zero guard
    text = MODEL.read_text(encoding="utf-8")
    old = re.search(r"\nLab revenue growth=\n\t[^\n]*\n", text).group(0)
    new = ("\nLab revenue growth=\n\tLab Revenue * Intrinsic adoption rate * "
           "(1 - Lab Revenue / Lab revenue potential)\n")
    f = _copy(tmp_path, old, new, checks=False)
    s = V._extreme_section(_ctx(f))
    rows = [r for r in s.table if r["parameter"] == "AI demand multiplier" and r["setting"] == "zero"]
    assert rows and rows[0]["problem"].startswith("NaN/inf: first 'Lab revenue growth' at 2024")
    # the unmodified model handles the same extreme
    real = V._extreme_section(_ctx(_copy(tmp_path, checks=False, sub="ok")))
    assert not [r for r in real.table if r["parameter"] == "AI demand multiplier"
                and r["setting"] == "zero"]


def test_planted_dt_dependent_pulse_booking(tmp_path):
    text = MODEL.read_text(encoding="utf-8")
    old = re.search(r"\nAnnounced contract signing=\n\t[^\n]*\n", text).group(0)
    new = ("\nAnnounced contract signing=\n\tAnnounced contract value * "
           "PULSE(Announced contract time, TIME STEP) / Signing duration\n")
    s = V._integration_section(_ctx(_copy(tmp_path, old, new, checks=False)))
    books = {b["variable"]: b for b in s.data["bookings"]}
    b = books["Announced contract signing"]
    assert s.status == "fail" and b["flag"] == "yes"
    # booked as value * TIME STEP / Signing duration: halves with TIME STEP
    assert b["integral at dt/2"] == pytest.approx(b["integral at dt"] / 2, rel=1e-6)
    assert any("Announced contract signing" in e for e in s.evidence)


def test_planted_loop_cut_by_a_min_that_always_binds(tmp_path):
    old = "Compute retirements=\n\t"
    text = MODEL.read_text(encoding="utf-8")
    i = text.index(old) + len(old)
    eq = text[i:text.index("\n", i)]
    f = _copy(tmp_path, old + eq + "\n", old + f"MIN({eq}, 0)\n")
    s = V._loop_section(_ctx(f))
    row = next(r for r in s.table if r["loop"] == "B4")
    assert s.status == "fail" and row["active share"] == 0
    assert "B4" in s.data["never_active"]
    base = next(r for r in V._loop_section(_ctx(_copy(tmp_path, sub="ok"))).table
                if r["loop"] == "B4")
    assert base["active share"] > 0.5


def test_planted_failing_reality_check(tmp_path):
    f = _copy(tmp_path, "MIN(Lab funding need, Outside investor appetite)", "Lab funding need")
    s = V._checks_section(_ctx(f))
    row = next(r for r in s.table if r["check"] == "no_outside_investors_no_outside_equity")
    assert s.status == "fail" and row["result"] == "fail"
    assert any(e.startswith("no_outside_investors_no_outside_equity: Outside equity raised "
                            "stays zero") for e in s.evidence)


def test_expected_failure_that_passes_is_reported(tmp_path):
    extra = """
  - name: holds_but_marked
    why: A check marked as an expected failure that the model passes.
    impose: {Outside credit availability: 0}
    expect:
      - {variable: New borrowing, zero: true}
    expected_failure: some defect that is already fixed
"""
    s = V._checks_section(_ctx(_copy(tmp_path, extra_checks=extra)))
    row = next(r for r in s.table if r["check"] == "holds_but_marked")
    assert row["result"].startswith("unexpected pass")
    assert s.data["unexpected_passes"] == ["holds_but_marked"]


def test_condition_semantics():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    x = np.array([[0.0, 1.0, 2.0, 1.5], [0.0, 0.0, 0.0, np.nan]])
    c = V.Condition("x", "X", "below", 2.0, 0.0, 3.0, None, 1e-6)
    assert V.evaluate_condition(c, t, x).tolist() == [True, False]  # NaN fails
    c = V.Condition("x", "X", "rises", None, 0.0, 2.0, None, 1e-6)
    assert V.evaluate_condition(c, t, x).tolist() == [True, False]
    c = V.Condition("x", "X", "reaches", 2.0, 0.0, 3.0, 1.5, 1e-6)
    assert V.evaluate_condition(c, t, x).tolist() == [False, False]
    c = V.Condition("x", "X", "reaches", 2.0, 0.0, 3.0, 2.0, 1e-6)
    assert V.evaluate_condition(c, t, x[:1]).tolist() == [True]
    c = V.Condition("x", "X", "below_baseline", None, 0.0, 3.0, None, 1e-6)
    assert V.evaluate_condition(c, t, x[:1], base=x[:1] + 1).tolist() == [True]


# --------------------------------------------------------------------------------------------
# bad input: one line, exit 2, nothing written
# --------------------------------------------------------------------------------------------
def _bad_checks(tmp_path, body: str) -> Path:
    f = _copy(tmp_path, checks=False)
    (f.parent / CHECKS.name).write_text(body, encoding="utf-8")
    return f


@pytest.mark.parametrize("body, message", [
    ("checks:\n  - name: a\n    why: b\n    expect:\n      - {variable: Lab Cahs, above: 0}\n",
     "did you mean 'Lab Cash'"),
    ("checks:\n  - name: a\n    why: b\n    impose: {Outside fundng availability: 0}\n"
     "    expect:\n      - {variable: Lab Cash, above: 0}\n", "did you mean 'Outside funding availability'"),
    ("checks:\n  - name: a\n    why: b\n    expect:\n      - {variable: Lab Cash, bellow: 0}\n",
     "did you mean 'below'"),
    ("checks:\n  - name: a\n    why: b\n    expect:\n      - {variable: Lab Cash, above: 0, below: 5}\n",
     "exactly one condition"),
    ("checks:\n  - name: a\n    why: b\n    expect:\n      - {variable: Lab Cash, above: lots}\n",
     "expected a finite number"),
    ("checks:\n  - name: a\n    why: b\n    expect:\n      - {variable: Lab Cash, above: 0, from: 2040}\n",
     "outside the run [2024, 2035]"),
    ("checks:\n  - name: a\n    why: b\n    expect:\n      - {variable: Lab Cash, reaches: 5, by: 2019-01-01}\n",
     "outside the run"),
    ("checks:\n  - name: a\n    expect:\n      - {variable: Lab Cash, above: 0}\n", "'why' is missing"),
    ("checks: [\n", "not valid YAML"),
])
def test_bad_checks_file_one_line_exit_2_nothing_written(tmp_path, capsys, body, message):
    f = _bad_checks(tmp_path, body)
    out = tmp_path / "report"
    status = main(["validate", "--quick", "--model", str(f), "--report", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("aicarousel validate: error: ")
    assert message in err and "ai_carousel.checks.yaml" in err
    assert not out.exists()


def test_load_checks_errors_are_checks_errors(tmp_path):
    f = _bad_checks(tmp_path, "chekcs: []\n")
    with pytest.raises(ChecksError, match="unknown key"):
        V.load_checks(f)


def test_unsupported_model_refused(tmp_path, capsys):
    # subscripts are supported now; control variables that change with Time are not
    model = TM / "tests" / "control_vars" / "test_control_vars.mdl"
    assert model.is_file()
    out = tmp_path / "report"
    status = main(["validate", "--quick", "--model", str(model), "--report", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "time" in err.lower()
    assert not out.exists()


def test_unwritable_report_directory_refused_before_running(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("mine")
    status = main(["validate", "--quick", "--report", str(blocker / "report")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "not writable" in err
    assert blocker.read_text() == "mine"


def test_missing_model_refused(tmp_path, capsys):
    status = main(["validate", "--model", str(tmp_path / "nope.mdl"), "--report", str(tmp_path)])
    assert status == 2 and "not found" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# any model the engines accept
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", ["samples/teacup/teacup.mdl", "samples/SIR/SIR.mdl",
                                 "samples/SIR/SIR.xmile"])
def test_shared_and_user_models_get_a_report(tmp_path, rel):
    src = TM / rel
    assert src.is_file()
    user = tmp_path / src.name  # a user's model: no checks file, no named loops, no table
    user.write_bytes(src.read_bytes())
    rep = V.validate(user, quick=True)
    sec = {s.key: s for s in rep.sections}
    assert sec["checks"].status == "not applicable" and "None declared" in sec["checks"].summary
    assert sec["loops"].status == "not applicable"
    assert sec["reproduction"].status == "not applicable"
    assert sec["integration"].status in ("pass", "fail") and sec["integration"].data["variables"]
    assert sec["extreme"].data["runs"] > 0
    assert sec["random"].data["n"] == 200
    files = V.write_report(rep, tmp_path / "out")
    assert len(files) == 5
    js = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert js["model"] == src.name


def test_sir_xmile_units_error_reported_with_both_units(tmp_path):
    """SIR.xmile declares 'recovering' in person/time but computes people/day (pysimlin agrees)."""
    rep = V._units_section(V._Context(TM / "samples" / "SIR" / "SIR.xmile", quick=True))
    assert rep.status == "fail"
    assert [r["variable"] for r in rep.table] == ["recovering"]
    assert rep.table[0]["line"] is not None


def test_failed_run_leaves_an_existing_report_directory_as_it_was(tmp_path, capsys):
    f = _bad_checks(tmp_path, "checks:\n  - name: a\n    why: b\n    expect:\n"
                              "      - {variable: Lab Cahs, above: 0}\n")
    out = tmp_path / "report"
    out.mkdir()
    (out / "validation.md").write_text("the previous report")
    status = main(["validate", "--quick", "--model", str(f), "--report", str(out)])
    assert status == 2 and "Lab Cash" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["validation.md"]
    assert (out / "validation.md").read_text() == "the previous report"


# --------------------------------------------------------------------------------------------
# rates (stocks per time unit) take the model's time unit from units.py
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel, unit", [("tests/log/test_log.mdl", {"month": 1}),
                                       ("samples/SIR/SIR.mdl", {"day": 1}),
                                       ("samples/teacup/teacup.mdl", {"minute": 1})])
def test_time_unit_of_shared_models(rel, unit):
    from aicarousel.ir import build_ir
    from aicarousel.units import time_unit

    assert time_unit(build_ir(TM / rel)) == unit


def test_rates_in_a_model_counted_in_months(tiny_mdl):
    """Stocks per month (however spelled) are rates, so the explosion test skips them; a stock
    per year in a model counted in months is not one (its unit is not per time unit)."""
    f = tiny_mdl("Expected growth = INTEG(-Expected growth / Adjustment time, 0.05)\n~ 1/Months ~ |\n"
                 "Adjustment time = 3\n~ Months ~ |\n"
                 "Share rate = INTEG(0, 0.1)\n~ Dmnl/Month ~ |\n"
                 "Yearly rate = INTEG(0, 0.1)\n~ 1/Year ~ |\n"
                 "Stuff = INTEG(Stuff * Expected growth, 1)\n~ Widget ~ |\n",
                 final_time=12, time_step=1, time_unit="Month")
    ctx = _ctx(f)
    assert ctx.rates == {"expected_growth", "share_rate"}


# --------------------------------------------------------------------------------------------
# parameter assessment reads the calibration's posterior
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def carousel_ctx():
    return _ctx(MODEL)


def _with_table(ctx, tmp_path, posterior: dict | None = None):
    """The context with a copy of the parameter table, optionally with posterior_* columns
    (name -> (p5, p95))."""
    import dataclasses

    from aicarousel.params import read_table, write_table

    table = read_table(ctx.checks.parameters)
    for c in ("posterior_p5", "posterior_median", "posterior_p95", "posterior_run"):
        table[c] = ""
    for name, (lo, hi) in (posterior or {}).items():
        table.loc[name, ["posterior_p5", "posterior_p95"]] = [f"{lo:g}", f"{hi:g}"]
        table.loc[name, "posterior_median"] = f"{(lo + hi) / 2:g}"
        table.loc[name, "posterior_run"] = "test run"
    f = write_table(table, tmp_path / "parameters.csv")
    ctx.checks = dataclasses.replace(ctx.checks, parameters=f)
    return ctx


def _row(sec, name):
    return next(r for r in sec.table if r["parameter"] == name)


def test_parameters_without_a_calibration_say_so(carousel_ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    sec = V._parameter_section(_with_table(carousel_ctx, tmp_path))
    assert "no calibration found: run `aicarousel calibrate`" in sec.summary
    assert "not yet" not in sec.summary
    assert {r["calibration"] for r in sec.table} == {"no calibration"}
    assert sec.status == "pass"  # decided by the table's other checks, not by the calibration


def test_parameters_read_the_posterior_written_by_calibrate(carousel_ctx, tmp_path, monkeypatch):
    from aicarousel.calibrate import CONSTRAINED_RATIO

    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    d = tmp_path / "results" / "calibration"
    d.mkdir(parents=True)
    prov = {"model_hash": carousel_ctx.cm.model_hash, "created": "2026-12-01", "converged": "true"}
    tight, loose = 0.2, 0.9
    assert tight < CONSTRAINED_RATIO < loose
    (d / "posterior.csv").write_text(
        "# made by aicarousel calibrate; provenance: " + json.dumps(prov) + "\n"
        "parameter,median,p5,p95,width_ratio,constrained\n"
        f"AI demand multiplier,1,0.9,1.2,{tight},True\n"
        f"Base cancellation rate,0.1,0.01,0.3,{loose},False\n")
    sec = V._parameter_section(_with_table(carousel_ctx, tmp_path))
    assert "results/calibration/posterior.csv" in sec.summary
    assert "1 of 2 estimated parameters: AI demand multiplier; at the prior: Base cancellation rate" \
        in sec.summary
    assert _row(sec, "AI demand multiplier")["calibration"] == "constrained (width ratio 0.20)"
    assert _row(sec, "Base cancellation rate")["calibration"] == "prior (width ratio 0.90)"
    assert {r["calibration"] for r in sec.table} - {_row(sec, "AI demand multiplier")["calibration"],
                                                    _row(sec, "Base cancellation rate")["calibration"]} \
        == {"not estimated"}
    # a posterior of another version of the model is not used
    prov["model_hash"] = "0" * 64
    (d / "posterior.csv").write_text("# made by aicarousel calibrate; provenance: "
                                     + json.dumps(prov) + "\nparameter,width_ratio\n"
                                     f"AI demand multiplier,{tight}\n")
    sec = V._parameter_section(_with_table(carousel_ctx, tmp_path))
    assert "another version of the model" in sec.summary
    assert "no calibration found: run `aicarousel calibrate`" in sec.summary


def test_parameters_read_the_posterior_recorded_in_the_table(carousel_ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    # AI demand multiplier: prior [0.3, 2], 90% prior width 1.53; 0.9..1.2 is 0.196 of it
    ctx = _with_table(carousel_ctx, tmp_path, {"AI demand multiplier": (0.9, 1.2)})
    sec = V._parameter_section(ctx)
    assert "posterior_* columns of parameters.csv (test run)" in sec.summary
    assert "1 of 1 estimated parameters: AI demand multiplier" in sec.summary
    assert _row(sec, "AI demand multiplier")["calibration"] == "constrained (width ratio 0.20)"


def test_rk4_is_a_reference_only_where_it_converges(tmp_path):
    """RK4 cannot resolve a drain written per Euler step (``Pending / TIME STEP``) or a STEP
    event inside its stages: there it is not compared (listed as not a reference), while
    Euler's dt vs dt/4 still decides. A planted step-dependent flow is still caught."""
    s = V._integration_section(_ctx(_copy(tmp_path, checks=False)))
    rows = {r["variable"]: r for r in s.data["variables"]}
    reneg = rows["Commitment renegotiation"]  # reads TIME STEP; RK4 leaves a tail
    assert reneg["dt vs RK4"] > 0.5 and not reneg["flag"]
    assert "Commitment renegotiation" in s.data["rk4_unconverged"]
    assert "Renegotiation Pending" in s.data["rk4_unconverged"]  # RK4 halves its tail with dt
    # smooth stocks keep RK4 as their reference
    assert "Lab Revenue" not in s.data["rk4_unconverged"]
    # a flow that depends on the step is caught by Euler's own convergence
    text = MODEL.read_text(encoding="utf-8")
    old = re.search(r"\nLab revenue growth=\n\t[^\n]*\n", text).group(0)
    new = old.replace("\n\tIF THEN ELSE", "\n\t(TIME STEP * 64) * IF THEN ELSE")
    assert new != old
    bad = V._integration_section(_ctx(_copy(tmp_path, old, new, checks=False, sub="bad")))
    row = next(r for r in bad.data["variables"] if r["variable"] == "Lab revenue growth")
    assert bad.status == "fail" and row["flag"] == "yes" and row["dt vs dt/4"] > 0.05


def test_explosion_is_growth_beyond_the_baselines_peak():
    """A runaway (x12 a year, carried far past the baseline's peak, as the first model's debt
    of $42T on a baseline peak of $0.2T) is caught; a stock refilling within the baseline's
    own range from a low point (x15 in a year, from 6% to 90% of its peak) is not."""
    ctx = V._Context(MODEL, quick=True)
    s = ctx.ir.resolve("Cloud Debt")
    peak = ctx.scale[s]
    t = np.arange(2024.0, 2027.01, 0.25)
    yrs = t - t[0]
    runaway = 0.5 * peak * 12.0 ** yrs
    refill = np.where(yrs < 1.0, 0.06 * peak * 15.0 ** yrs, 0.9 * peak)
    flags = V._flags(ctx, t, {**{k: np.zeros((2, len(t))) for k in ctx.stocks},
                               s: np.vstack([runaway, refill])}, 10.0, 2)
    assert any(f.startswith("explodes: Cloud Debt") for f in flags[0])
    assert not any(f.startswith("explodes") for f in flags[1])


def test_explosion_is_sustained_growth_not_a_one_off_jump():
    """A stock that jumps once (x20 within a year, past the baseline's peak: a first-order
    adjustment to a goal a parameter moved tenfold, or a funding round landing on drained
    cash) and then settles is a step response, not a runaway: not flagged. A runaway that
    keeps growing x12 a year for two years is still flagged, and so is a jump so large
    (x150 in a year) that even spread over two years it exceeds the limit each year."""
    ctx = V._Context(MODEL, quick=True)
    s = ctx.ir.resolve("Cloud Debt")
    peak = ctx.scale[s]
    t = np.arange(2024.0, 2030.01, 0.25)
    yrs = t - t[0]
    jump = np.where(yrs < 1.0, 0.1 * peak * 20.0 ** yrs, 2.0 * peak)
    runaway = np.minimum(0.1 * peak * 12.0 ** yrs, 0.1 * peak * 12.0 ** 2.25)
    huge = np.where(yrs < 1.0, 0.1 * peak * 150.0 ** yrs, 15.0 * peak)
    flags = V._flags(ctx, t, {**{k: np.zeros((3, len(t))) for k in ctx.stocks},
                               s: np.vstack([jump, runaway, huge])}, 10.0, 3)
    assert not any(f.startswith("explodes") for f in flags[0])
    assert any(f.startswith("explodes: Cloud Debt") for f in flags[1])
    assert any(f.startswith("explodes: Cloud Debt") for f in flags[2])
