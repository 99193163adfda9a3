"""The published schema of scenario files (``scenarios/schema.json``).

The pydantic models below describe what a scenario file may contain, model-blind: keys,
types, intervention kinds and the keys each kind takes. :func:`json_schema` turns them into a
JSON Schema (draft 2020-12) that editors use to check scenario files as they are typed (for
example with the YAML language server: ``# yaml-language-server: $schema=schema.json``).

:func:`aicarousel.scenarios.read_scenario_file` checks every file against the same models, so a
file the loader accepts is one the published schema accepts. The model-aware checks (names are
constants of the model, values inside their ranges, dates inside the run, ``extends`` chains)
stay in :mod:`aicarousel.scenarios`, on top of this schema.

Regenerate the committed schema after changing the models::

    python -m aicarousel.scenario_schema            # writes scenarios/schema.json
    python -m aicarousel.scenario_schema --check    # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import paths
from .errors import ScenarioError

#: Where the published schema is committed.
SCHEMA_FILE = paths.SCENARIOS_DIR / "schema.json"

#: A finite number (booleans and numeric strings are refused, as the loader refuses them).
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
#: A year: a decimal year (2026.5) or an ISO date (2026-07-01).
Year = Union[Number, _dt.date]
#: A Vensim variable name.
Name = Annotated[str, Field(min_length=1, pattern=r"\S")]

_STRICT = ConfigDict(extra="forbid")  # numbers are strict through `Number`


class _Change(BaseModel):
    """An intervention that sets a new value: exactly one of ``to`` and ``scale``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["to"]}, {"required": ["scale"]}]})

    variable: Name = Field(description="Vensim name of the constant changed.")
    to: Number | None = Field(None, description="New value, in the constant's model units.")
    scale: Number | None = Field(None, description="Factor on the value in force just before.")

    @model_validator(mode="after")
    def _one_of_to_scale(self):
        if (self.to is None) == (self.scale is None):
            raise ValueError("give exactly one of 'to' (new value) or 'scale' (factor)")
        return self


class Step(_Change):
    """The constant jumps to a new value at ``at``."""

    type: Literal["step"]
    at: Year = Field(description="Year of the jump (decimal year or ISO date).")


class Ramp(_Change):
    """The constant changes linearly from ``start`` to ``end``."""

    type: Literal["ramp"]
    start: Year = Field(description="Year the ramp starts.")
    end: Year = Field(description="Year the ramp ends (after start).")


class Table(BaseModel):
    """Piecewise-linear (year, value) points; flat before the first and after the last."""

    model_config = _STRICT

    variable: Name = Field(description="Vensim name of the constant changed.")
    type: Literal["table"]
    points: list[tuple[Year, Number]] = Field(
        min_length=1, description="[year, value] pairs, years strictly increasing.")


Intervention = Annotated[Union[Step, Ramp, Table], Field(discriminator="type")]


class ScenarioDocument(BaseModel):
    """One scenario file (``scenarios/<name>.yaml``)."""

    model_config = ConfigDict(extra="forbid",
                              title="aicarousel scenario",
                              json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"})

    name: Name = Field(description="Scenario name; must equal the file name stem.")
    description: str = Field("", description="What the scenario represents, citing sources.")
    extends: Name | None = Field(None, description="Parent scenario merged first.")
    params: dict[Name, Number] | None = Field(
        None, description="Constant overrides by Vensim name (model units).")
    interventions: list[Intervention] | None = Field(
        None, description="Time-varying overrides of constants.")


#: Parts of a pydantic error location that name a union member, not a key of the file.
_UNION_TAGS = {"step", "ramp", "table", "float", "date"}


def _location(loc: tuple) -> str:
    """``('interventions', 0, 'step', 'at')`` -> ``interventions[0].at`` (union tags dropped)."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif (part in _UNION_TAGS and i > 0 and loc[i - 1] != "params") or \
                str(part).startswith(("function-", "tagged-union")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def check(data: Any, source: str) -> ScenarioDocument:
    """Check one scenario document against the published schema.

    Parameters
    ----------
    data : Any
        The YAML document (as :func:`yaml.safe_load` returns it).
    source : str
        File name, named in the error.

    Returns
    -------
    ScenarioDocument

    Raises
    ------
    ScenarioError
        On the first violation, naming the file and the key.
    """
    try:
        return ScenarioDocument.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _location(tuple(err["loc"]))
        key = f" key '{where}'" if where else ""
        raise ScenarioError(f"{source}:{key} does not match scenarios/schema.json: "
                            f"{err['msg']}") from None


def json_schema() -> dict:
    """The JSON Schema of scenario files, as committed in ``scenarios/schema.json``."""
    return ScenarioDocument.model_json_schema()


def schema_text() -> str:
    """:func:`json_schema` as the exact text of the committed file."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``scenarios/schema.json`` (or, with ``--check``, report whether it is current)."""
    ap = argparse.ArgumentParser(prog="python -m aicarousel.scenario_schema", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the committed schema is stale")
    args = ap.parse_args(argv)
    text = schema_text()
    if args.check:
        current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
        if current != text:
            print(f"{paths.relative_to_root(SCHEMA_FILE)} is stale: run python -m "
                  "aicarousel.scenario_schema", file=sys.stderr)
            return 1
        return 0
    from .atomic import write_text

    write_text(SCHEMA_FILE, text)
    print(f"wrote {paths.relative_to_root(SCHEMA_FILE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
