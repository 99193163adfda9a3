"""Benchmark: runs per second of the carousel model, PySD loop vs pysimlin vs the ensemble engine.

Prints, in one run:

* a loop of PySD runs (``aicarousel.model.run``, a few runs);
* pysimlin (Rust engine from PyPI, reads the same .mdl), a loop of runs;
* the vectorised ensemble engine at N = 1, 100 and 10,000 (all parameters of the table varied
  per run, 20 outputs kept in memory);
* N = 100,000 streamed to a Zarr store in chunks (the sweep path, 20 outputs kept), in a
  child process whose peak resident memory is reported;
* the ratios, and the largest relative difference of each engine from PySD on the baseline.

Usage::

    python bench/bench_ensemble.py            # full benchmark (about a minute)
    python bench/bench_ensemble.py --quick    # N = 100,000 replaced by 20,000
    python bench/bench_ensemble.py --workers 2   # also the 100,000 sweep on a LocalCluster
    python bench/bench_ensemble.py --compare 89b7f930   # engine vs an older commit

Numbers depend on machine load; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

#: The 20 outputs kept per run (Vensim names).
OUTPUTS = [
    "Lab Revenue", "Lab Cash", "Lab Compute Online", "Lab Market Value",
    "Lab Equity from Outside Investors", "Lab Equity from Chips", "Contract Backlog",
    "Cloud Cash", "Cloud Debt", "Cloud PPE", "Cloud Installed Compute", "Cloud Market Value",
    "Compute Under Construction", "Chips Cash", "Chips Market Value", "Investor Sentiment",
    "Spot price", "Credit spread", "Lab payments to Cloud", "GPU purchases",
]


def _outputs(cm):
    """The 20 outputs that exist in the model (falls back to stocks if names changed)."""
    names = set(cm.output_names())
    outs = [o for o in OUTPUTS if o in names]
    if len(outs) < 20:
        for n in cm.ir.stocks:
            rn = cm.real_name(n)
            if len(outs) >= 20:
                break
            if rn not in outs and not cm.ir.variables[n].internal:
                outs.append(rn)
    return outs[:20]


#: A typical focused study: three levers varied, every other constant at its value.
FEW_PARAMS = ["AI demand multiplier", "GPU economic life", "Construction time"]


def _sample(n, seed=1, names=None):
    from aicarousel.sensitivity import load_problem, sample

    problem = load_problem(names)
    X = sample(problem, "lhs", max(n, 2), seed=seed)[:n]
    return problem, {name: X[:, i] for i, name in enumerate(problem.names)}


def bench_pysd(n_runs):
    from aicarousel.model import run

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()  # translation (cached) and first import
        t0 = time.perf_counter()
        for i in range(n_runs):
            run(params={"AI demand multiplier": 0.8 + 0.1 * i})
        el = time.perf_counter() - t0
        base = run()
    return n_runs / el, base


def bench_pysimlin(n_runs, base):
    try:
        import simlin
    except ImportError:
        return None, None, "not installed"
    from aicarousel import paths

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = simlin.load(str(paths.MODEL_FILE))
        with m.simulate() as s:  # warm-up and accuracy check on the baseline
            s.run_to_end()
            names = set(s.get_var_names())
            err = 0.0
            step = int(round(float(base["time"][1] - base["time"][0]) / 0.015625))
            for v in base.data_vars:
                py = base[v].attrs.get("py_name")
                if py in names and base[v].ndim == 1:
                    ser = np.asarray(s.get_series(py), float)
                    ref = base[v].values
                    if ser.size == ref.size * step - step + 1:
                        ser = ser[::step]
                    if ser.size == ref.size:
                        scale = np.maximum(np.abs(ref), 1e-9)
                        err = max(err, float(np.max(np.abs(ser - ref) / scale)))
        t0 = time.perf_counter()
        for i in range(n_runs):
            with m.simulate(overrides={"ai_demand_multiplier": 0.8 + 0.001 * i}) as s:
                s.run_to_end()
                for o in ("cloud_debt", "lab_cash"):
                    s.get_series(o)
        el = time.perf_counter() - t0
    return n_runs / el, err, ""


def _cpu_model() -> str:
    """The CPU model name (Linux), printed beside every rate."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown CPU"


