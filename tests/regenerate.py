"""Regenerate the frozen regression data ``tests/data/baseline_regression.nc``.

Run only on purpose, after a deliberate model change that has been reviewed::

    .venv/bin/python tests/regenerate.py

The file holds a few key variables of the baseline at SAVEPER, plus the model hash it was made
from, so ``tests/test_model_regression.py`` can tell "the model changed" from "the code changed".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from aicarousel import paths  # noqa: E402
from aicarousel.model import run, write_netcdf  # noqa: E402

#: Variables frozen in the regression file (Vensim names).
REGRESSION_VARIABLES = [
    "Lab Revenue", "Lab Compute Online", "Contract Backlog", "Lab Cash", "Cloud Cash", "Chips Cash",
    "Cloud Debt", "Cloud PPE", "Compute Under Construction", "Installed Compute New",
    "Installed Compute Old", "Lab Equity from Chips", "Lab Equity from Outside Investors",
    "Lab Market Value", "Cloud Market Value", "Chips Market Value", "Investor Sentiment",
    "Vendor Commitment Remaining",
]
REGRESSION_FILE = paths.TEST_DATA_DIR / "baseline_regression.nc"


def main() -> int:
    """Run the baseline and write the regression file atomically."""
    ds = run(return_columns=REGRESSION_VARIABLES)
    keep = {k: ds.attrs[k] for k in ("model_hash", "git_commit", "created", "package_versions")}
    ds.attrs.clear()
    ds.attrs.update(keep)
    for v in ds.data_vars.values():  # keep the file small: units only
        v.attrs = {"units": v.attrs.get("units", "")}
    write_netcdf(ds, REGRESSION_FILE)
    print(f"wrote {paths.relative_to_root(REGRESSION_FILE)} ({REGRESSION_FILE.stat().st_size} bytes, "
          f"{len(ds.data_vars)} variables, model {ds.attrs['model_hash'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
