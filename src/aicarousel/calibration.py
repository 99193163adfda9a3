"""Calibration targets: compare the model's baseline with the brief's 2024-2025 anchor points.

Targets live in ``data/calibration_targets.csv`` with columns ``id, what, variable, statistic,
start, end, value, unit, tolerance, source``. ``statistic`` is

* ``value``: the variable at time ``start`` (linearly interpolated between saved steps);
* ``integral``: the time integral of a flow (units per Year) over ``[start, end]`` years,
  computed exactly as the model's Euler integration accumulates it (left sums over time steps,
  linear within the step that straddles a boundary);
* ``mean``: the time average over ``[start, end]``.

A point passes when ``|model - data| <= tolerance * |data|`` (tolerance relative).
``analysis/calibration.py`` writes the comparison table for a paper.

Measurement error (issue 14). Two more columns, ``quality`` and ``sigma``, give each target's
relative standard deviation, the scale of the likelihood in :mod:`aicarousel.calibrate`
(residual ``(model - data) / (sigma * |data|)``). The rule (:data:`QUALITY_SIGMA`), from the
source's quality:

* ``filing`` (0.10): a company's filing or results release (10-K/10-Q, earnings release);
* ``company`` (0.15): a figure the company gave (CFO blog, round terms) relayed by the press;
* ``press`` (0.25): a single news source, a leak, guidance, or a market figure that the model
  only approximates (a daily market value for the model's smoothed valuation);
* ``derived`` (0.35): our own derivation from several figures, or a proxy of a different
  concept (a 5-year CDS premium for the model's borrowing spread).

``sigma`` must equal the rule for its ``quality`` (a test checks the table), so changing the
rule changes every row. ``tolerance`` is only the pass band of the baseline table; rows added
with the 2026 data use ``min(0.5, 1.5 * sigma)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import paths
from .errors import AicarouselError, CalibrationError

TARGET_COLUMNS = ["id", "what", "variable", "statistic", "start", "end", "value", "unit",
                  "tolerance", "source"]
#: Relative measurement error (standard deviation) by source quality (see the module doc).
QUALITY_SIGMA = {"filing": 0.10, "company": 0.15, "press": 0.25, "derived": 0.35}
STATISTICS = ("value", "integral", "mean")


def read_targets(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the calibration targets table (indexed by ``id``)."""
    p = Path(path) if path is not None else paths.CALIBRATION_TARGETS_CSV
    df = pd.read_csv(p, dtype={"source": str, "what": str})
    missing = [c for c in TARGET_COLUMNS if c not in df.columns]
    if missing:
        raise AicarouselError(f"{p}: missing column(s) {missing}")
    bad = sorted(set(df["statistic"]) - set(STATISTICS))
    if bad:
        from .params import did_you_mean
        raise CalibrationError(f"{p}: unknown statistic {bad[0]!r}{did_you_mean(bad[0], STATISTICS)}"
                               "; use value, integral or mean")
    if df["id"].duplicated().any():
        raise CalibrationError(f"{p}: target id {df['id'][df['id'].duplicated()].iloc[0]!r} "
                               "appears twice; give every row its own id")
    for col in ("start", "end", "value", "tolerance") + (("sigma",) if "sigma" in df else ()):
        num = pd.to_numeric(df[col], errors="coerce")
        bad_rows = df["id"][num.isna() | ~np.isfinite(num.astype(float))]
        if len(bad_rows):
            raise CalibrationError(f"{p}: target {bad_rows.iloc[0]!r} has no finite number in "
                                   f"column {col!r}; give one")
        df[col] = num.astype(float)
    if "sigma" in df:
        bad_rows = df["id"][df["sigma"] <= 0]
        if len(bad_rows):
            raise CalibrationError(f"{p}: target {bad_rows.iloc[0]!r} has sigma <= 0; the "
                                   "relative measurement error must be positive (see QUALITY_SIGMA)")
    bad_rows = df["id"][df["end"] < df["start"]]
    if len(bad_rows):
        raise CalibrationError(f"{p}: target {bad_rows.iloc[0]!r} ends before it starts; give "
                               "end >= start")
    return df.set_index("id")


def check_targets(targets: pd.DataFrame, model, *, where: str = "targets") -> None:
    """Refuse targets a model cannot be compared with (one line, naming the target).

    Parameters
    ----------
    targets : pandas.DataFrame
        From :func:`read_targets`.
    model : aicarousel.ensemble.CompiledModel
        The compiled model (names, run span).
    where : str
        What to call the table in messages (its file name).

    Raises
    ------
    CalibrationError
        Unknown variable (with the closest names), a period outside the run, a lookup table,
        no ``sigma`` column, a zero data value (a relative error needs a scale).
    """
    from .params import did_you_mean

    names = [v.real_name for v in model.ir.variables.values()
             if not v.internal and v.kind != "lookup"]
    t0, t1 = float(model.ir.time.initial), float(model.ir.time.final)
    if "sigma" not in targets:
        raise CalibrationError(f"{where}: no 'sigma' column; add the relative measurement error "
                               "of each target (see QUALITY_SIGMA)")
    for tid, r in targets.iterrows():
        try:
            model.py_name(r["variable"], what="target variable")
        except AicarouselError:
            raise CalibrationError(f"{where}: target {tid!r}: unknown variable "
                                   f"{r['variable']!r}{did_you_mean(r['variable'], names)}") from None
        if not (t0 - 1e-9 <= r["start"] and r["end"] <= t1 + 1e-9):
            raise CalibrationError(f"{where}: target {tid!r}: period {r['start']:g}-{r['end']:g} "
                                   f"outside the run {t0:g}-{t1:g}; move it into the run")
        if r["value"] == 0:
            raise CalibrationError(f"{where}: target {tid!r} has data value 0; a relative error "
                                   "needs a non-zero value")


