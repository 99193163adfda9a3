"""Atomic file writes: a temporary file in the target's directory, then one rename.

A failed or interrupted write leaves the previous file (or none) and no partial file, so a
reader never mistakes half a result for a whole one. Every module that writes results uses
these two functions.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from .errors import OutputError

__all__ = ["write_text", "write_netcdf"]


def _replace_atomically(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {out.parent} for {out}: {exc.strerror}") from None
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, out)
    except Exception as exc:
        raise OutputError(f"cannot write {out}: {type(exc).__name__}: {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically.

    Parameters
    ----------
    path : path
        Target file; parent directories are created.
    text : str

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    OutputError
        When the file cannot be written (nothing is left behind).
    """
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)

    return _replace_atomically(path, write)


def write_netcdf(ds, path: str | os.PathLike) -> Path:
    """Write an ``xarray.Dataset`` to netCDF atomically.

    Parameters
    ----------
    ds : xarray.Dataset
    path : path
        Target .nc file; parent directories are created.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    OutputError
        When the file cannot be written (nothing is left behind).
    """
    return _replace_atomically(path, lambda tmp: ds.to_netcdf(tmp, engine="netcdf4"))
