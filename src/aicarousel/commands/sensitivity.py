"""``aicarousel sensitivity`` and ``aicarousel montecarlo``: sweeps over the parameter table.

Both run a chunked sweep into ``<out>/sweep.zarr`` (in-process, ``--workers N`` on a dask
LocalCluster, or ``--scheduler ADDRESS``), continue an interrupted sweep with ``--resume``, and
write the analysis only once every chunk is done (``<out>/indices.nc`` or ``<out>/bands.nc``,
written to a temp file and renamed).

``--out`` may hold the user's own files: a sweep only ever adds or replaces its own
(:data:`OWN_FILES`). ``--force`` removes a previous sweep's files and is refused, naming them,
when the directory holds anything else. Every argument and output path is checked before the
directory is touched, and the store's lock is held from the removal to the last write.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
from pathlib import Path

from ..atomic import write_netcdf

#: Files a sweep writes into --out (the store, its lock, the analysis of either kind).
STORE_NAME = "sweep.zarr"
RESULT_FILES = ("indices.nc", "bands.nc")
#: Our temporary names: atomic.temp_name of a result file, the store being created.
_OWN_TEMP = re.compile(r"^(\.(indices|bands)\.nc\.\d+-[0-9a-f]{8}\.tmp|sweep\.zarr\.creating)$")

#: Outputs analysed when none are given.
DEFAULT_SENSITIVITY_OUTPUTS = ["peak(Cloud Debt)", "final(Lab Cash)", "peak(Lab Market Value)"]
DEFAULT_MONTECARLO_OUTPUTS = ["Cloud Debt", "Lab Cash", "Lab Revenue", "Cloud Installed Compute",
                              "Lab Market Value", "Cloud Market Value"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, required=True, metavar="N",
                   help="sample size (Morris: trajectories; Sobol: base samples, a power of 2; "
                        "Monte Carlo: runs)")
    p.add_argument("--output", action="append", default=None, metavar="NAME",
                   help="model output by Vensim name (repeatable)")
    p.add_argument("--param", action="append", default=None, metavar="NAME",
                   help="vary only these parameters (repeatable; default every parameter of "
                        "data/parameters.csv with a range)")
    p.add_argument("--range", dest="ranges", action="append", default=[], metavar='"NAME=LOW:HIGH"',
                   help="override the range of a parameter, e.g. --range \"Construction time=1:3\"")
    p.add_argument("--scenario", default=None, help="scenario applied to every run (scenarios/*.yaml)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory")
    p.add_argument("--workers", type=int, default=None, help="run on a dask LocalCluster with N workers")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing dask cluster (tcp://host:port)")
    p.add_argument("--processes", type=int, default=1,
                   help="in-process sweeps: fork N processes per chunk (default 1)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    p.add_argument("--force", action="store_true",
                   help="replace a previous sweep in --out (only its own files: refused if "
                        "--out holds anything else)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="runs per task, >= 1 (default 2048)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table")


def register(subparsers) -> None:
    """Add the ``sensitivity`` and ``montecarlo`` subcommands."""
    p = subparsers.add_parser(
        "sensitivity", help="Morris or Sobol sensitivity of model outputs",
        description="Morris screening (mu*, sigma) or Sobol indices (S1, ST with confidence "
                    "intervals) of model outputs over the parameter ranges of "
                    "data/parameters.csv. Outputs: a Vensim name (value at FINAL TIME) or "
                    "final(X), peak(X), min(X), mean(X), at(X, YEAR), cross(X, LEVEL), "
                    "drop(X, LEVEL).")
    p.add_argument("--method", choices=["morris", "sobol"], required=True)
    p.add_argument("--from-posterior", default=None, metavar="DIR",
                   help="vary the parameters a calibration estimated (DIR of `aicarousel "
                        "calibrate`, or its posterior_draws.nc) within their posterior 5-95%% "
                        "intervals instead of their prior ranges: Morris and Sobol need "
                        "independent inputs, so each is sampled uniformly and independently in "
                        "its interval and the posterior's correlations are not kept (the "
                        "indices say what drives the outputs within what the data leave "
                        "uncertain; for the joint posterior use montecarlo --from-posterior)")
    _common(p)
    p.set_defaults(func=_sensitivity)
    q = subparsers.add_parser(
        "montecarlo", help="Monte Carlo / Latin hypercube percentile bands over time",
        description="Sample the parameter ranges (Latin hypercube by default), run the model "
                    "for every sample and write percentile bands over time.")
    q.add_argument("--method", choices=["lhs", "mc"], default="lhs")
    q.add_argument("--from-posterior", default=None, metavar="DIR",
                   help="draw the parameters a calibration estimated from its posterior "
                        "(DIR of `aicarousel calibrate`, or its posterior_draws.nc) instead of "
                        "their ranges; the others keep their ranges")
    q.add_argument("--percentiles", default="5,25,50,75,95",
                   help="comma-separated percentiles (default 5,25,50,75,95)")
    _common(q)
    q.set_defaults(func=_montecarlo)


from ..sensitivity import MAX_SEED  # noqa: E402 - one owner of the seed rule
#: Largest sample size accepted on the command line (runs are N times a small factor).
MAX_N = 100_000_000


def _parse_ranges(items):
    """``["NAME=LOW:HIGH", ...]`` -> {name: (low, high)}; malformed text is refused."""
    from ..errors import ParameterValueError

    out = {}
    for text in items:
        name, sep, rng = text.rpartition("=")
        lo, sep2, hi = rng.partition(":")
        try:
            if not sep or not sep2 or not name.strip() or ":" in hi:
                raise ValueError
            low, high = float(lo), float(hi)
        except ValueError:
            raise ParameterValueError(f"--range {text!r}: write it as \"NAME=LOW:HIGH\" with two "
                                      "numbers, e.g. --range \"Construction time=1:3\"") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ParameterValueError(f"--range {text!r}: LOW and HIGH must be finite numbers")
        if not low < high:
            raise ParameterValueError(f"--range {text!r}: low >= high; LOW must be below HIGH")
        out[name.strip()] = (low, high)
    return out


def _check_args(args) -> None:
    """Numbers of the command line (before anything is read or written)."""
    from ..errors import ParameterValueError

    if not 1 <= args.n <= MAX_N:
        raise ParameterValueError(f"--n {args.n}: the sample size must be between 1 and "
                                  f"{MAX_N:,}")
    if not 0 <= args.seed <= MAX_SEED:
        raise ParameterValueError(f"--seed {args.seed}: give a whole number from 0 to "
                                  f"{MAX_SEED} (2**32 - 1)")
    if args.workers is not None and args.workers < 1:
        raise ParameterValueError(f"--workers {args.workers}: give at least 1 worker")


def _definition(args, kind):
    from ..errors import ParameterValueError
    from ..params import check_range, facts, resolve_name
    from ..sensitivity import load_problem
    from ..sweep import DEFAULT_SWEEP_CHUNK, make_definition

    _check_args(args)
    fx = facts()
    spell = fx.spellings(("constant",))
    ranges = {}
    for name, (lo, hi) in _parse_ranges(args.ranges).items():
        real = resolve_name(name, spell, what="parameter", where="--range: ",
                            hint="run `aicarousel params` for the list")
        if real in ranges:
            raise ParameterValueError(f"--range: {ranges[real][0]!r} and {name!r} both name "
                                      f"{real!r}; give it once")
        ranges[real] = (name, (lo, hi))
    ranges = {real: rng for real, (_, rng) in ranges.items()}
    posterior = getattr(args, "from_posterior", None)
    if posterior is not None:
        from ..calibrate import load_posterior_draws
        both = [r for r in ranges if r in load_posterior_draws(posterior)[0]]
        if both:
            raise ParameterValueError(f"--range {both[0]!r}: the posterior sets this "
                                      "parameter (--from-posterior); give one or the other")
    params = args.param
    if params is not None:
        canon = {}
        for p in params:
            real = resolve_name(p, spell, what="parameter", where="--param: ",
                                hint="run `aicarousel params` for the list")
            if real in canon:
                raise ParameterValueError(f"--param {canon[real]!r} and {p!r} both name "
                                          f"{real!r}; give it once")
            canon[real] = p
        params = list(dict.fromkeys(list(canon) + [r for r in ranges if r not in canon]))
    if posterior is not None:  # the posterior's parameters are varied (drawn from it)
        from ..calibrate import load_posterior_draws
        pnames = load_posterior_draws(posterior)[0]
        if params is not None:
            params = list(dict.fromkeys(list(params) + list(pnames)))
    problem = load_problem(params, ranges)
    for name, (lo, hi) in zip(problem.names, problem.bounds):  # the one validator's rules
        check_range(name, lo, hi, fx)
    outputs = args.output or (DEFAULT_SENSITIVITY_OUTPUTS if kind == "sensitivity"
                              else DEFAULT_MONTECARLO_OUTPUTS)
    return make_definition(kind, args.method, args.n, args.seed, problem, outputs,
                           scenario=args.scenario,
                           chunk_size=(DEFAULT_SWEEP_CHUNK if args.chunk_size is None
                                       else args.chunk_size), posterior=posterior)


def _out_dir(args, default: str) -> Path:
    from .. import paths
    from ..errors import OutputError

    if args.out is not None and not args.out.strip():
        raise OutputError("--out is empty; give a directory (or leave --out out for "
                          f"results/{default})")
    return Path(args.out) if args.out is not None else paths.RESULTS_DIR / default


def _own_results(out: Path, store: Path) -> tuple[list[Path], list[str]]:
    """Split the entries of ``out`` into a previous sweep's files and foreign names.

    A previous sweep is recognised by its store's manifest; an ``indices.nc``/``bands.nc`` is
    ours only if it carries that store's ``definition_hash``.
    """
    from ..sweep import LOCK_SUFFIX, is_sweep_store, store_status

    h = store_status(store)["definition_hash"] if is_sweep_store(store) else None
    own, foreign = [], []
    for p in sorted(out.iterdir()):
        if p.name == STORE_NAME and h is not None and not p.is_symlink():
            own.append(p)
        elif p.name == STORE_NAME + LOCK_SUFFIX or _OWN_TEMP.match(p.name):
            own.append(p)
        elif p.name in RESULT_FILES and h is not None and _result_hash(p) == h:
            own.append(p)
        else:
            foreign.append(p.name + ("/" if p.is_dir() else ""))
    return own, foreign


def _result_hash(p: Path) -> str | None:
    if p.is_symlink() or not p.is_file():
        return None
    try:
        import netCDF4

        with netCDF4.Dataset(p) as nc:
            return str(getattr(nc, "definition_hash", "")) or None
    except Exception:  # noqa: BLE001 - unreadable: not ours
        return None


def _check_out(out: Path, args, result: str) -> Path:
    """Check --out and the flags against it without writing anything; return the store path."""
    from ..atomic import check_output, check_output_dir
    from ..sweep import SweepError, check_lock, is_sweep_store

    if args.force and args.resume:
        raise SweepError("give --force or --resume, not both")
    check_output_dir(out, "--out")
    store = out / STORE_NAME
    if os.path.lexists(store) and not store.is_dir():
        raise SweepError(f"{store} is a file, not a sweep store; move it or choose another --out")
    check_output(out / result, "result file")
    check_lock(store)  # a running sweep first: its store may not exist yet
    if args.force:
        if out.is_dir():
            _own, foreign = _own_results(out, store)
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                                   if len(foreign) > 5 else "")
                raise SweepError(f"--force replaces only a previous sweep's files, but {out} also "
                                 f"holds {shown}; move them or choose another --out")
    elif store.is_dir() and not is_sweep_store(store):
        raise SweepError(f"{store} is not a sweep store (no manifest); move it or choose "
                         "another --out")
    elif store.exists() and not args.resume:
        raise SweepError(f"{out} already holds a sweep; pass --resume to continue it or --force "
                         "to replace it")
    if args.resume and not store.exists():
        raise SweepError(f"--resume: no sweep store in {out}; run without --resume first")
    return store


def _remove_previous(out: Path, store: Path) -> None:
    """--force: remove a previous sweep's files (checked again under the lock)."""
    from ..sweep import LOCK_SUFFIX, SweepError

    if not out.is_dir():
        return
    own, foreign = _own_results(out, store)
    if foreign:
        raise SweepError(f"--force: {out} now holds {', '.join(foreign[:5])}; nothing was removed")
    for p in own:
        if p.name == STORE_NAME + LOCK_SUFFIX:
            continue  # our own lock, held now
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _run(args, kind: str, subdir: str, result: str, finish) -> int:
    """Validate, prepare the output directory, run (or resume) the sweep, write the result.

    Every argument and output path is checked before the output directory is touched, so a
    bad call never removes earlier results (``--force``) or leaves a half-made store. The
    store's lock is held from the removal of a previous sweep to the last write.
    """
    from ..errors import ParameterValueError
    from ..sweep import check_scheduler_address, lock_store, open_results, run_sweep

    if args.processes < 1:
        raise ParameterValueError(f"--processes must be >= 1, got {args.processes}")
    if args.workers is not None and args.scheduler is not None:
        raise ParameterValueError("give either --workers or --scheduler, not both")
    if args.workers is not None and args.workers < 1:
        raise ParameterValueError(f"--workers must be >= 1, got {args.workers}")
    if args.scheduler is not None:
        check_scheduler_address(args.scheduler)
    d = _definition(args, kind)
    out = _out_dir(args, subdir)
    store = _check_out(out, args, result)
    with lock_store(store):
        if args.force:
            _remove_previous(out, store)
        run_sweep(d, store, resume=args.resume, workers=args.workers, scheduler=args.scheduler,
                  progress=not args.quiet, processes=args.processes)
        return finish(out, *open_results(store))


