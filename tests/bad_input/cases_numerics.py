"""Numbers that make a run meaningless, and the parameter table (harden-numerics, issue 9).

Every entry point refuses the same values with the same validator (``aicarousel.params``):
``aicarousel run``, :func:`aicarousel.model.run` and the ensemble API
(``ParameterValueError`` / ``UnknownParameterError``), and the parameter table reader
(``AicarouselError`` naming file, line and column).
"""

from pathlib import Path

import numpy as np

from aicarousel import model, params
from aicarousel.errors import AicarouselError, ParameterValueError, UnknownParameterError

from .harness import Case


def _run(*argv):
    return ["run", "-q", "--output", "{tmp}/r.nc", *argv]


def _cli(id_, argv, message, **kw):
    return Case(id_, argv=_run(*argv), message=message, **kw)


def _api(id_, call, message, raises=ParameterValueError):
    return Case(id_, call=call, raises=raises, message=message)


def _ens(*args, **kw):
    from aicarousel.ensemble import compile_model
    kw.setdefault("outputs", ["Lab Cash"])
    kw.setdefault("final_time", 2025)
    return compile_model().run_arrays(*args, **kw)


def _table(text: str | bytes):
    def setup(sb: Path) -> None:
        src = params.paths.PARAMETERS_CSV.read_text(encoding="utf-8")
        if isinstance(text, bytes):
            (sb / "parameters.csv").write_bytes(text)
        else:
            (sb / "parameters.csv").write_text(text.replace("{table}", src), encoding="utf-8")
    return setup


def _bad_cell(column: str, value: str):
    """The real table with one cell of 'Construction time' replaced."""
    def setup(sb: Path) -> None:
        import csv
        import io
        rows = list(csv.reader(io.StringIO(params.paths.PARAMETERS_CSV.read_text("utf-8"))))
        col = rows[0].index(column)
        for r in rows:
            if r[0] == "Construction time":
                r[col] = value
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        (sb / "parameters.csv").write_text(out.getvalue(), encoding="utf-8")
    return setup


def _load_problem(sb):
    from aicarousel.sensitivity import load_problem
    return load_problem(csv=sb / "parameters.csv")


