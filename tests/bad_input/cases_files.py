"""Output paths: special files, directories, files in the way, read-only places, full disks,
closed or full standard output (harden-files).

Every writer goes through ``aicarousel.atomic``; these rows prove it refuses what it must not
replace (a FIFO, a device, a directory), that commands check their output arguments before
running anything, and that failures name the cause in one line.
"""

from __future__ import annotations

import os
import resource
import socket
import stat

import numpy as np
import pandas as pd
import xarray as xr

from aicarousel import atomic, model
from aicarousel.errors import OutputError

from .harness import Case

RUN = ["run", "--final-time", "2026", "-q"]
#: A place even root cannot write (sysfs is mounted read-only for files and directories).
READ_ONLY_DIR = "/sys/aicarousel-test"


def _fifo(name):
    def setup(sb):
        os.mkfifo(sb / name)
    return setup


def _dir(name):
    def setup(sb):
        (sb / name).mkdir(parents=True)
    return setup


def _file(name, text="a user's file\n"):
    def setup(sb):
        (sb / name).parent.mkdir(parents=True, exist_ok=True)
        (sb / name).write_text(text)
    return setup


def _socket(name):
    def setup(sb):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(sb / name))
        s.close()
    return setup


def _symlink_to_fifo(sb):
    os.mkfifo(sb / "pipe")
    (sb / "link.nc").symlink_to(sb / "pipe")


def _still(name, kind):
    """check: ``name`` in the sandbox is still of ``kind`` (stat.S_ISFIFO, ...)."""
    def check(sb, status, err):
        assert kind(os.lstat(sb / name).st_mode), f"{name} was replaced"
    return check


