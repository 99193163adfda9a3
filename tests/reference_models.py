"""The shared reference models (../shared/test-models) and their expected outputs.

One place for the tests of every engine (IR reference evaluator, symbolic RHS, ensemble) to
find the models and read what Vensim or Stella produced.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aicarousel import paths

TM = paths.TEST_MODELS_DIR

#: Models whose expected output PySD itself does not reproduce (so neither does any engine
#: that follows PySD's parse), with the reason.
#: (The `exponentiation` models were listed here for -2^2 = -(2^2); the pinned PySD gives -4,
#: as Vensim does, and the engines now follow it.)
PYSD_DIFFERS: dict[str, str] = {}

#: Models PySD itself cannot run or check against their expected output (measured with the
#: pinned PySD): they do not count in the engines' coverage (supported / PySD-supported).
PYSD_FAILS: dict[str, str] = {
    **{f"tests/{m}.xmile": "PySD cannot parse XMILE macros" for m in (
        "macro_expression/test_macro_expression",
        "macro_multi_expression/test_macro_multi_expression", "macro_stock/test_macro_stock")},
    **{f"tests/{m}.xmile": "PySD cannot parse these XMILE arrays" for m in (
        "subscript_1d_arrays/test_subscript_1d_arrays",
        "subscript_constant_call/test_subscript_constant_call",
        "subscript_mixed_assembly/test_subscript_mixed_assembly",
        "subscript_multiples/test_multiple_subscripts",
        "subscript_subranges/test_subscript_subrange",
        "subscript_subranges_equal/test_subscript_subrange_equal",
        "subscript_updimensioning/test_subscript_updimensioning",
        "subscripted_flows/test_subscripted_flows")},
}


#: Shared models the engines refuse, with the feature the refusal message must name (an
#: UnsupportedFeatureError, or a ModelFileError for files PySD itself cannot parse).
REFUSED = {
    # PySD runs these (its Time object re-evaluates TIME STEP, SAVEPER and FINAL TIME at every
    # step); the engines integrate on a grid fixed before the run (the ensemble's vectorised
    # loop), so they refuse them naming the feature and pointing to aicarousel.model.run
    "tests/control_vars/test_control_vars.mdl": "depends on Time; .* runs it in PySD",
    "tests/dynamic_final_time/test_dynamic_final_time.mdl": "depends on Time; .* runs it in PySD",
    # PySD's XMILE translator cannot parse these
    **{rel: "cannot be parsed" for rel in PYSD_FAILS},
}


def supported_models() -> list[str]:
    """Shared models the engines claim (every model file not in REFUSED)."""
    return [f for f in model_files() if f not in REFUSED]


def model_files() -> list[str]:
    """Every .mdl and .xmile of the shared models, relative to TM (empty if TM is absent)."""
    if not TM.is_dir():
        return []
    files = []
    for pat in ("tests/*/*.mdl", "tests/*/*.xmile", "samples/*/*.mdl", "samples/*/*.xmile"):
        files += sorted(TM.glob(pat))
    return [f.relative_to(TM).as_posix() for f in files]


def expected_output(model: Path) -> pd.DataFrame | None:
    """Expected output of a test model (rows = time, columns = variable names), or None."""
    d = model.parent
    cands = (["output_stella.csv"] if model.suffix == ".xmile" else []) + ["output.tab", "output.csv"]
    for c in cands:
        p = d / c
        if p.is_file():
            sep = "\t" if p.suffix == ".tab" else ","
            try:
                df = pd.read_csv(p, sep=sep, index_col=0)
            except UnicodeDecodeError:  # some outputs are written in Latin-1 (Vensim on Windows)
                df = pd.read_csv(p, sep=sep, index_col=0, encoding="latin-1")
            try:
                df.index = df.index.astype(float)
            except (ValueError, TypeError):
                df = df.T
                df.index = df.index.astype(float)
            return df
    return None


def column_key(name) -> str:
    """A variable or output-column name as compared: case, spaces and underscores ignored
    (Vensim writes "Var[a1,b2]" with or without spaces, Stella "Var_Name" for "Var Name")."""
    return "".join(str(name).strip().strip('"').replace("_", " ").split()).lower()


def expected_mismatches(exp: pd.DataFrame, times, values: dict, by_real: dict,
                        rtol: float = 1e-5, atol: float = 1e-5) -> tuple[int, list[str]]:
    """Compare a run with an expected output (rtol = atol = 1e-5, as PySD's tests do).

    ``values`` maps a variable key to its saved values (aligned with ``times``); ``by_real``
    maps lower-case model names to those keys. Returns (points compared, mismatches).
    """
    import numpy as np

    norm = column_key  # XMILE writes names with underscores; "Var[a1, b2]" spacing varies

    keys = {norm(k): v for k, v in by_real.items()}
    tt = np.asarray(times, dtype=float)
    checked, bad = 0, []
    for col in exp.columns:
        key = keys.get(norm(col))
        if key is None or key not in values:
            continue
        got_all = np.asarray(values[key], dtype=float)
        for t, val in exp[col].items():
            try:
                val = float(val)
            except (TypeError, ValueError):
                continue
            i = int(np.argmin(np.abs(tt - t)))
            if abs(tt[i] - t) > 1e-9 or np.isnan(val):
                continue
            got = got_all[i]
            if not abs(got - val) <= atol + rtol * abs(val):
                bad.append(f"{col} at t={t}: expected {val}, got {got}")
            checked += 1
    return checked, bad


def assert_matches_expected(expected: pd.DataFrame, times, series, names: dict[str, str]) -> int:
    """Assert an engine's output equals a model's expected output (rel = abs = 1e-5) and that
    something was compared (see :func:`expected_mismatches`); return the number compared."""
    checked, bad = expected_mismatches(expected, times, series, names)
    assert not bad, bad[:5]
    assert checked > 0, "no expected value was compared (names or times match nothing)"
    return checked
