"""Experiments: every scenario runs, and each stress changes the outcomes it should.

Dates and values are read from the scenario files and the model, never typed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aicarousel import scenarios
from aicarousel.cli import main as cli_main
from aicarousel.experiments import latex_table, outcomes, run_experiments

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def exp(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    ds, table = run_experiments(output=out / "experiments.nc", table=out / "experiments_table",
                                progress=False)
    return {"ds": ds, "table": table, "dir": out}


@pytest.fixture(scope="module")  # not session: built after the machinery_step patch
def resolved():
    return scenarios.validate_all()


def step_date(resolved, scenario, variable):
    (iv,) = [iv for iv in resolved[scenario].interventions if iv.variable == variable]
    return iv.at if iv.type == "step" else (iv.start if iv.type == "ramp" else iv.points[0][0])


def after(da, t):
    return da.sel(time=da.time[da.time >= t])


def test_every_scenario_runs_into_one_dataset(exp, resolved):
    ds = exp["ds"]
    assert list(ds.scenario.values) == list(resolved)
    assert set(ds.dims) == {"scenario", "time"}
    for v in ("Cloud Debt", "Lab Cash", "Contract Backlog"):
        assert np.isfinite(ds[v].values).all()
        assert ds[v].attrs["units"]
    assert ds.attrs["model_hash"]
    assert ds["params_changed"].sel(scenario="baseline").item() == "{}"


def test_files_written_and_reload(exp):
    d = exp["dir"]
    back = xr.load_dataset(d / "experiments.nc")
    assert back.sizes == exp["ds"].sizes
    np.testing.assert_array_equal(back["Cloud Debt"].values, exp["ds"]["Cloud Debt"].values)
    csv = pd.read_csv(d / "experiments_table.csv", index_col="scenario")
    assert list(csv.index) == list(exp["table"].index)
    tex = (d / "experiments_table.tex").read_text()
    assert r"\begin{tabular}" in tex and r"\toprule" in tex and r"\bottomrule" in tex
    assert tex.count(r"\\") == len(exp["table"].columns) + 1  # header + one row per outcome
    assert not list(d.glob(".*tmp"))  # no temporary files left behind


def test_table_columns_carry_units(exp):
    for col in exp["table"].columns:
        assert col.endswith(")") and "(" in col, col
    needed = ["Peak installed compute (GW)", "Year of peak installed compute (year)",
              "Money in from Equity investors ($B)", "Money in from Lenders ($B)",
              "Money in from End users ($B)", "Money in from Chip buyers ($B)",
              "Money in from Cloud customers ($B)", "Peak Cloud debt ($B)",
              "Peak Cloud debt to market value (ratio)", "Largest fall in Lab market value (%)",
              "Largest fall in Cloud market value (%)", "Largest fall in Chips market value (%)",
              "Year Lab's cash runs out (year)", "Lab spending paid by end users (%)"]
    for col in needed:
        assert col in exp["table"].columns, col


def test_cumulative_money_matches_the_stock_it_feeds():
    """Outside equity summed at TIME STEP equals the change in Lab's equity stock plus Cloud's
    share issues (Euler exact; Cloud's equity is not a tracked claim)."""
    from aicarousel import model

    m = model.load()
    dt = float(m.components.time_step())
    ds = model.run(saveper=dt)
    row = outcomes(ds, dt)
    stock = ds["Lab Equity from Outside Investors"].values
    cloud = float(ds["Cloud equity issuance"].values[:-1].sum() * dt)
    assert cloud > 0
    assert row["Money in from Equity investors ($B)"] == pytest.approx(stock[-1] - stock[0] + cloud,
                                                                       rel=1e-9)


def test_funding_stop_ends_outside_equity(exp, resolved):
    t0 = step_date(resolved, "funding_stop", "Outside funding availability")
    ds = exp["ds"].sel(scenario="funding_stop")
    raised = after(ds["Outside equity raised"], t0)
    assert float(np.abs(raised).max()) == 0.0
    eq = after(ds["Lab Equity from Outside Investors"], t0).values
    assert np.ptp(eq) == pytest.approx(0.0, abs=1e-9)
    base = exp["ds"].sel(scenario="baseline")
    assert float(base["Outside equity raised"].sel(time=slice(t0, None)).max()) > 0  # it did bind
    t = exp["table"]
    assert t.loc["funding_stop", "Money in from Equity investors ($B)"] < \
        t.loc["baseline", "Money in from Equity investors ($B)"]


def test_vendor_financing_ends_freezes_chips_stake(exp, resolved):
    t0 = step_date(resolved, "vendor_financing_ends", "Vendor financing switch")
    ds = exp["ds"].sel(scenario="vendor_financing_ends")
    stake = ds["Lab Equity from Chips"]
    before = float(stake.sel(time=stake.time[stake.time <= t0][-1]))
    frozen = after(stake, t0).values
    # stake stays at its pre-stop value (zero if stopped before signing): at most one step of
    # tranches (<= 1/SAVEPER of a year's flow) can land between the last saved point and t0
    assert np.ptp(frozen) == pytest.approx(0.0, abs=1e-9)
    assert frozen[0] >= before - 1e-12
    assert float(after(ds["Chips investment in Lab"], t0 + 1e-9).max()) == 0.0
    base_end = float(exp["ds"]["Lab Equity from Chips"].sel(scenario="baseline")[-1])
    assert frozen[-1] < base_end


def test_vendor_financing_cap_binds(exp, resolved):
    t0 = step_date(resolved, "vendor_financing_cap", "Vendor financing cap")
    (iv,) = [i for i in resolved["vendor_financing_cap"].interventions
             if i.variable == "Vendor financing cap"]
    ds = exp["ds"].sel(scenario="vendor_financing_cap")
    inv = after(ds["Chips investment in Lab"], t0).values
    gpu = after(ds["GPU purchases"], t0).values
    assert (inv <= iv.to * gpu + 1e-9).all()
    t = exp["table"]
    col = "Chips' stake in Lab at end ($B)"
    # read against the scenario it extends: in the baseline the letter lapsed (Feb 2026)
    assert t.loc["vendor_financing_cap", col] < t.loc["vendor_letter_honoured", col]


def test_short_gpu_life_raises_retirements(exp):
    ds = exp["ds"]
    ratio = (ds["Compute retirements"] / ds["Installed Compute Old"]).sel(time=slice(2025, None))
    assert (ratio.sel(scenario="short_gpu_life") > ratio.sel(scenario="baseline") * 1.5).all()
    early = ds["Compute retirements"].sel(time=slice(None, 2027)).sum("time")
    assert float(early.sel(scenario="short_gpu_life")) > float(early.sel(scenario="baseline"))
    assert float(ds["Write offs"].sel(scenario="short_gpu_life").max()) > \
        float(ds["Write offs"].sel(scenario="baseline").max())


def test_credit_spread_shock_adds_its_spread(exp, resolved):
    (iv,) = resolved["credit_spread_shock"].interventions
    t_end, shock = iv.points[-1]
    ds = exp["ds"]
    s = ds["Credit spread shock"].sel(time=slice(t_end, None))
    assert np.allclose(s.sel(scenario="credit_spread_shock"), shock, rtol=1e-12)
    assert np.allclose(s.sel(scenario="baseline"), 0.0)
    t = exp["table"]
    assert t.loc["credit_spread_shock", "Peak Cloud debt ($B)"] != t.loc["baseline", "Peak Cloud debt ($B)"]


def test_cancellation_wave_cancels_more(exp):
    c = exp["ds"]["Contract cancellations"].sum("time")
    assert float(c.sel(scenario="cancellation_wave")) > float(c.sel(scenario="baseline"))


def test_power_shortage_slows_construction(exp, resolved):
    t0 = step_date(resolved, "power_shortage", "Maximum construction start rate")
    ds = exp["ds"]
    starts = after(ds["Construction starts"], t0)
    cap = after(ds["Maximum construction start rate"], t0)
    assert (starts.sel(scenario="power_shortage") <= cap.sel(scenario="power_shortage") + 1e-9).all()
    assert (cap.sel(scenario="power_shortage") < cap.sel(scenario="baseline")).all()
    t = exp["table"]
    assert t.loc["power_shortage", "Year of peak installed compute (year)"] >= \
        t.loc["baseline", "Year of peak installed compute (year)"] or \
        t.loc["power_shortage", "Peak installed compute (GW)"] < t.loc["baseline", "Peak installed compute (GW)"]


def test_revenue_scenarios_move_end_user_money(exp):
    col = "Money in from End users ($B)"
    t = exp["table"]
    assert t.loc["revenue_disappoints", col] < t.loc["baseline", col] < t.loc["revenue_breakout", col]


def test_latex_table_escapes_and_marks_missing():
    t = pd.DataFrame({"Share paid (%)": [50.0, np.nan], "Debt ($B)": [1234.5, 3.0]},
                     index=pd.Index(["base_line", "x"], name="scenario"))
    tex = latex_table(t)
    assert r"Share paid (\%)" in tex and r"Debt (\$B)" in tex
    assert "--" in tex and r"1{,}234" in tex and "{Base line}" in tex  # same labels as the figures


def test_cli_experiment_check_and_errors(capsys):
    assert cli_main(["experiment", "--check"]) == 0
    assert "valid" in capsys.readouterr().out
    assert cli_main(["experiment", "fundng_stop"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "did you mean 'funding_stop'" in err and "Traceback" not in err


def test_outcomes_name_a_missing_variable():
    import xarray as xr

    from aicarousel.errors import AicarouselError

    ds = xr.Dataset({"Cloud Debt": ("time", [1.0, 2.0])}, coords={"time": [0.0, 1.0]})
    with pytest.raises(AicarouselError, match="'Cloud Installed Compute'"):
        outcomes(ds)