def _device(name, minor):
    """setup: a character device node in the sandbox (1, minor: 3 = null, 7 = full).

    Never the machine's own /dev/null or /dev/full: if the refusal ever regressed, a row
    would replace the real device for every process on the machine. Without the right to
    make device nodes, a symbolic link to the real device (followed by the writer, and
    unreplaceable without that right).
    """
    def setup(sb):
        try:
            os.mknod(sb / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        except PermissionError:
            (sb / name).symlink_to({3: "/dev/null", 7: "/dev/full"}[minor])
    return setup


def _still_char(name):
    def check(sb, status, err):
        assert stat.S_ISCHR(os.stat(sb / name).st_mode), f"{name} is no longer a device"
    return check


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def _close_stdout():
    os.close(1)


def _stdout_to_dev_full():
    fd = os.open("/dev/full", os.O_WRONLY)
    os.dup2(fd, 1)
    os.close(fd)


def _ds():
    return xr.Dataset({"a": ("t", np.arange(3.0))})


CASES = [
    # --- aicarousel run -o: only a new path or a regular file is replaced ---------------------
    Case("files-run-output-fifo", argv=RUN + ["-o", "{tmp}/r.nc"], setup=_fifo("r.nc"),
         message="named pipe", check=_still("r.nc", stat.S_ISFIFO)),
    Case("files-run-output-directory", argv=RUN + ["-o", "{tmp}/r.nc"], setup=_dir("r.nc"),
         message="is a directory"),
    Case("files-run-output-socket", argv=RUN + ["-o", "{tmp}/s.nc"], setup=_socket("s.nc"),
         message="socket", check=_still("s.nc", stat.S_ISSOCK)),
    Case("files-run-output-symlink-to-fifo", argv=RUN + ["-o", "{tmp}/link.nc"],
         setup=_symlink_to_fifo, message="named pipe", check=_still("pipe", stat.S_ISFIFO)),
    Case("files-run-output-device-full", argv=RUN + ["-o", "{tmp}/full"], setup=_device("full", 7),
         message="character device", check=_still_char("full")),
    Case("files-run-output-device-null", argv=RUN + ["-o", "{tmp}/null"],
         setup=_device("null", 3), message="character device", check=_still_char("null")),
    Case("files-run-output-dot", argv=RUN + ["-o", "."], message="not a file name"),
    Case("files-run-output-empty", argv=RUN + ["-o", ""], message="not a file name"),
    Case("files-run-output-parent-is-file", argv=RUN + ["-o", "{tmp}/notes.txt/r.nc"],
         setup=_file("notes.txt"), message="is a file, not a directory"),
    Case("files-run-output-ancestor-is-file", argv=RUN + ["-o", "{tmp}/notes.txt/a/b/r.nc"],
         setup=_file("notes.txt"), message="notes.txt is a file"),
    Case("files-run-output-read-only-place", argv=RUN + ["-o", READ_ONLY_DIR + "/r.nc"],
         message="aicarousel-test"),
    Case("files-run-output-file-size-limit", argv=RUN + ["-o", "{tmp}/r.nc"], subprocess=True,
         preexec=_limit_file_size, message="file-size limit"),
    Case("files-run-output-fifo-in-subdir", argv=RUN + ["-o", "{tmp}/out/r.nc"],
         setup=lambda sb: (sb / "out").mkdir() or os.mkfifo(sb / "out" / "r.nc"),
         message="named pipe"),
    # --- standard output ----------------------------------------------------------------------
    Case("files-stdout-closed-run", argv=RUN[:-1], subprocess=True, preexec=_close_stdout,
         message="standard output is closed"),
    Case("files-stdout-closed-params", argv=["params"], subprocess=True, preexec=_close_stdout,
         message="standard output is closed"),
    Case("files-stdout-full-run", argv=RUN[:-1], subprocess=True, preexec=_stdout_to_dev_full,
         message="cannot write to standard output"),
    Case("files-stdout-full-params", argv=["params"], subprocess=True,
         preexec=_stdout_to_dev_full, message="cannot write to standard output"),
    # --- whopaid / accounts --output-dir ------------------------------------------------------
    Case("files-whopaid-output-dir-is-file", argv=["whopaid", "--output-dir", "{tmp}/tables"],
         setup=_file("tables"), message="is a file, not a directory",
         check=_still("tables", stat.S_ISREG)),
    Case("files-whopaid-output-dir-under-file",
         argv=["whopaid", "--output-dir", "{tmp}/thesis.tex/who"], setup=_file("thesis.tex"),
         message="thesis.tex is a file"),
    Case("files-whopaid-output-dir-read-only", argv=["whopaid", "--output-dir", READ_ONLY_DIR],
         message="aicarousel-test"),
    Case("files-whopaid-target-is-fifo", argv=["whopaid", "--output-dir", "{tmp}/who"],
         setup=lambda sb: (sb / "who").mkdir() or os.mkfifo(sb / "who" / "who_paid.csv"),
         message="named pipe"),
    Case("files-accounts-output-dir-is-file",
         argv=["accounts", "--time", "2026", "--output-dir", "{tmp}/tables"],
         setup=_file("tables"), message="is a file, not a directory"),
    Case("files-accounts-output-dir-under-file",
         argv=["accounts", "--time", "2026", "--output-dir", "{tmp}/t.csv/sub"],
         setup=_file("t.csv"), message="t.csv is a file"),
    # --- experiment, stability ----------------------------------------------------------------
    Case("files-experiment-output-fifo",
         argv=["experiment", "baseline", "-q", "--output", "{tmp}/e.nc", "--table", "{tmp}/t"],
         setup=_fifo("e.nc"), message="named pipe"),
    Case("files-experiment-table-is-directory",
         argv=["experiment", "baseline", "-q", "--output", "{tmp}/e.nc", "--table", "{tmp}/t"],
         setup=_dir("t.csv"), message="is a directory"),
    Case("files-experiment-output-under-file",
         argv=["experiment", "baseline", "-q", "--output", "{tmp}/x/e.nc", "--table", "{tmp}/t"],
         setup=_file("x"), message="x is a file"),
    Case("files-experiment-output-device",
         argv=["experiment", "baseline", "-q", "--output", "{tmp}/full", "--table", "{tmp}/t"],
         setup=_device("full", 7), message="character device", check=_still_char("full")),
    Case("files-stability-report-is-file", argv=["stability", "--report", "{tmp}/rep"],
         setup=_file("rep"), message="is a file, not a directory"),
    Case("files-stability-report-read-only", argv=["stability", "--report", READ_ONLY_DIR],
         message="aicarousel-test"),
    # --- the Python API: the one writer -------------------------------------------------------
    Case("files-api-write-text-fifo", call=lambda sb: atomic.write_text(sb / "p", "x"),
         setup=_fifo("p"), raises=OutputError, message="named pipe"),
    Case("files-api-write-netcdf-directory", call=lambda sb: atomic.write_netcdf(_ds(), sb / "d"),
         setup=_dir("d"), raises=OutputError, message="is a directory"),
    Case("files-api-write-text-device", call=lambda sb: atomic.write_text(sb / "null", "x"),
         setup=_device("null", 3), raises=OutputError, message="character device",
         check=_still_char("null")),
    Case("files-api-model-run-output-fifo",
         call=lambda sb: model.run(final_time=2026, output=sb / "r.nc"), setup=_fifo("r.nc"),
         raises=OutputError, message="named pipe"),
    Case("files-api-write-files-dir-is-file",
         call=lambda sb: atomic.write_files(sb / "d", {"a.csv": atomic.text_writer("x")}),
         setup=_file("d"), raises=OutputError, message="is a file"),
    Case("files-api-write-table-dir-is-file",
         call=lambda sb: __import__("aicarousel.accounts").accounts.write_table(
             pd.DataFrame({"a": [1.0]}), sb / "d", "t"),
         setup=_file("d"), raises=OutputError, message="is a file"),
]
