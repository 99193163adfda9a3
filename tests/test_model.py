"""Behaviour of the model and of aicarousel.model: API, validation, consistency, extremes.

Tolerances are stated per test. Model numbers are never hard-coded: expectations are read
from the model (tags in comments, ranges in the units field) or are structural (zero,
non-negative, "falls from its peak").
"""

from __future__ import annotations

import json
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from aicarousel import paths
from aicarousel import tags as comment_tags
from aicarousel.errors import (ModelFileError, ParameterValueError, SimulationError,
                               UnknownParameterError)
from aicarousel.model import load, model_hash, run

SECTORS = {"Lab", "Cloud", "Chips"}
REST_OF_WORLD = {"End users", "Equity investors", "Lenders", "Cloud customers", "Chip buyers",
                 "Suppliers"}


@pytest.fixture(scope="module")
def doc():
    return load().doc.set_index("Real Name", drop=False)


@pytest.fixture(scope="module")
def baseline():
    return run()


@pytest.fixture(scope="module")
def tags(doc):
    flows, cash = {}, {}
    for name, r in doc.iterrows():
        tag = comment_tags.parse(str(r["Comment"] or ""))
        if tag and tag.kind == "flow":
            flows[name] = tag.ends
        if tag and tag.kind == "cash":
            cash[tag.body] = name
    return flows, cash


# --------------------------------------------------------------------------------- API ---

def test_dataset_shape_and_attrs(baseline):
    t = baseline["time"].values
    assert t[0] == pytest.approx(float(baseline["INITIAL TIME"][0]))
    assert t[-1] == pytest.approx(float(baseline["FINAL TIME"][0]))
    assert np.allclose(np.diff(t), float(baseline["SAVEPER"][0]))
    d = baseline["Cloud Debt"]
    assert d.dims == ("time",)
    assert d.attrs["units"] and d.attrs["description"] and d.attrs["py_name"] == "cloud_debt"
    assert baseline.attrs["model_hash"] == model_hash()
    versions = json.loads(baseline.attrs["package_versions"])
    assert "pysd" in versions and "xarray" in versions
    assert json.loads(baseline.attrs["params_changed"]) == {}


SHORT = 2027.0  # final time of API tests that need no long horizon (keeps the suite fast)


@pytest.fixture(scope="module")
def no_outside_capital():
    """No outside equity, no credit of any kind (new loans, refinancing, emergency credit) and no
    vendor financing: only end users and outside customers put money in."""
    return run(params={"Outside funding availability": 0.0, "Outside credit availability": 0.0,
                       "Vendor financing switch": 0.0})


def test_fresh_model_each_run():
    """Overrides do not persist between runs (PySD keeps them on a model object)."""
    a = run(params={"AI demand multiplier": 0.5}, return_columns=["Lab Revenue"], final_time=SHORT)
    b = run(return_columns=["Lab Revenue"], final_time=SHORT)
    c = run(return_columns=["Lab Revenue"], final_time=SHORT)
    assert not np.allclose(a["Lab Revenue"], b["Lab Revenue"], rtol=1e-6)
    xr.testing.assert_equal(b["Lab Revenue"], c["Lab Revenue"])
    assert json.loads(a.attrs["params_changed"]) == {"AI demand multiplier": 0.5}


def test_time_series_override_matches_constant_where_equal(baseline):
    """A time series equal to the default everywhere gives the baseline (rel 1e-12); one that
    drops later leaves the early years unchanged and lowers the end."""
    years = np.arange(2020.0, 2041.0)
    b = baseline["Lab Revenue"].sel(time=slice(None, SHORT))
    s = pd.Series(np.ones_like(years), index=years)
    a = run(params={"AI demand multiplier": s}, return_columns=["Lab Revenue"], final_time=SHORT)
    np.testing.assert_allclose(a["Lab Revenue"], b, rtol=1e-12)
    s2 = pd.Series(np.where(years < 2026, 1.0, 0.5), index=years)
    c = run(params={"AI demand multiplier": s2}, return_columns=["Lab Revenue"], final_time=SHORT)
    early = c["time"] <= 2025
    np.testing.assert_allclose(c["Lab Revenue"][early], b[early], rtol=1e-12)
    assert float(c["Lab Revenue"][-1]) < float(b[-1])


