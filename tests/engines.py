"""Run one model through PySD and through each of our engines, and compare them step by step.

Used by the cross-engine tests (``test_engine_semantics.py``, ``test_differential.py``): the
IR's reference evaluator (:func:`aicarousel.ir.simulate`), the vectorised ensemble (N = 1 and
N > 1 with per-run parameters) and the sympy system (its right-hand side and auxiliaries,
integrated with PySD's Euler steps from the IR's initial state) must give PySD's numbers.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np

from aicarousel.ensemble import CompiledModel, time_grid
from aicarousel.ir import ModelIR, build_ir, simulate

#: Relative tolerance of every engine against PySD (on every saved step).
RTOL = 1e-12


def pysd_model(model_file: Path, tmp_dir: Path):
    """PySD translation of ``model_file`` made in ``tmp_dir`` (never beside the original)."""
    import pysd

    dst = Path(tmp_dir) / Path(model_file).name
    if Path(model_file).resolve() != dst.resolve():
        shutil.copy(model_file, dst)
        for data in Path(model_file).parent.glob("*.xls*"):  # GET CONSTANTS / GET DATA inputs
            shutil.copy(data, Path(tmp_dir) / data.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dst.suffix == ".mdl":
            return pysd.read_vensim(str(dst))
        return pysd.read_xmile(str(dst))


def pysd_run(model, ir: ModelIR, params: dict | None = None) -> dict[str, np.ndarray]:
    """PySD's run with ``params`` (py_name -> value), by py_name, plus ``"time"``."""
    real = pysd_params(ir, params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            df = model.run(params=real, reload=True)
    out = {"time": df.index.values.astype(float)}
    elements = {v.real_name: k for k, v in ir.variables.items() if v.array is not None}
    for col in df.columns:
        py = model.namespace.get(col) or elements.get(col)  # "Var[a1,b2]": one element
        if py in ir.variables:
            out[py] = np.asarray(df[col].values, dtype=float)
    return out


def pysd_params(ir: ModelIR, params: dict | None) -> dict:
    """``params`` (py_name -> value; elements of subscripted constants too) as PySD takes
    them: by model name, a subscripted constant as one xarray.DataArray of all its elements."""
    import xarray as xr

    out, arrays = {}, {}
    for k, v in (params or {}).items():
        var = ir.variables[k]
        if var.array is None:
            out[var.real_name] = v
        else:
            arrays.setdefault(var.array[0], {})[var.array[1]] = v
    for base, given in arrays.items():
        info = ir.arrays[base]
        data = np.full(info.shape, np.nan)
        for t, name in info.elements.items():
            idx = tuple(c.index(e) for c, e in zip(info.coords, t))
            data[idx] = given.get(t, ir.constants.get(name, np.nan))
        out[info.real_name] = xr.DataArray(data, dims=list(info.dims),
                                           coords={d: list(c) for d, c in
                                                   zip(info.dims, info.coords)})
    return out


def ir_run(ir: ModelIR, params: dict | None = None) -> dict[str, np.ndarray]:
    """The IR's reference evaluator (NaN/inf returned, as PySD's raw run gives them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simulate(ir, params, allow_nonfinite=True)


def ensemble_runs(ir: ModelIR, param_sets: list[dict]) -> list[dict[str, np.ndarray]]:
    """One ensemble run per parameter set: N = 1 for a single set, else one N > 1 run with
    per-run arrays (a constant set in only some sets takes its model value in the others);
    NaN/inf returned, as PySD's raw run gives them."""
    cm = CompiledModel(ir)
    keys = sorted({k for p in param_sets for k in p})
    if len(param_sets) == 1:
        t, v = cm.run_arrays(param_sets[0] or None, allow_nonfinite=True)
    else:
        arrays = {k: np.array([p.get(k, cm.defaults[k]) for p in param_sets], float)
                  for k in keys}
        t, v = cm.run_arrays(arrays, n=len(param_sets), allow_nonfinite=True)
    return [{"time": t, **{k: a[i] for k, a in v.items()}} for i in range(len(param_sets))]


def sympy_run(ir: ModelIR, params: dict | None = None, system=None) -> dict[str, np.ndarray]:
    """The sympy system's RHS and auxiliaries along PySD's Euler steps.

    The initial state is the IR's (the sympy system describes dx/dt, not initial values).
    ``system`` is ``to_sympy(ir)`` if given (building it is the slow part).
    """
    from aicarousel.symbolic import to_sympy

    system = system or to_sympy(ir)
    p = system.param_vector(params or {})
    f = system.lambdify()
    aux_names = list(system.aux)
    g = system.lambdify([system.aux[n] for n in aux_names]) if aux_names else None
    first = ir_run(ir, params)
    ts = ir.time
    c = dict(ir.constants)
    c.update(params or {})
    dt = c.get("time_step", ts.dt)
    times, save = time_grid(c.get("initial_time", ts.initial), c.get("final_time", ts.final),
                            dt, c.get("saveper", ts.saveper))
    x = np.array([first[s][0] for s in ir.stocks], dtype=float)
    nonneg = np.array([ir.variables[s].non_negative for s in ir.stocks], dtype=bool)
    rows_x, rows_a = [], []
    with np.errstate(all="ignore"):
        for k, t in enumerate(times):
            if save[k]:
                rows_x.append(x.copy())
                if g is not None:
                    rows_a.append(np.asarray(g(t, x, p), dtype=float))
            if k < len(times) - 1:
                x = x + f(t, x, p) * dt
                x[nonneg] = np.maximum(x[nonneg], 0.0)
    out = {"time": times[save]}
    X = np.array(rows_x).reshape(len(rows_x), len(ir.stocks))
    for i, s in enumerate(ir.stocks):
        out[s] = X[:, i]
    if g is not None:
        A = np.array(rows_a)
        for i, n in enumerate(aux_names):
            out[n] = A[:, i]
    return out


def differences(ref: dict, got: dict, rtol: float = RTOL) -> list[str]:
    """Variables where ``got`` differs from ``ref`` by more than ``rtol`` (relative), with
    the first time and both values; nan must match nan and inf must match inf."""
    bad = []
    if len(ref["time"]) != len(got["time"]) or not np.allclose(ref["time"], got["time"],
                                                                rtol=0, atol=1e-9):
        return [f"time grids differ: {len(ref['time'])} vs {len(got['time'])} points"]
    for k, r in ref.items():
        if k == "time" or k not in got:
            continue
        r = np.asarray(r, float)
        g = np.asarray(got[k], float)
        same = (r == g) | (np.isnan(r) & np.isnan(g))
        with np.errstate(all="ignore"):
            close = np.abs(g - r) <= rtol * np.abs(r)
        ok = same | (np.isfinite(r) & np.isfinite(g) & close)
        if not np.all(ok):
            i = int(np.argmin(ok))
            bad.append(f"{k} at t={ref['time'][i]}: PySD {r[i]!r}, engine {g[i]!r}")
    return bad


def compare_all(model_file: Path, tmp_dir: Path, param_sets: list[dict] | None = None,
                symbolic: bool = True) -> dict[str, list[str]]:
    """Differences of every engine from PySD, keyed by ``engine[set]``; empty lists if all
    agree. ``param_sets`` are dicts py_name -> value (default one set: the model's values)."""
    ir = build_ir(model_file)
    sets = param_sets or [{}]
    model = pysd_model(model_file, tmp_dir)
    refs = [pysd_run(model, ir, p) for p in sets]
    out: dict[str, list[str]] = {}
    system = None
    if symbolic and ir.stocks:
        from aicarousel.symbolic import to_sympy
        system = to_sympy(ir)
    for i, p in enumerate(sets):
        out[f"ir[{i}]"] = differences(refs[i], ir_run(ir, p))
        out[f"ensemble N=1[{i}]"] = differences(refs[i], ensemble_runs(ir, [p])[0])
        if system is not None:
            out[f"sympy[{i}]"] = differences(refs[i], sympy_run(ir, p, system))
    if len(sets) > 1:
        for i, got in enumerate(ensemble_runs(ir, sets)):
            out[f"ensemble N={len(sets)}[{i}]"] = differences(refs[i], got)
    return out
