"""Per-instance (per-event) likelihood-ratio classifier, the paper's f_1."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import PREDICT_CHUNK_EVENTS, TorchEstimatorBase
from ._event_wrapper import EventLogRatioMixin
from ._modules import EventNet, check_activation
from ._training import TensorBatchDataset, run_in_chunks
from ._validation import (
    check_binary_labels,
    check_ensembles,
    check_event_array,
    check_layer_sizes,
    check_sample_weight,
    input_ndim,
)


def class_log_odds(y01: np.ndarray, weight: np.ndarray) -> float:
    """Weighted log odds ``log(W_1 / W_0)`` of the training classes."""
    w1, w0 = weight[y01 == 1].sum(), weight[y01 == 0].sum()
    if w1 <= 0 or w0 <= 0:
        raise ValueError(
            f"sample_weight is zero for every event of class {int(w1 <= 0)}; both classes need "
            "positive total weight."
        )
    return float(np.log(w1) - np.log(w0))


def feature_scaling(X: np.ndarray, standardize: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale used to standardize features (identity when disabled)."""
    n_features = X.shape[-1]
    if not standardize:
        return np.zeros(n_features), np.ones(n_features)
    flat = X.reshape(-1, n_features)
    mean = flat.mean(axis=0)
    scale = flat.std(axis=0)
    scale[~(scale > 0)] = 1.0
    return mean, scale


