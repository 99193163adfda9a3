"""Loop dominance of the carousel: Loops That Matter scores, baseline and a stress scenario.

Writes ``results/dominance/<scenario>.nc`` (dims ``loop`` x ``time``; provenance in the
attributes) for the baseline and ``funding_stop``, read by ``figures/fig_loop_dominance.py``.

Usage: ``python analysis/loop_dominance.py [--out DIR] [--scenarios A B ...]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aicarousel import paths
from aicarousel.atomic import write_netcdf
from aicarousel.dominance import loop_dominance
from aicarousel.errors import AicarouselError
from aicarousel.ir import build_ir
from aicarousel.provenance import provenance
from aicarousel.scenarios import to_params

#: Results this script writes.
PRODUCES = ["results/dominance/baseline.nc", "results/dominance/funding_stop.nc"]
SCENARIOS = ["baseline", "funding_stop"]


def main(argv=None) -> int:
    """Run the analysis; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(paths.RESULTS_DIR / "dominance"), metavar="DIR")
    ap.add_argument("--scenarios", nargs="+", default=SCENARIOS, metavar="NAME")
    args = ap.parse_args(argv)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        ir = build_ir(paths.MODEL_FILE)
        for name in args.scenarios:
            params = to_params(name)
            ds = loop_dominance(ir, params)
            ds.attrs.update(provenance(model_hash=ir.sha256, params_changed=params,
                                       model_file=paths.MODEL_FILE, scenario=name))
            write_netcdf(ds, out / f"{name}.nc")
            print(f"wrote {paths.relative_to_root(out / f'{name}.nc')} "
                  f"({ds.attrs['loops_found']} loops)")
    except (AicarouselError, OSError) as exc:
        print(f"loop_dominance: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
