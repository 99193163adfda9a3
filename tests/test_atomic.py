"""Atomic writes leave the old file or nothing, never a partial file or a stray temp file."""

import numpy as np
import pytest
import xarray as xr

from aicarousel.atomic import write_netcdf, write_text
from aicarousel.errors import OutputError

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


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


def test_fifo_and_device_are_never_replaced(tmp_path):
    """A rename onto a FIFO (or, as root, /dev/full) turned it into a regular file."""
    import os
    import stat

    fifo = tmp_path / "out.nc"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="named pipe"):
        write_text(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.tex").write_text("mine")
    with pytest.raises(OutputError, match="is a directory"):
        write_netcdf(xr.Dataset({"a": ("t", np.arange(3.0))}), d)
    assert (d / "thesis.tex").read_text() == "mine"
    if os.geteuid() == 0:  # a device node of our own, never the machine's /dev/full
        dev = tmp_path / "full"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 7))
        with pytest.raises(OutputError, match="character device"):
            write_text(dev, "x")
        assert stat.S_ISCHR(os.lstat(dev).st_mode)


def test_symlink_is_followed_and_kept(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_stale_temp_files_of_dead_writers_are_removed_only(tmp_path):
    """Hidden temps left by a killed writer (its pid gone) go on the next write of the same
    file; a running writer's temp, other names and a user's dotfiles are kept."""
    import os
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".r.nc.{dead.pid}-0123abcd.tmp"
    live = tmp_path / f".r.nc.{os.getpid()}-0123abcd.tmp"
    other = tmp_path / f".s.nc.{dead.pid}-0123abcd.tmp"
    mine = tmp_path / ".r.nc.backup"
    for p in (stale, live, other, mine):
        p.write_text("x")
    write_text(tmp_path / "r.nc", "y")
    assert not stale.exists()
    assert live.exists() and other.exists() and mine.exists()


def test_output_checked_before_the_run(tmp_path, monkeypatch):
    """model.run refuses a bad output before loading or simulating anything."""
    import os

    from aicarousel import model

    def no_run(*a, **k):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(model, "load", no_run)
    fifo = tmp_path / "r.nc"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="named pipe"):
        model.run(final_time=2026, output=fifo)
    with pytest.raises(OutputError, match="is a file"):
        (tmp_path / "f").write_text("")
        model.run(final_time=2026, output=tmp_path / "f" / "x.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "r.nc"]
