"""Tests of the regression study: its helpers against exact answers and a tiny end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

from ensemblelr.cli import main
from ensemblelr.studies import regression as study


def test_mu_pairs_reproduce_the_joint_distribution():
    """mu ~ U(0, 0.5) then signal with probability mu: P(signal) = 0.25, E[mu | signal] = 1/3."""
    rng = np.random.RandomState(0)
    X_signal = np.ones((50_000, 1))
    X_background = np.zeros((60_000, 1))
    X, mu = study._mu_pairs(X_signal, X_background, 0.5, copies=2, rng=rng)
    is_signal = X[:, 0] == 1
    assert len(X) == 2 * (60_000 + 20_000)
    assert is_signal.mean() == pytest.approx(0.25, abs=1e-3)
    assert mu.min() >= 0 and mu.max() <= 0.5
    assert mu.mean() == pytest.approx(0.25, abs=3e-3)  # the marginal of mu is U(0, 0.5)
    assert mu[is_signal].mean() == pytest.approx(1 / 3, abs=3e-3)  # density 8 mu on [0, 0.5]
    # Background: density (1 - mu) / 0.375 on [0, 0.5], mean (1/8 - 1/24) / 0.375 = 2/9.
    assert mu[~is_signal].mean() == pytest.approx(2 / 9, abs=3e-3)


def test_plugin_mle_is_unbiased_with_the_exact_ratio():
    """Signal N(2, 1) in background N(0, 1): with the exact LR the plug-in MLE recovers mu."""
    rng = np.random.RandomState(1)
    mu, n_ensembles, size = 0.2, 200, 100
    is_signal = rng.random_sample((n_ensembles, size)) < mu
    x = rng.standard_normal((n_ensembles, size)) + 2.0 * is_signal
    log_lr = norm.logpdf(x, 2, 1) - norm.logpdf(x, 0, 1)
    estimate = study._plugin_mle(log_lr, 0.5)
    assert estimate.min() >= 0 and estimate.max() <= 0.5
    assert estimate.mean() == pytest.approx(mu, abs=4 * estimate.std() / np.sqrt(n_ensembles))
    # Each estimate maximizes its log likelihood: a small step either way does not improve it.
    for i in range(5):
        def log_like(m, i=i):
            return np.log1p(m * np.expm1(log_lr[i])).sum()
        for step in (-1e-4, 1e-4):
            if 0 <= estimate[i] + step <= 0.5:
                assert log_like(estimate[i]) >= log_like(estimate[i] + step) - 1e-9


def test_exact_posterior_mean_matches_numerical_integral():
    rng = np.random.RandomState(2)
    E = 0.45 + rng.standard_normal((3, 100, 1))
    grid = np.linspace(-0.5, 0.5, 20_001)
    log_post = -0.5 * 100 * (grid[None, :] - E.mean(axis=(1, 2))[:, None]) ** 2
    weights = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    numeric = (weights * grid).sum(axis=1) / weights.sum(axis=1)
    np.testing.assert_allclose(study._exact_posterior_mean(E), numeric, atol=1e-4)


def test_cli_end_to_end_tiny(tmp_path, monkeypatch, capsys):
    tiny = dict(
        param_train_ensembles=30, param_epochs=1, direct_train_ensembles=200, direct_epochs=1,
        deepsets=False, test_ensembles=20, bias_ensembles=5, lhco_copies=1, lhco_param_epochs=1,
        lhco_classifier_epochs=1, lhco_test_ensembles=4,
    )
    monkeypatch.setitem(study.SETTINGS, "quick", tiny)
    out = tmp_path / "out"
    code = main([
        "reproduce", "regression", "--quick", "--out", str(out), "--data", str(tmp_path / "missing.npz"),
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "LHCO study skipped" in printed and "Gaussian mean" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["lhco"]["skipped"].startswith("LHCO study skipped")
    methods = results["gaussian"]["methods"]
    assert {"mle", "posterior_mean", "direct_dense", "exact_mle_clipped_mean"} <= set(methods)
    assert methods["exact_mle_clipped_mean"]["rmse_over_exact_mle"] == 1.0
    assert (out / "gaussian_calibration.png").stat().st_size > 0
    assert results["command"].startswith("ensemblelr reproduce regression --quick")


def test_lhco_part_on_real_data(lhco_npz_path, tmp_path):
    settings = dict(study.SETTINGS["quick"], lhco_copies=1, lhco_param_epochs=1, lhco_classifier_epochs=1,
                    lhco_test_ensembles=5)
    result = study.lhco_study(settings, 0, tmp_path, lhco_npz_path)
    assert set(result["per_mu"]) == {f"{mu:.2f}" for mu in study.MU_VALUES}
    for entry in result["per_mu"].values():
        assert 0 <= entry["plugin_mean"] <= study.MU_TRAIN_MAX
        assert np.isfinite(entry["parametrized_rmse"])
