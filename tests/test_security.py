"""No input file and no cache entry may execute code (issue 9, item 3).

Each exploit test builds a hostile input whose payload creates a marker file when executed,
runs it the way a user would, and asserts the marker was never created and the input was
refused (or neutralised) with a one-line error. Before the hardening every exploit here
created its marker.
"""

from __future__ import annotations

import io
import contextlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aicarousel import cache, ensemble, model, paths
from aicarousel.cli import main
from aicarousel.errors import ModelFileError

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

SHARED = paths.ROOT.parent / "shared" / "test-models"


def _mdl(comment: str = "", units: str = "Dmnl", extra: str = "", name: str = "x") -> str:
    return ("{UTF-8}\n" + name + " = INTEG( y, 1)\n\t~\t" + units + "\n\t~\t" + comment + "\n\t|\n\n"
            "y = 0.1 * " + (f'"{name[1:-1]}"' if name.startswith('"') else name) +
            "\n\t~\t1/Year\n\t~\t|\n\n" + extra +
            "INITIAL TIME = 0\n\t~\tYear\n\t~\t|\nFINAL TIME = 1\n\t~\tYear\n\t~\t|\n"
            "TIME STEP = 0.25\n\t~\tYear\n\t~\t|\nSAVEPER = TIME STEP\n\t~\tYear\n\t~\t|\n")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """A private cache under tmp_path (and a clean process-level cache state)."""
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(cache, "_CHECKED", set())
    monkeypatch.setattr(cache, "_FALLBACK", None)
    monkeypatch.setattr(ensemble, "_CACHE", {})
    return tmp_path / "cache"


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, err.getvalue()


def _payload(marker: Path) -> str:
    return f'open("{marker}", "w").write("pwned")'


# ------------------------------------------------------------------ hostile model text ---

EXPLOITS = {
    # PySD puts the comment in a docstring; a backslash becomes a newline
    "mdl-comment-triple-quote": lambda m: _mdl(comment='"""\\' + _payload(m) + '\\"""'),
    "mdl-comment-triple-quote-indent": lambda m: _mdl(
        comment='"""\\' + _payload(m) + '\\x = """'),
    # an escaped quote in a GET XLS file name closes PySD's r'...' literal
    "mdl-get-xls-file-name": lambda m: _mdl(extra=(
        "z = GET XLS CONSTANTS('a\\x27 and " + _payload(m).replace('"', '"') +
        " and \\x27', 'tab', 'A1')\n\t~\tDmnl\n\t~\t|\n\n")),
    "mdl-get-direct-constants-tab": lambda m: _mdl(extra=(
        "z = GET DIRECT CONSTANTS('a.csv', ',\\x27 and " + _payload(m) +
        " and \\x27', 'A1')\n\t~\tDmnl\n\t~\t|\n\n")),
    # PySD's parser eval()s lookup ranges: '[' anything but ']' ']'
    "mdl-with-lookup-range": lambda m: _mdl(extra=(
        "z = WITH LOOKUP(y, ([(" + _payload(m) + ",0)-(10,10)], (0,0),(10,10)))\n\t~\tDmnl"
        "\n\t~\t|\n\n")),
    "mdl-lookup-table-range": lambda m: _mdl(extra=(
        "tab([(" + _payload(m) + ",0)-(10,10)], (0,0),(10,10))\n\t~\tDmnl\n\t~\t|\n\n")),
    "mdl-macro-comment": lambda m: (
        "{UTF-8}\n:MACRO: EXPR MACRO(input, parameter)\nEXPR MACRO = input * parameter\n"
        "\t~\tinput\n\t~\t\"\"\"\\" + _payload(m) + "\\\"\"\"\n\t|\n\n:END OF MACRO:\n"
        + _mdl(extra="w = EXPR MACRO(y, 2)\n\t~\tDmnl\n\t~\t|\n\n")[len("{UTF-8}\n"):]),
}


def _xmile(doc: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">\n'
            '<header><vendor>x</vendor><name>t</name></header>\n'
            '<sim_specs><stop>2.0</stop><start>0.0</start><dt>0.5</dt></sim_specs>\n'
            '<model><variables>\n'
            f'<aux name="a"><doc>{doc}</doc><eqn>1</eqn></aux>\n'
            '<stock name="s"><inflow>"a"</inflow><eqn>0</eqn></stock>\n'
            '<flow name="f"><eqn>"a"</eqn></flow>\n'
            '</variables></model></xmile>\n')


