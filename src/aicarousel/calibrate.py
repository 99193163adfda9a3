"""Calibration with uncertainty: point estimate, Bayesian posterior, out-of-sample checks.

The data are the targets of ``data/calibration_targets.csv`` (:mod:`aicarousel.calibration`
reads them and evaluates each target's statistic; nothing here evaluates a target another way).
Each target ``k`` has data ``y_k`` and a relative measurement error ``sigma_k``; a parameter set
``theta`` gives the model's statistic ``m_k(theta)`` and the residual
``r_k = (m_k - y_k) / (sigma_k |y_k|)``. The log likelihood is ``-sum(r_k^2) / 2`` (independent
Gaussian errors); priors are uniform on the parameter table's ``[low, high]``.

Steps (:func:`calibrate`):

1. **Selection** (:func:`screen`): with no names given, the ``uncertain`` parameters of the
   table that the data can inform: one vectorised call runs the baseline and every parameter at
   its low and high end (others at their values); a parameter is kept when moving it across its
   range moves at least one target by :data:`SCREEN_THRESHOLD` measurement sigmas.
2. **Point estimate**: weighted least squares (= maximum likelihood) with
   :func:`scipy.optimize.least_squares` (trust region reflective, bounded by the ranges), in
   coordinates scaled to the unit cube; the Jacobian's forward differences are one vectorised
   call of D runs. Started from the table's values and from :data:`N_STARTS` - 1 Latin
   hypercube points; the lowest cost wins.
3. **Posterior**, by default (``method="smc"``, :func:`sample_smc`) sequential Monte Carlo
   with adaptive tempering from the prior to the posterior in ``z = logit(u)``
   (:func:`smc_sample`): particles in :data:`SMC_POPULATIONS` independent populations,
   reweighted (no runs), resampled and moved by Metropolis-Hastings (a t mixture fitted by EM
   to each population as independence proposal, and a random walk of its covariance; each
   move one engine call over all particles) until they decorrelate; converged when the
   populations agree (:func:`smc_diagnostics`). Why the default: the 20-parameter posterior
   is a thin curved ridge (locally about 0.05 of its marginal width in some directions) on
   which the emcee walkers below stick at points the fitted proposal rarely reaches, for
   1,000+ steps (bench/bench_calibrate.py). With ``method="emcee"``:
   :class:`emcee.EnsembleSampler` (``vectorize=True``) in ``z = logit(u)``.
   Walkers start from the Laplace approximation at the point estimate (:func:`laplace_start`).
   The default moves ("fitted", :func:`fitted_moves`) use the posterior's shape: a warm-up of
   :data:`WARMUP_ROUNDS` x :data:`WARMUP_STEPS` steps, not kept, fits a multivariate t to the
   walkers' positions (first from the Laplace approximation, then refitted each round); the
   kept chain runs with that proposal fixed (importance resampling among fresh t draws, and a
   random walk of the fitted covariance), one engine call per step. The ensemble moves ("de",
   "stretch") need two calls per step, one per half (emcee's red-blue split).
4. **Diagnostics** (emcee: :func:`diagnostics`; SMC: :func:`smc_diagnostics`): integrated
   autocorrelation time per parameter
   (:func:`emcee.autocorr.integrated_time`), effective sample size, acceptance fraction. The run
   is converged when the chain is at least :data:`TAU_FACTOR` autocorrelation times long and the
   mean acceptance lies in :data:`ACCEPTANCE_RANGE`; otherwise the table says so and the command
   warns on stderr and exits 1.

The SMC state is saved after every tempering stage, the emcee chains every
:data:`CHECKPOINT_STEPS` steps, to ``<out>/chains.npz`` (atomically:
positions, log probabilities, acceptance counts, the sampler's random state and the point
estimate), so ``--resume`` continues an interrupted run to the same numbers as an
uninterrupted one. The store records its definition (model hash, targets, parameters, ranges,
seed, walkers, steps, until); a different definition is refused, naming the keys.

Sampling step (:func:`resolve_sampling_step`): when the model's TIME STEP is finer than
:data:`SAMPLING_STEP` (the carousel's 1/512 against 1/64), steps 2 and 3 run the model at the
sampling step; the point estimate is then polished at the model's own step and the final draws
are importance-reweighted to it (:func:`reweight`; the weights' ESS is a convergence check).

Out-of-sample (``until``): only targets whose period ends on or before ``until`` are fitted;
every target gets its posterior predictive interval (5-95 %) and whether the data fall inside;
the held-out targets' coverage is reported.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import CalibrationError

#: A parameter informs the data when its range moves a target by this many sigmas.
SCREEN_THRESHOLD = 1.0
#: Converged when the chain is this many autocorrelation times long (emcee's guidance).
TAU_FACTOR = 50
#: Mean acceptance fraction outside this range flags the run.
ACCEPTANCE_RANGE = (0.1, 0.9)
#: Starting points of the point estimate (the table's values plus LHS points).
N_STARTS = 4
#: Steps between two saves of the chain store.
CHECKPOINT_STEPS = 25
#: Steps between two convergence checks (a multiple of CHECKPOINT_STEPS).
CONVERGENCE_CHECK_STEPS = 100
#: A posterior 90 % interval narrower than this share of the prior's marks "constrained".
CONSTRAINED_RATIO = 0.75
#: Pairs with |correlation| at least this are listed.
STRONG_CORRELATION = 0.5
#: Draws of the posterior predictive runs.
N_PREDICTIVE = 400
#: Outputs of the predictive bands (besides the targets' variables).
KEY_OUTPUTS = ("Lab Revenue", "Lab Cash", "Lab Market Value", "Cloud Debt",
               "Cloud Installed Compute", "Cloud Market Value", "Chips Market Value",
               "Credit spread")
PERCENTILES = (5, 25, 50, 75, 95)
#: emcee moves: "fitted" (see :func:`fitted_moves`: Metropolis-Hastings with a proposal fitted
#: to the posterior in a discarded warm-up; one engine call per step), "de" (differential
#: evolution 80 % + DE snooker 20 %, ter Braak 2006/2008) or "stretch" (Goodman & Weare's
#: affine-invariant stretch, emcee's default); the last two cost two engine calls per step (the
#: red-blue halves). See bench/bench_calibrate.py.
MOVES = ("fitted", "de", "stretch")
DEFAULT_MOVES = "fitted"
#: "fitted" moves: warm-up rounds and steps per round (not kept; the proposal is refitted to
#: each round's positions and fixed for the kept chain).
WARMUP_ROUNDS = 6
WARMUP_STEPS = 25
#: "fitted" moves: degrees of freedom of the multivariate-t proposal of the importance
#: resampling move, the fresh draws per walker and step, the factor on the fitted scale (a
#: proposal wider than the posterior keeps the weights bounded where the posterior's tails
#: are heavy), the move's share of the steps (the rest: a Gaussian random walk with the fitted
#: covariance x 2.38^2 / D).
FITTED_DF = 5.0
FITTED_DRAWS = 16
FITTED_SCALE = 1.2
FITTED_INDEPENDENCE_WEIGHT = 0.8
#: The sampler's coordinates: ``z = logit(u)`` of the unit cube (see :func:`log_prior_z`).
#: Recorded in the chain store's definition (a store of other coordinates is not resumed).
COORDINATES = "logit"
#: The point estimate is kept this far inside the unit cube when the walkers start around it.
START_MARGIN = 0.01
#: tau estimates are stable when none changed by more than this share over the last
#: CONVERGENCE_CHECK_STEPS steps (emcee's tutorial uses 1 %; see diagnostics).
TAU_STABILITY = 0.05
#: Split R-hat (Gelman-Rubin) over RHAT_GROUPS groups of walkers must be below RHAT_MAX.
RHAT_GROUPS = 4
RHAT_MAX = 1.05
#: Samplers: "smc" (sequential Monte Carlo with adaptive tempering, :func:`smc_sample`) or
#: "emcee" (the ensemble MCMC of :func:`sample_posterior`).
METHODS = ("smc", "emcee")
DEFAULT_METHOD = "smc"
#: SMC: particles (all populations), independent populations, the share of each population's
#: particles the importance weights keep as Kish ESS at each tempering stage, the correlation
#: between a stage's start and its moved particles below which the moves stop, the most moves
#: per stage, and the smallest population ESS a converged run may have shown.
SMC_PARTICLES = 2000
SMC_POPULATIONS = 4
SMC_ESS_FRACTION = 0.5
SMC_DECORRELATION = 0.2
SMC_MAX_MOVES = 1000
SMC_MIN_ESS = 200
#: SMC moves: share of independence proposals (a multivariate t of SMC_DF degrees of freedom
#: with the population's mean and covariance; the rest: a random walk of that covariance).
SMC_INDEPENDENCE_WEIGHT = 0.5
SMC_DF = 5.0
#: SMC: components of the independence proposal's t mixture (fitted by EM to each population).
SMC_COMPONENTS = 5
#: Sampling TIME STEP (years). When the model's own step is finer, the point estimate's starts
#: and the posterior are computed with the model run at this step (each run 8 times cheaper at
#: the carousel's 1/512); then the point estimate is polished and the draws are
#: importance-reweighted to the model's own step (:func:`reweight`), so the result is the
#: posterior of the model as written. ``--sampling-step model`` samples at the model's step.
SAMPLING_STEP = 1.0 / 64.0
#: The coarsest sampling step accepted (years): a quarter, the targets' shortest period.
MAX_SAMPLING_STEP = 0.25
#: The reweighting to the model's step is accepted when every population keeps a Kish ESS of at
#: least this share of its draws (as a tempering stage must; a smaller ESS means the sampling
#: step's integration error moves the likelihood too much: sample at a finer step).
REWEIGHT_ESS_FRACTION = 0.5
#: Environment variable: seconds to sleep after each saved block (testing aid for kill tests).
CHECKPOINT_DELAY_ENV = "AICAROUSEL_CALIBRATE_DELAY"
STORE_NAME = "chains.npz"

__all__ = ["Setup", "make_setup", "screen", "resolve_sampling_step", "reweight",
           "reweight_reasons", "point_estimate", "sample_posterior",
           "diagnostics", "calibrate", "parse_until", "load_posterior_draws", "Result",
           "expit", "logit", "log_prior_z", "laplace", "laplace_start", "fitted_moves", "warmup", "split_rhat",
           "sample_smc", "smc_sample", "smc_diagnostics", "log_prior_unit",
           "set_baseline",
           "baseline_values", "record_table", "write_results", "posterior_intervals"]


# ----------------------------------------------------------------------------------------------
# setup: targets, parameters, likelihood
# ----------------------------------------------------------------------------------------------
def parse_until(text: Any) -> float:
    """``--until``: a decimal year (``2026`` or ``2025.5``) or an ISO date (``2026-01-01``)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    try:
        d = _dt.date.fromisoformat(s)
    except ValueError:
        raise CalibrationError(f"--until {text!r}: give a date as YYYY-MM-DD or a decimal year "
                               "such as 2026.0") from None
    start = _dt.date(d.year, 1, 1)
    days = (_dt.date(d.year + 1, 1, 1) - start).days
    return d.year + (d - start).days / days


def resolve_sampling_step(value: Any, model_step: float) -> float | None:
    """The TIME STEP (years) the sampler runs the model at, or None for the model's own.

    Parameters
    ----------
    value : None, "model", float or str
        None: :data:`SAMPLING_STEP` when it is a whole multiple (> 1) of the model's step, else
        the model's; "model":
        the model's; a number or a fraction such as ``"1/64"``: that step, which must be a
        whole multiple of the model's step and at most :data:`MAX_SAMPLING_STEP`.
    model_step : float
        The model file's TIME STEP (years).
    """
    if value is None:  # the default only where it is a whole multiple of the model's step
        ratio = SAMPLING_STEP / model_step
        whole = abs(ratio - round(ratio)) <= 1e-9 * ratio
        return SAMPLING_STEP if whole and round(ratio) > 1 else None
    text = str(value).strip()
    if text.lower() == "model":
        return None
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            step = float(num) / float(den)
        else:
            step = float(text)
    except (ValueError, ZeroDivisionError):
        raise CalibrationError(f"--sampling-step {text!r}: give a TIME STEP in years such as "
                               "1/64 or 0.015625, or 'model'") from None
    if not (np.isfinite(step) and 0 < step <= MAX_SAMPLING_STEP):
        raise CalibrationError(f"--sampling-step {text}: give a step above 0 and at most "
                               f"{MAX_SAMPLING_STEP:g} year")
    ratio = step / model_step
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-9 * ratio:
        raise CalibrationError(f"--sampling-step {text}: give a whole multiple of the model's "
                               f"TIME STEP {model_step:g} year (e.g. 1/64), or 'model'")
    return None if round(ratio) == 1 else step


