"""The API reference builds from the numpy docstrings without a single Sphinx warning.

``make docs`` runs the same build (``sphinx -W``); this test keeps CI honest about it.
"""

import subprocess
import sys

from aicarousel import paths


def test_api_reference_builds_without_warnings(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                        "-d", str(tmp_path / "doctrees"), str(paths.DOCS_DIR), str(tmp_path / "html")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stderr.strip() == "", r.stderr[-4000:]
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for name in ("aicarousel.model.run", "aicarousel.scenarios.to_params", "aicarousel.cf.udunits"):
        assert name in api, f"{name} missing from the API reference"


def test_every_module_is_in_the_reference():
    listed = (paths.DOCS_DIR / "api.rst").read_text(encoding="utf-8")
    modules = sorted(p.stem for p in (paths.ROOT / "src" / "aicarousel").glob("*.py")
                     if p.stem != "__init__")
    missing = [m for m in modules if f".. automodule:: aicarousel.{m}\n" not in listed]
    assert missing == [], f"add to docs/api.rst: {missing}"
