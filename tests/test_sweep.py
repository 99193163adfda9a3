"""Sweeps: Zarr store, resume after a killed process (bit-for-bit), dask LocalCluster, and the
sensitivity/montecarlo commands' bad-input handling (exit 2, one line, nothing that looks
complete)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import cli_argv

from aicarousel.cli import main
from aicarousel.sensitivity import load_problem
from aicarousel.sweep import (SweepError, TASK_DELAY_ENV, make_definition, open_results,
                              run_sweep, store_status)


PARAMS = ["AI demand multiplier", "GPU economic life", "Construction time"]
MC_OUTPUTS = ["Cloud Debt", "Lab Cash"]


def _mc_definition(n=120, seed=4, chunk=20):
    problem = load_problem(PARAMS)
    return make_definition("montecarlo", "lhs", n, seed, problem, MC_OUTPUTS, chunk_size=chunk)


def _assert_same_store(a, b):
    da, Xa, ya = open_results(a)
    db, Xb, yb = open_results(b)
    assert da == db
    np.testing.assert_array_equal(Xa, Xb)
    assert set(ya) == set(yb)
    for k in ya:
        np.testing.assert_array_equal(ya[k], yb[k])  # bit for bit, NaN nowhere
        assert not np.isnan(ya[k]).any()


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory):
    """The uninterrupted in-process sweep every other run is compared with."""
    store = tmp_path_factory.mktemp("ref") / "sweep.zarr"
    run_sweep(_mc_definition(), store, progress=False)
    return store


def test_store_complete_and_equal_to_direct_evaluation(reference_store):
    from aicarousel.sensitivity import evaluate_series

    d, X, data = open_results(reference_store)
    st = store_status(reference_store)
    assert st["complete"] and st["done"] == st["n_chunks"] == d.n_chunks == 6
    ds = evaluate_series(d.problem, X, MC_OUTPUTS)
    for k in MC_OUTPUTS:
        np.testing.assert_array_equal(data[k], ds[k].values)


def test_sensitivity_sweep_store(tmp_path):
    problem = load_problem(PARAMS)
    d = make_definition("sensitivity", "morris", 5, 1, problem,
                        ["peak(Cloud Debt)", "Lab Cash"], chunk_size=7)
    run_sweep(d, tmp_path / "s.zarr", progress=False)
    d2, X, Y = open_results(tmp_path / "s.zarr")
    assert list(Y) == ["peak(Cloud Debt)", "final(Lab Cash)"]
    assert X.shape == (5 * 4, 3) and np.isfinite(Y["final(Lab Cash)"]).all()


@pytest.mark.parametrize("mode", ["in-process", "dask workers"])
def test_killed_sweep_resumes_to_identical_results(tmp_path, reference_store, mode):
    """Kill the sweep's processes mid-way (SIGKILL to the whole process group: the sweep and,
    with --workers, its dask worker processes), resume, compare with the uninterrupted run."""
    out = tmp_path / "mc"
    env = dict(os.environ, **{TASK_DELAY_ENV: "0.4"})
    cmd = cli_argv("montecarlo", "--method", "lhs", "--n", "120",
                   "--seed", "4", "--chunk-size", "20", "--out", str(out), "-q")
    if mode == "dask workers":
        cmd += ["--workers", "2"]
    for p in PARAMS:
        cmd += ["--param", p]
    for o in MC_OUTPUTS:
        cmd += ["--output", o]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    done_dir = out / "sweep.zarr" / "_done"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if done_dir.is_dir() and len(list(done_dir.iterdir())) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "sweep finished before it could be killed: " + \
        proc.stderr.read().decode()[-500:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    st = store_status(out / "sweep.zarr")
    assert not st["complete"] and 2 <= st["done"] < st["n_chunks"]
    assert not (out / "bands.nc").exists()
    with pytest.raises(SweepError, match="incomplete"):
        open_results(out / "sweep.zarr")
    # resume through the CLI, in-process this time
    args = ["montecarlo", "--method", "lhs", "--n", "120", "--seed", "4", "--chunk-size", "20",
            "--out", str(out), "-q", "--resume"]
    for p in PARAMS:
        args += ["--param", p]
    for o in MC_OUTPUTS:
        args += ["--output", o]
    assert main(args) == 0
    _assert_same_store(out / "sweep.zarr", reference_store)
    assert (out / "bands.nc").is_file()


def test_scenario_is_applied_to_every_run(tmp_path, reference_store):
    d = make_definition("montecarlo", "lhs", 120, 4, load_problem(PARAMS), MC_OUTPUTS,
                        chunk_size=20, scenario="funding_stop")
    run_sweep(d, tmp_path / "s.zarr", progress=False)
    _, X, data = open_results(tmp_path / "s.zarr")
    _, Xr, ref = open_results(reference_store)
    np.testing.assert_array_equal(X, Xr)  # same sample
    assert not np.array_equal(data["Lab Cash"], ref["Lab Cash"])  # different world


def test_local_cluster_gives_identical_results(tmp_path, reference_store):
    store = tmp_path / "dask.zarr"
    run_sweep(_mc_definition(), store, workers=2, progress=False)
    _assert_same_store(store, reference_store)


def test_resume_refuses_a_different_sweep(tmp_path, reference_store):
    import shutil

    store = tmp_path / "copy.zarr"
    shutil.copytree(reference_store, store)
    with pytest.raises(SweepError, match=r"seed \(store 4, requested 5\)"):
        run_sweep(_mc_definition(seed=5), store, resume=True, progress=False)
    with pytest.raises(SweepError, match="already exists"):
        run_sweep(_mc_definition(), store, progress=False)


def test_unreachable_scheduler_fails_cleanly(tmp_path):
    store = tmp_path / "x.zarr"
    with pytest.raises(SweepError, match="cannot reach the dask scheduler"):
        run_sweep(_mc_definition(), store, scheduler="tcp://127.0.0.1:9", connect_timeout=1,
                  progress=False)
    assert not store.exists()


# ------------------------------------------------------------------------------------------
# command line: bad input -> exit 2, one line on stderr, no results that look complete
# ------------------------------------------------------------------------------------------
BAD = {
    "unknown parameter": (["sensitivity", "--method", "morris", "--n", "4",
                           "--param", "Constructon time"], "Constructon time"),
    "unknown output": (["sensitivity", "--method", "morris", "--n", "4",
                        "--output", "peak(Clod Debt)"], "Clod Debt"),
    "low >= high": (["sensitivity", "--method", "morris", "--n", "4",
                     "--range", "Construction time=3:1"], "low >= high"),
    "morris N too small": (["sensitivity", "--method", "morris", "--n", "1"], "too small"),
    "sobol N not power of 2": (["sensitivity", "--method", "sobol", "--n", "100"],
                               "power of 2"),
    "montecarlo N too small": (["montecarlo", "--n", "1"], "too small"),
    "unreachable scheduler": (["montecarlo", "--n", "10", "--scheduler", "tcp://127.0.0.1:9"],
                              "cannot reach"),
    "resume without store": (["montecarlo", "--n", "10", "--resume"], "no sweep store"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_bad_input(case, tmp_path, capsys):
    args, needle = BAD[case]
    out = tmp_path / "out"
    status = main(args + ["--out", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not (out / "indices.nc").exists() and not (out / "bands.nc").exists()
    assert not (out / "sweep.zarr").exists()


def test_cli_wrong_store_on_resume(tmp_path, capsys):
    out = tmp_path / "m"
    base = ["sensitivity", "--method", "morris", "--n", "3", "--param", PARAMS[0],
            "--param", PARAMS[1], "--out", str(out), "-q"]
    assert main(base) == 0
    assert (out / "indices.nc").is_file()
    before = (out / "indices.nc").read_bytes()
    status = main(base[:4] + ["4"] + base[5:] + ["--resume"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "different sweep" in err and "n (store 3, requested 4)" in err
    assert (out / "indices.nc").read_bytes() == before
    import xarray as xr
    with xr.open_dataset(out / "indices.nc") as ds:
        assert set(ds["param"].values) == set(PARAMS[:2])
        assert ds["mu_star"].dims == ("output", "param")


def test_cli_bad_call_with_force_keeps_earlier_results(tmp_path, capsys):
    """Arguments are checked before --force removes anything."""
    out = tmp_path / "m"
    base = ["sensitivity", "--method", "morris", "--n", "3", "--param", PARAMS[0],
            "--param", PARAMS[1], "--out", str(out), "-q"]
    assert main(base) == 0
    before = (out / "indices.nc").read_bytes()
    assert main(base + ["--force", "--processes", "0"]) == 2
    assert "--processes must be >= 1" in capsys.readouterr().err
    assert (out / "indices.nc").read_bytes() == before
    assert (out / "sweep.zarr").is_dir()


def test_existing_scheduler_gives_identical_results(tmp_path, reference_store):
    """--scheduler: connect to a running cluster (here an in-process one) by address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0") as cluster:
        store = tmp_path / "sched.zarr"
        run_sweep(_mc_definition(), store, scheduler=cluster.scheduler_address, progress=False)
    _assert_same_store(store, reference_store)


