"""Load the carousel model through PySD and run it into an :class:`xarray.Dataset`.

The model file is translated once into a cache directory keyed by the file's SHA-256
(``CACHE_DIR/<sha256[:16]>/``), never beside the model in ``models/``; a changed file gets a new
key and is re-translated. Translation warnings are treated as errors (PySD translates some
unsupported functions with only a warning and then fails at run time).

Examples
--------
>>> from aicarousel.model import run
>>> ds = run(params={"AI demand multiplier": 0.8})            # doctest: +SKIP
>>> ds["Cloud Debt"].sel(time=2030.0).item()                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from . import paths
from .errors import ModelFileError, SimulationError
from .provenance import file_sha256, provenance

#: Control variables a user may set through ``params`` (mapped to run arguments).
CONTROL_NAMES = {"INITIAL TIME": "initial_time", "FINAL TIME": "final_time",
                 "TIME STEP": "time_step", "SAVEPER": "saveper"}

_VENSIM_SUFFIXES = {".mdl"}
_XMILE_SUFFIXES = {".xmile", ".xml", ".stmx"}


def _pysd():
    """Import PySD with its pandas-3 deprecation noise filtered (only that warning class)."""
    _filter_pandas_warnings()
    import pysd
    return pysd


def _filter_pandas_warnings() -> None:
    from pandas.errors import Pandas4Warning

    warnings.filterwarnings("ignore", category=Pandas4Warning)


def _resolve_model_file(model_file: str | os.PathLike | None) -> Path:
    path = Path(model_file) if model_file is not None else paths.MODEL_FILE
    if not path.exists():
        raise ModelFileError(f"model file not found: {path} (check the path; the default model is "
                             f"models/{paths.MODEL_FILE.name})")
    if not path.is_file():
        raise ModelFileError(f"model file is not a regular file: {path}")
    suffix = path.suffix.lower()
    if suffix not in _VENSIM_SUFFIXES | _XMILE_SUFFIXES:
        raise ModelFileError(f"model file {path} has suffix {suffix!r}; expected a Vensim .mdl or "
                             f"an XMILE .xmile/.xml/.stmx file")
    return path


def model_hash(model_file: str | os.PathLike | None = None) -> str:
    """SHA-256 of the model file.

    Parameters
    ----------
    model_file : path, optional
        Model file; default ``paths.MODEL_FILE``.

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    return file_sha256(_resolve_model_file(model_file))


def _locate_parse_error(exc: Exception, source: Path, text: str) -> str:
    """Turn a parsimonious error on one model element into 'file:line: message'."""
    line = None
    elem_text = getattr(exc, "text", None)
    pos = getattr(exc, "pos", None)
    if isinstance(elem_text, str) and elem_text.strip():
        idx = text.find(elem_text)
        if idx < 0:
            # PySD strips whitespace and continuation backslashes; match on the first tokens
            head = elem_text.strip()[:40]
            idx = text.find(head)
            pos = None if idx < 0 else pos
        if idx >= 0:
            line = text.count("\n", 0, idx + (pos or 0)) + 1
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if elem_text and isinstance(elem_text, str):
        snippet = elem_text.strip().splitlines()[0][:80]
        first += f" in {snippet!r}"
    where = f"{source}:{line}" if line else str(source)
    return f"{where}: cannot parse the model: {first} (fix the equation syntax)"


