"""Parameters: validation of overrides and the parameter table ``data/parameters.csv``.

The table holds one row per model constant (Vensim name, value, unit, plausible low/high,
source, date, range basis). The model file is the source of truth for values: while the model
is being calibrated, refresh the ``value`` column with::

    python -m aicarousel.params --sync-values

``tests/test_params.py`` fails whenever the table and the model disagree.
"""

from __future__ import annotations

import argparse
import difflib
import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from . import paths
from .errors import AicarouselError, ParameterValueError, UnknownParameterError

#: Columns of data/parameters.csv, in order.
TABLE_COLUMNS = ["name", "value", "unit", "low", "high", "role", "source", "date", "range_basis"]

#: What a parameter is for, in the ``role`` column:
#: ``uncertain``: a quantity we do not know exactly; sensitivity and Monte Carlo vary it over
#: [low, high]. ``lever``: a policy or scenario switch (funding on/off, a cap, a shock); its
#: range is what scenarios may set, not an uncertainty, so it is held at its value unless a
#: study names it. ``fixed``: a historical date, a structural switch or a numerical guard.
ROLES = ("uncertain", "lever", "fixed")

#: Run-control names: not parameters of the table, set via run arguments.
CONTROL_NAMES = {"INITIAL TIME": "initial_time", "FINAL TIME": "final_time",
                 "TIME STEP": "time_step", "SAVEPER": "saveper"}

#: Constants in Year at or above this default are dates, not durations.
_DATE_THRESHOLD = 1000.0
_COVER_TOL = 1e-9


def _suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
    lower = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lower), n=n, cutoff=0.5)
    out = [lower[h] for h in hits]
    if not out:  # substring fallback
        out = [c for c in candidates if name.lower() in c.lower()][:n]
    return out


def resolve_name(name: Any, doc: pd.DataFrame, kinds: tuple[str, ...] | None = None) -> str:
    """Map a Vensim name (or PySD py_name) to the model's Vensim name.

    Parameters
    ----------
    name : str
        Name as given by the user.
    doc : pandas.DataFrame
        ``model.doc`` indexed by Real Name.
    kinds : tuple of str, optional
        PySD ``Type`` values used for suggestions (default: all).

    Returns
    -------
    str
        The Vensim name.

    Raises
    ------
    UnknownParameterError
        Unknown name; the message suggests the closest model names.
    """
    if not isinstance(name, str):
        raise UnknownParameterError(f"parameter names must be strings, got {type(name).__name__} {name!r}")
    if name in doc.index:
        return name
    by_py = dict(zip(doc["Py Name"], doc.index))
    if name in by_py:
        return by_py[name]
    folded = {n.lower().replace("_", " ").strip(): n for n in doc.index}
    key = " ".join(name.lower().replace("_", " ").split())
    if key in folded:
        return folded[key]
    pool = list(doc.index if kinds is None else doc.index[doc["Type"].isin(kinds)])
    sugg = _suggest(name, pool)
    hint = f"; did you mean {', '.join(repr(s) for s in sugg)}?" if sugg else \
        "; run `aicarousel params` for the list"
    raise UnknownParameterError(f"unknown parameter {name!r}: not a name in the model{hint}")


def resolve_names(names: list[str], doc: pd.DataFrame) -> list[str]:
    """Resolve several names with :func:`resolve_name` (any variable kind)."""
    return [resolve_name(n, doc) for n in names]


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _limits(doc_row) -> tuple[float, float]:
    lim = doc_row["Limits"]
    try:
        lo, hi = (float(lim[0]) if lim[0] is not None else math.nan,
                  float(lim[1]) if lim[1] is not None else math.nan)
    except (TypeError, IndexError, ValueError):
        lo, hi = math.nan, math.nan
    return lo, hi


def is_duration(unit: str, default: float) -> bool:
    """True for a constant measured in years that is a span of time, not a date."""
    return str(unit).strip().lower() in {"year", "years"} and abs(default) < _DATE_THRESHOLD


