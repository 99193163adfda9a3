"""Sensitivity analysis and Monte Carlo over the parameter table, SALib style.

Three separate, seeded steps (same seed, same numbers):

1. **sample**: :func:`sample` draws parameter sets for a :class:`Problem` (names and ranges from
   ``data/parameters.csv``) with Morris, Sobol (Saltelli), Latin hypercube or plain Monte Carlo.
2. **evaluate**: :func:`evaluate` runs the model for every row with an *engine* and reduces each
   output to a scalar with a named reducer (:data:`REDUCERS`); :func:`evaluate_series` keeps whole
   time series. The default engine is the vectorised :mod:`aicarousel.ensemble`; ``"pysd"`` runs
   a loop of PySD runs for reference.
3. **analyze**: :func:`analyze` computes Morris mu*, sigma (with confidence intervals) or Sobol
   S1 and ST (with confidence intervals) per output; :func:`percentile_bands` gives Monte Carlo
   bands over time.

Outputs are written as strings (Vensim names in user-facing text):

* ``"Cloud Debt"``: the value at FINAL TIME (same as ``"final(Cloud Debt)"``);
* ``"final(X)"``, ``"peak(X)"``, ``"min(X)"``, ``"mean(X)"`` (time average over saved steps),
  ``"at(X, 2030)"`` (value at a saved time, years);
* ``"cross(X, 100)"``: first saved year X is >= 100 (``FINAL TIME + SAVEPER`` when never,
  i.e. censored, so the statistic stays finite);
* ``"drop(X, 0)"``: first saved year X is <= 0 (censored the same way).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import AicarouselError, ParameterValueError, UnknownParameterError

METHODS = ("morris", "sobol", "lhs", "mc")
#: Smallest N accepted per method (Morris trajectories, Sobol base samples, MC runs).
MIN_N = {"morris": 2, "sobol": 8, "lhs": 2, "mc": 2}
MORRIS_LEVELS = 4

__all__ = [
    "Problem", "OutputSpec", "REDUCERS", "METHODS", "load_problem", "parse_output", "sample",
    "evaluate", "evaluate_series", "analyze", "percentile_bands", "ensemble_engine", "pysd_engine",
]


# ----------------------------------------------------------------------------------------------
# problem definition
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """Uncertain parameters and their ranges.

    Attributes
    ----------
    names : tuple of str
        Vensim names of the parameters.
    bounds : tuple of (float, float)
        (low, high) per parameter, in the parameter's own unit.
    units : tuple of str
        Unit of each parameter (from the table), for labels.
    """

    names: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    units: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.names:
            raise ParameterValueError("no uncertain parameters: give at least one with a range")
        if len(set(self.names)) != len(self.names):
            raise ParameterValueError(f"parameter names repeat in {list(self.names)}")
        for name, (lo, hi) in zip(self.names, self.bounds):
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ParameterValueError(
                    f"range of {name!r} must be finite, got low={lo}, high={hi}; fix the "
                    "parameter table or --range")
            if not lo < hi:
                raise ParameterValueError(
                    f"range of {name!r} has low >= high ({lo} >= {hi}); give low < high")

    @property
    def salib(self) -> dict:
        """The problem as the dict SALib expects."""
        return {"num_vars": len(self.names), "names": list(self.names),
                "bounds": [list(b) for b in self.bounds]}

    def to_dict(self) -> dict:
        """JSON-serialisable form (for manifests)."""
        return {"names": list(self.names), "bounds": [list(map(float, b)) for b in self.bounds],
                "units": list(self.units)}


def _read_table(csv: str | Path | None = None):
    """The parameter table (:func:`aicarousel.params.read_table`) as rows with a ``name`` column.

    A missing or malformed table is a :class:`ParameterValueError` here, so that ranges given
    on the command line alone can still define a problem.
    """
    import pandas as pd

    from .params import read_table

    try:
        table = read_table(csv).reset_index()
    except AicarouselError as exc:
        raise ParameterValueError(str(exc)) from None
    for col in ("value", "low", "high"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def load_problem(parameters: Sequence[str] | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None,
                 csv: str | Path | None = None, model=None) -> Problem:
    """Build a :class:`Problem` from the parameter table.

    Parameters
    ----------
    parameters : sequence of str, optional
        Vensim names to vary; default every row of the table with role ``uncertain`` and both
        low and high. Levers (switches, caps, shocks) and fixed rows are varied only when named
        here: their ranges are what scenarios may set, not uncertainties.
    ranges : mapping of str to (low, high), optional
        Ranges overriding (or adding to) the table.
    csv : str or Path, optional
        Parameter table; default ``data/parameters.csv``.
    model : aicarousel.ensemble.CompiledModel, optional
        When given, every name is checked to be a constant of the model.

    Returns
    -------
    Problem

    Raises
    ------
    UnknownParameterError
        A name is not in the table (and has no range given) or not a model constant.
    ParameterValueError
        A range has low >= high or is missing.
    """
    ranges = dict(ranges or {})
    try:
        table = _read_table(csv)
    except ParameterValueError:
        if parameters is None or not all(p in ranges for p in parameters):
            raise
        table = None
    rows = {}
    if table is not None:
        for r in table.itertuples(index=False):
            rows[r.name.lower()] = r
    if parameters is None:
        names = [r.name for r in table.itertuples(index=False)
                 if np.isfinite(r.low) and np.isfinite(r.high) and r.role == "uncertain"]
        names += [n for n in ranges if n.lower() not in {x.lower() for x in names}]
    else:
        names = list(parameters)
    bounds, units, canon = [], [], []
    for n in names:
        rng = ranges.get(n)
        row = rows.get(n.lower())
        if rng is None:
            if row is None:
                from .params import did_you_mean  # the one name resolver's suggestions
                hint = did_you_mean(n, [r.name for r in rows.values()])
                raise UnknownParameterError(
                    f"unknown parameter {n!r}: not in the parameter table{hint}")
            if not (np.isfinite(row.low) and np.isfinite(row.high)):
                raise ParameterValueError(
                    f"parameter {n!r} has no low/high range in the parameter table; add one "
                    "or pass a range")
            rng = (float(row.low), float(row.high))
        canon.append(row.name if row is not None else n)
        bounds.append((float(rng[0]), float(rng[1])))
        units.append(row.unit if row is not None else "")
    if model is not None:
        canon = [model.real_name(model.py_name(n, kinds={"constant"}, what="parameter"))
                 for n in canon]
    return Problem(tuple(canon), tuple(bounds), tuple(units))


# ----------------------------------------------------------------------------------------------
# outputs and reducers
# ----------------------------------------------------------------------------------------------
def _final(t, y, arg):
    return y[:, -1]


def _peak(t, y, arg):
    return y.max(axis=1)


def _min(t, y, arg):
    return y.min(axis=1)


def _mean(t, y, arg):
    return y.mean(axis=1)


def _at(t, y, arg):
    idx = np.flatnonzero(np.isclose(t, arg, rtol=0, atol=1e-9))
    if idx.size == 0:
        raise ParameterValueError(
            f"time {arg} is not a saved time (saved every {t[1] - t[0]:g} from {t[0]:g} to "
            f"{t[-1]:g}); pick a saved time")
    return y[:, idx[0]]


def _first_time(t, hit):
    dt = t[1] - t[0] if t.size > 1 else 1.0
    first = np.argmax(hit, axis=1)
    return np.where(hit.any(axis=1), t[first], t[-1] + dt)


def _cross(t, y, arg):
    return _first_time(t, y >= arg)


def _drop(t, y, arg):
    return _first_time(t, y <= arg)


#: Named reducers: (function(times, values (N, T), argument) -> (N,), needs argument, unit).
REDUCERS: dict[str, tuple[Callable, bool, str | None]] = {
    "final": (_final, False, None),
    "peak": (_peak, False, None),
    "min": (_min, False, None),
    "mean": (_mean, False, None),
    "at": (_at, True, None),
    "cross": (_cross, True, "Year"),
    "drop": (_drop, True, "Year"),
}

_SPEC_RE = re.compile(r"^\s*(\w+)\s*\(\s*(.+?)\s*(?:,\s*([-+0-9.eE]+)\s*)?\)\s*$")


@dataclass(frozen=True)
class OutputSpec:
    """A scalar output: a reducer applied to one model variable.

    Attributes
    ----------
    label : str
        Canonical text, e.g. ``"peak(Cloud Debt)"``.
    variable : str
        Vensim name of the model variable.
    reducer : str
        Key of :data:`REDUCERS`.
    arg : float or None
        Reducer argument (time in years for ``at``, threshold for ``cross``/``drop``).
    """

    label: str
    variable: str
    reducer: str
    arg: float | None = None

    def reduce(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Apply the reducer to values of shape (N, T); returns shape (N,)."""
        fn = REDUCERS[self.reducer][0]
        return np.asarray(fn(np.asarray(times), np.asarray(values), self.arg), dtype=float)