# ------------------------------------------------------------------------------------------
# nothing of the user's lost; damaged stores repaired; one sweep per store at a time
# ------------------------------------------------------------------------------------------
SMALL = ["montecarlo", "--n", "4", "--param", PARAMS[0], "--output", "Lab Cash",
         "--chunk-size", "2", "-q"]


def test_force_never_deletes_a_users_files(tmp_path, capsys, monkeypatch):
    """--force replaced the whole --out (a thesis folder, or `.`): now only a previous sweep's
    own files are replaced, and anything else makes it refuse, naming the files."""
    out = tmp_path / "thesis"
    assert main(SMALL + ["--out", str(out)]) == 0
    store_before = store_status(out / "sweep.zarr")["definition_hash"]
    (out / "thesis.tex").write_text("\\chapter{Results}\n")
    capsys.readouterr()
    assert main(SMALL + ["--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "thesis.tex" in err
    assert (out / "thesis.tex").read_text() == "\\chapter{Results}\n"
    assert store_status(out / "sweep.zarr")["definition_hash"] == store_before
    assert (out / "bands.nc").is_file()
    # `--out . --force` in a directory with the user's files
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("mine\n")
    assert main(SMALL + ["--out", ".", "--force"]) == 2
    assert "notes.md" in capsys.readouterr().err
    assert (tmp_path / "notes.md").read_text() == "mine\n" and out.is_dir()
    # with only our own files, --force replaces the previous sweep
    (out / "thesis.tex").unlink()
    assert main(SMALL[:2] + ["6"] + SMALL[3:] + ["--out", str(out), "--force"]) == 0
    st = store_status(out / "sweep.zarr")
    assert st["complete"] and st["manifest"]["n"] == 6
    assert sorted(p.name for p in out.iterdir()) == ["bands.nc", "sweep.zarr"]


def _chunk_file(store, array, i):
    base = store / array / "c" / str(i)
    return base / "0" if base.is_dir() else base


@pytest.mark.parametrize("damage", ["delete", "truncate", "delete sample"])
def test_resume_recomputes_missing_or_corrupt_chunks(tmp_path, reference_store, capsys, damage):
    """A complete store with a deleted chunk gave all-NaN bands with exit 0, a truncated one a
    traceback: resume now finds them, says so, recomputes them, and the result is identical."""
    import shutil

    out = tmp_path / "mc"
    out.mkdir()
    shutil.copytree(reference_store, out / "sweep.zarr")
    store = out / "sweep.zarr"
    f = _chunk_file(store, "X" if damage == "delete sample" else "v_1", 3)
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:9])
    else:
        f.unlink()
    assert store_status(store)["complete"]
    with pytest.raises(SweepError, match="damaged"):
        open_results(store)
    args = ["montecarlo", "--method", "lhs", "--n", "120", "--seed", "4", "--chunk-size", "20",
            "--out", str(out), "-q", "--resume"]
    for p in PARAMS:
        args += ["--param", p]
    for o in MC_OUTPUTS:
        args += ["--output", o]
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "missing or corrupt (chunk 3)" in err and "recomputing" in err
    _assert_same_store(store, reference_store)
    import xarray as xr
    with xr.open_dataset(out / "bands.nc") as bands:
        assert not any(bands[v].isnull().any() for v in bands.data_vars)