def _check_value(name: str, values: np.ndarray, unit: str, lo: float, hi: float,
                 default: float | None) -> None:
    if not np.all(np.isfinite(values)):
        raise ParameterValueError(f"value of {name!r} must be a finite number, got "
                                  f"{values[~np.isfinite(values)][0]} (give a finite value)")
    vmin, vmax = float(values.min()), float(values.max())
    if not math.isnan(lo) and vmin < lo:
        raise ParameterValueError(f"value {vmin:g} of {name!r} is below its minimum {lo:g} "
                                  f"(range [{lo:g}, {'?' if math.isnan(hi) else f'{hi:g}'}] "
                                  f"in the model's units field, unit {unit})")
    if not math.isnan(hi) and vmax > hi:
        raise ParameterValueError(f"value {vmax:g} of {name!r} is above its maximum {hi:g} "
                                  f"(range [{'?' if math.isnan(lo) else f'{lo:g}'}, {hi:g}] "
                                  f"in the model's units field, unit {unit})")
    if default is not None and is_duration(unit, default) and vmin < 0:
        raise ParameterValueError(f"{name!r} is a duration in {unit} and cannot be negative "
                                  f"(got {vmin:g}); give a value >= 0")


def constant_default(model, py_name: str) -> float | None:
    """Current value of a constant on a freshly loaded model (None if not a number)."""
    try:
        v = getattr(model.components, py_name)()
        return float(v)
    except Exception:
        return None


