"""Log-space helpers: prior odds, logits of probabilities, probabilities of log ratios."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from ensemblelr import log_ratio_to_proba
from ensemblelr.logratio import PROBA_EPS, log_odds, logit_to_log_proba, proba_to_logit


@pytest.mark.parametrize("prior", [1e-9, 0.1, 0.5, 0.75, 1 - 1e-9])
def test_log_odds(prior):
    assert log_odds(prior) == pytest.approx(np.log(prior / (1 - prior)), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("prior", [0, 1, -0.5, 1.5, np.nan, np.inf, "half", None, True])
def test_log_odds_rejects_invalid_priors(prior):
    with pytest.raises(ValueError, match="prior"):
        log_odds(prior)


def test_proba_to_logit_inverts_sigmoid():
    z = np.linspace(-30, 30, 61)
    error = np.abs(proba_to_logit(expit(z)) - z)
    # Near p = 1 a probability resolves its logit only to ~eps / (1 - p) = eps e^z.
    assert (error <= 4 * np.finfo(float).eps * np.exp(np.abs(z)) + 1e-12).all()


def test_proba_to_logit_saturated_is_finite_with_warning():
    with pytest.warns(RuntimeWarning, match="2 probabilities are saturated"):
        z = proba_to_logit(np.array([0.0, 1.0]))
    assert np.isfinite(z).all()
    bound = np.log(1 - PROBA_EPS) - np.log(PROBA_EPS)
    np.testing.assert_allclose(z, [-bound, bound], rtol=1e-3)


@pytest.mark.parametrize("bad", [-1e-12, 1 + 1e-12, 7.0, -np.inf])
def test_proba_to_logit_outside_unit_interval(bad):
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]"):
        proba_to_logit(np.array([0.3, bad]))


def test_proba_to_logit_nan():
    with pytest.raises(ValueError, match="NaN"):
        proba_to_logit(np.array([np.nan]))


def test_log_ratio_to_proba_columns_and_prior():
    log_ratio = np.array([-2.0, 0.0, 3.0])
    proba = log_ratio_to_proba(log_ratio, prior=0.2)
    assert proba.shape == (3, 2)
    expected = expit(log_ratio + np.log(0.25))
    np.testing.assert_allclose(proba[:, 1], expected, rtol=1e-14)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)


def test_log_ratio_to_proba_exact_in_log_space():
    # Each column comes from its own sigmoid: the small one is exact, not 1 - (1 - tiny).
    proba = log_ratio_to_proba(np.array([50.0, -50.0, 700.0]))
    np.testing.assert_allclose(proba[0], [np.exp(-50.0), 1.0], rtol=1e-12)
    np.testing.assert_allclose(proba[1], [1.0, np.exp(-50.0)], rtol=1e-12)
    np.testing.assert_allclose(proba[2, 0], np.exp(-700.0), rtol=1e-12)
    # Sums over 1e5 events: no overflow, no NaN.
    huge = log_ratio_to_proba(np.array([1e6, -1e6, np.inf, -np.inf]))
    np.testing.assert_array_equal(huge, [[0, 1], [1, 0], [0, 1], [1, 0]])


def test_log_ratio_to_proba_keeps_extra_dimensions():
    assert log_ratio_to_proba(np.zeros((4, 3))).shape == (4, 3, 2)
    assert log_ratio_to_proba(1.0).shape == (2,)


def test_log_ratio_to_proba_errors():
    with pytest.raises(ValueError, match="NaN"):
        log_ratio_to_proba(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="prior"):
        log_ratio_to_proba(np.zeros(2), prior=1.0)


def test_logit_to_log_proba_extreme_values():
    out = logit_to_log_proba(np.array([1e4, -1e4, 0.0]))
    np.testing.assert_allclose(out[0], [-1e4, 0.0])
    np.testing.assert_allclose(out[1], [0.0, -1e4])
    np.testing.assert_allclose(out[2], [np.log(0.5), np.log(0.5)])
