"""``aicarousel whopaid``: output files, printed table and one-line errors (exit 2)."""

from __future__ import annotations

import pandas as pd
import pytest

from aicarousel import accounts as A
from aicarousel.cli import main

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


def _err(capsys, argv):
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_unknown_flow_names_the_closest_match(capsys):
    err = _err(capsys, ["whopaid", "--flow", "Chips investmnt in Lab"])
    assert "unknown flow" in err and "'Chips investment in Lab'" in err


@pytest.mark.parametrize("period, words", [("2030:2025", "start must come before"),
                                           ("2025-2030", "START:END"),
                                           ("1990:2030", "outside the run")])
def test_bad_period_is_refused(capsys, period, words):
    err = _err(capsys, ["whopaid", "--period", period])
    assert "period" in err and words in err


def test_unknown_scenario_is_refused(capsys):
    err = _err(capsys, ["whopaid", "--scenario", "no_such_scenario"])
    assert "no_such_scenario" in err


def test_whopaid_prints_and_writes_tables(capsys, tmp_path):
    out = tmp_path / "wp"
    status = main(["whopaid", "--flow", "chips equity in lab round", "--period", "2025:2030",
                   "--output-dir", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    assert "Chips equity in Lab round" in printed and "End users" in printed
    for name in ("who_paid", "who_paid_by_year_chips_equity_in_lab_round", "tfm", "balance_sheet"):
        assert (out / f"{name}.csv").exists() and (out / f"{name}.tex").exists()
    assert (out / "trace.nc").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left over
    table = pd.read_csv(out / "who_paid.csv").set_index("origin")
    shares = table["Chips equity in Lab round share"].drop("Total")
    assert shares.sum() == pytest.approx(1.0, rel=1e-9)
    by_year = pd.read_csv(out / "who_paid_by_year_chips_equity_in_lab_round.csv")
    assert list(by_year["year"]) == [2025, 2026, 2027, 2028, 2029]
    assert by_year["Total"].iloc[-1] == pytest.approx(
        table.loc["Total", "Chips equity in Lab round amount"], rel=1e-9)


def test_accounts_command_writes_the_matrices_and_refuses_a_bad_time(capsys, tmp_path):
    err = _err(capsys, ["accounts", "--time", "1900"])
    assert "time 1900" in err and "outside the run" in err
    acc = A.read_accounts()
    year = acc.time[0] + 5.0
    assert main(["accounts", "--time", f"{year:g}", "--output-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Transaction-flow matrix" in printed and "Balance sheet" in printed
    tfm = pd.read_csv(tmp_path / f"tfm_{year:g}.csv")
    flows = tfm[tfm["kind"] != "total"]
    assert len(flows) == len(acc.flows)
    scale = flows[list(acc.sectors)].abs().to_numpy().max()
    assert flows["Row sum"].abs().max() <= 1e-9 * scale
    assert (tmp_path / f"balance_sheet_{year:g}.tex").exists()


def test_whopaid_output_dir_keeps_a_users_files(capsys, tmp_path):
    """--output-dir is written file by file: a user's thesis beside the tables survives, our
    own old table is replaced, and a file in the directory's place is refused, not moved."""
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "thesis.tex").write_text("\\chapter{Who paid}\n")
    (out / "figures").mkdir()
    (out / "figures" / "fig1.pdf").write_bytes(b"%PDF-1.4 mine")
    (out / "who_paid.csv").write_text("stale\n")
    assert main(["whopaid", "--period", "2025:2027", "--output-dir", str(out)]) == 0
    assert (out / "thesis.tex").read_text() == "\\chapter{Who paid}\n"
    assert (out / "figures" / "fig1.pdf").read_bytes() == b"%PDF-1.4 mine"
    assert (out / "who_paid.csv").read_text() != "stale\n" and (out / "trace.nc").is_file()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    capsys.readouterr()
    blocker = tmp_path / "tables"
    blocker.write_text("my notes\n")
    assert main(["whopaid", "--output-dir", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a file, not a directory" in err
    assert blocker.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables", "thesis"]


def test_accounts_output_dir_keeps_a_users_files(capsys, tmp_path):
    (tmp_path / "thesis.tex").write_text("mine\n")
    assert main(["accounts", "--time", "2026", "--output-dir", str(tmp_path)]) == 0
    assert (tmp_path / "thesis.tex").read_text() == "mine\n"
    assert (tmp_path / "tfm_2026.csv").is_file()