def validate_params(params: Mapping[str, Any], model, doc: pd.DataFrame,
                    control: dict[str, float | None]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """Check overrides and convert them to what PySD expects.

    Parameters
    ----------
    params : mapping
        Vensim (or py) name -> number or pandas Series indexed by time in years.
    model : pysd Model
        Freshly loaded model (for default values and run control).
    doc : pandas.DataFrame
        ``model.doc`` indexed by Real Name.
    control : dict
        ``initial_time``, ``final_time``, ``time_step``, ``saveper`` (None = model default).

    Returns
    -------
    (dict, dict)
        Overrides keyed by py_name, and the completed run control.

    Raises
    ------
    UnknownParameterError
        Unknown name (with suggestions) or a name that is not a constant.
    ParameterValueError
        Wrong kind (string, bool, NaN, inf), outside the range in the units field, negative
        duration, bad run control, or a time series that does not cover the run.
    """
    if not isinstance(params, Mapping):
        raise ParameterValueError(f"params must be a mapping of name -> value, got {type(params).__name__}")
    control = dict(control)
    rest = {}
    for name, value in params.items():
        if isinstance(name, str) and name.strip().upper() in CONTROL_NAMES:
            key = CONTROL_NAMES[name.strip().upper()]
            if control.get(key) is not None:
                raise ParameterValueError(f"{name!r} given twice (in params and as {key}=); give it once")
            control[key] = value
        else:
            rest[name] = value
    comps = model.components
    defaults = {"initial_time": float(comps.initial_time()), "final_time": float(comps.final_time()),
                "time_step": float(comps.time_step()), "saveper": float(comps.saveper())}
    for key, v in control.items():
        if v is None:
            continue
        if not _is_number(v) or not math.isfinite(float(v)):
            raise ParameterValueError(f"run control {key} must be a finite number of years, got {v!r}")
        control[key] = float(v)
    full = {k: (control[k] if control.get(k) is not None else defaults[k]) for k in defaults}
    if full["time_step"] <= 0:
        raise ParameterValueError(f"time_step must be > 0 years, got {full['time_step']:g}")
    if full["saveper"] <= 0:
        raise ParameterValueError(f"saveper must be > 0 years, got {full['saveper']:g}")
    if full["saveper"] < full["time_step"] - 1e-12:
        raise ParameterValueError(f"saveper ({full['saveper']:g}) must be >= time_step "
                                  f"({full['time_step']:g})")
    if full["final_time"] <= full["initial_time"]:
        raise ParameterValueError(f"final_time ({full['final_time']:g}) must be after the initial "
                                  f"time ({full['initial_time']:g})")
    t0, t1 = full["initial_time"], full["final_time"]

    clean: dict[str, Any] = {}
    for name, value in rest.items():
        real = resolve_name(name, doc, kinds=("Constant",))
        row = doc.loc[real]
        kind = row["Type"]
        if kind != "Constant":
            if kind == "Stateful":
                raise UnknownParameterError(
                    f"{real!r} is a stock, not a parameter: set its initial-value constant instead "
                    f"(see `aicarousel params`)")
            raise UnknownParameterError(f"{real!r} is computed by an equation ({kind.lower()}), not a "
                                        f"constant; only constants can be set (see `aicarousel params`)")
        py = row["Py Name"]
        unit = str(row["Units"] or "")
        lo, hi = _limits(row)
        default = constant_default(model, py)
        if isinstance(value, pd.Series):
            try:
                idx = np.asarray(value.index, dtype=float)
                vals = np.asarray(value.to_numpy(), dtype=float)
            except (TypeError, ValueError):
                raise ParameterValueError(f"time series for {real!r} must have a numeric time index "
                                          f"(years) and numeric values") from None
            if len(idx) == 0:
                raise ParameterValueError(f"time series for {real!r} is empty")
            if not np.all(np.isfinite(idx)):
                raise ParameterValueError(f"time series for {real!r} has a non-finite time in its index")
            if np.any(np.diff(idx) <= 0):
                raise ParameterValueError(f"time series for {real!r} must have strictly increasing times")
            if idx[0] > t0 + _COVER_TOL or idx[-1] < t1 - _COVER_TOL:
                raise ParameterValueError(
                    f"time series for {real!r} covers {idx[0]:g}-{idx[-1]:g} but the run goes "
                    f"{t0:g}-{t1:g}; extend it to cover the whole run")
            _check_value(real, vals, unit, lo, hi, default)
            clean[py] = pd.Series(vals, index=idx)
        elif _is_number(value):
            _check_value(real, np.array([float(value)]), unit, lo, hi, default)
            clean[py] = float(value)
        else:
            raise ParameterValueError(
                f"value of {real!r} must be a number or a pandas Series over time, got "
                f"{type(value).__name__} {value!r}")
    return clean, control


def parse_assignment(text: str) -> tuple[str, float]:
    """Parse a CLI ``"Name=value"`` override.

    Parameters
    ----------
    text : str
        E.g. ``"AI demand multiplier=0.8"``.

    Returns
    -------
    (str, float)
        Name (stripped) and value.

    Raises
    ------
    ParameterValueError
        No ``=``, empty name, or a value that is not a finite number.
    """
    if "=" not in text:
        raise ParameterValueError(f"--set {text!r}: expected \"Name=value\", e.g. "
                                  f"--set \"AI demand multiplier=0.8\"")
    name, _, raw = text.partition("=")
    name = name.strip()
    if not name:
        raise ParameterValueError(f"--set {text!r}: the name before '=' is empty")
    try:
        value = float(raw.strip())
    except ValueError:
        raise ParameterValueError(f"--set {text!r}: value {raw.strip()!r} of {name!r} is not a "
                                  f"number") from None
    if not math.isfinite(value):
        raise ParameterValueError(f"--set {text!r}: value of {name!r} must be finite")
    return name, value


def model_constants(model_file: str | os.PathLike | None = None) -> pd.DataFrame:
    """Constants of the model with their current values, units, ranges and comments.

    Parameters
    ----------
    model_file : path, optional
        Default ``paths.MODEL_FILE``.

    Returns
    -------
    pandas.DataFrame
        Index Vensim name; columns ``value``, ``unit``, ``min``, ``max`` (from the units
        field, NaN when open), ``py_name``, ``comment``. Run-control names are excluded.
    """
    from .model import load
    m = load(model_file)
    doc = m.doc
    doc = doc[(doc["Type"] == "Constant") & (~doc["Real Name"].isin(list(CONTROL_NAMES)))]
    rows = []
    for _, r in doc.iterrows():
        lo, hi = _limits(r)
        rows.append({"name": r["Real Name"], "value": constant_default(m, r["Py Name"]),
                     "unit": str(r["Units"] or ""), "min": lo, "max": hi,
                     "py_name": r["Py Name"], "comment": str(r["Comment"] or "")})
    return pd.DataFrame(rows).set_index("name").sort_index()


def read_table(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the parameter table.

    Parameters
    ----------
    path : path, optional
        Default ``paths.PARAMETERS_CSV``.

    Returns
    -------
    pandas.DataFrame
        Indexed by Vensim name, columns :data:`TABLE_COLUMNS` minus ``name``.
    """
    p = Path(path) if path is not None else paths.PARAMETERS_CSV
    if not p.exists():
        raise AicarouselError(f"parameter table not found: {p}")
    df = pd.read_csv(p, dtype={"source": str, "date": str, "range_basis": str, "unit": str,
                               "role": str},
                     keep_default_na=False, na_values={"value": [""], "low": [""], "high": [""]})
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise AicarouselError(f"{p}: missing column(s) {missing}; expected {TABLE_COLUMNS}")
    return df.set_index("name")


def write_table(df: pd.DataFrame, path: str | os.PathLike | None = None) -> Path:
    """Write the parameter table atomically (rows sorted by name)."""
    p = Path(path) if path is not None else paths.PARAMETERS_CSV
    out = df.reset_index()[TABLE_COLUMNS].sort_values("name", key=lambda s: s.str.lower())
    from .atomic import write_with
    return write_with(p, lambda tmp: out.to_csv(tmp, index=False, float_format="%.10g",
                                                lineterminator="\n"))


def sync_values(path: str | os.PathLike | None = None, model_file=None) -> list[str]:
    """Copy current model values into the table's ``value`` (and ``unit``) column.

    New model constants get a row with empty range/source (to be filled in by hand; the test
    fails until then); rows for constants no longer in the model are dropped.

    Returns
    -------
    list of str
        One line per change made.
    """
    table = read_table(path)
    consts = model_constants(model_file)
    changes = []
    for name in table.index.difference(consts.index):
        changes.append(f"removed {name!r} (no longer a model constant)")
    table = table.loc[table.index.intersection(consts.index)]
    for name, row in consts.iterrows():
        if name not in table.index:
            table.loc[name, :] = {"value": row["value"], "unit": row["unit"], "low": np.nan,
                                  "high": np.nan, "role": "uncertain", "source": "TODO",
                                  "date": "", "range_basis": "TODO"}
            changes.append(f"added {name!r} = {row['value']:g} (fill in low, high, source)")
            continue
        old = table.at[name, "value"]
        if not (isinstance(old, float) and math.isclose(old, row["value"], rel_tol=1e-12, abs_tol=0)):
            changes.append(f"{name!r}: value {old} -> {row['value']:g}")
            table.at[name, "value"] = row["value"]
        if table.at[name, "unit"] != row["unit"]:
            changes.append(f"{name!r}: unit {table.at[name, 'unit']!r} -> {row['unit']!r}")
            table.at[name, "unit"] = row["unit"]
    write_table(table, path)
    return changes


def main(argv: list[str] | None = None) -> int:
    """``python -m aicarousel.params [--sync-values]``: check or sync the parameter table."""
    ap = argparse.ArgumentParser(prog="python -m aicarousel.params",
                                 description="Check data/parameters.csv against the model, or "
                                             "copy the model's current values into it.")
    ap.add_argument("--sync-values", action="store_true",
                    help="update the value/unit columns from the model file")
    args = ap.parse_args(argv)
    try:
        if args.sync_values:
            changes = sync_values()
            print("\n".join(changes) if changes else "parameters.csv already matches the model")
            return 0
        problems = check_table()
    except AicarouselError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(problems) if problems else "parameters.csv matches the model")
    return 1 if problems else 0


def check_table(path=None, model_file=None) -> list[str]:
    """List disagreements between the table and the model (empty list = consistent).

    Checks: same set of names, same values (relative 1e-9), same units, low <= value <= high,
    low/high inside the model's [min, max], non-empty source and range basis.
    """
    table = read_table(path)
    consts = model_constants(model_file)
    out = []
    for n in sorted(consts.index.difference(table.index)):
        out.append(f"{n!r} is a model constant missing from the table (run --sync-values)")
    for n in sorted(table.index.difference(consts.index)):
        out.append(f"{n!r} is in the table but not a model constant")
    for n in sorted(consts.index.intersection(table.index)):
        r, c = table.loc[n], consts.loc[n]
        v = float(r["value"])
        if not math.isclose(v, c["value"], rel_tol=1e-9, abs_tol=1e-12):
            out.append(f"{n!r}: table value {v:g} != model value {c['value']:g} (run --sync-values)")
        if str(r["unit"]) != c["unit"]:
            out.append(f"{n!r}: table unit {r['unit']!r} != model unit {c['unit']!r}")
        lo, hi = float(r["low"]), float(r["high"])
        if math.isnan(lo) or math.isnan(hi):
            out.append(f"{n!r}: low/high missing")
        else:
            if not lo <= c["value"] <= hi:
                out.append(f"{n!r}: value {c['value']:g} outside [low, high] = [{lo:g}, {hi:g}]")
            if not math.isnan(c["min"]) and lo < c["min"]:
                out.append(f"{n!r}: low {lo:g} below the model minimum {c['min']:g}")
            if not math.isnan(c["max"]) and hi > c["max"]:
                out.append(f"{n!r}: high {hi:g} above the model maximum {c['max']:g}")
        for col in ("source", "range_basis"):
            if not str(r[col]).strip() or str(r[col]).strip() == "TODO":
                out.append(f"{n!r}: {col} missing")
    return out


if __name__ == "__main__":
    sys.exit(main())
