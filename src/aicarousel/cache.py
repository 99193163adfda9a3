"""The cache directory: private to the user, and nothing loaded from it unless verified.

Everything aicarousel caches (PySD translations, the ensemble's pickled IR, the compiled
``pow`` helper) is code or becomes code when loaded: an import, an unpickle, a ``dlopen``.
The cache is therefore trusted only as far as it is verified:

* The directory (``paths.CACHE_DIR``, env ``AICAROUSEL_CACHE``) must be a directory owned by
  the user; it is created with mode 0700 and tightened to 0700 when group or others may
  write it. A cache path that is a file, read-only, or owned by another user is not used:
  the process falls back to a private temporary cache (removed at exit) and says so on
  stderr in one line.
* Every cached artefact carries an HMAC-SHA256 tag over its bytes and its *context* (the
  model file's SHA-256, the versions of PySD and aicarousel, the producing code's hash).
  The key is a random per-user secret kept outside the cache
  (``$XDG_CONFIG_HOME/aicarousel/cache-key``, mode 0600), so a cache copied from elsewhere
  or edited by hand fails verification and is rebuilt, never loaded.

Public helpers: :func:`cache_dir`, :func:`private_dir`, :func:`sign`, :func:`verify`,
:func:`write_signed`, :func:`read_verified`, :func:`notice`.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

from . import paths

#: Names aicarousel creates in the cache root (anything else means it is not only ours).
_OURS = re.compile(r"^([0-9a-f]{16}|ensemble|\.(tmp|stale)-.*)$")
#: Temporary translation directories older than this (seconds) are left-overs of a killed run.
STALE_AFTER = 3600.0

_KEY: bytes | None = None
_FALLBACK: Path | None = None
_CHECKED: set[Path] = set()
_NOTED: set[str] = set()


def notice(msg: str) -> None:
    """Print ``aicarousel: note: msg`` once per process on stderr (one line)."""
    if msg in _NOTED:
        return
    _NOTED.add(msg)
    print(f"aicarousel: note: {' '.join(msg.split())}", file=sys.stderr)


def _key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aicarousel" / "cache-key"


def _key() -> bytes:
    """The per-user HMAC key (created on first use); a per-process key if it cannot be kept.

    A per-process key is safe (nothing written by another process verifies) but makes every
    cache entry of earlier processes invalid, so the caller falls back to a temporary cache.
    """
    global _KEY
    if _KEY is not None:
        return _KEY
    path = _key_file()
    try:
        try:
            st = path.lstat()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise PermissionError(f"{path} is not a private file of this user")
        data = path.read_bytes()
        if len(data) < 32:
            # a concurrent first run may still be writing it; this process keeps its own key
            raise OSError(f"{path} is incomplete")
        _KEY = data
    except FileExistsError:  # lost a creation race: read the winner's key
        return _key()
    except OSError as exc:
        notice(f"cannot keep the cache key {path} ({exc.strerror or exc}); cached "
               f"translations are not reused across runs")
        _KEY = secrets.token_bytes(32)
        _fallback()
    return _KEY


def _fallback() -> Path:
    global _FALLBACK
    if _FALLBACK is None:
        _FALLBACK = Path(tempfile.mkdtemp(prefix="aicarousel-cache-"))  # mode 0700
        atexit.register(shutil.rmtree, _FALLBACK, True)
    return _FALLBACK


def _problem(path: Path, inside: bool = False) -> str | None:
    """Why ``path`` cannot be a private cache directory of this user (None when it can).

    ``inside``: a subdirectory of the verified root (made by aicarousel), tightened freely.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        return f"{path} is a file, not a directory"
    except OSError as exc:
        return f"cannot create {path}: {exc.strerror or exc}"
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if st.st_uid != os.geteuid():
        return f"{path} is owned by another user (uid {st.st_uid})"
    if stat.S_IMODE(st.st_mode) & 0o077:
        foreign = [] if inside else [p.name for p in path.iterdir() if not _OURS.match(p.name)]
        if foreign:  # e.g. AICAROUSEL_CACHE=/tmp or a project folder: never change its mode
            return (f"{path} is open to other users and holds files that are not aicarousel's "
                    f"({foreign[0]!r}{', ...' if len(foreign) > 1 else ''})")
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            return f"{path} is open to other users and cannot be made private " \
                   f"({exc.strerror or exc})"
        if st.st_mode & 0o022:
            notice(f"the cache directory {path} was writable by other users; made it private "
                   f"(mode 0700)")
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def cache_dir() -> Path:
    """The verified private cache root: ``paths.CACHE_DIR``, else a temporary private one.

    Returns
    -------
    pathlib.Path
        A directory owned by the user with mode 0700.
    """
    if _FALLBACK is not None:
        return _FALLBACK
    root = Path(paths.CACHE_DIR)
    if root in _CHECKED:
        return root
    why = _problem(root)
    if why is not None:
        notice(f"not using the cache: {why}; using a private temporary cache for this run "
               f"(set AICAROUSEL_CACHE to a directory of yours to keep translations)")
        return _fallback()
    _key()  # may switch to the fallback when no key can be kept
    if _FALLBACK is not None:
        return _FALLBACK
    _CHECKED.add(root)
    _remove_leftovers(root)
    return root


