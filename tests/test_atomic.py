"""Atomic writes leave the old file or nothing, never a partial file or a stray temp file."""

import numpy as np
import pytest
import xarray as xr

from aicarousel.atomic import write_netcdf, write_text
from aicarousel.errors import OutputError


def test_write_text_replaces_whole_file(tmp_path):
    p = write_text(tmp_path / "sub" / "a.csv", "x\n1\n")
    assert p.read_text() == "x\n1\n"
    write_text(p, "x\n2\n")
    assert p.read_text() == "x\n2\n"
    assert sorted(f.name for f in p.parent.iterdir()) == ["a.csv"]


def test_failed_netcdf_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "r.nc"
    write_netcdf(xr.Dataset({"a": ("t", np.arange(3.0))}), p)
    before = p.read_bytes()
    bad = xr.Dataset({"a": ("t", np.array([object(), 1], dtype=object))})  # cannot be encoded
    with pytest.raises(OutputError, match="cannot write"):
        write_netcdf(bad, p)
    assert p.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["r.nc"]


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot create directory"):
        write_text(blocker / "x.txt", "y")
