"""``aicarousel calibrate --point-only``: the weighted least squares point estimate alone.

The shipped baseline's estimated values come from this estimate (docs/model.md, "Calibration
and the baseline"), so it must be reachable without sampling a posterior, print the estimate
and the fit, and write nothing.
"""

from __future__ import annotations

import re

from aicarousel.cli import main
import pytest

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


def test_point_only_prints_the_estimate_and_the_fit_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["calibrate", "--point-only", "--params", "Initial Lab revenue",
                 "--starts", "1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    m = re.search(r"^Initial Lab revenue\s+(\S+)\s+->\s+(\S+)\s+\[1\.6, 3\]", text, re.M)
    assert m, text
    assert 1.6 <= float(m.group(2)) <= 3.0
    assert re.search(r"^  openai_revenue_2024\s+data 3\.7 ", text, re.M)
    assert re.search(r"\d+ of \d+ targets within tolerance", text)
    assert not out.exists()


def test_point_only_bad_starts(capsys):
    assert main(["calibrate", "--point-only", "--params", "Initial Lab revenue",
                 "--starts", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--starts 0" in err and err.count("\n") == 0


def test_starts_without_point_only_is_refused(capsys):
    assert main(["calibrate", "--params", "Initial Lab revenue", "--starts", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--point-only" in err and err.count("\n") == 0
