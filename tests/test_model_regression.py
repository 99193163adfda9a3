"""Frozen regression: the baseline still matches tests/data/baseline_regression.csv.

Tolerance: xarray ``assert_allclose`` with rtol 1e-6. After a deliberate, reviewed model change
regenerate with ``python tests/regenerate.py``.
"""

import pytest
import xarray as xr

from aicarousel import paths
from aicarousel.model import load, model_hash, run


@pytest.fixture(scope="module")
def regenerate(load_script):
    return load_script(paths.TESTS_DIR / "regenerate.py")


def test_file_is_small_and_complete(regenerate):
    assert regenerate.REGRESSION_FILE.stat().st_size < 200_000
    frozen = regenerate.read_frozen()
    assert list(frozen.data_vars) == regenerate.REGRESSION_VARIABLES
    assert len(frozen.model_hash) == 64
    assert all(frozen[v].attrs["units"] for v in frozen.data_vars), "every column has a unit"


def test_baseline_matches_frozen_data(regenerate):
    frozen = regenerate.read_frozen()
    ds = run(return_columns=list(frozen.data_vars))
    hint = ("" if frozen.attrs.get("model_hash") == model_hash() else
            " -- the model file changed since the data were frozen; if the change is intended, "
            "run `python tests/regenerate.py`")
    try:
        xr.testing.assert_allclose(ds[list(frozen.data_vars)].drop_attrs(), frozen.drop_attrs(),
                                   rtol=1e-6, atol=0)
    except AssertionError as e:
        raise AssertionError(str(e) + hint) from None


def test_regression_catches_a_changed_model(regenerate):
    """The comparison is sharp enough to see a 1% change in one parameter."""
    frozen = regenerate.read_frozen()
    rate = float(load().components.intrinsic_adoption_rate())
    ds = run(params={"Intrinsic adoption rate": rate * 1.01}, return_columns=list(frozen.data_vars))
    try:
        xr.testing.assert_allclose(ds[list(frozen.data_vars)].drop_attrs(), frozen.drop_attrs(),
                                   rtol=1e-6, atol=0)
    except AssertionError:
        return
    raise AssertionError("a 1% parameter change went unnoticed by the regression comparison")