def _children_cpu() -> float:
    """CPU seconds of the waited-for child processes (the forked workers) so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_ours(cm, n, repeat, outs, processes=1, names=None, chunk_size=None):
    """Best wall-clock runs/s over ``repeat`` calls; runs per CPU-second (this process and its
    forked workers); and the cores the call kept busy (CPU-seconds / wall-seconds: below the
    number of processes when the machine had no idle core for them)."""
    problem, params = _sample(n, names=names)
    kw = {} if chunk_size is None else {"chunk_size": chunk_size}
    cm.run_arrays(params, outputs=outs, **kw)  # warm-up (code generation)
    best = (np.inf, np.inf)
    for _ in range(repeat):
        t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
        cm.run_arrays(params, outputs=outs, processes=processes, **kw)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0 + _children_cpu() - k0
        best = min(best, (wall, cpu))
    wall, cpu = best
    return n / wall, n / cpu, cpu / wall


def fork_cost(cm, outs, repeat=7) -> float:
    """Seconds a 2-process call costs more than a 1-process one when there is nothing to run
    (N = 2): fork, shared-memory set-up and join."""
    _, params = _sample(2)
    cm.run_arrays(params, outputs=outs, chunk_size=1)  # warm-up
    best = {1: np.inf, 2: np.inf}
    for _ in range(repeat):  # interleaved, so a change of load hits both alike
        for procs in (1, 2):
            t0 = time.perf_counter()
            cm.run_arrays(params, outputs=outs, processes=procs, chunk_size=1)
            best[procs] = min(best[procs], time.perf_counter() - t0)
    return best[2] - best[1]


def _load() -> str:
    """The 1-minute load average, printed beside every rate (``uptime``)."""
    return f"load {os.getloadavg()[0]:.1f}"


def child_sweep(n, store, workers, processes=1):
    """Run the streamed sweep and print JSON with time and peak memory (child process)."""
    from aicarousel.ensemble import compile_model
    from aicarousel.sensitivity import load_problem
    from aicarousel.sweep import make_definition, run_sweep

    cm = compile_model()
    outs = _outputs(cm)
    d = make_definition("montecarlo", "lhs", n, 1, load_problem(), outs, chunk_size=5000)
    t0 = time.perf_counter()
    run_sweep(d, store, workers=workers, progress=False, processes=processes)
    el = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    size = sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file())
    print(json.dumps({"seconds": el, "peak_mb": peak_kb / 1024,
                      "peak_worker_mb": peak_children_kb / 1024, "store_mb": size / 2**20,
                      "outputs": len(outs)}))


def run_child(n, workers=None, processes=1):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", str(n), str(Path(tmp) / "s.zarr")]
        if workers:
            cmd += ["--child-workers", str(workers)]
        cmd += ["--child-processes", str(processes)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        return json.loads(out.stdout.strip().splitlines()[-1])


#: Child of ``--compare``: one engine version (PYTHONPATH) on the shared model and parameters.
_COMPARE_CHILD = r"""
import hashlib, json, os, sys, time
import numpy as np
import aicarousel
from aicarousel.ensemble import compile_model
d = np.load(sys.argv[1] + "/params.npz")
params = {k.replace("__", " "): d[k] for k in d.files}
outs = json.load(open(sys.argv[1] + "/outs.json"))
cm = compile_model(sys.argv[1] + "/model.mdl")
keys = cm._resolve_outputs(outs)
consts, series, _ = cm._normalise_params({k: v[:2] for k, v in params.items()}, None,
                                         np.arange(3.0))
src = cm._program(frozenset(series), keys).source
loop = src[src.index("    while True:"):]
cm.run_arrays(params, outputs=outs)
best = (np.inf, np.inf)
for _ in range(3):
    t0, c0 = time.perf_counter(), time.process_time()
    cm.run_arrays(params, outputs=outs)
    best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
one = {k: v[:1] for k, v in params.items()}
cm.run_arrays(one, outputs=outs)
t0, c0 = time.perf_counter(), time.process_time()
for _ in range(10):
    cm.run_arrays(one, outputs=outs)
w1, c1 = time.perf_counter() - t0, time.process_time() - c0
n = len(next(iter(params.values())))
print(json.dumps({"src": os.path.dirname(aicarousel.__file__), "rate": n / best[0],
                  "cpu_rate": n / best[1], "n1_cpu_ms": c1 / 10 * 1000,
                  "loop_sha": hashlib.sha256(loop.encode()).hexdigest()[:12],
                  "load": os.getloadavg()[0]}))
