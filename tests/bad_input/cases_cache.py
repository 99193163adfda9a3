"""Rows for the translation cache: a cache path that is a file, not private, tampered with.

Every row runs in a child process with ``AICAROUSEL_CACHE={tmp}/cache`` and the HMAC key under
``XDG_CONFIG_HOME={tmp}/cfg`` (both inside the sandbox), so a row sees a cache of its own. A
cache that cannot be used privately is replaced by a temporary one with a one-line note; a
tampered entry is rebuilt with a note; nothing outside the cache changes.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from aicarousel import cache, paths
from aicarousel.provenance import file_sha256

from .harness import Case

CORE = paths.REDUCED_MODEL_FILE
KEY16 = file_sha256(CORE)[:16]
ENV = {"AICAROUSEL_CACHE": "{tmp}/cache", "XDG_CONFIG_HOME": "{tmp}/cfg"}
DOC = ["doc", "--model", "{root}/models/core_loop_derived.mdl"]
MINE = ("cache", "cache/**", "cfg", "cfg/**")
ROOT_USER = os.geteuid() == 0


@contextlib.contextmanager
def sandbox_cache(sb: Path):
    """In this process, use the sandbox's cache and key (as the child process will)."""
    saved = (paths.CACHE_DIR, cache._CHECKED, cache._FALLBACK, cache._KEY,
             os.environ.get("XDG_CONFIG_HOME"))
    paths.CACHE_DIR = sb / "cache"
    cache._CHECKED, cache._FALLBACK, cache._KEY = set(), None, None
    os.environ["XDG_CONFIG_HOME"] = str(sb / "cfg")
    try:
        yield sb / "cache"
    finally:
        paths.CACHE_DIR, cache._CHECKED, cache._FALLBACK, cache._KEY = saved[:4]
        if saved[4] is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = saved[4]


def filled(then=None):
    """setup: translate the reduced model into the sandbox cache, then ``then(entry_dir)``."""
    def setup(sb: Path) -> None:
        from aicarousel import model
        with sandbox_cache(sb):
            model.translated_path(CORE)
        if then:
            then(sb, sb / "cache" / KEY16)
    return setup


def _edit_constant(sb, entry):
    import re
    py = entry / "model.py"
    text = py.read_text()
    edited = re.sub(r"(\n    return )(\d+(\.\d+)?)\n", r"\g<1>(\2 * 1.5)\n", text)
    assert edited != text, "no constant to edit in the translation"
    py.write_text(edited)


def _edit_with_manifest(sb, entry):
    import json
    _edit_constant(sb, entry)
    m = json.loads((entry / "manifest.json").read_text())
    m["files"]["model.py"] = file_sha256(entry / "model.py")
    (entry / "manifest.json").write_text(json.dumps(m))


def _planted_entry(sb: Path) -> None:
    e = sb / "cache" / KEY16
    e.mkdir(parents=True)
    (e / "model.py").write_text(f'open("{sb}/MARKER", "w").write("pwned")\n')
    (e / "manifest.json").write_text('{"files": {"model.py": "x"}}')
    (e / "manifest.json.hmac").write_text("0" * 64)


def _extra_file(sb, entry):
    (entry / "helper.py").write_text(f'open("{sb}/MARKER", "w").write("pwned")\n')


def _entry_symlink(sb: Path) -> None:
    (sb / "elsewhere").mkdir()
    (sb / "elsewhere" / "model.py").write_text(f'open("{sb}/MARKER", "w").write("pwned")\n')
    (sb / "cache").mkdir(mode=0o700)
    (sb / "cache" / KEY16).symlink_to(sb / "elsewhere")


def _entry_file(sb: Path) -> None:
    (sb / "cache").mkdir(mode=0o700)
    (sb / "cache" / KEY16).write_text("not a directory")


def _mkdir(name: str, mode: int, files: dict[str, str] | None = None, owner: int | None = None):
    def setup(sb: Path) -> None:
        d = sb / name
        d.mkdir(parents=True)
        for f, text in (files or {}).items():
            (d / f).write_text(text)
        os.chmod(d, mode)
        if owner is not None and ROOT_USER:
            os.chown(d, owner, owner)
    return setup


