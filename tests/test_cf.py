"""netCDF results follow the CF conventions, so other tools can read them.

Every ``units`` string of a result parses with cf-units (UDUNITS-2) and has the dimension of the
model's Vensim unit; the Vensim unit is kept in ``units_vensim``; the time coordinate keeps
decimal years and documents their mapping to dates.
"""

import datetime as dt

import cf_units
import pytest
import xarray as xr

from aicarousel import cf
from aicarousel.ir import build_ir
from aicarousel.model import run
from aicarousel import paths


@pytest.mark.parametrize("vensim, udunits, currency", [
    ("$B", "1e9", "USD"),
    ("$B/Year", "1e9/year", "USD"),
    ("$B/(GW*Year)", "1e9/(GW*year)", "USD"),
    ("GW/($B/Year)", "GW/(1e9/year)", "USD"),
    ("Dmnl", "1", None),
    ("1/Year", "1/year", None),
    ("Year*Year", "year*year", None),
    ("GW", "GW", None),
])
def test_mapping_from_vensim_to_udunits(vensim, udunits, currency):
    attrs = cf.variable_attrs(vensim)
    assert attrs["units"] == udunits and attrs["units_vensim"] == vensim
    assert attrs.get("currency") == currency
    cf_units.Unit(udunits)  # parses


def test_every_unit_of_the_model_translates_to_udunits():
    """A new unit in the model that UDUNITS cannot read fails here, naming it."""
    ir = build_ir(paths.MODEL_FILE)
    bad = {}
    for v in ir.variables.values():
        if not v.units:
            continue
        try:
            cf_units.Unit(cf.udunits(v.units))
        except ValueError as exc:
            bad[v.units] = str(exc)
    assert bad == {}, f"add these units to aicarousel.cf.VENSIM_TO_UDUNITS: {bad}"
    assert cf_units.Unit(cf.udunits("$B/Year")).convert(1.0, cf_units.Unit("1e9/s")) == \
        pytest.approx(1 / 3.15569259747e7)  # per year is per UDUNITS year


def test_run_writes_cf_netcdf(tmp_path):
    out = tmp_path / "r.nc"
    run(return_columns=["Cloud Debt", "Installed Compute New", "Investor Sentiment"], output=out)
    with xr.open_dataset(out) as ds:
        assert ds.attrs["Conventions"].startswith("CF-1.")
        t = ds["time"]
        assert t.attrs["axis"] == "T" and cf_units.Unit(t.attrs["units"]).is_time()
        assert float(t[0]) == 2024.0  # still decimal years, not decoded to dates
        for name, var in ds.data_vars.items():
            unit = cf_units.Unit(var.attrs["units"])  # UDUNITS parses it
            assert var.attrs["units_vensim"], name
            assert unit.is_convertible(cf_units.Unit(cf.udunits(var.attrs["units_vensim"])))
        assert ds["Cloud Debt"].attrs["currency"] == "USD"
        assert ds["Cloud Debt"].attrs["units_vensim"] == "$B"


def test_decimal_years_map_to_dates():
    assert cf.decimal_year_to_datetime(2024.0) == dt.datetime(2024, 1, 1)
    assert cf.decimal_year_to_datetime(2024.5) == dt.datetime(2024, 7, 2)  # 2024 has 366 days
    assert cf.decimal_year_to_datetime([2025.25]) == [dt.datetime(2025, 4, 2, 6)]