def test_run_control_and_py_names():
    ds = run(params={"ai_demand_multiplier": 1.0}, final_time=2030, saveper=0.5,
             return_columns=["Cloud Debt"])
    assert ds["time"].values[-1] == pytest.approx(2030.0)
    assert np.allclose(np.diff(ds["time"].values), 0.5)
    assert list(ds.data_vars) == ["Cloud Debt"]


def test_netcdf_roundtrip(tmp_path, baseline):
    out = tmp_path / "sub" / "b.nc"
    ds = run(return_columns=["Cloud Debt", "Lab Cash"], final_time=SHORT, output=out)
    back = xr.load_dataset(out)
    xr.testing.assert_allclose(back, ds, rtol=0, atol=0)
    assert back["Cloud Debt"].attrs["units"] == ds["Cloud Debt"].attrs["units"]
    assert back.attrs["model_hash"] == ds.attrs["model_hash"]
    assert [p.name for p in out.parent.iterdir()] == ["b.nc"]  # no temp file left


def test_translation_cached_by_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    src = tmp_path / "m.mdl"
    src.write_bytes(paths.MODEL_FILE.read_bytes())
    load(src)
    dirs = [p.name for p in (tmp_path / "cache").iterdir()]
    assert dirs == [model_hash(src)[:16]]
    assert not list(tmp_path.glob("m.py")), "translation must not be written beside the model"
    src.write_text(src.read_text() + "\n")  # any byte changes the hash
    load(src)
    assert len(list((tmp_path / "cache").iterdir())) == 2, "changed model must be re-translated"


# ------------------------------------------------------------------------ bad input ---

def test_unknown_parameter_suggests_close_names():
    with pytest.raises(UnknownParameterError) as e:
        run(params={"AI demand multiplyer": 1.0})
    assert "'AI demand multiplyer'" in str(e.value) and "'AI demand multiplier'" in str(e.value)


def test_stock_is_not_a_parameter():
    with pytest.raises(UnknownParameterError, match="stock"):
        run(params={"Cloud Debt": 100.0})


@pytest.mark.parametrize("value", ["0.8", True, None, [1, 2]])
def test_wrong_kind(value):
    with pytest.raises(ParameterValueError, match="AI demand multiplier"):
        run(params={"AI demand multiplier": value})


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite(value):
    with pytest.raises(ParameterValueError, match="finite"):
        run(params={"AI demand multiplier": value})


def test_negative_duration(doc):
    durations = [n for n, r in doc.iterrows() if r["Type"] == "Constant" and r["Units"] == "Year"
                 and n not in ("INITIAL TIME", "FINAL TIME", "TIME STEP", "SAVEPER")
                 and abs(float(load().components.__getattribute__(r["Py Name"])())) < 1000]
    assert "Construction time" in durations and "GPU economic life" in durations
    for name in ("Construction time", "GPU economic life"):
        with pytest.raises(ParameterValueError, match=re.escape(name)):
            run(params={name: -1.0})


def test_range_from_units_field(doc):
    lo, hi = doc.loc["Outside funding availability", "Limits"]
    with pytest.raises(ParameterValueError, match="above its maximum"):
        run(params={"Outside funding availability": hi + 0.5})
    with pytest.raises(ParameterValueError, match="below its minimum"):
        run(params={"Outside funding availability": lo - 0.5})


