"""Beyond the paper: the non-IID and gradient-dilution studies, and the MLC loss."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from ensemblelr import PerInstanceClassifier
from ensemblelr.cli import main
from ensemblelr.datasets import make_gaussian_events
from ensemblelr.studies import dilution, noniid


# ------------------------------------------------------------------ MLC loss
def test_mlc_and_bce_both_learn_the_gaussian_log_ratio():
    X, y = make_gaussian_events(40_000, random_state=3)
    grid = np.linspace(-1.5, 1.5, 7)[:, None]
    learned = {}
    for loss in ("bce", "mlc"):
        model = PerInstanceClassifier(hidden_layer_sizes=(16, 16), max_epochs=6, early_stopping=False,
                                      random_state=0, loss=loss).fit(X, y)
        learned[loss] = model.decision_function(grid)
        # Slope and intercept of a logistic fit on 8e4 events have sd ~ 0.007 each, so
        # the exact 0.2 x is within ~0.02 on |x| <= 1.5; 0.04 leaves room for the network.
        np.testing.assert_allclose(learned[loss], 0.2 * grid[:, 0], atol=0.04)
    np.testing.assert_allclose(learned["mlc"], learned["bce"], atol=0.04)


# ------------------------------------------------------------------ noniid
def _brute_force_log_ratio(ensemble: np.ndarray, shift_sd: float) -> float:
    """log of int prod_i N(x_i; mu + d, 1) N(d; 0, s^2) dd, signal over background."""

    def log_marginal(mu: float) -> float:
        def integrand(d):
            log_events = stats.norm.logpdf(ensemble, mu + d, 1).sum()
            # +20 keeps the integrand of order one; it cancels in the ratio.
            return np.exp(log_events + stats.norm.logpdf(d, 0, shift_sd) + 20)

        return np.log(integrate.quad(integrand, -3, 3, epsabs=0, epsrel=1e-12, limit=200)[0])

    return log_marginal(noniid.MU_SIGNAL) - log_marginal(noniid.MU_BACKGROUND)


@pytest.mark.parametrize("shift_sd", [0.1, 0.3])
def test_exact_noniid_log_ratio_matches_numerical_marginalization(shift_sd):
    rng = np.random.default_rng(0)
    E, _ = noniid.gaussian_ensembles(3, 7, shift_sd, rng)
    exact = noniid.exact_gaussian_log_ratio(E, shift_sd)
    brute = [_brute_force_log_ratio(E[i, :, 0], shift_sd) for i in range(len(E))]
    np.testing.assert_allclose(exact, brute, rtol=1e-7, atol=1e-9)


def test_exact_noniid_log_ratio_reduces_to_iid_sum():
    E = np.random.default_rng(1).normal(size=(5, 4, 1))
    np.testing.assert_allclose(noniid.exact_gaussian_log_ratio(E, 0.0), 0.2 * E[:, :, 0].sum(axis=1))
    np.testing.assert_allclose(noniid.exact_gaussian_product(E, 0.0), 0.2 * E[:, :, 0].sum(axis=1))


def test_shifted_ensembles_share_one_shift_on_chosen_columns():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 3))
    y = np.arange(300) % 2
    E, y_ens = noniid.shifted_ensembles(X, y, 5, 0.3, (0, 1), np.random.default_rng(3))
    assert E.shape == (60, 5, 3) and set(y_ens) == {0, 1}
    # Undo the shift: every event must be one of the input events, and column 2 untouched.
    originals = {tuple(np.round(row[2:], 12)) for row in X}
    assert all(tuple(np.round(event[2:], 12)) in originals for event in E.reshape(-1, 3))
    # Within an ensemble, columns 0 and 1 moved by the same amount.
    lookup = {round(row[2], 12): row for row in X}
    moved = np.array([[event[:2] - lookup[round(event[2], 12)][:2] for event in ens] for ens in E])
    np.testing.assert_allclose(moved, moved[:, :1].repeat(5, axis=1), atol=1e-12)
    np.testing.assert_allclose(moved[..., 0], moved[..., 1], atol=1e-12)
    assert 0.15 < moved[:, 0, 0].std() < 0.45


def test_noniid_quick_run_without_data(tmp_path, capsys):
    out = tmp_path / "noniid"
    assert main(["reproduce", "noniid", "--quick", "--out", str(out), "--threads", "1", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed
    results = json.loads((out / "results.json").read_text())
    assert (out / "noniid.png").stat().st_size > 0
    models = {row["model"] for row in results["rows"]}
    assert models == {"exact", "exact_product", "per_instance", "logratio_sum", "deepsets"}
    exact_rows = [row for row in results["rows"] if row["model"] == "exact"]
    # The exact optimum is the best possible log-loss up to test-sample noise.
    for row in exact_rows:
        others = [r for r in results["rows"] if (r["N"], r["s"]) == (row["N"], row["s"])]
        assert row["log_loss"] <= min(r["log_loss"] for r in others) + 3 * row["log_loss_se"]


def test_noniid_quick_run_on_lhco(tmp_path, lhco_npz_path):
    out = tmp_path / "noniid"
    result = noniid.run(_args(out=out, data=lhco_npz_path))
    assert result["lhco"] == "run"
    lhco_rows = [row for row in result["rows"] if row["part"] == "lhco"]
    assert {row["s"] for row in lhco_rows} == set(noniid.SHIFTS)
    assert all(np.isfinite(row["log_loss"]) for row in lhco_rows)


def _args(**kwargs):
    import argparse

    defaults = dict(quick=True, out=None, seed=0, data=None, threads=1, quiet=True, epochs=None)
    return argparse.Namespace(**{**defaults, **kwargs})


# ------------------------------------------------------------------ dilution
@pytest.mark.parametrize("arch", dilution.ARCHITECTURES)
def test_per_event_gradient_matches_autograd_for_one_event(arch):
    torch.manual_seed(0)
    config = dilution.QUICK
    model = dilution.build(arch, 2, config, np.zeros(2), np.ones(2), log_prior_odds=0.0)
    E = torch.randn(1, 1, 2)
    target = torch.ones(1)
    measured = dilution.per_event_gradients(model, arch, E, target)
    phi, _ = dilution.per_event_parts(model, arch)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(E), target)
    grads = torch.autograd.grad(loss, list(phi.parameters()))
    expected = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    assert measured["per_event_grad_norm_mean"] == pytest.approx(expected, rel=1e-5)


def test_per_event_gradients_sum_to_the_ensemble_error_signal():
    # logratio_sum: every event of an ensemble receives sigmoid(S) - y as error signal.
    torch.manual_seed(1)
    model = dilution.build("logratio_sum", 2, dilution.QUICK, np.zeros(2), np.ones(2), log_prior_odds=0.0)
    E = torch.randn(3, 4, 2)
    target = torch.tensor([1.0, 0.0, 1.0])
    with torch.no_grad():
        expected = (torch.sigmoid(model(E)) - target).abs().mean()
    measured = dilution.per_event_gradients(model, "logratio_sum", E, target)
    assert measured["error_signal_mean"] == pytest.approx(float(expected), rel=1e-5)


def test_dilution_quick_run(tmp_path):
    out = tmp_path / "dilution"
    result = dilution.run(_args(out=out, epochs=1))
    data = json.loads((out / "results.json").read_text())
    assert data["dataset"] == "gaussian"
    assert (out / "dilution.png").stat().st_size > 0
    runs = {(run["architecture"], run["N"]): run for run in result["runs"]}
    assert set(runs) == {(a, n) for a in dilution.ARCHITECTURES for n in dilution.SIZES}
    for run in runs.values():
        assert len(run["curves"]["epoch"]) == 2  # initial state + one epoch
        assert all(np.isfinite(run["curves"]["per_event_grad_norm_mean"]))
    # N = 1 also scores the per-instance product at every N.
    assert all(f"ensemble_auc_N{n}" in runs[("logratio_sum", 1)]["curves"] for n in dilution.SIZES)
