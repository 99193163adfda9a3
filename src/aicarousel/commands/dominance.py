"""``aicarousel dominance``: which feedback loops drive the model when (Loops That Matter).

``aicarousel dominance [--model FILE] [--scenario S] [--output FILE] [--window YEARS]``
computes loop scores along one run (:mod:`aicarousel.dominance`), prints the dominant loops per
period and writes the scores as a netCDF Dataset (dims ``loop`` x ``time``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import add_model, add_output, add_scenario, check_scenario, model_path, scenario_params


def register(subparsers) -> None:
    """Add the ``dominance`` subcommand."""
    p = subparsers.add_parser(
        "dominance", help="loop dominance over a run (Loops That Matter loop scores)",
        description="Compute link and loop scores along one run by the Loops That Matter "
                    "method (Schoenberg, Davidsen and Eberlein 2020), print the dominant loops "
                    "per period and optionally write the scores (loop x time) as netCDF.")
    add_model(p)
    add_scenario(p)
    add_output(p, "write the loop scores to this netCDF file (atomically)")
    p.add_argument("--window", type=float, default=None, metavar="YEARS",
                   help="average relative scores over windows of this length before naming "
                        "dominant loops (default: SAVEPER of the model)")
    p.add_argument("--max-loops", type=int, default=None, metavar="N",
                   help="enumerate all loops when there are at most N, else search the "
                        "strongest (default 5000)")
    p.add_argument("--show", type=int, default=10, metavar="N",
                   help="how many loops to list by mean relative score (default 10)")
    p.set_defaults(func=_dominance)


def _check(args: argparse.Namespace):
    from aicarousel.errors import AicarouselError

    if args.window is not None and not args.window > 0:
        raise AicarouselError(f"--window must be a positive number of years, not {args.window}")
    if args.max_loops is not None and args.max_loops < 1:
        raise AicarouselError(f"--max-loops must be at least 1, not {args.max_loops}")
    if args.show < 0:
        raise AicarouselError(f"--show must be 0 or more, not {args.show}")
    check_scenario(args)
    if args.output:
        out = Path(args.output)
        if out.exists() and not out.is_file():
            raise AicarouselError(f"--output {out} exists and is not a regular file; give a "
                                  "file path")
        if not out.parent.is_dir():
            raise AicarouselError(f"--output directory {out.parent} does not exist; create it "
                                  "first")


def _dominance(args: argparse.Namespace) -> int:
    from aicarousel import dominance as D
    from aicarousel.atomic import write_netcdf
    from aicarousel.ir import build_ir
    from aicarousel.provenance import provenance

    _check(args)
    model_file = model_path(args)
    params = scenario_params(args)
    ir = build_ir(model_file)
    ds = D.loop_dominance(ir, params, max_loops=args.max_loops or D.DEFAULT_MAX_LOOPS)
    window = args.window or ir.time.saveper
    ds.attrs.update(provenance(model_hash=ir.sha256, params_changed=params,
                               model_file=model_file, scenario=args.scenario or "baseline",
                               window=window))
    how = ("all loops enumerated" if ds.attrs["enumeration_complete"]
           else "strongest-path search; relative scores over the loops found")
    print(f"{ir.path.name}{' / ' + args.scenario if args.scenario else ''}: "
          f"{ds.attrs['loops_found']} loops scored ({how})")
    for lid in ds["loop"].values[:args.show]:
        r = ds["relative_score"].sel(loop=lid)
        named = str(ds["named"].sel(loop=lid).values)
        print(f"  {lid:>5} {str(ds['polarity'].sel(loop=lid).values)} "
              f"mean |relative score| {float(abs(r).mean()):.3f}"
              f"{' [' + named + ']' if named else ''}  {str(ds['path'].sel(loop=lid).values)}")
    print(f"dominant loops per period (windows of {window:g} time units):")
    for p in D.dominant_periods(D.window_mean(ds, window)):
        print(f"  {p['start']:9.3f} - {p['end']:9.3f}: {', '.join(p['loops']) or '-'}")
    if args.output:
        write_netcdf(ds, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
