"""Benchmark the carousel's sympy system: ``to_sympy`` and ``lambdify`` (the slow steps of
``aicarousel stability --along-baseline``, of the test fixture ``carousel_system`` and of the
sympy engine in tests/engines.py).

Prints the cores and load average beside the median wall time of several repetitions of
each step. Asserts nothing. Target: the build well under a minute on two quiet cores (it took
270-435 s before MIN/MAX, ABS and Piecewise with large arguments were built as written).

Usage::

    .venv/bin/python bench/bench_symbolic.py [--repeat 3] [--model FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from aicarousel import paths
from aicarousel.ir import build_ir
from aicarousel.symbolic import to_sympy


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per step."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (default 3)")
    ap.add_argument("--model", default=str(paths.MODEL_FILE), metavar="FILE")
    args = ap.parse_args(argv)

    def load() -> str:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())

    print(f"machine: {os.cpu_count()} cores, load average {load()}")
    ir = build_ir(args.model)  # parsed once, as every analysis does (not timed)
    times: dict[str, list[float]] = {"to_sympy": [], "lambdify (rhs)": []}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        system = to_sympy(ir)
        times["to_sympy"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        system.lambdify()
        times["lambdify (rhs)"].append(time.perf_counter() - t0)
    for step, tt in times.items():
        print(f"{step:16s} median {statistics.median(tt):7.2f} s  (min {min(tt):.2f}, "
              f"max {max(tt):.2f}, {len(tt)} runs)")
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
