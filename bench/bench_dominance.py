"""Benchmark loop dominance (Loops That Matter) on the carousel's baseline against pysimlin.

Prints the machine (CPU model, cores, load average) and, for ours and pysimlin's
``Model.analyze`` on the same model file, the median wall time of several repetitions, the
number of loops found, and how closely the relative loop scores of the loops both find agree.
Asserts nothing. Target (issue: loop dominance): under 10 s for the carousel's baseline on two
quiet cores.

Usage::

    .venv/bin/python bench/bench_dominance.py [--repeat 3] [--model FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

from aicarousel import paths
from aicarousel.dominance import loop_dominance
from aicarousel.ir import build_ir


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a small table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--model", default=str(paths.MODEL_FILE), metavar="FILE")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    import simlin

    print(f"machine: {_cpu()}, {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ir = build_ir(args.model)  # parse once, as every analysis does (not timed)
    ours, theirs = [], []
    ds = an = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ds = loop_dominance(ir)
        ours.append(time.perf_counter() - t0)
        m = simlin.load(args.model)
        t0 = time.perf_counter()
        run = m.run()
        an = list(run.loops) or list(m.analyze(timeout=120).loops)
        theirs.append(time.perf_counter() - t0)
    from aicarousel.dominance import compare_with_simlin
    c = compare_with_simlin(ir)
    worst = max(c["max_abs_diff"].values())
    print(f"model: {Path(args.model).name}")
    print(f"{'engine':<12}{'median s':>10}{'min s':>8}{'loops':>8}")
    print(f"{'aicarousel':<12}{statistics.median(ours):>10.2f}{min(ours):>8.2f}"
          f"{ds.attrs['loops_found']:>8}")
    print(f"{'pysimlin':<12}{statistics.median(theirs):>10.2f}{min(theirs):>8.2f}{len(an):>8}")
    print(f"ratio aicarousel/pysimlin (median): {statistics.median(ours) / statistics.median(theirs):.1f}")
    print(f"pysimlin's {c['common']} loops scored by both over the same loop set: largest "
          f"|relative score difference| {worst:.3g} ({len(c['unmapped'])} not mappable). Over "
          "each tool's own loop set the relative scores differ, since each is a share of the "
          "loops that tool found.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