@pytest.mark.parametrize("kind", sorted(EXPLOITS))
def test_model_text_never_executes(kind, tmp_path, fresh_cache):
    marker = tmp_path / "MARKER"
    mdl = tmp_path / "evil.mdl"
    mdl.write_text(EXPLOITS[kind](marker))
    status, err = _cli(["run", "--model", str(mdl), "--output", str(tmp_path / "r.nc")])
    assert not marker.exists(), f"{kind}: the model file executed code"
    assert "Traceback" not in err
    if status != 0:
        assert status == 2 and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("kind", ["mdl-with-lookup-range", "mdl-lookup-table-range"])
@pytest.mark.parametrize("command", ["loops", "stability"])
def test_parser_never_executes(kind, command, tmp_path, fresh_cache):
    """The IR commands parse with PySD too (no translation): its eval() must not run code."""
    marker = tmp_path / "MARKER"
    mdl = tmp_path / "evil.mdl"
    mdl.write_text(EXPLOITS[kind](marker))
    status, err = _cli([command, "--model", str(mdl)])
    assert not marker.exists(), f"{kind}: parsing the model executed code"
    assert status == 2 and "only numbers are allowed" in err, err


def test_xmile_doc_never_executes(tmp_path, fresh_cache):
    marker = tmp_path / "MARKER"
    x = tmp_path / "evil.xmile"
    x.write_text(_xmile('"""\\' + _payload(marker).replace('"', "&quot;") + '\\"""'))
    status, err = _cli(["run", "--model", str(x), "--output", str(tmp_path / "r.nc")])
    assert not marker.exists(), "the XMILE <doc> executed code"
    assert "Traceback" not in err


def test_comment_with_quotes_and_backslashes_still_runs(tmp_path, fresh_cache):
    """Neutralised, not refused: a harmless comment full of quotes translates and runs."""
    mdl = tmp_path / "odd.mdl"
    mdl.write_text(_mdl(comment="""He said \"\"\"hello\"\"\" and ''' then \\ and \\n \\x41 """
                                """'; "; \\\\ # end"""))
    ds = model.run(model_file=mdl)
    assert float(ds["x"][-1]) == pytest.approx(1.025 ** 4)
    assert "hello" in ds["x"].attrs["description"]


def test_translation_with_forbidden_construct_is_refused(tmp_path, fresh_cache):
    """The AST check is the net under the sanitiser: any statement outside PySD's vocabulary."""
    from aicarousel.guard import verify_translation

    good = (fresh_cache / "g.py")
    fresh_cache.mkdir(parents=True, exist_ok=True)
    src = model.translated_path(paths.REDUCED_MODEL_FILE).read_text()
    for bad in ['import os\n', 'x = __import__("os")\n', 'open("f")\n',
                'def f():\n    return getattr(np, "load")("a")\n',
                'y = np.load("a.npy")\n', 'z = (1).__class__\n', 'class A:\n    pass\n',
                '_root.joinpath("a").write_text("x")\n',
                'Macro("/tmp/evil.py", {}, "m", time_initialization=None, py_name="m")\n']:
        good.write_text(src + "\n" + bad)
        with pytest.raises(ModelFileError, match="refused"):
            verify_translation(good, model_name="m.mdl")
    good.write_text(src)
    verify_translation(good, model_name="m.mdl")  # PySD's own output passes


# ------------------------------------------------------------------ cache trust ---

class _Boom:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_planted_ir_pickle_is_not_unpickled(tmp_path, fresh_cache):
    ensemble.compile_model(paths.REDUCED_MODEL_FILE)
    pkls = list(fresh_cache.rglob("*.ir.pkl"))
    assert pkls, "the IR cache should exist"
    marker = tmp_path / "MARKER"
    for p in pkls:
        p.write_bytes(pickle.dumps(_Boom(marker)))
    ensemble._CACHE.clear()
    cm = ensemble.compile_model(paths.REDUCED_MODEL_FILE)
    assert not marker.exists(), "a planted pickle in the cache ran code"
    assert cm.ir.sha256 == model.model_hash(paths.REDUCED_MODEL_FILE)