def test_time_series_must_cover_run():
    s = pd.Series([1.0, 1.0], index=[2026.0, 2035.0])
    with pytest.raises(ParameterValueError, match="covers 2026-2035 but the run goes 2024-2035"):
        run(params={"AI demand multiplier": s})
    s = pd.Series([1.0, np.nan], index=[2024.0, 2035.0])
    with pytest.raises(ParameterValueError, match="finite"):
        run(params={"AI demand multiplier": s})


def test_bad_run_control():
    with pytest.raises(ParameterValueError, match="time_step"):
        run(time_step=-0.1)
    with pytest.raises(ParameterValueError, match="final_time"):
        run(final_time=2000)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load(tmp_path / "nope.mdl")


def test_malformed_model_file_names_line(tmp_path, monkeypatch, tiny_mdl):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    bad = tiny_mdl("x = INTEG( y, 1)\n\t~\tDmnl\n\t~\t|\n\n"
                   "y = x * (2\n\t~\t1/Year\n\t~\t|\n\n", "bad.mdl", time_step=0.1,
                   time_unit="Year")
    with pytest.raises(ModelFileError) as e:
        load(bad)
    assert f"{bad}:6:" in str(e.value), str(e.value)
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == [], "no half-done translation left"


def test_unsupported_function_is_an_error_with_line(tmp_path, monkeypatch, tiny_mdl):
    """PySD translates NPV with only a warning and crashes at run time: we refuse it up front."""
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    mdl = tiny_mdl("x = INTEG( y, 1)\n\t~\tDmnl\n\t~\t|\n\n"
                   "y = NPV(x, 0.1, 0, 1)\n\t~\t1/Year\n\t~\t|\n\n", "npv.mdl",
                   time_step=0.25, time_unit="Year")
    with pytest.raises(ModelFileError, match=r"npv\.mdl:6: .*NPV"):
        load(mdl)


def test_zero_duration_refused_before_the_run():
    """A duration of 0 (or any below TIME STEP) is meaningless for Euler: refused up front."""
    with pytest.raises(ParameterValueError, match="'Construction time' = 0 Year is shorter than "
                                                  "TIME STEP"):
        run(params={"Construction time": 0.0})


