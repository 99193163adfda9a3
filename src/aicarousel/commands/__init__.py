"""Subcommands of the ``aicarousel`` CLI; each module defines ``register(subparsers)``.

The options several commands share are added and resolved here, so they read and fail the
same way in every command: ``--model FILE`` (:func:`add_model`, :func:`model_path`),
``--scenario NAME`` of the carousel (:func:`add_scenario`, :func:`check_scenario`,
:func:`scenario_params`) and ``--output/-o FILE`` (:func:`add_output`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: How the default model is named in ``--help``.
DEFAULT_MODEL_HELP = "models/ai_carousel.mdl"


def add_model(p: argparse.ArgumentParser, default: str = DEFAULT_MODEL_HELP) -> None:
    """``--model FILE`` (default ``None``: the command's default model, named in the help)."""
    p.add_argument("--model", default=None, metavar="FILE",
                   help=f"model file (.mdl or .xmile); default {default}")


def add_scenario(p: argparse.ArgumentParser) -> None:
    """``--scenario NAME``: a scenario of ``scenarios/``, for the carousel only."""
    p.add_argument("--scenario", default=None, metavar="NAME",
                   help="run this scenario of scenarios/ (carousel only; default the baseline)")


def add_output(p: argparse.ArgumentParser, help: str, metavar: str = "FILE") -> None:
    """``--output/-o FILE`` (default ``None``)."""
    p.add_argument("--output", "-o", default=None, metavar=metavar, help=help)


def model_path(args: argparse.Namespace, default: Path | None = None) -> Path:
    """The ``--model`` file, else ``default`` (else the carousel, ``paths.MODEL_FILE``)."""
    from aicarousel import paths

    return Path(args.model) if args.model else (default or paths.MODEL_FILE)


def custom_model(args: argparse.Namespace) -> bool:
    """Whether ``--model`` names a model other than the carousel."""
    from aicarousel import paths

    return bool(args.model) and Path(args.model).resolve() != paths.MODEL_FILE.resolve()


def check_scenario(args: argparse.Namespace) -> None:
    """Refuse ``--scenario`` with another model than the carousel (scenarios are its)."""
    from aicarousel.errors import AicarouselError

    if args.scenario and custom_model(args):
        raise AicarouselError("--scenario applies to the carousel model only; drop --model or "
                              "--scenario")


def scenario_params(args: argparse.Namespace) -> dict | None:
    """The parameters of ``--scenario`` (None: the baseline)."""
    if not args.scenario:
        return None
    from aicarousel.scenarios import to_params

    return to_params(args.scenario)
