"""Calibration at a coarse sampling step, reweighted to the model's own TIME STEP (issue 14).

The carousel runs at TIME STEP 1/512 year; the sampler runs it at 1/64 (8 times cheaper), then
polishes the point estimate and importance-reweights the draws to 1/512
(:func:`aicarousel.calibrate.reweight`). These tests check the reweighting's arithmetic on a
posterior known in closed form, the choice and the checks of the step, and one small
calibration of the model file itself (not the ``machinery_step`` copy: the reweighting is what
is tested, so the model must run at a step finer than the sampler's).
"""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from conftest import cli_argv

from aicarousel import calibrate as cal
from aicarousel.errors import CalibrationError

#: three parameters the targets inform (a quick posterior at 400 particles)
PARAMS = ["AI demand multiplier", "Value adjustment time", "Construction time"]


# ---------------------------------------------------------------------------------------------
# the reweighting on a Gaussian posterior known in closed form
# ---------------------------------------------------------------------------------------------
class _Gaussian:
    """Stand-in for a Setup whose model-step log likelihood is a Gaussian centred on ``mu``."""

    time_step = None
    model_step = 1.0 / 512

    def __init__(self, mu: float):
        self.mu = mu

    def log_lik_z(self, z):
        return -0.5 * np.sum((np.asarray(z) - self.mu) ** 2, axis=1)


def test_reweight_moves_draws_to_the_model_step_posterior():
    # draws of N(0, 1) (the "sampling step" posterior), reweighted to N(0.3, 1): the weights
    # exp(0.3 z - 0.045) have E[w^2]/E[w]^2 = exp(0.09), so Kish ESS / N = exp(-0.09) = 0.914
    rng = np.random.default_rng(1)
    n, groups = 40_000, 4
    z = rng.standard_normal((n, 1))
    ll = -0.5 * z[:, 0] ** 2
    zr, llr, info = cal.reweight(_Gaussian(0.3), z, ll, groups, 1 / 64, rng)
    assert zr.shape == z.shape
    assert abs(zr.mean() - 0.3) < 0.03  # sd of the mean ~ 0.005 plus resampling noise
    assert abs(zr.std() - 1.0) < 0.03
    np.testing.assert_allclose(np.array(info["ess"]) / info["draws"], np.exp(-0.09), atol=0.02)
    np.testing.assert_allclose(llr, -0.5 * (zr[:, 0] - 0.3) ** 2)  # the model step's values
    # each population resampled within itself (they stay independent for R-hat)
    for k in range(groups):
        block = z[k * n // groups:(k + 1) * n // groups, 0]
        assert np.isin(zr[k * n // groups:(k + 1) * n // groups, 0], block).all()
    assert info["sampled_at"] == 1 / 64 and info["model_step"] == 1 / 512
    assert cal.reweight_reasons(info) == []


def test_reweight_with_equal_likelihoods_keeps_every_draw():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((400, 2))
    ll = _Gaussian(0.0).log_lik_z(z)
    zr, _, info = cal.reweight(_Gaussian(0.0), z, ll, 4, 1 / 64, rng)
    np.testing.assert_array_equal(zr, z)
    assert info["ess"] == pytest.approx([100.0] * 4)
    assert info["distinct"] == 400 and info["dll_sd"] == pytest.approx(0.0, abs=1e-12)


def test_reweight_flags_a_sampling_step_that_moves_the_likelihood_too_much():
    # the model step's posterior N(3, 1) is far from the draws' N(0, 1): ESS collapses
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2000, 1))
    _, _, info = cal.reweight(_Gaussian(3.0), z, -0.5 * z[:, 0] ** 2, 4, 1 / 64, rng)
    reasons = cal.reweight_reasons(info)
    assert len(reasons) == 1 and "--sampling-step" in reasons[0] and "1/64" in reasons[0]


def test_reweight_refuses_a_setup_not_at_the_model_step():
    bad = SimpleNamespace(time_step=1 / 64)
    with pytest.raises(CalibrationError, match="own TIME STEP"):
        cal.reweight(bad, np.zeros((4, 1)), np.zeros(4), 1, 1 / 64, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# choosing and checking the sampling step
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, model_step, expected", [
    (None, 1 / 512, 1 / 64),      # default: 1/64 when the model is finer
    (None, 1 / 64, None),         # ... else the model's own step (no reweighting)
    (None, 1 / 16, None),
    (None, 0.01, None),           # 1/64 is no whole multiple of 0.01: the model's own step
    (None, 1 / 128, 1 / 64),
    ("model", 1 / 512, None),
    ("1/128", 1 / 512, 1 / 128),
    ("0.015625", 1 / 512, 1 / 64),
    ("1/512", 1 / 512, None),     # the model's own step: no reweighting
    (0.25, 1 / 512, 0.25),
])
def test_resolve_sampling_step(value, model_step, expected):
    assert cal.resolve_sampling_step(value, model_step) == expected


@pytest.mark.parametrize("value, match", [
    ("fast", "give a TIME STEP in years"),
    ("1/0", "give a TIME STEP in years"),
    ("0", "above 0 and at most 0.25"),
    ("-1/64", "above 0 and at most 0.25"),
    ("1/2", "above 0 and at most 0.25"),
    ("nan", "above 0 and at most 0.25"),
    ("1/1024", "whole multiple of the model's TIME STEP"),
    ("0.01", "whole multiple of the model's TIME STEP"),
])
def test_resolve_sampling_step_refuses(value, match):
    with pytest.raises(CalibrationError, match=match) as e:
        cal.resolve_sampling_step(value, 1 / 512)
    assert "\n" not in str(e.value) and "--sampling-step" in str(e.value)