def ensemble_event_sum(module, n_events_per_ensemble: int):
    """A chunk function that sums per-event outputs of ``module`` over each ensemble."""

    def function(E: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        per_event = module(E.reshape(-1, E.shape[-1])).reshape(E.shape[0], n_events_per_ensemble)
        per_event = per_event.double()
        if mask is not None:
            per_event = per_event * mask
        return per_event.sum(dim=1)

    return function


class PerInstanceClassifier(EventLogRatioMixin, ClassifierMixin, TorchEstimatorBase):
    """Per-event classifier whose logit estimates the per-event log likelihood ratio.

    A dense network ``f(x)`` is trained with binary cross-entropy (or the MLC loss)
    to separate signal (label 1) from background (label 0) events. Its logit, minus
    the log odds of the (weighted) training classes, estimates
    ``log p(x|1) / p(x|0)``; summing it over the events of an ensemble gives the
    ensemble log likelihood ratio, the optimal ensemble classifier for IID events.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(64, 64, 64)
        Widths of the hidden layers.
    activation : {"silu", "relu", "tanh", "elu", "gelu", "softplus", "leaky_relu"}, default="silu"
        Smooth activations give smooth log ratios, which matters wherever a log ratio
        is summed over many events or maximized over a parameter.
    loss : {"bce", "mlc"}, default="bce"
        Binary cross-entropy, or the maximum-likelihood-classifier loss
        ``(1 - y)(exp f - 1) - y f``. Both make ``f`` the log ratio plus the training
        log prior odds.
    lr : float, default=1e-3
        Adam learning rate.
    lr_schedule : {"plateau", "cosine", "constant"}, default="plateau"
        Learning-rate schedule. ``"plateau"`` divides the rate by 5 after 3 epochs
        without improvement of the validation loss; it removes the final-iterate noise
        of Adam, which at a constant rate exceeds the statistical error of the learned
        log ratio on unbalanced classes. ``"cosine"`` anneals to zero over ``max_epochs``.
    batch_size : int, default=512
    max_epochs : int, default=100
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the events (stratified by class, seeded by
        ``random_state``), stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs and restore the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    standardize : bool, default=True
        Standardize features with the training mean and standard deviation (stored
        inside the network).
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    random_state : int, RandomState or None
        Seeds weight initialization, shuffling and the validation split.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar over epochs; 2 also reports early stopping.
    **skorch_kwargs
        Passed to :class:`skorch.NeuralNet`: ``optimizer``, ``callbacks``, and
        parameters prefixed ``optimizer__``, ``callbacks__``, ``iterator_train__`` ...

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        Class labels; ``classes_[1]`` is the signal (numerator) class.
    log_prior_odds_ : float
        ``log(W_1 / W_0)`` of the weighted training classes, removed from the logit.
    net_ : skorch.NeuralNet
        The trained network; ``net_.module_`` maps raw features to logits.
    n_epochs_ : int
        Epochs run.
    n_features_in_ : int

    Notes
    -----
    Events are rows of a 2-D array ``X`` of shape (n_events, n_features); ensembles
    are 3-D arrays of shape (n_ensembles, ensemble_size, n_features), with rows of
    NaN for padding in variable-size ensembles.
    """

    def __init__(
        self,
        hidden_layer_sizes=(64, 64, 64),
        activation="silu",
        loss="bce",
        lr=1e-3,
        lr_schedule="plateau",
        batch_size=512,
        max_epochs=100,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        standardize=True,
        device="cpu",
        random_state=None,
        verbose=0,
        **skorch_kwargs,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self._store_skorch_kwargs(skorch_kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.non_deterministic = self.random_state is None
        return tags

    def fit(self, X, y, sample_weight=None):
        """Train on labelled events.

        Parameters
        ----------
        X : array-like of shape (n_events, n_features)
        y : array-like of shape (n_events,) or (n_events, 1)
            Two classes: 0 = background, 1 = signal (ints, bools or floats; any two
            labels work, the larger one is signal).
        sample_weight : array-like of shape (n_events,), optional
            Event weights; the log ratio is corrected for the weighted class totals.

        Returns
        -------
        self
        """
        check_event_array(X)
        X, y = validate_data(self, X, y, dtype=np.float64, reset=True)
        self.classes_, y01 = check_binary_labels(y)
        weight = check_sample_weight(sample_weight, len(y01))
        hidden = check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        check_activation(self.activation)
        if self.loss not in ("bce", "mlc"):
            raise ValueError(f"loss must be 'bce' or 'mlc', got {self.loss!r}.")
        self._check_training_params()

        seed = self._seed()
        train, valid = self._validation_split(y01, np.random.RandomState(seed))
        self.log_prior_odds_ = class_log_odds(y01[train], weight[train])
        mean, scale = feature_scaling(X[train], self.standardize)
        module_kwargs = dict(
            n_features=X.shape[1], hidden_layer_sizes=hidden, activation=self.activation,
            mean=mean, scale=scale,
        )
        weighted = sample_weight is not None
        train_ds = self._event_dataset(X[train], y01[train], weight[train], weighted)
        valid_ds = None
        if valid is not None:
            valid_ds = self._event_dataset(X[valid], y01[valid], weight[valid], weighted)
        self._train_module(EventNet, module_kwargs, train_ds, valid_ds, self.loss, seed)
        return self

    def _event_dataset(self, X, y01, weight, weighted: bool) -> TensorBatchDataset:
        target = np.stack([y01, weight / weight.mean()], axis=1) if weighted else y01
        return TensorBatchDataset(self._tensor(X), self._tensor(target))

    # ---------------------------------------------------------------- per event
    def _logit(self, X) -> np.ndarray:
        check_is_fitted(self)
        if input_ndim(X) == 3:
            raise ValueError(
                f"X has 3 dimensions with shape {np.shape(X)}; per-event methods take events of "
                "shape (n_events, n_features). For ensembles use predict_ensemble_log_ratio or "
                "predict_ensemble_proba."
            )
        check_event_array(X)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return run_in_chunks(self.net_.module_, [X], PREDICT_CHUNK_EVENTS, self._device, self.net_.module_)

    def decision_function(self, X) -> np.ndarray:
        """Per-event log likelihood ratio ``log p(x|1) / p(x|0)``.

        Parameters
        ----------
        X : array-like of shape (n_events, n_features)

        Returns
        -------
        log_ratio : ndarray of shape (n_events,)
            The network logit minus the training log prior odds.
        """
        return self._logit(X) - self.log_prior_odds_

    def _event_log_ratio(self, X) -> np.ndarray:
        return self.decision_function(X)

    # ------------------------------------------------------------- ensembles
    def predict_ensemble_log_ratio(self, E, mask=None) -> np.ndarray:
        """Ensemble log likelihood ratio: the sum of per-event log ratios.

        Parameters
        ----------
        E : array-like of shape (n_ensembles, ensemble_size, n_features)
            Rows of NaN are padding and contribute nothing.
        mask : array-like of bool of shape (n_ensembles, ensemble_size), optional
            False marks padding (alternative to NaN rows).

        Returns
        -------
        log_ratio : ndarray of shape (n_ensembles,)
            ``sum_i log p(x_i|1) / p(x_i|0)`` over the real events, in float64.
        """
        check_is_fitted(self)
        E, mask = check_ensembles(E, mask, n_features=self.n_features_in_)
        n_events = E.shape[1]
        module = self.net_.module_
        chunk = max(1, PREDICT_CHUNK_EVENTS // n_events)
        summed = run_in_chunks(ensemble_event_sum(module, n_events), [E, mask], chunk, self._device, module)
        counts = n_events if mask is None else mask.sum(axis=1)
        return summed - counts * self.log_prior_odds_
