"""Fixtures shared by the test modules.

- ``load_script``: import a repository script (``figures/*.py``, ``analysis/*.py``,
  ``tests/regenerate.py``) as a module, by path.
- ``tiny_mdl``: write a tiny Vensim model (equations + the four control variables) to
  ``tmp_path`` for error-path tests.

The reference models of ``../shared/test-models`` and the comparison with their expected
outputs live in ``tests/reference_models.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


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
