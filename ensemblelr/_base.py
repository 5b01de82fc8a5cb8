"""Base class: an sklearn estimator that builds and trains a skorch network in ``fit``.

The public estimators keep only their hyper-parameters as attributes (sklearn's
rule); the skorch ``NeuralNet`` is a fitted attribute ``net_``. Extra skorch
parameters (``optimizer=``, ``optimizer__weight_decay=``, ``callbacks=`` ...) are
accepted as keyword arguments, reported by ``get_params`` and settable with
``set_params``, so they can be grid-searched like any other parameter.
"""

from __future__ import annotations

import numbers
import threading
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, LRScheduler
from skorch.helper import predefined_split
from torch.optim.lr_scheduler import CosineAnnealingLR, ReduceLROnPlateau

from ._training import BatchIterator, EpochProgress, TargetLoss, resolve_device
from ._validation import check_bool, check_fraction, check_positive_int, check_skorch_objects

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

# Fits seed and draw from torch's one global generator. Fits running in threads of
# one process (joblib's threading backend, in-process dask workers) would reseed
# each other mid-training, so a seeded fit would not reproduce; they take turns.
_TORCH_RNG_LOCK = threading.RLock()

# Events evaluated per forward pass at prediction time: large enough to amortize
# Python overhead, small enough that 64-wide activations (8 MB) stay near the CPU
# caches; 2**17 events ran 2.7x slower on CPU (benchmarks/bench_speed.py).
PREDICT_CHUNK_EVENTS = 1 << 15


class _LeanNeuralNet(NeuralNet):
    """``NeuralNet`` that does not re-walk the module tree when the mode is already set.

    skorch calls ``_set_training`` on every batch, and ``Module.train`` visits every
    submodule; for the small networks here that was about 7% of a training step.
    """

    def _set_training(self, training=True):
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)


LR_SCHEDULES = ("plateau", "cosine", "constant")


def check_lr_schedule(schedule) -> str:
    """Raise a ValueError naming the choices unless ``schedule`` is one of them."""
    if not isinstance(schedule, str) or schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}.")
    return schedule


def lr_schedule_callbacks(schedule: str, max_epochs: int, has_validation: bool) -> list:
    """skorch callbacks for a learning-rate schedule.

    ``"plateau"`` divides the learning rate by 5 after 3 epochs without improvement of
    the validation loss (the training loss without validation): the final-iterate noise
    of Adam at a constant rate otherwise exceeds the statistical error of the learned
    log ratio, e.g. on unbalanced classes. ``"cosine"`` anneals to zero over
    ``max_epochs``; ``"constant"`` adds nothing.
    """
    check_lr_schedule(schedule)
    if schedule == "cosine":
        return [("lr_schedule", LRScheduler(policy=CosineAnnealingLR, T_max=max_epochs))]
    if schedule == "plateau":
        return [("lr_schedule", LRScheduler(
            policy=ReduceLROnPlateau, monitor="valid_loss" if has_validation else "train_loss",
            patience=2, factor=0.2,
        ))]
    return []


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
        if not isinstance(self.lr, numbers.Real) or isinstance(self.lr, bool) or not 0 < self.lr < np.inf:
            raise ValueError(f"lr must be a positive number (and finite), got {self.lr!r}.")
        if not isinstance(self.verbose, numbers.Integral):
            raise ValueError(f"verbose must be an integer, got {self.verbose!r}.")
        check_bool(self.early_stopping, "early_stopping")
        check_bool(self.standardize, "standardize")
        check_lr_schedule(getattr(self, "lr_schedule", "constant"))
        check_skorch_objects(self._skorch_kwargs())
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
            n_valid = round(self.validation_fraction * len(idx))
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
                    load_best=True, sink=_report if self.verbose >= 2 else _silent,
                ))
            )
        if self.verbose >= 1:
            callbacks.append(("progress", EpochProgress(type(self).__name__)))
        user = self._skorch_kwargs()
        callbacks += self._extra_callbacks(has_validation=valid_ds is not None)
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
        net = _LeanNeuralNet(**kwargs)
        devices = [self._device] if self._device.type == "cuda" else []
        with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            net.fit(train_ds, y=None)
        # The validation set lives in train_split; drop it so that fitted estimators
        # pickle small and hold no copy of the user's data.
        net.train_split = None
        if any(torch.isnan(p).any() for p in net.module_.parameters()):
            raise ValueError(
                "training diverged: the network weights became NaN; lower lr or rescale the features."
            )
        net.module_.eval()
        self.net_ = net
        self.n_epochs_ = len(net.history)
        return net

    def _extra_callbacks(self, has_validation: bool) -> list:
        """Callbacks added to every fit: the learning-rate schedule ``self.lr_schedule``."""
        return lr_schedule_callbacks(
            getattr(self, "lr_schedule", "constant"), self.max_epochs, has_validation
        )

    def _tensor(self, array: np.ndarray, dtype=torch.float32) -> torch.Tensor:
        tensor = torch.as_tensor(array, dtype=dtype)
        # Finite float64 beyond the float32 range becomes inf here and NaN in training.
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(
                "training data hold values beyond the float32 range (|x| > 3.4e38) used by the "
                "networks; rescale the features."
            )
        return tensor.to(self._device)


def _silent(*args, **kwargs) -> None:
    return None


def _report(text: str) -> None:
    # skorch drops messages to a sink that *is* ``print`` while the net's own
    # verbose is 0 (ours always is: the progress bar replaces skorch's epoch table).
    print(text)
