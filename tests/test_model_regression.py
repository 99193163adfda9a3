"""Frozen regression: the baseline still matches tests/data/baseline_regression.nc.

Tolerance: xarray ``assert_allclose`` with rtol 1e-6. After a deliberate, reviewed model change
regenerate with ``python tests/regenerate.py``.
"""

import xarray as xr

from aicarousel import paths
from aicarousel.model import model_hash, run

REGRESSION_FILE = paths.TEST_DATA_DIR / "baseline_regression.nc"


def test_file_is_small():
    assert REGRESSION_FILE.stat().st_size < 200_000


def test_baseline_matches_frozen_data():
    frozen = xr.load_dataset(REGRESSION_FILE)
    ds = run(return_columns=list(frozen.data_vars))
    hint = ("" if frozen.attrs.get("model_hash") == model_hash() else
            " -- the model file changed since the data were frozen; if the change is intended, "
            "run `python tests/regenerate.py`")
    try:
        xr.testing.assert_allclose(ds[list(frozen.data_vars)].drop_attrs(), frozen.drop_attrs(),
                                   rtol=1e-6, atol=0)
    except AssertionError as e:
        raise AssertionError(str(e) + hint) from None
