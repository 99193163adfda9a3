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

import hashlib
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
    """Import PySD with its pandas-3 deprecation noise filtered (only that warning class), its
    parser restricted to evaluating literals (:func:`aicarousel.guard.harden_pysd_parser`)."""
    _filter_pandas_warnings()
    import pysd

    from .guard import harden_pysd_parser
    harden_pysd_parser()
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


#: Largest model file accepted (bytes); the carousel is ~0.1 MB, big Vensim models ~5 MB.
MAX_MODEL_BYTES = 32 * 2**20


def read_model_text(source: Path) -> str:
    """The model file's text, refusing what cannot be a model (one line naming the cause).

    Parameters
    ----------
    source : Path
        An existing regular file (see :func:`_resolve_model_file`).

    Returns
    -------
    str
        The text (UTF-8, byte-order mark removed).

    Raises
    ------
    ModelFileError
        Empty, larger than :data:`MAX_MODEL_BYTES`, binary, not UTF-8, or an XMILE file that
        is not well-formed XML or declares a DOCTYPE (entities can read local files).
    """
    try:
        size = source.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise ModelFileError(f"model file {source} is {size / 2**20:.0f} MB; model files above "
                                 f"{MAX_MODEL_BYTES // 2**20} MB are refused (is it really a model?)")
        data = source.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {source}: {exc.strerror or exc}") from None
    if not data.strip():
        raise ModelFileError(f"model file {source} is empty")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ModelFileError(f"model file {source} is UTF-16 text; re-save it as UTF-8")
    if b"\x00" in data:
        raise ModelFileError(f"model file {source} is a binary file, not a Vensim or XMILE text "
                             f"model")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ModelFileError(f"model file {source} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                             f"on line {line}); re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                             ) from None
    text = text.removeprefix("\ufeff")
    if source.suffix.lower() in _XMILE_SUFFIXES:
        _check_xml(source, text)
    return text


def _check_xml(source: Path, text: str) -> None:
    """Refuse DOCTYPE/ENTITY declarations and truncated XMILE files (PySD's parser would
    recover silently and fail later with an internal error such as ``KeyError: 'x'``)."""
    import xml.parsers.expat

    if re.search(r"<!(DOCTYPE|ENTITY)", text, flags=re.IGNORECASE):
        raise ModelFileError(f"XMILE file {source} declares a DOCTYPE/ENTITY; refused (entities "
                             f"can pull in local files; remove the declaration)")
    parser = xml.parsers.expat.ParserCreate()  # no namespace processing: prefixes are free
    seen: list[str] = []
    parser.StartElementHandler = lambda name, attrs: seen.append(name.rsplit(":", 1)[-1])
    try:
        parser.Parse(text.encode("utf-8"), True)
        error = None
    except xml.parsers.expat.ExpatError as exc:
        error = exc
    if not seen or seen[0] != "xmile":
        raise ModelFileError(f"{source}: the root element is "
                             f"{'<' + seen[0] + '>' if seen else 'missing'}, not <xmile>; not an "
                             f"XMILE model")
    if error is not None and not re.search(r"</(\w+:)?xmile>\s*$", text):
        raise ModelFileError(f"{source}:{error.lineno}: the XMILE file is cut short or not "
                             f"well-formed XML ({xml.parsers.expat.ErrorString(error.code)}, "
                             f"column {error.offset + 1}); truncated or edited?")
    for required in ("model", "sim_specs"):
        if required not in seen:
            raise ModelFileError(f"{source}: the XMILE file has no <{required}> element "
                                 f"(truncated or incomplete?)")


