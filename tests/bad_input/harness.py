"""One row of the bad-input table and the way every row is checked.

A :class:`Case` is a bad input (a command line, or a Python API call) with what a careful user
expects: the exit status (2) or the exception, one line naming the bad thing, no traceback, and
no file created or changed except what the command owns.

Each case runs in a fresh sandbox directory (also the working directory). ``argv`` and ``env``
strings may use ``{tmp}`` (the sandbox), ``{root}`` (the repository) and ``{shared}``
(``../shared``). Every file under the sandbox is fingerprinted before and after; a change to a
path that is not matched by a pattern in ``owned`` fails the row.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import io
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from aicarousel import paths

#: Modules whose ``CASES`` lists make up the table (``tests/bad_input/cases_*.py``).
CASES_GLOB = "cases_*.py"


@dataclass(frozen=True)
class Case:
    """One bad input and what must happen.

    Parameters
    ----------
    id : str
        Unique short name of the row (the pytest id), e.g. ``"sweep-force-user-dir"``.
    argv : list of str, optional
        Arguments after ``aicarousel`` (the CLI). Exactly one of ``argv`` and ``call``.
    call : callable, optional
        ``call(sandbox: Path)`` for a Python API case; must raise ``raises``.
    setup : callable, optional
        ``setup(sandbox: Path)`` prepares files before the fingerprint is taken.
    status : int
        Expected exit status of a CLI case (2 for bad input).
    raises : type, optional
        Expected exception class of an API case (an ``AicarouselError`` subclass, as a rule).
    message : str
        Fragment the one-line message must contain (case-insensitive).
    owned : tuple of str
        Glob patterns (relative to the sandbox) of paths the command may create or change.
    env : dict, optional
        Extra environment variables (values may use the placeholders).
    subprocess : bool
        Run the CLI in a child process (needed for ulimit, closed stdout, environment, signals);
        otherwise ``aicarousel.cli.main`` runs in-process, which is faster.
    preexec : callable, optional
        For subprocess cases: run in the child before exec (e.g. ``resource.setrlimit``).
    check : callable, optional
        ``check(sandbox, status, stderr)`` extra assertions (e.g. a user file's content).
    timeout : float
        Seconds before a subprocess case is killed (a hang fails the row).
    """

    id: str
    argv: list[str] | None = None
    call: Callable[[Path], object] | None = None
    setup: Callable[[Path], None] | None = None
    status: int = 2
    raises: type[BaseException] | None = None
    message: str = ""
    owned: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    subprocess: bool = False
    preexec: Callable[[], None] | None = None
    check: Callable[[Path, int, str], None] | None = None
    timeout: float = 300.0


def expand(text: str, sandbox: Path) -> str:
    """Replace ``{tmp}``, ``{root}`` and ``{shared}`` in ``text``."""
    return (text.replace("{tmp}", str(sandbox)).replace("{root}", str(paths.ROOT))
            .replace("{shared}", str(paths.ROOT.parent / "shared")))


def fingerprint(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (not following links) -> (kind, mode, size, sha256)."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = p.lstat()
            kind = stat.S_IFMT(st.st_mode)
            digest = ""
            if stat.S_ISREG(st.st_mode) and os.access(p, os.R_OK):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            out[rel] = (kind, stat.S_IMODE(st.st_mode), size, digest)
    return out


def changed_paths(before: dict, after: dict) -> list[str]:
    """Paths created, deleted or changed between two fingerprints."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _owned(path: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(path, pat) or path.startswith(pat.rstrip("/*") + "/")
               and pat.endswith("/**") for pat in patterns)


def run_cli(case: Case, sandbox: Path) -> tuple[int, str]:
    """Run a CLI case; return (exit status, stderr)."""
    argv = [expand(a, sandbox) for a in case.argv or []]
    env = {k: expand(v, sandbox) for k, v in case.env.items()}
    if case.subprocess:
        exe = Path(sys.executable).with_name("aicarousel")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aicarousel.cli"]
        proc = subprocess.run(cmd + argv, cwd=sandbox, env={**os.environ, **env},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=case.timeout, preexec_fn=case.preexec)
        return proc.returncode, proc.stderr
    from aicarousel.cli import main
    err = io.StringIO()
    old_cwd = os.getcwd()
    old_env = {k: os.environ.get(k) for k in env}
    try:
        os.chdir(sandbox)
        os.environ.update(env)
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else 2
            except Exception as exc:  # noqa: BLE001 - an escaped exception is the failure
                import traceback
                traceback.print_exc(file=err)
                status = -1
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return status, err.getvalue()


def run_call(case: Case, sandbox: Path) -> tuple[BaseException | None, str]:
    """Run an API case; return (the exception raised or None, its one-line text)."""
    old_cwd = os.getcwd()
    try:
        os.chdir(sandbox)
        case.call(sandbox)
    except BaseException as exc:  # noqa: BLE001 - the caller checks the class
        return exc, str(exc)
    finally:
        os.chdir(old_cwd)
    return None, ""


def check_case(case: Case, sandbox: Path) -> None:
    """Run one row and assert everything the row promises (AssertionError names what failed)."""
    assert (case.argv is None) != (case.call is None), f"{case.id}: give exactly one of argv, call"
    if case.setup:
        case.setup(sandbox)
    before = fingerprint(sandbox)
    if case.argv is not None:
        status, err = run_cli(case, sandbox)
        assert "Traceback" not in err, f"{case.id}: traceback on stderr:\n{err}"
        assert status == case.status, f"{case.id}: exit {status}, expected {case.status}:\n{err}"
        text = err
        if case.status != 0:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            assert len(lines) == 1, f"{case.id}: expected one line on stderr, got:\n{err}"
    else:
        exc, text = run_call(case, sandbox)
        assert exc is not None, f"{case.id}: no exception raised"
        assert isinstance(exc, case.raises or Exception), (
            f"{case.id}: raised {type(exc).__name__}: {text}, expected {case.raises.__name__}")
        assert "\n" not in text.strip(), f"{case.id}: message is not one line:\n{text}"
        status = 2
    assert case.message.lower() in text.lower(), (
        f"{case.id}: message lacks {case.message!r}:\n{text}")
    after = fingerprint(sandbox)
    stray = [p for p in changed_paths(before, after) if not _owned(p, case.owned)]
    assert not stray, f"{case.id}: created/changed/deleted paths it does not own: {stray}"
    if case.check:
        case.check(sandbox, status, text)
