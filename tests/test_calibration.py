"""CalibratedLogRatio: a deliberately miscalibrated log ratio is corrected."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from ensemblelr import CalibratedLogRatio, PerInstanceClassifier, ensemble_scorer
from ensemblelr.datasets import make_gaussian_events

EXACT_SLOPE = 0.2  # log N(x; 0.1, 1) / N(x; -0.1, 1) = 0.2 x


class DistortedLogRatio(BaseEstimator):
    """Exact Gaussian log ratio passed through ``factor * r + offset`` (no training)."""

    def __init__(self, factor=3.0, offset=0.0):
        self.factor = factor
        self.offset = offset

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.n_features_in_ = np.shape(X)[1]
        return self

    def decision_function(self, X):
        return self.factor * EXACT_SLOPE * np.asarray(X, dtype=float)[:, 0] + self.offset


@pytest.fixture(scope="module")
def calibration_events():
    X, y = make_gaussian_events(100_000, random_state=1)
    order = np.random.default_rng(1).permutation(len(y))
    return X[order], y[order]


def test_temperature_undoes_a_factor_three(calibration_events):
    X, y = calibration_events
    model = CalibratedLogRatio(DistortedLogRatio(3.0).fit(X, y), method="temperature", prefit=True)
    model.fit(X, y)
    # Fisher information of the scale a on r = 0.6 x: n E[r^2 p(1-p)] ~ 2e5 * 0.36 * 0.25,
    # so sd(a) ~ 0.0074; 4 sd.
    assert model.scale_ == pytest.approx(1 / 3, abs=0.03)
    assert model.temperature_ == pytest.approx(3.0, rel=0.1)
    assert model.bias_ == 0.0
    grid = np.linspace(-2, 2, 9)[:, None]
    np.testing.assert_allclose(model.decision_function(grid), EXACT_SLOPE * grid[:, 0], atol=0.03 * 0.6 * 2)


def test_platt_removes_scale_and_offset(calibration_events):
    X, y = calibration_events
    model = CalibratedLogRatio(DistortedLogRatio(3.0, 0.5).fit(X, y), method="platt", prefit=True).fit(X, y)
    assert model.scale_ == pytest.approx(1 / 3, abs=0.03)
    # b = -0.5 a; the intercept of a balanced logistic fit has sd ~ 2 / sqrt(n) ~ 0.0045.
    assert model.bias_ == pytest.approx(-0.5 / 3, abs=0.03)


def test_isotonic_recovers_the_exact_ratio(calibration_events):
    X, y = calibration_events
    distorted = DistortedLogRatio(3.0).fit(X, y)
    model = CalibratedLogRatio(distorted, method="isotonic", prefit=True).fit(X, y)
    grid = np.linspace(-1.5, 1.5, 13)[:, None]
    before = np.abs(distorted.decision_function(grid) - EXACT_SLOPE * grid[:, 0]).max()
    after = np.abs(model.decision_function(grid) - EXACT_SLOPE * grid[:, 0]).max()
    assert before > 0.55
    # Isotonic blocks hold a few thousand events here: logit error ~ 2 / sqrt(2000) ~ 0.045.
    assert after < 0.1
    # Log ratios stay finite beyond the calibration range.
    assert np.isfinite(model.decision_function(np.array([[-50.0], [50.0]]))).all()


def test_fit_clones_and_trains_on_a_split(calibration_events):
    X, y = calibration_events
    X, y = X[:10_000], y[:10_000]
    base = PerInstanceClassifier(hidden_layer_sizes=(8,), max_epochs=2, early_stopping=False, random_state=0)
    model = CalibratedLogRatio(base, method="temperature", random_state=0).fit(X, y)
    assert not hasattr(base, "net_")
    assert model.estimator_ is not base
    assert np.isfinite(model.scale_)
    E = X[:60].reshape(6, 10, 1)
    per_event = model.decision_function(X[:60]).reshape(6, 10)
    np.testing.assert_allclose(model.predict_ensemble_log_ratio(E), per_event.sum(axis=1), rtol=1e-12)
    padded = np.concatenate([E, np.full((6, 3, 1), np.nan)], axis=1)
    np.testing.assert_allclose(model.predict_ensemble_log_ratio(padded), per_event.sum(axis=1), rtol=1e-12)
    proba = model.predict_ensemble_proba(E, prior=0.2)
    assert proba.shape == (6, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(X[:50])) <= set(model.classes_)
    score = ensemble_scorer(ensemble_size=5, random_state=0)(model, X[:2000], y[:2000])
    assert 0.0 <= score <= 1.0
    assert clone(model).get_params()["method"] == "temperature"


def test_bad_arguments(calibration_events):
    X, y = calibration_events
    X, y = X[:100], y[:100]
    with pytest.raises(ValueError, match="method"):
        CalibratedLogRatio(DistortedLogRatio(), method="beta").fit(X, y)
    with pytest.raises(TypeError, match="decision_function"):
        CalibratedLogRatio(object()).fit(X, y)
    with pytest.raises(NotFittedError):
        CalibratedLogRatio(PerInstanceClassifier(), prefit=True).fit(X, y)
    with pytest.raises(ValueError, match="calibration_fraction"):
        CalibratedLogRatio(DistortedLogRatio(), calibration_fraction=1.5).fit(X, y)
    with pytest.raises(NotFittedError):
        CalibratedLogRatio(DistortedLogRatio()).decision_function(X)


# Known and accepted, as for PerInstanceClassifier (tests/test_sklearn_checks.py): float32
# rows move by one ulp between batches; minibatch SGD is not exactly equivalent under
# sample-weight duplication, and zero weights can leave a class empty in the calibration split.
ALLOWED_CHECK_FAILURES = {"check_methods_subset_invariance", "check_methods_sample_order_invariance",
                          "check_sample_weight_equivalence_on_dense_data"}


def test_sklearn_check_estimator():
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    base = PerInstanceClassifier(hidden_layer_sizes=(8,), max_epochs=20, lr=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(CalibratedLogRatio(base, random_state=0), on_fail=None)
    failed = {result["check_name"] for result in results if result["status"] == "failed"}
    assert failed <= ALLOWED_CHECK_FAILURES, failed