CASES = [
    # --- aicarousel run: durations, ranges, run length, duplicates (issue items 5, 6)
    _cli("run-duration-below-time-step", ["--set", "Value adjustment time=0.001"],
         "'Value adjustment time' = 0.001 Year is shorter than TIME STEP"),
    _cli("run-duration-near-zero", ["--set", "Contract length=1e-9"],
         "'Contract length' = 1e-09 Year is shorter than TIME STEP"),
    _cli("run-duration-negative", ["--set", "Contract length=-1"], "below its minimum 0"),
    _cli("run-duration-zero", ["--set", "Construction time=0"], "shorter than TIME STEP"),
    _cli("run-time-step-longer-than-duration", ["--time-step", "0.5", "--saveper", "0.5"],
         "shorter than TIME STEP (0.5 Year)"),
    _cli("run-final-time-huge", ["--final-time", "1e308"], "10,000,000"),
    _cli("run-time-step-tiny", ["--time-step", "1e-300"], "MAX_STEPS"),
    _cli("run-final-time-nan", ["--final-time", "nan"], "finite number"),
    _cli("run-final-time-inf", ["--final-time", "inf"], "finite number"),
    _cli("run-final-time-before-start", ["--final-time", "1900"], "final_time (1900) must be after"),
    _cli("run-time-step-zero", ["--time-step", "0"], "time_step must be > 0"),
    _cli("run-saveper-longer-than-run", ["--final-time", "2026", "--saveper", "100"],
         "longer than the run"),
    _cli("run-lever-above-range", ["--set", "Outside funding availability=5"], "above its maximum 1"),
    _cli("run-lever-below-range", ["--set", "Outside funding availability=-0.1"],
         "below its minimum 0"),
    _cli("run-value-overflows-to-inf", ["--set", "AI demand multiplier=1e400"], "finite"),
    _cli("run-duplicate-spellings", ["--set", "AI demand multiplier=0.7",
                                     "--set", "ai_demand_multiplier=0.8"],
         "'AI demand multiplier' and 'ai_demand_multiplier' both name 'AI demand multiplier'"),
    _cli("run-duplicate-case", ["--set", "AI demand multiplier=0.7",
                                "--set", "ai demand MULTIPLIER=0.8"], "both name"),
    _cli("run-set-a-stock", ["--set", "Lab Cash=5"], "is a stock"),
    _cli("run-set-control-time-step-zero", ["--set", "TIME STEP=0"], "time_step must be > 0"),
    _cli("run-huge-name-truncated", ["--set", "x" * 20000 + "=1"], "unknown parameter",
         check=lambda sb, st, err: None if len(err) < 600 else (_ for _ in ()).throw(
             AssertionError(f"message of {len(err)} characters"))),
    # --- Python API: model.run
    _api("api-run-duration-below-time-step",
         lambda sb: model.run({"Value adjustment time": 0.001}), "shorter than TIME STEP"),
    _api("api-run-complex-value", lambda sb: model.run({"AI demand multiplier": 0.8 + 1j}),
         "complex"),
    _api("api-run-text-value", lambda sb: model.run({"AI demand multiplier": "0.8"}),
         "must be a number"),
    _api("api-run-bool-value", lambda sb: model.run({"Outside funding availability": True}),
         "must be a number"),
    _api("api-run-final-time-huge", lambda sb: model.run(final_time=1e308), "MAX_STEPS"),
    _api("api-run-duplicate-spellings",
         lambda sb: model.run({"AI demand multiplier": 0.7, "ai_demand_multiplier": 0.8}),
         "both name"),
    _api("api-run-series-with-nan",
         lambda sb: model.run({"AI demand multiplier": __import__("pandas").Series(
             [1.0, np.nan], index=[2024.0, 2035.0])}), "finite"),
    # --- Python API: the ensemble refuses what model.run refuses
    _api("api-ensemble-lever-above-range", lambda sb: _ens({"Outside funding availability": 5}),
         "above its maximum"),
    _api("api-ensemble-duration-below-time-step",
         lambda sb: _ens({"Value adjustment time": 0.001}), "shorter than TIME STEP"),
    _api("api-ensemble-one-bad-run",
         lambda sb: _ens({"Contract length": np.array([5.0, 1e-9])}), "'Contract length'"),
    _api("api-ensemble-negative-duration-run",
         lambda sb: _ens({"Construction time": np.array([2.0, -1.0])}), "below its minimum 0"),
    _api("api-ensemble-nan-run", lambda sb: _ens({"AI demand multiplier": np.array([1.0, np.nan])}),
         "finite"),
    _api("api-ensemble-complex", lambda sb: _ens({"AI demand multiplier": np.array([1 + 1j])}),
         "complex"),
    _api("api-ensemble-time-step-tiny", lambda sb: _ens(time_step=1e-300), "MAX_STEPS"),
    _api("api-ensemble-final-time-nan", lambda sb: _ens(final_time=float("nan")), "finite"),
    _api("api-ensemble-duplicate-spellings",
         lambda sb: _ens({"AI demand multiplier": 0.7, "ai_demand_multiplier": 0.8}), "both name"),
    _api("api-ensemble-unknown-suggests", lambda sb: _ens({"AI demand multiplyer": 0.7}),
         "did you mean 'AI demand multiplier'", raises=UnknownParameterError),
    # --- the parameter table (issue item 8)
    Case("api-table-non-numeric-cell", setup=_bad_cell("low", "one"),
         call=lambda sb: params.read_table(sb / "parameters.csv"), raises=AicarouselError,
         message="column 'low': 'one' is not a finite number"),
    Case("api-table-non-numeric-drops-nothing", setup=_bad_cell("high", "3 years"),
         call=_load_problem, raises=ParameterValueError, message="('construction time'), column 'high'"),
    Case("api-table-nan-cell", setup=_bad_cell("value", "nan"),
         call=lambda sb: params.read_table(sb / "parameters.csv"), raises=AicarouselError,
         message="column 'value'"),
    Case("api-table-binary", setup=_table(b"\x00\x01\x02PK\x03\x04" + bytes(range(256))),
         call=lambda sb: params.read_table(sb / "parameters.csv"), raises=AicarouselError,
         message="binary file"),
    Case("api-table-not-utf8", setup=_table("{table}".encode() if False else
                                            "name,value\ncaf\xe9,1\n".encode("latin-1")),
         call=lambda sb: params.read_table(sb / "parameters.csv"), raises=AicarouselError,
         message="not UTF-8"),
    Case("api-table-duplicate-row",
         setup=_table("{table}Construction time,2,Year,1,3,uncertain,x,2025,y\n"),
         call=lambda sb: params.read_table(sb / "parameters.csv"), raises=AicarouselError,
         message="'Construction time' has more than one row"),
]
