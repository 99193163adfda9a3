"""The shared reference models (../shared/test-models) and their expected outputs.

One place for the tests of every engine (IR reference evaluator, symbolic RHS, ensemble) to
find the models and read what Vensim or Stella produced.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aicarousel import paths

TM = paths.TEST_MODELS_DIR

#: Models whose expected output PySD itself does not reproduce (so neither does any engine
#: that follows PySD's parse), with the reason.
#: (The `exponentiation` models were listed here for -2^2 = -(2^2); the pinned PySD gives -4,
#: as Vensim does, and the engines now follow it.)
PYSD_DIFFERS: dict[str, str] = {}

#: Shared models the engines refuse, with the feature the refusal message must name (an
#: UnsupportedFeatureError, or a ModelFileError for files PySD itself cannot parse).
REFUSED = {
    "tests/arithmetics/test_arithmetics.mdl": "subscripts",
    "tests/arithmetics_exp/test_arithmetics_exp.mdl": "subscripts",
    "tests/control_vars/test_control_vars.mdl": "depends on Time",
    "tests/dynamic_final_time/test_dynamic_final_time.mdl": "depends on Time",
    "tests/except/test_except.mdl": "subscripts",
    "tests/except_subranges/test_except_subranges.mdl": "subscripts",
    "tests/multiple_lines_def/test_multiple_lines_def.mdl": "subscripts",
    "tests/power/power.mdl": "subscripts",
    "tests/subrange_merge/test_subrange_merge.mdl": "subscripts",
    "tests/subscript_1d_arrays/test_subscript_1d_arrays.mdl": "subscripts",
    "tests/subscript_2d_arrays/test_subscript_2d_arrays.mdl": "subscripts",
    "tests/subscript_3d_arrays/test_subscript_3d_arrays.mdl": "subscripts",
    "tests/subscript_3d_arrays_lengthwise/test_subscript_3d_arrays_lengthwise.mdl": "subscripts",
    "tests/subscript_3d_arrays_widthwise/test_subscript_3d_arrays_widthwise.mdl": "subscripts",
    "tests/subscript_aggregation/test_subscript_aggregation.mdl": "subscripts",
    "tests/subscript_constant_call/test_subscript_constant_call.mdl": "subscripts",
    "tests/subscript_copy/test_subscript_copy.mdl": "subscripts",
    "tests/subscript_copy/test_subscript_copy2.mdl": "subscripts",
    "tests/subscript_definition/test_subscript_definition.mdl": "subscripts",
    "tests/subscript_element_name/test_subscript_element_name.mdl": "subscripts",
    "tests/subscript_individually_defined_1_of_2d_arrays/"
    "subscript_individually_defined_1_of_2d_arrays.mdl": "subscripts",
    "tests/subscript_individually_defined_1d_arrays/"
    "subscript_individually_defined_1d_arrays.mdl": "subscripts",
    "tests/subscript_individually_defined_stocks/"
    "test_subscript_individually_defined_stocks.mdl": "subscripts",
    "tests/subscript_logicals/test_subscript_logicals.mdl": "subscripts",
    "tests/subscript_mapping_simple/test_subscript_mapping_simple.mdl": "subscripts",
    "tests/subscript_mapping_vensim/test_subscript_mapping_vensim.mdl": "subscripts",
    "tests/subscript_mixed_assembly/test_subscript_mixed_assembly.mdl": "subscripts",
    "tests/subscript_multiples/test_multiple_subscripts.mdl": "subscripts",
    "tests/subscript_numeric_range/test_subscript_numeric_range.mdl": "subscripts",
    "tests/subscript_selection/subscript_selection.mdl": "subscripts",
    "tests/subscript_subranges/test_subscript_subrange.mdl": "subscripts",
    "tests/subscript_subranges_equal/test_subscript_subrange_equal.mdl": "subscripts",
    "tests/subscript_switching/subscript_switching.mdl": "subscripts",
    "tests/subscript_transposition/test_subscript_transposition.mdl": "subscripts",
    "tests/subscript_updimensioning/test_subscript_updimensioning.mdl": "subscripts",
    "tests/subscripted_flows/test_subscripted_flows.mdl": "subscripts",
    "tests/subscripted_if_then_else/test_subscripted_if_then_else.mdl": "subscripts",
    "tests/subscripted_logicals/test_subscripted_logicals.mdl": "subscripts",
    "tests/subscripted_lookups/test_subscripted_lookups.mdl": "subscripts",
    "tests/subscripted_round/test_subscripted_round.mdl": "subscripts",
    "tests/subscripted_trig/test_subscripted_trig.mdl": "subscripts",
    "tests/subscripted_xidz/test_subscripted_xidz.mdl": "subscripts",
    "tests/vector_order/test_vector_order.mdl": "subscripts",
    "tests/vector_select/test_vector_select.mdl": "subscripts",
    "tests/with_lookup/test_with_lookup.mdl": "subscripts",
    "tests/arithmetics_exp/test_arithmetics_exp.xmile": "subscripts",
    "tests/macro_expression/test_macro_expression.xmile": "cannot be parsed",
    "tests/macro_multi_expression/test_macro_multi_expression.xmile": "cannot be parsed",
    "tests/macro_stock/test_macro_stock.xmile": "cannot be parsed",
    "tests/subscript_1d_arrays/test_subscript_1d_arrays.xmile": "cannot be parsed",
    "tests/subscript_constant_call/test_subscript_constant_call.xmile": "cannot be parsed",
    "tests/subscript_individually_defined_1d_arrays/"
    "subscript_individually_defined_1d_arrays.xmile": "subscripts",
    "tests/subscript_mixed_assembly/test_subscript_mixed_assembly.xmile": "cannot be parsed",
    "tests/subscript_multiples/test_multiple_subscripts.xmile": "cannot be parsed",
    "tests/subscript_subranges/test_subscript_subrange.xmile": "cannot be parsed",
    "tests/subscript_subranges_equal/test_subscript_subrange_equal.xmile": "cannot be parsed",
    "tests/subscript_updimensioning/test_subscript_updimensioning.xmile": "cannot be parsed",
    "tests/subscripted_flows/test_subscripted_flows.xmile": "cannot be parsed",
    "tests/subscripted_trig/test_subscripted_trig.xmile": "subscripts",
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


def expected_mismatches(exp: pd.DataFrame, times, values: dict, by_real: dict,
                        rtol: float = 1e-5, atol: float = 1e-5) -> tuple[int, list[str]]:
    """Compare a run with an expected output (rtol = atol = 1e-5, as PySD's tests do).

    ``values`` maps a variable key to its saved values (aligned with ``times``); ``by_real``
    maps lower-case model names to those keys. Returns (points compared, mismatches).
    """
    import numpy as np

    def norm(name):  # XMILE writes names with underscores, the outputs with spaces
        return " ".join(str(name).strip().strip('"').lower().replace("_", " ").split())

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