def calibration_run(model_file=None) -> xr.Dataset:
    """Baseline run saved at every time step (so integrals are exact), target variables only,
    up to the first whole year after the last target period (the anchors are 2024-2026)."""
    from .model import run, load
    targets = read_targets()
    m = load(model_file)
    dt = float(m.components.time_step())
    final = min(float(m.components.final_time()), float(np.ceil(targets["end"].max() + dt)))
    return run(model_file=model_file, saveper=dt, final_time=final,
               return_columns=sorted(set(targets["variable"])))


def statistic(ds: xr.Dataset, variable: str, stat: str, start: float, end: float) -> float:
    """Evaluate one target statistic on a run.

    Parameters
    ----------
    ds : xarray.Dataset
        Run saved at every time step (for integrals).
    variable : str
        Vensim name.
    stat : {"value", "integral", "mean"}
    start, end : float
        Years.

    Returns
    -------
    float
        In the variable's units (``integral``: units x Year).
    """
    return float(statistic_array(ds["time"].values, ds[variable].values, stat, start, end))


def statistic_array(t: np.ndarray, y: np.ndarray, stat: str, start: float, end: float):
    """:func:`statistic` of many runs at once (the same arithmetic, run by run).

    Parameters
    ----------
    t : numpy.ndarray
        Saved times (years), shape (T,); every time step for exact integrals.
    y : numpy.ndarray
        Values, shape (T,) or (N, T).
    stat, start, end
        As in :func:`statistic`.

    Returns
    -------
    float or numpy.ndarray
        Shape () or (N,).
    """
    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if not (t[0] - 1e-9 <= start <= t[-1] + 1e-9 and t[0] - 1e-9 <= end <= t[-1] + 1e-9):
        raise CalibrationError(f"target period {start}-{end} outside the run {t[0]}-{t[-1]}")
    rows = np.atleast_2d(y)
    if stat == "value":
        out = np.array([np.interp(start, t, r) for r in rows])
    else:
        c = np.zeros_like(rows)
        c[:, 1:] = np.cumsum(rows[:, :-1] * np.diff(t), axis=1)
        out = np.array([np.interp(end, t, r) - np.interp(start, t, r) for r in c])
        if stat == "mean":
            out = out / (end - start)
        elif stat != "integral":
            raise CalibrationError(f"unknown statistic {stat!r}; use value, integral or mean")
    return out if y.ndim == 2 else out[0]


def compare(ds: xr.Dataset | None = None, targets: pd.DataFrame | None = None,
            model_values=None) -> pd.DataFrame:
    """Model vs data for every target.

    Parameters
    ----------
    ds : xarray.Dataset, optional
        A run saved at every time step (default: the baseline, :func:`calibration_run`).
    targets : pandas.DataFrame, optional
        Default :func:`read_targets`.
    model_values : sequence of float, optional
        The model's statistic per target, already evaluated (e.g. by
        :func:`statistic_array` on an ensemble run); then ``ds`` is not used.

    Returns
    -------
    pandas.DataFrame
        Indexed by id; columns ``what, period, data, model, unit, error`` (relative, signed),
        ``tolerance, pass, source``.
    """
    targets = read_targets() if targets is None else targets
    if model_values is None:
        ds = calibration_run() if ds is None else ds
    rows = []
    for k, (tid, r) in enumerate(targets.iterrows()):
        if model_values is not None:
            model = float(model_values[k])
        else:
            model = statistic(ds, r["variable"], r["statistic"], float(r["start"]),
                              float(r["end"]))
        err = (model - r["value"]) / abs(r["value"])
        period = f"{r['start']:.2f}" if r["statistic"] == "value" else f"{r['start']:.2f}-{r['end']:.2f}"
        rows.append({"id": tid, "what": r["what"], "variable": r["variable"],
                     "statistic": r["statistic"], "period": period, "data": float(r["value"]),
                     "model": model, "unit": r["unit"], "error": err,
                     "tolerance": float(r["tolerance"]), "pass": bool(abs(err) <= r["tolerance"]),
                     "source": r["source"]})
    return pd.DataFrame(rows).set_index("id")


def to_latex(table: pd.DataFrame) -> str:
    """A booktabs LaTeX tabular of :func:`compare` output (what, period, data, model, error, tol).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`compare`.

    Returns
    -------
    str
    """
    from .tables import to_latex as render

    cols = {"what": "Target", "period": "Period", "data": "Data", "model": "Model",
            "unit": "Unit", "error": "Error", "tolerance": "Tol.", "pass": "Pass"}
    fmt = {"period": str, "data": lambda v: f"{v:.3g}", "model": lambda v: f"{v:.3g}",
           "error": lambda v: f"{100 * v:+.0f}\\%", "tolerance": lambda v: f"{100 * v:.0f}\\%",
           "pass": lambda v: "yes" if v else "no"}
    return render(table[list(cols)], formatters=fmt, header=cols, column_format="llrrlrrc")
