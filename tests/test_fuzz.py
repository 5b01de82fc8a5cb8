"""Fuzz every public method with random shapes, dtypes and values.

Whatever the input, a call either returns a result without NaN or raises a
ValueError / TypeError whose message says something; never an error from inside
torch or numpy of another type, and never a silent NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ensemblelr import (
    BaggedPerInstanceClassifier,
    CalibratedLogRatio,
    EnsembleLogRatio,
    LogRatioTransformer,
    PerEnsembleClassifier,
    PerInstanceClassifier,
    ensemble_scorer,
    log_ratio_to_proba,
    make_ensembles,
    make_mixture_ensembles,
    mutual_information,
)

N_FEATURES = 2
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8, bool, np.complex128, object]
SPECIAL = [0.0, 1.0, -1.0, 0.5, np.nan, np.inf, -np.inf, 1e300, -1e300, 1e39, -1e39, 1e-320, 3.0e38]


@st.composite
def any_array(draw, feature_dim: int | None = N_FEATURES):
    """Random array: 0-4 dimensions, small sizes (last axis often the model's width)."""
    ndim = draw(st.integers(0, 4))
    shape = [draw(st.integers(0, 4)) for _ in range(ndim)]
    if ndim and feature_dim is not None and draw(st.booleans()):
        shape[-1] = feature_dim
    size = int(np.prod(shape)) if shape else 1
    dtype = draw(st.sampled_from(DTYPES))
    element = st.one_of(st.sampled_from(SPECIAL), st.floats(-10, 10, allow_nan=False))
    values = draw(st.lists(element, min_size=size, max_size=size))
    array = np.asarray(values, dtype=np.float64).reshape(shape)
    if dtype is object:
        kind = draw(st.sampled_from(["numbers", "strings", "mixed"]))
        array = array.astype(object)
        if kind == "strings" and size:
            array.flat[0] = "x"
        elif kind == "mixed" and size:
            array.flat[0] = None
        return array
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return array.astype(dtype)


def check_call(function, *args, **kwargs):
    """Run ``function``; accept a NaN-free result or a ValueError/TypeError with a message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = function(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            return None
    values = result[0] if isinstance(result, tuple) else result
    values = np.asarray(values)
    if values.dtype.kind in "fc":
        assert not np.isnan(values).any(), f"{function} returned NaN"
    return result


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    n = 400
    X = np.concatenate([rng.normal(0.5, 1, (n, N_FEATURES)), rng.normal(-0.5, 1, (n, N_FEATURES))])
    y = np.repeat([1, 0], n)
    tiny = dict(max_epochs=1, early_stopping=False, random_state=0)
    per_instance = PerInstanceClassifier(hidden_layer_sizes=(4,), **tiny).fit(X, y)
    E, y_ens = X.reshape(-1, 4, N_FEATURES), y[::4]
    models = {
        "per_instance": per_instance,
        "calibrated": CalibratedLogRatio(per_instance, method="isotonic", prefit=True).fit(X, y),
        "bagged": BaggedPerInstanceClassifier(PerInstanceClassifier(hidden_layer_sizes=(4,), **tiny),
                                              n_estimators=2, random_state=0).fit(X, y),
    }
    ensemble_models = {
        arch: PerEnsembleClassifier(architecture=arch, hidden_layer_sizes=(4,), Phi_sizes=(4,), F_sizes=(4,),
                                    **tiny).fit(E, y_ens)
        for arch in ("deepsets", "dense", "logratio_sum", "sorted")
    }
    return _Fitted(events=models, ensembles=ensemble_models)


class _Fitted(dict):
    """The module's fitted models; a short repr keeps hypothesis reports readable."""

    def __repr__(self) -> str:
        return "<fitted models>"


EVENT_METHODS = ("decision_function", "predict_proba", "predict_log_proba", "predict")


@FUZZ
@given(X=any_array())
def test_event_methods(fitted, X):
    for model in fitted["events"].values():
        for method in EVENT_METHODS:
            check_call(getattr(model, method), X)


@FUZZ
@given(E=any_array(), mask=st.one_of(st.none(), any_array(feature_dim=None)),
       prior=st.sampled_from([0.5, 0.01, 0.0, 1.0, -1.0, np.nan, 2, "a", None]))
def test_ensemble_methods(fitted, E, mask, prior):
    models = list(fitted["events"].values()) + list(fitted["ensembles"].values())
    for model in models:
        check_call(model.predict_ensemble_log_ratio, E, mask=mask)
        check_call(model.predict_ensemble_proba, E, prior=prior, mask=mask)
    for model in fitted["ensembles"].values():
        for method in EVENT_METHODS:
            check_call(getattr(model, method), E, mask=mask)


@FUZZ
@given(values=any_array(feature_dim=None), prior=st.sampled_from([0.5, 1e-300, 0.0, 1.0, np.nan, "x", 0.3]))
def test_logratio_functions_and_transformers(values, prior):
    check_call(log_ratio_to_proba, values, prior=prior)
    for kind in ("proba", "logit"):
        transformer = LogRatioTransformer(prior=prior, input=kind)
        if check_call(transformer.fit, values) is not None:
            check_call(transformer.transform, values)
            check_call(transformer.inverse_transform, values)
    summed = EnsembleLogRatio(ensemble_size=2)
    if check_call(summed.fit, values) is not None:
        check_call(summed.transform, values)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(X=any_array(), y=any_array(feature_dim=None), size=st.sampled_from([1, 2, 0, -1, 2.5, None]))
def test_fit_and_grouping(fitted, X, y, size):
    tiny = dict(max_epochs=1, early_stopping=False, random_state=0, batch_size=4)
    check_call(PerInstanceClassifier(hidden_layer_sizes=(2,), **tiny).fit, X, y)
    check_call(PerEnsembleClassifier(architecture="deepsets", Phi_sizes=(2,), F_sizes=(2,),
                                     ensemble_size=size, **tiny).fit, X, y)
    check_call(BaggedPerInstanceClassifier(PerInstanceClassifier(hidden_layer_sizes=(2,), **tiny),
                                           n_estimators=1).fit, X, y)
    check_call(CalibratedLogRatio(fitted["events"]["per_instance"], prefit=True).fit, X, y)
    check_call(make_ensembles, X, y, size)
    check_call(make_mixture_ensembles, X, X, size, 0.5, n_ensembles=2, replace=True)
    check_call(ensemble_scorer(ensemble_size=2, random_state=0), fitted["events"]["per_instance"], X, y)
    check_call(mutual_information, X, y, PerInstanceClassifier(hidden_layer_sizes=(2,), **tiny),
               method="label", random_state=0)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    n=st.integers(2, 12),
    data=st.data(),
    weighted=st.booleans(),
)
def test_fit_on_valid_shapes_with_odd_values(n, data, weighted):
    element = st.one_of(st.sampled_from(SPECIAL), st.floats(-1e6, 1e6, allow_nan=False))
    X = np.asarray(data.draw(st.lists(element, min_size=2 * n, max_size=2 * n))).reshape(n, 2)
    y = np.asarray(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    weight = np.asarray(data.draw(st.lists(st.floats(0, 3), min_size=n, max_size=n))) if weighted else None
    tiny = dict(max_epochs=2, early_stopping=False, random_state=0, batch_size=4)
    for model in (
        PerInstanceClassifier(hidden_layer_sizes=(2,), **tiny),
        PerInstanceClassifier(hidden_layer_sizes=(2,), loss="mlc", **tiny),
        PerEnsembleClassifier(architecture="logratio_sum", hidden_layer_sizes=(2,), ensemble_size=1, **tiny),
    ):
        if check_call(model.fit, X, y, sample_weight=weight) is not None:
            events = isinstance(model, PerInstanceClassifier)
            check_call(model.decision_function, X if events else X[:, None])
            # A fit that succeeded left a usable model: ordinary events give finite log ratios.
            ordinary = np.zeros((3, 2)) if events else np.zeros((3, 1, 2))
            assert np.isfinite(model.decision_function(ordinary)).all()