"""


def compare_revision(rev: str, n: int = 10_000, rounds: int = 3) -> None:
    """This checkout's engine against revision ``rev`` (a temporary git worktree), on this
    checkout's model file and the same parameter sets, interleaved so load hits both alike."""
    import shutil

    from aicarousel import paths

    root = paths.ROOT
    tmp = Path(tempfile.mkdtemp(prefix="aicarousel-bench-"))
    tree = tmp / "tree"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev],
                   check=True, capture_output=True)
    try:
        shutil.copy(paths.MODEL_FILE, tmp / "model.mdl")
        _, params = _sample(n)
        np.savez(tmp / "params.npz", **{k.replace(" ", "__"): v for k, v in params.items()})
        from aicarousel.ensemble import compile_model
        (tmp / "outs.json").write_text(json.dumps(_outputs(compile_model())))
        env = dict(os.environ, AICAROUSEL_CACHE=str(tmp / "cache"))
        res = {"this checkout": [], rev: []}
        for _ in range(rounds):
            for label, path in (("this checkout", str(root / "src")), (rev, str(tree / "src"))):
                out = subprocess.run([sys.executable, "-c", _COMPARE_CHILD, str(tmp)],
                                     env=dict(env, PYTHONPATH=path), capture_output=True,
                                     text=True, check=True)
                res[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"engine of this checkout vs {rev} on the same model file ({n:,} runs, 20 "
              f"outputs, 1 process; median of {rounds} interleaved rounds; "
              f"{_cpu_model()}):")
        for label, rs in res.items():
            med = {k: float(np.median([r[k] for r in rs])) for k in
                   ("rate", "cpu_rate", "n1_cpu_ms", "load")}
            print(f"  {label:<16} {med['rate']:>8,.0f} runs/s  {med['cpu_rate']:>8,.0f} runs "
                  f"per CPU-second  N=1 call {med['n1_cpu_ms']:.0f} CPU-ms  time-step loop "
                  f"{rs[0]['loop_sha']}  (load {med['load']:.1f})")
        same = len({r["loop_sha"] for rs in res.values() for r in rs}) == 1
        print("  generated time-step loop: " + ("identical source in both (per-step cost "
              "unchanged; differences are load or per-call overhead)" if same else
              "DIFFERENT source (the engine changed the carousel's hot loop)"))
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                       check=False, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20,000 instead of 100,000 runs")
    ap.add_argument("--pysd-runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None,
                    help="also run the large sweep on a LocalCluster with this many workers")
    ap.add_argument("--compare", metavar="REV", default=None,
                    help="only compare this checkout's engine with git revision REV (e.g. a "
                         "commit before a change) on the same model and parameters")
    ap.add_argument("--compare-runs", type=int, default=10_000, metavar="N",
                    help="runs per call in --compare (default 10,000)")
    ap.add_argument("--child", nargs=2, metavar=("N", "STORE"), help=argparse.SUPPRESS)
    ap.add_argument("--child-workers", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-processes", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_sweep(int(args.child[0]), args.child[1], args.child_workers, args.child_processes)
        return 0

    if args.compare:
        print(f"machine load before: {os.getloadavg()[0]:.2f} (other work lowers every rate)")
        compare_revision(args.compare, n=args.compare_runs)
        return 0

    from aicarousel.ensemble import compile_model

    print(f"machine: {_cpu_model()}; {os.cpu_count()} cores, {len(os.sched_getaffinity(0))} "
          f"usable by this process; load average {os.getloadavg()[0]:.2f} "
          "(other work on the machine lowers every rate; runs per CPU-second is less "
          "sensitive)")
    blas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    print(f"numpy {np.__version__}; OpenBLAS settings in the environment: "
          f"{blas or 'none'} (OPENBLAS_CORETYPE pins an older kernel and slows numpy)")
    t0 = time.perf_counter()
    cm = compile_model()
    compile_s = time.perf_counter() - t0
    outs = _outputs(cm)
    ts = cm.ir.time
    steps = int(round((ts.final - ts.initial) / ts.dt))
    print(f"model: {len(cm.ir.variables)} variables, {len(cm.ir.stocks)} stocks, {steps} Euler "
          f"steps; IR + compile {compile_s:.2f} s")

    pysd_rate, base = bench_pysd(args.pysd_runs)
    _, ours1 = cm.run_arrays()
    err_ours = 0.0
    for k, v in ours1.items():
        name = cm.real_name(k)
        if name in base.data_vars:
            ref = np.broadcast_to(base[name].values, v[0].shape)
            err_ours = max(err_ours, float(np.max(np.abs(v[0] - ref) /
                                                  np.maximum(np.abs(ref), 1e-9))))
    simlin_rate, err_simlin, note = bench_pysimlin(200, base)

    rows = [("PySD loop", args.pysd_runs, pysd_rate, f"reference ({args.pysd_runs} runs)")]
    if simlin_rate is not None:
        rows.append(("pysimlin loop", 200, simlin_rate, f"max rel. diff from PySD {err_simlin:.1e}"))
    else:
        rows.append(("pysimlin", 0, float("nan"), note))
    for n, rep in ((1, 20), (100, 5), (10_000, 3)):
        rate, cpu_rate, _ = bench_ours(cm, n, rep, outs)
        rows.append((f"ours N={n:,}", n, rate,
                     f"1 process; {cpu_rate:,.0f} runs per CPU-second; 20 outputs in memory; "
                     f"{_load()}" + (f"; max rel. diff from PySD {err_ours:.1e}" if n == 1 else "")))
    rate1, cpu1, _ = bench_ours(cm, 10_000, 3, outs)  # again, just before the 2p row
    rate2, cpu2, cores2 = bench_ours(cm, 10_000, 3, outs, processes=2)
    free = len(os.sched_getaffinity(0)) - os.getloadavg()[0]
    rows.append(("ours N=10,000 (2 processes)", 10_000, rate2,
                 f"forked children, shared memory; identical numbers; {rate2 / 2:,.0f} runs/s "
                 f"per process, {rate2 / rate1:.2f}x one process ({rate1:,.0f} runs/s just "
                 f"before); {cpu2:,.0f} runs per CPU-second (1 process: {cpu1:,.0f}); "
                 f"{cores2:.2f} cores kept busy; {_load()}"
                 + ("" if free >= 1 else f" (about {max(free, 0):.1f} idle cores: a second "
                    "process has no core of its own)")))
    for procs in (1, 2):
        rate3, cpu3, cores3 = bench_ours(cm, 10_000, 3, outs, processes=procs, names=FEW_PARAMS)
        rows.append((f"ours N=10,000 3 params ({procs}p)", 10_000, rate3,
                     f"{len(FEW_PARAMS)} parameters varied, the rest fixed; {cpu3:,.0f} runs "
                     f"per CPU-second; {cores3:.2f} cores busy; {_load()}"))
    fork_s = fork_cost(cm, outs)
    big = 20_000 if args.quick else 100_000
    res = run_child(big)
    rows.append((f"ours N={big:,} streamed", big, big / res["seconds"],
                 f"Zarr, chunks of 5,000; peak RSS {res['peak_mb']:.0f} MB; "
                 f"store {res['store_mb']:.0f} MB"))
    res2 = run_child(big, processes=2)
    rows.append((f"ours N={big:,} streamed (2p)", big, big / res2["seconds"],
                 f"same, each chunk split over 2 forked processes; peak RSS "
                 f"{res2['peak_mb']:.0f} MB (+ {res2['peak_worker_mb']:.0f} MB child)"))
    if args.workers:
        resw = run_child(big, args.workers)
        rows.append((f"ours N={big:,} dask x{args.workers}", big, big / resw["seconds"],
                     f"LocalCluster incl. start-up; peak RSS client {resw['peak_mb']:.0f} MB, "
                     f"largest worker {resw['peak_worker_mb']:.0f} MB"))

    print()
    print("All parameters of the table are varied per run unless noted (the hardest case: "
          "nothing folds into constants).")
    print(f"{'engine':<32}{'runs':>9}{'runs/s':>12}{'x PySD':>10}{'x pysimlin':>12}  notes")
    print("-" * 110)
    for name, n, rate, notes in rows:
        xp = rate / pysd_rate
        xs = rate / simlin_rate if simlin_rate else float("nan")
        rtxt = f"{rate:,.0f}" if rate >= 10 else f"{rate:.3g}"
        print(f"{name:<32}{n:>9,}{rtxt:>12}{xp:>10,.0f}{xs:>12,.2f}  {notes}")
    for label, pick in (("all parameters varied", lambda r: "3 params" not in r[0]),
                        ("3 parameters varied", lambda r: "3 params" in r[0])):
        r10k = max(r[2] for r in rows if r[0].startswith("ours N=10,000") and pick(r))
        print(f"target >= 10,000 runs/s at N=10,000 ({label}): {r10k:,.0f} runs/s "
              f"({'met' if r10k >= 10_000 else 'NOT met'}); >= 1,000x PySD: "
              f"{r10k / pysd_rate:,.0f}x ({'met' if r10k / pysd_rate >= 1000 else 'NOT met'})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    print(f"two processes: {rate2 / 2:,.0f} runs/s per process against {rate1:,.0f} for one "
          f"process alone; a 2-process call costs {fork_s * 1000:.0f} ms more when there is "
          f"nothing to run (fork, shared memory, join"
          + ("; negative: below the noise of a loaded machine" if fork_s < 0 else "")
          + f"); the two kept {cores2:.2f} cores busy and ran {cpu2:,.0f} runs per "
          f"CPU-second against {cpu1:,.0f} for one process (equal: no contention for memory "
          "bandwidth or cache; lower: there is). No gain while 'cores busy' stays well below 2 "
          "means the processes waited for a core (other load), not a fault of the engine. The "
          "ensemble does elementwise numpy only: BLAS threads play no part (OpenBLAS settings "
          "printed above for completeness).")
    print(f"target peak memory < 2 GB for {big:,} runs x 20 outputs: {res['peak_mb']:,.0f} MB "
          f"({'met' if res['peak_mb'] < 2048 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