def test_cli_refuses_a_bad_sampling_step_in_one_line(tmp_path):
    out = tmp_path / "cal"
    r = subprocess.run(cli_argv("calibrate", "--params", PARAMS[0], "--sampling-step",
                                "1/1000", "--out", str(out), "--quiet"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--sampling-step 1/1000" in lines[0]
    assert not out.exists() or not any(out.iterdir())  # nothing written


# ---------------------------------------------------------------------------------------------
# one small calibration of the model file (TIME STEP 1/512), sampled at 1/64
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def coarse_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("coarse")
    res = cal.calibrate(PARAMS, particles=400, seed=0, store=out / cal.STORE_NAME,
                        n_predictive=40)
    return res, out


def test_the_model_file_is_finer_than_the_sampling_step(coarse_run):
    res, _ = coarse_run
    assert res.setup.model_step < cal.SAMPLING_STEP  # else nothing here tests the reweighting


def test_draws_are_reweighted_to_the_model_step(coarse_run):
    res, _ = coarse_run
    rw = res.diag["reweight"]
    assert rw["sampled_at"] == cal.SAMPLING_STEP and rw["model_step"] == res.setup.model_step
    assert min(rw["ess"]) >= cal.REWEIGHT_ESS_FRACTION * rw["draws"]
    # runs at both steps, the sampler's at 1/64
    by = res.setup.runs_by_step
    assert set(by) == {cal.SAMPLING_STEP, res.setup.model_step}
    assert by[cal.SAMPLING_STEP] > by[res.setup.model_step] and sum(by.values()) == res.runs
    # the stored log likelihood of every draw is the model step's (recomputed independently)
    u = res.setup.to_unit(res.draws[:8])
    ll_model = res.setup.log_lik_unit(u)
    z = cal.logit(u)
    stored = res.extra["log_prob"][0, :8] - cal.log_prior_z(z)
    np.testing.assert_allclose(stored, ll_model, rtol=1e-9, atol=1e-9)
    with res.setup.stepping(cal.SAMPLING_STEP):
        ll_coarse = res.setup.log_lik_unit(u)
    assert not np.allclose(ll_coarse, ll_model)  # the two steps do differ


def test_point_estimate_is_polished_at_the_model_step(coarse_run):
    res, _ = coarse_run
    pe = res.point
    assert 0 < pe["nfev_sampling_step"] < pe["nfev"]
    r = res.setup.residuals(pe["theta"][None, :])[0]
    assert 0.5 * np.sum(r * r) == pytest.approx(pe["cost"], rel=1e-9)  # cost at 1/512
    with res.setup.stepping(cal.SAMPLING_STEP):
        coarse = cal.point_estimate(res.setup, seed=0)
    rc = res.setup.residuals(coarse["theta"][None, :])[0]
    assert pe["cost"] <= 0.5 * np.sum(rc * rc) + 1e-9  # polishing never makes the fit worse


def test_provenance_records_both_steps(coarse_run):
    res, _ = coarse_run
    files = cal.write_results(res, coarse_run[1] / "files")
    ds = xr.open_dataset([f for f in files if f.name == "posterior_draws.nc"][0])
    try:
        assert ds.attrs["time_step"] == "1/512"
        assert ds.attrs["sampling_time_step"] == "1/64"
        assert ds.attrs["reweight_ess"].count("/100") == 4
        assert '"1/64"' in ds.attrs["runs_by_step"] and '"1/512"' in ds.attrs["runs_by_step"]
    finally:
        ds.close()


def test_resume_of_a_finished_run_gives_the_same_draws(coarse_run):
    res, out = coarse_run
    again = cal.calibrate(PARAMS, particles=400, seed=0, store=out / cal.STORE_NAME,
                          resume=True, n_predictive=40)
    np.testing.assert_array_equal(again.draws, res.draws)


def test_resume_at_another_sampling_step_is_refused(coarse_run):
    _, out = coarse_run
    with pytest.raises(CalibrationError, match="sampling_time_step"):
        cal.calibrate(PARAMS, particles=400, seed=0, store=out / cal.STORE_NAME, resume=True,
                      sampling_step="1/128")


def test_emcee_draws_are_reweighted_too():
    res = cal.calibrate(PARAMS[:1], method="emcee", walkers=8, steps=20, moves="stretch",
                        stop_when_converged=False, seed=0, n_predictive=10)
    rw = res.diag["reweight"]
    assert rw is not None and len(rw["ess"]) == 1  # one population: the thinned chain
    assert rw["draws"] == len(res.draws) and rw["sampled_at"] == cal.SAMPLING_STEP
    assert set(res.setup.runs_by_step) == {cal.SAMPLING_STEP, res.setup.model_step}


def test_max_params_keeps_the_most_informative_screened_parameters():
    every = cal.make_setup(None)
    top = cal.make_setup(None, max_params=3)
    effect = every.screen_effect
    expected = sorted(every.names, key=lambda n: -effect[n])[:3]
    assert sorted(top.names) == sorted(expected) and len(every.names) > 3
    assert min(effect[n] for n in top.names) >= max(
        effect[n] for n in every.names if n not in top.names)


@pytest.mark.parametrize("kw, match", [
    ({"params": PARAMS[:1], "max_params": 2}, "not both"),
    ({"max_params": 0}, "--max-params 0: give at least 1"),
])
def test_max_params_refuses(kw, match):
    with pytest.raises(CalibrationError, match=match):
        cal.make_setup(**kw)
