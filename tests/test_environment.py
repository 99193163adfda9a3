"""environment.yml, pyproject.toml and requirements.lock pin the same direct dependencies."""

import re
import tomllib

import yaml

from aicarousel import paths


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock():
    out = {}
    for line in (paths.ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, ver = line.partition("==")
            out[_norm(name)] = ver.strip()
    return out


def _pyproject():
    data = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += extra
    out = {}
    for r in reqs:
        name, _, ver = r.partition("==")
        assert ver, f"pyproject dependency {r!r} is not pinned with =="
        out[_norm(name)] = ver.strip()
    return out


def _conda():
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for pipdep in dep.get("pip", []):
                name, _, ver = pipdep.partition("==")
                out[_norm(name)] = ver.strip()
            continue
        name, _, ver = dep.partition("=")
        if _norm(name) in {"python", "pip"}:
            continue
        out[_norm(name)] = ver.lstrip("=").strip()
    return out


def test_pyproject_pins_match_lock():
    lock, pp = _lock(), _pyproject()
    missing = sorted(set(pp) - set(lock))
    assert missing == [], f"in pyproject.toml but not requirements.lock: {missing}"
    assert {k: v for k, v in pp.items() if lock[k] != v} == {}


def test_environment_yml_matches_pyproject_and_lock():
    lock, pp, conda = _lock(), _pyproject(), _conda()
    assert set(conda) == set(pp), (sorted(set(conda) - set(pp)), sorted(set(pp) - set(conda)))
    assert {k: v for k, v in conda.items() if lock.get(k) != v} == {}


def test_environment_pins_python_311():
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
