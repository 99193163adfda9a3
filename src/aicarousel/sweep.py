"""Chunked, resumable sweeps streamed to a Zarr store, in-process or on dask.distributed.

A *sweep* is fully defined by a :class:`SweepDefinition` (model hash, kind, method, N, seed,
parameters and ranges, outputs, scenario, chunk size). Its sample is drawn once from that
definition and written to the store; the runs are split into chunks of ``chunk_size`` runs, one
task per chunk. Each task evaluates its chunk with the vectorised engine, writes its rows into
the Zarr arrays (distinct Zarr chunks per task, so tasks never touch the same file), then
drops a completion marker ``_done/<i>`` (written to a temp file and renamed). When every chunk
is done the manifest is flagged ``complete``.

``resume=True`` reopens an interrupted store, refuses it if its definition differs (naming what
differs), and runs only the chunks without a marker. Chunk boundaries are part of the
definition, so a resumed sweep gives bit-for-bit the same numbers as an uninterrupted one.

Safety: a sweep holds ``<store>.lock`` (JSON: pid, host, start) while it writes; a second
sweep into the same store is refused naming the running one, and a lock left by a killed
process (its pid gone) is taken over. On resume every chunk marked done is checked (its Zarr
chunk files exist and decode); missing or corrupt chunks are recomputed and reported on
stderr, and :func:`open_results` refuses a damaged store instead of returning NaN rows.
Temporary files of a killed sweep (``<store>.creating``, ``_done/.tmp*``) are removed on the
next run.

Execution: ``workers=None, scheduler=None`` runs in this process; ``workers=N`` starts a dask
``LocalCluster`` with N single-threaded worker processes; ``scheduler="tcp://host:port"`` uses an
existing cluster (an unreachable address fails within ``connect_timeout`` seconds).

Store layout (Zarr v3 group; arrays carry ``dimension_names``, so ``xarray.open_zarr`` reads it)::

    attrs: manifest (definition), definition_hash, complete, n_runs, n_chunks, created
    X            (run, param)   the sample
    time         (time,)        saved times (montecarlo)
    y_<k>        (run,)         scalar output k (sensitivity); attrs label, variable, reducer
    v_<k>        (run, time)    time series of variable k (montecarlo); attrs name, units
    _done/<i>                   completion marker of chunk i
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import AicarouselError, ParameterValueError
from .sensitivity import Problem, check_n, check_seed, n_runs, parse_output, sample

#: Environment variable: seconds to sleep after each chunk (testing aid for kill/resume tests).
TASK_DELAY_ENV = "AICAROUSEL_SWEEP_TASK_DELAY"
DEFAULT_SWEEP_CHUNK = 2048

#: Suffix of the lock file beside a store (``sweep.zarr.lock``).
LOCK_SUFFIX = ".lock"
#: Schemes dask.distributed accepts in a scheduler address.
SCHEDULER_SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")

__all__ = ["SweepDefinition", "SweepError", "run_sweep", "open_results", "store_status",
           "lock_store", "check_lock", "is_sweep_store", "check_scheduler_address", "damaged_chunks"]


class SweepError(AicarouselError):
    """A sweep cannot start, resume or reach its cluster (message says why and what to do)."""


@dataclass(frozen=True)
class SweepDefinition:
    """Everything that determines a sweep's numbers.

    Attributes
    ----------
    kind : {"sensitivity", "montecarlo"}
        Scalar outputs per run, or whole time series per run.
    method : {"morris", "sobol", "lhs", "mc"}
    n : int
        Base sample size (Morris trajectories, Sobol base samples, or runs).
    seed : int
    problem : Problem
    outputs : tuple of str
        Output specs (sensitivity) or Vensim variable names (montecarlo).
    model_hash : str
        SHA-256 of the model file.
    scenario : str or None
        Scenario applied to every run (its overrides are fixed, not sampled).
    chunk_size : int
        Runs per task (fixes chunk boundaries, so results are reproducible bit for bit).
    posterior : str or None
        ``"<path>#<sha256>"`` of a ``posterior_draws.nc`` (``aicarousel calibrate``): the
        parameters it holds are drawn from its draws (resampled with the seed) instead of their
        ranges; the hash pins the file, so a changed posterior is a different sweep. In a
        sensitivity sweep (Morris/Sobol need independent inputs) its parameters are instead
        sampled uniformly within their posterior 5-95 % intervals
        (:func:`aicarousel.calibrate.posterior_intervals`), set as their ranges.
    """

    kind: str
    method: str
    n: int
    seed: int
    problem: Problem
    outputs: tuple[str, ...]
    model_hash: str
    scenario: str | None = None
    chunk_size: int = DEFAULT_SWEEP_CHUNK
    posterior: str | None = None

    def to_dict(self) -> dict:
        """JSON-serialisable form (``posterior`` only when set, so older hashes stay)."""
        d = {"kind": self.kind, "method": self.method, "n": int(self.n),
             "seed": int(self.seed), "parameters": list(self.problem.names),
             "ranges": [list(map(float, b)) for b in self.problem.bounds],
             "units": list(self.problem.units), "outputs": list(self.outputs),
             "model_hash": self.model_hash, "scenario": self.scenario,
             "chunk_size": int(self.chunk_size)}
        if self.posterior is not None:
            d["posterior"] = self.posterior
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SweepDefinition":
        """Inverse of :meth:`to_dict`."""
        prob = Problem(tuple(d["parameters"]), tuple(tuple(b) for b in d["ranges"]),
                       tuple(d.get("units", ())))
        return cls(d["kind"], d["method"], int(d["n"]), int(d["seed"]), prob,
                   tuple(d["outputs"]), d["model_hash"], d.get("scenario"),
                   int(d["chunk_size"]), d.get("posterior"))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON of the definition."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    @property
    def n_runs(self) -> int:
        """Total model runs."""
        return n_runs(self.method, self.n, self.problem)

    @property
    def n_chunks(self) -> int:
        """Number of tasks."""
        return -(-self.n_runs // self.chunk_size)


def make_definition(kind: str, method: str, n: int, seed: int, problem: Problem,
                    outputs: Sequence[str], *, scenario: str | None = None,
                    chunk_size: int = DEFAULT_SWEEP_CHUNK,
                    posterior: str | os.PathLike | None = None) -> SweepDefinition:
    """Validate inputs and build a :class:`SweepDefinition` (canonical names, model hash).

    Raises
    ------
    UnknownParameterError, ParameterValueError
        Unknown parameter/output names, bad ranges, N too small for the method.
    """
    from .ensemble import compile_model

    if kind not in ("sensitivity", "montecarlo"):
        raise ParameterValueError(f"sweep kind must be 'sensitivity' or 'montecarlo', not {kind!r}")
    check_n(method, n, problem)
    check_seed(seed)
    if int(chunk_size) < 1:
        raise ParameterValueError(f"chunk size must be >= 1, got {chunk_size}")
    cm = compile_model()
    # canonical parameter names, each range checked by the one validator before any store
    # exists (a range the model refuses would otherwise fill the store with failed chunks)
    from .params import check_range, facts_from_ir
    fx = facts_from_ir(cm.ir)
    names = tuple(check_range(p, lo, hi, fx) for p, (lo, hi) in zip(problem.names,
                                                                      problem.bounds))
    problem = Problem(names, problem.bounds, problem.units)
    if not outputs:
        raise ParameterValueError("no outputs: give at least one --output")
    if kind == "sensitivity":
        outs = tuple(parse_output(o, cm).label for o in outputs)
    else:
        outs = tuple(cm.real_name(cm.py_name(o, what="output")) for o in outputs)
    if len(set(outs)) != len(outs):
        raise ParameterValueError(f"outputs repeat: {list(outs)}")
    if scenario is not None:
        _scenario_params(scenario)  # validate early
    post = None
    if posterior is not None:
        from .calibrate import load_posterior_draws, posterior_intervals
        pnames, draws, sha = load_posterior_draws(posterior)
        missing = [p for p in pnames if p not in problem.names]
        if missing:
            raise ParameterValueError(f"--from-posterior: parameter {missing[0]!r} of the "
                                      "posterior is not varied in this sweep; add it")
        if kind == "sensitivity":  # independent inputs: the posterior's 5-95 % intervals
            iv = posterior_intervals(pnames, draws)
            problem = Problem(problem.names, tuple(iv.get(n, b) for n, b in
                                                   zip(problem.names, problem.bounds)),
                              problem.units)
        p = Path(posterior)
        post = f"{(p / 'posterior_draws.nc') if p.is_dir() else p}#{sha}"
    return SweepDefinition(kind, method, int(n), int(seed), problem, outs, cm.model_hash,
                           scenario, int(chunk_size), post)


def _posterior_columns(d: SweepDefinition, X: np.ndarray) -> np.ndarray:
    """Replace the columns of a posterior's parameters by its draws, resampled with the seed
    (the file must still have the hash the definition recorded)."""
    from .calibrate import load_posterior_draws

    path, _, sha = d.posterior.rpartition("#")
    names, draws, now = load_posterior_draws(path)
    if now != sha:
        raise SweepError(f"{path} changed since this sweep was defined (hash differs); start a "
                         "new sweep")
    rng = np.random.default_rng([int(d.seed), 14])
    rows = draws[rng.integers(0, draws.shape[0], size=X.shape[0])]
    X = X.copy()
    for j, name in enumerate(names):
        X[:, d.problem.names.index(name)] = rows[:, j]
    return X


def _scenario_params(name: str | None) -> dict:
    if name is None:
        return {}
    from .scenarios import to_params
    return to_params(name)


# ----------------------------------------------------------------------------------------------
# store handling
# ----------------------------------------------------------------------------------------------
def _diff(a: dict, b: dict) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            sa, sb = json.dumps(a.get(k)), json.dumps(b.get(k))
            if len(sa) > 60:
                sa = sa[:57] + "..."
            if len(sb) > 60:
                sb = sb[:57] + "..."
            out.append(f"{k} (store {sa}, requested {sb})")
    return out


def _done_dir(store: Path) -> Path:
    return store / "_done"


def _done_chunks(store: Path) -> set[int]:
    d = _done_dir(store)
    if not d.is_dir():
        return set()
    return {int(p.name) for p in d.iterdir() if p.name.isdigit()}


def _mark_done(store: Path, i: int) -> None:
    d = _done_dir(store)
    d.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp")
    os.close(fd)
    os.replace(tmp, d / str(i))


def _clean_temps(store: Path) -> None:
    """Remove what a killed sweep left half-made: ``_done/.tmp*`` and ``<store>.creating``.

    Called with the store's lock held, so no running sweep owns them.
    """
    d = _done_dir(store)
    if d.is_dir():
        for p in d.iterdir():
            if p.name.startswith(".tmp"):
                p.unlink(missing_ok=True)
    creating = store.with_name(store.name + ".creating")
    if creating.is_dir() and not creating.is_symlink():
        shutil.rmtree(creating)


# ----------------------------------------------------------------------------------------------
# lock
# ----------------------------------------------------------------------------------------------
_HELD: dict[str, int] = {}


def _proc_start(pid: int) -> str | None:
    """Start time of a process (clock ticks since boot), to tell a reused pid apart."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _lock_owner_alive(info: dict) -> bool:
    from .atomic import pid_alive

    if info.get("host") != socket.gethostname():
        return True  # another machine: cannot tell, so never steal it
    pid = int(info.get("pid", -1))
    if not pid_alive(pid):
        return False
    start = info.get("start")
    return start is None or _proc_start(pid) in (None, start)


