"""Fast data path and skorch plumbing shared by the estimators.

skorch's default ``Dataset``/``DataLoader`` fetch one sample at a time and collate
them, which costs more than the forward/backward pass of the small networks used
here. The training data are therefore held as tensors (moved to the device once)
and served a whole mini-batch at a time by :class:`BatchIterator`, which skorch
uses as ``iterator_train`` / ``iterator_valid``. Prediction bypasses skorch and runs
the bare module under ``torch.inference_mode`` on large chunks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn
from torch.utils.data import Dataset


class TensorBatchDataset(Dataset):
    """Tensors indexed a whole batch at a time.

    Parameters
    ----------
    X : Tensor or dict of Tensor
        Inputs; a dict is passed to the module as keyword arguments.
    y : Tensor
        Targets of shape (n,) or (n, 2) (target, sample weight).
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, index: torch.Tensor):
        if isinstance(self.X, dict):
            X = {key: value[index] for key, value in self.X.items()}
        else:
            X = self.X[index]
        return X, self.y[index]

    def __getitem__(self, i):
        return self.batch(torch.as_tensor(i))

    def __getitems__(self, indices):
        return self.batch(torch.as_tensor(indices))

    def resample(self) -> None:
        """Hook called at the start of every training epoch; static data do nothing."""


class RegroupedEnsembleDataset(TensorBatchDataset):
    """Ensembles formed from labelled events, regrouped at random every epoch.

    Events of one class are shuffled and cut into ensembles of ``ensemble_size``;
    a remainder smaller than an ensemble sits out that epoch only. Regrouping is a
    data augmentation: over many epochs the model sees many more distinct ensembles
    than a fixed grouping provides.
    """

    def __init__(self, events: torch.Tensor, labels: np.ndarray, ensemble_size: int, weights=None):
        self.events = events
        self.ensemble_size = ensemble_size
        self._class_indices = [torch.as_tensor(np.flatnonzero(labels == c)) for c in (0.0, 1.0)]
        self._weights = weights
        self.resample(shuffle=False)

    def resample(self, shuffle: bool = True) -> None:
        groups, targets = [], []
        for label, idx in enumerate(self._class_indices):
            if shuffle:
                idx = idx[torch.randperm(len(idx))]
            n_ensembles = len(idx) // self.ensemble_size
            groups.append(idx[: n_ensembles * self.ensemble_size].view(n_ensembles, self.ensemble_size))
            targets.append(torch.full((n_ensembles,), float(label)))
        self.index = torch.cat(groups).to(self.events.device)
        y = torch.cat(targets)
        if self._weights is not None:
            y = torch.stack([y, self._weights[torch.cat(groups)].mean(dim=1)], dim=1)
        self.y = y.to(self.events.device)

    def batch(self, index: torch.Tensor):
        return self.events[self.index[index]], self.y[index]


class BatchIterator:
    """Minimal replacement of ``DataLoader`` for :class:`TensorBatchDataset`.

    Shuffling draws from torch's global generator, which the estimators seed from
    ``random_state`` inside a forked RNG state, so fits are reproducible without
    touching the caller's random state.
    """

    def __init__(self, dataset: TensorBatchDataset, batch_size: int = 128, shuffle: bool = False):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        if self.shuffle:
            self.dataset.resample()
        n = len(self.dataset)
        device = self.dataset.y.device
        order = torch.randperm(n, device=device) if self.shuffle else torch.arange(n, device=device)
        for start in range(0, n, self.batch_size):
            yield self.dataset.batch(order[start : start + self.batch_size])


class TargetLoss(nn.Module):
    """Weighted mean loss on logits; targets are (n,) or (n, 2) = (target, weight).

    ``loss="bce"`` is binary cross-entropy; ``"mlc"`` the maximum-likelihood-classifier
    loss ``(1 - y)(exp f - 1) - y f`` whose minimizer is the log ratio itself (plus the
    log prior odds of the training classes); ``"mse"`` is for regression.
    """

    def __init__(self, loss: str = "bce"):
        super().__init__()
        self.loss = loss

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.dim() == 2:
            target, weight = target[:, 0], target[:, 1]
        else:
            weight = None
        if self.loss == "bce" and weight is None:
            # The fused mean reduction saves a kernel and a backward node per step.
            return nn.functional.binary_cross_entropy_with_logits(output, target)
        if self.loss == "bce":
            per_sample = nn.functional.binary_cross_entropy_with_logits(output, target, reduction="none")
        elif self.loss == "mlc":
            # exp is clamped so that a diverging early step cannot produce inf.
            per_sample = (1 - target) * torch.expm1(output.clamp(max=30.0)) - target * output
        else:
            per_sample = (output - target) ** 2
        if weight is None:
            return per_sample.mean()
        return (per_sample * weight).mean()


class EpochProgress(Callback):
    """One progress bar over epochs with the latest losses (shown when verbose >= 1)."""

    def __init__(self, description: str = "training"):
        self.description = description

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=net.max_epochs, desc=self.description, unit="epoch", leave=True)

    def on_epoch_end(self, net, **kwargs):
        last = net.history[-1]
        postfix = {key: f"{last[key]:.4f}" for key in ("train_loss", "valid_loss") if key in last}
        self.bar_.set_postfix(postfix, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("bar_", None)
        return state


def resolve_device(device) -> torch.device:
    """Return a torch device, with a clear error when CUDA is asked for but absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA GPU; use device='cpu'.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but it is not available; use device='cpu'.")
    return dev


def run_in_chunks(
    function: Callable[..., torch.Tensor],
    arrays: list[np.ndarray | None],
    chunk_size: int,
    device: torch.device,
    module: nn.Module,
) -> np.ndarray:
    """Evaluate ``function(*tensors)`` on consecutive chunks of ``arrays``.

    Inputs are converted to float32 tensors chunk by chunk, so peak memory is the
    input plus one chunk's working set. Results come back as float64 numpy.
    """
    n = len(arrays[0])
    # One preallocated output: a list of small per-chunk arrays interleaved with the
    # freed activations fragmented the heap and kept ~25 bytes per event resident.
    out = None
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, chunk_size):
                tensors = []
                for array in arrays:
                    if array is None:
                        tensors.append(None)
                        continue
                    part = array[start : start + chunk_size]
                    dtype = torch.bool if part.dtype == bool else torch.float32
                    if not part.flags.writeable:
                        # Read-only input (pandas, memmaps) makes torch warn; copy the chunk.
                        part = part.astype(bool if dtype == torch.bool else np.float32)
                    tensors.append(torch.as_tensor(part, dtype=dtype).to(device, non_blocking=True))
                result = function(*tensors).to("cpu", torch.float64).numpy()
                # Finite float64 inputs near or beyond the float32 range overflow inside the
                # network and come out as NaN; refuse them rather than return NaN.
                if np.isnan(result).any():
                    raise ValueError(
                        "the network returned NaN: the input holds values too large for float32 "
                        "arithmetic (|x| near or above 3.4e38); rescale the features."
                    )
                if out is None:
                    out = np.empty((n, *result.shape[1:]))
                out[start : start + chunk_size] = result
    finally:
        module.train(was_training)
    return np.empty(0) if out is None else out
