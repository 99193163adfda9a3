"""``aicarousel calibrate``: parameters estimated from the calibration targets, with uncertainty.

``aicarousel calibrate [--params NAME ... | --max-params N] [--until DATE] [--out DIR] [--seed N] [--walkers N]
[--method smc|emcee] [--particles N] [--steps N] [--moves fitted|de|stretch]
[--sampling-step STEP]
[--resume | --force] [--record-table] [--set-baseline]
[--point-only [--starts N]]`` runs :func:`aicarousel.calibrate.calibrate` (point estimate,
posterior by sequential Monte Carlo by default or emcee, diagnostics, predictive bands) and
writes the result
files of :func:`aicarousel.calibrate.write_results` into DIR (default ``results/calibration/``), beside the chain store ``chains.npz`` that
``--resume`` continues. ``--set-baseline`` (checked before anything but the chain store is
written) ships the point estimate as the baseline in the model file and the table. Exit status 0 when the chains
converged, 1 (with a warning on stderr; the tables say so too) when not, 2 on bad input (one
line, nothing written). ``--point-only`` prints the weighted least squares point estimate
(:func:`aicarousel.calibrate.point_estimate`) and the fit of every target at it, and writes
nothing: the shipped baseline's estimated values come from it (docs/model.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``calibrate`` subcommand."""
    p = subparsers.add_parser(
        "calibrate", help="estimate parameters from the calibration targets (posterior, "
                          "intervals, out-of-sample checks)",
        description="Weighted least squares point estimate and posterior (SMC or emcee) of the "
                    "uncertain parameters the targets of data/calibration_targets.csv inform "
                    "(priors uniform on the ranges of data/parameters.csv), with convergence "
                    "diagnostics, posterior predictive bands and, with --until, an "
                    "out-of-sample check of the later targets.")
    p.add_argument("--params", nargs="+", action="extend", default=None, metavar="NAME",
                   help="parameters to estimate (quote names with spaces; default: the "
                        "uncertain parameters whose range moves a target by at least "
                        "1 measurement sigma)")
    p.add_argument("--max-params", type=int, default=None, metavar="N",
                   help="without --params: estimate only the N screened parameters that move "
                        "the targets most (the others keep their table values)")
    p.add_argument("--until", default=None, metavar="DATE",
                   help="fit only targets whose period ends on or before DATE (YYYY-MM-DD or a "
                        "decimal year); report the later ones' predictive intervals")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default results/calibration)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--method", choices=["smc", "emcee"], default=None,
                   help="sampler: smc (default: sequential Monte Carlo with adaptive tempering "
                        "from the prior to the posterior in 4 independent populations; one "
                        "engine call per move over all particles; converged when the "
                        "populations agree, R-hat < 1.05) or emcee (ensemble MCMC; "
                        "--walkers, --steps, --moves, --fixed-steps)")
    p.add_argument("--particles", type=int, default=None,
                   help="with --method smc: particles over the 4 populations, a multiple of 4 "
                        "and >= 8 x parameters (default 2000)")
    p.add_argument("--walkers", type=int, default=None,
                   help="with --method emcee: walkers, even and >= 2 x parameters (default "
                        "max(32, 4 x parameters))")
    p.add_argument("--steps", type=int, default=None,
                   help="with --method emcee: most steps per walker (default 5000; sampling "
                        "stops earlier once the "
                        "diagnostics say converged, unless --fixed-steps)")
    p.add_argument("--moves", choices=["fitted", "de", "stretch"], default=None,
                   help="with --method emcee: sampler moves: fitted (default: importance "
                        "resampling from a "
                        "multivariate t fitted to the posterior in a discarded 100-step "
                        "warm-up, plus a random walk of its covariance; one engine call a "
                        "step), de (differential evolution) or stretch (emcee's ensemble "
                        "moves; two engine calls a step)")
    p.add_argument("--fixed-steps", action="store_true",
                   help="always run --steps steps (no early stop)")
    p.add_argument("--sampling-step", default=None, metavar="STEP",
                   help="TIME STEP in years (e.g. 1/64) at which the point estimate's starts "
                        "and the posterior run the model, a whole multiple of the model's; the "
                        "estimate is then polished and the draws importance-reweighted to the "
                        "model's own step, whose effective sample size is reported and must "
                        "keep half of each population (default 1/64 when the model's step is "
                        "finer; 'model' samples at the model's step)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run whose chain store is in --out")
    p.add_argument("--force", action="store_true",
                   help="replace a previous calibration's chain store in --out")
    p.add_argument("--targets", default=None, metavar="FILE",
                   help="targets file (default data/calibration_targets.csv)")
    p.add_argument("--parameters", default=None, metavar="FILE",
                   help="parameter table (default data/parameters.csv)")
    p.add_argument("--record-table", action="store_true",
                   help="write each estimated parameter's posterior 5%%, median and 95%% into "
                        "the parameter table's posterior_* columns (values are not changed)")
    p.add_argument("--set-baseline", action="store_true",
                   help="ship the fit as the baseline: write each estimated parameter's "
                        "weighted-least-squares point estimate (not the posterior median, which "
                        "is no joint best fit when parameters correlate) into the model file's "
                        "constant and the parameter table's value; refused unless the chains "
                        "converged, and with --until")
    p.add_argument("--point-only", action="store_true",
                   help="only the weighted least squares point estimate: print each "
                        "parameter's table value, estimate and range and the fit of every "
                        "target; no posterior, nothing written")
    p.add_argument("--starts", type=int, default=None, metavar="N",
                   help="with --point-only: starting points of the least squares fit (the "
                        "table's values plus N - 1 Latin hypercube points; default 4)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no table")
    p.set_defaults(func=_calibrate)


