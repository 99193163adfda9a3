"""What matters most? Morris screening, Sobol indices and Monte Carlo bands of the carousel.

Steps (all seeded, modest N so ``make run`` stays fast; the ensemble engine does the runs):

1. Morris screening of every uncertain parameter (role ``uncertain``, with a range) in
   ``data/parameters.csv`` on the outputs in :data:`OUTPUTS` -> ``results/sensitivity/morris.nc``.
2. Sobol S1/ST (with confidence intervals) of the :data:`N_SOBOL_PARAMS` parameters with the
   largest normalised Morris mu* -> ``results/sensitivity/sobol.nc``.
3. Latin hypercube Monte Carlo over every uncertain parameter, percentile bands over time of
   :data:`BAND_VARIABLES` -> ``results/sensitivity/montecarlo.nc``.

Every file is written to a temp file and renamed, with provenance attrs (git commit, model hash,
seed, N). Usage: ``python analysis/sensitivity.py [--seed 0] [--morris-n 20] [--sobol-n 512]
[--mc-n 2000]``; larger N for a paper figure, e.g. ``--sobol-n 4096`` (about 50,000 runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


from aicarousel import paths
from aicarousel.atomic import write_netcdf
from aicarousel.errors import AicarouselError

#: Scalar outputs analysed (see aicarousel.sensitivity for the reducer syntax).
OUTPUTS = ["peak(Cloud Debt)", "min(Lab Cash)", "final(Lab Market Value)",
           "final(Lab Revenue)", "cross(Lab Revenue, 50)"]
#: Variables shown as Monte Carlo bands over time.
BAND_VARIABLES = ["Lab Revenue", "Lab Cash", "Cloud Debt", "Lab Market Value",
                  "Cloud Market Value", "Cloud Installed Compute"]
PERCENTILES = (5, 25, 50, 75, 95)
N_SOBOL_PARAMS = 10
#: Results this script writes (read by the figures).
PRODUCES = ["results/sensitivity/morris.nc", "results/sensitivity/sobol.nc",
            "results/sensitivity/montecarlo.nc"]


def _attrs(cm, problem, method, n, n_runs, seed, seconds):
    from aicarousel.provenance import provenance

    prov = provenance(model_hash=cm.model_hash, seed=seed, model_file=paths.MODEL_FILE,
                      method=method, n=n, n_runs=n_runs, engine="aicarousel.ensemble")
    return {**prov, "method": method, "n": n, "n_runs": n_runs,
            "seed": seed, "model_hash": cm.model_hash, "seconds": round(seconds, 3),
            "ranges": json.dumps(dict(zip(problem.names, map(list, problem.bounds))))}


def _units(cm, labels):
    """Unit of each output label (the variable's unit, or Year for threshold crossings)."""
    from aicarousel.sensitivity import REDUCERS, parse_output

    out = []
    for lab in labels:
        spec = parse_output(lab, cm)
        unit = REDUCERS[spec.reducer][2] or cm.ir.variables[cm.py_name(spec.variable)].units
        out.append(unit or "")
    return out


def morris_step(cm, seed, n):
    from aicarousel.sensitivity import analyze, evaluate, load_problem, sample

    problem = load_problem(model=cm)
    t0 = time.perf_counter()
    X = sample(problem, "morris", n, seed=seed)
    Y = evaluate(problem, X, OUTPUTS)
    res = analyze(problem, X, Y, "morris", seed=seed)
    res = res.assign_coords(unit=("output", _units(cm, list(res["output"].values))))
    res.attrs.update(_attrs(cm, problem, "morris", n, X.shape[0], seed, time.perf_counter() - t0))
    return problem, res


def sobol_step(cm, morris, seed, n):
    from aicarousel.sensitivity import analyze, evaluate, load_problem, sample

    ms = morris["mu_star"]
    norm = (ms / ms.max("param")).fillna(0).max("output")  # most influential on any output
    top = [str(p) for p in norm.sortby(norm, ascending=False)["param"].values[:N_SOBOL_PARAMS]]
    problem = load_problem(top, model=cm)
    t0 = time.perf_counter()
    X = sample(problem, "sobol", n, seed=seed)
    Y = evaluate(problem, X, OUTPUTS)
    res = analyze(problem, X, Y, "sobol", seed=seed)
    res.attrs.update(_attrs(cm, problem, "sobol", n, X.shape[0], seed, time.perf_counter() - t0))
    return res


def montecarlo_step(cm, seed, n):
    from aicarousel.sensitivity import evaluate_series, load_problem, percentile_bands, sample

    problem = load_problem(model=cm)
    t0 = time.perf_counter()
    X = sample(problem, "lhs", n, seed=seed)
    ds = evaluate_series(problem, X, BAND_VARIABLES)
    bands = percentile_bands(ds.drop_vars("sample"), PERCENTILES)
    base = cm.run(outputs=BAND_VARIABLES).isel(run=0)
    for v in BAND_VARIABLES:
        bands[f"{v} (baseline)"] = base[v].reset_coords(drop=True)
    bands.attrs.update(_attrs(cm, problem, "lhs", n, n, seed, time.perf_counter() - t0))
    return bands


def main(argv: list[str] | None = None) -> int:
    """Write the three result files; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--morris-n", type=int, default=20, help="Morris trajectories")
    ap.add_argument("--sobol-n", type=int, default=512, help="Sobol base samples (power of 2)")
    ap.add_argument("--mc-n", type=int, default=2000, help="Monte Carlo (LHS) runs")
    args = ap.parse_args(argv)
    try:
        from aicarousel.ensemble import compile_model

        cm = compile_model()
        out = paths.RESULTS_DIR / "sensitivity"
        problem, morris = morris_step(cm, args.seed, args.morris_n)
        sobol = sobol_step(cm, morris, args.seed, args.sobol_n)
        bands = montecarlo_step(cm, args.seed, args.mc_n)
        write_netcdf(morris, out / "morris.nc")
        write_netcdf(sobol, out / "sobol.nc")
        write_netcdf(bands, out / "montecarlo.nc")
    except AicarouselError as exc:
        print(f"analysis/sensitivity.py: error: {exc}", file=sys.stderr)
        return 2
    for name, ds in (("morris", morris), ("sobol", sobol), ("montecarlo", bands)):
        print(f"wrote results/sensitivity/{name}.nc: {ds.attrs['n_runs']} runs in "
              f"{ds.attrs['seconds']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
