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
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from . import paths
from .errors import AicarouselError

TARGET_COLUMNS = ["id", "what", "variable", "statistic", "start", "end", "value", "unit",
                  "tolerance", "source"]


def read_targets(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the calibration targets table (indexed by ``id``)."""
    p = Path(path) if path is not None else paths.CALIBRATION_TARGETS_CSV
    df = pd.read_csv(p, dtype={"source": str, "what": str})
    missing = [c for c in TARGET_COLUMNS if c not in df.columns]
    if missing:
        raise AicarouselError(f"{p}: missing column(s) {missing}")
    bad = sorted(set(df["statistic"]) - {"value", "integral", "mean"})
    if bad:
        raise AicarouselError(f"{p}: unknown statistic(s) {bad}; use value, integral or mean")
    return df.set_index("id")


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


def _cumulative(t: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Euler accumulation C(t_k) = sum_{j<k} f(t_j) * (t_{j+1} - t_j)."""
    c = np.zeros_like(f, dtype=float)
    c[1:] = np.cumsum(f[:-1] * np.diff(t))
    return c


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
    t = ds["time"].values
    y = ds[variable].values.astype(float)
    if not (t[0] - 1e-9 <= start <= t[-1] + 1e-9 and t[0] - 1e-9 <= end <= t[-1] + 1e-9):
        raise AicarouselError(f"target period {start}-{end} outside the run {t[0]}-{t[-1]}")
    if stat == "value":
        return float(np.interp(start, t, y))
    c = _cumulative(t, y)
    integral = float(np.interp(end, t, c) - np.interp(start, t, c))
    if stat == "integral":
        return integral
    return integral / (end - start)


def compare(ds: xr.Dataset | None = None, targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """Model vs data for every target.

    Returns
    -------
    pandas.DataFrame
        Indexed by id; columns ``what, period, data, model, unit, error`` (relative, signed),
        ``tolerance, pass, source``.
    """
    targets = read_targets() if targets is None else targets
    ds = calibration_run() if ds is None else ds
    rows = []
    for tid, r in targets.iterrows():
        model = statistic(ds, r["variable"], r["statistic"], float(r["start"]), float(r["end"]))
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