def _step_text(dt: float) -> str:
    """A TIME STEP as '1/N' when it is the inverse of a whole number, else '%g'."""
    inv = 1.0 / dt
    return f"1/{inv:.0f}" if abs(inv - round(inv)) < 1e-9 * inv else f"{dt:g}"


@dataclass
class Setup:
    """Everything the likelihood needs: model, targets, parameters and their ranges."""

    cm: Any
    targets: pd.DataFrame              # every target (fitted and held out)
    names: tuple[str, ...]             # canonical Vensim names
    low: np.ndarray
    high: np.ndarray
    units: tuple[str, ...]
    values: np.ndarray                 # the table's values (baseline)
    until: float | None = None
    fit_ids: tuple[str, ...] = ()
    fixed: dict = field(default_factory=dict)
    runs: int = 0                      # model runs evaluated so far
    calls: int = 0                     # calls of the ensemble engine so far
    time_step: float | None = None     # TIME STEP of the likelihood's runs (None: the model's)
    runs_by_step: dict = field(default_factory=dict)  # runs per TIME STEP (years)

    @property
    def model_step(self) -> float:
        """The model file's TIME STEP (years)."""
        return float(self.cm.ir.time.dt)

    def count_runs(self, n: int, dt: float | None = None) -> None:
        """Count one engine call of ``n`` runs at TIME STEP ``dt`` (None: the model's)."""
        dt = self.model_step if dt is None else float(dt)
        self.runs += n
        self.calls += 1
        self.runs_by_step[dt] = self.runs_by_step.get(dt, 0) + n

    @contextlib.contextmanager
    def stepping(self, time_step: float | None):
        """Run the likelihood at ``time_step`` (None: the model's own) inside the block."""
        old, self.time_step = self.time_step, time_step
        try:
            yield self
        finally:
            self.time_step = old

    @property
    def fit(self) -> pd.DataFrame:
        """The targets that are fitted."""
        return self.targets.loc[list(self.fit_ids)]

    def _final_time(self, targets: pd.DataFrame) -> float:
        dt = float(self.cm.ir.time.dt)
        end = float(targets["end"].max())
        final = np.ceil((end + dt) * 4.0) / 4.0  # the next quarter after the last period
        return float(min(float(self.cm.ir.time.final), final))

    def to_theta(self, u: np.ndarray) -> np.ndarray:
        """Unit-cube coordinates -> parameter values."""
        return self.low + np.asarray(u, float) * (self.high - self.low)

    def to_unit(self, theta: np.ndarray) -> np.ndarray:
        """Parameter values -> unit-cube coordinates."""
        return (np.asarray(theta, float) - self.low) / (self.high - self.low)

    def model_values(self, theta: np.ndarray, targets: pd.DataFrame | None = None) -> np.ndarray:
        """Each target's statistic for each parameter set (one vectorised call).

        Parameters
        ----------
        theta : numpy.ndarray
            Shape (N, D), inside the ranges.
        targets : pandas.DataFrame, optional
            Default the fitted targets.

        Returns
        -------
        numpy.ndarray
            Shape (N, K); NaN for runs that produced NaN/inf.
        """
        from .calibration import statistic_array

        targets = self.fit if targets is None else targets
        theta = np.atleast_2d(np.asarray(theta, float))
        n = theta.shape[0]
        params = dict(self.fixed)
        params.update({name: theta[:, j] for j, name in enumerate(self.names)})
        variables = sorted(set(targets["variable"]))
        dt = self.model_step if self.time_step is None else float(self.time_step)
        t, vals = self.cm.run_arrays(params, n=n, outputs=variables,
                                     final_time=self._final_time(targets), time_step=dt,
                                     saveper=dt, allow_nonfinite=True)
        self.count_runs(n, dt)
        by_real = {self.cm.real_name(k): v for k, v in vals.items()}
        out = np.empty((n, len(targets)))
        bad = np.zeros(n, bool)
        for v in by_real.values():
            bad |= ~np.all(np.isfinite(v), axis=1)
        for k, (_, r) in enumerate(targets.iterrows()):
            out[:, k] = statistic_array(t, by_real[r["variable"]], r["statistic"],
                                        float(r["start"]), float(r["end"]))
        out[bad] = np.nan
        return out

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """(N, K) residuals ``(m - y) / (sigma |y|)`` of the fitted targets."""
        fit = self.fit
        y = fit["value"].to_numpy(float)
        s = fit["sigma"].to_numpy(float) * np.abs(y)
        return (self.model_values(theta, fit) - y) / s

    def log_prob_z(self, z: np.ndarray) -> np.ndarray:
        """Log posterior (up to a constant) in the sampler's coordinates ``z = logit(u)``.

        The log likelihood at ``theta = low + expit(z) (high - low)`` plus :func:`log_prior_z`
        (the Jacobian ``du/dz``), so the prior stays uniform on each range. Shape (N,)."""
        z = np.atleast_2d(np.asarray(z, float))
        lp = log_prior_z(z)
        ok = np.isfinite(lp)
        if ok.any():
            r = self.residuals(self.to_theta(expit(z[ok])))
            ll = -0.5 * np.sum(r * r, axis=1)
            lp[ok] = np.where(np.isfinite(ll), ll + lp[ok], -np.inf)
        return lp

    def log_lik_z(self, z: np.ndarray) -> np.ndarray:
        """Log likelihood at sampler coordinates ``z = logit(u)``, shape (N,); -inf for failed
        runs (NaN/inf). One vectorised call (SMC tempers it; :meth:`log_prob_z` adds the prior).
        """
        z = np.atleast_2d(np.asarray(z, float))
        r = self.residuals(self.to_theta(expit(z)))
        ll = -0.5 * np.sum(r * r, axis=1)
        return np.where(np.isfinite(ll), ll, -np.inf)

    def log_lik_unit(self, u: np.ndarray) -> np.ndarray:
        """Log likelihood at unit-cube points (inside), shape (N,); -inf for failed runs."""
        r = self.residuals(self.to_theta(np.atleast_2d(np.asarray(u, float))))
        ll = -0.5 * np.sum(r * r, axis=1)
        return np.where(np.isfinite(ll), ll, -np.inf)

    def log_prob_unit(self, u: np.ndarray) -> np.ndarray:
        """Log posterior (up to a constant) at unit-cube points, shape (N,); -inf outside."""
        u = np.atleast_2d(np.asarray(u, float))
        lp = np.full(u.shape[0], -np.inf)
        inside = np.all((u >= 0) & (u <= 1), axis=1)
        if inside.any():
            r = self.residuals(self.to_theta(u[inside]))
            ll = -0.5 * np.sum(r * r, axis=1)
            lp[inside] = np.where(np.isfinite(ll), ll, -np.inf)
        return lp

    def definition(self, seed: int, walkers: int, steps: int) -> dict:
        """What determines the chains' numbers (stored with them; compared on --resume)."""
        cols = ["variable", "statistic", "start", "end", "value", "sigma"]
        tcsv = self.fit[cols].to_csv(lineterminator="\n", float_format="%.17g")
        return {"model_hash": self.cm.model_hash, "parameters": list(self.names),
                "low": [float(x) for x in self.low], "high": [float(x) for x in self.high],
                "fixed": {k: float(v) for k, v in sorted(self.fixed.items())},
                "targets_sha256": hashlib.sha256(tcsv.encode()).hexdigest(),
                "fit_targets": list(self.fit_ids), "until": self.until, "seed": int(seed),
                "walkers": int(walkers), "steps": int(steps),
                "checkpoint_steps": CHECKPOINT_STEPS,
                "sampling_time_step": self.model_step if self.time_step is None
                else float(self.time_step)}


def expit(z: np.ndarray) -> np.ndarray:
    """Logistic function: sampler coordinates -> unit-cube coordinates (0 < u < 1)."""
    from scipy.special import expit as _expit
    return _expit(np.asarray(z, float))


def logit(u: np.ndarray) -> np.ndarray:
    """Inverse of :func:`expit`: unit-cube coordinates -> sampler coordinates."""
    from scipy.special import logit as _logit
    return _logit(np.asarray(u, float))


def log_prior_z(z: np.ndarray) -> np.ndarray:
    """Log density of ``z = logit(u)`` when ``u`` is uniform on (0, 1): ``sum log(u (1 - u))``
    over the parameters (the Jacobian of ``u = expit(z)``), shape (N,).

    With this term the posterior of ``u`` (and so of each parameter) under a flat likelihood is
    the uniform prior of the parameter table. In ``z`` the posterior has no edges, so the
    ensemble's moves never propose outside the ranges (the reason for the reparametrisation:
    affine-invariant moves lose most proposals near a bound of the unit cube)."""
    z = np.atleast_2d(np.asarray(z, float))
    return -np.sum(np.logaddexp(0.0, z) + np.logaddexp(0.0, -z), axis=1)


def _table_rows(csv=None) -> dict[str, Any]:
    from .sensitivity import _read_table
    table = _read_table(csv)
    return {r.name.lower(): r for r in table.itertuples(index=False)}


def make_setup(params: Sequence[str] | None = None, *, targets_file=None, parameters_file=None,
               until: float | None = None, model_file=None,
               fixed: Mapping[str, float] | None = None,
               max_params: int | None = None) -> Setup:
    """Read and check targets and parameters; every bad input is one CalibrationError line.

    Parameters
    ----------
    params : sequence of str, optional
        Parameters to estimate; default the ``uncertain`` ones :func:`screen` keeps.
    targets_file, parameters_file : path, optional
        Default ``data/calibration_targets.csv`` and ``data/parameters.csv``.
    until : float, optional
        Fit only targets whose period ends on or before this decimal year.
    model_file : path, optional
    fixed : mapping, optional
        Overrides applied to every run (not estimated).
    max_params : int, optional
        Without ``params``: keep at most this many of the screened parameters, those that move
        a fitted target most (the others stay at their table values).
    """
    if max_params is not None:
        if params is not None:
            raise CalibrationError("give --params or --max-params, not both")
        if int(max_params) < 1:
            raise CalibrationError(f"--max-params {max_params}: give at least 1")
    from .calibration import check_targets, read_targets
    from .ensemble import compile_model
    from .params import check_range, did_you_mean, facts_from_ir

    cm = compile_model(model_file)
    tname = Path(targets_file).name if targets_file else "calibration_targets.csv"
    targets = read_targets(targets_file)
    check_targets(targets, cm, where=tname)
    if until is not None:
        until = float(until)
        fit_ids = tuple(i for i, r in targets.iterrows() if r["end"] <= until + 1e-9)
        if not fit_ids:
            raise CalibrationError(f"--until {until:g} is before every target (the first period "
                                   f"ends at {targets['end'].min():g}); give a later date")
    else:
        fit_ids = tuple(targets.index)
    rows = _table_rows(parameters_file)
    fx = facts_from_ir(cm.ir)
    if params is None:
        cand = [r.name for r in rows.values() if r.role == "uncertain"
                and np.isfinite(r.low) and np.isfinite(r.high) and r.low < r.high]
        names = cand
    else:
        names = list(params)
        if not names:
            raise CalibrationError("--params: give at least one parameter name")
    canon, low, high, units, values = [], [], [], [], []
    for n in names:
        row = rows.get(str(n).strip().lower())
        if row is None:
            raise CalibrationError(f"unknown parameter {n!r}: not in the parameter table"
                                   f"{did_you_mean(n, [r.name for r in rows.values()])}")
        if not (np.isfinite(row.low) and np.isfinite(row.high)):
            raise CalibrationError(f"parameter {row.name!r} has no low/high range in the "
                                   "parameter table; add one")
        if not row.low < row.high:
            raise CalibrationError(f"parameter {row.name!r} has low >= high ({row.low:g} >= "
                                   f"{row.high:g}) in the parameter table; give low < high")
        if row.name in canon:
            raise CalibrationError(f"parameter {row.name!r} is named twice; give it once")
        try:
            check_range(row.name, float(row.low), float(row.high), fx)
        except Exception as exc:  # noqa: BLE001 - the one validator's message, one line
            raise CalibrationError(str(exc)) from None
        canon.append(row.name)
        low.append(float(row.low))
        high.append(float(row.high))
        units.append(str(row.unit))
        values.append(float(np.clip(row.value, row.low, row.high)))
    setup = Setup(cm, targets, tuple(canon), np.array(low), np.array(high), tuple(units),
                  np.array(values), until, fit_ids, dict(fixed or {}))
    if params is None:
        effect = screen(setup)
        keep = [j for j in range(len(canon)) if effect[j] >= SCREEN_THRESHOLD]
        if max_params is not None:  # the most informative first; ties in table order
            keep = sorted(sorted(keep, key=lambda j: -effect[j])[:int(max_params)])
        if not keep:
            raise CalibrationError("no uncertain parameter moves any fitted target by "
                                   f"{SCREEN_THRESHOLD} sigma; name parameters with --params")
        setup = Setup(cm, targets, tuple(canon[j] for j in keep), setup.low[keep],
                      setup.high[keep], tuple(units[j] for j in keep), setup.values[keep],
                      until, fit_ids, dict(fixed or {}), setup.runs, setup.calls,
                      runs_by_step=dict(setup.runs_by_step))
        setup.screen_effect = {canon[j]: float(effect[j]) for j in range(len(canon))}
    return setup