def _remove_leftovers(root: Path) -> None:
    """Remove ``.tmp-*``/``.stale-*`` directories a killed run left (older than an hour)."""
    now = time.time()
    for p in root.glob(".*-*"):
        try:
            if (p.name.startswith((".tmp-", ".stale-")) and not p.is_symlink() and p.is_dir()
                    and now - p.lstat().st_mtime > STALE_AFTER):
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def private_dir(*parts: str) -> Path:
    """``cache_dir() / parts``, created with mode 0700 and checked like the root."""
    root = cache_dir()
    path = root.joinpath(*parts)
    if path in _CHECKED:
        return path
    why = _problem(path, inside=True)
    if why is not None:
        raise OSError(why)
    _CHECKED.add(path)
    return path


def _mac(data: bytes, context: str) -> str:
    msg = hashlib.sha256(context.encode("utf-8")).digest() + hashlib.sha256(data).digest()
    return hmac.new(_key(), msg, hashlib.sha256).hexdigest()


def context_string(**fields: object) -> str:
    """Canonical ``k=v;...`` string of what a cached artefact depends on (sorted keys).

    Always includes the PySD and aicarousel versions.
    """
    from . import __version__

    try:
        from importlib.metadata import version
        pysd_version = version("pysd")
    except Exception:  # noqa: BLE001 - not installed
        pysd_version = "none"
    fields = {"aicarousel": __version__, "pysd": pysd_version, **fields}
    return ";".join(f"{k}={fields[k]}" for k in sorted(fields))


def sign(data: bytes, context: str) -> str:
    """HMAC-SHA256 (hex) of ``data`` bound to ``context``."""
    return _mac(data, context)


def verify(data: bytes, context: str, tag: str) -> bool:
    """True when ``tag`` is this user's tag of ``data`` in ``context`` (constant time)."""
    return hmac.compare_digest(_mac(data, context), str(tag))


def write_signed(path: Path, data: bytes, context: str) -> None:
    """Write ``data`` and its tag (``path`` + ``.hmac``) atomically; an OSError propagates."""
    path = Path(path)
    for target, payload in ((path, data), (path.with_name(path.name + ".hmac"),
                                           sign(data, context).encode())):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def read_verified(path: Path, context: str) -> bytes | None:
    """The bytes of ``path`` if its ``.hmac`` tag verifies, else None (missing, edited, planted).

    A file that exists but fails verification is reported once with :func:`notice`.
    """
    path = Path(path)
    tag_path = path.with_name(path.name + ".hmac")
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        tag = tag_path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        tag = ""
    if tag and verify(data, context, tag):
        return data
    notice(f"ignored the cached file {path.name}: it fails verification (edited, planted or "
           f"made by another version); rebuilding it")
    return None
