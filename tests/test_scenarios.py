"""Scenario files: every shipped file validates; bad files fail early with clear messages."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from aicarousel import paths, scenarios
from aicarousel.errors import ScenarioError

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


@pytest.fixture(scope="module")
def facts():
    return scenarios.model_facts()


def write(tmp_path, name, text):
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")


def base(tmp_path):
    write(tmp_path, "baseline", "name: baseline\ndescription: reference\n")


# ------------------------------------------------------------------ shipped scenarios
def test_every_shipped_scenario_validates():
    resolved = scenarios.validate_all()
    required = {"baseline", "revenue_disappoints", "funding_stop", "vendor_financing_ends",
                "vendor_financing_cap", "credit_spread_shock", "short_gpu_life", "cancellation_wave",
                "power_shortage", "revenue_breakout"}
    assert required <= set(resolved)
    assert list(resolved)[0] == "baseline"
    for name, rs in resolved.items():
        assert rs.description, f"{name} has no description"
        if name != "baseline":
            assert rs.chain[0] == "baseline", f"{name} does not extend the baseline"
            assert rs.params or rs.interventions, f"{name} changes nothing"


def test_shipped_descriptions_cite_numbers():
    for name, sc in scenarios.load_scenarios().items():
        assert any(ch.isdigit() for ch in sc.description), f"{name}: description cites no number"


def test_overrides_are_run_ready(facts):
    for name, rs in scenarios.validate_all().items():
        for var, value in rs.overrides(facts).items():
            assert var in facts.constants
            if isinstance(value, pd.Series):
                assert value.index[0] <= facts.initial_time + 1e-12
                assert value.index[-1] >= facts.final_time - 1e-12
                assert value.index.is_monotonic_increasing


# ------------------------------------------------------------------ conversions
def test_step_ramp_table_and_scale(tmp_path, facts):
    base(tmp_path)
    write(tmp_path, "s", """
        name: s
        extends: baseline
        params:
          Construction time: 3
        interventions:
          - {variable: Outside funding availability, type: step, at: 2027, to: 0}
          - {variable: Construction time, type: ramp, start: 2026, end: 2028, scale: 2}
          - {variable: Credit spread shock, type: table, points: [[2025, 0], [2026, 0.01]]}
    """)
    p = scenarios.to_params("s", scenarios_dir=tmp_path)
    step = p["Outside funding availability"]
    base_val = facts.constants["Outside funding availability"]
    assert step.loc[step.index < 2027].eq(base_val).all()
    assert step.loc[step.index >= 2027].eq(0.0).all()
    ramp = p["Construction time"]
    # scale applies to the scenario's own constant (3), not the model's
    mid = float(pd.Series(ramp.values, index=ramp.index).reindex(sorted(set(ramp.index) | {2027.0}))
                .interpolate("index").loc[2027.0])
    assert mid == pytest.approx(4.5, rel=1e-12)
    assert ramp.iloc[-1] == pytest.approx(6.0)
    table = p["Credit spread shock"]
    assert table.loc[2026] == pytest.approx(0.01) and table.iloc[0] == 0.0
    assert table.iloc[-1] == pytest.approx(0.01)


def test_child_params_override_parent(tmp_path):
    base(tmp_path)
    write(tmp_path, "a", """
        name: a
        extends: baseline
        interventions:
          - {variable: GPU economic life, type: step, at: 2026, to: 3}
    """)
    write(tmp_path, "b", "name: b\nextends: a\nparams:\n  GPU economic life: 4\n")
    r = scenarios.validate_all(["b"], scenarios_dir=tmp_path)["b"]
    assert r.chain == ["baseline", "a", "b"]
    assert r.params == {"GPU economic life": 4.0}
    assert r.interventions == []


def test_dates_accept_iso_dates(tmp_path):
    base(tmp_path)
    write(tmp_path, "d", """
        name: d
        interventions:
          - {variable: Vendor financing switch, type: step, at: 2026-07-01, to: 0}
    """)
    r = scenarios.validate_all(["d"], scenarios_dir=tmp_path)["d"]
    assert r.interventions[0].at == pytest.approx(2026 + 181 / 365)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("body, fragments", [
    ("params:\n  AI demand multiplyer: 0.5\n", ["bad.yaml", "params['AI demand multiplyer']",
                                                 "did you mean 'AI demand multiplier'"]),
    ("params:\n  Cloud Debt: 5\n", ["bad.yaml", "'Cloud Debt'", "not a constant"]),
    ("params:\n  AI demand multiplier: high\n", ["bad.yaml", "params['AI demand multiplier']", "number"]),
    ("params:\n  Outside funding availability: 2\n", ["bad.yaml", "outside its range"]),
    ("interventions:\n  - {variable: AI demand multiplier, type: step, at: 2050, to: 1}\n",
     ["bad.yaml", "interventions[0].at", "outside the run"]),
    ("interventions:\n  - {variable: AI demand multiplier, type: jump, at: 2026, to: 1}\n",
     ["bad.yaml", "interventions[0].type", "step"]),
    ("interventions:\n  - {variable: AI demand multiplier, type: step, at: 2026}\n",
     ["bad.yaml", "interventions[0]", "'to'"]),
    ("interventions:\n  - {variable: AI demand multiplier, type: ramp, start: 2028, end: 2026, to: 1}\n",
     ["bad.yaml", "after start"]),
    ("interventions:\n  - {variable: AI demand multiplier, type: table, points: [[2027, 1], [2026, 2]]}\n",
     ["bad.yaml", "points", "increase"]),
    ("interventions: 5\n", ["bad.yaml", "'interventions'", "list"]),
    ("paramz:\n  x: 1\n", ["bad.yaml", "paramz", "did you mean 'params'"]),
    ("extends: basline\n", ["bad.yaml", "extends", "'basline'", "did you mean 'baseline'"]),
])
def test_bad_scenarios_name_file_and_key(tmp_path, body, fragments):
    base(tmp_path)
    (tmp_path / "bad.yaml").write_text("name: bad\n" + body, encoding="utf-8")
    with pytest.raises(ScenarioError) as err:
        scenarios.validate_all(scenarios_dir=tmp_path)
    msg = str(err.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


def test_extends_cycle(tmp_path):
    write(tmp_path, "a", "name: a\nextends: b\n")
    write(tmp_path, "b", "name: b\nextends: a\n")
    with pytest.raises(ScenarioError, match=r"a\.yaml: key 'extends' makes a cycle: a -> b -> a"):
        scenarios.validate_all(["a"], scenarios_dir=tmp_path)


def test_name_must_match_file(tmp_path):
    write(tmp_path, "x", "name: y\n")
    with pytest.raises(ScenarioError, match=r"x\.yaml: key 'name' is 'y'"):
        scenarios.load_scenarios(tmp_path)


def test_invalid_yaml_names_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: broken\nparams: [1, 2\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML at line"):
        scenarios.load_scenarios(tmp_path)


def test_unknown_scenario_suggests(tmp_path):
    base(tmp_path)
    with pytest.raises(ScenarioError, match="did you mean 'baseline'"):
        scenarios.validate_all(["baseln"], scenarios_dir=tmp_path)


def test_all_files_validated_before_any_run(tmp_path, monkeypatch):
    """One bad file stops everything before a single model run."""
    from aicarousel import experiments, model

    base(tmp_path)
    write(tmp_path, "bad", "name: bad\nparams:\n  Nope: 1\n")
    calls = []
    monkeypatch.setattr(model, "run", lambda *a, **k: calls.append(1))
    with pytest.raises(ScenarioError, match="bad.yaml"):
        experiments.run_experiments(scenarios_dir=tmp_path, output=None, table=None, progress=False)
    assert calls == []


def test_shipped_directory_is_the_default():
    assert {p.stem for p in scenarios.scenario_files()} == \
        {p.stem for p in paths.SCENARIOS_DIR.glob("*.yaml")}