@contextlib.contextmanager
def lock_store(store: str | os.PathLike):
    """Hold ``<store>.lock`` while writing ``store``; re-entrant within one process.

    Raises
    ------
    SweepError
        Another running process holds the lock (message names its pid, host and start).
    """
    store = Path(store)
    lock = store.with_name(store.name + LOCK_SUFFIX)
    key = str(lock.resolve())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield lock
        finally:
            _HELD[key] -= 1
        return
    info = {"pid": os.getpid(), "host": socket.gethostname(), "start": _proc_start(os.getpid()),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join(sys.argv)[:300]}
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            other = _read_lock(lock)
            if other is None:  # being written this instant, or empty after a kill
                time.sleep(0.2)
                other = _read_lock(lock)
                if other is None and time.time() - _mtime(lock) < 5:
                    continue
            if other is not None and _lock_owner_alive(other):
                raise _locked_error(store, lock, other)
            print(f"aicarousel: note: {lock.name} was left by a process that no longer runs "
                  f"(pid {(other or {}).get('pid', '?')}); taking it over", file=sys.stderr)
            lock.unlink(missing_ok=True)
            continue
        except OSError as exc:
            raise SweepError(f"cannot create the lock {lock}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        break
    else:
        raise SweepError(f"cannot take the lock {lock}; another sweep keeps taking it")
    _HELD[key] = 1
    try:
        yield lock
    finally:
        del _HELD[key]
        try:
            if (_read_lock(lock) or {}).get("pid") == os.getpid():
                lock.unlink()
        except OSError:
            pass


def _locked_error(store: Path, lock: Path, other: dict) -> SweepError:
    return SweepError(f"another sweep (pid {other.get('pid')} on {other.get('host')}, since "
                      f"{other.get('since')}) is writing {store}; wait for it to finish or "
                      f"choose another --out (if it is not running, delete {lock})")


def check_lock(store: str | os.PathLike) -> None:
    """Raise :class:`SweepError` if another running process holds the store's lock.

    A read-only look (nothing is created), for commands that check everything before writing.
    """
    store = Path(store)
    lock = store.with_name(store.name + LOCK_SUFFIX)
    if str(lock.resolve()) in _HELD or not lock.exists():
        return
    other = _read_lock(lock)
    if other is not None and _lock_owner_alive(other):
        raise _locked_error(store, lock, other)


def _read_lock(lock: Path) -> dict | None:
    try:
        info = json.loads(lock.read_text())
        return info if isinstance(info, dict) and "pid" in info else None
    except (OSError, ValueError):
        return None


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def is_sweep_store(path: str | os.PathLike) -> bool:
    """True if ``path`` is a Zarr group carrying a sweep manifest."""
    try:
        store_status(path)
    except SweepError:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# damaged chunks
# ----------------------------------------------------------------------------------------------
def _arrays(d: SweepDefinition) -> list[str]:
    prefix = "y_" if d.kind == "sensitivity" else "v_"
    return ["X"] + [f"{prefix}{k}" for k in range(len(d.outputs))]


def damaged_chunks(store: str | os.PathLike, d: SweepDefinition,
                   chunks=None) -> dict[int, list[str]]:
    """Chunks whose Zarr chunk files are missing or do not decode.

    Parameters
    ----------
    store : path
    d : SweepDefinition
    chunks : iterable of int, optional
        Chunks to check (default all).

    Returns
    -------
    dict
        Chunk index -> names of the damaged arrays (empty when all is well).
    """
    import zarr

    store = Path(store)
    g = zarr.open_group(str(store), mode="r")
    bad: dict[int, list[str]] = {}
    for name in _arrays(d):
        try:
            arr = g[name]
        except Exception:  # noqa: BLE001 - a deleted or broken array: every chunk is damaged
            for i in (range(d.n_chunks) if chunks is None else chunks):
                bad.setdefault(i, []).append(name)
            continue
        for i in (range(d.n_chunks) if chunks is None else chunks):
            key = arr.metadata.encode_chunk_key((i,) + (0,) * (arr.ndim - 1))
            s, e = i * d.chunk_size, min(d.n_runs, (i + 1) * d.chunk_size)
            ok = (store / name / key).is_file()
            if ok:
                try:
                    arr[s:e]
                except Exception:  # noqa: BLE001 - truncated or corrupt chunk file
                    ok = False
            if not ok:
                bad.setdefault(i, []).append(name)
    return bad


def _repair(store: Path, d: SweepDefinition, progress: bool) -> None:
    """Check every chunk marked done; unmark damaged ones (rewriting lost sample rows)."""
    import zarr

    done = sorted(_done_chunks(store))
    bad = damaged_chunks(store, d, done)
    if not bad:
        return
    g = zarr.open_group(str(store), mode="r+")
    g.attrs["complete"] = False
    if any("X" in names for names in bad.values()):
        X = sample(d.problem, d.method, d.n, d.seed)
        for i, names in bad.items():
            if "X" in names:
                s, e = i * d.chunk_size, min(d.n_runs, (i + 1) * d.chunk_size)
                g["X"][s:e] = X[s:e]
    for i in bad:
        (_done_dir(store) / str(i)).unlink(missing_ok=True)
    listed = ", ".join(str(i) for i in sorted(bad)[:10]) + (" ..." if len(bad) > 10 else "")
    print(f"aicarousel: {store.name}: {len(bad)} chunk(s) marked done were missing or corrupt "
          f"(chunk {listed}); recomputing them", file=sys.stderr)


def store_status(store: str | os.PathLike) -> dict:
    """Manifest and progress of a store.

    Returns
    -------
    dict
        ``manifest``, ``definition_hash``, ``complete`` (bool), ``done`` (chunks), ``n_chunks``.
    """
    import zarr

    store = Path(store)
    try:
        g = zarr.open_group(str(store), mode="r")
        attrs = dict(g.attrs)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a sweep store"
        raise SweepError(f"{store.name!r} is not a sweep store ({type(exc).__name__}); pass the "
                         "directory a previous sweep wrote with --out") from None
    if "manifest" not in attrs:
        raise SweepError(f"{store.name!r} is not a sweep store (no manifest); pass the directory "
                         "a previous sweep wrote with --out")
    return {"manifest": attrs["manifest"], "definition_hash": attrs.get("definition_hash"),
            "complete": bool(attrs.get("complete")), "done": len(_done_chunks(store)),
            "n_chunks": attrs.get("n_chunks")}


def _create_store(store: Path, d: SweepDefinition) -> None:
    import zarr

    from .ensemble import compile_model, time_grid

    X = sample(d.problem, d.method, d.n, d.seed)
    if d.posterior is not None and d.kind == "montecarlo":
        X = _posterior_columns(d, X)
    tmp = store.with_name(store.name + ".creating")
    if tmp.exists():
        shutil.rmtree(tmp)
    g = zarr.open_group(str(tmp), mode="w")
    cs = d.chunk_size
    # dimension_names make the store readable by xarray.open_zarr
    xa = g.create_array("X", shape=X.shape, chunks=(cs, X.shape[1]), dtype="f8",
                        dimension_names=("run", "param"))
    xa[:] = X
    xa.attrs["params"] = list(d.problem.names)
    if d.kind == "sensitivity":
        for k, label in enumerate(d.outputs):
            a = g.create_array(f"y_{k}", shape=(X.shape[0],), chunks=(cs,), dtype="f8",
                               fill_value=np.nan, dimension_names=("run",))
            spec = parse_output(label)
            a.attrs.update(label=label, variable=spec.variable, reducer=spec.reducer)
    else:
        cm = compile_model()
        ts = cm.ir.time
        t, save = time_grid(float(ts.initial), float(ts.final), float(ts.dt), float(ts.saveper))
        tt = t[save]
        ta = g.create_array("time", shape=tt.shape, chunks=tt.shape, dtype="f8",
                            dimension_names=("time",))
        ta[:] = tt
        for k, name in enumerate(d.outputs):
            a = g.create_array(f"v_{k}", shape=(X.shape[0], tt.size), chunks=(cs, tt.size),
                               dtype="f8", fill_value=np.nan, dimension_names=("run", "time"))
            var = cm.ir.variables[cm.py_name(name)]
            a.attrs.update(name=name, units=var.units or "")
    g.attrs.update(manifest=d.to_dict(), definition_hash=d.hash, complete=False,
                   n_runs=int(X.shape[0]), n_chunks=int(d.n_chunks),
                   created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    os.replace(tmp, store)


def _prepare(store: Path, d: SweepDefinition, resume: bool) -> None:
    _clean_temps(store)
    if store.exists():
        if not resume:
            raise SweepError(f"output store {store.name!r} already exists; pass --resume to "
                             "continue it or choose another --out")
        st = store_status(store)
        diffs = _diff(st["manifest"], d.to_dict())
        if diffs:
            raise SweepError(f"store {store.name!r} was made by a different sweep; differs in: "
                             + "; ".join(diffs) + ". Use the same settings or a new --out")
    else:
        store.parent.mkdir(parents=True, exist_ok=True)
        _create_store(store, d)


# ----------------------------------------------------------------------------------------------
# tasks
# ----------------------------------------------------------------------------------------------
def run_chunk(store: str, definition: dict, i: int, processes: int = 1) -> int:
    """Evaluate chunk ``i`` of a sweep and write it to the store (runs in any process).

    Parameters
    ----------
    store : str
        Path of the Zarr store.
    definition : dict
        :meth:`SweepDefinition.to_dict`.
    i : int
        Chunk index.
    processes : int
        Forked processes evaluating the chunk (in-process sweeps on a multi-core machine).

    Returns
    -------
    int
        ``i``.
    """
    import zarr

    from .ensemble import compile_model
    from .sensitivity import OutputSpec

    d = SweepDefinition.from_dict(definition)
    cm = compile_model()
    if cm.model_hash != d.model_hash:
        raise SweepError("the model file changed since this sweep started (model hash "
                         "differs); start a new sweep")
    g = zarr.open_group(store, mode="r+")
    s, e = i * d.chunk_size, min(d.n_runs, (i + 1) * d.chunk_size)
    X = g["X"][s:e]
    params = dict(_scenario_params(d.scenario))
    params.update({name: X[:, j] for j, name in enumerate(d.problem.names)})
    if d.kind == "sensitivity":
        specs = [parse_output(lab) for lab in d.outputs]
        variables = list(dict.fromkeys(sp.variable for sp in specs))
        t, vals = cm.run_arrays(params, n=e - s, outputs=variables, chunk_size=d.chunk_size,
                                processes=processes)
        by_real = {cm.real_name(k): v for k, v in vals.items()}
        for k, sp in enumerate(specs):
            g[f"y_{k}"][s:e] = OutputSpec.reduce(sp, t, by_real[sp.variable])
    else:
        t, vals = cm.run_arrays(params, n=e - s, outputs=list(d.outputs),
                                chunk_size=d.chunk_size, processes=processes)
        by_real = {cm.real_name(k): v for k, v in vals.items()}
        for k, name in enumerate(d.outputs):
            g[f"v_{k}"][s:e] = by_real[name]
    delay = float(os.environ.get(TASK_DELAY_ENV, "0") or 0)
    if delay > 0:
        time.sleep(delay)
    _mark_done(Path(store), i)
    return i


class _SiblingWriteErrors(logging.Filter):
    """Drops asyncio's records of the failed write's sibling tasks (see :func:`_store_errors`):
    "Task exception was never retrieved" and "Future exception was never retrieved" of an
    OSError, and "Task was destroyed but it is pending" of a zarr task cut off by the exit;
    every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        msg = record.getMessage()
        if isinstance(exc, OSError) and msg.startswith(("Task exception was never retrieved",
                                                        "Future exception was never retrieved")):
            return False
        return not (msg.startswith("Task was destroyed but it is pending") and "zarr" in msg)


def _silence_sibling_write_errors() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _SiblingWriteErrors) for f in log.filters):
        log.addFilter(_SiblingWriteErrors())


@contextlib.contextmanager
def _store_errors(store: Path):
    """A failed write to the store (disk full, ulimit -f, permissions) as one SweepError."""
    from .atomic import _cause

    try:
        yield
    except OSError as exc:
        # zarr writes chunks as concurrent asyncio tasks; the first failure is raised here and
        # the siblings' copies of the same failure are logged by asyncio ("Task exception was
        # never retrieved") whenever they are garbage-collected: this error already says it in
        # one line, so those copies are dropped
        _silence_sibling_write_errors()
        again = ("rerun with --resume (finished chunks are kept)" if store.is_dir()
                 else "run again")
        raise SweepError(f"cannot write sweep store {store}: {_cause(exc, store)}; fix that "
                         f"and {again}") from None


def check_scheduler_address(address: str) -> str:
    """Check the form of a dask scheduler address (``tcp://host:port``) without connecting.

    Raises
    ------
    SweepError
        Naming the address and the expected form.
    """
    form = "give it as tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786"
    text = str(address).strip()
    if text.startswith("inproc://") and len(text) > len("inproc://"):
        return text  # an in-process cluster (tests, notebooks)
    m = re.fullmatch(r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s\[\]]+)"
                     r"(?::(?P<port>[^/\s]*))?/?", text)
    if not m:
        raise SweepError(f"--scheduler {address!r} is not a scheduler address; {form}")
    scheme = m["scheme"] or "tcp"
    if scheme not in SCHEDULER_SCHEMES:
        raise SweepError(f"--scheduler {address!r}: unknown protocol {scheme!r} (known: "
                         f"{', '.join(SCHEDULER_SCHEMES)}); {form}")
    if scheme != "inproc":
        port = m["port"]
        if port is None or port == "":
            raise SweepError(f"--scheduler {address!r} has no port; {form}")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SweepError(f"--scheduler {address!r}: port {port!r} is not a number "
                             f"from 1 to 65535; {form}")
    return text


def _client(workers: int | None, scheduler: str | None, connect_timeout: float):
    from distributed import Client, LocalCluster

    if scheduler:
        check_scheduler_address(scheduler)
        try:
            return Client(scheduler, timeout=f"{connect_timeout}s"), None
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the same to a user
            raise SweepError(f"cannot reach the dask scheduler at {scheduler!r} within "
                             f"{connect_timeout:g} s ({type(exc).__name__}); check the address "
                             "or drop --scheduler to run in-process") from None
    cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    return Client(cluster), cluster


def run_sweep(definition: SweepDefinition, store: str | os.PathLike, *, resume: bool = False,
              workers: int | None = None, scheduler: str | None = None,
              connect_timeout: float = 3.0, progress: bool = True,
              processes: int = 1) -> Path:
    """Run (or continue) a sweep into a Zarr store.

    Parameters
    ----------
    definition : SweepDefinition
    store : path
        Zarr store directory (created if missing).
    resume : bool
        Continue an existing store made by the same definition.
    workers : int, optional
        Start a dask LocalCluster with this many worker processes.
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:port``).
    connect_timeout : float
        Seconds to wait for the scheduler.
    progress : bool
        tqdm bar with ETA over chunks.
    processes : int
        In-process sweeps only: fork this many processes per chunk (same numbers).

    Returns
    -------
    Path
        The store, flagged complete.

    Raises
    ------
    SweepError
        Store exists without ``resume``, store from a different sweep, unreachable scheduler,
        another sweep writing the same store.
    """
    if workers is not None and scheduler is not None:
        raise SweepError("give either --workers or --scheduler, not both")
    if workers is not None and int(workers) < 1:
        raise SweepError(f"--workers must be >= 1, got {workers}")
    if int(processes) < 1:
        raise SweepError(f"--processes must be >= 1, got {processes}")
    if scheduler is not None:
        check_scheduler_address(scheduler)
    store = Path(store)
    from .atomic import check_output_dir
    check_output_dir(store.parent, "sweep output directory")
    if os.path.lexists(store) and not store.is_dir():
        raise SweepError(f"sweep store {store} is a file, not a store directory; choose "
                         "another --out")
    import zarr
    from tqdm.auto import tqdm

    client = cluster = None
    if scheduler is not None:  # fail fast on a bad address, before writing anything
        client, cluster = _client(None, scheduler, connect_timeout)
    try:
        with lock_store(store), _store_errors(store):
            _prepare(store, definition, resume)
            if resume:
                _repair(store, definition, progress)
            todo = [i for i in range(definition.n_chunks) if i not in _done_chunks(store)]
            dd = definition.to_dict()
            bar = tqdm(total=definition.n_chunks, initial=definition.n_chunks - len(todo),
                       desc=f"{definition.method} sweep", unit="chunk", disable=not progress)
            with bar:
                if client is None and workers is None:
                    for i in todo:
                        run_chunk(str(store), dd, i, processes)
                        bar.update(1)
                elif todo:
                    if client is None:
                        client, cluster = _client(workers, None, connect_timeout)
                    from distributed import as_completed
                    futs = [client.submit(run_chunk, str(store.resolve()), dd, i, pure=False)
                            for i in todo]
                    for fut in as_completed(futs):
                        fut.result()
                        bar.update(1)
            missing = [i for i in range(definition.n_chunks) if i not in _done_chunks(store)]
            if missing:
                raise SweepError(f"{len(missing)} chunk(s) did not finish; rerun with --resume")
            g = zarr.open_group(str(store), mode="r+")
            g.attrs["complete"] = True
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return store


def open_results(store: str | os.PathLike, *, allow_incomplete: bool = False):
    """Read a sweep store.

    Parameters
    ----------
    store : path
    allow_incomplete : bool
        Read a store whose sweep has not finished (missing rows are NaN).

    Returns
    -------
    definition : SweepDefinition
    X : numpy.ndarray
        Sample (runs, D).
    data : dict
        Sensitivity: ``{label: (runs,)}``; montecarlo: ``{"time": (T,), name: (runs, T)}``.

    Raises
    ------
    SweepError
        Not a store, incomplete (unless ``allow_incomplete``), or damaged (a chunk file
        missing or corrupt: never read as NaN rows).
    """
    import zarr

    st = store_status(store)
    if not st["complete"] and not allow_incomplete:
        raise SweepError(f"sweep store {Path(store).name!r} is incomplete ({st['done']} of "
                         f"{st['n_chunks']} chunks); finish it with --resume")
    d = SweepDefinition.from_dict(st["manifest"])
    if st["complete"]:
        bad = damaged_chunks(store, d)
        if bad:
            listed = ", ".join(f"{i} ({'/'.join(v)})" for i, v in sorted(bad.items())[:5])
            raise SweepError(f"sweep store {Path(store).name!r} is damaged: {len(bad)} chunk(s) "
                             f"missing or corrupt (chunk {listed}); run the same command with "
                             "--resume to recompute them")
    g = zarr.open_group(str(store), mode="r")
    X = g["X"][:]
    data: dict[str, np.ndarray] = {}
    if d.kind == "sensitivity":
        for k, label in enumerate(d.outputs):
            data[label] = g[f"y_{k}"][:]
    else:
        data["time"] = g["time"][:]
        for k, name in enumerate(d.outputs):
            data[name] = g[f"v_{k}"][:]
    return d, X, data
