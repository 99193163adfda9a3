"""Stability report: closed forms of the carousel's reduced model, the carousel along its
baseline, the loop lists (ours vs pysimlin) and the stability map grid.

Writes to ``results/stability/``:

* ``core_loop_derived_stability.md`` / ``.tex``: of the reduced model derived from the full
  model (``models/core_loop_derived.mdl``): equilibrium, Jacobian, characteristic polynomial,
  Routh-Hurwitz conditions, G in symbols, the G = 1 threshold and stability bound of each link
  gain and own rate;
* ``ai_carousel_baseline.md`` and ``ai_carousel_baseline.csv``: dominant eigenvalue and named
  loop gains along the carousel's baseline run;
* ``loops.md``: loop counts, named loops and the comparison with pysimlin;
* ``<model>_simlin_loop_importance.nc``: pysimlin's relative loop scores (loop x time) for each
  model, kept beside ours (``results/dominance/``) for comparison;
* ``stability_map.nc``: simulated outcome of the reduced model over two link gains (R3's
  revenue -> desired compute x R2's revenue -> business value) with the sympy G = 1 curve
  (read by ``figures/fig_stability_map.py``).

Usage: ``python analysis/stability_report.py [--out DIR] [--grid N]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from aicarousel import paths
from aicarousel import reduce as RD
from aicarousel import stability as S
from aicarousel import stability_report as R
from aicarousel.atomic import write_netcdf, write_text, write_with
from aicarousel.errors import AicarouselError
from aicarousel.ir import build_ir
from aicarousel.loops import compare_with_simlin, find_loops, match_named_loops
from aicarousel.provenance import provenance

#: Results this script writes (the figure reads the map).
PRODUCES = ["results/stability/stability_map.nc",
            "results/stability/core_loop_derived_stability.md",
            "results/stability/ai_carousel_baseline.md", "results/stability/loops.md"]
#: The carousel's loop list in loops.md: every cycle of at most this many variables (complete
#: and the same in every process; the carousel has more than 200,000 cycles in all).
LENGTH_BOUND = 18
#: Axes of the stability map: a link only on R3 and a link only on R2 (model names), and their
#: ranges as fractions of the reference value (G = 1 crosses the plane there).
MAP_X = "Lab Revenue -> Lab desired compute"
MAP_Y = "Lab Revenue -> Lab Business Value"
MAP_X_RANGE = (0.005, 0.12)
MAP_Y_RANGE = (0.02, 1.2)


def loops_markdown(ir, rep, cmp) -> str:
    """Loop summary of one model plus the pysimlin comparison."""
    n_r = sum(lp.polarity == "R" for lp in rep.loops)
    n_b = sum(lp.polarity == "B" for lp in rep.loops)
    out = [f"## {ir.path.name}", "",
           f"{len(rep.loops)} cycles in the variable graph (all enumerated: "
           f"{'no' if rep.truncated else 'yes'}); at time {rep.time:g}: {n_r} reinforcing, "
           f"{n_b} balancing, {len(rep.loops) - n_r - n_b} inactive (a link with zero gain, "
           "e.g. a saturated lookup or the unused branch of MIN/MAX).", "",
           "| loop | name | cycles | active | R/B active | shortest active cycle |",
           "|---|---|---|---|---|---|"]
    for lid, v in rep.named.items():
        out.append(f"| {lid} | {v['name']} | {v['n_cycles']} | {v['n_active']} | "
                   f"{v.get('n_R', 0)}/{v.get('n_B', 0)} | "
                   f"{' -> '.join(v['shortest']) if v['n_active'] else 'none active'} |")
    stock_sets = len({frozenset(lp.stocks) for lp in rep.loops})
    out += ["", f"Distinct sets of stocks among our cycles: {stock_sets}.", ""]
    out += ["", f"pysimlin ({cmp['simlin_source']}): {cmp['simlin_count']} loops listed out of "
            f"a universe of {cmp['simlin_universe']}; {cmp['common']} are in our list, "
            f"{len(cmp['only_simlin'])} only in pysimlin's, {cmp['only_ours_count']} only in "
            f"ours. Polarity differs on {len(cmp['polarity_differs'])} common loops.", ""]
    out += ["Where the lists differ and why:", "",
            "- Coverage: every loop pysimlin lists is an elementary cycle of our graph "
            "(same variables once its synthetic `<stock>_net_flow` nodes are dropped and its "
            "internal SMOOTH stock is mapped to ours). On large models pysimlin returns no "
            "static list; its Loops That Matter analysis reports a smaller universe and keeps "
            "only the loops that matter (by score) in the run, while we enumerate every "
            "elementary cycle of the dependency graph.",
            "- Polarity: ours is the sign of the product of link gains at one state "
            f"(time {rep.time:g}), so a loop with a momentarily inactive link (a saturated "
            "lookup, the unused branch of MIN/MAX/IF THEN ELSE) is '0'; pysimlin's comes from "
            "its static link analysis and run-time loop scores, and is UNDETERMINED when a "
            "link's sign is not fixed by the equation (e.g. a flow entering a stock through "
            "its net flow).", ""]
    if cmp["polarity_differs"]:
        out += ["| pysimlin id | pysimlin polarity | ours | length |", "|---|---|---|---|"]
        out += [f"| {lid} | {pol} | {mine} | {len(vs)} |"
                for lid, pol, mine, vs in cmp["polarity_differs"][:30]]
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="output directory (default results/stability)")
    ap.add_argument("--grid", type=int, default=41, help="stability map points per axis")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else paths.RESULTS_DIR / "stability"
    try:
        steps = tqdm(total=5, desc="stability report", unit="step")
        core = RD.closed_forms(RD.read_mdl(paths.REDUCED_MODEL_FILE))
        stem = paths.REDUCED_MODEL_FILE.stem
        write_text(out / f"{stem}_stability.md", R.reduced_markdown(core))
        write_text(out / f"{stem}_stability.tex", R.reduced_latex(core))
        steps.update()
        car = build_ir(paths.MODEL_FILE)
        b = S.analyse_along_baseline(car)
        write_text(out / "ai_carousel_baseline.md", R.baseline_markdown(b, car))
        df = pd.DataFrame({"time": b.time, "dominant_real": b.dominant.real,
                           "dominant_imag": b.dominant.imag,
                           "dominant_stock": b.dominant_stock})
        write_with(out / "ai_carousel_baseline.csv", lambda tmp: df.to_csv(tmp, index=False))
        steps.update()
        text = ["# Feedback loops", "",
                "Cycles of each model's variable graph (aicarousel.loops), polarity from the "
                "signs of the link gains at mid-run of the baseline, matched to the named loops "
                "of models/named_loops.yaml, and compared with pysimlin's loop list.", ""]
        for mf in (paths.REDUCED_MODEL_FILE, paths.MODEL_FILE):
            ir = build_ir(mf)
            # the carousel has more cycles than any cap; a capped enumeration would list a
            # subset that depends on the string hash seed, so list every cycle up to the
            # loop-gain analysis's length bound instead (complete, the same in every process)
            rep = find_loops(ir, length_bound=None if mf == paths.REDUCED_MODEL_FILE
                             else LENGTH_BOUND)
            match_named_loops(ir, rep)
            cmp = compare_with_simlin(ir, rep)
            text.append(loops_markdown(ir, rep, cmp))
            if cmp["importance"] is not None:  # pysimlin's loop scores, kept for comparison
                imp = cmp["importance"]
                imp.attrs.update(provenance(model_file=mf, script="analysis/stability_report.py"))
                write_netcdf(imp, out / f"{ir.path.stem}_simlin_loop_importance.nc")
        write_text(out / "loops.md", "\n".join(text) + "\n")
        steps.update()
        x0 = next(v for s_, v in core.values.items() if core.describe(s_) == MAP_X)
        y0 = next(v for s_, v in core.values.items() if core.describe(s_) == MAP_Y)
        ds = RD.stability_map(core, MAP_X, MAP_Y, n=args.grid,
                              xrange=tuple(f * x0 for f in MAP_X_RANGE),
                              yrange=tuple(f * y0 for f in MAP_Y_RANGE))
        ds.attrs.update(provenance(model_file=paths.REDUCED_MODEL_FILE,
                                   script="analysis/stability_report.py"))
        write_netcdf(ds, out / "stability_map.nc")
        steps.update()
        steps.update()
        steps.close()
    except AicarouselError as exc:
        print(f"stability_report: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(R.reduced_plain_words(core)))
    print(f"carousel: {b.equilibrium}; {b.balanced_growth}")
    print(f"wrote {paths.relative_to_root(out)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
