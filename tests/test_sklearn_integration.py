"""The estimators inside scikit-learn's tools: pipelines, searches, calibration, persistence."""

from __future__ import annotations

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import DataConversionWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ensemblelr import PerEnsembleClassifier, PerInstanceClassifier, ensemble_scorer, make_ensembles

FAST = dict(hidden_layer_sizes=(8,), max_epochs=5, lr=1e-2, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def events():
    """800 + 800 events of N(+-0.5, 1) in 2 features; the exact log ratio is x_0 + x_1."""
    rng = np.random.default_rng(2)
    n = 800
    X = np.concatenate([rng.normal(0.5, 1, (n, 2)), rng.normal(-0.5, 1, (n, 2))])
    y = np.repeat([1, 0], n)
    return X, y


def _ensembles_of(X, size=10):
    return X[: len(X) // size * size].reshape(-1, size, X.shape[1])


# -------------------------------------------------------------------- pipeline


def test_pipeline_with_scaler(events):
    X, y = events
    # Features on very different scales; the scaler (not the net's own) evens them.
    X_scaled = X * np.array([1e3, 1e-3])
    pipe = make_pipeline(StandardScaler(), PerInstanceClassifier(**FAST, standardize=False))
    pipe.fit(X_scaled, y)
    assert pipe.score(X_scaled, y) > 0.65  # Bayes accuracy is Phi(0.5 * sqrt(2)) = 0.76
    assert pipe.predict_proba(X_scaled).shape == (len(X), 2)
    params = pipe.get_params()
    assert params["perinstanceclassifier__hidden_layer_sizes"] == (8,)
    pipe.set_params(perinstanceclassifier__optimizer__weight_decay=0.5)
    assert pipe.get_params()["perinstanceclassifier__optimizer__weight_decay"] == 0.5
    pipe.fit(X_scaled, y)
    assert pipe[-1].net_.optimizer_.param_groups[0]["weight_decay"] == 0.5


# ------------------------------------------------------------------ grid search


def test_grid_search_parallel_over_hidden_sizes(events):
    X, y = events
    grid = {"hidden_layer_sizes": [(4,), (8, 8)]}
    search = GridSearchCV(PerInstanceClassifier(**FAST), grid, cv=2, n_jobs=2).fit(X, y)
    assert [p["hidden_layer_sizes"] for p in search.cv_results_["params"]] == [(4,), (8, 8)]
    assert np.all(search.cv_results_["mean_test_score"] > 0.65)
    # Workers run the same seeded fits as the parent process would.
    serial = GridSearchCV(PerInstanceClassifier(**FAST), grid, cv=2, n_jobs=1).fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(search.cv_results_[key], serial.cv_results_[key])
    np.testing.assert_array_equal(search.predict_proba(X), serial.predict_proba(X))


def test_grid_search_training_ensemble_size_at_fixed_evaluation_size(events):
    X, y = events
    scorer = ensemble_scorer(ensemble_size=10, random_state=0)
    model = PerEnsembleClassifier(
        architecture="logratio_sum", hidden_layer_sizes=(8,), max_epochs=10, lr=1e-2, batch_size=32,
        random_state=0,
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(model, {"ensemble_size": [1, 3, 10]}, scoring=scorer, cv=cv).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    # Ensembles of 10 events with a per-event separation of sqrt(2): the exact
    # ensemble log ratio reaches an AUC of Phi(sqrt(10)) = 0.9992.
    assert scores.shape == (3,)
    assert np.all(scores > 0.95), scores
    assert search.best_estimator_.ensemble_size_ == search.best_params_["ensemble_size"]

    # A per-event classifier is scored the same way, on the same folds and ensembles.
    per_instance = cross_val_score(PerInstanceClassifier(**FAST), X, y, scoring=scorer, cv=cv)
    assert np.all(per_instance > 0.95), per_instance


def test_ensemble_scorer_matches_manual_scoring(events):
    X, y = events
    model = PerInstanceClassifier(**FAST).fit(X, y)
    score = ensemble_scorer(ensemble_size=10, random_state=0)(model, X, y)
    E, y_ens = make_ensembles(X, y, 10, random_state=0)
    from sklearn.metrics import roc_auc_score

    assert score == pytest.approx(roc_auc_score(y_ens, model.predict_ensemble_proba(E)[:, 1]))


# ------------------------------------------------------------------ calibration


def test_calibrated_classifier_cv(events):
    X, y = events
    calibrated = CalibratedClassifierCV(PerInstanceClassifier(**FAST), cv=3).fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # The exact posterior for equal priors is sigmoid(x_0 + x_1).
    exact = 1 / (1 + np.exp(-(X[:, 0] + X[:, 1])))
    assert np.mean(np.abs(proba[:, 1] - exact)) < 0.1
    assert len(calibrated.calibrated_classifiers_) == 3


# ------------------------------------------------------------------ persistence


def _roundtrips(model, tmp_path):
    yield pickle.loads(pickle.dumps(model))
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    yield joblib.load(path)


def test_pickle_and_joblib_per_instance(events, tmp_path):
    X, y = events
    model = PerInstanceClassifier(**FAST).fit(X, y)
    E = _ensembles_of(X)
    for restored in _roundtrips(model, tmp_path):
        np.testing.assert_array_equal(restored.predict_proba(X), model.predict_proba(X))
        np.testing.assert_array_equal(restored.decision_function(X), model.decision_function(X))
        np.testing.assert_array_equal(
            restored.predict_ensemble_log_ratio(E), model.predict_ensemble_log_ratio(E)
        )
        assert restored.n_epochs_ == model.n_epochs_


@pytest.mark.parametrize("architecture", ["deepsets", "logratio_sum"])
def test_pickle_and_joblib_per_ensemble(architecture, events, tmp_path):
    X, y = events
    model = PerEnsembleClassifier(
        architecture=architecture, ensemble_size=5, Phi_sizes=(8,), F_sizes=(8,), **FAST
    ).fit(X, y)
    E = _ensembles_of(X)
    for restored in _roundtrips(model, tmp_path):
        np.testing.assert_array_equal(restored.predict_proba(E), model.predict_proba(E))
        np.testing.assert_array_equal(restored.decision_function(E), model.decision_function(E))
        if architecture == "logratio_sum":
            np.testing.assert_array_equal(
                restored.per_instance_.decision_function(X), model.per_instance_.decision_function(X)
            )


def test_pickle_and_joblib_extracted_per_instance(events, tmp_path):
    X, y = events
    model = PerEnsembleClassifier(architecture="logratio_sum", ensemble_size=5, **FAST).fit(X, y)
    per_instance = model.per_instance_
    for restored in _roundtrips(per_instance, tmp_path):
        np.testing.assert_array_equal(restored.decision_function(X), per_instance.decision_function(X))
        np.testing.assert_array_equal(restored.predict_proba(X), per_instance.predict_proba(X))


# ------------------------------------------------------------- reproducibility


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: PerInstanceClassifier(**{**FAST, "random_state": seed}),
        lambda seed: PerEnsembleClassifier(
            architecture="deepsets", ensemble_size=5, Phi_sizes=(8,), F_sizes=(8,),
            **{**FAST, "random_state": seed},
        ),
    ],
    ids=["per_instance", "per_ensemble"],
)
def test_random_state_reproducibility(make, events):
    X, y = events
    inputs = X if isinstance(make(0), PerInstanceClassifier) else _ensembles_of(X)
    first = make(7).fit(X, y).decision_function(inputs)
    np.testing.assert_array_equal(make(7).fit(X, y).decision_function(inputs), first)
    # A fresh RandomState(7) draws the same seed as the integer 7 ...
    from_state = make(np.random.RandomState(7))
    np.testing.assert_array_equal(from_state.fit(X, y).decision_function(inputs), first)
    # ... and, as in sklearn, a refit continues its stream and gives another model.
    assert not np.allclose(from_state.fit(X, y).decision_function(inputs), first)
    assert not np.allclose(make(8).fit(X, y).decision_function(inputs), first)


def test_fit_does_not_touch_global_torch_rng(events):
    import torch

    X, y = events
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    PerInstanceClassifier(**FAST).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


# ------------------------------------------------------------------ label types


@pytest.mark.parametrize(
    "convert",
    [
        lambda y: y.astype(np.int64),
        lambda y: y.astype(bool),
        lambda y: y.astype(np.float32),
        lambda y: y.astype(np.float64)[:, None],
        lambda y: y.astype(bool)[:, None],
    ],
    ids=["int", "bool", "float32", "float_column", "bool_column"],
)
def test_label_types_give_identical_models(convert, events):
    X, y = events
    reference = PerInstanceClassifier(**FAST).fit(X, y)
    y_converted = convert(y)
    with warnings.catch_warnings():
        # sklearn's usual nudge for (n, 1) labels; the column is accepted.
        warnings.simplefilter("ignore", DataConversionWarning)
        model = PerInstanceClassifier(**FAST).fit(X, y_converted)
        ensemble = PerEnsembleClassifier(
            architecture="logratio_sum", ensemble_size=4, **FAST
        ).fit(X, y_converted)
    np.testing.assert_array_equal(model.decision_function(X), reference.decision_function(X))
    labels = np.unique(y_converted)
    np.testing.assert_array_equal(model.classes_, labels)
    predicted = model.predict(X)
    assert predicted.dtype == labels.dtype
    assert set(np.unique(predicted)) <= set(labels)
    np.testing.assert_array_equal(ensemble.classes_, labels)
    assert ensemble.predict(_ensembles_of(X, 4)).dtype == labels.dtype


def test_ensemble_labels_as_column(events):
    X, y = events
    E, y_ens = make_ensembles(X, y, 4, random_state=0)
    model = PerEnsembleClassifier(architecture="deepsets", Phi_sizes=(8,), F_sizes=(8,), **FAST)
    flat = clone(model).fit(E, y_ens).decision_function(E)
    column = clone(model).fit(E, y_ens.astype(float)[:, None]).decision_function(E)
    np.testing.assert_array_equal(flat, column)


# ---------------------------------------------------------------------- pandas


def test_dataframe_input_keeps_feature_names(events):
    X, y = events
    frame = pd.DataFrame(X, columns=["mjj", "mj1"])
    model = PerInstanceClassifier(**FAST).fit(frame, pd.Series(y, name="label"))
    np.testing.assert_array_equal(model.feature_names_in_, ["mjj", "mj1"])
    assert model.n_features_in_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same names: no warning
        from_frame = model.decision_function(frame)
    np.testing.assert_allclose(from_frame, PerInstanceClassifier(**FAST).fit(X, y).decision_function(X))
    with pytest.raises(ValueError, match="feature names"):
        model.decision_function(frame.rename(columns={"mj1": "tau21"}))
    with pytest.warns(UserWarning, match="feature names"):
        model.decision_function(X)

    pipe = Pipeline([("scale", StandardScaler()), ("clf", PerInstanceClassifier(**FAST))]).fit(frame, y)
    np.testing.assert_array_equal(pipe.feature_names_in_, ["mjj", "mj1"])
    assert pipe.predict_proba(frame).shape == (len(frame), 2)

    ensemble = PerEnsembleClassifier(architecture="logratio_sum", ensemble_size=4, **FAST).fit(frame, y)
    np.testing.assert_array_equal(ensemble.feature_names_in_, ["mjj", "mj1"])
    assert ensemble.decision_function(_ensembles_of(X, 4)).shape == (len(X) // 4,)