def screen(setup: Setup) -> np.ndarray:
    """Largest move of a fitted target, in measurement sigmas, when each parameter goes from
    its low to its high end (others at their values): one call of 1 + 2D runs.

    Returns
    -------
    numpy.ndarray
        Shape (D,); NaN-free (a failed run counts as a large effect).
    """
    d = len(setup.names)
    theta = np.tile(setup.values, (2 * d + 1, 1))
    for j in range(d):
        theta[1 + 2 * j, j] = setup.low[j]
        theta[2 + 2 * j, j] = setup.high[j]
    r = setup.residuals(theta)
    lo, hi = r[1::2], r[2::2]
    eff = np.max(np.abs(hi - lo), axis=1)
    return np.where(np.isfinite(eff), eff, 1e6)


# ----------------------------------------------------------------------------------------------
# point estimate
# ----------------------------------------------------------------------------------------------
def point_estimate(setup: Setup, seed: int = 0, n_starts: int = N_STARTS,
                   sampling_step: float | None = None, starts_unit=None) -> dict:
    """Weighted least squares (maximum likelihood) inside the ranges.

    Parameters
    ----------
    setup : Setup
    seed : int
        Draws the Latin hypercube starts.
    n_starts : int
        The table's values plus ``n_starts - 1`` Latin hypercube points.
    sampling_step : float, optional
        Fit from every start with the model run at this TIME STEP (years), then polish the
        best fit from there with the model at its own step (one more least squares run), so
        the estimate is the model's own at a fraction of the cost.
    starts_unit : sequence of (D,) arrays, optional
        Starting points in the unit cube instead of the table's values and the LHS points.

    Returns
    -------
    dict
        ``theta`` (D,), ``cost`` (sum of squared residuals / 2), ``starts``, ``nfev``,
        ``nfev_sampling_step`` (evaluations at ``sampling_step``; 0 without one).
    """
    if sampling_step is not None:
        with setup.stepping(sampling_step):
            coarse = point_estimate(setup, seed, n_starts, starts_unit=starts_unit)
        fine = point_estimate(setup, seed, starts_unit=[coarse["unit"]])
        fine["starts"] = coarse["starts"]
        fine["nfev_sampling_step"] = coarse["nfev"]
        fine["nfev"] = coarse["nfev"] + fine["nfev"]
        return fine
    from scipy.optimize import least_squares

    d = len(setup.names)
    h = 1e-4
    big = 1e3

    def fun(u):
        r = setup.residuals(setup.to_theta(u[None, :]))[0]
        return np.where(np.isfinite(r), r, big)

    def jac(u):
        steps = np.where(u + h <= 1.0, h, -h)
        pts = np.tile(u, (d + 1, 1))
        pts[1:] += np.diag(steps)
        r = setup.residuals(setup.to_theta(pts))
        r = np.where(np.isfinite(r), r, big)
        return ((r[1:] - r[0]) / steps[:, None]).T

    rng = np.random.default_rng(seed)
    if starts_unit is not None:
        starts = [np.clip(np.asarray(u, float), 0.0, 1.0) for u in starts_unit]
    else:
        starts = [np.clip(setup.to_unit(setup.values), 0.0, 1.0)]
        m = max(0, int(n_starts) - 1)
        if m:
            lhs = (rng.permuted(np.tile(np.arange(m), (d, 1)), axis=1).T
                   + rng.random((m, d))) / m
            starts += list(lhs)
    best, nfev = None, 0
    for u0 in starts:
        res = least_squares(fun, u0, jac=jac, bounds=(0.0, 1.0), method="trf", x_scale=1.0,
                            max_nfev=200)
        nfev += res.nfev
        if best is None or res.cost < best.cost:
            best = res
    return {"theta": setup.to_theta(best.x), "unit": best.x, "cost": float(best.cost),
            "starts": len(starts), "nfev": int(nfev), "nfev_sampling_step": 0,
            "status": int(best.status),
            "jac": np.asarray(best.jac, float)}


def laplace(setup: Setup, point: dict) -> tuple[np.ndarray, np.ndarray]:
    """Laplace approximation of the posterior in ``z = logit(u)`` at the point estimate: centre
    and covariance (see :func:`laplace_start`; no model runs).

    Returns
    -------
    (z0, cov)
        Shapes (D,) and (D, D).
    """
    d = len(setup.names)
    u0 = np.clip(np.asarray(point["unit"], float), START_MARGIN, 1 - START_MARGIN)
    z0 = logit(u0)
    g = u0 * (1 - u0)
    jac = point.get("jac")
    if jac is None or np.shape(jac) != (len(setup.fit_ids), d):
        jac = np.zeros((len(setup.fit_ids), d))
    jz = np.where(np.isfinite(jac), jac, 0.0) * g[None, :]
    prec = jz.T @ jz + np.diag(2.0 * g)
    cov = np.linalg.inv(prec)
    return z0, 0.5 * (cov + cov.T)


