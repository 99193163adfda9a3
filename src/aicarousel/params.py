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
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from . import paths
from .errors import AicarouselError, ParameterValueError, UnknownParameterError

#: Columns of data/parameters.csv, in order.
TABLE_COLUMNS = ["name", "value", "unit", "low", "high", "role", "source", "date", "range_basis"]
#: Optional columns at the end: the posterior of a calibration (``aicarousel calibrate
#: --record-table``), empty for parameters it did not estimate.
POSTERIOR_COLUMNS = ["posterior_p5", "posterior_median", "posterior_p95", "posterior_run"]

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


# --------------------------------------------------------------------------- names
#: Similarity (difflib ratio, 0-1) above which a known name is offered as "did you mean".
#: One value for every name in the project (parameters, outputs, flows, scenarios, keys).
SUGGEST_CUTOFF = 0.5


def fold(name: Any) -> str:
    """Spelling-insensitive key of a name: lower case, ``_`` as space, single spaces."""
    return " ".join(str(name).lower().replace("_", " ").split())


def suggest(name: Any, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` candidates closest to ``name`` (folded spelling; substring fallback)."""
    cands = list(dict.fromkeys(str(c) for c in candidates))
    by_fold: dict[str, str] = {}
    for c in cands:
        by_fold.setdefault(fold(c), c)
    key = fold(name)
    hits = difflib.get_close_matches(key, list(by_fold), n=n, cutoff=SUGGEST_CUTOFF)
    out = [by_fold[h] for h in hits]
    if not out and key:
        out = [c for f, c in by_fold.items() if key in f or (len(f) > 2 and f in key)][:n]
    return out


def did_you_mean(name: Any, candidates: Iterable[str], n: int = 3) -> str:
    """``"; did you mean 'A', 'B'?"`` for the closest candidates, or ``""``."""
    close = suggest(name, candidates, n)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def resolve_name(name: Any, names: Mapping[str, str] | Iterable[str], *, what: str = "parameter",
                 where: str = "", hint: str = "",
                 error: type[Exception] = UnknownParameterError) -> str:
    """The one name resolver: map a user's spelling to the canonical name.

    Parameters
    ----------
    name : str
        As given (exact, any case, ``_`` for spaces, or a PySD py_name when ``names`` maps it).
    names : mapping or iterable of str
        Canonical names, or ``spelling -> canonical`` (e.g. Vensim and py names).
    what : str
        Kind of name in the message ("parameter", "output", "flow", "scenario", "key").
    where : str
        Prefix of the message (file and key, "--set", ...).
    hint : str
        Text appended when nothing is close (e.g. where to find the list).
    error : exception class
        Raised on an unknown name (default :class:`UnknownParameterError`).

    Returns
    -------
    str
        The canonical name.
    """
    table = dict(names) if isinstance(names, Mapping) else {n: n for n in names}
    if not isinstance(name, str):
        raise error(f"{where}{what} names must be text, got {type(name).__name__} "
                    f"{short(repr(name))}")
    if name in table:
        return table[name]
    folded: dict[str, str] = {}
    for spelling, canon in table.items():
        folded.setdefault(fold(spelling), canon)
    if fold(name) in folded:
        return folded[fold(name)]
    canon = list(dict.fromkeys(table.values()))
    tail = did_you_mean(name, canon) or (f"; {hint}" if hint else "")
    raise error(f"{where}unknown {what} {short(repr(name))}{tail}")


def short(text: Any, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters (messages stay one readable line)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit - 15] + f"... [{len(s)} chars]"


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


def constant_default(model, py_name: str) -> float | None:
    """Current value of a constant on a freshly loaded model (None if not a number)."""
    try:
        v = getattr(model.components, py_name)()
        return float(v)
    except Exception:
        return None


# --------------------------------------------------------------------------- model facts
#: Longest run accepted, in Euler steps ((FINAL TIME - INITIAL TIME) / TIME STEP): ten million
#: steps of the carousel take hours in PySD and ~1 GB per saved variable in the ensemble.
MAX_STEPS = 10_000_000

#: Time units a duration may be written in (the model's units field), as years.
TIME_UNITS = {"year": 1.0, "years": 1.0, "yr": 1.0, "quarter": 0.25, "quarters": 0.25,
              "month": 1 / 12, "months": 1 / 12, "week": 7 / 365.25, "weeks": 7 / 365.25,
              "day": 1 / 365.25, "days": 1 / 365.25}


@dataclass(frozen=True)
class Constant:
    """What validation knows of one model constant (from the IR: units field and equation).

    Attributes
    ----------
    name, py_name : str
        Vensim name and PySD py_name.
    value : float
        Default (the model file's value).
    unit : str
        Units field.
    low, high : float
        Range of the units field (NaN = open).
    per_unit : float
        For a duration (a time unit that is not a date): model time units in one ``unit``
        (1 for Year in a Year model, 1/12 for Month); 0 for every other constant.
    """

    name: str
    py_name: str
    value: float
    unit: str
    low: float
    high: float
    per_unit: float = 0.0

    @property
    def is_duration(self) -> bool:
        return self.per_unit > 0


@dataclass(frozen=True)
class ParameterFacts:
    """The model facts every entry point validates against (built from the IR).

    Attributes
    ----------
    model : str
        Model file name (for messages).
    constants : dict of str to Constant
        By Vensim name; run-control variables excluded.
    kinds : dict of str to str
        Every non-internal variable's kind by Vensim name (``constant``, ``aux``, ``stock``,
        ``lookup``, ``data``).
    py_names : dict of str to str
        py_name -> Vensim name.
    initial_time, final_time, time_step, saveper : float
        Run control of the model file.
    time_unit : str
        Units of TIME STEP (e.g. ``Year``).
    arrays : dict of str to ArrayInfo
        Subscripted variables by their whole Vensim name (``growth``); their elements are in
        ``constants``/``kinds`` under ``growth[north]`` (:mod:`aicarousel.subscripts`).
    """

    model: str
    constants: dict
    kinds: dict
    py_names: dict
    initial_time: float
    final_time: float
    time_step: float
    saveper: float
    time_unit: str = "Year"
    arrays: dict = field(default_factory=dict)

    def spellings(self, kinds: Iterable[str] | None = None) -> dict[str, str]:
        """``spelling -> Vensim name`` (Vensim and py names) of variables of ``kinds``."""
        out = {n: n for n, k in self.kinds.items() if kinds is None or k in kinds}
        out.update({p: n for p, n in self.py_names.items() if n in out})
        return out


def _per_unit(unit: str, default: float, time_unit: str) -> float:
    """Model time units in one ``unit`` if a constant in ``unit`` is a duration, else 0."""
    u, tu = fold(unit), fold(time_unit)
    if abs(default) >= _DATE_THRESHOLD:  # a date, not a span
        return 0.0
    if u == tu and u:  # the model's own time unit, whatever it is called
        return 1.0
    if u in TIME_UNITS and tu in TIME_UNITS:
        return TIME_UNITS[u] / TIME_UNITS[tu]
    return 0.0  # not a time, or a time the model's unit cannot be converted to


def _num(x) -> float:
    return math.nan if x is None else float(x)


_FACTS: dict[tuple, ParameterFacts] = {}


def facts_from_ir(ir) -> ParameterFacts:
    """:class:`ParameterFacts` of a :class:`aicarousel.ir.ModelIR` (cached by model hash)."""
    key = (str(ir.path), ir.sha256)
    got = _FACTS.get(key)
    if got is not None:
        return got
    control_py = {"initial_time", "final_time", "time_step", "saveper"}
    ts = ir.variables.get("time_step")
    time_unit = (ts.units if ts is not None else "") or "Year"
    consts, kinds, py = {}, {}, {}
    for n, v in ir.variables.items():
        if v.internal:
            continue
        kinds[v.real_name] = v.kind
        py[n] = v.real_name
        if v.kind == "constant" and n not in control_py:
            value = float(v.expr.value)
            consts[v.real_name] = Constant(v.real_name, n, value, v.units or "",
                                           _num(v.limits[0]), _num(v.limits[1]),
                                           _per_unit(v.units or "", value, time_unit))
    t = ir.time
    arrays = {info.real_name: info for info in (getattr(ir, "arrays", None) or {}).values()}
    facts = ParameterFacts(Path(ir.path).name, consts, kinds, py, float(t.initial),
                           float(t.final), float(t.dt), float(t.saveper), time_unit, arrays)
    _FACTS[key] = facts
    return facts


def facts(model_file: str | os.PathLike | None = None) -> ParameterFacts:
    """:class:`ParameterFacts` of a model file, from its IR (parsed once per file version)."""
    from .ensemble import compile_model

    return facts_from_ir(compile_model(model_file).ir)


def _facts_from_pysd(model, doc: pd.DataFrame, model_file) -> ParameterFacts:
    """Same facts from a loaded PySD model, for models the IR cannot represent."""
    comps = model.components
    tu = str(doc.loc["TIME STEP", "Units"] or "Year") if "TIME STEP" in doc.index else "Year"
    consts, kinds, py = {}, {}, {}
    for real, row in doc.iterrows():
        kind = {"Constant": "constant", "Stateful": "stock", "Lookup": "lookup",
                "Data": "data"}.get(row["Type"], "aux")
        kinds[real] = kind
        py[row["Py Name"]] = real
        if kind == "constant" and real not in CONTROL_NAMES:
            value = constant_default(model, row["Py Name"])
            if value is None:
                continue
            lo, hi = _limits(row)
            unit = str(row["Units"] or "")
            consts[real] = Constant(real, row["Py Name"], value, unit, lo, hi,
                                    _per_unit(unit, value, tu))
    return ParameterFacts(Path(model_file or paths.MODEL_FILE).name, consts, kinds, py,
                          float(comps.initial_time()), float(comps.final_time()),
                          float(comps.time_step()), float(comps.saveper()), tu)


# --------------------------------------------------------------------------- the validator
def _fmt_range(c: Constant) -> str:
    lo = "?" if math.isnan(c.low) else f"{c.low:g}"
    hi = "?" if math.isnan(c.high) else f"{c.high:g}"
    return f"[{lo}, {hi}]"


def _as_floats(values: Any, what: str) -> np.ndarray:
    """``values`` as a float array; complex, text, bool and non-finite values are refused."""
    arr = np.asarray(values)
    if arr.dtype == object:
        try:
            arr = arr.astype(float)
        except (TypeError, ValueError):
            bad = next((x for x in arr.ravel() if not _is_number(x)), arr.ravel()[0])
            raise ParameterValueError(f"{what} must be a number, got {type(bad).__name__} "
                                      f"{short(repr(bad))}") from None
    if np.iscomplexobj(arr):
        bad = arr.ravel()[np.flatnonzero(np.imag(arr.ravel()) != 0)[:1]]
        raise ParameterValueError(f"{what} must be a real number, got the complex value "
                                  f"{bad[0] if bad.size else arr.ravel()[0]}")
    if arr.dtype.kind == "b" or not np.issubdtype(arr.dtype, np.number):
        raise ParameterValueError(f"{what} must be a number, got {arr.dtype} "
                                  f"{short(repr(arr.ravel()[0] if arr.size else arr))}")
    arr = arr.astype(float)
    if arr.size == 0:
        raise ParameterValueError(f"{what} is empty; give at least one value")
    if not np.all(np.isfinite(arr)):
        raise ParameterValueError(f"{what} must be finite, got {arr[~np.isfinite(arr)][0]} "
                                  "(give a finite value)")
    return arr


def check_values(c: Constant, values: Any, time_step: float, time_unit: str = "Year",
                 where: str = "") -> np.ndarray:
    """Check values (one or many) of constant ``c``; return them as a float array.

    The rules: finite real numbers; inside the range of the units field; a duration (a
    constant in a time unit that is not a date) at least TIME STEP long, since a shorter
    duration makes the Euler step overshoot (a stock drained in less than one step goes
    negative, then oscillates and diverges: Sterman, Business Dynamics, ch. 8, and the
    numbers of issue 9).

    Raises
    ------
    ParameterValueError
        Naming the constant, the value, the bound and the fix.
    """
    arr = _as_floats(values, f"{where}value of {c.name!r}")
    vmin, vmax = float(arr.min()), float(arr.max())
    if not math.isnan(c.low) and vmin < c.low:
        raise ParameterValueError(f"{where}value {vmin:g} of {c.name!r} is outside its range: "
                                  f"below its minimum {c.low:g} (range {_fmt_range(c)} in the model's units field, "
                                  f"unit {c.unit})")
    if not math.isnan(c.high) and vmax > c.high:
        raise ParameterValueError(f"{where}value {vmax:g} of {c.name!r} is outside its range: "
                                  f"above its maximum {c.high:g} (range {_fmt_range(c)} in the model's units field, "
                                  f"unit {c.unit})")
    if c.is_duration and vmin * c.per_unit < time_step * (1 - 1e-12):
        need = time_step / c.per_unit
        if vmin < 0:
            raise ParameterValueError(f"{where}{c.name!r} is a duration in {c.unit} and cannot be "
                                      f"negative (got {vmin:g}); give at least TIME STEP "
                                      f"({need:g} {c.unit})")
        raise ParameterValueError(
            f"{where}{c.name!r} = {vmin:g} {c.unit} is shorter than TIME STEP "
            f"({time_step:g} {time_unit}): a duration below one Euler step makes the run "
            f"numerically meaningless; give at least {need:g} {c.unit} or a smaller time step")
    return arr


def check_control(fx: ParameterFacts, control: Mapping[str, Any] | None = None,
                  where: str = "") -> dict[str, float]:
    """Complete and check run control (``initial_time``, ``final_time``, ``time_step``,
    ``saveper``; None = the model's value).

    Raises
    ------
    ParameterValueError
        A value that is not a finite number, time_step <= 0, saveper < time_step or longer than
        the run, final <= initial, more than :data:`MAX_STEPS` steps, or a time step longer
        than a duration of the model (naming it).
    """
    defaults = {"initial_time": fx.initial_time, "final_time": fx.final_time,
                "time_step": fx.time_step, "saveper": fx.saveper}
    full = dict(defaults)
    given = {k: v for k, v in (control or {}).items() if v is not None}
    for key, v in given.items():
        if key not in defaults:
            raise ParameterValueError(f"{where}unknown run control {key!r}; use one of "
                                      f"{', '.join(defaults)}")
        if not _is_number(v) or not math.isfinite(float(v)):
            raise ParameterValueError(f"{where}run control {key} must be a finite number of "
                                      f"years, got {short(repr(v))}")
        full[key] = float(v)
    if full["time_step"] <= 0:
        raise ParameterValueError(f"{where}time_step must be > 0 years, got {full['time_step']:g}")
    if full["saveper"] <= 0:
        raise ParameterValueError(f"{where}saveper must be > 0 years, got {full['saveper']:g}")
    if full["saveper"] < full["time_step"] - 1e-12:
        raise ParameterValueError(f"{where}saveper ({full['saveper']:g}) must be >= time_step "
                                  f"({full['time_step']:g})")
    t0, t1 = full["initial_time"], full["final_time"]
    if t1 <= t0:
        raise ParameterValueError(f"{where}final_time ({t1:g}) must be after the initial time "
                                  f"({t0:g})")
    steps = (t1 - t0) / full["time_step"]
    if not steps <= MAX_STEPS:
        raise ParameterValueError(
            f"{where}the run {t0:g}-{t1:g} with time_step {full['time_step']:g} has {steps:.3g} "
            f"Euler steps, more than the limit of {MAX_STEPS:,} (MAX_STEPS); shorten the run "
            "or enlarge the time step")
    if full["saveper"] > t1 - t0 + 1e-12:
        raise ParameterValueError(f"{where}saveper ({full['saveper']:g}) is longer than the run "
                                  f"({t0:g}-{t1:g}); give at most {t1 - t0:g}")
    return full


def validate(params: Mapping[str, Any] | None, fx: ParameterFacts,
             control: Mapping[str, Any] | None = None, *, per_run: bool = False,
             kinds: tuple[str, ...] = ("constant",), where: str = "",
             ) -> tuple[dict[str, Any], dict[str, float]]:
    """The one parameter validator of every entry point (model.run, the ensemble, scenarios,
    sweep ranges).

    Parameters
    ----------
    params : mapping
        Name (Vensim name in any case, ``_`` for spaces, or py_name) -> number or
        :class:`pandas.Series` over time; with ``per_run`` also a 1-d array (one value per
        run) or a :class:`pandas.DataFrame` (index time, one column per run).
    fx : ParameterFacts
        From :func:`facts` / :func:`facts_from_ir`.
    control : mapping, optional
        Run control (see :func:`check_control`); control names in ``params``
        ("FINAL TIME", ...) are moved here.
    per_run : bool
        Accept per-run arrays and DataFrames (the ensemble).
    kinds : tuple of str
        Variable kinds that may be set (the ensemble also takes ``data``).
    where : str
        Message prefix.

    Returns
    -------
    (dict, dict)
        ``Vensim name -> value`` (as given, checked) and the complete run control.

    Raises
    ------
    UnknownParameterError
        Unknown name (with "did you mean"), a stock or an equation.
    ParameterValueError
        Two spellings of one name, a wrong kind of value, a value outside its range, a
        duration shorter than TIME STEP, bad run control, a series not covering the run.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ParameterValueError(f"{where}params must be a mapping of name -> value, got "
                                  f"{type(params).__name__}")
    control = dict(control or {})
    rest: dict[Any, Any] = {}
    for name, value in params.items():
        if isinstance(name, str) and name.strip().upper() in CONTROL_NAMES:
            key = CONTROL_NAMES[name.strip().upper()]
            if control.get(key) is not None:
                raise ParameterValueError(f"{where}{name!r} given twice (in params and as "
                                          f"{key}=); give it once")
            control[key] = value
        else:
            rest[name] = value
    full = check_control(fx, control, where)
    dt, t0, t1 = full["time_step"], full["initial_time"], full["final_time"]
    names = fx.spellings()
    names.update({a: a for a in fx.arrays})
    names.update({info.name: a for a, info in fx.arrays.items()})
    settable = fx.spellings(kinds)
    clean: dict[str, Any] = {}
    given_as: dict[str, Any] = {}
    entries = []  # (name as given, Vensim name of a scalar or an element, value)
    for name, value in rest.items():
        real = _resolve_element(name, names, fx, where)
        if real in fx.arrays and real not in fx.kinds:  # a subscripted constant as a whole: one value per element
            from .subscripts import element_values
            try:
                parts = element_values(fx.arrays[real], value, per_run=per_run)
            except ParameterValueError as exc:
                raise ParameterValueError(f"{where}{exc}") from None
            entries.extend((name, fx.py_names[py], v, True) for py, v in parts.items())
            clean[real] = value
        else:
            entries.append((name, real, value, False))
    for name, real, value, whole in entries:
        kind = fx.kinds[real]
        if real not in settable.values():
            if kind == "stock":
                raise UnknownParameterError(
                    f"{where}{real!r} is a stock, not a parameter: set its initial-value "
                    "constant instead (see `aicarousel params`)")
            if real in CONTROL_NAMES:
                raise UnknownParameterError(f"{where}{real!r} is run control; use its argument")
            raise UnknownParameterError(
                f"{where}{real!r} is computed by an equation ({kind}), not a constant; only "
                "constants can be set (see `aicarousel params`)")
        if real in given_as:
            raise ParameterValueError(f"{where}{given_as[real]!r} and {name!r} both name "
                                      f"{real!r}; give it once")
        given_as[real] = name
        c = fx.constants.get(real)
        what = f"{where}value of {real!r}"
        if isinstance(value, pd.DataFrame):
            if not per_run:
                raise ParameterValueError(f"{what} must be a number or a pandas Series over time, "
                                          "got a DataFrame")
            _check_index(value.index, real, t0, t1, where)
            vals = _as_floats(value.to_numpy(), what)
        elif isinstance(value, pd.Series):
            _check_index(value.index, real, t0, t1, where)
            vals = _as_floats(value.to_numpy(), what)
        elif _is_number(value) or isinstance(value, (complex, np.complexfloating)):
            vals = _as_floats(value, what)
        elif per_run and isinstance(value, (np.ndarray, list, tuple)):
            vals = _as_floats(value, what)
            if vals.ndim != 1:
                raise ParameterValueError(f"{what}: give a scalar, a 1-d array of per-run "
                                          "values, a pandas Series indexed by time or a "
                                          "DataFrame (time x runs)")
        else:
            raise ParameterValueError(
                f"{what} must be a number or a pandas Series over time, got "
                f"{type(value).__name__} {short(repr(value), 60)}")
        if c is not None:
            check_values(c, vals, dt, fx.time_unit, where)
        if not whole:
            clean[real] = value
    for c in fx.constants.values():  # durations left at their value must outlast the step too
        if c.is_duration and c.name not in clean:
            check_values(c, c.value, dt, fx.time_unit, where)
    return clean, full


def _resolve_element(name: Any, names: Mapping[str, str], fx: ParameterFacts,
                     where: str = "") -> str:
    """Vensim name of ``name``: a scalar, a subscripted variable as a whole (``growth``) or
    one element (``growth[south]``, any case and spacing); an unknown element is refused
    naming the variable's elements."""
    text = name.strip() if isinstance(name, str) else ""
    if fx.arrays and "[" in text and text.endswith("]"):
        base, _, inner = text[:-1].partition("[")
        bases = {a: a for a in fx.arrays} | {i.name: a for a, i in fx.arrays.items()}
        try:
            arr = resolve_name(base.strip(), bases)
        except UnknownParameterError:
            arr = None
        if arr is not None:
            info = fx.arrays[arr]
            given = [e.strip() for e in inner.split(",")]
            if len(given) != len(info.dims):
                raise UnknownParameterError(
                    f"{where}{name!r}: {arr!r} has {len(info.dims)} subscript(s) "
                    f"({', '.join(info.dims)}); name one element of each, e.g. "
                    f"{arr}[{','.join(c[0] for c in info.coords)}]")
            tup = []
            for d, coords, e in zip(info.dims, info.coords, given):
                try:
                    tup.append(resolve_name(e, coords))
                except UnknownParameterError:
                    raise UnknownParameterError(
                        f"{where}{name!r}: {arr!r} has no element {e!r} in {d} (its elements: "
                        f"{', '.join(coords)})") from None
            if tuple(tup) not in info.elements:
                raise UnknownParameterError(f"{where}{name!r}: {arr!r} has no equation for "
                                            f"[{','.join(tup)}]")
            return fx.py_names[info.elements[tuple(tup)]]
    return resolve_name(name, names, what="parameter", where=where,
                        hint="run `aicarousel params` for the list")


def _check_index(index, real: str, t0: float, t1: float, where: str) -> None:
    try:
        idx = np.asarray(index, dtype=float)
    except (TypeError, ValueError):
        raise ParameterValueError(f"{where}time series for {real!r} must have a numeric time "
                                  "index (years)") from None
    if len(idx) == 0:
        raise ParameterValueError(f"{where}time series for {real!r} is empty")
    if not np.all(np.isfinite(idx)):
        raise ParameterValueError(f"{where}time series for {real!r} has a non-finite time in "
                                  "its index")
    if np.any(np.diff(idx) <= 0):
        raise ParameterValueError(f"{where}time series for {real!r} must have strictly "
                                  "increasing times")
    if idx[0] > t0 + _COVER_TOL or idx[-1] < t1 - _COVER_TOL:
        raise ParameterValueError(
            f"{where}time series for {real!r} covers {idx[0]:g}-{idx[-1]:g} but the run goes "
            f"{t0:g}-{t1:g}; extend it to cover the whole run")


def check_range(name: str, low: float, high: float, fx: ParameterFacts, where: str = "") -> str:
    """Check a sweep range of a constant with the same rules as a value; return its Vensim
    name. Both ends must be valid values (low < high is the Problem's own check)."""
    real = resolve_name(name, fx.spellings(("constant",)), what="parameter", where=where,
                        hint="run `aicarousel params` for the list")
    c = fx.constants.get(real)
    if c is None:
        raise UnknownParameterError(f"{where}{real!r} is run control, not a parameter to sweep")
    check_values(c, np.array([low, high], dtype=float), fx.time_step, fx.time_unit,
                 f"{where}range of {real!r}: ")
    return real


def validate_params(params: Mapping[str, Any], model, doc: pd.DataFrame,
                    control: dict[str, float | None], model_file=None,
                    ) -> tuple[dict[str, Any], dict[str, float | None]]:
    """:func:`validate` for :func:`aicarousel.model.run`: overrides keyed by py_name (floats
    or Series, as PySD takes them) and the run control as given (None = model default).

    Facts come from the IR of ``model_file``; a model the IR cannot represent falls back to
    the same facts read from the loaded PySD ``model``/``doc``.
    """
    from .errors import UnsupportedFeatureError

    try:
        fx = facts(model_file)
    except UnsupportedFeatureError:
        fx = _facts_from_pysd(model, doc, model_file)
    clean, full = validate(params, fx, control)
    out: dict[str, Any] = _pysd_arrays(clean, fx)
    for real, value in clean.items():
        if real in fx.arrays or _array_of(real, fx) is not None:
            continue
        py = next(p for p, n in fx.py_names.items() if n == real)
        if isinstance(value, pd.Series):
            out[py] = pd.Series(np.asarray(value.to_numpy(), dtype=float),
                                index=np.asarray(value.index, dtype=float))
        else:
            out[py] = float(value)
    moved = _moved(params)
    ctrl = {k: (full[k] if control.get(k) is not None or k in moved else None)
            for k in ("initial_time", "final_time", "time_step", "saveper")}
    return out, ctrl


def _array_of(real: str, fx: ParameterFacts):
    """(ArrayInfo, element tuple) of an element's Vensim name, or None."""
    for info in fx.arrays.values():
        for tup, py in info.elements.items():
            if fx.py_names.get(py) == real:
                return info, tup
    return None


def _pysd_arrays(clean: Mapping[str, Any], fx: ParameterFacts) -> dict[str, Any]:
    """Overrides of subscripted constants (whole or per element) as PySD takes them: one
    xarray.DataArray of every element by the array's py_name (the model's values where none
    is given)."""
    import xarray as xr

    from .subscripts import element_values

    given: dict[str, dict] = {}
    for real, value in clean.items():
        if real in fx.arrays:
            info = fx.arrays[real]
            parts = element_values(info, value, per_run=False)
            given.setdefault(real, {}).update(
                {t: parts[py] for t, py in info.elements.items()})
        else:
            hit = _array_of(real, fx)
            if hit is not None:
                given.setdefault(hit[0].real_name, {})[hit[1]] = value
    out = {}
    for real, vals in given.items():
        info = fx.arrays[real]
        data = np.full(info.shape, np.nan)
        for t, py in info.elements.items():
            v = vals.get(t, fx.constants.get(fx.py_names[py]))
            v = getattr(v, "value", v)
            if not _is_number(v):
                raise ParameterValueError(
                    f"{fx.py_names[py]!r}: a time series for an element of a subscripted "
                    "constant cannot be passed to PySD; use the ensemble "
                    "(aicarousel.ensemble.CompiledModel.run)")
            data[tuple(c.index(e) for c, e in zip(info.coords, t))] = float(v)
        out[info.name] = xr.DataArray(data, dims=list(info.dims),
                                      coords={d: list(c) for d, c in zip(info.dims, info.coords)})
    return out


def _moved(params: Mapping[str, Any] | None) -> set[str]:
    """Run-control keys given inside ``params`` by their Vensim names."""
    return {CONTROL_NAMES[n.strip().upper()] for n in (params or {})
            if isinstance(n, str) and n.strip().upper() in CONTROL_NAMES}


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
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise AicarouselError(f"{p}: cannot read the parameter table ({exc.strerror})") from None
    if b"\0" in raw:
        raise AicarouselError(f"{p}: a binary file (NUL byte at offset {raw.index(0)}), not the "
                              "CSV parameter table")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise AicarouselError(f"{p}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                              "save the table as UTF-8") from None
    import csv
    import io
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise AicarouselError(f"{p}: not a readable CSV table: {short(exc, 150)}") from None
    missing = [c for c in TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise AicarouselError(f"{p}: missing column(s) {missing}; expected {TABLE_COLUMNS}")
    for col in ("value", "low", "high"):
        cells = df[col].str.strip()
        num = pd.to_numeric(cells.where(cells != ""), errors="coerce")
        bad = num.isna() & (cells != "") | ~np.isfinite(num.fillna(0.0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AicarouselError(
                f"{p}: line {i + 2} ({df['name'].iloc[i]!r}), column {col!r}: "
                f"{short(repr(df[col].iloc[i]), 60)} is not a finite number; fix the cell")
        df[col] = num.astype(float)
    dup = df["name"][df["name"].duplicated()]
    if len(dup):
        raise AicarouselError(f"{p}: parameter {dup.iloc[0]!r} has more than one row; keep one")
    return df.set_index("name")


def write_table(df: pd.DataFrame, path: str | os.PathLike | None = None) -> Path:
    """Write the parameter table atomically (rows sorted by name)."""
    p = Path(path) if path is not None else paths.PARAMETERS_CSV
    cols = TABLE_COLUMNS + [c for c in POSTERIOR_COLUMNS if c in df.reset_index().columns]
    out = df.reset_index()[cols].sort_values("name", key=lambda s: s.str.lower())
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


#: A constant's equation in a Vensim file: the name, ``=``, one number literal, then ``~``.
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def _name_pattern(name: str) -> str:
    """Regex of a Vensim name as written in the file: any case, spaces or underscores."""
    import re
    words = [re.escape(w) for w in str(name).replace("_", " ").split()]
    return r"[ _]+".join(words)


def set_model_values(values: Mapping[str, float],
                     model_file: str | os.PathLike | None = None) -> Path:
    """Replace the number of each named constant's equation in the Vensim model file.

    Only the number literal right of ``=`` changes (units, range, comment and every other byte
    stay as they are; no equation is re-typed). A name that is not a plain number constant of
    the file (unknown, subscripted, or an expression) is refused, naming it, and nothing is
    written. The file is replaced atomically.

    Parameters
    ----------
    values : mapping of str to float
        Vensim name -> new value (written with :func:`repr`, so it reads back exactly).
    model_file : path, optional
        Default ``paths.MODEL_FILE``.

    Returns
    -------
    pathlib.Path
        The model file.
    """
    import re

    from .atomic import write_with

    p = Path(model_file) if model_file is not None else paths.MODEL_FILE
    text = p.read_bytes().decode("utf-8")
    for name, value in values.items():
        v = float(value)
        if not math.isfinite(v):
            raise ParameterValueError(f"{name!r}: value {v} is not finite; nothing written")
        pat = re.compile(r"(?im)^(" + _name_pattern(name) + r"\s*=\s*)(" + _NUMBER +
                         r")(\s*~)")
        hits = list(pat.finditer(text))
        if len(hits) != 1:
            raise ParameterValueError(
                f"{name!r} is not a constant with a plain number in {p.name} "
                f"({len(hits)} matching equations); nothing written")
        h = hits[0]
        text = text[:h.start(2)] + repr(v) + text[h.end(2):]
    data = text.encode("utf-8")
    return write_with(p, lambda tmp: Path(tmp).write_bytes(data))


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