def test_division_by_zero_names_variable_and_time(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    mdl = tmp_path / "div.mdl"
    mdl.write_text("{UTF-8}\nx = INTEG( 1, 0)\n\t~\tDmnl\n\t~\t|\n\n"
                   "y = 1 / (x - 0.5)\n\t~\tDmnl\n\t~\t|\n\n"
                   "INITIAL TIME = 0\n\t~\tYear\n\t~\t|\nFINAL TIME = 1\n\t~\tYear\n\t~\t|\n"
                   "TIME STEP = 0.25\n\t~\tYear\n\t~\t|\nSAVEPER = TIME STEP\n\t~\tYear\n\t~\t|\n")
    with pytest.raises(SimulationError, match=r"while computing 'y' at time 0.5"):
        run(model_file=mdl)


def test_non_finite_result_names_first_variable(tmp_path, monkeypatch, tiny_mdl):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    mdl = tiny_mdl("x = INTEG( y, 1)\n\t~\tDmnl\n\t~\t|\n\n"
                   "y = IF THEN ELSE(Time >= 0.5, x * 1e300 * 1e300, 0)\n\t~\t1/Year\n\t~\t|\n\n",
                   "blow.mdl", time_step=0.25, time_unit="Year")
    out = tmp_path / "o.nc"
    with pytest.raises(SimulationError, match=r"'y' at time 0.5"):
        run(model_file=mdl, output=out)
    assert not out.exists()


# ------------------------------------------------------------- stock-flow consistency ---

def test_flow_tags_well_formed(tags):
    flows, cash = tags
    assert set(cash) == SECTORS
    assert len(flows) >= 10
    for name, (src, dst) in flows.items():
        assert src != dst, name
        assert src in SECTORS | REST_OF_WORLD and dst in SECTORS | REST_OF_WORLD, (name, src, dst)
        assert src in SECTORS or dst in SECTORS, f"{name} never touches a sector"


def test_cash_stocks_change_by_their_tagged_flows(tags):
    """For every cash stock, stock(t+dt) - stock(t) = dt * (inflows - outflows) at every step.

    Relative residual <= 1e-9 of the gross flow. Each flow is counted with - in its source
    sector and + in its destination, once.
    """
    flows, cash = tags
    dt = float(load().components.time_step())
    ds = run(saveper=dt, return_columns=list(flows) + list(cash.values()))
    for sector, stock in cash.items():
        net = np.zeros(ds.sizes["time"])
        gross = np.zeros(ds.sizes["time"])
        for f, (src, dst) in flows.items():
            v = ds[f].values
            sign = (dst == sector) - (src == sector)
            net += sign * v
            gross += abs(sign) * np.abs(v)
        change = np.diff(ds[stock].values)
        resid = np.abs(change - dt * net[:-1]) / np.maximum(dt * gross[:-1], 1e-12)
        assert resid.max() <= 1e-9, (sector, float(resid.max()), float(ds.time[int(resid.argmax())]))


def test_every_flow_sums_to_zero_across_sectors(tags):
    """Transaction-flow matrix: each flow appears once with - and once with + (columns sum to 0)."""
    flows, _ = tags
    parties = sorted(SECTORS | REST_OF_WORLD)
    for f, (src, dst) in flows.items():
        row = [(p == dst) - (p == src) for p in parties]
        assert sum(row) == 0 and sorted(row)[0] == -1 and sorted(row)[-1] == 1, f


def test_non_negative_stocks_stay_non_negative(doc, baseline, no_outside_capital):
    stocks = [n for n, r in doc.iterrows() if r["Type"] == "Stateful" and r["Subtype"] == "Integ"
              and r["Limits"][0] == 0]
    assert len(stocks) >= 10
    stress = run(params={"AI demand multiplier": 0.3, "GPU economic life": 3.0,
                         "Base cancellation rate": 0.3}, return_columns=stocks)
    for params, ds in (("baseline", baseline), ("no outside capital", no_outside_capital),
                       ("weak demand, short GPU life, cancellations", stress)):
        for s in stocks:
            v = ds[s].values
            scale = max(1.0, float(np.abs(v).max()))
            assert v.min() >= -1e-9 * scale, (params, s, float(v.min()))


# ----------------------------------------------------------------- extreme conditions ---

def test_no_outside_capital_winds_down(no_outside_capital, baseline):
    """The loop's money flows wind down: no new building, the backlog drains, debt is repaid.

    Capacity already paid for stays installed and ages out over its economic life (6 years),
    so installed GW is not the measure; the circular flows and the pipeline are.
    """
    ds = no_outside_capital
    starts = ds["Construction starts"].values
    assert starts[-1] <= 0.01 * max(starts.max(), 1e-12), "construction starts should stop (~0)"
    for v in ("Compute Under Construction", "Contract Backlog"):
        x = ds[v].values
        assert x[-1] < 0.75 * x.max(), f"{v} should fall well below its peak by the end"
    # what is left of the round trip is what end users pay for: far less than the baseline's
    for v in ("Lab payments to Cloud", "GPU purchases"):
        assert float(ds[v].sum()) < 0.6 * float(baseline[v].sum()), v
    debt = ds["Cloud Debt"].values
    assert debt[-1] < 0.5 * debt[0], "with no credit Cloud's debt is only repaid"
    assert np.abs(ds["Outside equity raised"].values).max() == 0.0
    assert np.abs(ds["New borrowing"].values).max() == 0.0


def test_no_contracts_no_construction():
    ds = run(params={"Announced contract value": 0.0, "Initial contract backlog": 0.0,
                     "Cloud share of Lab compute": 0.0, "Cloud outside contract share": 0.0},
             return_columns=["Construction starts"])
    assert np.abs(ds["Construction starts"].values).max() <= 1e-12


def test_no_vendor_financing_no_chips_stake():
    """No per-GW vendor financing and no round equity: Chips never holds a stake in Lab."""
    ds = run(params={"Vendor financing switch": 0.0, "Chips round investment value": 0.0},
             return_columns=["Lab Equity from Chips"])
    assert np.abs(ds["Lab Equity from Chips"].values).max() == 0.0


def test_vendor_financing_builds_chips_stake(baseline):
    """Chips' $30B round equity (2026) is its stake in the baseline; per-GW vendor financing
    adds to it when the letter is honoured."""
    assert float(baseline["Lab Equity from Chips"][-1]) == pytest.approx(30.0, rel=1e-6)
    honoured = run(params={"Vendor letter honoured": 1.0}, return_columns=["Lab Equity from Chips"])
    assert float(honoured["Lab Equity from Chips"][-1]) > 30.0 + 1.0


# --------------------------------------------------------------------- numerics ---

KEY_OUTPUTS = ["Cloud Installed Compute", "Cloud Debt", "Lab Cash", "Cloud Cash", "Chips Cash",
               "Lab Market Value", "Cloud Market Value", "Chips Market Value",
               "Lab revenue from end users"]


def test_dt_halving_changes_key_outputs_less_than_1pct(baseline):
    dt = float(baseline["TIME STEP"][0])
    fine = run(time_step=dt / 2, return_columns=KEY_OUTPUTS)
    worst = []
    for v in KEY_OUTPUTS:
        for year in (2030.0, 2035.0):
            a = float(baseline[v].sel(time=year))
            b = float(fine[v].sel(time=year))
            worst.append((abs(a - b) / max(abs(a), 1e-9), v, year))
    worst.sort(reverse=True)
    assert worst[0][0] <= 0.01, worst[:3]


def _mdl_lookups():
    """Lookup tables parsed from the .mdl text by PySD's parser (not the translated code)."""
    from pysd.translators.vensim.vensim_file import VensimFile
    vf = VensimFile(str(paths.MODEL_FILE))
    vf.parse()
    am = vf.get_abstract_model()
    out = {}
    for el in am.sections[0].elements:
        for c in el.components:
            ast = c.ast
            if type(ast).__name__ == "LookupsStructure":
                out[el.name] = (np.asarray(ast.x, float), np.asarray(ast.y, float))
    return out


def test_lookups_interpolate_like_the_table(doc):
    """PySD/xarray version trap: translated lookups must interpolate the table linearly."""
    tables = _mdl_lookups()
    assert len(tables) >= 1
    m = load()
    for name, (x, y) in tables.items():
        f = getattr(m.components, doc.loc[name, "Py Name"])
        probes = np.concatenate([x, (x[:-1] + x[1:]) / 2, 0.3 * x[:-1] + 0.7 * x[1:]])
        for p in probes:
            got = f(float(p))
            assert np.ndim(got) == 0, f"{name} returned an array for a scalar input"
            assert float(got) == pytest.approx(float(np.interp(p, x, y)), rel=1e-12, abs=1e-12), (name, p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # extrapolation warning
            assert float(f(float(x[0] - 1.0))) == pytest.approx(y[0])
            assert float(f(float(x[-1] + 1.0))) == pytest.approx(y[-1])


def test_saved_times_are_put_back_on_the_exact_step_grid():
    """PySD rounds saved times to 7 decimals at TIME STEP 1/512 (2024.001953125 is saved as
    2024.0019531), so a run saved at every step was unevenly spaced and the exact accounts
    refused it; times within 1e-4 of a step of the grid are put back on it, others kept."""
    import numpy as np

    from aicarousel.model import exact_times
    saved = [2024.0, 2024.0019531, 2024.0039062, 2024.0058594]
    assert np.array_equal(exact_times(saved, 2024.0, 1 / 512), 2024.0 + np.arange(4) / 512)
    assert exact_times([2024.3], 2024.0, 1 / 512)[0] == 2024.3  # a return time off the grid
