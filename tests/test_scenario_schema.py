"""Scenario files against the published schema (scenarios/schema.json).

The schema is generated from the pydantic models of ``aicarousel.scenario_schema``; the
committed file must equal the generated one, every shipped scenario must satisfy it, and the
loader refuses a file the schema refuses (naming file and key) even where the model-aware
checks would not look.
"""

import json

import pytest
import yaml

from aicarousel import paths, scenario_schema, scenarios
from aicarousel.errors import ScenarioError


def test_committed_schema_equals_the_generated_one():
    committed = scenario_schema.SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == scenario_schema.schema_text(), (
        "scenarios/schema.json is stale: run python -m aicarousel.scenario_schema")
    assert scenario_schema.main(["--check"]) == 0


def test_schema_is_a_json_schema_for_editors():
    schema = json.loads(scenario_schema.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(scenarios.TOP_KEYS)
    kinds = {d["properties"]["type"]["const"] for d in schema["$defs"].values()
             if "type" in d.get("properties", {})}
    assert kinds == set(scenarios.INTERVENTION_KEYS)


@pytest.mark.parametrize("path", sorted(paths.SCENARIOS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_satisfy_the_schema(path):
    scenario_schema.check(yaml.safe_load(path.read_text(encoding="utf-8")), path.name)


@pytest.mark.parametrize("doc, fragments", [
    ({"name": "bad", "paramz": {}}, ["bad.yaml", "'paramz'"]),
    ({"name": "bad", "params": {"X": True}}, ["bad.yaml", "'params.X'", "number"]),
    ({"name": "bad", "params": {"X": ".5"}}, ["bad.yaml", "'params.X'", "number"]),
    ({"name": "bad", "interventions": [{"variable": "X", "type": "step", "at": 2026}]},
     ["'interventions[0]'", "'to'"]),
    ({"name": "bad", "interventions": [{"variable": "X", "type": "step", "at": "soon", "to": 1}]},
     ["'interventions[0].at'"]),
    ({"name": "bad", "interventions": [{"variable": "X", "type": "table", "points": [[2026, 1, 2]]}]},
     ["'interventions[0].points[0]'"]),
    ({"name": "bad", "interventions": [{"variable": "X", "type": "ramp", "start": 2026, "end": 2027,
                                        "to": 1, "points": []}]}, ["'interventions[0].points'"]),
])
def test_schema_violations_name_file_and_key(doc, fragments):
    with pytest.raises(ScenarioError) as err:
        scenario_schema.check(doc, "bad.yaml")
    msg = str(err.value)
    assert all(f in msg for f in fragments), msg
    assert "\n" not in msg


def test_loader_applies_the_schema(tmp_path, monkeypatch):
    """A file the hand checks would pass but the schema refuses is refused by the loader."""
    (tmp_path / "s.yaml").write_text("name: s\nparams:\n  AI demand multiplier: 0.5\n")
    assert scenarios.read_scenario_file(tmp_path / "s.yaml").params == {"AI demand multiplier": 0.5}
    monkeypatch.setattr(scenario_schema, "ScenarioDocument", _NoParams)
    with pytest.raises(ScenarioError, match=r"s\.yaml: key 'params'"):
        scenarios.read_scenario_file(tmp_path / "s.yaml")


class _NoParams(scenario_schema.ScenarioDocument):
    """A schema that forbids ``params`` (to see that the loader consults the schema)."""

    params: None = None