def test_stale_lock_and_temp_files_of_a_killed_sweep_are_taken_over(tmp_path, capsys):
    """A lock whose process is gone is taken over (with a note); hidden temps are removed."""
    import json
    import socket

    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "mc"
    assert main(SMALL + ["--out", str(out)]) == 0
    store = out / "sweep.zarr"
    (store.parent / "sweep.zarr.lock").write_text(json.dumps(
        {"pid": dead.pid, "host": socket.gethostname(), "start": None}))
    (store / "_done" / ".tmpk1l2m3").write_text("")
    (out / "sweep.zarr.creating").mkdir()
    (out / f".bands.nc.{dead.pid}-0123abcd.tmp").write_text("half")
    (store / "_done" / "1").unlink()  # one chunk to redo
    capsys.readouterr()
    assert main(SMALL + ["--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"pid {dead.pid}" in err and "taking it over" in err
    assert sorted(p.name for p in out.iterdir()) == ["bands.nc", "sweep.zarr"]
    assert not (store / "_done" / ".tmpk1l2m3").exists()


def test_two_sweeps_into_one_store(tmp_path, capsys):
    """A second sweep into a store being written is refused naming the first; the first one
    finishes and its store is whole."""
    out = tmp_path / "mc"
    env = dict(os.environ, **{TASK_DELAY_ENV: "0.5"})
    cmd = cli_argv(*SMALL[:2], "8", *SMALL[3:], "--out", str(out))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock = out / "sweep.zarr.lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not lock.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert lock.exists(), proc.stderr.read().decode()[-500:] if proc.poll() is not None else ""
    for extra in ([], ["--resume"], ["--force"]):
        capsys.readouterr()
        assert main(SMALL[:2] + ["8"] + SMALL[3:] + ["--out", str(out)] + extra) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"pid {proc.pid}" in err, err
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-500:]
    d, X, data = open_results(out / "sweep.zarr")
    assert X.shape[0] == 8 and not np.isnan(data["Lab Cash"]).any()
    assert not lock.exists()


def test_chunk_size_zero_is_an_error_not_the_default(tmp_path, capsys):
    assert main(SMALL[:-3] + ["--chunk-size", "0", "-q", "--out", str(tmp_path / "o")]) == 2
    assert "chunk size must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_store_opens_with_xarray(reference_store, tmp_path):
    """Other tools read the store: xarray.open_zarr gives named dimensions and the sample."""
    import xarray as xr

    d, X, data = open_results(reference_store)
    with xr.open_zarr(reference_store, consolidated=False) as ds:
        assert ds["X"].dims == ("run", "param") and ds["v_0"].dims == ("run", "time")
        assert ds["time"].dims == ("time",)
        np.testing.assert_array_equal(ds["X"].values, X)
        np.testing.assert_array_equal(ds["v_0"].values, data[MC_OUTPUTS[0]])
        assert ds["v_0"].attrs["name"] == MC_OUTPUTS[0]
    problem = load_problem(PARAMS)
    d = make_definition("sensitivity", "morris", 2, 1, problem, ["Lab Cash"], chunk_size=4)
    run_sweep(d, tmp_path / "s.zarr", progress=False)
    with xr.open_zarr(tmp_path / "s.zarr", consolidated=False) as ds:
        assert ds["y_0"].dims == ("run",) and ds["y_0"].attrs["label"] == "final(Lab Cash)"


def test_store_write_error_silences_siblings_copies_only(tmp_path, capsys):
    """A failed store write is one line: zarr's sibling tasks that failed the same way are not
    logged again by asyncio ("Task exception was never retrieved", which made the file-size
    bad-input row fail now and then); other asyncio records still pass."""
    import logging

    from aicarousel import sweep as SW

    with pytest.raises(SW.SweepError, match="cannot write sweep store"):
        with SW._store_errors(tmp_path / "s.zarr"):
            raise OSError(27, "File too large")
    log = logging.getLogger("asyncio")
    err = OSError(27, "File too large")
    rec = log.makeRecord("asyncio", logging.ERROR, __file__, 1,
                         "Task exception was never retrieved\nfuture: <Task>", None,
                         (OSError, err, None))
    assert not all(f.filter(rec) for f in log.filters)
    fut = log.makeRecord("asyncio", logging.ERROR, __file__, 1,
                         "Future exception was never retrieved\nfuture: <Future>", None,
                         (OSError, err, None))
    assert not all(f.filter(fut) for f in log.filters)  # seen in round 4's full suite
    pending = log.makeRecord("asyncio", logging.ERROR, __file__, 1,
                             "Task was destroyed but it is pending!\ntask: <Task pending "
                             "coro=<_write() running at zarr/core/codec_pipeline.py:1>>",
                             None, None)
    assert not all(f.filter(pending) for f in log.filters)
    other = log.makeRecord("asyncio", logging.ERROR, __file__, 1, "Unclosed client session",
                           None, None)
    assert all(f.filter(other) for f in log.filters)
    mine = log.makeRecord("asyncio", logging.ERROR, __file__, 1,
                          "Task was destroyed but it is pending!\ntask: <Task pending "
                          "coro=<mine()>>", None, None)
    assert all(f.filter(mine) for f in log.filters)
