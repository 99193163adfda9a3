"""Atomic file writes: a temporary file in the target's directory, then one rename.

A failed or interrupted write leaves the previous file (or none) and no partial file, so a
reader never mistakes half a result for a whole one. Every module that writes results uses
these functions; nothing else in the package replaces files.

Rules (what a careful user expects of an output path):

- the target is a new path or an existing *regular* file; a FIFO, a device, a socket or a
  directory is refused (a rename would silently turn ``/dev/full`` or a named pipe into a
  regular file). A symbolic link is followed: the file it points to is replaced, the link kept.
- :func:`check_output` tells all of this (and an unwritable or non-directory parent) before any
  work is done, so commands call it on their output arguments before running anything.
- temporary files are named ``.<name>.<pid>-<hex>.tmp``; one left behind by a killed process
  (its pid no longer running) is removed the next time the same target is written. Nothing
  else in the directory is ever touched.
- :func:`write_files` writes a set of files into a directory (every file to its temporary
  first, then the renames), never removing or replacing a file it was not asked to write.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import stat
import uuid
from pathlib import Path
from typing import Callable, Mapping

from .errors import OutputError

__all__ = ["write_text", "write_netcdf", "write_with", "write_files", "check_output",
           "check_output_dir", "temp_name", "clean_stale_temps", "pid_alive", "describe"]

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a named pipe (FIFO)",
          stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link"}


def describe(mode: int) -> str:
    """What kind of file ``st_mode`` is, in words (``"a named pipe (FIFO)"``)."""
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(path: Path) -> Path:
    """The temporary file used to write ``path`` (hidden, with this process's id)."""
    return path.parent / f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


def clean_stale_temps(directory: Path, name: str | None = None) -> list[Path]:
    """Remove our temporary files in ``directory`` whose writing process no longer runs.

    Only names of the form ``.<name>.<pid>-<8 hex>.tmp`` (see :func:`temp_name`) are touched,
    and only for ``name`` when given. Returns the removed paths.
    """
    removed = []
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _TEMP_RE.match(p.name)
        if not m or (name is not None and m["name"] != name) or pid_alive(int(m["pid"])):
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                import shutil
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _nearest_existing(path: Path) -> Path:
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def check_output_dir(directory: str | os.PathLike, what: str = "output directory") -> Path:
    """Check that ``directory`` is, or can be created as, a writable directory.

    Nothing is created. Raises :class:`OutputError` naming the path and the cause.
    """
    d = Path(directory)
    if os.path.lexists(d):
        try:
            st = os.stat(d)
        except OSError as exc:
            raise OutputError(f"{what} {d} cannot be used: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {d} is {_kind_of(st.st_mode)}, not a directory; "
                              "give a directory path")
        why = _not_writable(d)
        if why:
            raise OutputError(f"{what} {d} is not writable ({why}); choose another directory")
        return d
    base = _nearest_existing(d)
    if base != d:
        try:
            st = os.stat(base)
        except OSError as exc:
            raise OutputError(f"cannot create directory {d} ({what}): {base}: "
                              f"{exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot create directory {d} ({what}): {base} is "
                              f"{_kind_of(st.st_mode)}, not a directory")
        why = _not_writable(base)
        if why:
            raise OutputError(f"cannot create directory {d} ({what}): {base} is not "
                              f"writable ({why})")
    return d


def _not_writable(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (None if they can).

    Tries it (a hidden probe file, removed at once): permission bits do not tell for root, a
    read-only mount or a full inode table.
    """
    if not os.access(directory, os.W_OK | os.X_OK):
        return "permission denied"
    probe = temp_name(Path(directory) / "probe")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        return exc.strerror or "cannot create files there"
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError:
        pass
    return None


def _kind_of(mode: int) -> str:
    return "a file" if stat.S_ISREG(mode) else describe(mode)


def check_output(path: str | os.PathLike, what: str = "output") -> Path:
    """Check that ``path`` may be written atomically; return the path actually written.

    The path must be new or an existing regular file (a symbolic link is followed to its
    target), and its directory must exist or be creatable, and be writable. Nothing is created.

    Raises
    ------
    OutputError
        Naming the path and why it cannot be written.
    """
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise OutputError(f"{what} {str(path)!r} is not a file name; give a file path "
                          "such as results/run.nc")
    if p.is_symlink():
        p = Path(os.path.realpath(p))
    if os.path.lexists(p):
        try:
            st = os.stat(p)
        except OSError as exc:
            raise OutputError(f"{what} {p} cannot be used: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{what} {p} is {describe(st.st_mode)}; only a new path or a "
                              "regular file is replaced, so give a file path")
    parent = p.parent
    if os.path.lexists(parent) and not parent.is_dir():
        raise OutputError(f"cannot create directory {parent} for {what} {p}: {parent} is "
                          f"{_kind_of(os.lstat(parent).st_mode)}, not a directory")
    check_output_dir(parent, what=f"directory of {what}")
    return p


def _cause(exc: BaseException, tmp: Path) -> str:
    """The cause of a failed write in words (disk full, file-size limit, permission...)."""
    eno = getattr(exc, "errno", None)
    if eno == errno.ENOSPC:
        return "no space left on the device (disk full)"
    if eno == errno.EFBIG:
        return "file too large (the file-size limit, ulimit -f, was reached)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    # libraries (netCDF/HDF5) hide the errno: tell the likely cause from the system's state
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        size = tmp.stat().st_size if tmp.is_file() else 0
        if soft != resource.RLIM_INFINITY and size >= soft - 65536:
            return "file too large (the file-size limit, ulimit -f, was reached)"
        vfs = os.statvfs(tmp.parent)
        if vfs.f_bavail * vfs.f_frsize < 1 << 20:
            return "no space left on the device (disk full)"
    except OSError:
        pass
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def write_with(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``.

    The building block of every writer here (``write`` may be any library's save function).

    Raises
    ------
    OutputError
        The path is not writable (see :func:`check_output`) or the write failed; the previous
        file (if any) is kept and no temporary file is left.
    """
    out = check_output(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {out.parent} for {out}: "
                          f"{exc.strerror}") from None
    clean_stale_temps(out.parent, out.name)
    tmp = temp_name(out)
    try:
        write(tmp)
        os.replace(tmp, out)
    except Exception as exc:
        raise OutputError(f"cannot write {out}: {_cause(exc, tmp)}") from None
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    return out


def write_files(directory: str | os.PathLike,
                writers: Mapping[str, Callable[[Path], object]]) -> Path:
    """Write several files into ``directory``: all to temporary files first, then renamed.

    Files of the directory that are not named in ``writers`` are never touched (a user's files
    beside our results survive). A failure before the renames leaves every old file in place.

    Parameters
    ----------
    directory : path
        Created if missing; must not be a file.
    writers : mapping
        File name -> ``write(tmp_path)``.

    Returns
    -------
    pathlib.Path
        The directory.
    """
    d = check_output_dir(directory)
    targets = {name: check_output(d / name) for name in writers}
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {d}: {exc.strerror}") from None
    temps: dict[str, Path] = {}
    try:
        for name, write in writers.items():
            out = targets[name]
            clean_stale_temps(out.parent, out.name)
            tmp = temps[name] = temp_name(out)
            try:
                write(tmp)
            except Exception as exc:
                raise OutputError(f"cannot write {out}: {_cause(exc, tmp)}") from None
        for name, tmp in temps.items():
            os.replace(tmp, targets[name])
    finally:
        for tmp in temps.values():
            if os.path.lexists(tmp):
                tmp.unlink()
    return d


def text_writer(text: str) -> Callable[[Path], None]:
    """A ``write(tmp)`` for :func:`write_with`/:func:`write_files`: UTF-8, ``\\n`` line ends."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    return write


def netcdf_writer(ds) -> Callable[[Path], None]:
    """A ``write(tmp)`` that saves an ``xarray.Dataset`` as netCDF-4."""
    return lambda tmp: ds.to_netcdf(tmp, engine="netcdf4")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically.

    ``write_with(path, text_writer(text))``: the target, the returned path and the
    ``OutputError`` are those of :func:`write_with`.
    """
    return write_with(path, text_writer(text))


def write_netcdf(ds, path: str | os.PathLike) -> Path:
    """Write an ``xarray.Dataset`` to netCDF-4 atomically.

    ``write_with(path, netcdf_writer(ds))``: the target, the returned path and the
    ``OutputError`` are those of :func:`write_with`.
    """
    return write_with(path, netcdf_writer(ds))
