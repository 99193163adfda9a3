"""The numbers behind each finding of the structural review (issue 13), for the baseline.

Prints one line per finding; variables missing from a model version print as n/a, so the same
script measures the first model and the rebuilt one. Run: ``python analysis/review_numbers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from aicarousel.model import load, run  # noqa: E402


def _get(ds, name):
    return ds[name].values if name in ds else None


def _integral(ds, name, a, b):
    v = _get(ds, name)
    if v is None:
        return float("nan")
    t = ds["time"].values
    m = (t >= a) & (t < b)
    return float(v[m].sum() * (t[1] - t[0]))


def main() -> int:
    dt = float(load().components.time_step())  # saved at every step: integrals are exact
    ds = run(saveper=dt)
    at = lambda n, y: float(ds[n].sel(time=y)) if n in ds else float("nan")  # noqa: E731
    print("1 delivery: 2030 Lab Compute at Cloud %.2f GW, contracted %.2f GW, in service due %.2f GW"
          % (at("Lab Compute at Cloud", 2030), at("Contracted GW at Cloud", 2030),
             at("Lab contracted GW in service", 2030)))
    print("  Lab pipeline at Cloud / contracted 2030: %.2f; pipeline above construction: %.2f GW"
          % (at("Lab pipeline at Cloud", 2030) / at("Contracted GW at Cloud", 2030),
             float((ds["Lab pipeline at Cloud"] - ds["Compute Under Construction"]).max())))
    pay = [_integral(ds, "Lab payments to Cloud", y, y + 1) for y in range(2027, 2032)]
    print("  Lab payments to Cloud 2027-31: total %.0f $B, max %.1f $B/yr" % (sum(pay), max(pay)))
    print("  Lab Revenue 2035: %.1f $B/yr; Cloud desired capacity 2030 %.1f GW, installed %.1f GW"
          % (at("Lab Revenue", 2035), at("Cloud desired capacity", 2030),
             at("Cloud Installed Compute", 2030)))
    d = ds["Cloud Debt"].values
    print("2 debt: steps with falling Cloud Debt: %d of %d; debt 2032 %.1f, 2035 %.1f $B"
          % (int((np.diff(d) < -1e-12).sum()), len(d) - 1, at("Cloud Debt", 2032), at("Cloud Debt", 2035)))
    sh = run(params={"Credit spread shock": 0.5}, return_columns=["Cloud Debt", "Cloud Market Value"])
    print("  spread shock 0.5: peak debt %.0f $B, Cloud MV at the end %.0f $B"
          % (float(sh["Cloud Debt"].max()), float(sh["Cloud Market Value"][-1])))
    em = [_integral(ds, "Cloud distress borrowing", y, y + 1) for y in range(2024, 2035)]
    print("  emergency credit: max %.1f $B in a year" % max(em))
    print("3 B3: min Lab payment fraction in the baseline %.3f" % float(ds["Lab payment fraction"].min()))
    print("  commitments: Lab total commitments end 2025 %.0f $B, mid 2026 %.0f $B; min commitment headroom %.3f"
          % (at("Lab total commitments", 2026.0), at("Lab total commitments", 2026.5),
             float(ds["Lab commitment headroom"].min())))
    from aicarousel.scenarios import to_params
    fs = run(params=to_params("funding_stop"), saveper=dt)
    print("  funding_stop: min Lab payment fraction %.3f, min Lab Cash %.2f $B"
          % (float(fs["Lab payment fraction"].min()), float(fs["Lab Cash"].min())))
    if "Lab Cloud bills on credit" in fs:
        print("  funding_stop: bills on credit %.1f $B, of which paid %.1f, written off %.1f, owed at the end %.1f"
              % (_integral(fs, "Lab Cloud bills on credit", 2024, 2036),
                 _integral(fs, "Lab arrears paid to Cloud", 2024, 2036),
                 _integral(fs, "Cloud arrears written off", 2024, 2036),
                 float(fs["Lab Unpaid Cloud Bills"][-1])))
    print("  Chips into Lab 2024-35: per GW %.1f $B, round equity %.1f $B"
          % (_integral(ds, "Chips investment in Lab", 2024, 2036),
             _integral(ds, "Chips equity in Lab round", 2024, 2036)))
    ebit = ds["Cloud AI earnings"]
    print("4 Cloud AI earnings 2025/2027/2030: %.1f / %.1f / %.1f $B/yr"
          % (at("Cloud AI earnings", 2025), at("Cloud AI earnings", 2027), at("Cloud AI earnings", 2030)))
    for n in ("Cloud AI gross margin", "Cloud break even price per GPU hour"):
        if n in ds:
            print("  %s 2025/2027: %.3f / %.3f" % (n, at(n, 2025.5), at(n, 2027.5)))
    print("5 Cloud MV Jun 2025 %.0f, Oct 2025 %.0f $B (Oracle ~690, peak 933); spread Jun/Dec 2025 %.0f / %.0f bp"
          % (at("Cloud Market Value", 2025.5), at("Cloud Market Value", 2025.75),
             1e4 * at("Credit spread", 2025.5), 1e4 * at("Credit spread", 2025.9375)))
    print("  Lab MV Oct 2024 %.0f, Mar 2025 %.0f, Oct 2025 %.0f, Mar 2026 %.0f $B (157/300/500/852)"
          % tuple(at("Lab Market Value", y) for y in (2024.75, 2025.1875, 2025.75, 2026.1875)))
    step = pd.Series([1.0, 1.0, 0.0, 0.0], index=[2024.0, 2027.0, 2027.0 + 1e-9, 2035.0])
    try:
        z = run(params={"AI demand multiplier": step}, return_columns=["Lab Revenue"], saveper=dt)
        print("M revenue with demand stepped to 0 in 2027: min %.1f" % float(z["Lab Revenue"].min()))
    except Exception as e:  # the first model produces -inf
        print("M revenue with demand stepped to 0 in 2027: run fails (%s)" % str(e)[:60])
    for step_ in (1 / 16, 1 / 32, 1 / 64):  # TIME STEP 0.25 and 0.1 are refused now (Signing duration 0.125)
        b = run(params={"Cloud share of Lab compute": 0.0}, time_step=step_, saveper=step_,
                final_time=2027.0, return_columns=["New Cloud contracts"])
        print("  contract booked at TIME STEP %.4g: %.0f $B" % (step_, float(b["New Cloud contracts"].values[:-1].sum() * step_)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
