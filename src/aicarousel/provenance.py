"""Provenance records: how a result was made.

:func:`provenance` returns a flat ``dict[str, str]`` usable as netCDF global attributes and as
PNG/PDF metadata: aicarousel version, git commit (and whether the tree had uncommitted changes),
model file hash, parameters changed (JSON), random seed, package versions (JSON), creation time
(UTC, ISO 8601).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from typing import Any, Mapping

from . import __version__, paths

#: Packages whose versions are recorded with every result.
TRACKED_PACKAGES = ("pysd", "xarray", "pandas", "numpy", "scipy", "sympy", "matplotlib", "SALib",
                    "dask", "netCDF4", "pysimlin", "emcee")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file's bytes.

    Parameters
    ----------
    path : str or os.PathLike
        File to hash.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Versions of the tracked packages plus Python and aicarousel.

    Returns
    -------
    dict of str to str
        Package name -> version ("not installed" when missing).
    """
    out = {"python": platform.python_version(), "aicarousel": __version__}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, str]:
    """Git commit of the repository and whether the working tree differs from it.

    Returns
    -------
    tuple of (str, str)
        (commit hash or "unknown", "true"/"false"/"unknown").
    """
    try:
        commit = subprocess.run(["git", "-C", str(paths.ROOT), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(paths.ROOT), "status", "--porcelain",
                                 "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return commit, "true" if status.strip() else "false"
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"


def _jsonable(value: Any) -> Any:
    """Convert a parameter value (number, pandas Series, array) to something JSON can hold."""
    if hasattr(value, "index") and hasattr(value, "to_numpy"):  # pandas Series
        return {"index": [float(i) for i in value.index], "values": [float(v) for v in value.to_numpy()]}
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def provenance(model_hash: str | None = None, params_changed: Mapping[str, Any] | None = None,
               seed: int | None = None, model_file: str | os.PathLike | None = None,
               **extra: Any) -> dict[str, str]:
    """Build a provenance record.

    Parameters
    ----------
    model_hash : str, optional
        SHA-256 of the model file (computed from ``model_file`` when omitted).
    params_changed : mapping, optional
        Parameter overrides by Vensim name (numbers or pandas Series).
    seed : int, optional
        Random seed used, if any.
    model_file : path, optional
        Model file; recorded relative to the repository root.
    **extra
        Further entries, stored as strings (non-strings as JSON).

    Returns
    -------
    dict of str to str
        Flat record, every value a string (netCDF/PNG/PDF metadata safe).
    """
    if model_hash is None and model_file is not None:
        model_hash = file_sha256(model_file)
    commit, dirty = git_state()
    rec = {
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "aicarousel_version": __version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "model_hash": model_hash or "unknown",
        "model_file": paths.relative_to_root(model_file) if model_file is not None else "",
        "params_changed": json.dumps({k: _jsonable(v) for k, v in (params_changed or {}).items()},
                                     sort_keys=True),
        "seed": "" if seed is None else str(int(seed)),
        "package_versions": json.dumps(package_versions(), sort_keys=True),
    }
    for k, v in extra.items():
        rec[k] = v if isinstance(v, str) else json.dumps(_jsonable(v))
    return rec
