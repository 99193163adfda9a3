"""How many shared test models the engines reproduce, against what PySD reproduces.

For every model of ``../shared/test-models`` (tests/ and samples/, .mdl and .xmile) this runs
PySD, and, if the model IR accepts the model, the IR's reference evaluator and the ensemble,
and compares each with the expected output (rtol = atol = 1e-5, as PySD's own tests do).
Prints one line per model (the refusal reason for the models the engines do not claim) and
the counts: supported / PySD-supported / total.

Usage::

    .venv/bin/python analysis/engine_coverage.py [--quiet]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from aicarousel import paths

sys.path.insert(0, str(paths.ROOT / "tests"))
from reference_models import TM, expected_mismatches, expected_output, model_files  # noqa: E402


def pysd_status(model: Path, exp) -> str:
    """'ok', 'differs: ...' or 'error: ...' for PySD on one model."""
    import pysd

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = Path(tmp) / model.name
        shutil.copytree(model.parent, tmp, dirs_exist_ok=True)
        try:
            m = pysd.read_vensim(str(src)) if model.suffix == ".mdl" else \
                pysd.read_xmile(str(src))
            df = m.run()
        except Exception as exc:  # noqa: BLE001 - any PySD failure is reported
            return f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
    cols = {str(c).lower(): c for c in df.columns}
    values = {k: df[c].values for k, c in cols.items()}
    n, bad = expected_mismatches(exp, df.index.values, values, {k: k for k in cols})
    if n == 0:
        return "error: nothing compared"
    return "ok" if not bad else f"differs: {bad[0]}"


def engine_status(model: Path, exp) -> str:
    """'ok', 'refused: <reason>' or 'differs: ...' for the IR and the ensemble."""
    from aicarousel.ensemble import CompiledModel
    from aicarousel.errors import AicarouselError
    from aicarousel.ir import build_ir, simulate

    try:
        ir = build_ir(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = simulate(ir)
            t, v = CompiledModel(ir).run_arrays()
    except AicarouselError as exc:
        return f"refused: {exc}"
    by_real = {k.lower(): n for k, n in ir.by_real_name().items()}
    n1, bad1 = expected_mismatches(exp, out["time"], out, by_real)
    n2, bad2 = expected_mismatches(exp, t, {k: a[0] for k, a in v.items()}, by_real)
    if n1 == 0 or n2 == 0:
        return "differs: nothing compared"
    bad = bad1 + bad2
    return "ok" if not bad else f"differs: {bad[0]}"


def main(argv: list[str]) -> int:
    if not TM.is_dir():
        print(f"shared test models not found at {TM}", file=sys.stderr)
        return 2
    quiet = "--quiet" in argv
    total = pysd_ok = ours = ours_of_pysd = 0
    for rel in model_files():
        model = TM / rel
        exp = expected_output(model)
        if exp is None:
            continue
        total += 1
        p = pysd_status(model, exp)
        e = engine_status(model, exp)
        pysd_ok += p == "ok"
        ours += e == "ok"
        ours_of_pysd += e == "ok" and p == "ok"
        if not quiet:
            print(f"{rel}\n    PySD: {p[:150]}\n    engines: {e[:150]}")
    print(f"engines reproduce {ours_of_pysd} of the {pysd_ok} shared test models PySD reproduces "
          f"({total} with an expected output; engines reproduce {ours} in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
