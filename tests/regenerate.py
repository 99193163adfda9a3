"""Regenerate the frozen regression data ``tests/data/baseline_regression.csv``.

Run only on purpose, after a deliberate model change that has been reviewed::

    .venv/bin/python tests/regenerate.py

The file holds a few key variables of the baseline at SAVEPER (one column each, Vensim names,
17 significant digits) and, in its ``#`` header, the model hash and git commit it was made from
and each column's unit, so ``tests/test_model_regression.py`` can tell "the model changed" from
"the code changed". It is plain text so that a regeneration shows up as a readable diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from aicarousel import paths  # noqa: E402
from aicarousel.atomic import write_text  # noqa: E402
from aicarousel.model import run  # noqa: E402

#: Variables frozen in the regression file (Vensim names).
REGRESSION_VARIABLES = [
    "Lab Revenue", "Lab Compute Online", "Contract Backlog", "Lab Cash", "Cloud Cash", "Chips Cash",
    "Cloud Debt", "Cloud PPE", "Compute Under Construction", "Installed Compute New",
    "Installed Compute Old", "Lab Equity from Chips", "Lab Equity from Outside Investors",
    "Lab Market Value", "Cloud Market Value", "Chips Market Value", "Investor Sentiment",
    "Vendor Commitment Remaining", "Lab Other Commitments", "Lab total commitments",
]
REGRESSION_FILE = paths.TEST_DATA_DIR / "baseline_regression.csv"


def read_frozen(path: Path = REGRESSION_FILE) -> xr.Dataset:
    """The frozen data as a Dataset (dim ``time``), header fields in ``attrs``, units per variable."""
    header = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    df = pd.read_csv(path, comment="#").set_index("time")
    ds = xr.Dataset.from_dataframe(df)
    units = json.loads(header.pop("units", "{}"))
    for name, v in ds.data_vars.items():
        v.attrs["units"] = units.get(name, "")
    ds.attrs.update(header)
    return ds


def main() -> int:
    """Run the baseline and write the regression file atomically."""
    ds = run(return_columns=REGRESSION_VARIABLES)
    df = ds[REGRESSION_VARIABLES].to_dataframe()
    units = {v: ds[v].attrs.get("units_vensim", "") for v in REGRESSION_VARIABLES}
    header = (
        "# frozen baseline regression data: regenerate on purpose with python tests/regenerate.py\n"
        f"# model_hash: {ds.attrs['model_hash']}\n"
        f"# git_commit: {ds.attrs.get('git_commit', '')}\n"
        f"# units: {json.dumps(units)}\n")
    write_text(REGRESSION_FILE, header + df.to_csv(float_format="%.17g", lineterminator="\n"))
    print(f"wrote {paths.relative_to_root(REGRESSION_FILE)} ({REGRESSION_FILE.stat().st_size} bytes, "
          f"{len(REGRESSION_VARIABLES)} variables, model {ds.attrs['model_hash'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
