"""Provenance records and atomic output."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aicarousel.errors import OutputError
from aicarousel.model import model_hash, write_netcdf
from aicarousel.provenance import provenance



def test_provenance_is_flat_strings():
    rec = provenance(model_hash="abc", params_changed={"X": 1.5, "S": pd.Series([1.0, 2.0], index=[2024.0, 2035.0])},
                     seed=7, note={"a": 1})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in rec.items())
    assert rec["model_hash"] == "abc" and rec["seed"] == "7"
    changed = json.loads(rec["params_changed"])
    assert changed["X"] == 1.5 and changed["S"] == {"index": [2024.0, 2035.0], "values": [1.0, 2.0]}
    assert "pysd" in json.loads(rec["package_versions"])
    assert rec["created"].endswith("+00:00")
    assert json.loads(rec["note"]) == {"a": 1}


def test_provenance_hashes_model_file():
    from aicarousel import paths
    rec = provenance(model_file=paths.MODEL_FILE)
    assert rec["model_hash"] == model_hash() and rec["model_file"] == "models/ai_carousel.mdl"


def test_failed_write_leaves_nothing(tmp_path):
    ds = xr.Dataset({"a": ("time", np.arange(3.0))}, coords={"time": [0.0, 1.0, 2.0]})
    ds.attrs["bad"] = {"not": "serialisable"}  # netCDF cannot store a dict attribute
    out = tmp_path / "x.nc"
    with pytest.raises(OutputError, match="x.nc"):
        write_netcdf(ds, out)
    assert list(tmp_path.iterdir()) == []
