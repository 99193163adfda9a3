"""Sweeps and samples started from Python: bad seeds and ranges are refused before any store
exists, by the same rules as the command line (issue 9: one validator for every entry point)."""

from aicarousel import sensitivity, sweep
from aicarousel.errors import ParameterValueError

from .harness import Case


def _problem(name="AI demand multiplier", lo=0.5, hi=1.5):
    return sensitivity.Problem((name,), ((lo, hi),), ("Dmnl",))


def _define(name="AI demand multiplier", lo=0.5, hi=1.5, seed=0):
    return lambda tmp: sweep.make_definition("montecarlo", "lhs", 8, seed, _problem(name, lo, hi),
                                             ["Lab Cash"])


CASES = [
    Case("api-sample-seed-negative", call=lambda tmp: sensitivity.sample(_problem(), "lhs", 8, -1),
         raises=ParameterValueError, message="seed -1"),
    Case("api-sample-seed-too-big", call=lambda tmp: sensitivity.sample(_problem(), "lhs", 8,
                                                                         2 ** 32),
         raises=ParameterValueError, message="2**32 - 1"),
    Case("api-sample-seed-not-whole", call=lambda tmp: sensitivity.sample(_problem(), "lhs", 8,
                                                                           1.5),
         raises=ParameterValueError, message="seed 1.5"),
    Case("api-sample-seed-bool", call=lambda tmp: sensitivity.sample(_problem(), "lhs", 8, True),
         raises=ParameterValueError, message="seed True"),
    Case("api-definition-seed-negative", call=_define(seed=-3),
         raises=ParameterValueError, message="seed -3"),
    Case("api-definition-duration-below-time-step",
         call=_define("Value adjustment time", 0.001, 0.5),
         raises=ParameterValueError, message="shorter than TIME STEP"),
    Case("api-definition-range-above-maximum",
         call=_define("Outside funding availability", 0.5, 5),
         raises=ParameterValueError, message="Outside funding availability"),
]
