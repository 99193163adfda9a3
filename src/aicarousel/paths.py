"""Where things are: the only module that knows the repository layout.

All paths are absolute :class:`pathlib.Path` objects derived from the location of this file,
so the package works from any working directory. Shared data outside the repository is found
at ``ROOT.parent / "shared"``. The translation cache can be moved with the environment
variable ``AICAROUSEL_CACHE``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Repository root (the directory holding ``pyproject.toml``).
ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "models"
MODEL_FILE = MODELS_DIR / "ai_carousel.mdl"
#: The reduced model of the reinforcing loops, generated from MODEL_FILE by
#: ``aicarousel loopgain --write-reduced`` (aicarousel.reduce); never edited by hand.
REDUCED_MODEL_FILE = MODELS_DIR / "core_loop_derived.mdl"
DATA_DIR = ROOT / "data"
PARAMETERS_CSV = DATA_DIR / "parameters.csv"
CALIBRATION_TARGETS_CSV = DATA_DIR / "calibration_targets.csv"
SCENARIOS_DIR = ROOT / "scenarios"
RESULTS_DIR = ROOT / "results"
FIGURES_DIR = ROOT / "figures"
FIGURES_OUT = FIGURES_DIR / "out"
ANALYSIS_DIR = ROOT / "analysis"
TESTS_DIR = ROOT / "tests"
TEST_DATA_DIR = TESTS_DIR / "data"
DOCS_DIR = ROOT / "docs"
CACHE_DIR = Path(os.environ.get("AICAROUSEL_CACHE") or ROOT / ".cache" / "aicarousel").resolve()
SHARED_DIR = ROOT.parent / "shared"
TEST_MODELS_DIR = SHARED_DIR / "test-models"


def relative_to_root(path: str | os.PathLike) -> str:
    """Return ``path`` relative to the repository root if it lies inside it.

    Parameters
    ----------
    path : str or os.PathLike
        Any path.

    Returns
    -------
    str
        POSIX-style relative path when inside the repository, else the file name only
        (so no machine-specific path leaks into outputs).
    """
    p = Path(path).resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return p.name
