"""Fixtures shared by the test modules.

- ``load_script``: import a repository script (``figures/*.py``, ``analysis/*.py``,
  ``tests/regenerate.py``) as a module, by path.
- ``tiny_mdl``: write a tiny Vensim model (equations + the four control variables) to
  ``tmp_path`` for error-path tests.
- the ``machinery_step`` marker: a test module marked with it runs the carousel at TIME STEP
  1/64 instead of the model's 1/512, on a copy that differs from ``models/ai_carousel.mdl``
  in that one line (``paths.MODEL_FILE`` points at the copy while the module runs). It is for
  tests of machinery whose property holds at any step: the engines agree, the accounts add
  up, a sweep resumes, a sampler recovers what it was given, a figure is drawn, a bad input
  is refused. Tests of the model's behaviour and numbers (regression data, review findings,
  calibration targets, the validity report) are not marked and run the model file itself;
  ``REAL_MODEL_FILE`` names it in a marked module. Eight times fewer steps keep the suite
  near ten minutes (docs/model.md, "Time step").

The reference models of ``../shared/test-models`` and the comparison with their expected
outputs live in ``tests/reference_models.py``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from aicarousel import paths

#: The carousel's model file, whatever the ``machinery_step`` marker does to paths.MODEL_FILE.
REAL_MODEL_FILE = paths.MODEL_FILE
#: TIME STEP (years) of the carousel copy that ``machinery_step`` modules run.
MACHINERY_TIME_STEP = 1 / 64


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "machinery_step: run the carousel at TIME STEP 1/64 (a copy differing in that "
        "line alone) while this module runs; for properties that hold at any step")


def at_machinery_step(text: str) -> str:
    """The text of a Vensim model with its ``TIME STEP = <number>`` line set to
    :data:`MACHINERY_TIME_STEP` (exactly one such line, or AssertionError)."""
    new, n = re.subn(r"^TIME STEP\s*=\s*[0-9.eE+-]+[ \t]*$", f"TIME STEP  = {MACHINERY_TIME_STEP!r}",
                     text, count=1, flags=re.M)
    assert n == 1, "the model has no 'TIME STEP = <number>' line"
    return new


def machinery_copy(directory: Path) -> Path:
    """Copy ``models/`` to ``directory/models`` with the carousel's TIME STEP set to
    :data:`MACHINERY_TIME_STEP`, beside links to ``data/`` and ``scenarios/`` (the checks file
    and the scenarios refer to them relatively); return the copy of the model file."""
    models = Path(directory) / "models"
    models.mkdir(parents=True)
    for f in paths.MODELS_DIR.iterdir():
        if f.is_file():
            shutil.copy2(f, models / f.name)
    out = models / REAL_MODEL_FILE.name
    out.write_text(at_machinery_step(REAL_MODEL_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    for d in (paths.DATA_DIR, paths.SCENARIOS_DIR):
        (Path(directory) / d.name).symlink_to(d, target_is_directory=True)
    return out


def cli_argv(*args: str) -> list[str]:
    """argv that runs ``aicarousel *args`` in a fresh interpreter on this process's
    ``paths.MODEL_FILE`` (the TIME STEP 1/64 copy in a ``machinery_step`` module), for tests
    that must kill or time a separate process."""
    code = ("import sys; from pathlib import Path; from aicarousel import paths; "
            "paths.MODEL_FILE = Path(sys.argv[1]); from aicarousel.cli import main; "
            "sys.exit(main(sys.argv[2:]))")
    return [sys.executable, "-c", code, str(paths.MODEL_FILE), *args]


@pytest.fixture(scope="session")
def machinery_model_file(tmp_path_factory) -> Path:
    """The carousel at TIME STEP 1/64 (see the ``machinery_step`` marker)."""
    return machinery_copy(tmp_path_factory.mktemp("machinery"))


@pytest.fixture(scope="module", autouse=True)
def _machinery_step(request):
    """Point paths.MODEL_FILE at the 1/64 copy for a module marked ``machinery_step``."""
    if request.node.get_closest_marker("machinery_step") is None:
        yield None
        return
    path = request.getfixturevalue("machinery_model_file")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(paths, "MODEL_FILE", path)
        yield path


def import_script(path: Path) -> ModuleType:
    """Import the Python file ``path`` as a fresh module named after its stem."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def load_script():
    """``load_script(path)`` -> the script imported as a module (figures, analysis, tests)."""
    return import_script


def write_tiny_mdl(directory: Path, body: str, name: str = "tiny.mdl", *, final_time: float = 1,
                   time_step: float = 0.5, time_unit: str = "") -> Path:
    """Write ``{UTF-8}`` + ``body`` + INITIAL TIME = 0, FINAL TIME, TIME STEP, SAVEPER.

    ``body`` holds complete Vensim equations (each ending in ``|``); line 2 of the file is the
    first line of ``body``, so tests can assert the line numbers of errors.
    """
    control = "".join(f"{lhs} = {rhs}\n~ {time_unit} ~ |\n" for lhs, rhs in (
        ("INITIAL TIME", 0), ("FINAL TIME", final_time), ("TIME STEP", time_step),
        ("SAVEPER", "TIME STEP")))
    path = Path(directory) / name
    path.write_text("{UTF-8}\n" + body + control, encoding="utf-8")
    return path


@pytest.fixture
def tiny_mdl(tmp_path):
    """``tiny_mdl(body, name="tiny.mdl", final_time=1, time_step=0.5, time_unit="")`` -> path
    of a tiny model written to the test's ``tmp_path``."""
    def make(body: str, name: str = "tiny.mdl", **control) -> Path:
        return write_tiny_mdl(tmp_path, body, name, **control)
    return make
