"""Rows that worked before the hardening pass (kept so they stay working)."""

from aicarousel import model
from aicarousel.errors import UnknownParameterError

from .harness import Case

CASES = [
    Case("run-unknown-set-name", argv=["run", "--set", "AI demand multiplyer=0.8",
                                       "--output", "{tmp}/r.nc"],
         message="did you mean 'AI demand multiplier'"),
    Case("run-set-not-a-number", argv=["run", "--set", "AI demand multiplier=abc",
                                       "--output", "{tmp}/r.nc"], message="is not a number"),
    Case("api-run-unknown-param", call=lambda tmp: model.run({"Nope": 1.0}),
         raises=UnknownParameterError, message="Nope"),
]
CASES += [
    Case("cli-unknown-option", argv=["run", "--no-such-option"],
         message="unrecognized arguments: --no-such-option"),
    Case("cli-unknown-command", argv=["no-such-command"], message="invalid choice"),
    Case("cli-missing-value", argv=["run", "--set"], message="expected one argument"),
]
