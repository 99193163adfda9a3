"""Calibration: the baseline reproduces each 2024-2025 anchor point within its stated tolerance.

Targets and tolerances (relative, reflecting source quality: ~15% for filings, 25-35% for weak
or single sources) are in data/calibration_targets.csv. A point the current model misses is
marked xfail(strict=True) with the miss at the time of writing: the model is recalibrated, and
tolerances are not loosened to make a point pass. When the model is fixed the strict xfail turns
into a failure, as a reminder to remove the mark.
"""

import numpy as np
import pytest
import xarray as xr

from aicarousel.calibration import compare, read_targets, statistic
from aicarousel.calibration import calibration_run

#: Points the current model misses (id -> reason); empty while every point is within tolerance.
#: The third round (funding round with a conditional tranche, post-money valuation, other
#: customers' AI backlog, WLS point estimate) brought in five; the announcement premium of
#: Cloud's market value (news priced on the day, then learned) brought in the Sep 2025 peak.
KNOWN_MISSES: dict[str, str] = {}


TARGETS = read_targets()


@pytest.fixture(scope="module")
def table():
    return compare(calibration_run())


def test_targets_table_well_formed():
    t = TARGETS
    assert len(t) >= 10
    assert t.index.is_unique
    assert ((t["tolerance"] > 0) & (t["tolerance"] <= 0.5)).all()
    assert (t["end"] >= t["start"]).all()
    assert t["source"].str.len().min() > 5
    assert set(KNOWN_MISSES) <= set(t.index)


@pytest.mark.parametrize("tid", [
    pytest.param(i, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[i]))
    if i in KNOWN_MISSES else i for i in TARGETS.index])
def test_calibration_point(table, tid):
    r = table.loc[tid]
    assert abs(r["model"] - r["data"]) <= r["tolerance"] * abs(r["data"]), (
        f"{r['what']}: model {r['model']:.4g} vs data {r['data']:.4g} {r['unit']} "
        f"({100 * r['error']:+.1f}%, tolerance {100 * r['tolerance']:.0f}%)")


def test_integral_matches_stock_accumulation():
    """The integral statistic reproduces Euler accumulation exactly (rel 1e-12)."""
    t = np.arange(0, 2.0 + 1e-12, 0.25)
    ds = xr.Dataset({"f": ("time", 1.0 + t)}, coords={"time": t})
    # left sums of f over [0, 1): 0.25 * (1 + 1.25 + 1.5 + 1.75) = 1.375
    assert statistic(ds, "f", "integral", 0.0, 1.0) == pytest.approx(1.375, rel=1e-12)
    assert statistic(ds, "f", "mean", 0.0, 1.0) == pytest.approx(1.375, rel=1e-12)
    assert statistic(ds, "f", "value", 0.6, 0.6) == pytest.approx(1.6, rel=1e-12)