def laplace_start(setup: Setup, point: dict, walkers: int, rng: np.random.Generator,
                  tries: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Walkers' starting points in ``z = logit(u)``: draws from the Laplace approximation of the
    posterior at the point estimate.

    The centre is the point estimate (kept :data:`START_MARGIN` inside the unit cube, so it is
    finite in ``z``); the precision is the Gauss-Newton Hessian of the negative log posterior
    in ``z``: ``J_z' J_z`` from the Jacobian of the residuals (``J_z = J_u u (1 - u)``, from the
    optimiser's last Jacobian, no extra runs) plus the log prior's curvature ``2 u (1 - u)``,
    which keeps directions the data do not inform at the prior's width. Walkers whose start
    fails (NaN/inf) are drawn again (same generator, so the same seed gives the same starts).

    Returns
    -------
    (coords, log_prob)
        Shapes (walkers, D) and (walkers,).
    """
    d = len(setup.names)
    z0, cov = laplace(setup, point)
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(d))
    coords = z0 + rng.standard_normal((walkers, d)) @ chol.T
    lp = setup.log_prob_z(coords)
    for _ in range(tries):
        bad = ~np.isfinite(lp)
        if not bad.any():
            break
        coords[bad] = z0 + 0.5 * rng.standard_normal((int(bad.sum()), d)) @ chol.T
        lp[bad] = setup.log_prob_z(coords[bad])
    if not np.all(np.isfinite(lp)):
        raise CalibrationError("the model fails near the point estimate (NaN/inf); narrow "
                               "the parameter ranges")
    return coords, lp


# ----------------------------------------------------------------------------------------------
# posterior sampling with a resumable chain store
# ----------------------------------------------------------------------------------------------
def _state_to_arrays(rs) -> dict:
    name, keys, pos, has_gauss, cached = rs
    return {"rs_keys": np.asarray(keys, np.uint32), "rs_pos": np.int64(pos),
            "rs_has_gauss": np.int64(has_gauss), "rs_cached": np.float64(cached),
            "rs_name": np.array(name)}


def _arrays_to_state(z) -> tuple:
    return (str(z["rs_name"]), np.asarray(z["rs_keys"], np.uint32), int(z["rs_pos"]),
            int(z["rs_has_gauss"]), float(z["rs_cached"]))


def _save_store(path: Path, definition: dict, chain, log_prob, accepted, coords, lp, rs,
                point: dict, proposal: tuple | None = None) -> None:
    from .atomic import write_with

    d = np.shape(coords)[1]
    mean, cov = proposal if proposal is not None else (np.empty(0), np.empty((0, d)))
    arrays = {"proposal_mean": np.asarray(mean, float), "proposal_cov": np.asarray(cov, float),
              "chain": np.asarray(chain, float), "log_prob": np.asarray(log_prob, float),
              "accepted": np.asarray(accepted, float), "coords": np.asarray(coords, float),
              "last_log_prob": np.asarray(lp, float), "point_theta": point["theta"],
              "point_cost": np.float64(point["cost"]),
              "point_info": np.array(json.dumps({k: point[k] for k in ("starts", "nfev", "status")
                                              if k in point})),
              "definition": np.array(json.dumps(definition, sort_keys=True)),
              **_state_to_arrays(rs)}

    def write(tmp: Path):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        tmp.write_bytes(buf.getvalue())

    write_with(path, write)


def _resume_store(store, definition: dict):
    """The chain store to resume, refused in one line if it is missing or was made by a
    calibration with another definition (emcee and SMC alike)."""
    if store is None or not store.is_file():
        raise CalibrationError(f"--resume: no chain store {store}; run without --resume first")
    z = _load_store(store)
    diffs = _diff(z["definition"], definition)
    if diffs:
        raise CalibrationError(f"{store} was made by a different calibration; differs in: "
                               + ", ".join(diffs) + ". Use the same settings or a new --out")
    return z


def _load_store(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - a damaged file is one line
        raise CalibrationError(f"{path}: not a readable chain store ({type(exc).__name__}); "
                               "remove it or choose another --out") from None
    if "definition" not in data:
        raise CalibrationError(f"{path}: not a chain store of aicarousel calibrate")
    data["definition"] = json.loads(str(data["definition"]))
    return data


def _diff(a: dict, b: dict) -> list[str]:
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _check_walkers(walkers: int, steps: int, d: int) -> None:
    if walkers < 2 * d or walkers % 2:
        raise CalibrationError(f"--walkers {walkers}: give an even number of at least twice the "
                               f"number of parameters ({2 * d})")
    if steps < 1:
        raise CalibrationError(f"--steps {steps}: give at least 1 step")


def sample_posterior(setup: Setup, point: dict | None, *, walkers: int, steps: int, seed: int,
                     store: Path | None = None, resume: bool = False,
                     progress: bool = False, stop_when_converged: bool = True,
                     moves: str | None = None, max_seconds: float | None = None) -> dict:
    """Run (or continue) emcee and return the chains.

    Parameters
    ----------
    setup : Setup
    point : dict or None
        From :func:`point_estimate`; None only with ``resume`` (read from the store).
    walkers, steps : int
        Ensemble size (>= 2 D, even) and the most steps.
    seed : int
    store : Path, optional
        Chain store (``chains.npz``), saved every :data:`CHECKPOINT_STEPS` steps.
    resume : bool
        Continue the store's chains; refused if its definition differs.
    stop_when_converged : bool
        Every :data:`CONVERGENCE_CHECK_STEPS` steps, stop when :func:`diagnostics` says the
        chains converged (a rule of the chain alone, so a resumed run stops at the same step).
    moves : {"fitted", "de", "stretch"}, optional
        Default :data:`DEFAULT_MOVES`. With "fitted", a warm-up of :data:`WARMUP_ROUNDS` x
        :data:`WARMUP_STEPS` steps (not kept) fits the proposal (:func:`fitted_moves`); the
        store is first saved after it, with the proposal (a kill during the warm-up leaves no
        store: run again without ``--resume``).
    max_seconds : float, optional
        Wall-time budget (benchmarks): stop after the first saved block past it, as an
        interruption would (``--resume`` continues); not part of the definition.

    Returns
    -------
    dict
        ``chain`` (steps, walkers, D) in parameter units, ``log_prob`` (steps, walkers),
        ``acceptance`` (walkers,), ``point`` (dict), ``resumed_at`` (steps already in the store).
    """
    import emcee

    d = len(setup.names)
    _check_walkers(walkers, steps, d)
    moves = DEFAULT_MOVES if moves is None else moves
    if moves not in MOVES:
        raise CalibrationError(f"moves {moves!r}: use one of {', '.join(MOVES)}")
    definition = setup.definition(seed, walkers, steps)
    definition["stop_when_converged"] = bool(stop_when_converged)
    definition["moves"] = moves
    definition["coordinates"] = COORDINATES
    definition["method"] = "emcee"
    if moves == "fitted":
        definition["warmup_steps"] = [WARMUP_STEPS] * WARMUP_ROUNDS
        definition["proposal"] = (f"i-SIR, {FITTED_DRAWS} multivariate t (df {FITTED_DF:g}, "
                                  f"scale x {FITTED_SCALE:g}) draws, "
                                  f"{FITTED_INDEPENDENCE_WEIGHT:g} + Gaussian random "
                                  f"walk {1 - FITTED_INDEPENDENCE_WEIGHT:g}")
    proposal = None
    if resume:
        z = _resume_store(store, definition)
        chain = list(z["chain"])
        log_prob = list(z["log_prob"])
        accepted = z["accepted"].copy()
        coords, lp, rs = z["coords"], z["last_log_prob"], _arrays_to_state(z)
        point = {"theta": z["point_theta"], "cost": float(z["point_cost"]),
                 **json.loads(str(z["point_info"]))}
        point["unit"] = setup.to_unit(point["theta"])
        if moves == "fitted":
            proposal = (z["proposal_mean"], z["proposal_cov"])
    else:
        if point is None:
            raise CalibrationError("internal: a new posterior needs a point estimate")
        coords, lp = laplace_start(setup, point, walkers, np.random.default_rng(seed))
        rs = np.random.RandomState(seed).get_state()
        if moves == "fitted":
            coords, lp, rs, proposal = warmup(setup.log_prob_z, laplace(setup, point), coords,
                                              lp, rs, progress)
        chain, log_prob, accepted = [], [], np.zeros(walkers)
        if store is not None:
            _save_store(store, definition, np.empty((0, walkers, d)), np.empty((0, walkers)),
                        accepted, coords, lp, rs, point, proposal)
    done0 = len(chain)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, initial=done0, desc="posterior", unit="step", file=sys.stderr)
    delay = float(os.environ.get(CHECKPOINT_DELAY_ENV, "0") or 0)
    done = done0

    def converged_now() -> bool:
        if not stop_when_converged or done == 0 or done % CONVERGENCE_CHECK_STEPS:
            return False
        dg = diagnostics(expit(np.asarray(chain)), accepted / done, chain_z=np.asarray(chain))
        if bar is not None:  # what the run waits for, on the progress bar
            bar.set_postfix_str(f"max tau {np.max(dg['tau']):.0f} (needs {TAU_FACTOR} x), "
                                f"R-hat {np.max(dg['rhat']):.3f}, acceptance "
                                f"{dg['acceptance']:.2f}")
        return dg["converged"]

    started = time.perf_counter()
    while done < steps and not converged_now():
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        block = min(CHECKPOINT_STEPS, steps - done)
        sampler = emcee.EnsembleSampler(walkers, d, setup.log_prob_z, vectorize=True,
                                        moves=_moves(moves, proposal))
        state = emcee.State(coords, log_prob=lp, random_state=rs)
        state = sampler.run_mcmc(state, block, skip_initial_state_check=True, progress=False)
        chain.extend(sampler.get_chain())
        log_prob.extend(sampler.get_log_prob())
        accepted = accepted + sampler.backend.accepted
        coords, lp, rs = state.coords, state.log_prob, state.random_state
        done += block
        if store is not None:
            _save_store(store, definition, np.asarray(chain), np.asarray(log_prob), accepted,
                        coords, lp, rs, point, proposal)
        if bar is not None:
            bar.update(block)
        if delay > 0:
            time.sleep(delay)
    if bar is not None:
        bar.close()
    chain_z = np.asarray(chain).reshape(-1, walkers, d)
    chain_u = expit(chain_z)
    return {"chain": setup.to_theta(chain_u), "chain_unit": chain_u, "chain_z": chain_z,
            "log_prob": np.asarray(log_prob), "acceptance": accepted / max(1, done),
            "steps": done,
            "point": point, "resumed_at": done0}


def _moves(name: str, proposal: tuple | None = None):
    import emcee

    if name == "fitted":
        if proposal is None:
            raise CalibrationError("internal: fitted moves need a proposal (mean, covariance)")
        return fitted_moves(*proposal)
    if name == "de":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    return None  # emcee's default stretch move


def fitted_moves(mean: np.ndarray, cov: np.ndarray, df: float | None = None,
                 weight: float | None = None, draws: int | None = None,
                 scale: float | None = None) -> list:
    """emcee moves that use the posterior's shape, fitted to it and then fixed.

    With probability ``weight`` a step is an *iterated importance resampling* move (i-SIR;
    Tjelmeland 2004, Andrieu, Lee & Vihola 2018): each walker draws ``draws`` fresh points from
    the multivariate t distribution (``df`` degrees of freedom) of centre ``mean`` and scale
    matrix ``scale^2 cov``, and moves to one of those points or stays, picked with probability
    proportional to the importance weight ``p(x) / q(x)`` among the fresh draws and its current
    point. Otherwise a Gaussian random walk of covariance ``cov x 2.38^2 / D`` (Roberts, Gelman
    & Gilks 1997), the local move that keeps the chain moving where the t proposal fits badly.
    Both are one engine call per step: the i-SIR move evaluates walkers x ``draws`` runs in one
    vectorised call (the engine's cost per call barely grows up to some hundreds of runs), the
    random walk proposes all walkers at once (the ensemble moves need two calls, one per
    red-blue half). The proposal is fixed, so each move leaves the posterior invariant (i-SIR
    is reversible with respect to it; a valid MCMC); the t's heavier tails keep the importance
    weights bounded where the posterior's tails are heavier than a Gaussian's.

    Parameters
    ----------
    mean, cov : numpy.ndarray
        (D,) and (D, D) in the sampler's coordinates (positive definite).
    df, weight, draws, scale : optional
        Default :data:`FITTED_DF`, :data:`FITTED_INDEPENDENCE_WEIGHT`, :data:`FITTED_DRAWS`,
        :data:`FITTED_SCALE` (the t's scale matrix is ``scale^2 cov``).
    """
    import emcee

    df = FITTED_DF if df is None else float(df)
    weight = FITTED_INDEPENDENCE_WEIGHT if weight is None else float(weight)
    draws = FITTED_DRAWS if draws is None else int(draws)
    scale = FITTED_SCALE if scale is None else float(scale)
    mean = np.asarray(mean, float)
    cov = np.asarray(cov, float)
    d = mean.size
    chol = scale * np.linalg.cholesky(cov)
    inv = np.linalg.inv(chol)

    def log_q(x):
        y = (x - mean) @ inv.T
        return -0.5 * (df + d) * np.log1p(np.sum(y * y, axis=1) / df)

    class _ISIR(emcee.moves.Move):
        def propose(self, model, state):
            walkers = state.coords.shape[0]
            rnd = model.random
            g = rnd.standard_normal((walkers * draws, d)) @ chol.T
            w = rnd.chisquare(df, walkers * draws) / df
            y = mean + g / np.sqrt(w)[:, None]
            lp_y, _ = model.compute_log_prob_fn(y)
            lw = np.concatenate([(state.log_prob - log_q(state.coords))[:, None],
                                 (lp_y - log_q(y)).reshape(walkers, draws)], axis=1)
            top = np.max(lw, axis=1, keepdims=True)
            with np.errstate(invalid="ignore"):
                p = np.exp(np.where(np.isfinite(lw), lw - top, -np.inf))
            cum = np.cumsum(p, axis=1)
            pick = np.minimum(np.sum(cum < rnd.rand(walkers)[:, None] * cum[:, -1:], axis=1),
                              draws)
            accepted = pick > 0
            k = np.maximum(pick - 1, 0)
            rows = np.arange(walkers)
            new = emcee.State(y.reshape(walkers, draws, d)[rows, k],
                              log_prob=lp_y.reshape(walkers, draws)[rows, k])
            return self.update(state, new, accepted), accepted

    return [(_ISIR(), weight),
            (emcee.moves.GaussianMove(cov * 2.38 ** 2 / d), 1.0 - weight)]


def _fit_proposal(chain_z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a warm-up round's positions (steps x walkers pooled), kept
    positive definite."""
    x = np.asarray(chain_z, float).reshape(-1, chain_z.shape[-1])
    mean = x.mean(axis=0)
    cov = np.atleast_2d(np.cov(x, rowvar=False))
    cov = 0.5 * (cov + cov.T)
    d = mean.size
    ridge = 1e-9 * max(float(np.trace(cov)) / d, 1e-12)
    for _ in range(20):
        try:
            np.linalg.cholesky(cov + ridge * np.eye(d))
            break
        except np.linalg.LinAlgError:
            ridge *= 10.0
    return mean, cov + ridge * np.eye(d)


def warmup(log_prob, proposal: tuple, coords: np.ndarray, lp: np.ndarray, rs,
           progress: bool = False):
    """The "fitted" moves' warm-up (not kept): :data:`WARMUP_ROUNDS` rounds of
    :data:`WARMUP_STEPS` steps; the first round's proposal is ``proposal`` (the Laplace
    approximation, :func:`laplace`), each later round's the mean and covariance of the previous
    round's positions. Adaptation happens only here; the kept chain runs with the last fit,
    fixed.

    Parameters
    ----------
    log_prob : callable
        Vectorised log posterior in the sampler's coordinates (:meth:`Setup.log_prob_z`).
    proposal : (mean, cov)
    coords, lp, rs
        Walkers' positions, their log posterior, emcee's random state.

    Returns
    -------
    (coords, log_prob, random_state, (mean, cov))
    """
    import emcee

    walkers, d = coords.shape
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=WARMUP_ROUNDS * WARMUP_STEPS, desc="warm-up", unit="step",
                   file=sys.stderr)
    for _ in range(WARMUP_ROUNDS):
        sampler = emcee.EnsembleSampler(walkers, d, log_prob, vectorize=True,
                                        moves=fitted_moves(*proposal))
        state = sampler.run_mcmc(emcee.State(coords, log_prob=lp, random_state=rs),
                                 WARMUP_STEPS, skip_initial_state_check=True, progress=False)
        coords, lp, rs = state.coords, state.log_prob, state.random_state
        proposal = _fit_proposal(sampler.get_chain())
        if bar is not None:
            bar.update(WARMUP_STEPS)
            bar.set_postfix_str(f"acceptance {sampler.acceptance_fraction.mean():.2f}")
    if bar is not None:
        bar.close()
    return coords, lp, rs, proposal


def _tau(chain: np.ndarray) -> np.ndarray:
    import emcee

    steps = chain.shape[0]
    with np.errstate(all="ignore"):
        tau = np.asarray(emcee.autocorr.integrated_time(chain, c=5, tol=0, quiet=True), float)
    return np.where(np.isfinite(tau) & (tau > 0), tau, float(steps))


def split_rhat(chain: np.ndarray, groups: int = RHAT_GROUPS) -> np.ndarray:
    """Split R-hat (Gelman & Rubin; Gelman et al. BDA3 11.4) with walker groups as chains.

    The walkers are cut into ``groups`` groups and each group's chain into its first and second
    half; each piece pools its walkers' draws. Near 1 when the pieces agree (between-piece
    variance of the means small against the within-piece variance); a drift along the chain or
    a group stuck elsewhere raises it.

    Parameters
    ----------
    chain : numpy.ndarray
        (steps, walkers, D) after burn-in.

    Returns
    -------
    numpy.ndarray
        (D,); inf when there are fewer than 4 steps.
    """
    steps, walkers, d = chain.shape
    half = steps // 2
    if half < 2 or walkers < groups:
        return np.full(d, np.inf)
    pieces = []
    for idx in np.array_split(np.arange(walkers), groups):
        for part in (chain[:half, idx], chain[half:2 * half, idx]):
            pieces.append(part.reshape(-1, d))
    x = np.stack(pieces)                       # (pieces, n, D)
    n = x.shape[1]
    w = x.var(axis=1, ddof=1).mean(axis=0)
    b = n * x.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(all="ignore"):
        r = np.sqrt(((n - 1) / n * w + b / n) / w)
    return np.where(np.isfinite(r), r, np.inf)


def diagnostics(chain_unit: np.ndarray, acceptance: np.ndarray,
                chain_z: np.ndarray | None = None) -> dict:
    """Autocorrelation times, burn-in, thinning, ESS, R-hat and the convergence verdict.

    Converged when (1) the chain is at least :data:`TAU_FACTOR` integrated autocorrelation
    times long for every parameter (tau per parameter, the larger of the estimates in the
    unit cube and in the sampler's ``logit`` coordinates), (2) the tau estimates are stable:
    none changed by more than :data:`TAU_STABILITY` against the chain without its last
    :data:`CONVERGENCE_CHECK_STEPS` steps, (3) split R-hat over walker groups below
    :data:`RHAT_MAX`, and (4) the mean acceptance fraction lies in :data:`ACCEPTANCE_RANGE`.

    Parameters
    ----------
    chain_unit : numpy.ndarray
        (steps, walkers, D) in the unit cube.
    acceptance : numpy.ndarray
        Per walker.
    chain_z : numpy.ndarray, optional
        The same chain in the sampler's coordinates.

    Returns
    -------
    dict
        ``tau`` (D,), ``burn``, ``thin``, ``ess`` (D,), ``rhat`` (D,), ``acceptance`` (mean),
        ``tau_change`` (largest relative change, NaN when too short), ``converged`` (bool),
        ``reasons`` (list of str).
    """
    steps, walkers, d = chain_unit.shape
    reasons = []

    def tau_of(k: int) -> np.ndarray:
        t = _tau(chain_unit[:k])
        if chain_z is not None:
            t = np.maximum(t, _tau(chain_z[:k]))
        return t

    tau = tau_of(steps)
    tmax = float(np.max(tau))
    if steps < TAU_FACTOR * tmax:
        reasons.append(f"chain of {steps} steps is shorter than {TAU_FACTOR} autocorrelation "
                       f"times ({TAU_FACTOR} x {tmax:.0f} = {TAU_FACTOR * tmax:.0f} steps); run "
                       "more --steps")
    change = float("nan")
    earlier = steps - CONVERGENCE_CHECK_STEPS
    if earlier >= CONVERGENCE_CHECK_STEPS:
        change = float(np.max(np.abs(tau - tau_of(earlier)) / tau))
    if not change <= TAU_STABILITY:      # NaN (too short) fails too
        reasons.append(f"autocorrelation times not stable (largest change "
                       f"{change:.0%} over the last {CONVERGENCE_CHECK_STEPS} steps, at most "
                       f"{TAU_STABILITY:.0%})" if np.isfinite(change) else
                       "chain too short to check that the autocorrelation times are stable")
    burn = int(min(steps // 2, np.ceil(2 * tmax)))
    thin = max(1, int(0.5 * np.min(tau)))
    ess = (steps - burn) * walkers / tau
    rhat = split_rhat(chain_unit[burn:])
    if not np.max(rhat) < RHAT_MAX:
        reasons.append(f"split R-hat over walker groups {np.max(rhat):.3f} >= {RHAT_MAX}")
    acc = float(np.mean(acceptance))
    lo, hi = ACCEPTANCE_RANGE
    if not lo <= acc <= hi:
        reasons.append(f"mean acceptance fraction {acc:.2f} outside {lo}-{hi}")
    return {"tau": tau, "burn": burn, "thin": thin, "ess": ess, "rhat": rhat,
            "acceptance": acc, "tau_change": change, "converged": not reasons,
            "reasons": reasons}


# ----------------------------------------------------------------------------------------------
# sequential Monte Carlo with adaptive tempering (method "smc")
# ----------------------------------------------------------------------------------------------
def _rng_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _rng_from_state(text: str) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(str(text))
    return rng


def _kish_ess(logw: np.ndarray) -> float:
    """Kish's effective sample size of log weights (NaN/-inf weigh nothing)."""
    lw = np.where(np.isfinite(logw), logw, -np.inf)
    top = np.max(lw)
    if not np.isfinite(top):
        return 0.0
    w = np.exp(lw - top)
    return float(w.sum() ** 2 / np.sum(w * w))


def _tempered(ll: np.ndarray, beta: float) -> np.ndarray:
    """``beta * ll`` with failed runs (``ll = -inf``) at -inf even when beta is 0."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(ll), beta * ll, -np.inf)


def _next_beta(ll: np.ndarray, pops: np.ndarray, beta: float, fraction: float) -> float:
    """The largest next inverse temperature at which every population's incremental weights
    ``exp((b - beta) ll)`` keep a Kish ESS of at least ``fraction`` of its particles
    (bisection; 1 when that is already so at 1)."""
    def worst(b):
        return min(_kish_ess(_tempered(ll[p], b - beta)) / len(p) for p in pops)

    if worst(1.0) >= fraction:
        return 1.0
    lo, hi = beta, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if worst(mid) >= fraction:
            lo = mid
        else:
            hi = mid
    return max(lo, beta + 1e-12)


def _log_lik_inside(log_lik, log_prior, z: np.ndarray) -> np.ndarray:
    """``log_lik`` at the points of finite prior (one call; the others, outside the prior's
    support, are -inf without a run). ``log_prior`` is a callable or its values."""
    lp = log_prior(z) if callable(log_prior) else np.asarray(log_prior, float)
    out = np.full(len(z), -np.inf)
    inside = np.isfinite(lp)
    if inside.any():
        out[inside] = np.asarray(log_lik(z[inside]), float)
    return out


def log_prior_unit(u: np.ndarray) -> np.ndarray:
    """Log density of the uniform prior on the unit cube: 0 inside, -inf outside, shape (N,)."""
    u = np.atleast_2d(np.asarray(u, float))
    return np.where(np.all((u >= 0.0) & (u <= 1.0), axis=1), 0.0, -np.inf)


def _systematic(logw: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Systematic resampling: indices of the particles kept (Kitagawa 1996)."""
    n = logw.size
    w = np.exp(logw - np.max(logw))
    cum = np.cumsum(w / w.sum())
    cum[-1] = 1.0
    return np.searchsorted(cum, (rng.random() + np.arange(n)) / n)


def _fit_mixture(x: np.ndarray, k: int, iters: int = 30) -> tuple:
    """A mixture of ``k`` Gaussians fitted to a population by EM (Dempster, Laird & Rubin
    1977), deterministic: started from ``k`` equal slices along the first principal axis (a
    curved ridge is cut into pieces), each component's covariance shrunk towards the
    population's (weight D particles) so it stays positive definite.

    Returns
    -------
    (log_weights, means, cholesky factors, log determinants of the factors)
        Shapes (K,), (K, D), (K, D, D), (K,).
    """
    n, d = x.shape
    k = max(1, min(int(k), n // (2 * d)))
    mean, cov = _fit_proposal(x[None])
    _, vec = np.linalg.eigh(cov)
    order = np.argsort((x - mean) @ vec[:, -1])
    resp = np.zeros((n, k))
    for j, idx in enumerate(np.array_split(order, k)):
        resp[idx, j] = 1.0
    for it in range(iters + 1):
        nk = resp.sum(axis=0) + 1e-12
        means = (resp.T @ x) / nk[:, None]
        chols = np.empty((k, d, d))
        for j in range(k):
            y = x - means[j]
            c = (y * resp[:, j:j + 1]).T @ y
            c = (c + d * cov) / (nk[j] + d)
            chols[j] = np.linalg.cholesky(0.5 * (c + c.T))
        logw = np.log(nk / nk.sum())
        logdet = np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(axis=1)
        if it == iters:
            break
        lp = np.empty((n, k))
        for j in range(k):
            y = np.linalg.solve(chols[j], (x - means[j]).T).T
            lp[:, j] = logw[j] - logdet[j] - 0.5 * np.sum(y * y, axis=1)
        lp -= lp.max(axis=1, keepdims=True)
        resp = np.exp(lp)
        resp /= resp.sum(axis=1, keepdims=True)
    return logw, means, chols, logdet


def _mixture_log_q(x: np.ndarray, mix: tuple, df: float) -> np.ndarray:
    """Log density (up to a constant shared by all components) of the multivariate-t mixture
    with the fitted means and scale matrices (``df`` degrees of freedom)."""
    logw, means, chols, logdet = mix
    d = x.shape[1]
    lp = np.empty((len(x), len(logw)))
    for j in range(len(logw)):
        y = np.linalg.solve(chols[j], (x - means[j]).T).T
        lp[:, j] = logw[j] - logdet[j] - 0.5 * (df + d) * np.log1p(np.sum(y * y, axis=1) / df)
    top = lp.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(lp - top).sum(axis=1, keepdims=True)))[:, 0]


def _pop_chol(x: np.ndarray) -> np.ndarray:
    """Cholesky factor of a population's covariance (kept positive definite)."""
    _, cov = _fit_proposal(x[None])
    return np.linalg.cholesky(cov)


def smc_sample(log_lik, log_prior, z0: np.ndarray, rng: np.random.Generator, *,
               populations: int = None, ess_fraction: float = None,
               decorrelation: float = None, max_moves: int = None, state: dict | None = None,
               on_stage=None, max_seconds: float | None = None, progress: bool = False) -> dict:
    """Sequential Monte Carlo with adaptive tempering from the prior to the posterior.

    The particles target ``prior(z) L(z)^beta`` for an increasing sequence ``0 = beta_0 <
    beta_1 < ... = 1`` (Del Moral, Doucet & Jasra 2006; Chopin & Papaspiliopoulos 2020, ch.
    17). Each stage (1) picks the next ``beta`` so that every population's incremental
    importance weights ``L^(beta' - beta)`` keep a Kish effective sample size of
    ``ess_fraction`` of its particles (bisection; no model runs: the likelihoods are known),
    (2) resamples each population (systematic), (3) moves every particle by Metropolis-Hastings
    steps that leave the stage's target invariant: with probability ``share`` an independence
    proposal from a mixture of :data:`SMC_COMPONENTS` multivariate t fitted by EM to its
    population (:func:`_fit_mixture`; ``share`` is cut when the last stage's acceptance of it
    fell below 0.234), else a random walk with the population's covariance and a scale tuned
    to an acceptance near 0.234 (the kernels are chosen from the particles and the past, as
    adaptive SMC does; Fearnhead & Taylor 2013), until every parameter's
    correlation (across each population's particles) between the positions at the stage's start
    and now is below ``decorrelation``, or ``max_moves`` moves. Every move is ONE call of
    ``log_lik`` over all particles of all populations.

    The particles form ``populations`` independent populations (own weights, resampling,
    proposal covariance and scale; only the tempering schedule and the number of moves are
    shared, the worst population setting them), so their agreement is the convergence check
    (:func:`smc_diagnostics`).

    Parameters
    ----------
    log_lik, log_prior : callable
        Vectorised: (N, D) -> (N,); ``log_lik`` may be -inf (failed runs weigh nothing).
    z0 : numpy.ndarray
        (N, D) draws from the prior, N a multiple of ``populations``.
    rng : numpy.random.Generator
        Used for everything after ``z0``; its state is part of the saved ``state``.
    state : dict, optional
        A saved state to continue (from ``on_stage``): the same numbers as if never stopped.
    on_stage : callable, optional
        Called with the state after the start and after every stage (to save it).
    max_seconds : float, optional
        Stop after the first stage past this wall time (the state continues it).

    Returns
    -------
    dict
        The state: ``z`` (N, D), ``ll`` (N,), ``beta``, ``stage``, ``history`` (per stage:
        beta, ESS per population before resampling, moves, acceptance, correlation left),
        ``done`` (beta reached 1), ``rng`` (generator state, JSON).
    """
    populations = SMC_POPULATIONS if populations is None else int(populations)
    ess_fraction = SMC_ESS_FRACTION if ess_fraction is None else float(ess_fraction)
    decorrelation = SMC_DECORRELATION if decorrelation is None else float(decorrelation)
    max_moves = SMC_MAX_MOVES if max_moves is None else int(max_moves)
    if state is None:
        z = np.asarray(z0, float)
        n, d = z.shape
        state = {"z": z, "ll": _log_lik_inside(log_lik, log_prior, z), "beta": 0.0, "stage": 0,
                 "scale": np.full(populations, 2.38 / np.sqrt(d)), "history": [],
                 "done": False, "rng": _rng_state(rng)}
        if on_stage is not None:
            on_stage(state)
    else:
        state = dict(state)
        rng = _rng_from_state(state["rng"])
    z, ll = np.array(state["z"], float), np.array(state["ll"], float)
    n, d = z.shape
    if n % populations:
        raise CalibrationError(f"{n} particles do not split into {populations} populations")
    pops = np.arange(n).reshape(populations, -1)
    scale = np.array(state["scale"], float)
    share = SMC_INDEPENDENCE_WEIGHT
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=1000, initial=int(1000 * state["beta"]), desc="SMC beta x 1000",
                   unit="", file=sys.stderr)
    started = time.perf_counter()
    while not state["done"]:
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        beta = float(state["beta"])
        if state["history"]:
            # the independence proposal's share: SMC_INDEPENDENCE_WEIGHT while its acceptance
            # (last stage) is at least the random walk's target, less when it fits worse
            # (chosen from the past, as the scale is)
            share = SMC_INDEPENDENCE_WEIGHT * min(1.0, max(
                0.2, state["history"][-1]["independence_acceptance"] / 0.234))
        new = _next_beta(ll, pops, beta, ess_fraction)
        inc = _tempered(ll, new - beta)
        ess = [_kish_ess(inc[p]) for p in pops]
        idx = np.concatenate([p[_systematic(inc[p], rng)] for p in pops])
        z, ll = z[idx], ll[idx]
        lpri = log_prior(z)
        chol = [_pop_chol(z[p]) for p in pops]
        mixes = [_fit_mixture(z[p], SMC_COMPONENTS) for p in pops]
        start = z.copy()
        moves, accs, corr = 0, [], np.inf
        n_ind = acc_ind = 0
        while moves < max_moves:
            # per particle: an independence proposal (the t mixture fitted to its
            # population) with probability ``share``, else a random walk
            indep = rng.random(n) < share
            eps = rng.standard_normal((n, d))
            chi = rng.chisquare(SMC_DF, n) / SMC_DF
            prop = np.empty_like(z)
            log_q = np.zeros(n)
            comp = rng.random(n)
            for k, p in enumerate(pops):
                rw = z[p] + scale[k] * eps[p] @ chol[k].T
                logw, mmeans, mchols, _ = mixes[k]
                pick = np.minimum(np.searchsorted(np.cumsum(np.exp(logw)), comp[p]),
                                  len(logw) - 1)
                t = mmeans[pick] + np.einsum("nij,nj->ni", mchols[pick], eps[p]) / np.sqrt(
                    chi[p])[:, None]
                prop[p] = np.where(indep[p, None], t, rw)
                # log q(current) - log q(proposed) of the t mixture (0 for the symmetric walk)
                lq = np.zeros(len(p))
                if indep[p].any():
                    i = indep[p]
                    lq[i] = (_mixture_log_q(z[p][i], mixes[k], SMC_DF)
                             - _mixture_log_q(t[i], mixes[k], SMC_DF))
                log_q[p] = lq
            lpri_p = log_prior(prop)
            ll_p = _log_lik_inside(log_lik, lpri_p, prop)
            with np.errstate(invalid="ignore"):
                log_a = _tempered(ll_p, new) + lpri_p - _tempered(ll, new) - lpri + log_q
            ok = np.log(rng.random(n)) < np.where(np.isfinite(log_a), log_a, -np.inf)
            z[ok], ll[ok], lpri[ok] = prop[ok], ll_p[ok], lpri_p[ok]
            moves += 1
            accs.append(float(ok.mean()))
            n_ind += int(indep.sum())
            acc_ind += int(ok[indep].sum())
            # Robbins-Monro towards 0.234 (Roberts, Gelman & Gilks 1997), per population,
            # from the random walk's acceptance
            acc = np.array([ok[p][~indep[p]].mean() if (~indep[p]).any() else 0.234
                            for p in pops])
            scale = scale * np.exp(acc - 0.234)
            with np.errstate(all="ignore"):
                c = [np.abs([np.corrcoef(start[p, j], z[p, j])[0, 1] for j in range(d)])
                     for p in pops]
            c = np.nan_to_num(np.array(c), nan=0.0)
            corr = float(c.max())
            if corr < decorrelation:
                break
        ind_rate = acc_ind / max(1, n_ind)
        state = {"z": z, "ll": ll, "beta": new, "stage": int(state["stage"]) + 1,
                 "scale": scale, "done": new >= 1.0, "rng": _rng_state(rng),
                 "history": list(state["history"]) + [
                     {"beta": new, "ess": [float(e) for e in ess], "moves": moves,
                      "acceptance": float(np.mean(accs)), "correlation": corr,
                      "worst_parameter": int(np.argmax(c.max(axis=0))),
                      "independence_share": share, "independence_acceptance": ind_rate}]}
        if on_stage is not None:
            on_stage(state)
        if bar is not None:
            bar.update(int(1000 * new) - bar.n)
            bar.set_postfix_str(f"stage {state['stage']}, {moves} moves, acceptance "
                                f"{np.mean(accs):.2f}, ESS {min(ess):.0f}")
    if bar is not None:
        bar.close()
    return state


def _save_smc_store(path: Path, definition: dict, state: dict, point: dict) -> None:
    from .atomic import write_with

    arrays = {"z": np.asarray(state["z"], float), "ll": np.asarray(state["ll"], float),
              "scale": np.asarray(state["scale"], float), "beta": np.float64(state["beta"]),
              "stage": np.int64(state["stage"]), "done": np.int64(bool(state["done"])),
              "history": np.array(json.dumps(state["history"])),
              "rng": np.array(state["rng"]),
              "point_theta": np.asarray(point["theta"], float),
              "point_cost": np.float64(point["cost"]),
              "point_info": np.array(json.dumps({k: point[k] for k in ("starts", "nfev", "status")
                                                 if k in point})),
              "definition": np.array(json.dumps(definition, sort_keys=True))}

    def write(tmp: Path):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        tmp.write_bytes(buf.getvalue())

    write_with(path, write)


def _check_particles(particles: int, d: int) -> None:
    if particles < SMC_POPULATIONS * 2 * d or particles % SMC_POPULATIONS:
        raise CalibrationError(f"--particles {particles}: give a multiple of {SMC_POPULATIONS} "
                               f"of at least {SMC_POPULATIONS * 2 * d} (populations x 2 x "
                               "parameters)")


def sample_smc(setup: Setup, point: dict | None, *, particles: int, seed: int,
               store: Path | None = None, resume: bool = False, progress: bool = False,
               max_seconds: float | None = None) -> dict:
    """Run (or continue) the SMC sampler (:func:`smc_sample`) on the calibration's posterior in
    ``z = logit(u)`` and return its final particles.

    The particles start as draws from the prior (uniform on the ranges); the state is saved to
    ``store`` after the start and after every tempering stage (atomically), so ``resume``
    continues an interrupted run to the same numbers. The store's definition (model, targets,
    parameters, seed, particles and the SMC settings) must match, else the resume is refused.

    Returns
    -------
    dict
        ``state`` (see :func:`smc_sample`), ``point``, ``resumed_at`` (stages in the store).
    """
    d = len(setup.names)
    particles = int(particles)
    _check_particles(particles, d)
    definition = setup.definition(seed, 0, 0)
    for k in ("walkers", "steps", "checkpoint_steps"):
        definition.pop(k)
    definition.update({"method": "smc", "coordinates": COORDINATES, "particles": particles,
                       "populations": SMC_POPULATIONS, "ess_fraction": SMC_ESS_FRACTION,
                       "decorrelation": SMC_DECORRELATION, "max_moves": SMC_MAX_MOVES,
                       "moves": f"independence t (df {SMC_DF:g}) {SMC_INDEPENDENCE_WEIGHT:g} + "
                                f"random walk {1 - SMC_INDEPENDENCE_WEIGHT:g}"})
    state = None
    if resume:
        zs = _resume_store(store, definition)
        state = {"z": zs["z"], "ll": zs["ll"], "scale": zs["scale"], "beta": float(zs["beta"]),
                 "stage": int(zs["stage"]), "done": bool(zs["done"]),
                 "history": json.loads(str(zs["history"])), "rng": str(zs["rng"])}
        point = {"theta": zs["point_theta"], "cost": float(zs["point_cost"]),
                 **json.loads(str(zs["point_info"]))}
        point["unit"] = setup.to_unit(point["theta"])
        rng, z0 = None, None
    else:
        if point is None:
            raise CalibrationError("internal: a new posterior needs a point estimate")
        rng = np.random.default_rng(seed)
        z0 = logit(np.clip(rng.random((particles, d)), 1e-12, 1 - 1e-12))
    resumed_at = 0 if state is None else int(state["stage"])
    delay = float(os.environ.get(CHECKPOINT_DELAY_ENV, "0") or 0)

    def on_stage(st):
        if store is not None:
            _save_smc_store(store, definition, st, point)
        if delay > 0:
            time.sleep(delay)

    state = smc_sample(setup.log_lik_z, log_prior_z, z0, rng, state=state, on_stage=on_stage,
                       max_seconds=max_seconds, progress=progress)
    return {"state": state, "point": point, "resumed_at": resumed_at}


def smc_diagnostics(state: dict, to_unit=None, populations: int | None = None,
                    decorrelation: float | None = None, min_ess: float | None = None) -> dict:
    """Convergence of an SMC run (as strict in spirit as :func:`diagnostics` for chains).

    Converged when (1) the tempering reached the posterior (beta = 1), (2) R-hat across the
    independent populations (each population a "chain"; Gelman-Rubin, BDA3 11.4) is below
    :data:`RHAT_MAX` for every parameter, in the unit cube and in ``z`` (within-population
    duplicates only make it larger: conservative), (3) the Kish ESS of every population's
    importance weights at every stage is at least ``min_ess``, (4) every stage's moves
    decorrelated the particles (correlation below ``decorrelation``) before the move limit,
    (5) the last stage's mean acceptance lies in :data:`ACCEPTANCE_RANGE`.

    Returns
    -------
    dict
        The keys of :func:`diagnostics` (``tau`` NaN: no chain; ``ess`` (D,): the smallest
        population ESS x populations, the same for every parameter; ``burn`` 0, ``thin`` 1)
        plus ``stages``, ``moves`` (total), ``ess_min`` (per population), ``method``.
    """
    populations = SMC_POPULATIONS if populations is None else int(populations)
    decorrelation = SMC_DECORRELATION if decorrelation is None else float(decorrelation)
    min_ess = SMC_MIN_ESS if min_ess is None else float(min_ess)
    z = np.asarray(state["z"], float)
    n, d = z.shape
    hist = state["history"]
    reasons = []
    if not state["done"]:
        reasons.append(f"tempering stopped at beta {state['beta']:.3g} of 1 after "
                       f"{state['stage']} stages; run with --resume")
    u = expit(z) if to_unit is None else to_unit(z)
    pieces_u = u.reshape(populations, -1, d)
    pieces_z = z.reshape(populations, -1, d)
    rhat = np.maximum(_rhat_pieces(pieces_u), _rhat_pieces(pieces_z))
    if not np.max(rhat) < RHAT_MAX:
        worst = int(np.argmax(rhat))
        reasons.append(f"R-hat across the {populations} populations {rhat[worst]:.3f} >= "
                       f"{RHAT_MAX} (parameter {worst + 1}); more particles")
    ess_min = min((min(h["ess"]) for h in hist), default=0.0)
    if ess_min < min_ess:
        reasons.append(f"smallest population ESS {ess_min:.0f} < {min_ess:.0f}; more particles")
    stuck = [i + 1 for i, h in enumerate(hist) if not h["correlation"] < decorrelation]
    if stuck:
        reasons.append(f"the moves of stage(s) {', '.join(map(str, stuck[:5]))} did not "
                       f"decorrelate the particles (correlation left >= {decorrelation:g} after "
                       "the move limit)")
    acc = float(hist[-1]["acceptance"]) if hist else float("nan")
    lo, hi = ACCEPTANCE_RANGE
    if not lo <= acc <= hi:
        reasons.append(f"last stage's acceptance {acc:.2f} outside {lo}-{hi}")
    return {"tau": np.full(d, np.nan), "burn": 0, "thin": 1,
            "ess": np.full(d, ess_min * populations), "rhat": rhat, "acceptance": acc,
            "tau_change": float("nan"), "converged": not reasons, "reasons": reasons,
            "stages": int(state["stage"]), "moves": int(sum(h["moves"] for h in hist)),
            "populations": populations,
            "ess_min": ess_min, "method": "smc"}


def _rhat_pieces(x: np.ndarray) -> np.ndarray:
    """Gelman-Rubin R-hat of (pieces, n, D) draws, (D,)."""
    n = x.shape[1]
    if n < 2 or x.shape[0] < 2:
        return np.full(x.shape[2], np.inf)
    w = x.var(axis=1, ddof=1).mean(axis=0)
    b = n * x.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(all="ignore"):
        r = np.sqrt(((n - 1) / n * w + b / n) / w)
    return np.where(np.isfinite(r), r, np.inf)


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
def reweight(setup: Setup, z: np.ndarray, ll: np.ndarray, groups: int, sampled_at: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """Importance reweighting of posterior draws made at a coarse TIME STEP to the posterior of
    the model at its own step, then resampling (one engine call at the model's step).

    The draws ``z`` are equally weighted draws of ``prior(z) L_c(z)``, where ``L_c`` is the
    likelihood with the model run at ``sampled_at``; the posterior of the model as written is
    ``prior(z) L(z)`` with ``L`` at the model's own step, so each draw's importance weight is
    ``L(z) / L_c(z) = exp(ll_model - ll)`` (Robert & Casella 2004, ch. 3.3; the last,
    fidelity-changing stage of a multilevel SMC, Beskos et al. 2017). Each of the ``groups``
    populations (consecutive equal blocks of ``z``) is resampled separately (systematic), so
    they stay independent for R-hat. The Kish ESS of each population's weights says how much
    the coarse step's integration error moved the likelihood; :func:`reweight_reasons`
    requires :data:`REWEIGHT_ESS_FRACTION` of each population.

    Parameters
    ----------
    setup : Setup
        Its ``time_step`` must be the model's own (None) here.
    z : numpy.ndarray
        (N, D) draws in sampler coordinates, N a multiple of ``groups``.
    ll : numpy.ndarray
        (N,) their log likelihood at ``sampled_at``.
    groups : int
    sampled_at : float
        The TIME STEP (years) the draws were made at.
    rng : numpy.random.Generator

    Returns
    -------
    (z, ll, info)
        The resampled draws, their log likelihood at the model's step, and ``info``:
        ``sampled_at``, ``model_step`` (years), ``ess`` (per population), ``draws`` (per
        population), ``distinct`` (distinct draws kept), ``dll_sd``, ``dll_min``, ``dll_max``
        (the log likelihood's change, model step minus sampling step, over the draws).
    """
    if setup.time_step is not None:
        raise CalibrationError("internal: reweight runs the model at its own TIME STEP")
    z = np.asarray(z, float)
    n = len(z)
    if n % groups:
        raise CalibrationError(f"internal: {n} draws do not split into {groups} populations")
    ll_model = _log_lik_inside(setup.log_lik_z, log_prior_z, z)
    with np.errstate(invalid="ignore"):
        logw = np.where(np.isfinite(ll) & np.isfinite(ll_model), ll_model - ll, -np.inf)
    pops = np.arange(n).reshape(groups, -1)
    ess = [_kish_ess(logw[p]) for p in pops]
    idx = np.concatenate([p[_systematic(logw[p], rng)] if np.isfinite(logw[p]).any() else p
                          for p in pops])
    ok = np.isfinite(logw)
    dll = logw[ok]
    info = {"sampled_at": float(sampled_at), "model_step": setup.model_step,
            "ess": [float(e) for e in ess], "draws": int(pops.shape[1]),
            "distinct": int(len(np.unique(idx))), "failed": int((~ok).sum()),
            "dll_sd": float(np.std(dll)) if dll.size else float("nan"),
            "dll_min": float(np.min(dll)) if dll.size else float("nan"),
            "dll_max": float(np.max(dll)) if dll.size else float("nan")}
    return z[idx], ll_model[idx], info


def reweight_reasons(info: dict | None) -> list[str]:
    """Why a reweighting to the model's step is not to be trusted (empty: it is)."""
    if not info:
        return []
    worst = min(info["ess"]) / info["draws"]
    if worst < REWEIGHT_ESS_FRACTION:
        return [f"reweighting the draws from TIME STEP {_step_text(info['sampled_at'])} to the "
                f"model's {_step_text(info['model_step'])} kept an ESS of {worst:.0%} of a "
                f"population (< {REWEIGHT_ESS_FRACTION:.0%}); sample at a finer "
                "--sampling-step"]
    return []


@dataclass
class Result:
    """Everything :func:`calibrate` found (see :func:`write_results` for the files)."""

    setup: Setup
    point: dict
    draws: np.ndarray                 # (M, D) after burn-in and thinning
    diag: dict
    posterior: pd.DataFrame
    correlations: pd.DataFrame
    table: pd.DataFrame               # calibration table at the posterior median
    bands: Any                        # xarray.Dataset of predictive bands
    walkers: int
    steps: int
    seed: int
    seconds: float
    runs: int
    resumed_at: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def coverage(self) -> float | None:
        """Share of held-out targets inside their 90 % predictive interval (None: none)."""
        held = self.table[~self.table["fitted"]]
        return float(held["inside_90"].mean()) if len(held) else None


def _posterior_table(setup: Setup, point: dict, draws: np.ndarray, diag: dict) -> pd.DataFrame:
    q5, q50, q95 = np.percentile(draws, [5, 50, 95], axis=0)
    prior90 = 0.9 * (setup.high - setup.low)
    ratio = (q95 - q5) / prior90
    return pd.DataFrame({
        "parameter": list(setup.names), "unit": list(setup.units),
        "table_value": setup.values, "point_estimate": point["theta"], "median": q50,
        "p5": q5, "p95": q95, "prior_low": setup.low, "prior_high": setup.high,
        "width_ratio": ratio, "constrained": ratio < CONSTRAINED_RATIO,
        "tau": diag["tau"], "ess": diag["ess"], "rhat": diag["rhat"],
        "converged": [bool(diag["converged"])] * len(setup.names)}).set_index("parameter")


def _correlations(setup: Setup, draws: np.ndarray) -> pd.DataFrame:
    rows = []
    if draws.shape[1] > 1:
        with np.errstate(all="ignore"):
            c = np.corrcoef(draws, rowvar=False)
        for i in range(len(setup.names)):
            for j in range(i + 1, len(setup.names)):
                if np.isfinite(c[i, j]) and abs(c[i, j]) >= STRONG_CORRELATION:
                    rows.append({"parameter_1": setup.names[i], "parameter_2": setup.names[j],
                                 "correlation": float(c[i, j])})
    df = pd.DataFrame(rows, columns=["parameter_1", "parameter_2", "correlation"])
    return df.reindex(df["correlation"].abs().sort_values(ascending=False).index)


def _predictive_draws(draws: np.ndarray, seed: int, n: int = N_PREDICTIVE) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    idx = rng.choice(draws.shape[0], size=min(n, draws.shape[0]), replace=False)
    return draws[np.sort(idx)]


def _target_table(setup: Setup, median: np.ndarray, pred_draws: np.ndarray,
                  seed: int) -> pd.DataFrame:
    """Every target at the posterior median, with the 90 % interval of the model's statistic
    over the posterior (``model_p5``, ``model_p95``) and the posterior predictive interval of
    the data (``pred_p5``, ``pred_p95``: the statistic plus the target's measurement error,
    drawn with the seed), and whether the data fall inside the latter."""
    from .calibration import compare

    t = setup.targets
    med_vals = setup.model_values(median[None, :], t)[0]
    pv = setup.model_values(pred_draws, t)
    scale = t["sigma"].to_numpy(float) * np.abs(t["value"].to_numpy(float))
    rng = np.random.default_rng(seed + 2)
    noisy = pv + rng.standard_normal(pv.shape) * scale
    rows = []
    base = compare(targets=t, model_values=med_vals)
    with np.errstate(all="ignore"):
        mlo, mhi = np.nanpercentile(pv, [5, 95], axis=0)
        lo, hi = np.nanpercentile(noisy, [5, 95], axis=0)
    for k, tid in enumerate(t.index):
        r = base.loc[tid].to_dict()
        y = float(t.loc[tid, "value"])
        r.update({"id": tid, "fitted": tid in setup.fit_ids, "sigma": float(t.loc[tid, "sigma"]),
                  "residual": float((med_vals[k] - y) / scale[k]),
                  "model_p5": float(mlo[k]), "model_p95": float(mhi[k]),
                  "pred_p5": float(lo[k]), "pred_p95": float(hi[k]),
                  "inside_90": bool(lo[k] <= y <= hi[k])})
        rows.append(r)
    return pd.DataFrame(rows).set_index("id")


def _bands(setup: Setup, pred_draws: np.ndarray, median: np.ndarray, outputs: Sequence[str]):
    import xarray as xr

    from .sensitivity import percentile_bands

    cm = setup.cm
    names = []
    for o in list(outputs) + sorted(set(setup.targets["variable"])):
        try:
            names.append(cm.real_name(cm.py_name(o, what="output")))
        except Exception:  # noqa: BLE001 - a key output the model lacks is left out
            continue
    names = list(dict.fromkeys(names))
    params = dict(setup.fixed)
    params.update({n: pred_draws[:, j] for j, n in enumerate(setup.names)})
    t, vals = cm.run_arrays(params, n=pred_draws.shape[0], outputs=names, allow_nonfinite=True)
    setup.count_runs(pred_draws.shape[0])
    ds = xr.Dataset({cm.real_name(k): (("run", "time"), v) for k, v in vals.items()},
                    coords={"run": np.arange(pred_draws.shape[0]), "time": t})
    for k in ds.data_vars:
        var = cm.ir.variables[cm.py_name(k)]
        ds[k].attrs.update(units=var.units or "", description=var.comment or "")
    bands = percentile_bands(ds, PERCENTILES)
    p = dict(setup.fixed)
    p.update({n: float(median[j]) for j, n in enumerate(setup.names)})
    t2, med = cm.run_arrays(p, n=1, outputs=names, allow_nonfinite=True)
    setup.count_runs(1)
    for k, v in med.items():
        name = cm.real_name(k)
        bands[f"{name} (posterior median)"] = ("time", v[0])
        bands[f"{name} (posterior median)"].attrs.update(units=bands[name].attrs.get("units", ""))
    tg = setup.targets
    bands = bands.assign_coords(target=list(tg.index))
    bands["target_variable"] = ("target", tg["variable"].astype(str).to_numpy())
    bands["target_statistic"] = ("target", tg["statistic"].astype(str).to_numpy())
    bands["target_start"] = ("target", tg["start"].to_numpy(float))
    bands["target_end"] = ("target", tg["end"].to_numpy(float))
    bands["target_value"] = ("target", tg["value"].to_numpy(float))
    bands["target_sigma"] = ("target", tg["sigma"].to_numpy(float))
    bands["target_fitted"] = ("target", np.array([i in setup.fit_ids for i in tg.index], int))
    return bands


def calibrate(params: Sequence[str] | None = None, *, until: float | None = None,
              walkers: int | None = None, steps: int = 2000, seed: int = 0,
              store: Path | None = None, resume: bool = False, progress: bool = False,
              targets_file=None, parameters_file=None, model_file=None,
              fixed: Mapping[str, float] | None = None, n_predictive: int = N_PREDICTIVE,
              outputs: Sequence[str] = KEY_OUTPUTS, stop_when_converged: bool = True,
              moves: str | None = None, max_seconds: float | None = None,
              method: str | None = None, particles: int | None = None,
              sampling_step: Any = None, max_params: int | None = None) -> Result:
    """Point estimate, posterior, diagnostics, tables and predictive bands (see module doc).

    ``sampling_step`` (see :func:`resolve_sampling_step`; default :data:`SAMPLING_STEP` when the
    model's TIME STEP is finer): the point estimate's starts and the posterior run the model at
    that step; the point estimate is then polished (:func:`point_estimate`) and the draws
    reweighted (:func:`reweight`) to the model's own step.

    ``method`` "smc" (default, :data:`DEFAULT_METHOD`) samples with :func:`sample_smc`
    (``particles``, default :data:`SMC_PARTICLES`; ``walkers``, ``steps``, ``moves`` and
    ``stop_when_converged`` do not apply); "emcee" with :func:`sample_posterior`.

    Returns
    -------
    Result
    """
    from .sensitivity import check_seed

    try:
        seed = check_seed(seed, "--seed")
    except Exception as exc:  # noqa: BLE001
        raise CalibrationError(str(exc)) from None
    t0 = time.perf_counter()
    method = DEFAULT_METHOD if method is None else method
    if method not in METHODS:
        raise CalibrationError(f"--method {method!r}: use one of {', '.join(METHODS)}")
    setup = make_setup(params, targets_file=targets_file, parameters_file=parameters_file,
                       until=until, model_file=model_file, fixed=fixed, max_params=max_params)
    d = len(setup.names)
    coarse = resolve_sampling_step(sampling_step, setup.model_step)
    if method == "smc":
        if walkers is not None or moves is not None:
            raise CalibrationError("--walkers and --moves apply to --method emcee; SMC takes "
                                   "--particles")
        particles = SMC_PARTICLES if particles is None else int(particles)
        _check_particles(particles, d)
    else:
        if particles is not None:
            raise CalibrationError("--particles applies to --method smc; emcee takes --walkers")
        walkers = int(walkers) if walkers is not None else max(32, 4 * d)
        _check_walkers(walkers, steps, d)
    point = None
    if not resume:
        point = point_estimate(setup, seed=seed, sampling_step=coarse)
    info = None
    # the reweighting's resampling draws from its own stream of the seed
    rw_rng = np.random.default_rng([seed, 1])
    if method == "smc":
        with setup.stepping(coarse):
            post = sample_smc(setup, point, particles=particles, seed=seed, store=store,
                              resume=resume, progress=progress, max_seconds=max_seconds)
        st = dict(post["state"])
        if coarse is not None and st["done"]:
            st["z"], st["ll"], info = reweight(setup, st["z"], st["ll"], SMC_POPULATIONS,
                                               coarse, rw_rng)
        diag = smc_diagnostics(st)
        draws = setup.to_theta(expit(st["z"]))
        post["log_prob"] = (st["ll"] + log_prior_z(st["z"]))[None, :]
        post["steps"] = int(st["stage"])
        walkers = particles
    else:
        with setup.stepping(coarse):
            post = sample_posterior(setup, point, walkers=walkers, steps=steps, seed=seed,
                                    store=store, resume=resume, progress=progress,
                                    stop_when_converged=stop_when_converged, moves=moves,
                                    max_seconds=max_seconds)
        diag = diagnostics(post["chain_unit"], post["acceptance"], chain_z=post["chain_z"])
        diag["method"] = "emcee"
        dz = post["chain_z"][diag["burn"]::diag["thin"]].reshape(-1, d)
        if coarse is not None and len(dz):
            lp = np.asarray(post["log_prob"])[diag["burn"]::diag["thin"]].reshape(-1)
            dz, _, info = reweight(setup, dz, lp - log_prior_z(dz), 1, coarse, rw_rng)
        draws = setup.to_theta(expit(dz))
    diag["reweight"] = info
    more = reweight_reasons(info)
    if more:
        diag["reasons"] = list(diag["reasons"]) + more
        diag["converged"] = False
    point = post["point"]
    posterior = _posterior_table(setup, point, draws, diag)
    corr = _correlations(setup, draws)
    median = posterior["median"].to_numpy(float)
    pred = _predictive_draws(draws, seed, n_predictive)
    table = _target_table(setup, median, pred, seed)
    bands = _bands(setup, pred, median, outputs)
    return Result(setup, point, draws, diag, posterior, corr, table, bands, walkers,
                  post["steps"], seed,
                  time.perf_counter() - t0, setup.runs, post["resumed_at"],
                  {"log_prob": post["log_prob"], "chain": post.get("chain"),
                   "method": method, "history": post["state"]["history"] if method == "smc"
                   else [],
                   "moves": (DEFAULT_MOVES if moves is None else moves) if method == "emcee"
                   else "smc"})


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------
RESULT_FILES = ("posterior.csv", "posterior.tex", "correlations.csv", "calibration.csv",
                "calibration.tex", "predictive.nc", "posterior_draws.nc")


def _provenance(res: Result) -> dict:
    from .provenance import provenance

    d = res.diag
    rw = d.get("reweight")
    return provenance(model_hash=res.setup.cm.model_hash, seed=res.seed,
                      parameters=list(res.setup.names), walkers=str(res.walkers),
                      steps=str(res.steps), until="" if res.setup.until is None
                      else f"{res.setup.until:g}", converged=str(bool(d["converged"])).lower(),
                      convergence_notes="; ".join(d["reasons"]),
                      acceptance=f"{d['acceptance']:.3f}", burn=str(d["burn"]),
                      thin=str(d["thin"]), runs=str(res.runs),
                      method=str(res.extra.get("method", "emcee")),
                      fitted_targets=list(res.setup.fit_ids),
                      time_step=_step_text(res.setup.model_step),
                      sampling_time_step=_step_text(rw["sampled_at"]) if rw
                      else _step_text(res.setup.model_step),
                      reweight_ess="" if not rw else
                      ", ".join(f"{e:.0f}/{rw['draws']}" for e in rw["ess"]),
                      runs_by_step={_step_text(k): int(v)
                                    for k, v in sorted(res.setup.runs_by_step.items())})


def write_results(res: Result, out: Path) -> list[Path]:
    """Write the result files into ``out`` (all to temporary files first, then renamed).

    Files: ``posterior.{csv,tex}`` (one row per parameter), ``correlations.csv`` (strongly
    correlated pairs), ``calibration.{csv,tex}`` (every target at the posterior median, with its
    predictive interval), ``predictive.nc`` (bands 2024-2035 and the data points),
    ``posterior_draws.nc`` (the thinned draws, read by ``--from-posterior``). CSV files start
    with a ``#`` provenance line; netCDF files carry it as global attributes.
    """
    import xarray as xr

    from .atomic import netcdf_writer, text_writer, write_files
    from .tables import to_latex

    prov = _provenance(res)
    head = "# made by aicarousel calibrate; provenance: " + json.dumps(
        {k: prov[k] for k in ("model_hash", "git_commit", "created", "seed", "converged",
                              "until")}) + "\n"
    post = res.posterior.reset_index()
    fmt3 = lambda v: f"{v:.3g}"  # noqa: E731
    post_tex = to_latex(
        post[["parameter", "unit", "median", "p5", "p95", "prior_low", "prior_high",
              "width_ratio", "ess"]],
        formatters={c: fmt3 for c in ("median", "p5", "p95", "prior_low", "prior_high",
                                      "width_ratio")} | {"ess": lambda v: f"{v:.0f}"},
        header={"parameter": "Parameter", "unit": "Unit", "median": "Median", "p5": "5\\%",
                "p95": "95\\%", "prior_low": "Prior low", "prior_high": "Prior high",
                "width_ratio": "Width ratio", "ess": "ESS"},
        comments=[head[2:].strip()] + ([] if res.diag["converged"] else
                                       ["NOT CONVERGED: " + "; ".join(res.diag["reasons"])]))
    tab = res.table
    cal_tex = to_latex(
        tab.reset_index()[["what", "period", "data", "model", "pred_p5", "pred_p95", "unit",
                           "fitted", "inside_90"]],
        formatters={"data": fmt3, "model": fmt3, "pred_p5": fmt3, "pred_p95": fmt3,
                    "fitted": lambda v: "yes" if v else "no",
                    "inside_90": lambda v: "yes" if v else "no"},
        header={"what": "Target", "period": "Period", "data": "Data", "model": "Median run",
                "pred_p5": "5\\%", "pred_p95": "95\\%", "unit": "Unit", "fitted": "Fitted",
                "inside_90": "In 90\\%"}, comments=[head[2:].strip()])
    draws = xr.Dataset({"draws": (("draw", "parameter"), res.draws)},
                       coords={"parameter": list(res.setup.names)})
    draws["prior_low"] = ("parameter", res.setup.low)
    draws["prior_high"] = ("parameter", res.setup.high)
    draws["point_estimate"] = ("parameter", np.asarray(res.point["theta"], float))
    draws["log_prob"] = (("step", "walker"), res.extra["log_prob"])
    draws.attrs.update(prov)
    bands = res.bands.copy()
    bands.attrs.update(prov)
    bands.attrs["coverage_90"] = "" if res.coverage is None else f"{res.coverage:.3f}"
    writers = {
        "posterior.csv": text_writer(head + post.to_csv(index=False, lineterminator="\n",
                                                         float_format="%.6g")),
        "posterior.tex": text_writer(post_tex),
        "correlations.csv": text_writer(head + res.correlations.to_csv(
            index=False, lineterminator="\n", float_format="%.4f")),
        "calibration.csv": text_writer(head + tab.to_csv(lineterminator="\n",
                                                         float_format="%.6g")),
        "calibration.tex": text_writer(cal_tex),
        "predictive.nc": netcdf_writer(bands),
        "posterior_draws.nc": netcdf_writer(draws),
    }
    write_files(out, writers)
    return [out / n for n in writers]


def record_table(res: Result, path=None) -> Path:
    """Write the posterior 5 %, median and 95 % of every estimated parameter into the parameter
    table's :data:`aicarousel.params.POSTERIOR_COLUMNS` (empty for the others; an earlier
    record is replaced). Values (the baseline) are not changed.

    Returns
    -------
    pathlib.Path
        The table written (atomically).
    """
    from .params import POSTERIOR_COLUMNS, read_table, write_table

    table = read_table(path)
    for c in POSTERIOR_COLUMNS:
        table[c] = ""
    how = (f"SMC {res.walkers} particles, {res.steps} stages"
           if res.extra.get("method") == "smc" else f"{res.walkers} walkers x {res.steps} steps")
    rw = res.diag.get("reweight")
    step = (f"TIME STEP {_step_text(rw['sampled_at'])} reweighted to "
            f"{_step_text(rw['model_step'])} (ESS >= {min(rw['ess']):.0f}/{rw['draws']})" if rw
            else f"TIME STEP {_step_text(res.setup.model_step)}")
    run = (f"{_dt.date.today().isoformat()} seed {res.seed}, {len(res.setup.names)} parameters "
           f"jointly, {how}, {step}, {'converged' if res.diag['converged'] else 'NOT converged'}")
    for name, r in res.posterior.iterrows():
        table.loc[name, "posterior_p5"] = f"{r['p5']:.6g}"
        table.loc[name, "posterior_median"] = f"{r['median']:.6g}"
        table.loc[name, "posterior_p95"] = f"{r['p95']:.6g}"
        table.loc[name, "posterior_run"] = run
    return write_table(table, path)


#: Significant digits of a baseline value written by :func:`set_baseline`.
BASELINE_DIGITS = 6


def baseline_values(res: Result) -> dict[str, float]:
    """The point estimate (weighted least squares) of every estimated parameter, rounded to
    :data:`BASELINE_DIGITS` significant digits and kept inside its range: the values
    ``--set-baseline`` ships. The point estimate, not the posterior median: the medians of
    the marginals are not a joint best fit when parameters are correlated (docs/model.md).

    Raises
    ------
    CalibrationError
        The chains did not converge, the optimiser stopped before converging, or the fit used
        ``--until`` (a baseline is fitted to every target).
    """
    if res.setup.until is not None:
        raise CalibrationError("--set-baseline: the fit used --until; a baseline is fitted to "
                               "every target, drop --until")
    if not res.diag["converged"]:
        raise CalibrationError("--set-baseline: the chains did not converge ("
                               + res.diag["reasons"][0] + "); baseline not changed")
    if int(res.point.get("status", 1)) <= 0:
        raise CalibrationError("--set-baseline: the point estimate's optimiser stopped before "
                               "converging (evaluation limit); baseline not changed")
    out = {}
    for j, name in enumerate(res.setup.names):
        v = float(f"{float(res.point['theta'][j]):.{BASELINE_DIGITS}g}")
        out[name] = float(np.clip(v, res.setup.low[j], res.setup.high[j]))
    return out


def set_baseline(res: Result, table_path=None, model_file=None) -> list[Path]:
    """Ship the point estimate as the baseline: each estimated parameter's value in the model
    file's constant (:func:`aicarousel.params.set_model_values`, the model file is the source
    of truth) and in the parameter table's ``value`` column, the same number in both.

    Returns
    -------
    list of pathlib.Path
        The model file and the table (each written atomically; nothing when refused).
    """
    from .params import read_table, set_model_values, write_table

    values = baseline_values(res)
    table = read_table(table_path)
    missing = [n for n in values if n not in table.index]
    if missing:
        raise CalibrationError(f"--set-baseline: {missing[0]!r} is not in the parameter table")
    model = set_model_values(values, model_file)
    for name, v in values.items():
        table.loc[name, "value"] = v
    return [model, write_table(table, table_path)]


def posterior_intervals(names: Sequence[str], draws: np.ndarray,
                        where: str = "--from-posterior") -> dict[str, tuple[float, float]]:
    """Each parameter's posterior 5-95 % interval (the ranges a sensitivity analysis over the
    posterior samples uniformly and independently; correlations are not kept).

    Raises
    ------
    CalibrationError
        An interval of zero width (a posterior collapsed to one value).
    """
    lo, hi = np.percentile(np.asarray(draws, float), [5, 95], axis=0)
    out = {}
    for n, a, b in zip(names, lo, hi):
        if not a < b:
            raise CalibrationError(f"{where}: the posterior of {n!r} has a 5-95 % interval of "
                                   "zero width; run `aicarousel calibrate` longer")
        out[str(n)] = (float(a), float(b))
    return out


def load_posterior_draws(path: str | os.PathLike) -> tuple[tuple[str, ...], np.ndarray, str]:
    """Read ``posterior_draws.nc`` (a file or the calibrate output directory).

    Returns
    -------
    (names, draws, sha256)
        Parameter names, draws (M, D) and the file's SHA-256 (for sweep definitions).
    """
    import xarray as xr

    from .provenance import file_sha256

    p = Path(path)
    if p.is_dir():
        p = p / "posterior_draws.nc"
    if not p.is_file():
        raise CalibrationError(f"--from-posterior: {p} not found; run `aicarousel calibrate "
                               "--out DIR` first and give DIR")
    try:
        ds = xr.load_dataset(p)
        names = tuple(str(n) for n in ds["parameter"].values)
        draws = np.asarray(ds["draws"].values, float)
    except Exception as exc:  # noqa: BLE001
        raise CalibrationError(f"--from-posterior: {p} is not a posterior_draws.nc "
                               f"({type(exc).__name__})") from None
    if draws.ndim != 2 or draws.shape[0] < 1 or draws.shape[1] != len(names):
        raise CalibrationError(f"--from-posterior: {p} holds no draws")
    return names, draws, file_sha256(p)
