"""Calibration with uncertainty (issue 14): recovery of known parameters, reproducibility,
resume after a kill, out-of-sample mode, the targets table's sigma rule.

Fast versions (few parameters, short chains, CI has 2 cores); the speed of a full posterior is
measured by ``bench/bench_calibrate.py``, not here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cli_argv

from aicarousel import calibrate as cal
from aicarousel import paths
from aicarousel.calibration import QUALITY_SIGMA, read_targets

#: the carousel at TIME STEP 1/64 while this module runs (conftest: machinery_step)
pytestmark = pytest.mark.machinery_step

#: Parameters of the recovery test, their true values, and one that no target sees.
TRUE = {"Value adjustment time": 0.3, "AI demand multiplier": 1.3, "Construction time": 2.4}
NULL = "Provider cutoff time"
UNTIL = 2025.95


def test_targets_sigma_follows_the_quality_rule():
    t = read_targets()
    assert set(t["quality"]) <= set(QUALITY_SIGMA)
    expected = t["quality"].map(QUALITY_SIGMA)
    bad = t.index[~np.isclose(t["sigma"], expected)].tolist()
    assert bad == [], f"sigma differs from QUALITY_SIGMA[quality] for {bad}"
    assert (t["sigma"] > 0).all()
    # the 2026 data are in (DATA_2026.md, published up to 31 March 2026) and nothing later
    assert t["end"].max() <= 2026.5
    assert {"Lab Market Value", "Cloud Market Value", "Chips Market Value",
            "Credit spread"} <= set(t["variable"])


def _synthetic_targets(tmp_path: Path, noise_seed: int = 7) -> Path:
    """The real targets' definitions with data made by the model at TRUE, plus measurement
    noise, and a planted target after UNTIL that contradicts TRUE.

    The likelihood's sigma is 0.1; the noise drawn is 0.05 (half of it), so the 90 % intervals
    over-cover and the check does not fail one seed in ten by chance (with noise at the full
    sigma a true value falls outside its 90 % interval in 10 % of the cases, as it should)."""
    real = read_targets()
    rows = real.copy()
    rows["sigma"] = 0.1
    rows["quality"] = "filing"
    setup = cal.make_setup(list(TRUE) + [NULL], until=None)
    theta = np.array([TRUE.get(n, np.nan) for n in setup.names])
    theta[setup.names.index(NULL)] = setup.values[setup.names.index(NULL)]
    m = setup.model_values(theta[None, :], rows)[0]
    rng = np.random.default_rng(noise_seed)
    rows["value"] = m * (1 + 0.05 * rng.standard_normal(m.size))
    planted = rows.loc[["openai_run_rate_feb_2026"]].copy()
    planted.index = ["planted_late"]
    planted["value"] = planted["value"] * 3.0   # far off: fitting it would move the estimate
    planted["sigma"] = 0.02
    rows = pd.concat([rows[rows["end"] <= UNTIL], planted])
    f = tmp_path / "targets.csv"
    rows.reset_index(names="id").to_csv(f, index=False)
    return f


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return _synthetic_targets(tmp_path_factory.mktemp("synthetic"))


#: The recovery run's settings: one in-process run (``recovery``) serves the recovery, file,
#: table and --from-posterior tests, and is the uninterrupted run that the killed and resumed
#: CLI run of the same settings must reproduce exactly (resume and same seed in one).
RECOVERY = dict(walkers=16, steps=120, seed=11)


@pytest.fixture(scope="module")
def recovery_dir(tmp_path_factory):
    """``results/calibration`` of the recovery run (its chain store and result files)."""
    return tmp_path_factory.mktemp("recovery") / "results" / "calibration"


@pytest.fixture(scope="module")
def recovery(synthetic, recovery_dir):
    recovery_dir.mkdir(parents=True)
    return cal.calibrate(list(TRUE) + [NULL], until=UNTIL, targets_file=synthetic,
                         stop_when_converged=False, n_predictive=200, method="emcee",
                         store=recovery_dir / cal.STORE_NAME, **RECOVERY)


@pytest.fixture(scope="module")
def recovery_files(recovery, recovery_dir):
    """The files :func:`write_results` wrote for the recovery run (into ``recovery_dir``)."""
    return cal.write_results(recovery, recovery_dir)


def assert_recovers(post) -> None:
    """The true values lie inside the constrained parameters' 90% intervals, and a parameter
    no target sees keeps its prior (90% width close to the prior's); shared by the samplers."""
    for name, value in TRUE.items():
        r = post.loc[name]
        assert r["constrained"], f"{name}: width ratio {r['width_ratio']:.2f}"
        assert r["p5"] <= value <= r["p95"], (
            f"{name}: true {value} outside the 90% interval [{r['p5']:.3g}, {r['p95']:.3g}]")
    assert 0.8 <= post.loc[NULL, "width_ratio"] <= 1.1, post.loc[NULL, "width_ratio"]


def test_recovers_known_parameters(recovery):
    assert_recovers(recovery.posterior)


def test_until_never_uses_a_later_target(synthetic, recovery):
    assert "planted_late" not in recovery.setup.fit_ids
    row = recovery.table.loc["planted_late"]
    assert not row["fitted"] and not row["inside_90"]
    assert recovery.coverage == 0.0
    # the likelihood with --until is the same function as without the planted row ...
    with_plant = cal.make_setup(list(TRUE), targets_file=synthetic, until=UNTIL)
    u = np.random.default_rng(0).random((5, len(TRUE)))
    t = read_targets(synthetic)
    without = t.drop(index="planted_late")
    f = synthetic.parent / "without.csv"
    without.reset_index(names="id").to_csv(f, index=False)
    no_plant = cal.make_setup(list(TRUE), targets_file=f)
    assert np.array_equal(with_plant.log_prob_unit(u), no_plant.log_prob_unit(u))
    # ... and the planted row would move the fit if it were used
    all_rows = cal.make_setup(list(TRUE), targets_file=synthetic)
    a = cal.point_estimate(all_rows, n_starts=1)["theta"]
    b = cal.point_estimate(with_plant, n_starts=1)["theta"]
    assert np.max(np.abs(a - b) / (all_rows.high - all_rows.low)) > 0.05


def test_until_before_every_target_is_refused():
    with pytest.raises(cal.CalibrationError, match="before every target"):
        cal.make_setup(["Planning horizon"], until=2024.5)


def test_parse_until():
    assert cal.parse_until("2026") == 2026.0
    assert cal.parse_until("2026-01-01") == 2026.0
    assert abs(cal.parse_until("2025-07-02") - 2025.5) < 0.003
    with pytest.raises(cal.CalibrationError, match="YYYY-MM-DD"):
        cal.parse_until("next year")


def test_default_selection_keeps_informative_parameters_only():
    s = cal.make_setup(None)
    eff = s.screen_effect
    assert set(s.names) == {n for n, e in eff.items() if e >= cal.SCREEN_THRESHOLD}
    assert NULL not in s.names and "AI demand multiplier" in s.names


def _cli(args, env=None):
    return subprocess.Popen(cli_argv(*args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _numbers(csv: Path) -> str:
    return "\n".join(csv.read_text().splitlines()[1:])   # without the provenance line


def test_resume_after_kill_gives_the_same_chains_and_flags_non_convergence(
        synthetic, recovery, recovery_dir, recovery_files, tmp_path):
    """The recovery run again through the CLI, killed after its first saved block and resumed:
    the same chains and posterior as the uninterrupted in-process run with the same seed (so
    the seed fixes the chains, the CLI passes it on, and a resume continues exactly); 120 steps
    are far from converged: exit 1, a warning line, the flag in the table."""
    assert not recovery.diag["converged"]
    post = pd.read_csv(recovery_dir / "posterior.csv", comment="#")
    assert not post["converged"].any()

    args = ["calibrate", "--params", *TRUE, NULL, "--until", str(UNTIL), "--targets",
            str(synthetic), "--method", "emcee", "--walkers", str(RECOVERY["walkers"]),
            "--steps", str(RECOVERY["steps"]), "--fixed-steps", "--seed", str(RECOVERY["seed"]),
            "-q", "--out", str(tmp_path / "cut")]
    killed = _cli(args, env={cal.CHECKPOINT_DELAY_ENV: "30"})
    store = tmp_path / "cut" / cal.STORE_NAME
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if store.is_file() and np.load(store)["chain"].shape[0] >= cal.CHECKPOINT_STEPS:
            break
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert np.load(store)["chain"].shape[0] == cal.CHECKPOINT_STEPS   # really interrupted
    assert not (tmp_path / "cut" / "posterior.csv").exists()
    resumed = _cli(args + ["--resume"])
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 1, err
    assert "WARNING: the chains did not converge" in err
    a, b = np.load(recovery_dir / cal.STORE_NAME), np.load(store)
    assert a["chain"].shape[0] == RECOVERY["steps"]
    assert np.array_equal(a["chain"], b["chain"]) and np.array_equal(a["log_prob"], b["log_prob"])
    assert _numbers(recovery_dir / "posterior.csv") == _numbers(
        tmp_path / "cut" / "posterior.csv")


def test_result_files_and_figures(recovery, recovery_dir, recovery_files, tmp_path,
                                  load_script):
    """write_results writes every file with provenance; both figure scripts draw from them."""
    import xarray as xr

    from aicarousel import plotting

    assert sorted(f.name for f in recovery_files) == sorted(cal.RESULT_FILES)
    assert all(f.parent == recovery_dir and f.is_file() for f in recovery_files)
    post = pd.read_csv(recovery_dir / "posterior.csv", comment="#")
    assert {"median", "p5", "p95", "prior_low", "prior_high", "width_ratio",
            "converged"} <= set(post.columns)
    assert (recovery_dir / "posterior.csv").read_text().startswith(
        "# made by aicarousel calibrate; provenance: ")
    bands = xr.load_dataset(recovery_dir / "predictive.nc")
    assert bands.attrs["model_hash"] == recovery.setup.cm.model_hash
    assert float(bands["time"].min()) == 2024.0 and float(bands["time"].max()) == 2035.0
    assert bands.attrs["coverage_90"] == "0.000"
    for script, stem in (("fig_calibration_corner", "calibration_corner"),
                         ("fig_calibration_fan", "calibration_fan")):
        mod = load_script(paths.FIGURES_DIR / f"{script}.py")
        assert mod.main(["--results", str(recovery_dir.parent), "--out",
                         str(tmp_path / "out")]) == 0
        meta = plotting.read_metadata(tmp_path / "out" / f"{stem}.png")
        assert meta["model_hash"] == recovery.setup.cm.model_hash


def test_record_table_and_montecarlo_from_posterior(recovery, recovery_dir, recovery_files,
                                                    tmp_path):
    """The posterior goes into the parameter table's posterior_* columns (values unchanged),
    and ``montecarlo --from-posterior`` draws the estimated parameters from the draws."""
    import shutil

    import zarr

    from aicarousel.cli import main
    from aicarousel.params import POSTERIOR_COLUMNS, read_table

    table = tmp_path / "parameters.csv"
    shutil.copy(paths.PARAMETERS_CSV, table)
    before = read_table(table)
    cal.record_table(recovery, table)
    after = read_table(table)
    assert list(after.columns[-len(POSTERIOR_COLUMNS):]) == POSTERIOR_COLUMNS
    assert after["value"].equals(before["value"])
    for name in TRUE:
        assert float(after.loc[name, "posterior_median"]) == pytest.approx(
            recovery.posterior.loc[name, "median"], rel=1e-5)
    assert after.loc["Lab fixed costs", "posterior_median"] == ""

    status = main(["montecarlo", "--n", "16", "--from-posterior", str(recovery_dir), "--param",
                   "Lab fixed costs", "--output", "Lab Cash", "--out", str(tmp_path / "mc"),
                   "-q"])
    assert status == 0
    g = zarr.open_group(str(tmp_path / "mc" / "sweep.zarr"), mode="r")
    names = list(g["X"].attrs["params"])
    X = g["X"][:]
    draws = recovery.draws
    for j, name in enumerate(recovery.setup.names):
        col = X[:, names.index(name)]
        assert np.isin(col, draws[:, j]).all(), name   # every value is a posterior draw
    lo, hi = recovery.setup.low, recovery.setup.high
    assert X[:, names.index("Lab fixed costs")].std() > 0   # the others keep their ranges


def test_logit_coordinates_keep_the_uniform_prior():
    """The sampler works in z = logit(u); log_prior_z (the Jacobian du/dz) makes the prior of
    u uniform again. Checked three ways: the density is u (1 - u), it integrates to 1, and an
    ensemble run on the prior alone gives uniform u (a missing or wrong Jacobian fails all)."""
    import emcee
    from scipy import stats

    z = np.linspace(-30, 30, 200_001)
    dens = np.exp(cal.log_prior_z(z[:, None]))
    u = cal.expit(z)
    assert np.allclose(dens, u * cal.expit(-z), rtol=1e-12, atol=1e-300)   # u (1 - u)
    assert np.trapezoid(dens, z) == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(cal.logit(cal.expit(np.array([-5.0, 0.3, 7.0]))), [-5.0, 0.3, 7.0])
    # two independent parameters: the u-draws of a prior-only run are uniform (KS test)
    walkers, d = 32, 2
    rng = np.random.default_rng(3)
    sampler = emcee.EnsembleSampler(walkers, d, cal.log_prior_z, vectorize=True,
                                    moves=cal._moves("de"))
    sampler._random = np.random.RandomState(3)
    sampler.run_mcmc(rng.standard_normal((walkers, d)), 3000, progress=False)
    draws = cal.expit(sampler.get_chain(discard=500, thin=20, flat=True))
    for j in range(d):
        assert stats.kstest(draws[:, j], "uniform").pvalue > 0.01
    # without the Jacobian (flat in z) the same check fails: the walkers drift to the ends
    flat = emcee.EnsembleSampler(walkers, d, lambda x: np.where(np.all(np.abs(x) < 30, 1), 0.0,
                                                                 -np.inf), vectorize=True,
                                 moves=cal._moves("de"))
    flat._random = np.random.RandomState(3)
    flat.run_mcmc(rng.standard_normal((walkers, d)), 3000, progress=False)
    bad = cal.expit(flat.get_chain(discard=500, thin=20, flat=True))
    assert stats.kstest(bad[:, 0], "uniform").pvalue < 1e-6


def test_split_rhat_sees_a_stuck_group():
    rng = np.random.default_rng(0)
    good = rng.standard_normal((400, 16, 2))
    assert np.all(cal.split_rhat(good) < 1.02)
    stuck = good.copy()
    stuck[:, :4, 0] += 3.0          # one walker group elsewhere
    r = cal.split_rhat(stuck)
    assert r[0] > 1.2 and r[1] < 1.02


def test_diagnostics_need_stable_tau_and_length():
    """Converged needs 50 tau and stable tau estimates (on an AR(1) chain with known tau)."""
    rng = np.random.default_rng(1)
    phi = 0.8                        # integrated autocorrelation time (1 + phi) / (1 - phi) = 9
    steps, walkers = 3000, 16
    x = np.zeros((steps, walkers, 1))
    e = rng.standard_normal((steps, walkers, 1))
    for t in range(1, steps):
        x[t] = phi * x[t - 1] + np.sqrt(1 - phi ** 2) * e[t]
    u = cal.expit(x)
    d = cal.diagnostics(u, np.full(walkers, 0.3), chain_z=x)
    assert d["tau"][0] == pytest.approx(9.0, rel=0.25)
    assert d["converged"], d["reasons"]
    short = cal.diagnostics(u[:300], np.full(walkers, 0.3), chain_z=x[:300])
    assert not short["converged"]
    assert any("shorter than 50" in r for r in short["reasons"])


def test_set_baseline_writes_the_point_estimate_into_model_and_table(recovery, tmp_path):
    """--set-baseline: refused unless converged and fitted to every target; then the point
    estimate (not the posterior median) is the constant in the model file and the table's
    value, the same number in both (checked through PySD's parse of the written model)."""
    import dataclasses
    import shutil

    from aicarousel.params import check_table, model_constants, read_table

    model = tmp_path / "model.mdl"
    table = tmp_path / "parameters.csv"
    shutil.copy(paths.MODEL_FILE, model)
    shutil.copy(paths.PARAMETERS_CSV, table)
    before = model.read_bytes()
    with pytest.raises(cal.CalibrationError, match="--until"):
        cal.set_baseline(recovery, table, model)
    full = dataclasses.replace(recovery, setup=dataclasses.replace(recovery.setup, until=None))
    with pytest.raises(cal.CalibrationError, match="did not converge"):
        cal.set_baseline(full, table, model)
    assert model.read_bytes() == before
    ok = dataclasses.replace(full, diag={**full.diag, "converged": True, "reasons": []})
    values = cal.baseline_values(ok)
    for j, name in enumerate(ok.setup.names):
        assert values[name] == pytest.approx(ok.point["theta"][j], rel=1e-5)
        assert values[name] != pytest.approx(ok.posterior.loc[name, "median"], rel=1e-9)
    cal.set_baseline(ok, table, model)
    consts, tab = model_constants(model), read_table(table)
    for name, v in values.items():
        assert consts.loc[name, "value"] == v and tab.loc[name, "value"] == v
    assert not [p for p in check_table(table, model) if "value" in p]
    # only the estimated constants' numbers changed in the model file
    changed = [(a, b) for a, b in zip(before.decode().splitlines(),
                                      model.read_text().splitlines()) if a != b]
    assert len(changed) == len(values)


def test_sensitivity_and_experiment_from_posterior(recovery, recovery_dir, recovery_files,
                                                   tmp_path):
    """sensitivity --from-posterior samples the estimated parameters inside their posterior
    5-95 % intervals (and says so); experiment --from-posterior gives each scenario's outcomes
    as bands over posterior draws."""
    import xarray as xr
    import zarr

    from aicarousel.cli import main

    post = recovery_dir
    assert main(["sensitivity", "--method", "morris", "--n", "4", "--from-posterior", str(post),
                 "--param", "Lab fixed costs", "--output", "peak(Cloud Debt)", "--out",
                 str(tmp_path / "sens"), "-q"]) == 0
    g = zarr.open_group(str(tmp_path / "sens" / "sweep.zarr"), mode="r")
    names, X = list(g["X"].attrs["params"]), g["X"][:]
    iv = cal.posterior_intervals(recovery.setup.names, recovery.draws)
    for name, (lo, hi) in iv.items():
        col = X[:, names.index(name)]
        assert col.min() >= lo - 1e-12 and col.max() <= hi + 1e-12, name
        assert hi - lo < 0.75 * (recovery.setup.high - recovery.setup.low)[
            recovery.setup.names.index(name)] or name == NULL
    ind = xr.load_dataset(tmp_path / "sens" / "indices.nc")
    assert "posterior 5-95% intervals" in ind.attrs["ranges"]

    assert main(["experiment", "baseline", "funding_stop", "--from-posterior", str(post),
                 "--draws", "12", "--output", str(tmp_path / "exp.nc"), "--table",
                 str(tmp_path / "exp"), "-q"]) == 0
    t = pd.read_csv(tmp_path / "exp.csv", comment="#").set_index(["scenario", "outcome"])
    assert set(t.index.get_level_values(0)) == {"baseline", "funding_stop"}
    ok = t.dropna()
    assert (ok["p5"] <= ok["median"]).all() and (ok["median"] <= ok["p95"]).all()
    peak = t.loc[("baseline", "Peak Cloud debt ($B)")]
    assert peak["p95"] > peak["p5"]          # the draws differ, so the band has a width
    bands = xr.load_dataset(tmp_path / "exp.nc")
    assert list(bands["percentile"].values) == [5.0, 50.0, 95.0]
    assert bands.attrs["draws"] == "12" and "posterior_draws.nc#" in bands.attrs["posterior"]


def _run_moves(moves, log_prob, start, steps, seed):
    import emcee

    s = emcee.EnsembleSampler(start.shape[0], start.shape[1], log_prob, vectorize=True,
                              moves=moves)
    s._random = np.random.RandomState(seed)
    s.run_mcmc(start, steps, progress=False)
    return s


def test_fitted_moves_keep_the_posterior_with_a_wrong_proposal():
    """The fitted moves (importance resampling from a t proposal + random walk) sample the
    target even when their proposal is off (centre and scale wrong): the importance weights
    p/q correct for it. Target: the uniform prior in z = logit(u) (logistic tails, heavier than
    the proposal's Gaussian core), so the u-draws must be uniform (KS test). Without the 1/q
    factor the draws would follow the product p q instead and fail the same check."""
    from scipy import stats

    walkers, d = 32, 2
    start = np.random.default_rng(4).standard_normal((walkers, d))
    mean, cov = np.array([0.7, -0.3]), np.diag([1.5, 5.0])
    s = _run_moves(cal.fitted_moves(mean, cov), cal.log_prior_z, start, 1500, 4)
    draws = cal.expit(s.get_chain(discard=100, thin=5, flat=True))
    for j in range(d):
        assert stats.kstest(draws[:, j], "uniform").pvalue > 0.01, j
    assert 0.1 < s.acceptance_fraction.mean() < 0.95
    # the same moves on the product p q (what a sampler that forgot the weights would target)
    # give u-draws that are not uniform: the check above can fail
    chol_inv = np.linalg.inv(np.linalg.cholesky(cov))

    def p_times_q(z):
        y = (z - mean) @ chol_inv.T
        return cal.log_prior_z(z) - 0.5 * (cal.FITTED_DF + d) * np.log1p(
            np.sum(y * y, axis=1) / cal.FITTED_DF)

    bad = _run_moves(cal.fitted_moves(mean, cov), p_times_q, start, 1500, 4)
    u = cal.expit(bad.get_chain(discard=100, thin=5, flat=True))
    assert stats.kstest(u[:, 0], "uniform").pvalue < 1e-6


def test_fitted_moves_are_one_engine_call_a_step_and_mix_fast():
    """One call of the log posterior per step (walkers x FITTED_DRAWS runs, or walkers for the
    random walk), against two for the DE move; on a correlated 6-d Gaussian known only
    roughly, the warm-up's fit gives an integrated autocorrelation time several times shorter
    than DE's."""
    import emcee

    rng = np.random.default_rng(2)
    d, walkers = 6, 24
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cov = q @ np.diag(np.linspace(0.1, 4.0, d)) @ q.T
    prec = np.linalg.inv(cov)
    calls = []

    def log_prob(x):
        calls.append(len(x))
        return -0.5 * np.einsum("ij,jk,ik->i", x, prec, x)

    start = 0.5 + rng.standard_normal((walkers, d))
    rs = np.random.RandomState(2).get_state()
    coords, lp, rs, prop = cal.warmup(log_prob, (np.full(d, 0.5), 2.0 * np.eye(d)), start,
                                      log_prob(start), rs)
    calls.clear()
    steps = 1500
    s = emcee.EnsembleSampler(walkers, d, log_prob, vectorize=True,
                              moves=cal._moves("fitted", prop))
    s.run_mcmc(emcee.State(coords, log_prob=lp, random_state=rs), steps, progress=False)
    assert len(calls) == steps
    assert set(calls) <= {walkers, walkers * cal.FITTED_DRAWS}
    tau_fit = emcee.autocorr.integrated_time(s.get_chain(), c=5, tol=0).max()
    calls.clear()
    de = _run_moves(cal._moves("de"), log_prob, start, steps, 2)
    assert len(calls) >= 2 * steps   # two halves (the snooker move: four quarters)
    tau_de = emcee.autocorr.integrated_time(de.get_chain(discard=200), c=5, tol=0).max()
    assert tau_fit < tau_de / 3, (tau_fit, tau_de)
    # and the draws have the target's covariance
    x = s.get_chain(flat=True)
    assert np.allclose(np.cov(x, rowvar=False), cov, atol=0.15 * np.abs(cov).max())


def test_another_seed_gives_other_chains_and_a_store_with_other_moves_is_refused(recovery,
                                                                                tmp_path):
    """Another seed, other chains (the same seed giving the same chains is the resume test's
    in-process run against its CLI run). A chain store made by other moves (e.g. before the
    default became "fitted") is refused on --resume, naming the key, and left as it was.
    Both on the recovery run's setup and point estimate, with the cheap "de" moves."""
    setup, point = recovery.setup, recovery.point
    store = tmp_path / cal.STORE_NAME
    runs = [cal.sample_posterior(setup, point, walkers=8, steps=25, seed=s, moves="de",
                                 store=store if s == 1 else None, stop_when_converged=False)
            for s in (1, 2)]
    assert runs[0]["chain"].shape == runs[1]["chain"].shape == (25, 8, len(setup.names))
    assert not np.array_equal(runs[0]["chain"], runs[1]["chain"])
    before = store.read_bytes()
    with pytest.raises(cal.CalibrationError, match=r"differs in: .*moves"):
        cal.sample_posterior(setup, None, walkers=8, steps=25, seed=1, store=store,
                             resume=True, stop_when_converged=False)
    assert store.read_bytes() == before
