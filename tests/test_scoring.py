"""ensemble_scorer: event-level folds scored on same-label ensembles."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from sklearn.model_selection import cross_val_score

from ensemblelr import (
    PerEnsembleClassifier,
    PerInstanceClassifier,
    ensemble_scorer,
    log_ratio_to_proba,
    make_ensembles,
)
from ensemblelr.datasets import gaussian_log_ratio, make_gaussian_events

MU = 0.3


class ExactModel:
    """Stands in for a fitted classifier with the exact Gaussian ensemble log ratio."""

    def __init__(self, classes=(0, 1)):
        self.classes_ = np.asarray(classes)
        self.seen = []

    def predict_ensemble_proba(self, E, prior=0.5):
        self.seen.append(E)
        return log_ratio_to_proba(gaussian_log_ratio(E, MU, -MU).sum(axis=1), prior=prior)


@pytest.fixture(scope="module")
def events():
    return make_gaussian_events(600, MU, -MU, random_state=0)


def test_groups_events_into_same_label_ensembles():
    # Signal events are positive and background negative, so a same-label grouping
    # is the only way to an AUC of exactly 1 with this "model".
    X = np.concatenate([np.arange(1.0, 41.0), -np.arange(1.0, 61.0)])[:, None]
    y = np.concatenate([np.ones(40, dtype=int), np.zeros(60, dtype=int)])

    class SignPerEnsemble(ExactModel):
        def predict_ensemble_proba(self, E, prior=0.5):
            self.seen.append(E)
            p = (E[..., 0] > 0).mean(axis=1)
            return np.stack([1 - p, p], axis=1)

    model = SignPerEnsemble()
    assert ensemble_scorer(ensemble_size=7, random_state=0)(model, X, y) == 1.0
    (E,) = model.seen
    assert E.shape == (40 // 7 + 60 // 7, 7, 1)
    signs = np.sign(E[..., 0])
    assert (signs == signs[:, :1]).all()


@pytest.mark.parametrize(
    "metric, reference",
    [
        ("roc_auc", lambda t, p: metrics.roc_auc_score(t, p)),
        ("average_precision", lambda t, p: metrics.average_precision_score(t, p)),
        ("neg_log_loss", lambda t, p: -metrics.log_loss(t, p)),
        ("neg_brier_score", lambda t, p: -metrics.brier_score_loss(t, p)),
        ("accuracy", lambda t, p: metrics.accuracy_score(t, p > 0.5)),
        (lambda t, p: float(np.mean(p[t == 1])), lambda t, p: float(np.mean(p[t == 1]))),
    ],
)
def test_metrics_equal_sklearn_on_the_same_ensembles(events, metric, reference):
    X, y = events
    score = ensemble_scorer(metric, ensemble_size=10, random_state=3)(ExactModel(), X, y)
    E, y_ens = make_ensembles(X, y, 10, random_state=3)
    proba = ExactModel().predict_ensemble_proba(E)[:, 1]
    assert score == pytest.approx(reference(y_ens, proba), rel=1e-12)


def test_prior_is_passed_to_the_model(events):
    X, y = events
    balanced = ensemble_scorer("neg_log_loss", ensemble_size=5, random_state=0)(ExactModel(), X, y)
    skewed = ensemble_scorer("neg_log_loss", ensemble_size=5, random_state=0, prior=0.01)(ExactModel(), X, y)
    # Equal numbers of signal and background ensembles: the true prior 0.5 scores better.
    assert balanced > skewed


def test_other_label_values(events):
    X, y = events
    labels = np.where(y == 1, "signal", "back")
    score = ensemble_scorer(ensemble_size=10, random_state=1)(ExactModel(("back", "signal")), X, labels)
    assert score == ensemble_scorer(ensemble_size=10, random_state=1)(ExactModel(), X, y)


def test_random_state(events):
    X, y = events
    fixed = ensemble_scorer(ensemble_size=10, random_state=5)
    assert fixed(ExactModel(), X, y) == fixed(ExactModel(), X, y)
    moving = ensemble_scorer(ensemble_size=10, random_state=np.random.RandomState(5))
    assert moving(ExactModel(), X, y) != moving(ExactModel(), X, y)


def test_with_both_classifier_kinds(events):
    X, y = events
    scorer = ensemble_scorer(ensemble_size=10, random_state=0)
    E, y_ens = make_ensembles(X, y, 10, random_state=0)
    optimum = metrics.roc_auc_score(y_ens, gaussian_log_ratio(E, MU, -MU).sum(axis=1))
    models = [
        PerInstanceClassifier(hidden_layer_sizes=(8,), lr=1e-2, max_epochs=10, batch_size=64,
                              early_stopping=False, random_state=0),
        PerEnsembleClassifier("deepsets", ensemble_size=5, Phi_sizes=(8,), F_sizes=(8,), lr=1e-2,
                              max_epochs=20, batch_size=16, early_stopping=False, random_state=0),
    ]
    for model in models:
        model.fit(X, y)
        score = scorer(model, X, y)
        expected = metrics.roc_auc_score(y_ens, model.predict_ensemble_proba(E)[:, 1])
        assert score == pytest.approx(expected, rel=1e-12)
        # 120 ensembles: the optimum is known to about 0.03.
        assert score > optimum - 0.1, (type(model).__name__, score, optimum)


def test_in_cross_validation(events):
    X, y = events
    model = PerInstanceClassifier(hidden_layer_sizes=(8,), max_epochs=2, early_stopping=False, random_state=0)
    scores = cross_val_score(model, X, y, cv=2, scoring=ensemble_scorer(ensemble_size=10, random_state=0))
    assert scores.shape == (2,)
    assert np.isfinite(scores).all()


def test_scorer_errors(events):
    X, y = events
    with pytest.raises(ValueError, match="metric must be one of"):
        ensemble_scorer("auc")
    with pytest.raises(ValueError, match="metric must be a string or a callable"):
        ensemble_scorer(3)
    for size in (0, -5, 2.0):
        with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
            ensemble_scorer(ensemble_size=size)
    for prior in (0.0, 1.0, 2.0):
        with pytest.raises(ValueError, match="prior"):
            ensemble_scorer(prior=prior)
    with pytest.raises(ValueError, match="sample_weight"):
        ensemble_scorer(ensemble_size=5)(ExactModel(), X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match="larger than the"):
        ensemble_scorer(ensemble_size=5000)(ExactModel(), X, y)


def test_repr():
    assert repr(ensemble_scorer("accuracy", ensemble_size=3, random_state=1)) == (
        "ensemble_scorer(metric='accuracy', ensemble_size=3, random_state=1)"
    )
