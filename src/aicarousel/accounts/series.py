"""Reading a run for the accounts: one value per time step, periods (part of :mod:`aicarousel.accounts`)."""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .structure import AccountingError, Accounts

# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

def run_for_accounts(params: Mapping[str, Any] | None = None,
                     model_file: str | os.PathLike | None = None,
                     acc: Accounts | None = None) -> xr.Dataset:
    """Run the model saved at every time step (SAVEPER = TIME STEP), as tracing needs.

    Parameters
    ----------
    params : mapping, optional
        Overrides by Vensim name, as for :func:`aicarousel.model.run`.
    model_file : path, optional
        Model file; default ``paths.MODEL_FILE``.
    acc : Accounts, optional
        Structure already read from ``model_file``.

    Returns
    -------
    xarray.Dataset
        All model variables at every time step.
    """
    from ..model import run
    params = dict(params or {})
    ts = params.get("TIME STEP")
    if ts is None:
        if acc is None:
            from ..model import load
            ts = float(load(model_file).components.time_step())
        else:
            ts = acc.time[2]
    params.pop("SAVEPER", None)
    return run(params=params, model_file=model_file, saveper=float(ts))


def run_time_step(ds: xr.Dataset) -> float:
    """Time step of a run saved at every step (years).

    Raises
    ------
    AccountingError
        Fewer than two saved times, uneven spacing, or saved less often than TIME STEP.
    """
    t = np.asarray(ds["time"].values, dtype=float)
    if t.size < 2:
        raise AccountingError("the run has fewer than two saved times; run with SAVEPER = TIME STEP")
    d = np.diff(t)
    dt = float(d[0])
    if not np.allclose(d, dt, rtol=1e-9, atol=0):
        raise AccountingError("the run's saved times are not evenly spaced; run with SAVEPER = "
                              "TIME STEP (aicarousel.accounts.run_for_accounts)")
    ts = _control(ds, "time_step")
    if ts is not None and not math.isclose(ts, dt, rel_tol=1e-9):
        raise AccountingError(f"the run was saved every {dt:g} years but its time step is {ts:g}; "
                              f"exact accounts and tracing need every step: run with SAVEPER = "
                              f"TIME STEP (aicarousel.accounts.run_for_accounts)")
    return dt


def _control(ds: xr.Dataset, key: str) -> float | None:
    import json
    for name in ("TIME STEP",) if key == "time_step" else ():
        if name in ds and ds[name].ndim == 1:
            return float(ds[name].values[0])
    raw = ds.attrs.get("run_control")  # flat attribute written by model.run
    if isinstance(raw, str):
        try:
            obj = json.loads(raw)
        except ValueError:
            return None
        if isinstance(obj, dict) and key in obj:
            return float(obj[key])
    return None


def run_values(ds: xr.Dataset, name: str) -> np.ndarray:
    """Values of variable ``name`` along the run (float array; its model units).

    Raises
    ------
    AccountingError
        The run has no such variable.
    """
    if name not in ds:
        raise AccountingError(f"the run has no variable {name!r}; run with all variables "
                              f"(aicarousel.accounts.run_for_accounts)")
    return np.asarray(ds[name].values, dtype=float)


def _period_mask(t: np.ndarray, period: tuple[float, float] | None) -> np.ndarray:
    if period is None:
        return np.ones(t.size - 1, dtype=bool) if t.size > 1 else np.zeros(0, dtype=bool)
    start, end = period
    check_period(period, (float(t[0]), float(t[-1])))
    tt = t[:-1]  # flows at the last saved time are never integrated
    eps = 1e-9 * max(1.0, abs(end))
    return (tt >= start - eps) & (tt < end - eps)


def check_period(period: tuple[float, float], bounds: tuple[float, float]) -> None:
    """Check a period [start, end) lies in the run.

    Raises
    ------
    AccountingError
        Start not before end, or outside the run's time range.
    """
    start, end = period
    t0, t1 = bounds
    if not (np.isfinite(start) and np.isfinite(end)) or start >= end:
        raise AccountingError(f"bad period {start:g}:{end:g}: the start must come before the end "
                              f"(e.g. 2025:2030)")
    if start < t0 - 1e-9 or end > t1 + 1e-9:
        raise AccountingError(f"period {start:g}:{end:g} lies outside the run ({t0:g}:{t1:g}); "
                              f"choose years within it")


def parse_period(text: str) -> tuple[float, float]:
    """Parse ``"2025:2030"`` into ``(2025.0, 2030.0)``: the half-open interval [start, end).

    Raises
    ------
    AccountingError
        Not two numbers separated by a colon, or start not before end.
    """
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, end = float(parts[0]), float(parts[1])
    except ValueError:
        raise AccountingError(f"bad period {text!r}: write START:END in years, e.g. 2025:2030 "
                              f"(from the start of 2025 to the start of 2030)") from None
    if not (np.isfinite(start) and np.isfinite(end)) or start >= end:
        raise AccountingError(f"bad period {text!r}: the start must come before the end "
                              f"(e.g. 2025:2030)")
    return start, end
