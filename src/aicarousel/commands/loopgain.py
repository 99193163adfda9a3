"""``aicarousel loopgain``: gains of the named reinforcing loops and G, from the full model.

``aicarousel loopgain [--model FILE] [--scenario S] [--time T | --along-baseline]
[--loop ID ...] [--output FILE] [--reduced] [--thresholds] [--write-reduced]`` prints each named reinforcing
loop's gain, the open-loop gain G of the reinforcing structure and the stocks' open-loop
residence times at one time of a run (default :data:`aicarousel.loopgain.REFERENCE_TIME`) or
along it, and writes them as a netCDF Dataset (loop x time). ``--reduced`` also prints the
closed forms of the reduced model derived at that time (:mod:`aicarousel.reduce`);
``--write-reduced`` regenerates ``models/core_loop_derived.mdl``.
"""

from __future__ import annotations

import argparse
import sys

from . import (add_model, add_output, add_scenario, check_scenario, custom_model, model_path,
               scenario_params)


def register(subparsers) -> None:
    """Add the ``loopgain`` subcommand."""
    p = subparsers.add_parser(
        "loopgain", help="gains of the named reinforcing loops and G (full model)",
        description="Compute the gain of each named reinforcing loop and the open-loop gain G "
                    "of the reinforcing structure from the full model's link gains (partial "
                    "derivatives of each equation, by sympy) at one time of a run or along "
                    "it; optionally derive the reduced model and its closed forms.")
    add_model(p)
    add_scenario(p)
    p.add_argument("--time", type=float, default=None, metavar="T",
                   help="time of the run at which gains are evaluated and the loop paths "
                        "chosen (default 2028 when inside the run, else mid-run)")
    p.add_argument("--along-baseline", action="store_true",
                   help="also evaluate at every --every time units along the run")
    p.add_argument("--every", type=float, default=None, metavar="YEARS",
                   help="spacing along the run (default SAVEPER)")
    p.add_argument("--loop", action="append", default=None, metavar="ID",
                   help="a loop id of models/named_loops.yaml (repeatable; default every "
                        "reinforcing loop the model has)")
    add_output(p, "write the Dataset (loop x time, with units) to this netCDF file")
    p.add_argument("--reduced", action="store_true",
                   help="print the closed forms of the reduced model derived at --time")
    p.add_argument("--thresholds", action="store_true",
                   help="the G = 1 threshold of each constant in the loops' link gains (state "
                        "held at --time) and of each link gain of the reduced model, each "
                        "checked by full runs at 0.9 and 1.1 times it (a few minutes on the "
                        "carousel)")
    p.add_argument("--write-reduced", action="store_true",
                   help="regenerate models/core_loop_derived.mdl (carousel at the default "
                        "time only)")
    p.set_defaults(func=_loopgain)


def _check(args: argparse.Namespace):
    import math

    from aicarousel.errors import AicarouselError

    if args.time is not None and not math.isfinite(args.time):
        raise AicarouselError(f"--time {args.time}: give a finite time in years")
    if args.every is not None and not args.every > 0:
        raise AicarouselError(f"--every must be a positive number of years, not {args.every}")
    check_scenario(args)
    custom = custom_model(args)
    if args.write_reduced and (custom or args.scenario or args.time is not None or args.loop):
        raise AicarouselError("--write-reduced regenerates models/core_loop_derived.mdl from "
                              "the carousel's baseline at the reference time; drop --model, "
                              "--scenario, --time and --loop")
    if args.output:
        from aicarousel.atomic import check_output
        check_output(args.output, "--output")


def _print_runs(name: str, runs: list[dict]) -> None:
    """One line per full run around a threshold: G, growth rate, verdict and why."""
    for r in runs:
        ok = r["as_predicted"] and r["growth_as_predicted"]
        switched = ", ".join(r["inactive_links"][:2])
        why = ("" if ok else
               f" (the loops are cut in that run: {switched} has zero gain, a MIN/MAX/IF "
               "branch the linearisation holds fixed)"
               if r["inactive_links"] and abs(r["G_reference"]) < 1e-9 else
               " (the run's state moved with the constant"
               + (f"; switched off in that run: {switched}" if switched else "") + ")")
        print(f"    {name} = {r['value']:.4g}: G = {r['G_reference']:.4g}, growth rate "
              f"{r['growth_rate']:.3g}/year; predicted {r['predicted']}: "
              + ("as predicted" if ok else "NOT as predicted") + why)


