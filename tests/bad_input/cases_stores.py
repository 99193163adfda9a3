"""Sweep stores: --force beside a user's files, locks, damaged stores, bad flags and scheduler
addresses, --out in the way (harden-files).

A previous sweep is made by :func:`_sweep` (4 runs, two chunks: a few seconds). Rows that must
not touch it own nothing, so the harness proves the store and the user's files unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
from pathlib import Path

from aicarousel.errors import OutputError, ParameterValueError
from aicarousel import sweep
from aicarousel.sweep import SweepError, make_definition, open_results, run_sweep

from .harness import Case

PARAM = "AI demand multiplier"
MC = ["montecarlo", "--n", "4", "--param", PARAM, "--output", "Lab Cash", "--chunk-size", "2",
      "-q"]
SENS = ["sensitivity", "--method", "morris", "--n", "2", "--param", PARAM, "--param",
        "Construction time", "--output", "final(Lab Cash)", "--chunk-size", "4", "-q"]


def _main(argv):
    from aicarousel.cli import main
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0, argv


def _sweep(out="mc", cmd=MC, extra=()):
    """setup: a complete previous sweep in ``<sandbox>/<out>`` plus ``extra`` user files."""
    def setup(sb):
        _main(cmd + ["--out", str(sb / out)])
        _user_files(*extra, text="\\chapter{Results} a user's file\n")(sb)
    return setup


def _user_files(*names, text="mine\n"):
    """setup: the user's own files ``names`` (relative to the sandbox) holding ``text``."""
    def setup(sb):
        for name in names:
            p = sb / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
    return setup


def _then(*setups):
    def setup(sb):
        for s in setups:
            s(sb)
    return setup


def _lock(out="mc", pid=1, host=None):
    """setup: a lock held by a running process (pid 1 always runs) or another machine."""
    def setup(sb):
        d = sb / out
        d.mkdir(exist_ok=True)
        (d / "sweep.zarr.lock").write_text(json.dumps(
            {"pid": pid, "host": host or socket.gethostname(), "start": None,
             "since": "2026-01-01T00:00:00Z"}))
    return setup


def _damage(kind, array="v_0", chunk="1"):
    """setup: a complete sweep with one chunk file of ``array`` deleted or truncated."""
    def setup(sb):
        _sweep()(sb)
        base = sb / "mc" / "sweep.zarr" / array / "c" / chunk
        f = base / "0" if base.is_dir() else base
        if kind == "delete":
            f.unlink()
        else:
            f.write_bytes(f.read_bytes()[:7])
    return setup


def _definition():
    from aicarousel.sensitivity import load_problem
    return make_definition("montecarlo", "lhs", 4, 0, load_problem([PARAM]), ["Lab Cash"],
                           chunk_size=2)


def _open(sb):
    return open_results(sb / "mc" / "sweep.zarr")