def _clean_map(raw: str) -> tuple[str, list[int]]:
    """PySD's whitespace cleaning of a Vensim text, with each kept character's raw offset."""
    def squash(text: str, pattern: str) -> tuple[str, list[int]]:
        out: list[str] = []
        idx: list[int] = []
        last = 0
        for m in re.finditer(pattern, text):
            out.append(text[last:m.start()])
            idx.extend(range(last, m.start()))
            out.append(" ")
            idx.append(m.start())
            last = m.end()
        out.append(text[last:])
        idx.extend(range(last, len(text)))
        return "".join(out), idx

    s1, m1 = squash(raw, r"\\\n\t")
    s2, m2 = squash(s1, r"[\n\t\s]+")
    return s2, [m1[i] for i in m2]


def _element_line(text: str, fragment: str, pos: int | None) -> int | None:
    """Line of the model element whose (cleaned) text is ``fragment``, at offset ``pos`` in it.

    PySD parses a whitespace-cleaned copy of the file and reports the failing element's text.
    The same text may occur earlier (in a comment or units field), so only occurrences in
    the equation part of an element (after its ``|``, before its first ``~``) count.
    """
    body = text.split("\\\\\\---///", 1)[0]
    clean, idx = _clean_map(body)
    frag = re.sub(r"[\n\t\s]+", " ", fragment).strip()
    if not frag:
        return None
    starts = [m.start() for m in re.finditer(re.escape(frag), clean)]
    if not starts:
        return None

    def in_equation(i: int) -> bool:  # between an element's start ('|') and its first '~'
        return "~" not in clean[clean.rfind("|", 0, i) + 1:i]

    best = next((i for i in starts if in_equation(i)), starts[0])
    off = best + max(0, min(pos or 0, len(frag) - 1))
    raw = idx[min(off, len(idx) - 1)]
    return body.count("\n", 0, raw) + 1


def _locate_parse_error(exc: Exception, source: Path, text: str) -> str:
    """Turn a parsimonious error on one model element into 'file:line: message'."""
    line = None
    elem_text = getattr(exc, "text", None)
    pos = getattr(exc, "pos", None)
    if isinstance(elem_text, str) and elem_text.strip():
        line = _element_line(text, elem_text, pos)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = re.sub(r"\s*\(line \d+, column \d+\)", "", first)  # in PySD's cleaned copy
    if elem_text and isinstance(elem_text, str):
        snippet = " ".join(elem_text.split())[:80]
        first += f" in {snippet!r}"
    where = f"{source}:{line}" if line else str(source)
    return f"{where}: cannot parse the model: {first} (fix the equation syntax)"


