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


def _tmp_for(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {out.parent} for {out}: {exc.strerror}") from None
    return out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"


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
    out = Path(path)
    tmp = _tmp_for(out)
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


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
    out = Path(path)
    tmp = _tmp_for(out)
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        os.replace(tmp, out)
    except Exception as exc:
        raise OutputError(f"cannot write {out}: {type(exc).__name__}: {exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
