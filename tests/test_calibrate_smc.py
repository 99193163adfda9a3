"""Sequential Monte Carlo with adaptive tempering (``aicarousel calibrate --method smc``, the
default sampler): a known correlated Gaussian is recovered, a flat likelihood keeps the uniform
prior, synthetic targets give back the parameters that made them, same seed gives the same
particles, a killed run resumed ends with the same numbers, and the diagnostics flag what
fails. Small and fast; the 20-parameter speed is measured by ``bench/bench_calibrate.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from conftest import cli_argv

from aicarousel import calibrate as cal

from test_calibrate import NULL, TRUE, UNTIL, _synthetic_targets, assert_recovers

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step


def _gaussian(d: int, seed: int):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(np.exp(rng.uniform(np.log(0.05), np.log(5.0), d))) @ q.T
    return rng.standard_normal(d), cov


def test_smc_recovers_a_correlated_gaussian_with_one_call_a_move():
    d, n, s0 = 6, 2000, 5.0
    mu, cov = _gaussian(d, 3)
    prec = np.linalg.inv(cov)
    calls = []

    def log_lik(x):
        calls.append(len(x))
        y = x - mu
        return -0.5 * np.einsum("ij,jk,ik->i", y, prec, y)

    def log_prior(x):
        return -0.5 * np.sum(x * x, axis=1) / s0 ** 2

    rng = np.random.default_rng(0)
    st = cal.smc_sample(log_lik, log_prior, s0 * rng.standard_normal((n, d)), rng)
    dg = cal.smc_diagnostics(st, to_unit=lambda z: z)
    assert st["done"] and dg["converged"], dg["reasons"]
    # one engine call of all particles at the start and per move (reweighting needs none)
    assert len(calls) == 1 + dg["moves"] and set(calls) == {n}
    # the exact posterior: the Gaussian times the N(0, s0^2) prior
    pc = np.linalg.inv(prec + np.eye(d) / s0 ** 2)
    pm = pc @ prec @ mu
    x = st["z"]
    assert np.max(np.abs(x.mean(axis=0) - pm) / np.sqrt(np.diag(pc))) < 0.1
    assert np.max(np.abs(np.cov(x, rowvar=False) - pc)) < 0.1 * np.max(np.abs(pc))


def test_smc_with_a_flat_likelihood_keeps_the_uniform_prior():
    from scipy import stats

    n, d = 2000, 3
    rng = np.random.default_rng(1)
    z0 = cal.logit(rng.random((n, d)))
    st = cal.smc_sample(lambda z: np.zeros(len(z)), cal.log_prior_z, z0, rng)
    assert st["stage"] == 1 and st["beta"] == 1.0
    u = cal.expit(st["z"])
    for j in range(d):
        assert stats.kstest(u[:, j], "uniform").pvalue > 0.01, j


def test_smc_diagnostics_flag_what_fails():
    rng = np.random.default_rng(2)
    n, d = 400, 2
    good = {"z": rng.standard_normal((n, d)), "beta": 1.0, "stage": 3, "done": True,
            "history": [{"ess": [300.0] * 4, "moves": 5, "acceptance": 0.3,
                         "correlation": 0.1}] * 3}
    assert cal.smc_diagnostics(good, to_unit=lambda z: z)["converged"]
    unfinished = dict(good, done=False, beta=0.4)
    assert "tempering stopped at beta 0.4" in cal.smc_diagnostics(unfinished)["reasons"][0]
    apart = dict(good, z=good["z"] + np.repeat(np.arange(4), n // 4)[:, None])
    assert any("R-hat" in r for r in cal.smc_diagnostics(apart)["reasons"])
    stuck = dict(good, history=good["history"][:2] + [dict(good["history"][0],
                                                          correlation=0.6)])
    assert any("stage(s) 3 did not decorrelate" in r
               for r in cal.smc_diagnostics(stuck)["reasons"])
    thin = dict(good, history=[dict(good["history"][0], ess=[300.0, 300.0, 50.0, 300.0])])
    assert any("ESS 50" in r for r in cal.smc_diagnostics(thin)["reasons"])


#: The SMC recovery run's settings: one in-process run (``smc_recovery``) serves the recovery
#: test and is the uninterrupted run that the killed and resumed CLI run of the same settings
#: must reproduce exactly (resume and same seed in one).
SMC_RECOVERY = dict(particles=800, seed=11)


@pytest.fixture(scope="module")
def smc_targets(tmp_path_factory):
    return _synthetic_targets(tmp_path_factory.mktemp("synthetic_smc"))


@pytest.fixture(scope="module")
def smc_dir(tmp_path_factory):
    """The SMC recovery run's output directory (chain store and result files)."""
    return tmp_path_factory.mktemp("smc_recovery") / "calibration"


