"""Benchmark the carousel model through PySD: translation, load and single-run times.

Prints times in seconds (median of several repetitions); asserts nothing. Translation is
timed into a temporary cache directory so the project's cache is not disturbed.

Usage::

    .venv/bin/python bench/bench_pysd.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from tqdm import tqdm

from aicarousel import paths
from aicarousel import model as model_mod


def _timeit(fn, repeat: int, desc: str) -> list[float]:
    out = []
    for _ in tqdm(range(repeat), desc=desc, leave=False):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a small table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="repetitions per measurement (default 7)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    pysd = model_mod._pysd()

    with tempfile.TemporaryDirectory() as tmp:
        def translate():
            d = Path(tempfile.mkdtemp(dir=tmp))
            model_mod._translate(paths.MODEL_FILE, d / "m")
        t_translate = _timeit(translate, max(3, args.repeat // 2), "translate")

    py = model_mod.translated_path()
    t_load = _timeit(lambda: pysd.load(str(py)), args.repeat, "pysd.load")
    t_aload = _timeit(model_mod.load, args.repeat, "aicarousel load")
    m = pysd.load(str(py))
    t_raw = _timeit(lambda: m.run(reload=True), args.repeat, "pysd run")
    t_run = _timeit(model_mod.run, args.repeat, "aicarousel run")

    rows = [("translate .mdl -> .py (PySD)", t_translate), ("pysd.load cached .py", t_load),
            ("aicarousel.model.load (hash + load)", t_aload), ("PySD model.run (one run)", t_raw),
            ("aicarousel.model.run (-> Dataset)", t_run)]
    print(f"model {paths.relative_to_root(paths.MODEL_FILE)}, pysd {pysd.__version__}")
    print(f"{'step':<38}{'median s':>10}{'min s':>10}{'n':>4}")
    for name, ts in rows:
        print(f"{name:<38}{statistics.median(ts):>10.3f}{min(ts):>10.3f}{len(ts):>4}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
