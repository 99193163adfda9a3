"""Rebuild every figure: run the analysis steps the figures need, then every ``figures/fig_*.py``.

Each figure script declares the results it reads in a module-level list
``NEEDS = ["results/...", ...]``; each analysis script declares what it writes in
``PRODUCES = [...]``. Both are literal lists read from the source text (``ast``), without
importing anything. A needed file that no analysis script declares is reported (and the
figure then fails with its own one-line error if the file is missing).

Every figure script follows one contract (checked by ``tests/test_figures.py``):
``main(argv=None) -> int`` takes ``--results DIR --out DIR`` through
``plotting.script_dirs``, finds its inputs with ``plotting.require`` and ends with
``sys.exit(plotting.run_script(main))``, which turns a missing result into one line on stderr
and exit status 2.

By default (``make figures``) every analysis step any figure needs is re-run and
every figure is drawn from scratch (``figures/out`` is emptied first); ``--reuse`` skips analysis steps whose outputs
all exist. New figure scripts are picked up automatically.

Usage::

    python figures/build.py [--reuse] [--slow] [--only NAME ...] [--list] [--keep-going]

An analysis script that takes tens of minutes declares ``SLOW = "<command>"`` (the
posterior: ``SLOW = "make calibrate"``); a build without ``--slow`` never runs it, draws its
figures from existing results, and skips them with that hint when there are none.

Exit status 0 when every step succeeded, 1 when a step failed (its stderr is shown).
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import time
from pathlib import Path

from aicarousel import paths

ROOT, FIGURES_DIR, ANALYSIS_DIR = paths.ROOT, paths.FIGURES_DIR, paths.ANALYSIS_DIR


#: Kinds of file figure scripts write into figures/out (removed before a full build).
FIGURE_SUFFIXES = (".pdf", ".png", ".tex")


def declared(path: Path, name: str) -> list[str]:
    """Read a module-level list of strings (``NEEDS``/``PRODUCES``) from a script's source.

    Parameters
    ----------
    path : Path
        Python script.
    name : str
        Variable name.

    Returns
    -------
    list of str
        The declared paths (relative to the repository root); [] when absent.

    Raises
    ------
    SystemExit
        When the list is not a literal (the plan would be a guess).
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError):
        return []
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            value = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets, value = [node.target.id], node.value
        if name in targets:
            try:
                out = ast.literal_eval(value)
            except ValueError:
                out = None
            if not isinstance(out, (list, tuple)):
                raise SystemExit(f"build.py: error: {path.name}: {name} must be a literal list "
                                 "of result paths")
            return [str(x) for x in out]
    return []


