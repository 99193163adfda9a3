"""The bad-input table: every row of ``tests/bad_input/cases_*.py`` checked the same way.

Each row asserts exit status 2 (or the documented exception), one line naming the bad thing,
no traceback, and no file created, changed or deleted except what the command owns
(``bad_input.harness.check_case``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bad_input.harness import CASES_GLOB, Case, check_case

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


def _all_cases() -> list[Case]:
    cases: list[Case] = []
    for f in sorted((Path(__file__).parent / "bad_input").glob(CASES_GLOB)):
        cases += importlib.import_module(f"bad_input.{f.stem}").CASES
    return cases


CASES = _all_cases()


def test_case_ids_unique():
    ids = [c.id for c in CASES]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    assert not dup, f"duplicate row ids: {dup}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    check_case(case, sandbox)


def test_harness_catches_unowned_change_wrong_status_and_traceback(tmp_path: Path):
    """The harness itself can fail: a deleted user file, a wrong status, an escaped exception."""
    def setup(sb):
        (sb / "thesis.tex").write_text("mine")

    def delete(sb):
        (sb / "thesis.tex").unlink()
        raise ValueError("bad")

    for i, case in enumerate([
        Case("deletes", call=delete, setup=setup, raises=ValueError, message="bad"),
        Case("status", argv=["run", "--final-time", "2026", "--output", "{tmp}/r.nc"],
             owned=("r.nc",)),
        Case("wrong-exc", call=lambda sb: {}["x"], raises=ValueError),
    ]):
        sandbox = tmp_path / str(i)
        sandbox.mkdir()
        with pytest.raises(AssertionError):
            check_case(case, sandbox)
