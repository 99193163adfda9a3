"""The parameter table data/parameters.csv and the model agree.

The model file is the source of truth for values; when it changes, run
``python -m aicarousel.params --sync-values`` and review the ranges.
"""

import math

import pytest

from aicarousel.params import POSTERIOR_COLUMNS, TABLE_COLUMNS, check_table, model_constants, read_table


@pytest.fixture(scope="module")
def table():
    return read_table()


@pytest.fixture(scope="module")
def consts():
    return model_constants()


def test_columns(table):
    cols = list(table.reset_index().columns)
    assert cols[:len(TABLE_COLUMNS)] == TABLE_COLUMNS
    assert cols[len(TABLE_COLUMNS):] in ([], POSTERIOR_COLUMNS)  # aicarousel calibrate --record-table


def test_same_names(table, consts):
    assert sorted(set(consts.index) - set(table.index)) == [], "constants missing from the table"
    assert sorted(set(table.index) - set(consts.index)) == [], "table rows that are not constants"


def test_same_values_and_units(table, consts):
    bad = []
    for name, c in consts.iterrows():
        v = float(table.at[name, "value"])
        if not math.isclose(v, c["value"], rel_tol=1e-9, abs_tol=1e-12):
            bad.append((name, v, c["value"]))
        assert table.at[name, "unit"] == c["unit"], name
    assert bad == [], "run `python -m aicarousel.params --sync-values`"


def test_ranges_bracket_values(table):
    lo, hi, v = table["low"].astype(float), table["high"].astype(float), table["value"].astype(float)
    assert lo.notna().all() and hi.notna().all()
    assert (lo <= v).all(), list(table.index[lo > v])
    assert (v <= hi).all(), list(table.index[v > hi])
    assert (lo < hi).all(), list(table.index[lo >= hi])


def test_ranges_inside_model_limits(table, consts):
    j = table.join(consts[["min", "max"]])
    assert not (j["low"] < j["min"]).any(), list(j.index[j["low"] < j["min"]])
    assert not (j["high"] > j["max"]).any(), list(j.index[j["high"] > j["max"]])


def test_roles_are_known(table):
    from aicarousel.params import ROLES

    bad = table.index[~table["role"].isin(ROLES)]
    assert list(bad) == [], f"role must be one of {ROLES}"
    # switches and shocks are levers, not uncertainties a Monte Carlo would sample
    for name in ("Outside funding availability", "Outside credit availability",
                 "Vendor financing switch", "Vendor financing cap", "Credit spread shock"):
        assert table.at[name, "role"] == "lever", name


def test_sources_and_dates_filled(table):
    for col in ("source", "range_basis", "date"):
        empty = table.index[table[col].str.strip().isin(["", "TODO"])]
        assert list(empty) == [], f"{col} empty for {list(empty)}"


def test_check_table_reports_nothing():
    assert check_table() == []


def test_check_table_detects_drift(tmp_path, table):
    t = table.copy()
    name = t.index[0]
    t.at[name, "value"] = float(t.at[name, "value"]) * 1.5 + 1
    t = t.drop(index=t.index[1])
    p = tmp_path / "p.csv"
    t.reset_index()[TABLE_COLUMNS].to_csv(p, index=False)
    problems = check_table(path=p)
    assert any("missing from the table" in s for s in problems)
    assert any(name in s and "!=" in s for s in problems)
