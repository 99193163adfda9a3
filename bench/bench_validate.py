"""Benchmark ``aicarousel validate`` on the carousel: wall and CPU time per section, quick and
full. Targets (issue 11): ``--quick`` under 30 s, full under 3 minutes on 2 quiet cores.

Prints the load average beside the times (numbers measured on a busy machine overstate the
wall time); asserts nothing. The model is compiled once before timing (the ensemble and IR
caches are warm, as they are on any second run).

Usage::

    .venv/bin/python bench/bench_validate.py [--model FILE] [--full-only | --quick-only]
"""

from __future__ import annotations

import argparse
import os
import time

from aicarousel import paths
from aicarousel import validate as V


def _run(model, quick: bool) -> None:
    w0, c0 = time.perf_counter(), time.process_time()
    ctx = V._Context(model, quick=quick)
    print(f"  {'setup':<24} wall {time.perf_counter() - w0:6.1f} s  cpu {time.process_time() - c0:6.1f} s")
    for fn in V.SECTIONS:
        w, c = time.perf_counter(), time.process_time()
        s = fn(ctx)
        print(f"  {s.title:<24} wall {time.perf_counter() - w:6.1f} s  "
              f"cpu {time.process_time() - c:6.1f} s  {s.status}")
    print(f"  {'total':<24} wall {time.perf_counter() - w0:6.1f} s  cpu {time.process_time() - c0:6.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(paths.MODEL_FILE))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick-only", action="store_true")
    g.add_argument("--full-only", action="store_true")
    a = ap.parse_args()
    from aicarousel.ensemble import compile_model
    compile_model(a.model)  # warm caches
    print(f"load average before: {os.getloadavg()}")
    for quick in ([True] if a.quick_only else [False] if a.full_only else [True, False]):
        print(f"validate {'--quick' if quick else '(full)'} {a.model}")
        _run(a.model, quick)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