def _loopgain(args: argparse.Namespace) -> int:
    from aicarousel import loopgain as LG
    from aicarousel import paths
    from aicarousel.atomic import write_netcdf
    from aicarousel.ir import build_ir
    from aicarousel.provenance import provenance

    _check(args)
    model_file = model_path(args)
    ir = build_ir(model_file)
    t_ref = LG.check_time(ir, args.time)
    params = scenario_params(args)
    st = LG.structure(ir, loops=args.loop, time=t_ref, params=params)
    at = LG.loop_gains_at(ir, t_ref, params=params, st=st)
    rn = {n: v.real_name for n, v in ir.variables.items()}
    run = args.scenario or "baseline"
    print(f"{ir.path.name} / {run} at {at.time:g}: link gains are partial derivatives of each "
          "equation; loop gain = link gains x open-loop residence times (dimensionless)")
    for lid, p in st.paths.items():
        print(f"  {lid} {st.names.get(lid, '')}: gain {at.loop_gain[lid]:.4g}  "
              f"({' -> '.join(rn[v] for v in p)})")
        if lid in st.notes:
            print(f"     note: {st.notes[lid]}")
    print(f"  G (open-loop gain of the reinforcing structure, 1 - det(I - A)) = {at.G:.4g}"
          + ("  (> 1: it grows on its own)" if at.G > 1 else
             f"  (< 1: outside money is multiplied by 1/(1 - G) = {1 / (1 - at.G):.3g})"))
    print("  open-loop residence times of the stocks on the loops (years):")
    for s in st.stocks:
        print(f"    {rn[s]}: {at.tau[s]:.4g}"
              + (" (no own outflow: integrator horizon)" if at.horizon[s] else ""))
    results = [at]
    if args.along_baseline:
        results = LG.loop_gains_along(ir, params=params, every=args.every, st=st, progress=True)
        print(f"along the run ({len(results)} times): G from {results[0].G:.4g} at "
              f"{results[0].time:g} to {results[-1].G:.4g} at {results[-1].time:g}; "
              f"largest {max(r.G for r in results):.4g}")
    if args.reduced or args.write_reduced:
        from aicarousel import reduce as RD
        rm = RD.derive(ir, time=t_ref, params=params, st=st)
        cf = RD.closed_forms(rm)
        print(f"reduced model at {rm.reference_time:g}: {len(rm.stocks)} stocks, "
              f"{len(rm.links)} links; G = {cf.G_value:.4g}; {cf.verdict} (largest real "
              f"eigenvalue {max(cf.eigenvalues.real):.4g} per year); Routh-Hurwitz "
              f"determinants all positive: {all(h > 0 for h in cf.hurwitz)}")
        for lid, why in rm.left_out.items():
            print(f"  {lid} left out: {why}")
        print(f"  G in symbols (L_i link gains, a_s own rates, listed below): {cf.G}")
        if cf.equilibrium:
            print("  equilibrium of the reduced model (everything else frozen at the "
                  "reference): " + ", ".join(f"{rn[s]} = {v:.4g}"
                                             for s, v in cf.equilibrium.items()))
        print("  Hurwitz determinants: " + ", ".join(f"{h:.4g}" for h in cf.hurwitz))
        print("  G = 1 threshold of each link gain and own rate, the others held at the "
              "reference (reference value -> threshold):")
        none = []
        for s, thr in cf.thresholds.items():
            kind, x, y = cf.symbols[s]
            what = (f"{rn[x]} -> {rn[y]}" if kind == "link" else f"own rate of {rn[x]}")
            if thr is None:
                none.append(str(s))
                continue
            print(f"    {s} {what}: {cf.values[s]:.4g} -> {thr:.4g}")
        if none:
            print(f"    no threshold of the same sign (G stays on the same side of 1 "
                  f"whatever its value): {', '.join(none)}")
        if args.write_reduced:
            out = RD.write_mdl(rm)
            print(f"wrote {paths.relative_to_root(out)}", file=sys.stderr)
    if args.thresholds:
        rows = LG.constant_thresholds(st, params=params, progress=True)
        print("G = 1 thresholds of the constants in the loops' link gains (state held at "
              f"{at.time:g}; value -> threshold):")
        for r in rows:
            if r["threshold"] is None:
                continue
            print(f"  {r['name']}: {r['value']:.4g} -> {r['threshold']:.4g}"
                  + ("" if r["kind"] == "crossing" else f" ({r['kind']})"))
        none = [r["name"] for r in rows if r["threshold"] is None]
        if none:
            print(f"  G stays on one side of 1 within 1/100 to 100 times (or the range) of: "
                  f"{', '.join(none)}")
        print(f"  full runs around every threshold (x0.9 and x1.1; at {at.time:g} of each run, "
              "same loop paths: G, and the growth rate of the loops' stocks = largest real "
              "eigenvalue of the full Jacobian over them, per year):")
        for r in rows:
            if r["threshold"] is not None:
                _print_runs(r["name"], LG.threshold_runs(st, r["name"], r["threshold"],
                                                         params=params))
        from aicarousel import reduce as RD
        rm = RD.derive(ir, time=t_ref, params=params, st=st)
        print("the reduced model's G = 1 thresholds of link gains, checked by full runs (the "
              "full model's constant that scales the link set so the gain is x0.9 and x1.1 its "
              "threshold):")
        for r in RD.full_model_checks(rm, params=params, progress=True):
            head = f"  {r['symbol']} {r['link']}: {r['value']:.4g} -> {r['threshold']:.4g}"
            if r["constant"] is None:
                print(f"{head}: not checkable by a full run: {r['why']}")
                continue
            print(f"{head}, i.e. {r['constant']} {r['constant_value']:.4g} -> "
                  f"{r['constant_threshold']:.4g}")
            _print_runs(r["constant"], r["runs"])
    if args.output:
        ds = LG.loop_gain_dataset(st, results, provenance(
            model_hash=ir.sha256, params_changed=params, model_file=model_file, scenario=run))
        write_netcdf(ds, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