def _find_line(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` (a function or variable) in ``text``."""
    m = re.search(re.escape(needle), text, flags=re.IGNORECASE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _build_translation(model_copy: Path, source: Path, text: str) -> None:
    """Parse ``model_copy`` with PySD, neutralise its text fields and write the Python module
    beside it, without importing it (PySD's ``read_vensim`` would import it at once)."""
    from .guard import sanitise_abstract_model

    _pysd()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="No encoding specified", category=UserWarning)
        _filter_pandas_warnings()
        try:
            from pysd.builders.python.python_model_builder import ModelBuilder
            if model_copy.suffix.lower() in _VENSIM_SUFFIXES:
                from pysd.translators.vensim.vensim_file import VensimFile
                parsed = VensimFile(model_copy, encoding="UTF-8")
            else:
                from pysd.translators.xmile.xmile_file import XmileFile
                parsed = XmileFile(model_copy)
            parsed.parse()
            abs_model = parsed.get_abstract_model()
            sanitise_abstract_model(abs_model, source)
            ModelBuilder(abs_model).build_model()
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
        except RecursionError:
            raise ModelFileError(f"{source}: the model nests expressions too deeply to "
                                 f"translate") from None
        except Exception as exc:  # parsimonious ParseError, KeyError, ...
            if hasattr(exc, "pos") and hasattr(exc, "text"):
                raise ModelFileError(_locate_parse_error(exc, source, text)) from None
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise ModelFileError(f"{source}: PySD cannot translate the model "
                                 f"({type(exc).__name__}{': ' + detail if detail else ''}); "
                                 f"check the model file") from None


#: Files in a cache entry that are not part of the translation (checked separately).
_MANIFEST = "manifest.json"


def _entry_context(digest: str) -> str:
    from . import cache
    from .guard import __file__ as guard_file

    code = file_sha256(Path(guard_file))[:16]
    return cache.context_string(kind="translation", model_sha256=digest, guard=code)


def _entry_files(entry: Path) -> dict[str, str]:
    """Every file under ``entry`` (relative POSIX path -> SHA-256), except the manifest."""
    out = {}
    for p in sorted(entry.rglob("*")):
        rel = p.relative_to(entry).as_posix()
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            out[rel] = "not-a-regular-file"
        elif p.is_file() and rel not in (_MANIFEST, _MANIFEST + ".hmac"):
            out[rel] = file_sha256(p)
    return out


def _entry_valid(entry: Path, context: str) -> bool:
    """True when ``entry`` holds exactly the files its signed manifest lists, unchanged."""
    import json

    from . import cache

    if entry.is_symlink():
        cache.notice(f"ignored the cached translation {entry.name}: it is a symbolic link "
                     f"and fails verification; translating again")
        return False
    if not (entry / _MANIFEST).is_file():
        return False  # absent, half-written, or made by an older aicarousel: rebuild quietly
    pycache = entry / "__pycache__"
    if pycache.is_dir() and not pycache.is_symlink():  # bytecode is never trusted
        shutil.rmtree(pycache, ignore_errors=True)
    data = cache.read_verified(entry / _MANIFEST, context)
    if data is None:
        return False
    try:
        listed = json.loads(data)["files"]
    except (ValueError, KeyError, TypeError):
        return False
    if _entry_files(entry) != listed:
        cache.notice(f"ignored the cached translation {entry.name}: it fails verification "
                     f"(edited or planted); translating again")
        return False
    return True


def _translate(source: Path, key: str) -> Path:
    """Translate ``source`` into the cache entry ``key`` (verified, atomic); return model.py."""
    import json

    from . import cache
    from .guard import verify_translation

    text = read_model_text(source)  # the cache key is the hash of exactly this text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    context = _entry_context(digest)
    try:
        root = cache.cache_dir()
        entry = root / key
        if _entry_valid(entry, context):
            return entry / "model.py"
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=root))
    except OSError as exc:
        raise ModelFileError(f"cannot use the cache directory {paths.CACHE_DIR}: "
                             f"{exc.strerror or exc} (set AICAROUSEL_CACHE to a writable "
                             f"directory of yours)") from None
    suffix = source.suffix.lower()
    name = "model" + (".mdl" if suffix in _VENSIM_SUFFIXES else suffix)
    try:
        (tmp / name).write_text(text, encoding="utf-8")
        _build_translation(tmp / name, source, text)
        if not (tmp / "model.py").exists():
            raise ModelFileError(f"{source}: PySD produced no translation")
        for py in sorted(tmp.glob("*.py")):
            verify_translation(py, model_name=source)
        files = _entry_files(tmp)
        cache.write_signed(tmp / _MANIFEST, json.dumps({"files": files, "context": context},
                                                       indent=1, sort_keys=True).encode(), context)
        _install(tmp, entry, context)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return entry / "model.py"


def _install(tmp: Path, entry: Path, context: str) -> None:
    """Move the finished translation ``tmp`` to ``entry``, replacing an invalid old entry."""
    try:
        os.rename(tmp, entry)
        return
    except OSError:
        pass
    if _entry_valid(entry, context):  # another process won the race
        return
    stale = Path(tempfile.mkdtemp(prefix=f".stale-{entry.name}-", dir=entry.parent))
    try:
        os.rename(entry, stale / "old")
    except FileNotFoundError:
        pass
    try:
        os.rename(tmp, entry)
    except OSError:
        if not _entry_valid(entry, context):
            raise
    finally:
        shutil.rmtree(stale, ignore_errors=True)


def translated_path(model_file: str | os.PathLike | None = None) -> Path:
    """Translate the model if needed and return the verified cached PySD .py file.

    Parameters
    ----------
    model_file : path, optional
        Vensim (.mdl) or XMILE file; default ``paths.MODEL_FILE``.

    Returns
    -------
    pathlib.Path
        ``<cache>/<sha256[:16]>/model.py`` (the cache is ``paths.CACHE_DIR`` unless it cannot
        be used privately; see :mod:`aicarousel.cache`).
    """
    source = _resolve_model_file(model_file)
    return _translate(source, file_sha256(source)[:16])


def load(model_file: str | os.PathLike | None = None):
    """Load a fresh PySD model object (translating once into the cache).

    The translation is imported only after its cache entry verified (see
    :mod:`aicarousel.cache` and :mod:`aicarousel.guard`); no bytecode is read or written.

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
    import sys

    py_path = translated_path(model_file)
    pysd = _pysd()
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        with warnings.catch_warnings():
            _filter_pandas_warnings()
            return pysd.load(str(py_path))
    except Exception as exc:
        detail = " ".join(str(exc).split())[:200]
        hint = ("models reading external data files (GET XLS/GET DIRECT) are not supported"
                if isinstance(exc, (FileNotFoundError, OSError)) else "check the model file")
        raise ModelFileError(f"{model_file or paths.MODEL_FILE}: PySD cannot load the model "
                             f"({type(exc).__name__}: {detail}); {hint}") from None
    finally:
        sys.dont_write_bytecode = old


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


def exact_times(times, initial_time: float, time_step: float) -> np.ndarray:
    """Saved times put back on the exact grid ``INITIAL TIME + k * TIME STEP``.

    PySD rounds the times it saves to a few decimals below TIME STEP
    (``components.Time.round``): 7 decimals at 1/512 year, so 2024.001953125 is saved as
    2024.0019531 and the spacing of a run saved at every step varies by 1e-7 year. Where a
    time lies within 1e-4 TIME STEP of a grid point (far below PySD's rounding, far above
    float noise) it is replaced by that point; any other time is kept as saved.
    """
    t = np.asarray(times, dtype=float)
    if not time_step > 0:
        return t
    k = np.rint((t - initial_time) / time_step)
    grid = initial_time + k * time_step
    return np.where(np.abs(grid - t) <= 1e-4 * time_step, grid, t)


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

    if output is not None:  # refuse a FIFO, a directory, an unwritable place before running
        from .atomic import check_output
        check_output(output, "output")
    model = load(model_file)
    doc = _doc_table(model)
    control = {"initial_time": initial_time, "final_time": final_time, "time_step": time_step,
               "saveper": saveper}
    clean, control = validate_params(params or {}, model, doc, control, model_file)
    if return_columns is not None:
        from .params import resolve_name
        spell = dict(zip(doc["Py Name"], doc.index)) | {n: n for n in doc.index}
        return_columns = [resolve_name(n, spell, what="variable") for n in return_columns]
    kwargs = {k: v for k, v in control.items() if v is not None and k != "initial_time"}
    if control.get("initial_time") is not None:
        kwargs["initial_condition"] = (control["initial_time"], {})
    _filter_pandas_warnings()
    try:
        with warnings.catch_warnings():
            _filter_pandas_warnings()
            # overflow, invalid operations and complex results (numpy's ComplexWarning is a
            # RuntimeWarning) stop the run where they happen: the error names variable and time
            warnings.filterwarnings("error", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message="Replacing a constant value with a time-dependent",
                                    category=UserWarning)  # a time-series override, validated above
            df = model.run(params=clean, return_columns=return_columns, **kwargs)
    except Exception as exc:
        raise SimulationError(_describe_failure(exc, model, doc)) from None
    if check_finite:
        _check_finite(df)
    df.index = exact_times(df.index, float(model.components.initial_time()),
                           float(model.components.time_step()))
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
