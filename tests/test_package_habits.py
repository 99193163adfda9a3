"""Habits of a research package: licence, citation metadata, changelog and one version.

The version is written once (``pyproject.toml``), read from the installed package's metadata,
recorded in every result's provenance, and repeated in ``CITATION.cff`` and ``CHANGELOG.md``.
"""

import re
import tomllib
from importlib import metadata

import yaml

import aicarousel
from aicarousel import paths
from aicarousel.provenance import provenance


def _pyproject_version():
    return tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_version_comes_from_package_metadata():
    assert aicarousel.__version__ == metadata.version("aicarousel") == _pyproject_version(), (
        "the installed package is stale: reinstall with `make venv` after changing the version")


def test_every_result_records_the_version():
    assert provenance()["aicarousel_version"] == aicarousel.__version__


def test_licence_is_mit_as_pyproject_says():
    meta = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == {"text": "MIT"}
    assert (paths.ROOT / "LICENSE").read_text().startswith("MIT License")


def test_citation_cff_has_the_required_keys_and_the_version():
    cff = yaml.safe_load((paths.ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):  # required by the CFF 1.2.0 schema
        assert cff[key], key
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == _pyproject_version()
    assert cff["license"] == "MIT"


def test_changelog_has_unreleased_and_the_current_version():
    text = (paths.ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert releases[0] == "Unreleased", releases
    assert _pyproject_version() in releases[1:], (
        f"CHANGELOG.md has no section for version {_pyproject_version()}")
