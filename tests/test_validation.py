"""model.run and the ensemble refuse exactly the same parameter values with the same message.

The bad values are generated from the model's own facts (the IR: units field ranges and
duration units), one just outside each end of every constant's range and, for durations, one
just below TIME STEP; the edges themselves are accepted by the one validator.
"""

from __future__ import annotations

import math

import pytest

from aicarousel import model, params
from aicarousel.ensemble import compile_model
from aicarousel.errors import ParameterValueError


def _bad_values(fx: params.ParameterFacts) -> list[tuple[str, float]]:
    out = []
    for c in fx.constants.values():
        if not math.isnan(c.low):
            out.append((c.name, c.low - max(1e-6, 1e-3 * abs(c.low))))
        if not math.isnan(c.high):
            out.append((c.name, c.high + max(1e-6, 1e-3 * abs(c.high))))
        if c.is_duration:
            out.append((c.name, fx.time_step / c.per_unit * (1 - 1e-3)))
    return out


def _edges(fx: params.ParameterFacts) -> list[tuple[str, float]]:
    out = []
    for c in fx.constants.values():
        lo = max(c.low, fx.time_step / c.per_unit) if c.is_duration and not math.isnan(c.low) \
            else c.low
        out += [(c.name, v) for v in (lo, c.high) if not math.isnan(v)]
    return out


@pytest.fixture(scope="module")
def fx():
    return params.facts()


def test_generated_table_covers_every_constant_with_a_range(fx):
    bad = _bad_values(fx)
    named = {n for n, _ in bad}
    with_range = {c.name for c in fx.constants.values()
                  if not (math.isnan(c.low) and math.isnan(c.high))}
    assert with_range <= named
    assert len(bad) > 50
    # durations come from the units field (Year), dates (Year, >= 1000) are not durations
    assert fx.constants["Contract length"].is_duration
    assert not fx.constants["Vendor commitment time"].is_duration
    assert not fx.constants["AI demand multiplier"].is_duration


def test_model_run_and_ensemble_refuse_the_same_values(fx, monkeypatch):
    loaded = model.load()
    monkeypatch.setattr(model, "load", lambda model_file=None: loaded)  # validation only
    cm = compile_model()
    for name, value in _bad_values(fx):
        with pytest.raises(ParameterValueError) as e_run:
            model.run({name: value}, final_time=2025)
        with pytest.raises(ParameterValueError) as e_ens:
            cm.run_arrays({name: value}, outputs=["Lab Cash"], final_time=2025)
        assert str(e_run.value) == str(e_ens.value), (name, value)
        assert repr(name) in str(e_run.value)


def test_edges_are_accepted(fx):
    for name, value in _edges(fx):
        params.validate({name: value}, fx)


def test_ensemble_reports_non_finite_runs_naming_variable_and_time():
    cm = compile_model()
    # a valid but huge demand drives nothing non-finite: the check passes quietly
    cm.run_arrays({"AI demand multiplier": [1.0, 2.0]}, outputs=["Lab Cash"], final_time=2025)
    from aicarousel import ensemble
    from aicarousel.errors import SimulationError
    import numpy as np
    block = np.ones((3, 2))
    block[1, 1] = np.nan
    with pytest.raises(SimulationError, match=r"'Lab Cash' at time 2024.25 \(run 5\)"):
        ensemble._check_finite(["lab_cash"], [block], np.array([2024.0, 2024.25, 2024.5]), 4,
                               cm.ir)


@pytest.mark.parametrize("unit, default, time_unit, expected", [
    ("Year", 2.0, "Year", 1.0), ("Years", 0.5, "Year", 1.0), ("Month", 3.0, "Year", 1 / 12),
    ("Year", 2026.0, "Year", 0.0),        # a date, not a duration
    ("Dmnl", 0.5, "Year", 0.0), ("Year*Year", 20.0, "Year", 0.0),
    ("Time", 2.0, "Time", 1.0),           # the model's own time unit, whatever its name
    ("days", 5.0, "Time", 0.0),           # cannot be converted to an unknown time unit
])
def test_durations_come_from_the_units_field(unit, default, time_unit, expected):
    assert params._per_unit(unit, default, time_unit) == pytest.approx(expected)
