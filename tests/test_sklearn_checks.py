"""scikit-learn's estimator checks, and 3-D equivalents for the ensemble classifier.

Every estimator and transformer of the package runs through
``parametrize_with_checks``. The instances are small (one hidden layer of 8, at
most 20 epochs, a fixed seed) so that the many fits of the checks stay cheap;
training quality at default parameters is tested elsewhere.

``PerEnsembleClassifier`` fits on 2-D events (grouped into ensembles) but its
prediction methods take 3-D ensembles and reject 2-D input by design, so every
check that predicts on 2-D data fails for that single reason. The important ones
are rewritten below on 3-D ensembles.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from ensemblelr import (
    EnsembleLogRatio,
    LogRatioTransformer,
    PerEnsembleClassifier,
    PerInstanceClassifier,
    make_ensembles,
)

SMALL = dict(max_epochs=20, lr=1e-2, random_state=0)


def _sizes(architecture: str) -> dict:
    if architecture == "deepsets":
        return dict(Phi_sizes=(8,), F_sizes=(8,))
    return dict(hidden_layer_sizes=(8,))


def _per_ensemble(architecture: str, **kwargs) -> PerEnsembleClassifier:
    sizes = _sizes(architecture)
    return PerEnsembleClassifier(architecture=architecture, ensemble_size=2, **sizes, **{**SMALL, **kwargs})


ARCHITECTURES = ("dense", "sorted", "deepsets", "logratio_sum")

ESTIMATORS = [
    PerInstanceClassifier(hidden_layer_sizes=(8,), **SMALL),
    *[_per_ensemble(architecture) for architecture in ARCHITECTURES],
    # Probabilities must lie in [0, 1], which the checks' random data do not; logits
    # take any real value and exercise the same code path.
    LogRatioTransformer(input="logit", prior=0.2),
    # Grouping changes the number of rows, which the checks forbid; size 1 keeps the
    # rows and still runs validation, dtype handling, pickling and feature counts.
    EnsembleLogRatio(ensemble_size=1),
]

_SKORCH_CATCH_ALL = (
    "**skorch_kwargs is a catch-all, not a parameter: unknown keywords raise TypeError at "
    "construction by design, as skorch's NeuralNet does"
)
_SGD = "minibatch SGD: repeated rows change the batches, so weighted and repeated fits differ"
_PREDICT_3D = (
    "ensemble methods take 3-D ensembles (n_ensembles, ensemble_size, n_features) and raise "
    "ValueError on 2-D or 1-D input by design; 3-D equivalents are in this file"
)
_ONE_D_COLUMN = "1-D input is accepted by design as one column of classifier outputs (n,) -> (n, 1)"

# Checks that fit on 2-D events and then predict, score or decide on 2-D data.
_PER_ENSEMBLE_2D_PREDICT = (
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_classifiers_train",
    "check_decision_proba_consistency",
    "check_dict_unchanged",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_predict1d",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_sample_weight_equivalence_on_dense_data",
    "check_supervised_y_2d",
)


def _expected_failed_checks(estimator) -> dict[str, str]:
    if isinstance(estimator, PerInstanceClassifier):
        return {
            "check_do_not_raise_errors_in_init_or_set_params": _SKORCH_CATCH_ALL,
            "check_sample_weight_equivalence_on_dense_data": _SGD,
        }
    if isinstance(estimator, PerEnsembleClassifier):
        failures = dict.fromkeys(_PER_ENSEMBLE_2D_PREDICT, _PREDICT_3D)
        failures["check_do_not_raise_errors_in_init_or_set_params"] = _SKORCH_CATCH_ALL
        return failures
    return {"check_fit1d": _ONE_D_COLUMN, "check_fit2d_predict1d": _ONE_D_COLUMN}


def _check_name(check) -> str:
    while hasattr(check, "func"):
        check = check.func
    return check.__name__


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks, xfail_strict=True)
def test_sklearn_compatible_estimator(estimator, check):
    subset_check = _check_name(check) == "check_methods_subset_invariance"
    if isinstance(estimator, PerInstanceClassifier) and subset_check:
        # The network runs in float32: depending on the CPU's matmul kernels, a row
        # evaluated in a batch of 2 can differ from the same row in a batch of 20 by
        # one float32 ulp (~1e-7), the check's float64 tolerance. Machine-dependent,
        # so not a static expected failure; float32 tolerance is asserted below.
        try:
            check(estimator)
        except AssertionError as exc:
            if "not invariant when applied to a subset" not in str(exc):
                raise
            pytest.xfail("float32 network: subset outputs differ by ~1 float32 ulp")
        return
    check(estimator)


def test_per_instance_subset_invariance_float32():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    model = PerInstanceClassifier(hidden_layer_sizes=(8,), **SMALL).fit(X, y)
    full = model.decision_function(X)
    for size in (1, 2, 7):
        parts = np.concatenate([model.decision_function(X[i : i + size]) for i in range(0, len(X), size)])
        np.testing.assert_allclose(parts, full, rtol=1e-5, atol=1e-6)
    perm = rng.permutation(len(X))
    np.testing.assert_allclose(model.decision_function(X[perm]), full[perm], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# 3-D equivalents of the checks that PerEnsembleClassifier cannot run on 2-D data.


@pytest.fixture(scope="module")
def ensembles():
    """Ensembles of 4 events from N(+-1, 1) in 2 features: 60 per class for training."""
    rng = np.random.default_rng(3)
    n = 480
    X = np.concatenate([rng.normal(1.0, 1, (n, 2)), rng.normal(-1.0, 1, (n, 2))])
    y = np.repeat([1, 0], n)
    E, y_ens = make_ensembles(X, y, 4, random_state=0)
    return E[:120], y_ens[:120], E[120:], y_ens[120:]


def _small_3d(architecture: str, **kwargs) -> PerEnsembleClassifier:
    sizes = _sizes(architecture)
    params = dict(max_epochs=20, lr=1e-2, batch_size=16, random_state=0, early_stopping=False)
    return PerEnsembleClassifier(architecture=architecture, **sizes, **{**params, **kwargs})


def _outputs(model, E) -> dict[str, np.ndarray]:
    return {
        "predict": model.predict(E),
        "predict_proba": model.predict_proba(E),
        "decision_function": model.decision_function(E),
    }


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_per_ensemble_3d_fit_predict_pickle_clone(architecture, ensembles):
    E_train, y_train, E_test, y_test = ensembles
    model = _small_3d(architecture).fit(E_train, y_train)

    # classifiers_train on 3-D: ensembles of 4 events at +-1 are easy to separate.
    out = _outputs(model, E_test)
    assert out["predict_proba"].shape == (len(E_test), 2)
    assert out["decision_function"].shape == (len(E_test),)
    assert np.mean(out["predict"] == y_test) > 0.9
    np.testing.assert_allclose(out["predict_proba"].sum(axis=1), 1.0)
    # decision_proba_consistency: probabilities rank like the decision function.
    order = np.argsort(out["decision_function"])
    assert np.all(np.diff(out["predict_proba"][order, 1]) >= 0)
    assert set(np.unique(out["predict"])) <= set(model.classes_)

    # estimators_pickle: identical outputs after a round trip.
    restored = pickle.loads(pickle.dumps(model))
    for name, value in _outputs(restored, E_test).items():
        np.testing.assert_array_equal(value, out[name], err_msg=name)

    # clone: same parameters, not fitted, fits to the same result.
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    assert not hasattr(twin, "net_")
    twin.fit(E_train, y_train)
    for name, value in _outputs(twin, E_test).items():
        np.testing.assert_array_equal(value, out[name], err_msg=name)


@pytest.mark.parametrize("architecture", ["deepsets", "logratio_sum"])
def test_per_ensemble_3d_determinism_and_idempotence(architecture, ensembles):
    E_train, y_train, E_test, _ = ensembles
    first = _small_3d(architecture, random_state=1).fit(E_train, y_train).decision_function(E_test)

    # fit_idempotent: refitting the same object gives the same model.
    model = _small_3d(architecture, random_state=1)
    model.fit(E_train, y_train)
    model.fit(E_train, y_train)
    np.testing.assert_array_equal(model.decision_function(E_test), first)

    # A different seed gives a different network.
    other = _small_3d(architecture, random_state=2).fit(E_train, y_train).decision_function(E_test)
    assert not np.allclose(other, first)

    # methods_subset_invariance / sample_order_invariance on ensembles.
    half = len(E_test) // 2
    np.testing.assert_allclose(model.decision_function(E_test[:half]), first[:half], rtol=1e-6, atol=1e-6)
    perm = np.random.default_rng(0).permutation(len(E_test))
    np.testing.assert_allclose(model.decision_function(E_test[perm]), first[perm], rtol=1e-6, atol=1e-6)

    # dict_unchanged: prediction does not modify the fitted estimator.
    before = {key: value for key, value in vars(model).items() if not key.endswith("_")}
    model.predict_proba(E_test)
    assert {key: value for key, value in vars(model).items() if not key.endswith("_")} == before


def test_per_ensemble_3d_n_features_in_and_dtypes(ensembles):
    E_train, y_train, E_test, _ = ensembles
    model = _small_3d("deepsets").fit(E_train, y_train)
    # n_features_in_ counts features per event, not events per ensemble.
    assert model.n_features_in_ == E_train.shape[2] == 2
    assert model.ensemble_size_ == 4
    with pytest.raises(ValueError, match="features per event"):
        model.predict(E_test[:, :, :1])
    # estimators_dtypes: float32 and int ensembles are accepted and agree with float64.
    reference = model.decision_function(E_test)
    np.testing.assert_allclose(model.decision_function(E_test.astype(np.float32)), reference, atol=1e-5)
    rounded = np.round(E_test).astype(np.int64)
    np.testing.assert_allclose(model.decision_function(rounded), model.decision_function(rounded * 1.0))
    # fit_score_takes_y / score on 3-D: accuracy of the ensemble labels.
    assert 0.0 <= model.score(E_test, ensembles[3]) <= 1.0


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_per_ensemble_not_fitted_errors(architecture, ensembles):
    model = _small_3d(architecture)
    E_test = ensembles[2]
    for method in ("predict", "predict_proba", "decision_function", "predict_log_proba",
                   "predict_ensemble_proba", "predict_ensemble_log_ratio"):
        with pytest.raises(NotFittedError):
            getattr(model, method)(E_test)


def test_per_ensemble_2d_predict_explains_3d_convention(ensembles):
    model = _small_3d("deepsets").fit(ensembles[0], ensembles[1])
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(ValueError, match=r"3-D array of shape \(n_ensembles, ensemble_size"):
            getattr(model, method)(ensembles[2][:, 0, :])
