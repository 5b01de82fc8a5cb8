"""LogRatioTransformer and EnsembleLogRatio."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from ensemblelr import EnsembleLogRatio, LogRatioTransformer


# ------------------------------------------------------- LogRatioTransformer
@pytest.mark.parametrize("shape", ["1d", "column", "predict_proba"])
def test_probabilities_to_log_ratio(shape):
    p = np.array([0.1, 0.5, 0.8, 0.999])
    X = {"1d": p, "column": p[:, None], "predict_proba": np.stack([1 - p, p], axis=1)}[shape]
    out = LogRatioTransformer().fit_transform(X)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out[:, 0], logit(p), rtol=1e-10)


@pytest.mark.parametrize("prior", [0.1, 0.5, 0.9])
def test_prior_offset(prior):
    # A classifier trained with signal fraction `prior` outputs sigmoid(log LR + log odds).
    log_ratio = np.linspace(-5, 5, 11)
    p = expit(log_ratio + np.log(prior / (1 - prior)))
    out = LogRatioTransformer(prior=prior).fit_transform(p)
    np.testing.assert_allclose(out[:, 0], log_ratio, atol=1e-9)
    out = LogRatioTransformer(prior=prior, input="logit").fit_transform(logit(p))
    np.testing.assert_allclose(out[:, 0], log_ratio, atol=1e-9)


@pytest.mark.parametrize("input_kind", ["proba", "logit"])
@pytest.mark.parametrize("prior", [0.2, 0.5])
def test_inverse_transform_round_trip(input_kind, prior):
    rng = np.random.default_rng(0)
    log_ratio = rng.normal(0, 3, size=(50, 1))
    transformer = LogRatioTransformer(prior=prior, input=input_kind).fit(np.full((1, 1), 0.5))
    forward = transformer.inverse_transform(log_ratio)
    assert forward.shape == (50, 1)
    if input_kind == "proba":
        assert ((forward > 0) & (forward < 1)).all()
    np.testing.assert_allclose(transformer.transform(forward), log_ratio, atol=1e-8)
    # And the other way round, starting from probabilities.
    p = rng.uniform(0.01, 0.99, size=(50, 1))
    if input_kind == "proba":
        np.testing.assert_allclose(transformer.inverse_transform(transformer.transform(p)), p, rtol=1e-10)


def test_inverse_transform_of_huge_log_ratios_is_finite():
    transformer = LogRatioTransformer().fit([[0.5]])
    out = transformer.inverse_transform(np.array([[1e4], [-1e4]]))
    np.testing.assert_array_equal(out, [[1.0], [0.0]])


def test_saturated_probabilities_are_clipped_with_warning():
    with pytest.warns(RuntimeWarning, match="saturated"):
        out = LogRatioTransformer().fit_transform(np.array([0.0, 1.0, 0.5]))
    assert np.isfinite(out).all()
    assert out[0, 0] < -30 and out[1, 0] > 30
    assert out[2, 0] == 0.0


def test_unsaturated_probabilities_do_not_warn(recwarn):
    LogRatioTransformer().fit_transform(np.array([1e-10, 1 - 1e-10]))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("bad", [1.2, -0.1, np.nan])
def test_probabilities_outside_unit_interval_raise(bad):
    with pytest.raises(ValueError, match=r"\[0, 1\]|NaN"):
        LogRatioTransformer().fit_transform(np.array([0.5, bad]))


def test_rows_of_predict_proba_must_sum_to_one():
    with pytest.raises(ValueError, match="rows sum to 1"):
        LogRatioTransformer().fit_transform(np.array([[0.5, 0.6], [0.2, 0.8]]))


def test_transformer_parameter_errors():
    with pytest.raises(ValueError, match="input must be 'proba' or 'logit'"):
        LogRatioTransformer(input="odds").fit([[0.5]])
    for prior in (0.0, 1.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="prior"):
            LogRatioTransformer(prior=prior).fit([[0.5]])
    with pytest.raises(ValueError, match="one column"):
        LogRatioTransformer().fit(np.full((3, 3), 0.2))
    with pytest.raises(ValueError, match="NaN or infinite"):
        LogRatioTransformer().fit([[0.5]]).inverse_transform([[np.inf]])


def test_feature_names_out():
    assert list(LogRatioTransformer().fit([[0.5]]).get_feature_names_out()) == ["log_ratio"]
    assert list(EnsembleLogRatio(2).fit([1.0, 2.0]).get_feature_names_out()) == ["ensemble_log_ratio"]


# ---------------------------------------------------------- EnsembleLogRatio
@pytest.mark.parametrize("as_column", [False, True])
def test_consecutive_groups(as_column):
    values = np.arange(12.0)
    X = values[:, None] if as_column else values
    out = EnsembleLogRatio(ensemble_size=4).fit_transform(X)
    np.testing.assert_array_equal(out, [[6.0], [22.0], [38.0]])


def test_3d_with_nan_padding_and_mask():
    E = np.array([[[1.0], [2.0], [np.nan]], [[0.5], [0.5], [0.5]], [[-3.0], [np.nan], [np.nan]]])
    out = EnsembleLogRatio(ensemble_size=3).fit_transform(E)
    np.testing.assert_array_equal(out, [[3.0], [1.5], [-3.0]])
    mask = ~np.isnan(E[..., 0])
    out_mask = EnsembleLogRatio(ensemble_size=3).fit(E).transform(np.nan_to_num(E, nan=99.0), mask=mask)
    np.testing.assert_array_equal(out_mask, out)


def test_sums_of_many_large_log_ratios_stay_exact():
    values = np.full(100_000, 30.0)
    out = EnsembleLogRatio(ensemble_size=100_000).fit_transform(values)
    assert out[0, 0] == 3e6


def test_non_multiple_raises():
    with pytest.raises(ValueError, match="not a multiple of ensemble_size=3"):
        EnsembleLogRatio(ensemble_size=3).fit_transform(np.arange(7.0))


@pytest.mark.parametrize("size", [0, -2, 1.5, None])
def test_bad_ensemble_size(size):
    with pytest.raises(ValueError, match="ensemble_size must be a positive integer"):
        EnsembleLogRatio(ensemble_size=size).fit(np.arange(4.0))


def test_several_columns_are_summed_column_by_column():
    X = np.arange(12.0).reshape(6, 2)
    out = EnsembleLogRatio(ensemble_size=3).fit_transform(X)
    np.testing.assert_array_equal(out, [[6.0, 9.0], [24.0, 27.0]])


def test_ensemble_log_ratio_input_errors():
    with pytest.raises(ValueError, match="NaN"):
        EnsembleLogRatio(ensemble_size=2).fit_transform(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="infinity"):
        EnsembleLogRatio(ensemble_size=2).fit_transform(np.array([0.0, np.inf]))
    fitted = EnsembleLogRatio(ensemble_size=2).fit(np.zeros((3, 2, 1)))
    with pytest.raises(ValueError, match="features per event"):
        fitted.transform(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="has no events"):
        EnsembleLogRatio(ensemble_size=2).fit_transform(np.full((2, 2, 1), np.nan))
    with pytest.raises(ValueError, match="not a fully padded row"):
        EnsembleLogRatio(ensemble_size=2).fit_transform(np.array([[[1.0, np.nan], [1.0, 2.0]]]))


def test_several_logit_columns():
    X = np.array([[0.0, 1.0, -2.0], [3.0, 0.5, 0.0]])
    out = LogRatioTransformer(prior=0.25, input="logit").fit_transform(X)
    np.testing.assert_allclose(out, X + np.log(3.0))


def test_fitted_on_column_accepts_1d_and_back():
    p = np.array([0.2, 0.7])
    transformer = LogRatioTransformer().fit(p[:, None])
    assert transformer.n_features_in_ == 1
    np.testing.assert_allclose(transformer.transform(p), transformer.transform(p[:, None]))
    with pytest.raises(ValueError, match="X has 2 features, but LogRatioTransformer is expecting 1"):
        transformer.transform(np.stack([1 - p, p], axis=1))