def _sensitivity(args) -> int:
    return _run(args, "sensitivity", f"sensitivity/{args.method}", "indices.nc",
                lambda *a: _write_indices(args, *a))


def _write_indices(args, out, d, X, Y) -> int:
    from ..sensitivity import analyze

    res = analyze(d.problem, X, Y, d.method, seed=d.seed)
    res.attrs.update(definition_hash=d.hash, model_hash=d.model_hash, n=d.n,
                     n_runs=d.n_runs, scenario=d.scenario or "baseline",
                     posterior=d.posterior or "", ranges=_ranges_note(d))
    write_netcdf(res, out / "indices.nc")
    if not args.quiet:
        key = "mu_star" if d.method == "morris" else "ST"
        for lab in res["output"].values:
            v = res[key].sel(output=lab).values
            order = [i for i in v.argsort()[::-1] if v[i] == v[i]][:5]
            top = ", ".join(f"{res['param'].values[i]} {v[i]:.3g}" for i in order)
            print(f"{lab}: top {key}: {top}")
        print(_ranges_note(d))
        print(f"wrote {out / 'indices.nc'} ({d.n_runs} runs)")
    return 0


def _ranges_note(d) -> str:
    """What the sampled ranges are (in the output's provenance and on stdout)."""
    if d.posterior is None:
        return "ranges: the parameter table's low-high (and --range)"
    path = d.posterior.rpartition("#")[0]
    return ("ranges: the estimated parameters' posterior 5-95% intervals from " + path
            + " (sampled independently; correlations not kept), the others the parameter "
            "table's low-high")