def slow_hint(path: Path) -> str:
    """An analysis script's literal ``SLOW = "..."`` (how to run it on its own), or ''.

    A slow step (the posterior: tens of minutes) is not run by a plain build: its existing
    outputs are reused, and without them the figures that need it are skipped with this hint.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError):
        return ""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SLOW"
                                                 for t in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return ""


def figure_scripts(only: list[str] | None = None) -> list[Path]:
    """Figure scripts ``figures/fig_*.py`` in name order (optionally filtered by name)."""
    scripts = sorted(FIGURES_DIR.glob("fig_*.py"))
    if only:
        wanted = {o.removeprefix("fig_").removesuffix(".py") for o in only}
        unknown = wanted - {s.stem.removeprefix("fig_") for s in scripts}
        if unknown:
            raise SystemExit(f"build.py: error: no figure script for {', '.join(sorted(unknown))} "
                             f"(have: {', '.join(s.stem.removeprefix('fig_') for s in scripts)})")
        scripts = [s for s in scripts if s.stem.removeprefix("fig_") in wanted]
    return scripts


def producers() -> dict[str, Path]:
    """Map each declared result path to the analysis script that writes it."""
    out: dict[str, Path] = {}
    for script in sorted(ANALYSIS_DIR.glob("*.py")):
        for p in declared(script, "PRODUCES"):
            out.setdefault(p, script)
    return out


def plan(scripts: list[Path], reuse: bool, slow: bool = False
         ) -> tuple[list[Path], dict[Path, list[str]], dict[Path, str]]:
    """Analysis steps to run (in order), the needs no step can make per figure script, and
    the figure scripts deferred because a slow step (``SLOW``) has not been run (with its hint).
    Slow steps run only when ``slow`` is true; otherwise their existing outputs are used."""
    table = producers()
    steps: list[Path] = []
    orphans: dict[Path, list[str]] = {}
    deferred: dict[Path, str] = {}
    for fig in scripts:
        for need in declared(fig, "NEEDS"):
            prod = table.get(need)
            if prod is None:
                if not (ROOT / need).exists():
                    orphans.setdefault(fig, []).append(need)
                continue
            outs = declared(prod, "PRODUCES") or [need]
            have = all((ROOT / o).exists() for o in outs)
            hint = slow_hint(prod)
            if hint and not slow:
                if not have:
                    deferred[fig] = hint
                continue
            if prod in steps:
                continue
            if reuse and have:
                continue
            steps.append(prod)
    return steps, orphans, deferred


def run_step(script: Path, label: str) -> tuple[bool, float, str]:
    """Run one script with the project's interpreter from the repository root."""
    t0 = time.perf_counter()
    env = dict(os.environ)
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run([sys.executable, str(script.relative_to(ROOT))], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    return proc.returncode == 0, time.perf_counter() - t0, (proc.stderr or proc.stdout).strip()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reuse", action="store_true",
                    help="skip analysis steps whose declared outputs already exist")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="build only these figures (e.g. scenarios)")
    ap.add_argument("--list", action="store_true", help="print the plan and exit")
    ap.add_argument("--keep-going", action="store_true", help="go on after a failed step")
    ap.add_argument("--slow", action="store_true",
                    help="also run slow analysis steps (the posterior; tens of minutes)")
    args = ap.parse_args(argv)
    from tqdm import tqdm

    scripts = figure_scripts(args.only)
    steps, orphans, deferred = plan(scripts, args.reuse, args.slow)
    for fig, hint in deferred.items():
        print(f"build.py: {fig.name} skipped: its results come from a slow step; run "
              f"'{hint}' first", file=sys.stderr)
    scripts = [f for f in scripts if f not in deferred]
    if args.list:
        for s in steps:
            print(f"analysis  {s.relative_to(ROOT)}")
        for f in scripts:
            print(f"figure    {f.relative_to(ROOT)}  needs {', '.join(declared(f, 'NEEDS')) or '-'}")
        return 0
    for fig, needs in orphans.items():
        print(f"build.py: warning: {fig.name} needs {', '.join(needs)} and no analysis script "
              "declares it", file=sys.stderr)
    out = paths.FIGURES_OUT
    if not args.only and out.is_dir():  # from scratch: no stale figure survives a full build
        for old in out.iterdir():  # only what figure scripts write: a user's notes survive
            if old.is_file() and not old.is_symlink() and old.suffix in FIGURE_SUFFIXES:
                old.unlink()
    failed: list[str] = []
    jobs = [("analysis", s) for s in steps] + [("figure", f) for f in scripts]
    bar = tqdm(jobs, desc="figures", unit="step", file=sys.stderr)
    for kind, script in bar:
        name = script.relative_to(ROOT).as_posix()
        bar.set_postfix_str(name)
        ok, secs, err = run_step(script, name)
        if not ok:
            failed.append(name)
            tqdm.write(f"build.py: {kind} {name} failed after {secs:.1f} s:\n{err}", file=sys.stderr)
            if kind == "analysis" and not args.keep_going:
                break
    bar.close()
    made = sorted(p.name for p in out.glob("*")) if out.is_dir() else []
    print(f"build.py: {len(jobs) - len(failed)}/{len(jobs)} steps ok; {len(made)} files in figures/out",
          file=sys.stderr)
    if failed:
        print(f"build.py: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
