"""Benchmark: a posterior over at least 20 parameters of the carousel, run to convergence.

Issue 14's target: a converged posterior over >= 20 parameters in under 15 minutes on a 2-core
machine. Converged: for the default sampler, SMC (:func:`aicarousel.calibrate.smc_diagnostics`),
tempering reached the posterior, R-hat across the 4 independent populations below 1.05, every
stage's population ESS >= 200 and every stage's moves decorrelated the particles (correlation
< 0.2), acceptance in range; for ``--method emcee`` (:func:`aicarousel.calibrate.diagnostics`)
the chain at least 50 integrated autocorrelation times long for every parameter, tau estimates
stable, split R-hat over walker groups below 1.05, acceptance in range. The parameters are the ``--n-params`` uncertain
parameters whose range moves the targets most (:func:`aicarousel.calibrate.screen`). Prints the
runs evaluated, runs per second, wall and CPU time, the convergence verdict, the machine and the
load average before and after (numbers taken on a busy machine overstate the time: read them
beside the load).

``--gaussian`` measures the samplers alone (no model runs): the integrated autocorrelation time
of each move on a correlated Gaussian of ``--n-params`` dimensions whose centre and covariance
the walkers' start and the fitted moves' first proposal know only approximately (as the
Laplace approximation knows the posterior). The steps a converged run needs are at least
``50 x`` that tau; each step of the ensemble moves (de, stretch) costs two engine calls (the
red-blue halves; the DE snooker move four), a step of the fitted moves one (of walkers x 16
runs for their importance resampling), plus their warm-up. Then SMC on the same Gaussian
times a wide N(0, 5^2) prior (the exact posterior known): engine calls, R-hat, and the errors of
the particles' mean and covariance.

Measured, SMC (2 December 2026, TIME STEP 1/64 year, ``nice``, 2-core VM shared with other
jobs): ``--n-params 20`` seed 0: CONVERGED, 7 stages, 1,022 moves, 2,050,225 runs in 1,388
engine calls, wall 11.0 min (screening, point estimate, sampling and predictive runs) at load
2.5 -> 5.7, 3,112 runs/s; max R-hat across populations 1.001, 6 of 20 parameters constrained.
Seed 1: CONVERGED, 7 stages, 1,068 moves, 2,145,035 runs in 1,684 calls, 12.5 min at load
3.6 -> 5.1, 2,865 runs/s, R-hat 1.001; its 5 %, 50 % and 95 % points within 0.027 of the
prior's width of seed 0's for every parameter.
The last stages carry the cost (stage 6: 294 moves, stage 7 at beta = 1: 468; the t mixture's
acceptance falls from 0.30 to 0.03 as the ridge sharpens, the random walk does the work).
With at most 400 moves a stage (earlier setting): 8.9 min at load 4.2 -> 3.1, not converged
(stage 7 stopped at 400). ``--gaussian --n-params 20``: SMC 140 calls of 2,000 runs, R-hat
1.002, mean within 0.06 sd, covariance within 0.054 of its largest entry.

Measured, emcee (1 December 2026, 2-core VM shared with other jobs; read beside the load): fitted
moves, ``--n-params 20 --max-minutes 24``: 3,025 steps, tau 66-97, 2,661,166 runs in 3,618
engine calls, wall 27.7 min at load 9 -> 5 (CPU 653 s, 0.18 s CPU per call), not converged
(needs 50 x 97 = 4,851 steps); ``--max-minutes 20`` at load 0.8 -> 1.0 (2 December): 5,525
steps, 4,726,849 runs in 6,041 calls, 21.4 min, not converged, tau 112-355 and still growing
with the chain (walkers stuck for up to 1,411 steps at points of the ridge the fitted proposal
rarely reaches; 50 x 355 = 17,764 steps ~ 68 min). The DE moves before: 2,450 steps in 26.2 min at load 6-9, tau
97-130 (2.4 calls a step), not converged. ``--gaussian``: fitted tau 2.0 (248 calls to the
convergence length) against DE 53 (6,351 calls) and stretch 103 (10,302 calls).

Usage::

    python bench/bench_calibrate.py [--n-params 20] [--walkers 64] [--steps 20000] [--seed 0]
                                    [--method smc|emcee] [--particles N]
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
    ap.add_argument("--method", choices=["smc", "emcee"], default=None,
                    help="sampler (default: aicarousel.calibrate.DEFAULT_METHOD)")
    ap.add_argument("--particles", type=int, default=None,
                    help="SMC particles (default: aicarousel.calibrate.SMC_PARTICLES)")
    ap.add_argument("--moves", choices=["fitted", "de", "stretch"], default=None,
                    help="emcee moves (default: aicarousel.calibrate.DEFAULT_MOVES)")
    ap.add_argument("--max-minutes", type=float, default=None,
                    help="wall-time budget of the sampling (reported as not converged if hit)")
    ap.add_argument("--sampling-step", default=None,
                    help="TIME STEP of the sampler's runs (default: aicarousel.calibrate."
                         "SAMPLING_STEP when the model is finer, then reweighted to the "
                         "model's step; 'model': sample at the model's step)")
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
    method = args.method or cal.DEFAULT_METHOD
    kw = ({"particles": args.particles} if method == "smc" else
          {"walkers": args.walkers, "steps": args.steps, "moves": args.moves})
    res = cal.calibrate(None, max_params=args.n_params, seed=args.seed, progress=True,
                        method=method,
                        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
                        sampling_step=args.sampling_step, **kw)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    d = res.diag
    names = list(res.setup.names)
    print(f"TIME STEP of the model: {cal._step_text(res.setup.model_step)} year; runs by "
          "TIME STEP: " + ", ".join(f"{cal._step_text(k)}: {v:,}"
                                    for k, v in sorted(res.setup.runs_by_step.items())))
    rw = d.get("reweight")
    if rw:
        print(f"sampled at TIME STEP {cal._step_text(rw['sampled_at'])}, reweighted to the "
              f"model's: ESS per population {', '.join(f'{e:.0f}' for e in rw['ess'])} of "
              f"{rw['draws']}; {rw['distinct']} distinct draws; log likelihood change sd "
              f"{rw['dll_sd']:.3f} (min {rw['dll_min']:.2f}, max {rw['dll_max']:.2f})")
    if method == "smc":
        print(f"parameters: {len(names)}; targets fitted: {len(res.setup.fit_ids)}; SMC "
              f"{res.walkers} particles in {d['populations']} populations; {d['stages']} "
              f"tempering stages, {d['moves']} moves")
    else:
        print(f"parameters: {len(names)}; targets fitted: {len(res.setup.fit_ids)}; walkers "
              f"{res.walkers}; steps {res.steps} (most {args.steps}); moves "
              f"{res.extra.get('moves')}")
        print("tau per parameter: " + ", ".join(f"{n} {t:.0f}" for n, t in zip(names, d["tau"])))
    print(f"runs evaluated: {res.runs:,} in {res.setup.calls:,} engine calls; wall {wall:.0f} s "
          f"({wall / 60:.1f} min), CPU {cpu:.0f} s; {res.runs / wall:,.0f} runs/s (wall), "
          f"{wall / max(1, res.setup.calls):.3f} s per call; load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if method == "smc":
        for i, h in enumerate(res.extra.get("history", []), 1):
            print(f"  stage {i}: beta {h['beta']:.4g}, {h['moves']} moves, acceptance "
                  f"{h['acceptance']:.2f} (independence {h['independence_acceptance']:.2f} at "
                  f"share {h['independence_share']:.2f}), correlation left "
                  f"{h['correlation']:.2f} (worst: {names[h['worst_parameter']]}), ESS "
                  f"{min(h['ess']):.0f}")
        print("R-hat across populations per parameter: " + ", ".join(
            f"{n} {r:.3f}" for n, r in zip(names, d["rhat"])))
        print(f"convergence: {'CONVERGED' if d['converged'] else 'NOT CONVERGED'}; max R-hat "
              f"across populations {d['rhat'].max():.3f}, smallest population ESS "
              f"{d['ess_min']:.0f}, last stage's acceptance {d['acceptance']:.2f}"
              + ("" if d["converged"] else "; " + "; ".join(d["reasons"])))
    else:
        print(f"convergence: {'CONVERGED' if d['converged'] else 'NOT CONVERGED'}; max tau "
              f"{d['tau'].max():.0f} steps (x{cal.TAU_FACTOR} = "
              f"{cal.TAU_FACTOR * d['tau'].max():.0f}), min ESS {d['ess'].min():.0f}, max split "
              f"R-hat {d['rhat'].max():.3f}, largest tau change over the last "
              f"{cal.CONVERGENCE_CHECK_STEPS} steps {d['tau_change']:.1%}, acceptance "
              f"{d['acceptance']:.2f}" + ("" if d["converged"] else "; " + "; ".join(d["reasons"])))
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
    # SMC needs a proper prior: N(0, 5^2 I), wide against the Gaussian; the posterior is then
    # the Gaussian x that prior, known exactly
    s0, n = 5.0, cal.SMC_PARTICLES
    post_cov = np.linalg.inv(prec + np.eye(d) / s0 ** 2)
    post_mean = post_cov @ prec @ mu
    calls.clear()
    state = cal.smc_sample(log_prob, lambda x: -0.5 * np.sum(x * x, axis=1) / s0 ** 2,
                           s0 * rng.standard_normal((n, d)), np.random.default_rng(args.seed))
    dg = cal.smc_diagnostics(state, to_unit=lambda z: z)
    x = state["z"]
    sd = np.sqrt(np.diag(post_cov))
    cov_err = np.max(np.abs(np.cov(x, rowvar=False) - post_cov)) / np.max(np.abs(post_cov))
    print(f"method smc: {n} particles, {dg['stages']} stages, {len(calls)} engine calls of "
          f"{n} runs; max R-hat across populations {dg['rhat'].max():.3f}, "
          f"{'CONVERGED' if dg['converged'] else 'NOT CONVERGED ' + '; '.join(dg['reasons'])}; "
          f"largest error of the mean {np.max(np.abs(x.mean(0) - post_mean) / sd):.3f} sd, of "
          f"the covariance {cov_err:.3f} of its largest entry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