def test_edited_cached_translation_is_detected(tmp_path, fresh_cache, capsys):
    ref = model.run(model_file=paths.REDUCED_MODEL_FILE, final_time=2029)
    py = model.translated_path(paths.REDUCED_MODEL_FILE)
    text = py.read_text()
    # change every 'return <number>' constant: results would silently change
    import re
    edited = re.sub(r"(\n    return )(\d+(\.\d+)?)\n", r"\g<1>(\2 * 1.5)\n", text)
    assert edited != text
    py.write_text(edited)
    again = model.run(model_file=paths.REDUCED_MODEL_FILE, final_time=2029)
    for v in ref.data_vars:
        assert (again[v].values == ref[v].values).all(), f"{v} changed: the edit was used"
    assert "fails verification" in capsys.readouterr().err


def test_planted_bytecode_is_not_used(tmp_path, fresh_cache):
    """A .pyc beside the translation would be imported instead of the verified source."""
    import importlib.util
    import py_compile

    model.load(paths.REDUCED_MODEL_FILE)
    py = model.translated_path(paths.REDUCED_MODEL_FILE)
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.py"
    evil.write_text(_payload(marker) + "\n" + py.read_text())
    pyc = Path(importlib.util.cache_from_source(str(py)))
    pyc.parent.mkdir(exist_ok=True)
    py_compile.compile(str(evil), cfile=str(pyc), dfile=str(py))
    st = py.stat()
    data = bytearray(pyc.read_bytes())  # header: magic, flags, mtime, size of the source
    data[8:12] = int(st.st_mtime).to_bytes(4, "little")
    data[12:16] = (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    pyc.write_bytes(bytes(data))
    model.load(paths.REDUCED_MODEL_FILE)
    assert not marker.exists(), "a planted .pyc in the cache ran code"


@pytest.mark.skipif(not (shutil.which("cc") or shutil.which("gcc")), reason="needs a C compiler")
def test_planted_shared_library_is_not_loaded(tmp_path, fresh_cache, monkeypatch):
    monkeypatch.delenv("AICAROUSEL_NO_CC", raising=False)
    monkeypatch.setattr(ensemble, "_VPOW", None)
    assert ensemble._vector_pow() is not None
    libs = list(fresh_cache.rglob("vpow-*.so"))
    assert libs
    marker = tmp_path / "MARKER"
    src = tmp_path / "evil.c"
    src.write_text('#include <stdio.h>\n__attribute__((constructor)) static void boom(void) '
                   f'{{ FILE *f = fopen("{marker}", "w"); if (f) fclose(f); }}\n'
                   'void aicarousel_vpow(void) {}\n')
    cc = shutil.which("cc") or shutil.which("gcc")
    for lib in libs:
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    # a fresh process: dlopen would return this process's already loaded library
    subprocess.run([sys.executable, "-c", "from aicarousel import ensemble; ensemble._vector_pow()"],
                   env={**os.environ, "AICAROUSEL_CACHE": str(fresh_cache)}, check=True)
    assert not marker.exists(), "a planted shared library in the cache was loaded"


# ------------------------------------------------------------------ cache privacy ---

def test_cache_is_private(fresh_cache):
    model.translated_path(paths.REDUCED_MODEL_FILE)
    assert (fresh_cache.stat().st_mode & 0o777) == 0o700


def test_world_writable_cache_is_made_private(fresh_cache, capsys):
    fresh_cache.mkdir(mode=0o777)
    os.chmod(fresh_cache, 0o777)
    model.translated_path(paths.REDUCED_MODEL_FILE)
    assert (fresh_cache.stat().st_mode & 0o777) == 0o700
    assert "writable by other users" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_cache_owned_by_another_user_is_not_used(fresh_cache, capsys):
    fresh_cache.mkdir(mode=0o700)
    os.chown(fresh_cache, 65534, 65534)
    py = model.translated_path(paths.REDUCED_MODEL_FILE)
    assert fresh_cache not in py.parents
    assert "owned by another user" in capsys.readouterr().err
    assert list(fresh_cache.iterdir()) == []
