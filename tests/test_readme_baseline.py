"""The README's baseline table is the model's baseline, not a number typed once.

Each row of the table under "### The baseline" names a model variable (``ROWS``); the test runs
the baseline with the IR engine and checks every cell against the value at 1 January of the
column's year, rounded as written. ``python tests/test_readme_baseline.py`` prints the table
to paste after a deliberate model change.
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from aicarousel import paths

#: README row label -> (model variable, scale applied to the value, decimals shown).
ROWS = {
    "Lab revenue ($B/yr)": ("Lab Revenue", 1.0, 0),
    "Lab compute (GW)": ("Lab Compute Online", 1.0, 2),
    "of it at Cloud (GW)": ("Lab Compute at Cloud", 1.0, 2),
    "Lab cash ($B)": ("Lab Cash", 1.0, 0),
    "Lab commitments ($B)": ("Lab total commitments", 1.0, 0),
    "Lab value ($B)": ("Lab Market Value", 1.0, 0),
    "Cloud installed (GW)": ("Cloud Installed Compute", 1.0, 2),
    "Cloud capex ($B/yr)": ("Cloud capex", 1.0, 0),
    "Cloud debt ($B)": ("Cloud Debt", 1.0, 0),
    "Cloud value ($B)": ("Cloud Market Value", 1.0, 0),
    "credit spread (bp)": ("Credit spread", 1e4, 0),
    "Cloud AI gross margin": ("Cloud AI gross margin", 1.0, 2),
    "Chips revenue ($B/yr)": ("Chips revenue", 1.0, 0),
    "Chips' stake in Lab ($B)": ("Lab Equity from Chips", 1.0, 0),
}
YEARS = [2024, 2025, 2026, 2027, 2028, 2029, 2030, 2032, 2035]


def baseline_rows() -> dict[str, list[str]]:
    """The table's cells from a baseline run, formatted as the README writes them."""
    from aicarousel.ir import build_ir, simulate

    ir = build_ir(paths.MODEL_FILE)
    out = simulate(ir)
    t = np.asarray(out["time"])
    rows = {}
    for label, (var, scale, dec) in ROWS.items():
        y = np.asarray(out[ir.resolve(var)]) * scale
        rows[label] = [f"{y[int(np.argmin(np.abs(t - yr)))]:.{dec}f}" for yr in YEARS]
    return rows


def _readme_table() -> dict[str, list[str]]:
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("### The baseline", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] in ROWS:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def model_rows():
    return baseline_rows()


def test_readme_baseline_years():
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    header = text.split("### The baseline", 1)[1].split("\n\n", 2)[1].splitlines()[0]
    assert [int(x) for x in re.findall(r"\d{4}", header)] == YEARS


def test_readme_baseline_table_is_the_models(model_rows):
    shown = _readme_table()
    assert set(shown) == set(ROWS), set(ROWS) ^ set(shown)
    for label, cells in shown.items():
        # a cell is the model's value rounded as written ("-0.03" and "-0" both allowed)
        want = model_rows[label]
        assert [float(c) for c in cells] == pytest.approx([float(w) for w in want], abs=1e-9), (
            label, cells, want)


if __name__ == "__main__":
    rows = baseline_rows()
    print("| | " + " | ".join(map(str, YEARS)) + " |")
    print("|---" * (len(YEARS) + 1) + "|")
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")
    sys.exit(0)
