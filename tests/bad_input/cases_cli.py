"""Command-line arguments out of range or malformed (harden-numerics, issue 9).

Sweeps (``montecarlo``, ``sensitivity``) check every argument before ``--out`` is touched,
so each row also proves nothing is created; ``loops`` refuses what it used to clamp.
"""

from .harness import Case


def _mc(*argv):
    return ["montecarlo", "--n", "4", "--out", "{tmp}/o", "-q", *argv]


def _row(id_, argv, message, **kw):
    return Case(id_, argv=list(argv), message=message, **kw)


CASES = [
    # --- sweep sizes and seeds
    _row("mc-n-zero", ["montecarlo", "--n", "0", "--out", "{tmp}/o"], "--n 0"),
    _row("mc-n-negative", ["montecarlo", "--n", "-5", "--out", "{tmp}/o"], "--n -5"),
    _row("mc-n-huge", ["montecarlo", "--n", "10000000000", "--out", "{tmp}/o"], "between 1 and"),
    _row("mc-n-not-integer", ["montecarlo", "--n", "2.5", "--out", "{tmp}/o"], "invalid int value"),
    _row("sobol-n-zero", ["sensitivity", "--method", "sobol", "--n", "0", "--out", "{tmp}/o"],
         "--n 0"),
    _row("mc-seed-negative", _mc("--seed", "-1"), "--seed -1"),
    _row("mc-seed-above-32-bit", _mc("--seed", str(2 ** 32)), "2**32 - 1"),
    _row("mc-seed-text", _mc("--seed", "abc"), "invalid int value"),
    _row("mc-workers-zero", _mc("--workers", "0"), "--workers must be >= 1, got 0"),
    _row("mc-percentiles-nan", _mc("--percentiles", "5,nan,95"), "--percentiles"),
    # --- sweep ranges go through the one validator (issue item 6)
    _row("mc-range-duration-below-time-step", _mc("--range", "Value adjustment time=0.001:0.5"),
         "'Value adjustment time' = 0.001 Year is shorter than TIME STEP"),
    _row("mc-range-negative-duration", _mc("--range", "Construction time=-2:-1"),
         "'Construction time'"),
    _row("mc-range-lever-above-range", _mc("--range", "Outside funding availability=0:5"),
         "above its maximum 1"),
    _row("mc-range-no-colon", _mc("--range", "Construction time=1"), "NAME=LOW:HIGH"),
    _row("mc-range-no-equals", _mc("--range", "Construction time"), "NAME=LOW:HIGH"),
    _row("mc-range-three-numbers", _mc("--range", "Construction time=1:2:3"), "NAME=LOW:HIGH"),
    _row("mc-range-empty-name", _mc("--range", "=1:2"), "NAME=LOW:HIGH"),
    _row("mc-range-nan", _mc("--range", "Construction time=nan:2"), "finite"),
    _row("mc-range-inf", _mc("--range", "Construction time=1:inf"), "finite"),
    _row("mc-range-reversed", _mc("--range", "Construction time=3:1"), "LOW must be below HIGH"),
    _row("mc-range-duplicate-spellings", _mc("--range", "Construction time=1:2",
                                             "--range", "construction_time=1:3"),
         "both name 'Construction time'"),
    _row("mc-range-unknown-suggests", _mc("--range", "Constrction time=1:2"),
         "did you mean 'Construction time'"),
    _row("mc-param-duplicate", _mc("--param", "Construction time", "--param", "CONSTRUCTION TIME"),
         "both name"),
    _row("mc-param-unknown-suggests", _mc("--param", "AI demand multiplyer"),
         "did you mean 'AI demand multiplier'"),
    # --- loops: no silent clamps
    _row("loops-time-before-run", ["loops", "--time", "1900"], "--time 1900 lies outside the run"),
    _row("loops-time-after-run", ["loops", "--time", "3000"], "outside the run"),
    _row("loops-time-nan", ["loops", "--time", "nan"], "finite"),
    _row("loops-max-loops-negative", ["loops", "--max-loops", "-5"], "--max-loops -5"),
    _row("loops-max-loops-zero", ["loops", "--max-loops", "0"], "--max-loops 0"),
    _row("loops-show-negative", ["loops", "--show", "-1"], "--show -1"),
    # --- malformed --set
    _row("run-set-no-equals", ["run", "--set", "AI demand multiplier 0.8"], "Name=value"),
    _row("run-set-empty-name", ["run", "--set", "=0.8"], "name before '=' is empty"),
    _row("run-set-empty-value", ["run", "--set", "AI demand multiplier="], "is not a number"),
    _row("run-set-two-equals", ["run", "--set", "AI demand multiplier=0.8=0.9"], "is not a number"),
    _row("run-final-time-text", ["run", "--final-time", "soon"], "invalid float value"),
    # --- loopgain (issue 15): one line naming the bad thing
    _row("loopgain-time-after-run", ["loopgain", "--time", "2050"],
         "--time 2050 lies outside the run"),
    _row("loopgain-time-nan", ["loopgain", "--time", "nan"], "finite"),
    _row("loopgain-unknown-loop", ["loopgain", "--loop", "R9"],
         "'R9' is not in named_loops.yaml"),
    _row("loopgain-every-zero", ["loopgain", "--along-baseline", "--every", "0"],
         "--every must be a positive"),
    _row("loopgain-write-reduced-with-time", ["loopgain", "--write-reduced", "--time", "2030"],
         "--write-reduced regenerates"),
    _row("loopgain-loop-closest", ["loopgain", "--loop", "R4"], "(closest: R3"),
    _row("loopgain-unknown-scenario", ["loopgain", "--scenario", "nope"],
         "unknown scenario 'nope'"),
    _row("dominance-unknown-scenario", ["dominance", "--scenario", "nope"],
         "unknown scenario 'nope'"),
]