def _point_only(args: argparse.Namespace, until) -> int:
    """``--point-only``: the WLS point estimate and the fit at it, printed; nothing written."""
    import numpy as np

    from ..calibrate import N_STARTS, make_setup, point_estimate, resolve_sampling_step
    from ..errors import CalibrationError

    starts = N_STARTS if args.starts is None else args.starts
    if starts < 1:
        raise CalibrationError(f"--starts {starts}: give at least 1 starting point")
    setup = make_setup(args.params, targets_file=args.targets,
                       parameters_file=args.parameters, until=until, max_params=args.max_params)
    coarse = resolve_sampling_step(args.sampling_step, setup.model_step)
    pe = point_estimate(setup, seed=args.seed, n_starts=starts, sampling_step=coarse)
    for j, name in enumerate(setup.names):
        lo, hi, v = setup.low[j], setup.high[j], pe["theta"][j]
        edge = " (at a bound)" if min(v - lo, hi - v) <= 1e-6 * (hi - lo) else ""
        print(f"{name:<45} {setup.values[j]:<10.4g} -> {v:<10.4g} [{lo:g}, {hi:g}] "
              f"{setup.units[j]}{edge}")
    model = setup.model_values(pe["theta"][None, :], setup.targets)[0]
    inside = 0
    for k, (tid, r) in enumerate(setup.targets.iterrows()):
        err = model[k] / r["value"] - 1.0 if r["value"] else np.nan
        ok = abs(model[k] - r["value"]) <= r["tolerance"] * abs(r["value"])
        inside += bool(ok)
        fitted = "" if tid in setup.fit_ids else " (held out)"
        print(f"  {tid:<34} data {r['value']:<9.4g} model {model[k]:<9.4g} {err:+.1%} "
              f"tolerance {r['tolerance']:.0%} {'ok' if ok else 'MISS'}{fitted}")
    print(f"cost {pe['cost']:.4g} (sum of squared residuals / 2) at {len(setup.names)} "
          f"parameters, {starts} starts, {pe['nfev']} evaluations"
          + (f" ({pe['nfev_sampling_step']} at TIME STEP {coarse:g}, then polished at the "
             f"model's {setup.model_step:g})" if coarse else "") + f"; {inside} of "
          f"{len(setup.targets)} targets within tolerance")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from .. import paths
    from ..atomic import check_output, check_output_dir
    from ..calibrate import RESULT_FILES, STORE_NAME, parse_until, write_results
    from ..errors import CalibrationError, OutputError
    from ..sensitivity import MAX_SEED

    if args.resume and args.force:
        raise CalibrationError("give --resume or --force, not both")
    if not 0 <= args.seed <= MAX_SEED:
        raise CalibrationError(f"--seed {args.seed}: give a whole number from 0 to {MAX_SEED}")
    from ..calibrate import DEFAULT_METHOD
    if (args.method or DEFAULT_METHOD) == "smc":
        for flag, given in (("--steps", args.steps is not None),
                            ("--fixed-steps", args.fixed_steps)):
            if given:
                raise CalibrationError(f"{flag} applies to --method emcee; SMC runs its "
                                       "tempering stages to the posterior (size: --particles)")
    elif args.steps is None:
        args.steps = 5000
    if args.steps is not None and args.steps < 1:
        raise CalibrationError(f"--steps {args.steps}: give at least 1 step")
    if args.out is not None and not args.out.strip():
        raise OutputError("--out is empty; give a directory (or leave --out out for "
                          "results/calibration)")
    for flag, f in (("--targets", args.targets), ("--parameters", args.parameters)):
        if f is not None and not Path(f).is_file():
            raise CalibrationError(f"{flag} {f}: no such file")
    until = parse_until(args.until) if args.until is not None else None
    if args.set_baseline and until is not None:
        raise CalibrationError("--set-baseline: the fit uses --until; a baseline is fitted to "
                               "every target, drop --until")
    if args.set_baseline and args.point_only:
        raise CalibrationError("--set-baseline needs the posterior run (it is refused unless the chains "
                               "converged); drop --point-only")
    if args.point_only:
        return _point_only(args, until)
    if args.starts is not None:
        raise CalibrationError("--starts applies to --point-only; give both or neither")
    out = Path(args.out) if args.out is not None else paths.RESULTS_DIR / "calibration"
    check_output_dir(out, "--out")
    for name in RESULT_FILES + (STORE_NAME,):
        check_output(out / name, "result file")
    store = out / STORE_NAME
    if store.exists() and not (args.resume or args.force):
        raise CalibrationError(f"{out} already holds a calibration ({STORE_NAME}); pass --resume "
                               "to continue it, --force to replace it, or choose another --out")
    if args.resume and not store.exists():
        raise CalibrationError(f"--resume: no chain store in {out}; run without --resume first")
    if args.force and store.exists():
        from ..calibrate import _load_store
        _load_store(store)  # only ever remove our own chain store
    res = _run(args, until, out, store)
    if args.set_baseline:
        from ..calibrate import baseline_values
        baseline_values(res)  # refused (one line) before any result or table is written
    files = write_results(res, out)
    if args.record_table:
        from ..calibrate import record_table
        files.append(record_table(res, args.parameters))
    if args.set_baseline:
        files += _set_baseline(res, args)
    d = res.diag
    if not args.quiet:
        post = res.posterior
        for name, r in post.iterrows():
            tag = "constrained" if r["constrained"] else "prior"
            print(f"{name:<40} median {r['median']:<10.4g} 90% [{r['p5']:.4g}, {r['p95']:.4g}] "
                  f"width ratio {r['width_ratio']:.2f} ({tag}) ESS {r['ess']:.0f}")
        if len(res.correlations):
            top = res.correlations.iloc[0]
            print(f"{len(res.correlations)} strongly correlated pairs; strongest "
                  f"{top['parameter_1']} / {top['parameter_2']} r = {top['correlation']:+.2f}")
        held = res.table[~res.table["fitted"]]
        for tid, r in held.iterrows():
            print(f"held out {tid}: data {r['data']:.4g}, 90% predictive [{r['pred_p5']:.4g}, "
                  f"{r['pred_p95']:.4g}] {'inside' if r['inside_90'] else 'OUTSIDE'}")
        if res.coverage is not None:
            print(f"out-of-sample coverage of the 90% intervals: {res.coverage:.0%} "
                  f"({int(held['inside_90'].sum())}/{len(held)})")
        if d.get("method") == "smc":
            how = (f"SMC {res.walkers} particles in {d['populations']} populations, "
                   f"{d['stages']} tempering stages, {d['moves']} moves, last acceptance "
                   f"{d['acceptance']:.2f}, smallest population ESS {d['ess_min']:.0f}, max "
                   f"R-hat across populations {d['rhat'].max():.3f}")
        else:
            how = (f"{res.walkers} walkers x {res.steps} steps, burn {d['burn']}, thin "
                   f"{d['thin']}, acceptance {d['acceptance']:.2f}, max tau "
                   f"{d['tau'].max():.0f}")
        from ..calibrate import _step_text as _step
        rw = d.get("reweight")
        if rw:
            print(f"sampled at TIME STEP {_step(rw['sampled_at'])} year, reweighted to the "
                  f"model's {_step(rw['model_step'])}: ESS per population "
                  + ", ".join(f"{e:.0f}" for e in rw["ess"]) + f" of {rw['draws']}, "
                  f"{rw['distinct']} distinct draws kept, log likelihood change sd "
                  f"{rw['dll_sd']:.3f} (min {rw['dll_min']:.2f}, max {rw['dll_max']:.2f})")
        print(f"{len(res.setup.names)} parameters, {len(res.setup.fit_ids)} targets fitted, "
              f"{how}; {res.runs} runs ("
              + ", ".join(f"{v} at TIME STEP {_step(k)}"
                          for k, v in sorted(res.setup.runs_by_step.items()))
              + f") in {res.setup.calls} engine calls, "
              f"{res.seconds:.0f} s "
              f"({res.runs / max(res.seconds, 1e-9):.0f} runs/s)")
        print("wrote " + ", ".join(str(f) for f in files))
    if not d["converged"]:
        print("aicarousel: WARNING: the chains did not converge: " + "; ".join(d["reasons"])
              + " (flagged in posterior.csv)", file=sys.stderr)
        return 1
    return 0


def _set_baseline(res, args) -> list[Path]:
    """--set-baseline: the point estimate into the model file and the table (refused, one
    line, when the chains did not converge)."""
    from ..calibrate import set_baseline

    return set_baseline(res, args.parameters)


def _run(args, until, out: Path, store: Path):
    from ..calibrate import calibrate

    # --force: the first save of the new run replaces the old store (atomically, after every
    # input was checked), so a refused run leaves the previous calibration in place
    return calibrate(args.params, until=until, walkers=args.walkers, steps=args.steps,
                     seed=args.seed, store=store, resume=args.resume,
                     progress=not args.quiet, targets_file=args.targets,
                     parameters_file=args.parameters, stop_when_converged=not args.fixed_steps,
                     moves=args.moves, method=args.method, particles=args.particles,
                     sampling_step=args.sampling_step, max_params=args.max_params)