@pytest.fixture(scope="module")
def smc_recovery(smc_targets, smc_dir):
    smc_dir.mkdir(parents=True)
    res = cal.calibrate(list(TRUE) + [NULL], until=UNTIL, method="smc", targets_file=smc_targets,
                        n_predictive=100, store=smc_dir / cal.STORE_NAME, **SMC_RECOVERY)
    cal.write_results(res, smc_dir)
    return res


def test_smc_recovers_known_parameters(smc_recovery):
    assert_recovers(smc_recovery.posterior)
    d = smc_recovery.diag
    assert d["method"] == "smc" and d["stages"] >= 2 and np.max(d["rhat"]) < cal.RHAT_MAX
    assert smc_recovery.draws.shape == (800, 4)
    assert "planted_late" not in smc_recovery.setup.fit_ids


def _cli(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen(cli_argv(*args), env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_smc_resume_after_kill_gives_the_same_particles(smc_targets, smc_recovery, smc_dir,
                                                        tmp_path):
    """The recovery run again through the CLI, killed after its first tempering stage and
    resumed: the same particles and posterior as the uninterrupted in-process run with the same
    seed (so the seed fixes the particles, the CLI passes it on, and a resume continues
    exactly), and the same exit status."""
    a = np.load(smc_dir / cal.STORE_NAME)
    assert int(a["done"]) == 1 and int(a["stage"]) >= 2
    args = ["calibrate", "--params", *TRUE, NULL, "--until", str(UNTIL), "--targets",
            str(smc_targets), "--method", "smc", "--particles", str(SMC_RECOVERY["particles"]),
            "--seed", str(SMC_RECOVERY["seed"]), "-q", "--out", str(tmp_path / "cut")]
    # the delay follows every saved stage, the start (stage 0) too: long enough for this loop
    # to see stage 1 and kill before stage 2 (else the stage check below fails), not 30 s idle
    killed = _cli(args, env={cal.CHECKPOINT_DELAY_ENV: "10"})
    store = tmp_path / "cut" / cal.STORE_NAME
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if store.is_file() and int(np.load(store)["stage"]) >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert int(np.load(store)["stage"]) == 1          # really interrupted after stage 1
    assert not (tmp_path / "cut" / "posterior.csv").exists()
    resumed = _cli(args + ["--resume"])
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == (0 if smc_recovery.diag["converged"] else 1), err
    b = np.load(store)
    assert np.array_equal(a["z"], b["z"]) and np.array_equal(a["ll"], b["ll"])
    num = lambda p: "\n".join(p.read_text().splitlines()[1:])   # noqa: E731
    assert num(smc_dir / "posterior.csv") == num(tmp_path / "cut" / "posterior.csv")
    post = pd.read_csv(smc_dir / "posterior.csv", comment="#")
    assert set(post["parameter"]) == set(TRUE) | {NULL}


def test_smc_another_seed_other_particles_and_older_stores_refused(smc_recovery, tmp_path):
    """Another seed, other particles (the same seed giving the same particles is the resume
    test's in-process run against its CLI run), on the recovery run's setup and point."""
    setup, point = smc_recovery.setup, smc_recovery.point
    other = cal.sample_smc(setup, point, seed=SMC_RECOVERY["seed"] + 1,
                           particles=SMC_RECOVERY["particles"])
    draws = setup.to_theta(cal.expit(other["state"]["z"]))   # as calibrate() makes them
    assert draws.shape == smc_recovery.draws.shape
    assert not np.array_equal(draws, smc_recovery.draws)
    # an emcee chain store (or one written before the method was recorded) is refused on a
    # resume with SMC, one line naming the keys, and left as it was (the "de" moves: an emcee
    # store without the fitted moves' warm-up)
    store = tmp_path / cal.STORE_NAME
    cal.sample_posterior(setup, point, walkers=8, steps=25, seed=1, store=store, moves="de",
                         stop_when_converged=False)
    before = store.read_bytes()
    with pytest.raises(cal.CalibrationError, match=r"differs in: .*method"):
        cal.sample_smc(setup, None, particles=200, seed=1, store=store, resume=True)
    assert store.read_bytes() == before
    with pytest.raises(cal.CalibrationError, match="multiple of 4"):
        cal.sample_smc(setup, point, particles=202, seed=1)