def parse_output(text: str, model=None) -> OutputSpec:
    """Parse an output string (see module doc) into an :class:`OutputSpec`.

    Parameters
    ----------
    text : str
        e.g. ``"Cloud Debt"``, ``"peak(Cloud Debt)"``, ``"cross(Lab Revenue, 100)"``.
    model : CompiledModel, optional
        Checks the variable exists (and canonicalises its name).

    Raises
    ------
    UnknownParameterError
        Unknown reducer or variable.
    ParameterValueError
        Missing or surplus argument.
    """
    m = _SPEC_RE.match(text)
    if m and m.group(1).lower() in REDUCERS:
        red, var, arg = m.group(1).lower(), m.group(2), m.group(3)
    elif m and m.group(1).lower() not in REDUCERS and "(" in text and text.rstrip().endswith(")") \
            and (model is None or _is_unknown(model, text)):
        raise UnknownParameterError(
            f"unknown reducer {m.group(1)!r} in output {text!r}; use one of "
            f"{', '.join(REDUCERS)}")
    else:
        red, var, arg = "final", text.strip(), None
    needs = REDUCERS[red][1]
    if needs and arg is None:
        raise ParameterValueError(f"output {text!r}: reducer {red!r} needs a number, e.g. "
                                  f"{red}({var}, 2030)")
    if not needs and arg is not None:
        raise ParameterValueError(f"output {text!r}: reducer {red!r} takes no number")
    if model is not None:
        var = model.real_name(model.py_name(var, what="output"))
    argf = float(arg) if arg is not None else None
    label = f"{red}({var})" if argf is None else f"{red}({var}, {argf:g})"
    return OutputSpec(label, var, red, argf)


