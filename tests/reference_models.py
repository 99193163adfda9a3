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
            try:
                df = pd.read_csv(p, sep="\t" if p.suffix == ".tab" else ",", index_col=0)
            except UnicodeDecodeError:  # Vensim writes its .tab in the system code page
                df = pd.read_csv(p, sep="\t" if p.suffix == ".tab" else ",", index_col=0,
                                 encoding="latin-1")
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


def assert_matches_expected(expected: pd.DataFrame, times, series, names: dict[str, str]) -> int:
    """Assert an engine's output equals a model's expected output (rel = abs = 1e-5).

    Parameters
    ----------
    expected : DataFrame
        From :func:`expected_output` (rows = time, columns = Vensim names).
    times : array
        The engine's output times.
    series : mapping
        Engine key -> values at ``times`` (1-D).
    names : dict
        :func:`column_key` of the Vensim name -> engine key.

    Returns
    -------
    int
        Number of values compared; the assertion fails when it is zero, so a model whose
        names or times match nothing cannot pass.
    """
    tt = np.asarray(times, dtype=float)
    checked = 0
    for col in expected.columns:
        key = names.get(column_key(col))
        if key is None or key not in series:
            continue
        values = np.asarray(series[key])
        for t, val in expected[col].astype(float).items():
            i = int(np.argmin(np.abs(tt - t)))
            if abs(tt[i] - t) > 1e-9 or np.isnan(val):  # not a saved step / no expected value
                continue
            assert values[i] == pytest.approx(val, rel=1e-5, abs=1e-5), (col, t)
            checked += 1
    assert checked > 0, "no expected value was compared (names or times match nothing)"
    return checked
