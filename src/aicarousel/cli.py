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
import os
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
    "aicarousel.commands.dominance",
    "aicarousel.commands.loopgain",
    "aicarousel.commands.validate",
    "aicarousel.commands.calibrate",
]


#: Longest error message printed (characters); longer ones are cut.
MAX_MESSAGE = 500


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2).

    argparse prints the whole usage block before the message; a researcher scanning a log
    wants the one line naming the bad argument and where to look for the right form.
    """

    def error(self, message: str):  # noqa: D401 - argparse API
        msg = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {msg} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = OneLineParser(
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
    if sys.stdout is None:  # started with stdout closed (`>&-`): fd 1 would be reused by files
        if sys.stderr is not None:
            print("aicarousel: error: standard output is closed; redirect it instead "
                  "(e.g. >/dev/null)", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    watched = sys.stdout = _WatchedStream(sys.stdout)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a full disk or /dev/full shows here, not at interpreter exit
    except AicarouselError as exc:
        msg = " ".join(str(exc).split())
        if len(msg) > MAX_MESSAGE:  # e.g. a value echoed from a hostile input file
            msg = msg[:MAX_MESSAGE - 20] + f"... [{len(msg)} chars]"
        print(f"aicarousel {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `aicarousel doc | head`
        sys.stderr.close()
        return 0
    except OSError as exc:  # an operating-system failure outside our writers: name the cause
        msg = exc.strerror or " ".join(str(exc).split())
        if watched.failed:
            msg = f"cannot write to standard output: {msg}"
            if watched._stream is sys.__stdout__:
                _silence_stdout()
        elif exc.filename:
            msg = f"{msg}: {exc.filename}"
        print(f"aicarousel {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aicarousel: interrupted", file=sys.stderr)
        return 130
    finally:
        if sys.stdout is watched:
            sys.stdout = watched._stream
    return int(status or 0)


class _WatchedStream:
    """Standard output that remembers a failed write (disk full, /dev/full, EIO)."""

    def __init__(self, stream):
        self._stream = stream
        self.failed = False

    def write(self, text):
        try:
            return self._stream.write(text)
        except OSError:
            self.failed = True
            raise

    def flush(self):
        try:
            return self._stream.flush()
        except OSError:
            self.failed = True
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _silence_stdout() -> None:
    """After a failed write to fd 1: point it at /dev/null so exit adds no second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
