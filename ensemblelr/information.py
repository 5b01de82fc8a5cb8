"""Mutual information between event features and the class label, from classifiers.

The mutual information ``I(X; Y)`` (in nats) is the Kullback-Leibler divergence
between the joint distribution ``p(x, y)`` and the product of its marginals
``p(x) p(y)``. A classifier trained to tell joint pairs ``(x, y)`` from pairs with
shuffled labels learns ``log p(x, y) / (p(x) p(y))``, whose mean over joint pairs
is the mutual information. For a binary label the per-event log likelihood ratio
gives the same quantity more directly (``method="label"``).
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._event_wrapper import check_log_ratio_estimator, finite_log_ratio
from ._validation import check_binary_labels, check_event_array, check_labels_1d, check_positive_int
from .per_instance import PerInstanceClassifier

METHODS = ("shuffle", "label")
ESTIMATES = ("dv", "plugin")


def gaussian_mutual_information(
    signal_mean: float = 0.1, background_mean: float = -0.1, sigma: float = 1.0, prior: float = 0.5
) -> float:
    """Exact ``I(X; Y)`` in nats for two Gaussian classes.

    ``X | Y=1 ~ N(signal_mean, sigma^2)`` and ``X | Y=0 ~ N(background_mean, sigma^2)``.

    Parameters
    ----------
    signal_mean, background_mean, sigma : float
    prior : float in (0, 1)
        ``P(Y = 1)``.

    Returns
    -------
    mi : float
        Computed by adaptive quadrature (absolute error below 1e-9).
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma!r}.")
    if not 0 < prior < 1:
        raise ValueError(f"prior must lie in (0, 1), got {prior!r}.")
    log_pi = np.log([1 - prior, prior])
    means = (background_mean, signal_mean)

    def integrand(x: float, c: int) -> float:
        log_p = np.array([stats.norm.logpdf(x, m, sigma) for m in means])
        log_marginal = logsumexp(log_p + log_pi)
        return np.exp(log_pi[c] + log_p[c]) * (log_p[c] - log_marginal)

    lo = min(means) - 12 * sigma
    hi = max(means) + 12 * sigma
    parts = [integrate.quad(integrand, lo, hi, args=(c,), epsabs=1e-11, limit=200)[0] for c in (0, 1)]
    return float(sum(parts))


def _stratified_folds(y01: np.ndarray, n_folds: int, rng) -> np.ndarray:
    fold = np.empty(len(y01), dtype=int)
    for label in (0.0, 1.0):
        idx = rng.permutation(np.flatnonzero(y01 == label))
        if len(idx) < n_folds:
            raise ValueError(f"cv={n_folds} folds need at least {n_folds} events of each class.")
        fold[idx] = np.arange(len(idx)) % n_folds
    return fold


