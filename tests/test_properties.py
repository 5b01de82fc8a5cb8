"""Property-based tests of the invariants of ensemble log ratios (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import expit, logit

from ensemblelr import (
    BaggedPerInstanceClassifier,
    CalibratedLogRatio,
    LogRatioTransformer,
    PerEnsembleClassifier,
    PerInstanceClassifier,
    log_ratio_to_proba,
)

N_FEATURES = 2
# Events are computed in float32 inside the network; sums of a few tens of them agree
# to this tolerance whatever the order or batching.
ATOL = 1e-4

PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)

finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def ensembles(draw, max_ensembles=4, max_size=8):
    n_ens = draw(st.integers(1, max_ensembles))
    size = draw(st.integers(1, max_size))
    return draw(arrays(np.float64, (n_ens, size, N_FEATURES), elements=finite))


@pytest.fixture(scope="module")
def models():
    rng = np.random.default_rng(0)
    n = 600
    X = np.concatenate([rng.normal(0.5, 1, (n, N_FEATURES)), rng.normal(-0.5, 1, (n, N_FEATURES))])
    y = np.repeat([1, 0], n)
    tiny = dict(hidden_layer_sizes=(8,), max_epochs=2, early_stopping=False, random_state=0)
    per_instance = PerInstanceClassifier(**tiny).fit(X, y)
    E = X.reshape(-1, 4, N_FEATURES)
    y_ens = y[::4]
    return {
        "per_instance": per_instance,
        "bagged": BaggedPerInstanceClassifier(PerInstanceClassifier(**tiny), n_estimators=2,
                                              random_state=0).fit(X, y),
        "calibrated": CalibratedLogRatio(per_instance, prefit=True).fit(X, y),
        "logratio_sum": PerEnsembleClassifier(
            architecture="logratio_sum", hidden_layer_sizes=(8,), max_epochs=2, early_stopping=False,
            random_state=0,
        ).fit(E, y_ens),
        "deepsets": PerEnsembleClassifier(
            architecture="deepsets", Phi_sizes=(8,), F_sizes=(8,), max_epochs=2, early_stopping=False,
            random_state=0,
        ).fit(E, y_ens),
    }


ADDITIVE = ("per_instance", "bagged", "calibrated", "logratio_sum")
ALL = (*ADDITIVE, "deepsets")


@pytest.mark.parametrize("name", ALL)
@PROPERTY_SETTINGS
@given(E=ensembles(), seed=st.integers(0, 2**16))
def test_invariant_to_event_order(models, name, E, seed):
    model = models[name]
    permuted = E[:, np.random.default_rng(seed).permutation(E.shape[1])]
    np.testing.assert_allclose(
        model.predict_ensemble_log_ratio(permuted), model.predict_ensemble_log_ratio(E), atol=ATOL
    )


@pytest.mark.parametrize("name", ADDITIVE)
@PROPERTY_SETTINGS
@given(E=ensembles(max_size=10), data=st.data())
def test_sum_over_any_partition(models, name, E, data):
    model = models[name]
    size = E.shape[1]
    labels = data.draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
    labels = np.asarray(labels)
    total = np.zeros(E.shape[0])
    for part in np.unique(labels):
        total += model.predict_ensemble_log_ratio(E[:, labels == part])
    np.testing.assert_allclose(total, model.predict_ensemble_log_ratio(E), atol=ATOL)
    per_event = model.decision_function(E.reshape(-1, N_FEATURES)) if name != "logratio_sum" else (
        model.per_instance_.decision_function(E.reshape(-1, N_FEATURES))
    )
    np.testing.assert_allclose(per_event.reshape(E.shape[:2]).sum(axis=1), total, atol=ATOL)


@pytest.mark.parametrize("name", ALL)
@PROPERTY_SETTINGS
@given(E=ensembles(), n_pad=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_nan_padding_never_changes_a_result(models, name, E, n_pad, seed):
    model = models[name]
    rng = np.random.default_rng(seed)
    padded = np.concatenate([E, np.full((E.shape[0], n_pad, N_FEATURES), np.nan)], axis=1)
    padded = padded[:, rng.permutation(padded.shape[1])]
    reference = model.predict_ensemble_log_ratio(E)
    np.testing.assert_allclose(model.predict_ensemble_log_ratio(padded), reference, atol=ATOL)
    # A mask marks the same events as padding, whatever values they hold.
    mask = ~np.isnan(padded).all(axis=2)
    garbage = np.where(mask[:, :, None], padded, rng.normal(0, 100, padded.shape))
    np.testing.assert_allclose(model.predict_ensemble_log_ratio(garbage, mask=mask), reference, atol=ATOL)
    np.testing.assert_allclose(
        model.predict_ensemble_proba(padded, prior=0.3), model.predict_ensemble_proba(E, prior=0.3), atol=ATOL
    )


@PROPERTY_SETTINGS
@given(
    log_ratio=arrays(np.float64, st.integers(1, 20), elements=st.floats(-20, 20)),
    prior=st.floats(1e-4, 1 - 1e-4),
)
def test_prior_correction_is_exact(log_ratio, prior):
    # Bayes: P(1 | x) = pi LR / (pi LR + 1 - pi).
    bayes = prior * np.exp(log_ratio) / (prior * np.exp(log_ratio) + 1 - prior)
    proba = log_ratio_to_proba(log_ratio, prior=prior)
    np.testing.assert_allclose(proba[:, 1], bayes, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-15)
    # A classifier trained with signal fraction pi outputs expit(log LR + logit(pi));
    # the transformer removes exactly that offset.
    outputs = expit(log_ratio + logit(prior))
    recovered = LogRatioTransformer(prior=prior).fit(outputs[:, None]).transform(outputs[:, None])[:, 0]
    unsaturated = np.abs(log_ratio + logit(prior)) < 25
    np.testing.assert_allclose(recovered[unsaturated], log_ratio[unsaturated], atol=1e-6)


@pytest.mark.parametrize("name", ALL)
@PROPERTY_SETTINGS
@given(E=ensembles(), prior=st.floats(0.01, 0.99))
def test_ensemble_proba_is_bayes_with_the_prior(models, name, E, prior):
    model = models[name]
    log_ratio = model.predict_ensemble_log_ratio(E)
    expected = expit(log_ratio + np.log(prior / (1 - prior)))
    np.testing.assert_allclose(model.predict_ensemble_proba(E, prior=prior)[:, 1], expected, rtol=1e-9,
                               atol=1e-300)


@PROPERTY_SETTINGS
@given(fraction=st.sampled_from([0.2, 0.5, 0.8]), seed=st.integers(0, 3))
def test_training_class_balance_is_removed(fraction, seed):
    # The per-event log ratio must not depend on the signal fraction of the training
    # sample: log_prior_odds_ is exactly log(n_signal / n_background).
    rng = np.random.default_rng(seed)
    n_sig = int(1000 * fraction)
    X = np.concatenate([rng.normal(0.5, 1, (n_sig, 1)), rng.normal(-0.5, 1, (1000 - n_sig, 1))])
    y = np.repeat([1, 0], [n_sig, 1000 - n_sig])
    model = PerInstanceClassifier(hidden_layer_sizes=(4,), max_epochs=1, early_stopping=False,
                                  random_state=seed).fit(X, y)
    assert model.log_prior_odds_ == pytest.approx(np.log(n_sig / (1000 - n_sig)), rel=1e-12)
    logits = model.predict_log_proba(X[:5])
    np.testing.assert_allclose(logits[:, 1] - logits[:, 0] - model.log_prior_odds_,
                               model.decision_function(X[:5]), atol=1e-9)
