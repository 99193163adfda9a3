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


@pytest.fixture(scope="module")
def smc_recovery(tmp_path_factory):
    targets = _synthetic_targets(tmp_path_factory.mktemp("synthetic_smc"))
    return cal.calibrate(list(TRUE) + [NULL], until=UNTIL, method="smc", particles=800,
                         seed=11, targets_file=targets, n_predictive=100)


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


def test_smc_resume_after_kill_gives_the_same_particles(tmp_path):
    args = ["calibrate", "--params", "Planning horizon", "AI demand multiplier",
            "--method", "smc", "--particles", "400", "--seed", "5", "-q"]
    whole = _cli(args + ["--out", str(tmp_path / "whole")])
    _, err = whole.communicate(timeout=900)
    assert whole.returncode in (0, 1), err
    a = np.load(tmp_path / "whole" / cal.STORE_NAME)
    assert int(a["done"]) == 1 and int(a["stage"]) >= 2

    killed = _cli(args + ["--out", str(tmp_path / "cut")], env={cal.CHECKPOINT_DELAY_ENV: "30"})
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
    resumed = _cli(args + ["--out", str(tmp_path / "cut"), "--resume"])
    _, err = resumed.communicate(timeout=900)
    assert resumed.returncode == whole.returncode, err
    b = np.load(store)
    assert np.array_equal(a["z"], b["z"]) and np.array_equal(a["ll"], b["ll"])
    num = lambda p: "\n".join(p.read_text().splitlines()[1:])   # noqa: E731
    assert num(tmp_path / "whole" / "posterior.csv") == num(tmp_path / "cut" / "posterior.csv")
    post = pd.read_csv(tmp_path / "whole" / "posterior.csv", comment="#")
    assert set(post["parameter"]) == {"Planning horizon", "AI demand multiplier"}


def test_smc_same_seed_same_particles_and_older_stores_refused(tmp_path):
    setup = cal.make_setup(["Planning horizon", "AI demand multiplier"])
    point = cal.point_estimate(setup, n_starts=1)
    runs = [cal.sample_smc(setup, point, particles=200, seed=s, store=tmp_path / f"{i}.npz")
            for i, s in enumerate((3, 3, 4))]
    assert np.array_equal(runs[0]["state"]["z"], runs[1]["state"]["z"])
    assert not np.array_equal(runs[0]["state"]["z"], runs[2]["state"]["z"])
    # an emcee chain store (or one written before the method was recorded) is refused on a
    # resume with SMC, one line naming the keys, and left as it was
    store = tmp_path / cal.STORE_NAME
    cal.sample_posterior(setup, point, walkers=8, steps=25, seed=1, store=store,
                         stop_when_converged=False)
    before = store.read_bytes()
    with pytest.raises(cal.CalibrationError, match=r"differs in: .*method"):
        cal.sample_smc(setup, None, particles=200, seed=1, store=store, resume=True)
    assert store.read_bytes() == before
    with pytest.raises(cal.CalibrationError, match="multiple of 4"):
        cal.sample_smc(setup, point, particles=202, seed=1)
