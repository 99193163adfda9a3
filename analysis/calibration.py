"""Calibration table: the baseline against the brief's 2024-2025 anchor points.

Writes ``results/calibration.csv`` (model vs data, relative error, tolerance, pass) and
``results/calibration.tex`` (booktabs table for a paper, with a provenance comment line).

Usage::

    .venv/bin/python analysis/calibration.py
"""

from __future__ import annotations

import sys

from aicarousel import paths
from aicarousel.atomic import write_text
from aicarousel.calibration import calibration_run, compare, to_latex


def main() -> int:
    """Run the baseline, compare with the targets, write CSV and LaTeX, print a summary."""
    ds = calibration_run()
    table = compare(ds)
    prov = {k: ds.attrs[k] for k in ("model_hash", "git_commit", "created")}
    # the CSV is plain data (any tool reads it); the LaTeX file says where it came from in
    # the flat key=value layout of the other tables
    head = "% made by analysis/calibration.py; provenance: " + "; ".join(
        f"{k}={v}" for k, v in sorted(prov.items())) + "\n"
    write_text(paths.RESULTS_DIR / "calibration.csv", table.to_csv(float_format="%.6g"))
    write_text(paths.RESULTS_DIR / "calibration.tex", head + to_latex(table))
    with_cols = table[["what", "period", "data", "model", "unit", "error", "tolerance", "pass"]]
    print(with_cols.to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"{int(table['pass'].sum())}/{len(table)} points within tolerance; wrote "
          f"results/calibration.csv and results/calibration.tex")
    return 0


if __name__ == "__main__":
    sys.exit(main())
