"""``aicarousel stability`` and ``aicarousel loops``: symbolic stability analysis and loops.

``aicarousel stability [--model FILE] [--report DIR]`` prints the equilibrium and stability
conditions in plain words and writes a Markdown and LaTeX report: by default of the carousel's
reduced model ``models/core_loop_derived.mdl`` (generated from the full model by
``aicarousel loopgain --write-reduced``; closed forms from :func:`aicarousel.reduce.closed_forms`),
or of any small autonomous model given with ``--model``; ``--along-baseline`` analyses a large
non-autonomous model (the carousel) numerically along its baseline run instead.

``aicarousel loops [--model FILE]`` lists the feedback loops with polarity and gain, and the
named loops (R1-R3, B1-B4) they match.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_model, model_path


def register(subparsers) -> None:
    """Add the ``stability`` and ``loops`` subcommands."""
    p = subparsers.add_parser(
        "stability", help="equilibrium, eigenvalues, loop gain and thresholds (sympy)",
        description="Derive the sympy system from a model file and print its equilibrium, "
                    "eigenvalues, Routh-Hurwitz conditions, loop gains and the parameter "
                    "values at which the reinforcing loops take over (G = 1).")
    add_model(p, "the carousel's reduced model models/core_loop_derived.mdl, or the carousel "
                 "with --along-baseline")
    p.add_argument("--report", default=None, metavar="DIR",
                   help="write <model>_stability.md and .tex (or <model>_baseline.md) to DIR")
    p.add_argument("--along-baseline", action="store_true",
                   help="numerical analysis along the baseline run (for models without an "
                        "equilibrium, e.g. the carousel)")
    p.set_defaults(func=_stability)

    q = subparsers.add_parser(
        "loops", help="list feedback loops with polarity and gain",
        description="List every feedback loop of a model (cycles of its variable graph) with "
                    "polarity and gain at a baseline time, and match the named loops of "
                    "models/named_loops.yaml.")
    add_model(q)
    q.add_argument("--time", type=float, default=None,
                   help="time at which polarity and gains are evaluated (default mid-run)")
    q.add_argument("--max-loops", type=int, default=None,
                   help="stop after this many loops (default 200000)")
    q.add_argument("--show", type=int, default=20,
                   help="how many of the loops (shortest first) to print (default 20)")
    q.add_argument("--simlin", action="store_true",
                   help="also compare with pysimlin's loop list")
    q.set_defaults(func=_loops)


def _stability(args: argparse.Namespace) -> int:
    from aicarousel import paths
    from aicarousel import stability as S
    from aicarousel import stability_report as R
    from aicarousel.atomic import write_text
    from aicarousel.ir import build_ir

    if args.report:  # before any analysis: a file, an unwritable place
        from ..atomic import check_output_dir
        check_output_dir(args.report, "--report directory")
    if args.along_baseline:
        ir = build_ir(model_path(args))
        b = S.analyse_along_baseline(ir, progress=True)
        text = R.baseline_markdown(b, ir)
        print(f"{ir.path.name}: {b.equilibrium}.")
        print(f"{b.balanced_growth}.")
        d = b.dominant
        print(f"dominant eigenvalue along the baseline: from {R.fmt(complex(d[0]))} at "
              f"{b.time[0]:g} to {R.fmt(complex(d[-1]))} at {b.time[-1]:g} (per time unit)")
        if args.report:
            out = Path(args.report) / f"{ir.path.stem}_baseline.md"
            write_text(out, text)
            print(f"wrote {paths.relative_to_root(out)}")
        return 0
    model = model_path(args, paths.REDUCED_MODEL_FILE)
    from aicarousel import reduce as RD
    if RD.is_derived(model):  # the generated reduced model: closed forms from reduce
        res = RD.closed_forms(RD.read_mdl(model))
        words, markdown, latex = R.reduced_plain_words, R.reduced_markdown, R.reduced_latex
    else:  # any small autonomous model: closed forms from its sympy system
        res = S.analyse_closed_form(build_ir(model))
        words, markdown, latex = R.plain_words, R.report_markdown, R.report_latex
    for line in words(res):
        print(line)
    if args.report:
        d = Path(args.report)
        md, tex = d / f"{model.stem}_stability.md", d / f"{model.stem}_stability.tex"
        write_text(md, markdown(res))
        write_text(tex, latex(res))
        print(f"wrote {paths.relative_to_root(md)} and {paths.relative_to_root(tex)}")
    return 0


def _check_loops_args(args: argparse.Namespace) -> None:
    """Numbers of ``aicarousel loops`` (errors, never silent clamps)."""
    import math

    from aicarousel.errors import ParameterValueError

    if args.time is not None and not math.isfinite(args.time):
        raise ParameterValueError(f"--time {args.time}: give a finite time in years")
    if args.max_loops is not None and args.max_loops < 1:
        raise ParameterValueError(f"--max-loops {args.max_loops}: give at least 1")
    if args.show < 0:
        raise ParameterValueError(f"--show {args.show}: give 0 or more loops to print")


def _loops(args: argparse.Namespace) -> int:
    from aicarousel.errors import ParameterValueError
    from aicarousel.ir import build_ir
    from aicarousel.loops import DEFAULT_MAX_LOOPS, compare_with_simlin, find_loops, \
        match_named_loops

    _check_loops_args(args)
    ir = build_ir(model_path(args))
    if args.time is not None and not ir.time.initial <= args.time <= ir.time.final:
        raise ParameterValueError(
            f"--time {args.time:g} lies outside the run of {ir.path.name} "
            f"({ir.time.initial:g}-{ir.time.final:g}); give a time inside it")
    rep = find_loops(ir, time=args.time, max_loops=args.max_loops or DEFAULT_MAX_LOOPS)
    n_r = sum(lp.polarity == "R" for lp in rep.loops)
    n_b = sum(lp.polarity == "B" for lp in rep.loops)
    n_0 = len(rep.loops) - n_r - n_b
    print(f"{ir.path.name}: {len(rep.loops)} feedback loops"
          + (" (enumeration stopped at --max-loops; there are more)" if rep.truncated else "")
          + f"; at time {rep.time:g}: {n_r} reinforcing, {n_b} balancing, {n_0} inactive")
    rn = {n: v.real_name for n, v in ir.variables.items()}
    for lp in rep.loops[:args.show]:
        g = "-" if lp.gain is None else f"{lp.gain:.4g}"
        print(f"  {lp.polarity}  gain {g:>10}  {' -> '.join(rn[v] for v in lp.variables)}")
    try:
        named = match_named_loops(ir, rep)
    except FileNotFoundError:
        named = {}
    if named:
        print("named loops:")
        for lid, v in named.items():
            if v["missing"]:
                print(f"  {lid} {v['name']}: key variables missing from the model: "
                      f"{', '.join(v['missing'])}")
                continue
            state = ("inactive at this time" if not v["n_active"] else
                     f"shortest active loop is {v['polarity']}"
                     + ("" if v["polarity_ok"] else f" (expected {v['expected']})"))
            print(f"  {lid} {v['name']}: {v['n_cycles']} loops, {v['n_active']} active; "
                  f"{state}: {' -> '.join(v['shortest'])}")
    if args.simlin:
        c = compare_with_simlin(ir, rep)
        print(f"pysimlin: {c['simlin_count']} loops listed ({c['simlin_source']}; universe "
              f"{c['simlin_universe']}); {c['common']} of them are in our list, "
              f"{len(c['only_simlin'])} only in pysimlin's; polarity differs on "
              f"{len(c['polarity_differs'])}")
        imp = c["importance"]
        if imp is not None:
            mean = abs(imp["importance"]).mean("time")
            top = mean.sortby(mean, ascending=False)["loop"].values[:args.show]
            print(f"pysimlin's loop importance (mean |relative loop score| over the run; "
                  f"'aicarousel dominance' gives ours):")
            for lid in top:
                print(f"  {lid:>6} {float(mean.sel(loop=lid)):.3f}  "
                      f"{str(imp['path'].sel(loop=lid).values)}")
    return 0
