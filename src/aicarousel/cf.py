"""CF conventions for the netCDF results: units that UDUNITS parses, and the time coordinate.

Results are read by other tools (xarray, Panoply, ncview, cf-python, Iris), which expect the
`CF conventions <https://cfconventions.org>`_: a ``Conventions`` global attribute, ``units``
strings that UDUNITS-2 parses, and a described time coordinate. The model's units are Vensim's,
so each variable carries two unit attributes:

``units``
    The UDUNITS-2 translation of the model's unit (:func:`udunits`): ``Year`` -> ``year``,
    ``Dmnl`` -> ``1``, ``GW`` stays ``GW``, and money, for which UDUNITS has no unit, is counted
    in dollars: ``$B`` (billions of US dollars) -> ``1e9`` with the attribute
    ``currency = "USD"``. So ``$B/Year`` -> ``1e9/year`` and ``$B/(GW*Year)`` ->
    ``1e9/(GW*year)``; every such string parses with cf-units (checked in
    ``tests/test_cf.py``).
``units_vensim``
    The unit exactly as written in the model file (``$B/Year``), used for axis labels and tables.

Time: the model runs in decimal calendar years (``2024.5`` is the middle of 2024), and the
``time`` coordinate keeps these numbers, so readers can select ``time=2030``. Its attributes
are ``units = "year"``, ``axis = "T"`` and a ``comment`` giving the mapping to dates
(:func:`decimal_year_to_datetime`). A ``"years since ..."`` reference unit is deliberately not
used: UDUNITS' year is 365.242198781 days, not a calendar year, and xarray refuses to decode
fractional years (it would turn every result file unreadable without ``decode_times=False``).
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Iterable

#: Value of the ``Conventions`` global attribute of every result.
CONVENTIONS = "CF-1.11"

#: Vensim unit names -> UDUNITS-2 (money is counted in US dollars, see the module doc).
VENSIM_TO_UDUNITS = {
    "$B": "1e9",
    "Year": "year",
    "Years": "year",
    "Month": "month",
    "Dmnl": "1",
    "GW": "GW",
    "MW": "MW",
    "$": "1",  # one dollar (the currency goes into the currency attribute)
    "GPU": "1",  # a count of devices
    "hour": "hour",
}
#: Vensim unit names that denote money, and the currency they count.
MONEY_UNITS = {"$B": "USD", "$": "USD"}

#: Attributes of the ``time`` coordinate (decimal calendar years).
TIME_ATTRS = {
    "units": "year",
    "units_vensim": "Year",
    "long_name": "time",
    "axis": "T",
    "comment": ("decimal calendar year: the integer part is the year, the fraction the elapsed "
                "share of that year (2024.0 = 2024-01-01T00:00, 2024.5 = mid-2024); "
                "aicarousel.cf.decimal_year_to_datetime converts to dates"),
}

_TOKEN = re.compile(r"\$[A-Za-z]*|[A-Za-z_][A-Za-z_0-9]*")


def udunits(vensim_unit: str) -> str:
    """Translate a Vensim unit string to UDUNITS-2.

    Parameters
    ----------
    vensim_unit : str
        Unit as written in the model (``"$B/(GW*Year)"``).

    Returns
    -------
    str
        UDUNITS-2 string (``"1e9/(GW*year)"``); ``""`` for an empty unit. Names without a
        translation in :data:`VENSIM_TO_UDUNITS` are kept as they are.
    """
    text = (vensim_unit or "").strip()
    if not text:
        return ""
    return _TOKEN.sub(lambda m: VENSIM_TO_UDUNITS.get(m.group(0), m.group(0)), text)


def currency(vensim_unit: str) -> str | None:
    """The currency a Vensim unit counts (``"USD"`` for ``$B/Year``), or None."""
    found = {MONEY_UNITS[t] for t in _TOKEN.findall(vensim_unit or "") if t in MONEY_UNITS}
    return found.pop() if len(found) == 1 else None


def variable_attrs(vensim_unit: str) -> dict[str, str]:
    """``units``, ``units_vensim`` and, for money, ``currency`` attributes of a variable.

    Parameters
    ----------
    vensim_unit : str
        Unit as written in the model.

    Returns
    -------
    dict of str to str
    """
    attrs = {"units": udunits(vensim_unit), "units_vensim": vensim_unit or ""}
    cur = currency(vensim_unit)
    if cur:
        attrs["currency"] = cur
    return attrs


def display_unit(attrs: dict) -> str:
    """The unit to show a reader (axis labels, tables): the Vensim unit when recorded."""
    return str(attrs.get("units_vensim", attrs.get("units", "")) or "")


def decimal_year_to_datetime(years: float | Iterable[float]):
    """Convert decimal calendar years to :class:`datetime.datetime` (UTC, naive).

    Parameters
    ----------
    years : float or iterable of float
        Model times (``2024.5``).

    Returns
    -------
    datetime.datetime or list of datetime.datetime
        ``2024.5`` -> ``2024-07-02 00:00`` (half of the 366 days of 2024).
    """
    def one(y: float) -> _dt.datetime:
        year = int(y // 1)
        start = _dt.datetime(year, 1, 1)
        length = _dt.datetime(year + 1, 1, 1) - start
        return start + (y - year) * length

    if isinstance(years, (int, float)):
        return one(float(years))
    return [one(float(y)) for y in years]