def _pairs(X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.column_stack([X, labels])


def mutual_information(
    X,
    y,
    estimator=None,
    *,
    method: str = "shuffle",
    estimate: str = "dv",
    cv: int = 2,
    random_state=None,
    return_std: bool = False,
):
    """Mutual information ``I(X; Y)`` in nats between features and a binary label.

    Parameters
    ----------
    X : array-like of shape (n_events, n_features)
    y : array-like of shape (n_events,)
        Two classes.
    estimator : estimator, default=None
        A per-event log-ratio model with ``fit(X, y, sample_weight)`` and
        ``decision_function`` (default: ``PerInstanceClassifier``). It is cloned for
        every fold.
    method : {"shuffle", "label"}, default="shuffle"
        - ``"shuffle"``: the model separates joint pairs ``(x, y)`` (class 1) from
          pairs with shuffled labels (class 0). The shuffle is done exactly: every
          event is paired with every label, weighted by that label's frequency,
          which is the average over all permutations of the labels. Works for
          any estimator of a log ratio between two samples.
        - ``"label"``: the model learns ``r(x) = log p(x|1)/p(x|0)`` and
          ``log p(x, y) / (p(x) p(y))`` is computed from it analytically.
    estimate : {"dv", "plugin"}, default="dv"
        ``"plugin"`` is the mean of the learned log ratio ``d`` over held-out joint
        pairs. ``"dv"`` subtracts ``log E_{p(x)p(y)}[exp d]`` (Donsker-Varadhan),
        which removes a constant offset of ``d`` and is a lower bound on the
        mutual information for any ``d``.
    cv : int, default=2
        Cross-fitting folds: each fold is scored by a model trained on the others,
        so every event is used for scoring and none is scored by a model that saw it.
    random_state : int, RandomState or None
        Fold assignment; also the seed of a default estimator.
    return_std : bool, default=False
        Also return the standard error from the spread of ``d`` over joint pairs
        (statistical only; the model's own error is not included).

    Returns
    -------
    mi : float
        Estimated mutual information in nats.
    std : float
        Only if ``return_std``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if estimate not in ESTIMATES:
        raise ValueError(f"estimate must be one of {ESTIMATES}, got {estimate!r}.")
    n_folds = check_positive_int(cv, "cv")
    if n_folds < 2:
        raise ValueError(f"cv must be at least 2 (cross-fitting), got {cv!r}.")
    check_event_array(X)
    X = check_array(X, dtype=np.float64, input_name="X")
    y = check_labels_1d(y, X.shape[0])
    _, y01 = check_binary_labels(y)
    rng = check_random_state(random_state)
    if estimator is None:
        estimator = PerInstanceClassifier(random_state=rng.randint(np.iinfo(np.int32).max))
    check_log_ratio_estimator(estimator)
    fold = _stratified_folds(y01, n_folds, rng)

    # log p(y) per event and for each label value
    pi1 = y01.mean()
    log_pi = np.log([1 - pi1, pi1])
    joint_terms = np.empty(len(y01))
    log_product_terms = np.empty((len(y01), 2))
    for k in range(n_folds):
        test, train = fold == k, fold != k
        model = clone(estimator)
        if method == "shuffle":
            d_joint, d_product = _shuffle_log_ratios(model, X[train], y01[train], X[test], y01[test], log_pi)
        else:
            d_joint, d_product = _label_log_ratios(model, X[train], y01[train], X[test], y01[test], log_pi)
        joint_terms[test] = d_joint
        log_product_terms[test] = d_product
    value = joint_terms.mean()
    if estimate == "dv":
        # E_{p(x)p(y)}[e^d] = mean_x sum_c pi_c e^{d(x, c)}
        value -= logsumexp(log_product_terms + log_pi) - np.log(len(y01))
    value = float(value)
    if return_std:
        return value, float(joint_terms.std(ddof=1) / np.sqrt(len(joint_terms)))
    return value


def _shuffle_log_ratios(model, X_train, y_train, X_test, y_test, log_pi):
    n = len(y_train)
    pi = np.exp(log_pi)
    joint = _pairs(X_train, y_train)
    product = np.concatenate([_pairs(X_train, np.full(n, float(c))) for c in (0, 1)])
    Z = np.concatenate([joint, product])
    target = np.concatenate([np.ones(n), np.zeros(2 * n)])
    weight = np.concatenate([np.ones(n), np.repeat(pi, n)])
    model.fit(Z, target, sample_weight=weight)
    d_joint = finite_log_ratio(model.decision_function(_pairs(X_test, y_test)), "estimator.decision_function")
    d_product = np.column_stack([
        finite_log_ratio(model.decision_function(_pairs(X_test, np.full(len(y_test), float(c)))),
                         "estimator.decision_function")
        for c in (0, 1)
    ])
    return d_joint, d_product


def _label_log_ratios(model, X_train, y_train, X_test, y_test, log_pi):
    model.fit(X_train, y_train)
    r = finite_log_ratio(model.decision_function(X_test), "estimator.decision_function")
    # log p(x|c) / p(x) with p(x) = pi_0 p(x|0) + pi_1 p(x|1), from r = log p(x|1)/p(x|0)
    log_marginal_over_p0 = np.logaddexp(log_pi[0], log_pi[1] + r)
    d_product = np.column_stack([-log_marginal_over_p0, r - log_marginal_over_p0])
    d_joint = np.where(y_test == 1, d_product[:, 1], d_product[:, 0])
    return d_joint, d_product
