"""``aicarousel validate``: Sterman's model tests (Business Dynamics, ch. 21) as one report.

``aicarousel validate [--model FILE] [--report DIR] [--checks FILE] [--quick] [--seed N]``
runs :func:`aicarousel.validate.validate` and writes ``validation.{md,tex,json,pdf,png}`` to
DIR (default ``results/validate/<model stem>/``). It prints one line per test and exits 0
when the model has no units error and no failed (non-expected) reality check, 1 otherwise;
bad input (unsupported model, malformed checks file, unwritable directory) is one line on
stderr and exit status 2, with nothing written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import add_model, model_path


def register(subparsers) -> None:
    """Add the ``validate`` subcommand."""
    p = subparsers.add_parser(
        "validate", help="model tests: units, extremes, reality checks, integration, loops, ...",
        description="Run Sterman's model tests on a model file and write a validity report "
                    "(Markdown, LaTeX, JSON and a figure): dimensional consistency, extreme "
                    "conditions, reality checks (<model>.checks.yaml), integration error, loop "
                    "activity, parameter assessment, behaviour reproduction, random in-range "
                    "runs.")
    add_model(p)
    p.add_argument("--report", default=None, metavar="DIR",
                   help="output directory (default results/validate/<model stem>)")
    p.add_argument("--checks", default=None, metavar="FILE",
                   help="reality-checks file (default <model dir>/<model stem>.checks.yaml)")
    p.add_argument("--quick", action="store_true",
                   help="200 random runs instead of 1,000 (for CI)")
    p.add_argument("--seed", type=int, default=20251201, help="seed of the random runs")
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    import sys

    from aicarousel import paths
    from aicarousel.errors import ModelFileError
    from aicarousel.validate import check_writable, validate, write_report

    model = model_path(args)
    if not model.is_file():
        raise ModelFileError(f"model file {model} not found; give an existing .mdl or .xmile")
    out = Path(args.report) if args.report else paths.RESULTS_DIR / "validate" / model.stem
    existed = out.exists()
    check_writable(out)  # refuse before the work, not after
    try:
        rep = validate(model, checks_file=args.checks, quick=args.quick, seed=args.seed,
                       progress=sys.stderr.isatty())
        files = write_report(rep, out)
    except BaseException:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the directory this command created, still empty: leave no trace
        raise
    for i, s in enumerate(rep.sections, 1):
        print(f"{i}. {s.title:<26} {s.status:<15} {s.summary}")
    print(f"report ({rep.seconds:.0f} s): " + ", ".join(str(f) for f in files))
    hard = rep.section("units").status == "fail" or rep.section("checks").status == "fail"
    return 1 if hard else 0
