"""Per-ensemble classifiers, the paper's f_N, including the log-ratio-sum model."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._base import PREDICT_CHUNK_EVENTS, TorchEstimatorBase
from ._modules import DeepSetsNet, FlatEnsembleNet, LogRatioSumNet, check_activation
from ._training import RegroupedEnsembleDataset, TensorBatchDataset, run_in_chunks
from ._validation import (
    check_binary_labels,
    check_bool,
    check_ensembles,
    check_event_array,
    check_fraction,
    check_labels_1d,
    check_layer_sizes,
    check_positive_int,
    check_sample_weight,
    input_ndim,
)
from .logratio import log_ratio_to_proba, logit_to_log_proba
from .per_instance import PerInstanceClassifier, class_log_odds, feature_scaling

ARCHITECTURES = ("dense", "sorted", "deepsets", "logratio_sum")


class _FittedModule:
    """Holds a trained module where a skorch net would be (``net_.module_``)."""

    def __init__(self, module):
        self.module_ = module


class PerEnsembleClassifier(ClassifierMixin, TorchEstimatorBase):
    """Classifier that sees a whole ensemble of events at once.

    Parameters
    ----------
    architecture : {"deepsets", "dense", "sorted", "logratio_sum"}, default="deepsets"
        - ``"dense"``: an MLP on the flattened ensemble (the paper's f_N);
        - ``"sorted"``: the same after ordering events by their first feature;
        - ``"deepsets"``: ``F(sum_i Phi(x_i))``, permutation invariant, any ensemble size;
        - ``"logratio_sum"``: ``Phi`` outputs one number and the ensemble logit is
          ``sum_i Phi(x_i)``; training makes ``Phi`` the per-event log ratio, exposed as
          ``per_instance_`` (the paper's f_{N->1}).
    ensemble_size : int or None, default=None
        Events per ensemble, N. Required when fitting on 2-D events; with 3-D input
        it is taken from ``E.shape[1]`` (and must agree if given).
    hidden_layer_sizes : tuple of int, default=(64, 64, 64)
        Hidden layers of the MLP for ``"dense"``, ``"sorted"`` and ``"logratio_sum"``.
    Phi_sizes : tuple of int, default=(64, 64, 64)
        Per-event network of ``"deepsets"``; the last size is the latent dimension.
    F_sizes : tuple of int, default=(64, 64)
        Network on the pooled latent vector of ``"deepsets"``.
    latent_dropout : float in [0, 1), default=0.0
        Dropout on the pooled latent vector (``"deepsets"``).
    pooling : {"sum", "mean"}, default="sum"
        Pooling of ``"deepsets"``; ``"sum"`` is the Particle Flow Network choice and
        carries the ensemble size.
    activation : str, default="silu"
    lr_schedule : {"plateau", "cosine", "constant"}, default="plateau"
        Learning-rate schedule. ``"plateau"`` divides the rate by 5 after 3 epochs
        without improvement of the validation loss; it removes the final-iterate noise
        of Adam, which at a constant rate exceeds the statistical error of the learned
        log ratio on unbalanced classes. ``"cosine"`` anneals to zero over ``max_epochs``.
    regroup_each_epoch : bool, default=True
        When fitting on 2-D events, draw new same-label ensembles every epoch (a data
        augmentation the paper did not use). If False, one fixed grouping is used.
    lr, batch_size, max_epochs, early_stopping, validation_fraction, n_iter_no_change, \
standardize, device, random_state, verbose, **skorch_kwargs
        As for :class:`PerInstanceClassifier`; ``batch_size`` counts ensembles.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    ensemble_size_ : int
        The ensemble size trained on.
    log_prior_odds_ : float
        Log odds of the (weighted) training ensemble classes.
    per_instance_ : PerInstanceClassifier
        Only for ``"logratio_sum"``: the extracted per-event model, whose
        ``decision_function`` is ``Phi(x)``.
    net_ : skorch.NeuralNet
    n_features_in_ : int
    """

    def __init__(
        self,
        architecture="deepsets",
        ensemble_size=None,
        hidden_layer_sizes=(64, 64, 64),
        Phi_sizes=(64, 64, 64),
        F_sizes=(64, 64),
        latent_dropout=0.0,
        pooling="sum",
        activation="silu",
        regroup_each_epoch=True,
        lr=1e-3,
        lr_schedule="plateau",
        batch_size=128,
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
        self.architecture = architecture
        self.ensemble_size = ensemble_size
        self.hidden_layer_sizes = hidden_layer_sizes
        self.Phi_sizes = Phi_sizes
        self.F_sizes = F_sizes
        self.latent_dropout = latent_dropout
        self.pooling = pooling
        self.activation = activation
        self.regroup_each_epoch = regroup_each_epoch
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
        tags.input_tags.three_d_array = True
        tags.non_deterministic = self.random_state is None
        return tags

    # ------------------------------------------------------------------- fit
    def _check_params(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}.")
        check_positive_int(self.ensemble_size, "ensemble_size", allow_none=True)
        check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        check_layer_sizes(self.Phi_sizes, "Phi_sizes", allow_empty=False)
        check_layer_sizes(self.F_sizes, "F_sizes")
        check_fraction(self.latent_dropout, "latent_dropout", low_open=False)
        if self.pooling not in ("sum", "mean"):
            raise ValueError(f"pooling must be 'sum' or 'mean', got {self.pooling!r}.")
        check_activation(self.activation)
        check_bool(self.regroup_each_epoch, "regroup_each_epoch")
        self._check_training_params()

    def fit(self, X, y, sample_weight=None):
        """Train on ensembles, or on events grouped into same-label ensembles.

        Parameters
        ----------
        X : array-like of shape (n_ensembles, ensemble_size, n_features) or (n_events, n_features)
            3-D: ensembles (rows of NaN are padding, for ``"deepsets"`` and
            ``"logratio_sum"``). 2-D: labelled events, grouped into ensembles of
            ``ensemble_size`` events of one class.
        y : array-like of shape (n,) or (n, 1)
            One label per ensemble (3-D) or per event (2-D); 1 = signal.
        sample_weight : array-like of shape (n,), optional
            Per ensemble (3-D) or per event (2-D; an ensemble gets its events' mean).

        Returns
        -------
        self
        """
        self._check_params()
        if input_ndim(X) == 3:
            return self._fit_ensembles(X, y, sample_weight)
        check_event_array(X)
        X, y = validate_data(self, X, y, dtype=np.float64, reset=True)
        if self.ensemble_size is None:
            raise ValueError(
                "ensemble_size must be set to fit on 2-D events (they are grouped into "
                "ensembles of that size); or pass 3-D ensembles of shape "
                "(n_ensembles, ensemble_size, n_features)."
            )
        self.classes_, y01 = check_binary_labels(y)
        weight = check_sample_weight(sample_weight, len(y01))
        class_log_odds(y01, weight)  # raises if a class has zero total weight
        size = self.ensemble_size
        smallest = int(min((y01 == 0).sum(), (y01 == 1).sum()))
        if size > smallest:
            raise ValueError(
                f"ensemble_size={size} is larger than the {smallest} events of the smaller "
                "class; no same-label ensemble can be formed."
            )
        seed = self._seed()
        rng = np.random.RandomState(seed)
        train, valid = self._validation_split(y01, rng)
        if valid is not None and min((y01[valid] == c).sum() for c in (0, 1)) < size:
            valid = None
            train = np.arange(len(y01))
        self.ensemble_size_ = size
        self.n_features_in_ = X.shape[1]
        mean, scale = feature_scaling(X[train], self.standardize)
        weighted = sample_weight is not None
        if self.regroup_each_epoch:
            w = self._tensor(weight[train] / weight[train].mean()) if weighted else None
            train_ds = RegroupedEnsembleDataset(self._tensor(X[train]), y01[train], size, w)
            # Each epoch's ensembles of class c carry, on average, the mean weight of
            # that class's events; the prior odds must include it, as for fixed groups.
            totals = np.array([
                (y01[train] == c).sum() // size * weight[train][y01[train] == c].mean() for c in (0, 1)
            ])
            self.log_prior_odds_ = class_log_odds(np.array([0.0, 1.0]), totals)
        else:
            E_train, y_train, w_train = _group_events(X[train], y01[train], weight[train], size, rng)
            self.log_prior_odds_ = class_log_odds(y_train, w_train)
            train_ds = self._ensemble_dataset(E_train, None, y_train, w_train, weighted)
        valid_ds = None
        if valid is not None:
            E_valid, y_valid, w_valid = _group_events(X[valid], y01[valid], weight[valid], size, rng)
            valid_ds = self._ensemble_dataset(E_valid, None, y_valid, w_valid, weighted)
        return self._fit_module(mean, scale, train_ds, valid_ds, seed)

    def _fit_ensembles(self, E, y, sample_weight):
        E, mask = check_ensembles(E, allow_padding=self.architecture in ("deepsets", "logratio_sum"))
        y = check_labels_1d(y, E.shape[0])
        self.classes_, y01 = check_binary_labels(y)
        weight = check_sample_weight(sample_weight, len(y01))
        if self.ensemble_size is not None and self.ensemble_size != E.shape[1]:
            raise ValueError(
                f"ensemble_size={self.ensemble_size} but the ensembles have {E.shape[1]} events; "
                "leave ensemble_size=None to take it from the data."
            )
        self.ensemble_size_ = E.shape[1]
        self.n_features_in_ = E.shape[2]
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        seed = self._seed()
        train, valid = self._validation_split(y01, np.random.RandomState(seed))
        self.log_prior_odds_ = class_log_odds(y01[train], weight[train])
        real_events = E[train] if mask is None else E[train][mask[train]]
        mean, scale = feature_scaling(real_events, self.standardize)
        weighted = sample_weight is not None
        sub = (lambda idx: None) if mask is None else (lambda idx: mask[idx])
        train_ds = self._ensemble_dataset(E[train], sub(train), y01[train], weight[train], weighted)
        valid_ds = None
        if valid is not None:
            valid_ds = self._ensemble_dataset(E[valid], sub(valid), y01[valid], weight[valid], weighted)
        return self._fit_module(mean, scale, train_ds, valid_ds, seed)

    def _ensemble_dataset(self, E, mask, y01, weight, weighted: bool) -> TensorBatchDataset:
        target = np.stack([y01, weight / weight.mean()], axis=1) if weighted else y01
        inputs = self._tensor(E)
        if mask is not None:
            inputs = {"X": inputs, "mask": self._tensor(mask, dtype=bool)}
        return TensorBatchDataset(inputs, self._tensor(target))

    def _fit_module(self, mean, scale, train_ds, valid_ds, seed):
        n_features = self.n_features_in_
        common = dict(n_features=n_features, activation=self.activation, mean=mean, scale=scale)
        hidden = check_layer_sizes(self.hidden_layer_sizes, "hidden_layer_sizes")
        if self.architecture in ("dense", "sorted"):
            module_cls = FlatEnsembleNet
            kwargs = dict(
                common, ensemble_size=self.ensemble_size_, hidden_layer_sizes=hidden,
                sort_events=self.architecture == "sorted",
            )
        elif self.architecture == "deepsets":
            module_cls = DeepSetsNet
            kwargs = dict(
                common, Phi_sizes=check_layer_sizes(self.Phi_sizes, "Phi_sizes"),
                F_sizes=check_layer_sizes(self.F_sizes, "F_sizes"),
                latent_dropout=float(self.latent_dropout), pooling=self.pooling,
            )
        else:
            module_cls = LogRatioSumNet
            kwargs = dict(common, hidden_layer_sizes=hidden, log_prior_odds=self.log_prior_odds_)
        self._train_module(module_cls, kwargs, train_ds, valid_ds, "bce", seed)
        if self.architecture == "logratio_sum":
            self.per_instance_ = self._extract_per_instance()
        elif hasattr(self, "per_instance_"):
            del self.per_instance_
        return self

    def _extract_per_instance(self) -> PerInstanceClassifier:
        """The per-event model ``Phi`` as a fitted :class:`PerInstanceClassifier`."""
        per_instance = PerInstanceClassifier(
            hidden_layer_sizes=self.hidden_layer_sizes, activation=self.activation,
            standardize=self.standardize, device=self.device, random_state=self.random_state,
        )
        per_instance.classes_ = self.classes_
        per_instance.n_features_in_ = self.n_features_in_
        per_instance.log_prior_odds_ = 0.0
        per_instance.net_ = _FittedModule(self.net_.module_.event_net)
        per_instance.n_epochs_ = self.n_epochs_
        per_instance._device = self._device
        return per_instance

    # --------------------------------------------------------------- predict
    def _logit(self, E, mask=None) -> np.ndarray:
        check_is_fitted(self)
        E, mask = check_ensembles(
            E, mask, n_features=self.n_features_in_,
            allow_padding=self.architecture in ("deepsets", "logratio_sum"),
        )
        if self.architecture in ("dense", "sorted") and E.shape[1] != self.ensemble_size_:
            raise ValueError(
                f"this {self.architecture!r} model was trained on ensembles of "
                f"{self.ensemble_size_} events and cannot take {E.shape[1]}; use "
                "architecture='deepsets' or 'logratio_sum' for other sizes."
            )
        module = self.net_.module_
        chunk = max(1, PREDICT_CHUNK_EVENTS // E.shape[1])
        return run_in_chunks(module, [E, mask], chunk, self._device, module)

    def decision_function(self, X, mask=None) -> np.ndarray:
        """Ensemble log likelihood ratio.

        Parameters
        ----------
        X : array-like of shape (n_ensembles, ensemble_size, n_features)
        mask : array-like of bool of shape (n_ensembles, ensemble_size), optional

        Returns
        -------
        log_ratio : ndarray of shape (n_ensembles,)
            Network logit minus the training log prior odds.
        """
        return self._logit(X, mask) - self.log_prior_odds_

    def predict_proba(self, X, mask=None) -> np.ndarray:
        """Ensemble class probabilities under the training class balance, (n_ensembles, 2)."""
        return log_ratio_to_proba(self._logit(X, mask), prior=0.5)

    def predict_log_proba(self, X, mask=None) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        return logit_to_log_proba(self._logit(X, mask))

    def predict(self, X, mask=None) -> np.ndarray:
        """Most probable ensemble class under the training class balance, (n_ensembles,)."""
        logit = self._logit(X, mask)
        return self.classes_[(logit > 0).astype(int)]

    def predict_ensemble_proba(self, X, prior: float = 0.5, mask=None) -> np.ndarray:
        """Ensemble probabilities for a given prior signal probability, (n_ensembles, 2)."""
        return log_ratio_to_proba(self.decision_function(X, mask), prior=prior)

    def predict_ensemble_log_ratio(self, X, mask=None) -> np.ndarray:
        """Alias of :meth:`decision_function`, named as on :class:`PerInstanceClassifier`."""
        return self.decision_function(X, mask)


def _group_events(X, y01, weight, ensemble_size, rng):
    """Fixed same-label grouping of events; returns (E, y, mean event weight)."""
    X = check_array(X, dtype=np.float64)
    groups, labels = [], []
    for label in (0.0, 1.0):
        idx = rng.permutation(np.flatnonzero(y01 == label))
        n_ensembles = len(idx) // ensemble_size
        groups.append(idx[: n_ensembles * ensemble_size].reshape(n_ensembles, ensemble_size))
        labels.append(np.full(n_ensembles, label))
    index = np.concatenate(groups)
    return X[index], np.concatenate(labels), weight[index].mean(axis=1)
