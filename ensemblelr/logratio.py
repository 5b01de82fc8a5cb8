"""Log-space arithmetic on likelihood ratios.

All functions take and return natural-log quantities; a product of 10^4 ratios is
a sum of 10^4 logs here and never overflows.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import expit, log_expit

from ._validation import check_fraction

# Probabilities are clipped to [EPS, 1 - EPS] before taking a logit: float64 can
# tell 1 - 1e-15 from 1, and the resulting |logit| <= 34.5 stays finite.
PROBA_EPS = 1e-15


def log_odds(prior: float, name: str = "prior") -> float:
    """``log(prior / (1 - prior))`` for a signal fraction ``prior`` in (0, 1)."""
    prior = check_fraction(prior, name)
    return float(np.log(prior) - np.log1p(-prior))


def proba_to_logit(proba) -> np.ndarray:
    """Logit of probabilities, clipping 0 and 1 (with a warning) so the result is finite."""
    proba = np.asarray(proba, dtype=np.float64)
    if np.isnan(proba).any():
        raise ValueError("probabilities contain NaN.")
    if (proba < 0).any() or (proba > 1).any():
        bad = proba[(proba < 0) | (proba > 1)].ravel()[0]
        raise ValueError(f"probabilities must lie in [0, 1]; found {bad!r}.")
    saturated = (proba < PROBA_EPS) | (proba > 1 - PROBA_EPS)
    if saturated.any():
        warnings.warn(
            f"{int(saturated.sum())} probabilities are saturated at 0 or 1; clipped to "
            f"[{PROBA_EPS}, 1 - {PROBA_EPS}] so that log ratios stay finite. Pass logits "
            "instead of probabilities to avoid the loss of precision.",
            RuntimeWarning,
            stacklevel=3,
        )
        proba = np.clip(proba, PROBA_EPS, 1 - PROBA_EPS)
    return np.log(proba) - np.log1p(-proba)


def log_ratio_to_proba(log_ratio, prior: float = 0.5) -> np.ndarray:
    """Turn (ensemble) log likelihood ratios into class probabilities.

    Parameters
    ----------
    log_ratio : array-like of shape (n,)
        ``log p(x|1) / p(x|0)``, e.g. summed over the events of each ensemble.
    prior : float in (0, 1)
        Prior probability of class 1 (signal).

    Returns
    -------
    proba : ndarray of shape (n, 2)
        Columns ``P(0 | x)`` and ``P(1 | x)``, computed in log space so that they are
        exact even when one of them underflows the other's rounding.
    """
    logit = np.asarray(log_ratio, dtype=np.float64) + log_odds(prior)
    if np.isnan(logit).any():
        raise ValueError("log ratios contain NaN.")
    return np.stack([expit(-logit), expit(logit)], axis=-1)


def logit_to_log_proba(logit) -> np.ndarray:
    """``(log P(0|x), log P(1|x))`` from logits, stable for any magnitude."""
    logit = np.asarray(logit, dtype=np.float64)
    return np.stack([log_expit(-logit), log_expit(logit)], axis=-1)