def _file(name: str, text: str = "my notes\n"):
    def setup(sb: Path) -> None:
        p = sb / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return setup


def _key(mode: int | None = None, directory: bool = False, short: bool = False):
    def setup(sb: Path) -> None:
        k = sb / "cfg" / "aicarousel" / "cache-key"
        k.parent.mkdir(parents=True)
        if directory:
            k.mkdir()
            return
        k.write_bytes(b"k" * (8 if short else 32))
        os.chmod(k, mode if mode is not None else 0o600)
    return setup


def _old_leftover(sb, entry):
    for name in (f".tmp-{KEY16}-dead", ".stale-x-dead"):
        d = sb / "cache" / name
        d.mkdir()
        (d / "model.py").write_text("half")
        old = time.time() - 2 * cache.STALE_AFTER
        os.utime(d, (old, old))


def _mode_is(rel: str, mode: int):
    def check(sb: Path, status: int, text: str) -> None:
        assert (sb / rel).stat().st_mode & 0o7777 == mode, oct((sb / rel).stat().st_mode)
    return check


def _no_marker(sb: Path, status: int, text: str) -> None:
    assert not (sb / "MARKER").exists(), "a cache entry executed code"


def _leftovers_gone(sb: Path, status: int, text: str) -> None:
    left = [p.name for p in (sb / "cache").iterdir() if p.name.startswith((".tmp-", ".stale-"))]
    assert not left, left


def _row(id: str, message: str, setup=None, env: dict | None = None, check=None,
         owned=MINE, argv=None) -> Case:
    return Case(id, argv=argv or DOC, setup=setup, status=0, message=message, owned=owned,
                env={**ENV, **(env or {})}, subprocess=True, check=check, timeout=120)


CASES = [
    _row("cache-path-is-a-file", "is a file, not a directory", setup=_file("cachefile"),
         env={"AICAROUSEL_CACHE": "{tmp}/cachefile"}, owned=("cfg", "cfg/**")),
    _row("cache-parent-is-a-file", "cannot create", setup=_file("f"),
         env={"AICAROUSEL_CACHE": "{tmp}/f/cache"}, owned=("cfg", "cfg/**")),
    _row("cache-world-writable-empty", "writable by other users",
         setup=_mkdir("cache", 0o777), check=_mode_is("cache", 0o700)),
    _row("cache-shared-folder-not-changed", "holds files that are not aicarousel's",
         setup=_mkdir("cache", 0o777, {"thesis.tex": "mine"}), owned=("cfg", "cfg/**"),
         check=_mode_is("cache", 0o777)),
    _row("cache-owned-by-another-user", "owned by another user" if ROOT_USER else "",
         setup=_mkdir("cache", 0o700, owner=65534), owned=("cfg", "cfg/**")),
    _row("cache-read-only", "" if ROOT_USER else "is not writable",
         setup=_mkdir("cache", 0o500), owned=MINE if ROOT_USER else ("cfg", "cfg/**")),
    _row("cache-env-empty-not-cwd", "", env={"AICAROUSEL_CACHE": ""},
         owned=("cfg", "cfg/**")),
    _row("cache-entry-edited", "fails verification", setup=filled(_edit_constant)),
    _row("cache-entry-edited-with-manifest", "fails verification",
         setup=filled(_edit_with_manifest)),
    _row("cache-entry-extra-file", "fails verification", setup=filled(_extra_file),
         check=_no_marker),
    _row("cache-entry-planted", "fails verification", setup=_planted_entry, check=_no_marker),
    _row("cache-entry-symlink-elsewhere", "fails verification", setup=_entry_symlink,
         check=_no_marker),
    _row("cache-entry-is-a-file", "", setup=_entry_file),
    _row("cache-leftover-temp-dirs", "", setup=filled(_old_leftover), check=_leftovers_gone),
    _row("cache-key-readable-by-others", "cannot keep the cache key", setup=_key(0o644)),
    _row("cache-key-is-a-directory", "cannot keep the cache key", setup=_key(directory=True)),
]
