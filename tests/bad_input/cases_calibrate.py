"""``aicarousel calibrate`` and ``--from-posterior`` of montecarlo, sensitivity and experiment
(issue 14): bad targets, bad
parameters, bad dates and stores are one line on stderr, exit 2, refused before any sampling
and with nothing written (the output directory ``out`` stays absent)."""

from __future__ import annotations

import numpy as np

from aicarousel import paths

from .harness import Case

CAL = ["calibrate", "--params", "Planning horizon", "--method", "emcee", "--walkers", "4",
       "--steps", "2", "--out", "{tmp}/out", "-q"]
SMC = ["calibrate", "--params", "Planning horizon", "--out", "{tmp}/out", "-q"]


def _targets(edit):
    """Setup: the shipped targets with one cell edited by ``edit(lines)``."""
    def setup(sb):
        lines = paths.CALIBRATION_TARGETS_CSV.read_text().splitlines()
        (sb / "targets.csv").write_text("\n".join(edit(lines)) + "\n")
    return setup


def _cell(row, col, value):
    def edit(lines):
        import csv
        import io
        rows = list(csv.reader(io.StringIO("\n".join(lines))))
        rows[row][rows[0].index(col)] = value
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue().splitlines()
    return edit


def _params_low_high(sb):
    lines = paths.PARAMETERS_CSV.read_text().splitlines()
    out = []
    for ln in lines:
        if ln.startswith("Planning horizon,"):
            f = ln.split(",")
            f[3], f[4] = "3", "3"   # low = high
            ln = ",".join(f)
        out.append(ln)
    (sb / "params.csv").write_text("\n".join(out) + "\n")


def _store(sb):
    (sb / "out").mkdir()
    np.savez(sb / "out" / "chains.npz", chain=np.zeros((1, 4, 1)))


def _no_posterior(sb):
    (sb / "post").mkdir()


CASES = [
    Case("calibrate-unknown-variable", argv=CAL + ["--targets", "{tmp}/targets.csv"],
         setup=_targets(_cell(1, "variable", "Lab revenue from end-users")),
         message="did you mean 'Lab revenue from end users'", owned=("targets.csv",)),
    Case("calibrate-unknown-statistic", argv=CAL + ["--targets", "{tmp}/targets.csv"],
         setup=_targets(_cell(1, "statistic", "integrall")),
         message="unknown statistic 'integrall'"),
    Case("calibrate-period-outside-run", argv=CAL + ["--targets", "{tmp}/targets.csv"],
         setup=_targets(_cell(3, "end", "2040")),
         message="outside the run 2024-2035"),
    Case("calibrate-sigma-zero", argv=CAL + ["--targets", "{tmp}/targets.csv"],
         setup=_targets(_cell(2, "sigma", "0")), message="sigma <= 0"),
    Case("calibrate-sigma-negative", argv=CAL + ["--targets", "{tmp}/targets.csv"],
         setup=_targets(_cell(2, "sigma", "-0.1")), message="sigma <= 0"),
    Case("calibrate-unknown-parameter",
         argv=["calibrate", "--params", "Planing horizon", "--out", "{tmp}/out", "-q"],
         message="did you mean 'Planning horizon'"),
    Case("calibrate-low-not-below-high", argv=CAL + ["--parameters", "{tmp}/params.csv"],
         setup=_params_low_high, message="low >= high"),
    Case("calibrate-until-before-every-target", argv=CAL + ["--until", "2024-03-01"],
         message="before every target"),
    Case("calibrate-until-not-a-date", argv=CAL + ["--until", "soon"], message="YYYY-MM-DD"),
    Case("calibrate-walkers-odd", argv=CAL[:5] + ["--walkers", "3", "--steps", "2", "--out",
                                                  "{tmp}/out", "-q"],
         message="--walkers 3"),
    Case("calibrate-smc-particles-not-a-multiple", argv=SMC + ["--particles", "402"],
         message="--particles 402: give a multiple of 4"),
    Case("calibrate-smc-steps", argv=SMC + ["--steps", "100"],
         message="--steps applies to --method emcee"),
    Case("calibrate-emcee-particles", argv=CAL + ["--particles", "400"],
         message="--particles applies to --method smc"),
    Case("calibrate-sampling-step-not-a-multiple", argv=SMC + ["--sampling-step", "1/100"],
         message="--sampling-step 1/100: give a whole multiple of the model's TIME STEP"),
    Case("calibrate-sampling-step-not-a-step", argv=SMC + ["--sampling-step", "fast"],
         message="--sampling-step 'fast': give a TIME STEP in years"),
    Case("calibrate-max-params-with-params", argv=SMC + ["--max-params", "2"],
         message="give --params or --max-params, not both"),
    Case("calibrate-max-params-zero",
         argv=["calibrate", "--max-params", "0", "--out", "{tmp}/out", "-q"],
         message="--max-params 0: give at least 1"),
    Case("calibrate-resume-without-store", argv=CAL + ["--resume"], message="no chain store"),
    Case("calibrate-store-exists", argv=CAL, setup=_store, message="--resume"),
    Case("calibrate-resume-and-force", argv=CAL + ["--resume", "--force"],
         message="not both"),
    Case("calibrate-targets-missing", argv=CAL + ["--targets", "{tmp}/nope.csv"],
         message="no such file"),
    Case("montecarlo-from-posterior-missing",
         argv=["montecarlo", "--n", "4", "--from-posterior", "{tmp}/post", "--out",
               "{tmp}/mc", "-q"], setup=_no_posterior, message="posterior_draws.nc"),
    Case("sensitivity-from-posterior-missing",
         argv=["sensitivity", "--method", "morris", "--n", "2", "--from-posterior",
               "{tmp}/post", "--out", "{tmp}/sens", "-q"], setup=_no_posterior,
         message="run `aicarousel calibrate"),
    Case("experiment-from-posterior-missing",
         argv=["experiment", "baseline", "--from-posterior", "{tmp}/post", "--output",
               "{tmp}/exp.nc", "--table", "{tmp}/exp", "-q"], setup=_no_posterior,
         message="run `aicarousel calibrate"),
    Case("experiment-draws-without-posterior",
         argv=["experiment", "baseline", "--draws", "5", "--output", "{tmp}/exp.nc", "--table",
               "{tmp}/exp", "-q"], message="--draws is for --from-posterior"),
    Case("calibrate-set-baseline-with-until",
         argv=CAL + ["--until", "2026", "--set-baseline"], message="drop --until"),
]
