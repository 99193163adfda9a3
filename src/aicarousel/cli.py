"""The ``aicarousel`` command line.

Each capability lives in its own module under :mod:`aicarousel.commands` with a function
``register(subparsers) -> None`` that adds its subcommand(s) and sets ``func`` (called with the
parsed arguments, returning an exit status). To add a command, create
``src/aicarousel/commands/<name>.py`` and append one line to :data:`COMMAND_MODULES`.

Errors derived from :class:`aicarousel.errors.AicarouselError` print one line on stderr and
exit with status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import AicarouselError

#: Modules that register subcommands, in the order shown by ``--help``.
COMMAND_MODULES = [
    "aicarousel.commands.run",
    "aicarousel.commands.params",
    "aicarousel.commands.doc",
    "aicarousel.commands.experiment",
    "aicarousel.commands.whopaid",
    "aicarousel.commands.sensitivity",
    "aicarousel.commands.stability",
    "aicarousel.commands.validate",
]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="aicarousel",
        description="Run and analyse the AI carousel system-dynamics model (Lab, Cloud, Chips).")
    parser.add_argument("--version", action="version", version=f"aicarousel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aicarousel`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 2 bad input or failed run.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except AicarouselError as exc:
        msg = " ".join(str(exc).split())
        print(f"aicarousel {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `aicarousel doc | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("aicarousel: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
