"""Subcommands of the ``aicarousel`` CLI; each module defines ``register(subparsers)``."""
