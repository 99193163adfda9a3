"""The ``aicarousel`` command line: run/params/doc, --help everywhere, one-line errors."""

import subprocess
import sys

import pytest
import xarray as xr

from aicarousel import paths
from aicarousel.cli import COMMAND_MODULES, build_parser, main

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return list(action.choices)


def test_help_on_every_command(capsys):
    for argv in [["--help"]] + [[c, "--help"] for c in _subcommands()]:
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "usage: aicarousel" in out, argv


def test_core_commands_registered():
    assert {"run", "params", "doc"} <= set(_subcommands())
    assert COMMAND_MODULES[:3] == ["aicarousel.commands.run", "aicarousel.commands.params",
                                   "aicarousel.commands.doc"]


def test_run_writes_netcdf_and_summary(tmp_path, capsys):
    out = tmp_path / "r.nc"
    assert main(["run", "--set", "AI demand multiplier=0.8", "--final-time", "2026",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Cloud Debt" in printed and "$B" in printed
    ds = xr.load_dataset(out)
    assert float(ds["AI demand multiplier"][0]) == pytest.approx(0.8)
    assert '"AI demand multiplier": 0.8' in ds.attrs["params_changed"]


def test_unknown_set_name_exits_2_with_one_line(tmp_path, capsys):
    out = tmp_path / "r.nc"
    assert main(["run", "--set", "AI demand multiplyer=0.8", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "AI demand multiplyer" in err and "did you mean 'AI demand multiplier'" in err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("arg, needle", [
    ("AI demand multiplier", 'expected "Name=value"'),
    ("AI demand multiplier=abc", "is not a number"),
    ("Construction time=-2", "Construction time"),
    ("Outside funding availability=5", "above its maximum"),
])
def test_bad_set_values(tmp_path, capsys, arg, needle):
    out = tmp_path / "r.nc"
    assert main(["run", "--set", arg, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_params_lists_every_constant(capsys):
    assert main(["params", "--csv"]) == 0
    out = capsys.readouterr().out
    import io

    import pandas as pd
    df = pd.read_csv(io.StringIO(out))
    table = pd.read_csv(paths.PARAMETERS_CSV)
    assert set(df["name"]) == set(table["name"])
    assert df["source"].notna().all()


def test_doc_lists_every_variable(capsys):
    assert main(["doc", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    for name in ("Cloud Debt", "Lab Cash", "Lab revenue from end users"):
        assert name in out


def test_console_script_installed(tmp_path):
    """The installed entry point runs (subprocess), and errors go to stderr with status 2."""
    exe = paths.ROOT / ".venv" / "bin" / "aicarousel"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aicarousel.cli"]
    r = subprocess.run(cmd + ["run", "--set", "Nope=1", "-o", str(tmp_path / "x.nc")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "x.nc").exists()