def _is_unknown(model, text):
    try:
        model.py_name(text.strip(), what="output")
        return False
    except UnknownParameterError:
        return True


# ----------------------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------------------
def check_n(method: str, n: int, problem: Problem) -> None:
    """Raise :class:`ParameterValueError` when N is too small or invalid for the method."""
    if method not in METHODS:
        raise ParameterValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if not isinstance(n, (int, np.integer)) or n < MIN_N[method]:
        raise ParameterValueError(
            f"N={n} is too small for {method}: need N >= {MIN_N[method]}"
            + (" (trajectories)" if method == "morris" else ""))
    if method == "sobol" and (n & (n - 1)) != 0:
        raise ParameterValueError(
            f"N={n} for sobol must be a power of 2 (Sobol sequence balance), e.g. "
            f"{2 ** int(math.ceil(math.log2(n)))}")


def n_runs(method: str, n: int, problem: Problem) -> int:
    """Number of model runs a sample of base size N needs."""
    d = len(problem.names)
    return {"morris": n * (d + 1), "sobol": n * (d + 2), "lhs": n, "mc": n}[method]


#: Largest seed (numpy and SALib seed 32-bit generators).
MAX_SEED = 2 ** 32 - 1


def check_seed(seed, where: str = "seed") -> int:
    """The seed as an int, or a ParameterValueError naming it (a whole number 0..2**32-1)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterValueError(f"{where} {seed!r}: give a whole number from 0 to {MAX_SEED}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ParameterValueError(f"{where} {seed}: give a whole number from 0 to {MAX_SEED} "
                                  "(2**32 - 1)")
    return int(seed)


def sample(problem: Problem, method: str, n: int, seed: int = 0) -> np.ndarray:
    """Draw parameter sets.

    Parameters
    ----------
    problem : Problem
    method : {"morris", "sobol", "lhs", "mc"}
    n : int
        Morris: trajectories; Sobol: base samples (power of 2); lhs/mc: runs.
    seed : int
        Seed; the same seed gives the same sample.

    Returns
    -------
    numpy.ndarray
        Shape (:func:`n_runs`, D), parameter values in their own units.
    """
    check_n(method, n, problem)
    seed = check_seed(seed)
    import warnings

    sp = problem.salib
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "morris":
            from SALib.sample import morris
            return morris.sample(sp, n, num_levels=MORRIS_LEVELS, seed=seed)
        if method == "sobol":
            from SALib.sample import sobol
            return sobol.sample(sp, n, calc_second_order=False, seed=seed)
        if method == "lhs":
            from SALib.sample import latin
            return latin.sample(sp, n, seed=seed)
    rng = np.random.default_rng(seed)
    lo = np.array([b[0] for b in problem.bounds])
    hi = np.array([b[1] for b in problem.bounds])
    return lo + (hi - lo) * rng.random((n, len(problem.names)))


# ----------------------------------------------------------------------------------------------
# engines
# ----------------------------------------------------------------------------------------------
Engine = Callable[[Mapping[str, np.ndarray], Sequence[str]], "tuple[np.ndarray, dict]"]


def ensemble_engine(model_file=None, fixed: Mapping[str, Any] | None = None,
                    chunk_size: int | None = None) -> Engine:
    """The vectorised engine: ``engine(params, variables) -> (times, {name: (N, T)})``.

    Parameters
    ----------
    model_file : path, optional
        Model; default the carousel model.
    fixed : mapping, optional
        Overrides applied to every run (e.g. a scenario), by Vensim name.
    chunk_size : int, optional
        Runs per vectorised block.
    """
    from .ensemble import DEFAULT_CHUNK, compile_model

    cm = compile_model(model_file)
    fixed = dict(fixed or {})

    def engine(params, variables):
        p = dict(fixed)
        p.update(params)
        n = len(next(iter(params.values()))) if params else 1
        t, vals = cm.run_arrays(p, n=n, outputs=list(variables),
                                chunk_size=chunk_size or DEFAULT_CHUNK)
        return t, {cm.real_name(k): v for k, v in vals.items()}

    engine.model = cm
    return engine


def pysd_engine(model_file=None, fixed: Mapping[str, Any] | None = None,
                progress: bool = False) -> Engine:
    """Reference engine: one PySD run per parameter set (slow; for checks)."""
    from .model import run as pysd_run

    fixed = dict(fixed or {})

    def engine(params, variables):
        names = list(params)
        n = len(params[names[0]]) if names else 1
        out = {v: None for v in variables}
        t = None
        rows = range(n)
        if progress:
            from tqdm.auto import tqdm
            rows = tqdm(rows, desc="pysd runs")
        for i in rows:
            p = dict(fixed)
            p.update({k: float(params[k][i]) for k in names})
            ds = pysd_run(params=p, model_file=model_file, return_columns=list(variables))
            if t is None:
                t = np.asarray(ds["time"].values, float)
                out = {v: np.empty((n, t.size)) for v in variables}
            for v in variables:
                out[v][i] = ds[v].values
        return t, out

    return engine


def _get_engine(engine, model_file=None, fixed=None):
    if engine is None or engine == "ensemble":
        return ensemble_engine(model_file, fixed)
    if engine == "pysd":
        return pysd_engine(model_file, fixed)
    if callable(engine):
        return engine
    raise ParameterValueError(f"unknown engine {engine!r}; use 'ensemble' or 'pysd'")


def _columns(problem: Problem, X: np.ndarray) -> dict[str, np.ndarray]:
    X = np.asarray(X, float)
    if X.ndim != 2 or X.shape[1] != len(problem.names):
        raise ParameterValueError(
            f"sample has shape {X.shape}; expected (runs, {len(problem.names)})")
    return {name: X[:, i] for i, name in enumerate(problem.names)}


def evaluate(problem: Problem, X: np.ndarray, outputs: Sequence[str | OutputSpec],
             engine: Any = None, model_file=None, fixed=None) -> dict[str, np.ndarray]:
    """Run the model for every row of ``X`` and reduce each output to a scalar.

    Parameters
    ----------
    problem : Problem
    X : numpy.ndarray
        Sample, shape (runs, D).
    outputs : sequence of str or OutputSpec
        Output specifications (see module doc).
    engine : "ensemble", "pysd" or callable, optional
    model_file : path, optional
    fixed : mapping, optional
        Overrides applied to every run.

    Returns
    -------
    dict of str to numpy.ndarray
        By output label, shape (runs,).
    """
    eng = _get_engine(engine, model_file, fixed)
    cm = getattr(eng, "model", None)
    specs = [o if isinstance(o, OutputSpec) else parse_output(o, cm) for o in outputs]
    variables = list(dict.fromkeys(s.variable for s in specs))
    t, vals = eng(_columns(problem, X), variables)
    return {s.label: s.reduce(t, vals[s.variable]) for s in specs}


def evaluate_series(problem: Problem, X: np.ndarray, variables: Sequence[str],
                    engine: Any = None, model_file=None, fixed=None):
    """Run every row of ``X`` and keep whole time series.

    Returns
    -------
    xarray.Dataset
        Dims (run, time); one variable per requested name, plus the sampled parameters as
        coordinates ``param`` (D,) and data variable ``sample`` (run, param).
    """
    import xarray as xr

    eng = _get_engine(engine, model_file, fixed)
    cm = getattr(eng, "model", None)
    if cm is not None:
        variables = [cm.real_name(cm.py_name(v, what="output")) for v in variables]
    t, vals = eng(_columns(problem, X), list(variables))
    ds = xr.Dataset({v: (("run", "time"), vals[v]) for v in variables},
                    coords={"run": np.arange(X.shape[0]), "time": t,
                            "param": list(problem.names)})
    ds["sample"] = (("run", "param"), np.asarray(X, float))
    if cm is not None:
        for v in variables:
            var = cm.ir.variables[cm.py_name(v)]
            ds[v].attrs.update(units=var.units or "", description=var.comment or "")
    return ds


# ----------------------------------------------------------------------------------------------
# analysis
# ----------------------------------------------------------------------------------------------
def analyze(problem: Problem, X: np.ndarray, Y: Mapping[str, np.ndarray], method: str,
            seed: int = 0, conf_level: float = 0.95, num_resamples: int = 100):
    """Sensitivity indices per output.

    Parameters
    ----------
    problem : Problem
    X : numpy.ndarray
        The sample (needed by Morris).
    Y : mapping of str to numpy.ndarray
        Output label -> values per run, from :func:`evaluate`.
    method : {"morris", "sobol"}
    seed : int
        Seed of the bootstrap (confidence intervals).
    conf_level : float
        Confidence level of the intervals.
    num_resamples : int
        Bootstrap resamples.

    Returns
    -------
    xarray.Dataset
        Dims (output, param). Morris: ``mu``, ``mu_star``, ``sigma``, ``mu_star_conf``;
        Sobol: ``S1``, ``S1_conf``, ``ST``, ``ST_conf``. Outputs with zero variance get NaN
        indices (they depend on none of the parameters).
    """
    import warnings

    import xarray as xr

    if method not in ("morris", "sobol"):
        raise ParameterValueError(f"analyze: method must be 'morris' or 'sobol', not {method!r}")
    labels = list(Y)
    keys = (["mu", "mu_star", "sigma", "mu_star_conf"] if method == "morris"
            else ["S1", "S1_conf", "ST", "ST_conf"])
    data = {k: np.full((len(labels), len(problem.names)), np.nan) for k in keys}
    sp = problem.salib
    for i, lab in enumerate(labels):
        y = np.asarray(Y[lab], float)
        if not np.all(np.isfinite(y)):
            raise AicarouselError(
                f"output {lab!r} has non-finite values in some runs; the model diverged "
                "inside the parameter ranges: narrow the ranges")
        if np.ptp(y) == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "morris":
                from SALib.analyze import morris
                r = morris.analyze(sp, np.asarray(X, float), y, num_resamples=num_resamples,
                                   conf_level=conf_level, num_levels=MORRIS_LEVELS, seed=seed)
            else:
                from SALib.analyze import sobol
                r = sobol.analyze(sp, y, calc_second_order=False, num_resamples=num_resamples,
                                  conf_level=conf_level, seed=seed)
        for k in keys:
            data[k][i] = np.asarray(r[k], float)
    ds = xr.Dataset({k: (("output", "param"), v) for k, v in data.items()},
                    coords={"output": labels, "param": list(problem.names)})
    ds.attrs.update(method=method, seed=seed, conf_level=conf_level,
                    num_resamples=num_resamples)
    return ds


def percentile_bands(ds, percentiles: Sequence[float] = (5, 25, 50, 75, 95)):
    """Percentile bands over runs for every (run, time) variable of ``ds``.

    Returns
    -------
    xarray.Dataset
        Dims (percentile, time), plus ``mean``-free: one variable per input variable.
    """
    import xarray as xr

    out = {}
    for name, da in ds.data_vars.items():
        if da.dims != ("run", "time"):
            continue
        q = np.percentile(da.values, list(percentiles), axis=0)
        out[name] = xr.Variable(("percentile", "time"), q, attrs=dict(da.attrs))
    return xr.Dataset(out, coords={"percentile": list(map(float, percentiles)),
                                   "time": ds["time"].values})
