"""Bad input: every case listed in issue 2 raises a ValueError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from ensemblelr import (
    EnsembleLogRatio,
    LogRatioTransformer,
    PerEnsembleClassifier,
    PerInstanceClassifier,
    ensemble_scorer,
    make_ensembles,
)
from ensemblelr._validation import (
    check_binary_labels,
    check_ensembles,
    check_fraction,
    check_labels_1d,
    check_layer_sizes,
    check_positive_int,
    check_sample_weight,
)

TINY = dict(max_epochs=1, early_stopping=False, random_state=0)
TINY_NET = dict(hidden_layer_sizes=(4,), Phi_sizes=(4,), F_sizes=(4,))
ENSEMBLE_3D = r"3-D array of shape \(n_ensembles, ensemble_size, n_features\)"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = np.arange(200) % 2
    return X, y


@pytest.fixture(scope="module")
def per_instance(data):
    return PerInstanceClassifier(hidden_layer_sizes=(4,), **TINY).fit(*data)


@pytest.fixture(scope="module")
def per_ensemble(data):
    X, y = data
    return {
        arch: PerEnsembleClassifier(arch, ensemble_size=5, **TINY_NET, **TINY).fit(X, y)
        for arch in ("dense", "deepsets", "logratio_sum")
    }


def _with(X, value, index=(3, 1)):
    X = np.array(X, dtype=float)
    X[index] = value
    return X


MAKERS = {
    "per_instance": lambda: PerInstanceClassifier(**TINY),
    "per_ensemble": lambda: PerEnsembleClassifier(ensemble_size=2, **TINY),
}
each_estimator = pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))


# -------------------------------------------------------------- NaN and inf
@each_estimator
@pytest.mark.parametrize("value, message", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_fit_rejects_nan_and_inf(data, make, value, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        make().fit(_with(X, value), y)


@pytest.mark.parametrize("value, message", [(np.nan, "NaN"), (np.inf, "infinity")])
def test_predict_rejects_nan_and_inf(data, per_instance, value, message):
    X, _ = data
    for method in ("decision_function", "predict_proba", "predict", "predict_log_proba"):
        with pytest.raises(ValueError, match=message):
            getattr(per_instance, method)(_with(X, value))


def test_ensembles_reject_partial_nan_and_inf(per_instance, per_ensemble):
    E = np.zeros((3, 5, 2))
    partial = _with(E, np.nan, (1, 2, 0))
    infinite = _with(E, np.inf, (1, 2, 0))
    y = np.array([0, 1, 0])
    for method in (per_instance.predict_ensemble_log_ratio, per_ensemble["deepsets"].decision_function):
        with pytest.raises(ValueError, match="NaN in event 2 of ensemble 1 that is not a fully padded row"):
            method(partial)
        with pytest.raises(ValueError, match="infinite values"):
            method(infinite)
    with pytest.raises(ValueError, match="not a fully padded row"):
        PerEnsembleClassifier(**TINY).fit(partial, y)
    with pytest.raises(ValueError, match="infinite values"):
        PerEnsembleClassifier(**TINY).fit(infinite, y)


def test_nan_in_labels_and_weights(data):
    X, y = data
    with pytest.raises(ValueError, match="NaN"):
        PerInstanceClassifier(**TINY).fit(X, _with(y, np.nan, 3))
    with pytest.raises(ValueError, match="sample_weight contains NaN or infinite"):
        PerInstanceClassifier(**TINY).fit(X, y, sample_weight=_with(np.ones(200), np.nan, 3))


# ------------------------------------------------------------------- labels
@each_estimator
def test_y_of_another_length(data, make):
    X, y = data
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[200, 199\]"):
        make().fit(X, y[:-1])


def test_y_of_another_length_for_ensembles():
    with pytest.raises(ValueError, match="y has 3 entries but the data has 4"):
        PerEnsembleClassifier(**TINY).fit(np.zeros((4, 2, 1)), [0, 1, 0])
    with pytest.raises(ValueError, match=r"y must have shape \(n,\) or \(n, 1\)"):
        PerEnsembleClassifier(**TINY).fit(np.zeros((4, 2, 1)), np.zeros((4, 2)))


@each_estimator
def test_labels_must_be_two_classes(data, make):
    X, _ = data
    with pytest.raises(ValueError, match=r"contains 3 classes"):
        make().fit(X, np.arange(200) % 3)
    with pytest.raises(ValueError, match=r"only one class"):
        make().fit(X, np.ones(200))
    with pytest.raises(ValueError, match=r"continuous"):
        make().fit(X, np.linspace(0, 1, 200))


def test_label_checks_for_ensembles():
    E = np.zeros((6, 2, 1))
    with pytest.raises(ValueError, match="only one class"):
        PerEnsembleClassifier(**TINY).fit(E, np.zeros(6))
    with pytest.raises(ValueError, match="contains 3 classes"):
        PerEnsembleClassifier(**TINY).fit(E, np.arange(6) % 3)


# ------------------------------------------------------------------- empty
def test_empty_arrays(per_instance, per_ensemble):
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        PerInstanceClassifier(**TINY).fit(np.empty((0, 2)), np.empty(0))
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        PerInstanceClassifier(**TINY).fit(np.empty((5, 0)), np.arange(5) % 2)
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        PerEnsembleClassifier(ensemble_size=2, **TINY).fit(np.empty((0, 2)), np.empty(0))
    with pytest.raises(ValueError, match="is empty"):
        PerEnsembleClassifier(**TINY).fit(np.empty((0, 3, 2)), np.empty(0))
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        per_instance.decision_function(np.empty((0, 2)))
    for empty in (np.empty((0, 5, 2)), np.empty((3, 0, 2)), np.empty((3, 5, 0))):
        with pytest.raises(ValueError, match="is empty"):
            per_instance.predict_ensemble_log_ratio(empty)
        with pytest.raises(ValueError, match="is empty"):
            per_ensemble["deepsets"].decision_function(empty)
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        make_ensembles(np.empty((0, 2)), np.empty(0), 2)


# ------------------------------------------------------- number of features
def test_wrong_number_of_features_at_predict(per_instance, per_ensemble):
    with pytest.raises(ValueError, match="X has 3 features, but PerInstanceClassifier is expecting 2"):
        per_instance.decision_function(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="has 1 features per event, but the estimator was fitted with 2"):
        per_instance.predict_ensemble_log_ratio(np.zeros((4, 5, 1)))
    for model in per_ensemble.values():
        with pytest.raises(ValueError, match="has 3 features per event, but the estimator was fitted with 2"):
            model.decision_function(np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match="X has 1 features, but PerInstanceClassifier is expecting 2"):
        per_ensemble["logratio_sum"].per_instance_.decision_function(np.zeros((4, 1)))


# ----------------------------------------------------------- dimensionality
def test_3d_input_to_per_event_methods(per_instance, per_ensemble):
    E = np.zeros((4, 5, 2))
    models = [per_instance, per_ensemble["logratio_sum"].per_instance_]
    for model in models:
        for method in ("decision_function", "predict_proba", "predict", "predict_log_proba"):
            with pytest.raises(ValueError, match=r"per-event methods take events of shape \(n_events"):
                getattr(model, method)(E)
    with pytest.raises(ValueError, match="dim 3"):
        PerInstanceClassifier(**TINY).fit(E, np.arange(4) % 2)


def test_2d_input_to_ensemble_methods(data, per_instance, per_ensemble):
    X, _ = data
    with pytest.raises(ValueError, match=ENSEMBLE_3D):
        per_instance.predict_ensemble_log_ratio(X)
    with pytest.raises(ValueError, match=ENSEMBLE_3D):
        per_instance.predict_ensemble_proba(X)
    methods = (
        "decision_function", "predict_proba", "predict", "predict_log_proba",
        "predict_ensemble_proba", "predict_ensemble_log_ratio",
    )
    for model in per_ensemble.values():
        for method in methods:
            with pytest.raises(ValueError, match="E has 2 dimension"):
                getattr(model, method)(X)
        with pytest.raises(ValueError, match=ENSEMBLE_3D):
            model.decision_function(X[0])


# ------------------------------------------------------------ ensemble_size
@pytest.mark.parametrize("size", [0, -1, 2.5, True, "10"])
def test_non_positive_ensemble_size(data, size):
    X, y = data
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        PerEnsembleClassifier(ensemble_size=size, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        make_ensembles(X, y, size)
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        EnsembleLogRatio(ensemble_size=size).fit(np.zeros(4))
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        ensemble_scorer(ensemble_size=size)


def test_too_large_ensemble_size(data):
    X, y = data
    with pytest.raises(ValueError, match="ensemble_size=101 is larger than the 100 events of the smaller"):
        PerEnsembleClassifier(ensemble_size=101, **TINY).fit(X, y)
    with pytest.raises(ValueError, match="ensemble_size=101 is larger than the 100 events of class"):
        make_ensembles(X, y, 101)
    with pytest.raises(ValueError, match="ensemble_size=4 but the ensembles have 5 events"):
        PerEnsembleClassifier(ensemble_size=4, **TINY).fit(np.zeros((4, 5, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="ensemble_size must be set to fit on 2-D events"):
        PerEnsembleClassifier(**TINY).fit(X, y)


# -------------------------------------------------------------- parameters
@pytest.mark.parametrize("sizes", [(0,), (-4,), (16, 0), (8, 2.5), ("a",), "abc", None])
def test_non_positive_layer_sizes(data, sizes):
    X, y = data
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        PerInstanceClassifier(hidden_layer_sizes=sizes, **TINY).fit(X, y)
    for name in ("hidden_layer_sizes", "Phi_sizes", "F_sizes"):
        with pytest.raises(ValueError, match=name):
            PerEnsembleClassifier(ensemble_size=2, **{name: sizes}, **TINY).fit(X, y)


def test_empty_phi_sizes(data):
    with pytest.raises(ValueError, match="Phi_sizes must contain at least one layer size"):
        PerEnsembleClassifier(ensemble_size=2, Phi_sizes=(), **TINY).fit(*data)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(activation="sigmoid_ish"), r"activation must be one of \['elu'"),
        (dict(activation=None), "activation must be one of"),
        (dict(loss="hinge"), "loss must be 'bce' or 'mlc', got 'hinge'"),
        (dict(lr=0.0), "lr must be a positive number"),
        (dict(lr=-1e-3), "lr must be a positive number"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(max_epochs=0), "max_epochs must be a positive integer"),
        (dict(n_iter_no_change=0), "n_iter_no_change must be a positive integer"),
        (dict(validation_fraction=0.0), r"validation_fraction must lie in \(0, 1\)"),
        (dict(validation_fraction=1.0), r"validation_fraction must lie in \(0, 1\)"),
        (dict(device="tpu:banana"), "device must be 'cpu', 'cuda' or 'cuda:N'"),
        (dict(verbose="loud"), "verbose must be an integer"),
    ],
)
def test_per_instance_parameter_errors(data, params, message):
    with pytest.raises(ValueError, match=message):
        PerInstanceClassifier(**{**TINY, **params}).fit(*data)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(architecture="transformer"), r"architecture must be one of \('dense', 'sorted', 'deepsets'"),
        (dict(architecture=None), "architecture must be one of"),
        (dict(activation="swish2"), "activation must be one of"),
        (dict(pooling="max"), "pooling must be 'sum' or 'mean', got 'max'"),
        (dict(latent_dropout=1.0), r"latent_dropout must lie in \[0, 1\)"),
        (dict(latent_dropout=-0.1), r"latent_dropout must lie in \[0, 1\)"),
        (dict(lr=0), "lr must be a positive number"),
    ],
)
def test_per_ensemble_parameter_errors(data, params, message):
    with pytest.raises(ValueError, match=message):
        PerEnsembleClassifier(ensemble_size=2, **{**TINY, **params}).fit(*data)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        PerInstanceClassifier(hidden_layers=(3,))


# ------------------------------------------------------------ sample weight
@pytest.mark.parametrize(
    "weight, message",
    [
        (-np.ones(200), "sample_weight must be non-negative"),
        (np.ones(199), r"sample_weight must have shape \(200,\)"),
        (np.zeros(200), "sample_weight sums to zero"),
        (np.where(np.arange(200) % 2 == 1, 0.0, 1.0), "sample_weight is zero for every event of class 1"),
    ],
)
@each_estimator
def test_sample_weight_errors(data, make, weight, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        make().fit(X, y, sample_weight=weight)


# ----------------------------------------------------------- probabilities
@pytest.mark.parametrize("bad", [-0.01, 1.01, 5.0])
def test_probabilities_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        LogRatioTransformer().fit_transform(np.array([[0.2], [bad]]))


@pytest.mark.parametrize("prior", [0.0, 1.0, -0.5, 1.5, np.nan])
def test_prior_outside_open_unit_interval(per_instance, per_ensemble, prior):
    E = np.zeros((2, 5, 2))
    with pytest.raises(ValueError, match="prior must"):
        per_instance.predict_ensemble_proba(E, prior=prior)
    with pytest.raises(ValueError, match="prior must"):
        per_ensemble["deepsets"].predict_ensemble_proba(E, prior=prior)
    with pytest.raises(ValueError, match="prior must"):
        LogRatioTransformer(prior=prior).fit([[0.5]])


# --------------------------------------------------------------------- mask
def test_mask_errors(per_instance):
    E = np.zeros((3, 5, 2))
    with pytest.raises(ValueError, match=r"mask must have shape \(3, 5\)"):
        per_instance.predict_ensemble_log_ratio(E, mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="mask must be boolean"):
        per_instance.predict_ensemble_log_ratio(E, mask=np.full((3, 5), 0.5))
    with pytest.raises(ValueError, match="ensemble 1 has no events"):
        per_instance.predict_ensemble_log_ratio(E, mask=np.arange(3)[:, None] != 1 + np.zeros((1, 5)))


# ----------------------------------------------------------------- helpers
def test_helpers_accept_valid_input():
    assert check_positive_int(3, "n") == 3
    assert check_positive_int(np.int64(2), "n") == 2
    assert check_positive_int(None, "n", allow_none=True) is None
    assert check_layer_sizes(5, "sizes") == (5,)
    assert check_layer_sizes([3, np.int32(4)], "sizes") == (3, 4)
    assert check_fraction(0.0, "f", low_open=False) == 0.0
    classes, y01 = check_binary_labels(np.array([3, 7, 7]))
    np.testing.assert_array_equal(classes, [3, 7])
    np.testing.assert_array_equal(y01, [0.0, 1.0, 1.0])
    assert check_labels_1d(np.zeros((4, 1)), 4).shape == (4,)
    np.testing.assert_array_equal(check_sample_weight(None, 3), np.ones(3))
    np.testing.assert_array_equal(check_sample_weight(2.0, 3), np.full(3, 2.0))


def test_check_ensembles_returns_mask_and_zeroed_padding():
    E = np.ones((2, 3, 1))
    E[0, 2] = np.nan
    checked, mask = check_ensembles(E)
    np.testing.assert_array_equal(mask, [[True, True, False], [True, True, True]])
    assert checked[0, 2, 0] == 0.0
    assert np.isnan(E[0, 2, 0])  # the caller's array is untouched
    full, no_mask = check_ensembles(np.ones((2, 3, 1), dtype=np.float32))
    assert no_mask is None and full.dtype == np.float32
    with pytest.raises(ValueError, match="padded events, but this model needs complete ensembles"):
        check_ensembles(E, allow_padding=False)
    with pytest.raises(TypeError, match="sparse input is not supported"):
        import scipy.sparse

        check_ensembles(scipy.sparse.csr_matrix(np.ones((2, 2))))
    with pytest.raises(ValueError, match="must be real-valued"):
        check_ensembles(np.ones((1, 2, 1), dtype=complex))
    with pytest.raises(ValueError, match="E must be numeric"):
        check_ensembles(np.array([[["a"]]], dtype=object))


@pytest.mark.parametrize("value", [0, -2, 1.5, True, None, "3"])
def test_check_positive_int_rejects(value):
    with pytest.raises(ValueError, match="n_things must be a positive integer"):
        check_positive_int(value, "n_things")


@pytest.mark.parametrize("value", [0.0, 1.0, -0.1, np.nan, np.inf, "0.5", True])
def test_check_fraction_rejects(value):
    with pytest.raises(ValueError, match="frac must"):
        check_fraction(value, "frac")
