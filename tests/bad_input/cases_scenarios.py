"""Scenario files a careless or hostile user could write (harden-numerics, issue 9).

Each row writes ``sc/<name>.yaml`` in the sandbox and runs ``aicarousel experiment --check``
on it (nothing may be written), or calls the scenarios API (``ScenarioError``).
"""

from pathlib import Path

from aicarousel import scenarios
from aicarousel.errors import ScenarioError

from .harness import Case

#: The 372-byte alias bomb of issue 9 (nine levels of nine aliases each).
ALIAS_BOMB = ("name: bad\nparams:\n  a: &a [1,1,1,1,1,1,1,1,1]\n"
              + "".join(f"  {chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n"
                        for i in range(8)))


def _write(text: str | bytes, name: str = "bad"):
    def setup(sb: Path) -> None:
        d = sb / "sc"
        d.mkdir(exist_ok=True)
        p = d / f"{name}.yaml"
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8")
    return setup


def _check(id_, text, message, name="bad", **kw):
    return Case(id_, argv=["experiment", "--check", "--scenarios-dir", "{tmp}/sc", name],
                setup=_write(text, name), message=message, **kw)


def _step(var, at, to):
    return (f"name: bad\ninterventions:\n  - variable: {var}\n    type: step\n    at: {at}\n"
            f"    to: {to}\n")


def _one_line_short(sb, status, text):
    assert len(text.strip()) < 600, f"message of {len(text)} characters"


CASES = [
    _check("scenario-alias-bomb", ALIAS_BOMB, "aliases", check=_one_line_short),
    _check("scenario-duplicate-top-key", "name: bad\nparams: {}\nparams:\n  Construction time: 2\n",
           "duplicate key 'params'"),
    _check("scenario-duplicate-param-key",
           "name: bad\nparams:\n  AI demand multiplier: 0.7\n  AI demand multiplier: 0.8\n",
           "duplicate key 'AI demand multiplier'"),
    _check("scenario-duplicate-intervention-key",
           "name: bad\ninterventions:\n  - variable: AI demand multiplier\n    type: step\n"
           "    at: 2027\n    at: 2028\n    to: 0.5\n", "duplicate key 'at'"),
    _check("scenario-two-spellings-one-constant",
           "name: bad\nparams:\n  AI demand multiplier: 0.7\n  ai_demand_multiplier: 0.8\n",
           "both name 'AI demand multiplier'"),
    _check("scenario-not-utf8", "name: bad\ndescription: caf\xe9\n".encode("latin-1"),
           "not UTF-8"),
    _check("scenario-binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
           "binary file"),
    _check("scenario-control-character", "name: bad\ndescription: \x07bell\n", "not valid YAML"),
    _check("scenario-impossible-date", _step("AI demand multiplier", "2026-02-30", 0.5),
           "impossible date '2026-02-30'"),
    _check("scenario-month-13", _step("AI demand multiplier", "2026-13-01", 0.5),
           "impossible date"),
    _check("scenario-year-before-run", _step("AI demand multiplier", 1900, 0.5),
           "year 1900 outside the run"),
    _check("scenario-date-before-run",
           "name: bad\ninterventions:\n  - variable: AI demand multiplier\n    type: ramp\n"
           "    start: 1900-01-01\n    end: 2027\n    to: 0.5\n", "outside the run"),
    _check("scenario-duration-below-time-step", "name: bad\nparams:\n  Value adjustment time: 0.001\n",
           "shorter than TIME STEP"),
    _check("scenario-negative-duration", "name: bad\nparams:\n  Contract length: -1\n",
           "'Contract length'"),
    _check("scenario-tiny-duration", "name: bad\nparams:\n  Contract length: 1.0e-9\n",
           "shorter than TIME STEP"),
    _check("scenario-step-to-tiny-duration", _step("Value adjustment time", 2027, 0.001),
           "shorter than TIME STEP"),
    _check("scenario-lever-out-of-range", "name: bad\nparams:\n  Outside funding availability: 5\n",
           "outside its range"),
    _check("scenario-scale-out-of-range",
           "name: bad\ninterventions:\n  - variable: Outside funding availability\n    type: ramp\n"
           "    start: 2026\n    end: 2027\n    scale: 10\n", "outside its range"),
    _check("scenario-nan-value", "name: bad\nparams:\n  AI demand multiplier: .nan\n",
           "finite number"),
    _check("scenario-inf-value", "name: bad\nparams:\n  AI demand multiplier: .inf\n",
           "finite number"),
    _check("scenario-text-value", "name: bad\nparams:\n  AI demand multiplier: lots\n",
           "expected a finite number"),
    _check("scenario-bool-value", "name: bad\nparams:\n  Outside funding availability: yes\n",
           "expected a finite number"),
    _check("scenario-nan-table-point",
           "name: bad\ninterventions:\n  - variable: AI demand multiplier\n    type: table\n"
           "    points: [[2026, 1], [2027, .nan]]\n", "finite number"),
    _check("scenario-unknown-constant-suggests",
           "name: bad\nparams:\n  AI demand multiplyer: 0.8\n", "did you mean 'AI demand multiplier'"),
    _check("scenario-equation-not-constant", "name: bad\nparams:\n  Lab Revenue: 5\n",
           "computed by an equation"),
    _check("scenario-top-level-list", "- name: bad\n", "expected a mapping"),
    _check("scenario-huge-key-truncated", "name: bad\n" + "k" * 1000 + ": 1\n", "unknown key",
           check=_one_line_short),
    _check("scenario-huge-constant-name-truncated", "name: bad\nparams:\n  " + "k" * 1000 + ": 1\n",
           "unknown model constant", check=_one_line_short),
    _check("scenario-overlong-key", "name: bad\n" + "k" * 20000 + ": 1\n", "not valid YAML"),
    _check("scenario-huge-value-truncated",
           "name: bad\nparams:\n  AI demand multiplier: [" + ",".join(["1"] * 20000) + "]\n",
           "expected a finite number", check=_one_line_short),
    _check("scenario-too-large", "name: bad\ndescription: " + "x" * 1_100_000 + "\n",
           "larger than"),
    _check("scenario-deep-nesting", "name: bad\nparams: " + "[" * 5000 + "]" * 5000 + "\n",
           "bad.yaml", check=_one_line_short),
    Case("api-scenario-alias-bomb", setup=_write(ALIAS_BOMB),
         call=lambda sb: scenarios.read_scenario_file(sb / "sc" / "bad.yaml"),
         raises=ScenarioError, message="aliases"),
    Case("api-scenario-to-params-tiny-duration",
         setup=_write("name: bad\nparams:\n  Value adjustment time: 0.001\n"),
         call=lambda sb: scenarios.to_params("bad", scenarios_dir=sb / "sc"),
         raises=ScenarioError, message="shorter than TIME STEP"),
    Case("api-scenario-duplicate-key",
         setup=_write("name: bad\nname: bad\n"),
         call=lambda sb: scenarios.validate_all(scenarios_dir=sb / "sc"),
         raises=ScenarioError, message="duplicate key 'name'"),
]