def _find_line(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` (a function or variable) in ``text``."""
    m = re.search(re.escape(needle), text, flags=re.IGNORECASE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _translate(source: Path, target_dir: Path) -> Path:
    """Translate ``source`` into ``target_dir`` atomically; return the translated .py path."""
    suffix = source.suffix.lower()
    name = "model" + (".mdl" if suffix in _VENSIM_SUFFIXES else suffix)
    py_path = target_dir / "model.py"
    if py_path.exists():
        return py_path
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target_dir.name}-", dir=target_dir.parent))
    try:
        shutil.copy2(source, tmp / name)
        text = source.read_text(encoding="utf-8", errors="replace")
        pysd = _pysd()
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            warnings.filterwarnings("ignore", message="No encoding specified", category=UserWarning)
            _filter_pandas_warnings()
            try:
                if suffix in _VENSIM_SUFFIXES:
                    pysd.read_vensim(str(tmp / name))
                else:
                    pysd.read_xmile(str(tmp / name))
            except UserWarning as w:
                msg = str(w).strip().splitlines()[0]
                line = None
                for word in re.findall(r"'([^']+)'", msg):
                    line = _find_line(text, word)
                    if line:
                        break
                where = f"{source}:{line}" if line else str(source)
                raise ModelFileError(f"{where}: PySD cannot translate the model faithfully: {msg} "
                                     f"(remove or replace the unsupported construct)") from None
            except ModelFileError:
                raise
            except Exception as exc:  # parsimonious ParseError, KeyError, ...
                if hasattr(exc, "pos") and hasattr(exc, "text"):
                    raise ModelFileError(_locate_parse_error(exc, source, text)) from None
                raise ModelFileError(f"{source}: cannot translate the model: "
                                     f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                                     f" (check the model file)") from None
        if not (tmp / "model.py").exists():
            raise ModelFileError(f"{source}: PySD produced no translation")
        try:
            os.rename(tmp, target_dir)
        except OSError:
            if not py_path.exists():  # not a lost race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return py_path


def translated_path(model_file: str | os.PathLike | None = None) -> Path:
    """Translate the model if needed and return the cached PySD .py file.

    Parameters
    ----------
    model_file : path, optional
        Vensim (.mdl) or XMILE file; default ``paths.MODEL_FILE``.

    Returns
    -------
    pathlib.Path
        ``CACHE_DIR/<sha256[:16]>/model.py``.
    """
    source = _resolve_model_file(model_file)
    key = file_sha256(source)[:16]
    return _translate(source, paths.CACHE_DIR / key)


def load(model_file: str | os.PathLike | None = None):
    """Load a fresh PySD model object (translating once into the cache).

    Parameters
    ----------
    model_file : path, optional
        Vensim (.mdl) or XMILE file; default ``paths.MODEL_FILE``.

    Returns
    -------
    pysd.py_backend.model.Model
        A new model object each call (PySD parameter overrides persist on an object).

    Raises
    ------
    ModelFileError
        Missing, malformed or untranslatable model file (message names file and line).
    """
    py_path = translated_path(model_file)
    pysd = _pysd()
    try:
        return pysd.load(str(py_path))
    except Exception as exc:
        raise ModelFileError(f"{model_file or paths.MODEL_FILE}: cannot load the translated model "
                             f"{py_path.name}: {type(exc).__name__}: {exc} (delete the cache "
                             f"directory {py_path.parent} and retry)") from None


def _doc_table(model) -> pd.DataFrame:
    doc = model.doc
    return doc.set_index("Real Name", drop=False)


def _check_finite(df: pd.DataFrame) -> None:
    values = df.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    row = int(np.argmax(bad.any(axis=1)))
    cols = [df.columns[j] for j in np.flatnonzero(bad[row])]
    t = df.index[row]
    more = f" (and {len(cols) - 1} more: {', '.join(map(repr, cols[1:4]))}{', ...' if len(cols) > 4 else ''})" \
        if len(cols) > 1 else ""
    raise SimulationError(f"the run produced {values[row, df.columns.get_loc(cols[0])]} in "
                          f"{cols[0]!r} at time {t:g}{more}; check the parameters that feed it "
                          f"(a zero duration or divisor?)")


def to_dataset(df: pd.DataFrame, doc: pd.DataFrame, attrs: Mapping[str, str] | None = None) -> xr.Dataset:
    """Build the result Dataset from PySD's output frame and ``model.doc``.

    Parameters
    ----------
    df : pandas.DataFrame
        PySD output, index time in years, columns Vensim names.
    doc : pandas.DataFrame
        ``model.doc`` indexed by Real Name.
    attrs : mapping, optional
        Dataset attributes (provenance).

    Returns
    -------
    xarray.Dataset
        Dimension ``time`` (decimal years); one variable per column with attrs ``units``
        (UDUNITS), ``units_vensim`` (as in the model), ``currency`` (money only),
        ``description``, ``py_name``, ``kind`` and ``limits``; global attribute
        ``Conventions`` (CF; see :mod:`aicarousel.cf`).
    """
    from . import cf

    time = np.asarray(df.index, dtype=float)
    data = {}
    for col in df.columns:
        a: dict[str, str] = {}
        if col in doc.index:
            row = doc.loc[col]
            a = {**cf.variable_attrs(str(row["Units"] or "")),
                 "description": str(row["Comment"] or ""), "py_name": str(row["Py Name"]),
                 "kind": str(row["Type"]).lower() + ("" if row["Subtype"] == "Normal"
                                                     else f"/{str(row['Subtype']).lower()}"),
                 "limits": str(row["Limits"])}
        data[col] = xr.Variable(("time",), df[col].to_numpy(dtype=float), attrs=a)
    ds = xr.Dataset(data, coords={"time": xr.Variable(("time",), time, attrs=dict(cf.TIME_ATTRS))})
    ds.attrs.update({"Conventions": cf.CONVENTIONS, **dict(attrs or {})})
    return ds


def write_netcdf(ds: xr.Dataset, output: str | os.PathLike) -> Path:
    """Write ``ds`` to netCDF atomically; see :func:`aicarousel.atomic.write_netcdf`."""
    from .atomic import write_netcdf as _write

    return _write(ds, output)


def run(params: Mapping[str, Any] | None = None, model_file: str | os.PathLike | None = None,
        return_columns: Iterable[str] | None = None, final_time: float | None = None,
        time_step: float | None = None, saveper: float | None = None,
        output: str | os.PathLike | None = None, initial_time: float | None = None,
        check_finite: bool = True) -> xr.Dataset:
    """Run the model with overrides and return an :class:`xarray.Dataset`.

    Parameters
    ----------
    params : mapping, optional
        Overrides by Vensim name (py_names are accepted too): a number for a constant, or a
        :class:`pandas.Series` indexed by time in years for a time-varying input (linearly
        interpolated; must cover the run). Control names ("FINAL TIME", "TIME STEP",
        "SAVEPER", "INITIAL TIME") map to the keyword arguments.
    model_file : path, optional
        Model file; default ``paths.MODEL_FILE``.
    return_columns : iterable of str, optional
        Vensim names to return; default all variables.
    final_time, time_step, saveper, initial_time : float, optional
        Run control in years; defaults from the model.
    output : path, optional
        If given, also write the Dataset to this netCDF file atomically.
    check_finite : bool
        Raise :class:`SimulationError` when any returned value is NaN or infinite.

    Returns
    -------
    xarray.Dataset
        Dimension ``time`` (years), one variable per model variable named by its Vensim
        name, with ``units``/``description``/``py_name`` attrs; provenance in ``ds.attrs``.

    Raises
    ------
    UnknownParameterError, ParameterValueError, ModelFileError, SimulationError, OutputError
    """
    from .params import validate_params  # late import: params imports this module

    model = load(model_file)
    doc = _doc_table(model)
    control = {"initial_time": initial_time, "final_time": final_time, "time_step": time_step,
               "saveper": saveper}
    clean, control = validate_params(params or {}, model, doc, control)
    if return_columns is not None:
        from .params import resolve_names
        return_columns = resolve_names(list(return_columns), doc)
    kwargs = {k: v for k, v in control.items() if v is not None and k != "initial_time"}
    if control.get("initial_time") is not None:
        kwargs["initial_condition"] = (control["initial_time"], {})
    _filter_pandas_warnings()
    try:
        with warnings.catch_warnings():
            _filter_pandas_warnings()
            warnings.filterwarnings("ignore", category=RuntimeWarning)  # NaN reported below
            warnings.filterwarnings("ignore", message="Replacing a constant value with a time-dependent",
                                    category=UserWarning)  # a time-series override, validated above
            df = model.run(params=clean, return_columns=return_columns, **kwargs)
    except Exception as exc:
        raise SimulationError(_describe_failure(exc, model, doc)) from None
    if check_finite:
        _check_finite(df)
    source = _resolve_model_file(model_file)
    prov = provenance(model_hash=file_sha256(source), params_changed=params or {},
                      model_file=source,
                      run_control=_control_json(model))
    ds = to_dataset(df, doc, prov)
    if output is not None:
        write_netcdf(ds, output)
    return ds


def _describe_failure(exc: Exception, model, doc: pd.DataFrame) -> str:
    """Message for an exception raised inside the translated model: variable, time, cause."""
    import traceback
    var = None
    by_py = dict(zip(doc["Py Name"], doc.index))
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).name == "model.py" and frame.name in by_py:
            var = by_py[frame.name]
            break
    try:
        t = f" at time {float(model.time()):g}"
    except Exception:
        t = ""
    what = f" while computing {var!r}" if var else ""
    hint = " (a zero duration, price or divisor among its inputs?)" if isinstance(exc, ZeroDivisionError) \
        else " (check the parameters that feed it)"
    return f"the run failed{what}{t}: {type(exc).__name__}: {exc}{hint}"


def _control_json(model) -> dict[str, float]:
    return {"initial_time": float(model.components.initial_time()),
            "final_time": float(model.components.final_time()),
            "time_step": float(model.components.time_step()),
            "saveper": float(model.components.saveper())}