def _montecarlo(args) -> int:
    from ..errors import ParameterValueError

    try:
        pct = [float(x) for x in args.percentiles.split(",")]
    except ValueError:
        raise ParameterValueError(f"--percentiles {args.percentiles!r}: give numbers like "
                                  "5,50,95") from None
    if not pct or any(not 0 <= p <= 100 for p in pct):
        raise ParameterValueError("--percentiles must lie between 0 and 100")
    return _run(args, "montecarlo", "montecarlo", "bands.nc",
                lambda *a: _write_bands(args, pct, *a))


def _write_bands(args, pct, out, d, X, data) -> int:
    import numpy as np
    import xarray as xr

    from ..sensitivity import percentile_bands

    t = data.pop("time")
    ds = xr.Dataset({k: (("run", "time"), v) for k, v in data.items()},
                    coords={"run": np.arange(X.shape[0]), "time": t})
    from ..ensemble import compile_model

    cm = compile_model()
    for k in ds.data_vars:
        var = cm.ir.variables[cm.py_name(k)]
        ds[k].attrs.update(units=var.units or "", description=var.comment or "")
    bands = percentile_bands(ds, pct)
    bands.attrs.update(definition_hash=d.hash, model_hash=d.model_hash, n_runs=d.n_runs,
                       method=d.method, seed=d.seed, scenario=d.scenario or "baseline",
                       posterior=d.posterior or "")
    write_netcdf(bands, out / "bands.nc")
    if not args.quiet:
        print(f"wrote {out / 'bands.nc'} ({d.n_runs} runs)")
    return 0