def _hold_lock_and_run(sb):
    """Another process tries the same store while this one holds the lock."""
    import subprocess
    import sys

    with sweep.lock_store(sb / "mc" / "sweep.zarr"):
        proc = subprocess.run([sys.executable, "-m", "aicarousel.cli"] + MC
                              + ["--out", str(sb / "mc")], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    raise SweepError(proc.stderr.strip())


OUT = ["--out", "{tmp}/mc"]
SCHEDULERS = {
    "no-port": ("foo", "has no port"),
    "scheme-only": ("tcp://", "not a scheduler address"),
    "empty-port": ("tcp://host:", "has no port"),
    "port-not-number": ("tcp://host:abc", "'abc' is not a number"),
    "port-too-big": ("tcp://host:99999", "'99999' is not a number"),
    "port-zero": ("tcp://host:0", "'0' is not a number"),
    "unknown-scheme": ("http://host:8786", "unknown protocol 'http'"),
    "path": ("tcp://host:8786/x/y", "not a scheduler address"),
    "blank": ("  ", "not a scheduler address"),
    "spaces-inside": ("tcp://my host:8786", "not a scheduler address"),
}

CASES = [
    # --- item 1: --force replaces only a previous sweep's files -------------------------------
    Case("store-force-keeps-users-thesis", argv=MC + OUT + ["--force"],
         setup=_sweep(extra=["mc/thesis.tex"]), message="thesis.tex"),
    Case("store-force-out-dot", argv=MC + ["--out", ".", "--force"],
         setup=_user_files("thesis.tex", "data/survey.csv"), message="thesis.tex"),
    Case("store-force-user-subdir", argv=SENS + ["--out", "{tmp}/s", "--force"],
         setup=_sweep("s", SENS, extra=["s/figures/fig1.pdf"]), message="figures/"),
    Case("store-force-user-dir-without-sweep", argv=MC + OUT + ["--force"],
         setup=_user_files("mc/notes.md"), message="notes.md"),
    Case("store-force-fake-store", argv=MC + OUT + ["--force"],
         setup=_user_files("mc/sweep.zarr/mine.txt"), message="sweep.zarr/"),
    Case("store-fake-store-without-force", argv=MC + OUT,
         setup=_user_files("mc/sweep.zarr/mine.txt"), message="not a sweep store"),
    Case("store-force-foreign-bands", argv=MC + OUT + ["--force"],
         setup=_then(_sweep(), lambda sb: (sb / "mc" / "bands.nc").write_text("my bands\n")),
         message="bands.nc"),
    Case("store-force-many-foreign-files", argv=MC + OUT + ["--force"],
         setup=_sweep(extra=[f"mc/ch{i}.tex" for i in range(8)]), message="and 3 more"),
    Case("store-force-and-resume", argv=MC + OUT + ["--force", "--resume"], setup=_sweep(),
         message="not both"),
    Case("store-force-bad-workers-keeps-sweep", argv=MC + OUT + ["--force", "--workers", "0"],
         setup=_sweep(), message="--workers must be >= 1"),
    Case("store-force-bad-processes-keeps-sweep",
         argv=MC + OUT + ["--force", "--processes", "0"], setup=_sweep(),
         message="--processes must be >= 1"),
    Case("store-force-bad-scheduler-keeps-sweep",
         argv=MC + OUT + ["--force", "--scheduler", "tcp://h:x"], setup=_sweep(),
         message="'x' is not a number"),
    Case("store-force-unknown-param-keeps-sweep",
         argv=MC + OUT + ["--force", "--param", "Nonexistent thing"], setup=_sweep(),
         message="Nonexistent thing"),
    # --- existing stores without --force ------------------------------------------------------
    Case("store-exists-without-flags", argv=MC + OUT, setup=_sweep(),
         message="already holds a sweep"),
    Case("store-resume-different-sweep", argv=MC[:2] + ["6"] + MC[3:] + OUT + ["--resume"],
         setup=_sweep(), message="different sweep"),
    Case("store-resume-without-store", argv=MC + OUT + ["--resume"], setup=_user_files("mc/x"),
         message="no sweep store"),
    Case("store-resume-broken-manifest", argv=MC + OUT + ["--resume"],
         setup=_then(_sweep(), lambda sb: (sb / "mc" / "sweep.zarr" / "zarr.json")
                     .write_text('{"zarr_format": 3, "node_t')),
         message="not a sweep store"),
    # --- --out in the way ---------------------------------------------------------------------
    Case("store-out-is-file", argv=MC + ["--out", "{tmp}/thesis.tex"],
         setup=_user_files("thesis.tex"), message="is a file, not a directory"),
    Case("store-out-under-file", argv=MC + ["--out", "{tmp}/thesis.tex/mc"],
         setup=_user_files("thesis.tex"), message="thesis.tex is a file"),
    Case("store-out-read-only", argv=MC + ["--out", "/sys/aicarousel-test"],
         message="aicarousel-test"),
    Case("store-out-empty", argv=MC + ["--out", ""], message="--out"),
    Case("store-store-is-file", argv=MC + OUT, setup=_user_files("mc/sweep.zarr"),
         message="is a file, not a sweep store"),
    Case("store-bands-is-directory", argv=MC + OUT, setup=_user_files("mc/bands.nc/x"),
         message="is a directory"),
    Case("store-bands-is-fifo", argv=MC + OUT,
         setup=lambda sb: (sb / "mc").mkdir() or os.mkfifo(sb / "mc" / "bands.nc"),
         message="named pipe"),
    Case("store-indices-is-directory", argv=SENS + ["--out", "{tmp}/s"],
         setup=_user_files("s/indices.nc/x"), message="is a directory"),
    # --- silent clamps become errors ----------------------------------------------------------
    Case("store-chunk-size-zero", argv=MC[:-3] + ["--chunk-size", "0", "-q"] + OUT,
         message="chunk size must be >= 1"),
    Case("store-chunk-size-negative", argv=MC[:-3] + ["--chunk-size", "-5", "-q"] + OUT,
         message="chunk size must be >= 1"),
    Case("store-workers-negative", argv=MC + OUT + ["--workers", "-2"],
         message="--workers must be >= 1"),
    Case("store-workers-and-scheduler", argv=MC + OUT + ["--workers", "2", "--scheduler",
                                                        "tcp://127.0.0.1:8786"],
         message="not both"),
    # --- locks --------------------------------------------------------------------------------
    Case("store-lock-held-by-running-process", argv=MC + OUT, setup=_lock(pid=1),
         message="another sweep (pid 1", owned=()),
    Case("store-lock-held-resume", argv=MC + OUT + ["--resume"],
         setup=_then(_sweep(), _lock(pid=1)), message="another sweep (pid 1"),
    Case("store-lock-held-force", argv=MC + OUT + ["--force"],
         setup=_then(_sweep(), _lock(pid=1)), message="another sweep (pid 1"),
    Case("store-lock-held-other-host", argv=MC + OUT, setup=_lock(pid=12345, host="elsewhere"),
         message="on elsewhere"),
    Case("store-second-process-while-locked", call=_hold_lock_and_run, raises=SweepError,
         message="is writing", owned=("mc", "mc/**")),
    # --- item 7: a damaged store is never read as NaN rows ------------------------------------
    Case("store-api-deleted-chunk", call=_open, setup=_damage("delete"), raises=SweepError,
         message="missing or corrupt (chunk 1 (v_0))"),
    Case("store-api-truncated-chunk", call=_open, setup=_damage("truncate"), raises=SweepError,
         message="missing or corrupt"),
    Case("store-api-deleted-sample-chunk", call=_open, setup=_damage("delete", "X", "0"),
         raises=SweepError, message="chunk 0 (X)"),
    Case("store-api-not-a-store", call=_open, setup=_user_files("mc/sweep.zarr/x"),
         raises=SweepError, message="not a sweep store"),
    # --- the Python API -----------------------------------------------------------------------
    Case("store-api-chunk-size-zero",
         call=lambda sb: make_definition("montecarlo", "lhs", 4, 0,
                                         __import__("aicarousel.sensitivity").sensitivity
                                         .load_problem([PARAM]), ["Lab Cash"], chunk_size=0),
         raises=ParameterValueError, message="chunk size must be >= 1"),
    Case("store-api-store-is-file", call=lambda sb: run_sweep(_definition(), sb / "s.zarr",
                                                              progress=False),
         setup=_user_files("s.zarr"), raises=SweepError, message="is a file"),
    Case("store-api-store-under-file",
         call=lambda sb: run_sweep(_definition(), sb / "f" / "s.zarr", progress=False),
         setup=_user_files("f"), raises=OutputError, message="is a file"),
    Case("store-api-bad-scheduler",
         call=lambda sb: run_sweep(_definition(), sb / "s.zarr", scheduler="tcp//x:1",
                                   progress=False),
         raises=SweepError, message="tcp//x:1"),
    Case("store-api-lock-held", call=lambda sb: run_sweep(_definition(), sb / "mc" / "sweep.zarr",
                                                          progress=False),
         setup=_lock(pid=1), raises=SweepError, message="another sweep (pid 1"),
]

def _limit_file_size():
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


CASES += [
    Case("store-file-size-limit", argv=["montecarlo", "--n", "600", "--output", "Lab Cash",
                                        "--output", "Cloud Debt", "--chunk-size", "300", "-q",
                                        "--out", "{tmp}/mc"],
         subprocess=True, preexec=_limit_file_size, message="file-size limit",
         owned=("mc", "mc/**")),
]
CASES += [Case(f"store-scheduler-{key}", argv=MC + OUT + ["--scheduler", addr], message=needle)
          for key, (addr, needle) in SCHEDULERS.items()]
