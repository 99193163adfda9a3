"""Benchmark: a posterior over at least 20 parameters of the carousel, run to convergence.

Issue 14's target: a converged posterior (by :func:`aicarousel.calibrate.diagnostics`: chain
at least 50 integrated autocorrelation times long for every parameter, tau estimates stable,
split R-hat over walker groups below 1.05, acceptance in range) over >= 20 parameters in
under 15 minutes on a 2-core machine. The parameters are the ``--n-params`` uncertain
parameters whose range moves the targets most (:func:`aicarousel.calibrate.screen`). Prints the
runs evaluated, runs per second, wall and CPU time, the convergence verdict, the machine and the
load average before and after (numbers taken on a busy machine overstate the time: read them
beside the load).

``--gaussian`` measures the sampler alone (no model runs): the integrated autocorrelation time
of each move on a correlated Gaussian of ``--n-params`` dimensions whose centre and covariance
the walkers' start and the fitted moves' first proposal know only approximately (as the
Laplace approximation knows the posterior). The steps a converged run needs are at least
``50 x`` that tau; each step of the ensemble moves (de, stretch) costs two engine calls (the
red-blue halves; the DE snooker move four), a step of the fitted moves one (of walkers x 16
runs for their importance resampling), plus their warm-up.

Measured (1 December 2026, 2-core VM shared with other jobs; read beside the load): fitted
moves, ``--n-params 20 --max-minutes 24``: 3,025 steps, tau 66-97, 2,661,166 runs in 3,618
engine calls, wall 27.7 min at load 9 -> 5 (CPU 653 s, 0.18 s CPU per call), not converged
(needs 50 x 97 = 4,851 steps). The DE moves before: 2,450 steps in 26.2 min at load 6-9, tau
97-130 (2.4 calls a step), not converged. ``--gaussian``: fitted tau 2.0 (248 calls to the
convergence length) against DE 53 (6,351 calls) and stretch 103 (10,302 calls).

Usage::

    python bench/bench_calibrate.py [--n-params 20] [--walkers 64] [--steps 20000] [--seed 0]
                                    [--moves fitted|de|stretch] [--max-minutes M] [--gaussian]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time


def _machine() -> str:
    try:
        up = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        up = "uptime unavailable"
    return (f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; uptime: {up}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-params", type=int, default=20)
    ap.add_argument("--walkers", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20000, help="most steps (stops when converged)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--moves", choices=["fitted", "de", "stretch"], default=None,
                    help="emcee moves (default: aicarousel.calibrate.DEFAULT_MOVES)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="wall-time budget of the sampling (reported as not converged if hit)")
    ap.add_argument("--out", default=None, help="also write the result files here")
    ap.add_argument("--gaussian", action="store_true",
                    help="sampler alone on a standard normal: tau of each move (no model runs)")
    args = ap.parse_args(argv)
    print("machine:", _machine())  # beside every figure, the sampler's floor too
    if args.gaussian:
        return _gaussian(args)

    from aicarousel import calibrate as cal

    t0 = time.perf_counter()
    c0 = time.process_time()
    effect = cal.make_setup(None).screen_effect
    names = sorted(effect, key=lambda n: -effect[n])[:args.n_params]
    res = cal.calibrate(names, walkers=args.walkers, steps=args.steps, seed=args.seed,
                        progress=True, moves=args.moves,
                        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    d = res.diag
    print(f"parameters: {len(names)}; targets fitted: {len(res.setup.fit_ids)}; walkers "
          f"{res.walkers}; steps {res.steps} (most {args.steps}); moves "
          f"{res.extra.get('moves')}")
    print("tau per parameter: " + ", ".join(f"{n} {t:.0f}" for n, t in zip(names, d["tau"])))
    print(f"runs evaluated: {res.runs:,} in {res.setup.calls:,} engine calls; wall {wall:.0f} s "
          f"({wall / 60:.1f} min), CPU {cpu:.0f} s; {res.runs / wall:,.0f} runs/s (wall), "
          f"{wall / max(1, res.setup.calls):.3f} s per call; load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"convergence: {'CONVERGED' if d['converged'] else 'NOT CONVERGED'}; max tau "
          f"{d['tau'].max():.0f} steps (x{cal.TAU_FACTOR} = {cal.TAU_FACTOR * d['tau'].max():.0f}), "
          f"min ESS {d['ess'].min():.0f}, max split R-hat {d['rhat'].max():.3f}, largest tau "
          f"change over the last {cal.CONVERGENCE_CHECK_STEPS} steps {d['tau_change']:.1%}, "
          f"acceptance {d['acceptance']:.2f}"
          + ("" if d["converged"] else "; " + "; ".join(d["reasons"])))
    print(f"constrained parameters: {int(res.posterior['constrained'].sum())} of {len(names)}")
    print(f"under 15 minutes: {'yes' if wall < 900 and d['converged'] else 'NO'}")
    print("load average after:", os.getloadavg())
    if args.out:
        cal.write_results(res, __import__('pathlib').Path(args.out))
    return 0 if d["converged"] else 1


def _gaussian(args) -> int:
    import emcee
    import numpy as np

    from aicarousel import calibrate as cal

    d, w, steps = args.n_params, args.walkers, min(args.steps, 8000)
    rng = np.random.default_rng(args.seed)
    # a correlated Gaussian (random rotation, variances over two decades) ...
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(np.exp(rng.uniform(np.log(0.05), np.log(5.0), d))) @ q.T
    mu = rng.standard_normal(d)
    prec = np.linalg.inv(cov)

    calls = []

    def log_prob(x):
        calls.append(len(x))
        y = x - mu
        return -0.5 * np.einsum("ij,jk,ik->i", y, prec, y)

    # ... known only approximately, as the Laplace approximation knows the posterior: the
    # centre off by 0.3 sd, the covariance distorted by a random linear map
    a = np.eye(d) + 0.15 * rng.standard_normal((d, d)) / np.sqrt(d)
    cov_approx = a @ cov @ a.T
    mu_approx = mu + 0.3 * np.sqrt(np.diag(cov)) * rng.standard_normal(d)
    start = mu_approx + rng.standard_normal((w, d)) @ np.linalg.cholesky(cov_approx).T
    print(f"{d}-d correlated Gaussian (variances {np.linalg.eigvalsh(cov).min():.2f}-"
          f"{np.linalg.eigvalsh(cov).max():.2f}), {w} walkers, {steps} steps; start and the "
          "fitted moves' first proposal from a distorted approximation")
    for name in cal.MOVES:
        rs = np.random.RandomState(args.seed).get_state()
        lp = log_prob(start)
        coords, warm, proposal = start, 0, None
        if name == "fitted":
            coords, lp, rs, proposal = cal.warmup(log_prob, (mu_approx, cov_approx), start, lp, rs)
            warm = cal.WARMUP_ROUNDS * cal.WARMUP_STEPS
        calls.clear()
        s = emcee.EnsembleSampler(w, d, log_prob, vectorize=True,
                                  moves=cal._moves(name, proposal))
        s.run_mcmc(emcee.State(coords, log_prob=lp, random_state=rs), steps, progress=False)
        tau = emcee.autocorr.integrated_time(s.get_chain(discard=steps // 8), c=5, tol=0,
                                             quiet=True)
        need = cal.TAU_FACTOR * tau.max()
        per_step = len(calls) / steps
        print(f"moves {name}: max tau {tau.max():.1f}, mean tau {tau.mean():.1f}, acceptance "
              f"{s.acceptance_fraction.mean():.2f}; a converged run needs >= {need:.0f} steps "
              f"= {per_step * need + warm:.0f} engine calls ({per_step:.1f} a step, "
              f"{sum(calls) / len(calls):.0f} runs a call"
              + (f", + {warm} warm-up" if warm else "") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
