"""Base class: an sklearn estimator that builds and trains a skorch network in ``fit``.

The public estimators keep only their hyper-parameters as attributes (sklearn's
rule); the skorch ``NeuralNet`` is a fitted attribute ``net_``. Extra skorch
parameters (``optimizer=``, ``optimizer__weight_decay=``, ``callbacks=`` ...) are
accepted as keyword arguments, reported by ``get_params`` and settable with
``set_params``, so they can be grid-searched like any other parameter.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.helper import predefined_split
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from ._training import BatchIterator, EpochProgress, TargetLoss, resolve_device
from ._validation import check_fraction, check_positive_int

# skorch parameters a user may pass through; everything else is ours or fixed.
_SKORCH_NAMES = {"optimizer", "callbacks", "warm_start", "compile", "torch_load_kwargs"}
_SKORCH_PREFIXES = (
    "optimizer__",
    "module__",
    "criterion__",
    "callbacks__",
    "iterator_train__",
    "iterator_valid__",
    "compile__",
)

# Events evaluated per forward pass at prediction time: large enough to amortize
# Python overhead, small enough that activations stay a few tens of MB.
PREDICT_CHUNK_EVENTS = 1 << 17


def _is_skorch_param(name: str) -> bool:
    return name in _SKORCH_NAMES or name.startswith(_SKORCH_PREFIXES)


class TorchEstimatorBase(BaseEstimator):
    """Shared fitting machinery. Subclasses define ``__init__`` with their parameters."""

    def _store_skorch_kwargs(self, skorch_kwargs: dict) -> None:
        unknown = [key for key in skorch_kwargs if not _is_skorch_param(key)]
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword argument(s) {unknown}; extra "
                f"keywords must be skorch parameters: {sorted(_SKORCH_NAMES)} or prefixed "
                f"with one of {list(_SKORCH_PREFIXES)}."
            )
        self._skorch_param_names = sorted(skorch_kwargs)
        for key, value in skorch_kwargs.items():
            setattr(self, key, value)

    def _skorch_kwargs(self) -> dict:
        return {key: getattr(self, key) for key in getattr(self, "_skorch_param_names", [])}

    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep=deep)
        params.update(self._skorch_kwargs())
        return params

    def set_params(self, **params):
        skorch_params = {key: value for key, value in params.items() if _is_skorch_param(key)}
        own = {key: value for key, value in params.items() if key not in skorch_params}
        if skorch_params:
            names = set(getattr(self, "_skorch_param_names", []))
            for key, value in skorch_params.items():
                setattr(self, key, value)
                names.add(key)
            self._skorch_param_names = sorted(names)
        if own:
            super().set_params(**own)
        return self

    # ------------------------------------------------------------------ checks
    def _check_training_params(self) -> None:
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.max_epochs, "max_epochs")
        check_positive_int(self.n_iter_no_change, "n_iter_no_change")
        check_fraction(self.validation_fraction, "validation_fraction")
        if not isinstance(self.lr, numbers.Real) or isinstance(self.lr, bool) or not self.lr > 0:
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if not isinstance(self.verbose, numbers.Integral):
            raise ValueError(f"verbose must be an integer, got {self.verbose!r}.")
        self._device = resolve_device(self.device)

    def _seed(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # ---------------------------------------------------------------- training
    def _validation_split(self, strata: np.ndarray, rng: np.random.RandomState):
        """Indices (train, valid) stratified by ``strata``, or (all, None).

        Returns no validation set, with a warning, when the data are too small to
        leave at least one example of every stratum on both sides.
        """
        n = len(strata)
        if not self.early_stopping:
            return np.arange(n), None
        train_parts, valid_parts = [], []
        for value in np.unique(strata):
            idx = rng.permutation(np.flatnonzero(strata == value))
            n_valid = int(round(self.validation_fraction * len(idx)))
            if n_valid < 1 or n_valid >= len(idx):
                warnings.warn(
                    f"early_stopping: too few examples ({n}) to hold out a validation "
                    f"fraction of {self.validation_fraction} from every class; training for "
                    "max_epochs without early stopping.",
                    UserWarning,
                    stacklevel=3,
                )
                return np.arange(n), None
            valid_parts.append(idx[:n_valid])
            train_parts.append(idx[n_valid:])
        return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(valid_parts))

    def _train_module(self, module_cls, module_kwargs: dict, train_ds, valid_ds, loss: str, seed: int):
        """Build ``self.net_`` (a skorch NeuralNet) and train it on the given datasets."""
        callbacks = []
        if valid_ds is not None:
            callbacks.append(
                ("early_stopping", EarlyStopping(
                    monitor="valid_loss", patience=self.n_iter_no_change, threshold=0.0,
                    load_best=True, sink=print if self.verbose >= 2 else _silent,
                ))
            )
        if self.verbose >= 1:
            callbacks.append(("progress", EpochProgress(type(self).__name__)))
        user = self._skorch_kwargs()
        callbacks += list(user.pop("callbacks", None) or [])
        kwargs = {f"module__{key}": value for key, value in module_kwargs.items()}
        kwargs.update(
            module=module_cls,
            criterion=TargetLoss,
            criterion__loss=loss,
            optimizer=torch.optim.Adam,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=BatchIterator,
            iterator_valid__batch_size=max(self.batch_size, 8192),
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            callbacks=callbacks,
            verbose=0,
            device=self._device,
        )
        kwargs.update(user)
        net = NeuralNet(**kwargs)
        devices = [self._device] if self._device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            net.fit(train_ds, y=None)
        # The validation set lives in train_split; drop it so that fitted estimators
        # pickle small and hold no copy of the user's data.
        net.train_split = None
        net.module_.eval()
        self.net_ = net
        self.n_epochs_ = len(net.history)
        return net

    def _tensor(self, array: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        return torch.as_tensor(array, dtype=dtype).to(self._device)


def _silent(*args, **kwargs) -> None:
    return None
