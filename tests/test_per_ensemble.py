"""PerEnsembleClassifier: every architecture against the exact Gaussian ensemble optimum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score
from skorch.callbacks import Callback

from ensemblelr import PerEnsembleClassifier, PerInstanceClassifier, make_ensembles
from ensemblelr.datasets import gaussian_log_ratio, make_gaussian_events

# Well separated enough that N=10 ensembles are far from both 0.5 and 1 in AUC.
MU = 0.2
N = 10
ARCHITECTURES = ("dense", "sorted", "deepsets", "logratio_sum")
SMALL = dict(hidden_layer_sizes=(32, 32), Phi_sizes=(32, 32), F_sizes=(32,))


def _hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC estimated from n_pos positives and n_neg negatives."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)
    return float(np.sqrt(var / (n_pos * n_neg)))


@pytest.fixture(scope="module")
def train_events():
    return make_gaussian_events(20_000, MU, -MU, random_state=0)


@pytest.fixture(scope="module")
def test_ensembles():
    X, y = make_gaussian_events(20_000, MU, -MU, random_state=1)
    return make_ensembles(X, y, N, random_state=2)


@pytest.fixture(scope="module")
def fitted(train_events):
    """One model per architecture, fitted once on 2-D events grouped into ensembles of N."""
    X, y = train_events
    return {
        arch: PerEnsembleClassifier(arch, ensemble_size=N, max_epochs=15, random_state=0, **SMALL).fit(X, y)
        for arch in ARCHITECTURES
    }


def _auc_gap(model, E, y) -> tuple[float, float]:
    """(optimal AUC - model AUC, tolerance of two standard errors) on ensembles E."""
    optimum = roc_auc_score(y, gaussian_log_ratio(E, MU, -MU).sum(axis=1))
    auc = roc_auc_score(y, model.decision_function(E))
    return optimum - auc, 2 * _hanley_mcneil_se(optimum, int((y == 1).sum()), int((y == 0).sum()))


# ------------------------------------------------------------------ learning
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_architecture_reaches_exact_optimum(fitted, test_ensembles, architecture):
    E, y = test_ensembles
    model = fitted[architecture]
    assert model.ensemble_size_ == N
    assert model.n_features_in_ == 1
    gap, tolerance = _auc_gap(model, E, y)
    # A per-event model applied to one event of the ensemble would be ~0.2 below.
    assert gap < tolerance, (gap, tolerance)


def test_fit_on_3d_ensembles(train_events, test_ensembles):
    E_train, y_train = make_ensembles(*train_events, N, random_state=5)
    model = PerEnsembleClassifier("deepsets", max_epochs=15, random_state=0, **SMALL).fit(E_train, y_train)
    assert model.ensemble_size_ == N
    gap, tolerance = _auc_gap(model, *test_ensembles)
    assert gap < tolerance, (gap, tolerance)


def test_fixed_grouping_option(train_events, test_ensembles, fitted):
    X, y = train_events
    model = PerEnsembleClassifier(
        "logratio_sum", ensemble_size=N, regroup_each_epoch=False, max_epochs=15, random_state=0, **SMALL
    ).fit(X, y)
    gap, tolerance = _auc_gap(model, *test_ensembles)
    assert gap < tolerance, (gap, tolerance)
    # Same seed, other grouping scheme: a different model.
    E = test_ensembles[0][:20]
    assert not np.allclose(model.decision_function(E), fitted["logratio_sum"].decision_function(E))


class _RecordTrainingEnsembles(Callback):
    """Keeps the ensembles skorch trained on in every epoch."""

    def __init__(self):
        self.seen = []

    def on_epoch_end(self, net, dataset_train=None, **kwargs):
        index = getattr(dataset_train, "index", None)
        if index is not None:  # regrouped: which events form each ensemble
            events = dataset_train.events[index][..., 0]
        else:
            events = dataset_train.X[..., 0]
        self.seen.append((events.clone().numpy(), dataset_train.y.clone().numpy()))


@pytest.mark.parametrize("regroup", [True, False])
def test_regroup_each_epoch(train_events, regroup):
    X, y = train_events
    X, y = X[::20], y[::20]
    record = _RecordTrainingEnsembles()
    PerEnsembleClassifier(
        "logratio_sum", ensemble_size=N, regroup_each_epoch=regroup, max_epochs=3, early_stopping=False,
        random_state=0, callbacks=[("record", record)], **SMALL,
    ).fit(X, y)
    assert len(record.seen) == 3
    signal_values = X[y == 1, 0].astype(np.float32)  # the network trains in float32
    for events, labels in record.seen:
        assert events.shape == ((y == 0).sum() // N + (y == 1).sum() // N, N)
        # Same-label ensembles, and no event used twice in an epoch.
        signal = np.isin(events, signal_values)
        assert (signal.all(axis=1) == (labels == 1)).all()
        assert (signal.any(axis=1) == (labels == 1)).all()
        assert len(np.unique(events)) == events.size
    first = np.sort(record.seen[0][0], axis=1)
    second = np.sort(record.seen[1][0], axis=1)
    if regroup:
        assert not np.array_equal(np.unique(first, axis=0), np.unique(second, axis=0))
    else:
        np.testing.assert_array_equal(record.seen[0][0], record.seen[1][0])


# -------------------------------------------------- per-instance extraction
def test_logratio_sum_per_instance_recovers_event_log_ratio(gaussian_events):
    X, y = gaussian_events
    model = PerEnsembleClassifier(
        "logratio_sum", ensemble_size=N, hidden_layer_sizes=(32, 32), max_epochs=20, random_state=0
    ).fit(X, y)
    per_instance = model.per_instance_
    assert isinstance(per_instance, PerInstanceClassifier)
    grid = np.linspace(-2, 2, 81)[:, None]
    assert np.abs(per_instance.decision_function(grid) - 0.2 * grid[:, 0]).mean() < 0.05
    proba = per_instance.predict_proba(grid)
    np.testing.assert_allclose(proba[:, 1], expit(per_instance.decision_function(grid)), rtol=1e-10)


@pytest.mark.parametrize("regroup", [True, False])
def test_grouped_event_weights_set_prior_odds(train_events, regroup):
    X, y = train_events
    X, y = X[::10], y[::10]
    model = PerEnsembleClassifier(
        "logratio_sum", ensemble_size=N, regroup_each_epoch=regroup, max_epochs=1, early_stopping=False,
        random_state=0, **SMALL,
    ).fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    n1, n0 = (y == 1).sum() // N, (y == 0).sum() // N
    assert model.log_prior_odds_ == pytest.approx(np.log(3 * n1 / n0))


def test_weighted_logratio_sum_per_instance_is_unbiased(gaussian_events):
    # Up-weighting signal events changes the class prior only; a prior correction
    # missing the weights would shift Phi by log(3) / N = 0.11 at every x.
    X, y = gaussian_events
    model = PerEnsembleClassifier(
        "logratio_sum", ensemble_size=N, hidden_layer_sizes=(32, 32), max_epochs=20, random_state=0
    ).fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    grid = np.linspace(-2, 2, 81)[:, None]
    error = model.per_instance_.decision_function(grid) - 0.2 * grid[:, 0]
    assert abs(error.mean()) < 0.03
    assert np.abs(error).mean() < 0.05


def test_logratio_sum_is_sum_of_its_per_instance(fitted, test_ensembles):
    model = fitted["logratio_sum"]
    E = test_ensembles[0][:50]
    np.testing.assert_allclose(
        model.decision_function(E), model.per_instance_.predict_ensemble_log_ratio(E), rtol=1e-5, atol=1e-5
    )


def test_per_instance_only_for_logratio_sum(fitted):
    for arch in ("dense", "sorted", "deepsets"):
        assert not hasattr(fitted[arch], "per_instance_")


# ------------------------------------------------------------- invariances
@pytest.mark.parametrize("architecture", ["sorted", "deepsets", "logratio_sum"])
def test_permutation_invariance(fitted, test_ensembles, architecture):
    E = test_ensembles[0][:100]
    perm = np.random.default_rng(0).permutation(N)
    model = fitted[architecture]
    np.testing.assert_allclose(model.decision_function(E[:, perm]), model.decision_function(E), atol=1e-5)


def test_dense_is_not_permutation_invariant(fitted, test_ensembles):
    # Shows that the invariance test above can fail.
    E = test_ensembles[0][:100]
    perm = np.random.default_rng(0).permutation(N)
    model = fitted["dense"]
    assert np.abs(model.decision_function(E[:, perm]) - model.decision_function(E)).max() > 1e-3


@pytest.mark.parametrize("architecture", ["deepsets", "logratio_sum"])
def test_padding_invariance(fitted, test_ensembles, architecture):
    model = fitted[architecture]
    E = test_ensembles[0][:40]
    padded = np.concatenate([E, np.full((40, 3, 1), np.nan)], axis=1)
    expected = model.decision_function(E)
    np.testing.assert_allclose(model.decision_function(padded), expected, atol=1e-5)
    mask = np.ones(padded.shape[:2], dtype=bool)
    mask[:, N:] = False
    np.testing.assert_allclose(model.decision_function(np.nan_to_num(padded), mask=mask), expected, atol=1e-5)
    # Variable sizes: an ensemble of 6 real events padded to N scores like the 6 alone.
    short = E[:, :6]
    padded_short = np.concatenate([short, np.full((40, N - 6, 1), np.nan)], axis=1)
    np.testing.assert_allclose(
        model.decision_function(padded_short), model.decision_function(short), atol=1e-5
    )


def test_set_models_accept_other_ensemble_sizes(fitted):
    E = np.random.default_rng(0).normal(size=(5, 3 * N, 1))
    for arch in ("deepsets", "logratio_sum"):
        assert np.isfinite(fitted[arch].decision_function(E)).all()


def test_fit_on_padded_ensembles(train_events):
    E, y = make_ensembles(*train_events, N, random_state=0)
    E = E[:400].copy()
    y = y[:400]
    E[::2, 7:] = np.nan  # half the ensembles have 7 events
    model = PerEnsembleClassifier("deepsets", max_epochs=2, early_stopping=False, random_state=0, **SMALL)
    model.fit(E, y)
    assert model.ensemble_size_ == N
    assert np.isfinite(model.decision_function(E)).all()


@pytest.mark.parametrize("architecture", ["dense", "sorted"])
def test_flat_models_reject_other_sizes_and_padding(fitted, test_ensembles, architecture):
    model = fitted[architecture]
    E = test_ensembles[0][:10]
    with pytest.raises(ValueError, match=r"trained on ensembles of 10 events and cannot take 7"):
        model.decision_function(E[:, :7])
    padded = E.copy()
    padded[0, -1] = np.nan
    with pytest.raises(ValueError, match="padded events"):
        model.decision_function(padded)
    with pytest.raises(ValueError, match="padded events"):
        model.predict_proba(E[:, :N], mask=np.arange(N) < 5 + np.zeros((10, 1)))
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match="padded events"):
        PerEnsembleClassifier(architecture, max_epochs=1).fit(padded, y)


# ------------------------------------------------------- output consistency
def test_probabilities_match_log_ratio(fitted, test_ensembles):
    model = fitted["deepsets"]
    E = test_ensembles[0][:30]
    log_ratio = model.decision_function(E)
    proba = model.predict_proba(E)
    np.testing.assert_allclose(proba[:, 1], expit(log_ratio + model.log_prior_odds_), rtol=1e-10)
    np.testing.assert_allclose(model.predict_log_proba(E), np.log(proba), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(E), model.classes_[(proba[:, 1] > 0.5).astype(int)])
    np.testing.assert_array_equal(model.predict_ensemble_log_ratio(E), log_ratio)
    for prior in (0.1, 0.5, 0.99):
        np.testing.assert_allclose(
            model.predict_ensemble_proba(E, prior=prior)[:, 1],
            expit(log_ratio + np.log(prior / (1 - prior))),
            rtol=1e-10,
        )


def test_ensemble_sample_weight_sets_prior_odds(test_ensembles):
    E, y = test_ensembles
    weight = np.where(y == 1, 3.0, 1.0)
    model = PerEnsembleClassifier("logratio_sum", max_epochs=1, early_stopping=False, random_state=0, **SMALL)
    model.fit(E[:200], y[:200], sample_weight=weight[:200])
    n1, n0 = (y[:200] == 1).sum(), (y[:200] == 0).sum()
    assert model.log_prior_odds_ == pytest.approx(np.log(3 * n1 / n0))


def test_huge_ensembles_stay_finite(fitted):
    rng = np.random.default_rng(0)
    E = np.concatenate([rng.normal(MU, 1, (2, 100_000, 1)), rng.normal(-MU, 1, (2, 100_000, 1))])
    for arch in ("deepsets", "logratio_sum"):
        log_ratio = fitted[arch].decision_function(E)
        proba = fitted[arch].predict_proba(E)
        assert np.isfinite(log_ratio).all() and np.isfinite(proba).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The network sums 1e5 event outputs in float32; the per-instance path sums in float64.
    model = fitted["logratio_sum"]
    np.testing.assert_allclose(
        model.decision_function(E), model.per_instance_.predict_ensemble_log_ratio(E), rtol=1e-4
    )


def test_mean_pooling_is_padding_invariant(test_ensembles):
    E, y = test_ensembles
    model = PerEnsembleClassifier(
        "deepsets", pooling="mean", max_epochs=2, early_stopping=False, random_state=0, **SMALL
    ).fit(E[:400], y[:400])
    short = E[:20, :6]
    padded = np.concatenate([short, np.full((20, N - 6, 1), np.nan)], axis=1)
    np.testing.assert_allclose(model.decision_function(padded), model.decision_function(short), atol=1e-5)
