"""Input validation shared by every estimator.

Events are 2-D arrays ``(n_events, n_features)``; ensembles are 3-D arrays
``(n_ensembles, ensemble_size, n_features)`` in which a row of NaN marks a padded
(missing) event. These helpers turn user input into clean float arrays plus an
event mask, and raise a ``ValueError`` that names the problem otherwise.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.multiclass import type_of_target

ENSEMBLE_CONVENTION = (
    "ensembles must be a 3-D array of shape (n_ensembles, ensemble_size, n_features); "
    "pad variable-size ensembles with rows of NaN (or pass mask=). For a single "
    "ensemble use E[np.newaxis]; to group 2-D events into ensembles use "
    "ensemblelr.make_ensembles."
)


def input_ndim(X) -> int:
    """Number of dimensions of array-like ``X`` without dispatching numpy functions on it.

    ``np.ndim`` goes through ``__array_function__``, which array-likes may refuse;
    an unconvertible (e.g. ragged) input reports 2 and fails later with a clear error.
    """
    ndim = getattr(X, "ndim", None)
    if isinstance(ndim, int):
        return ndim
    try:
        return np.asarray(X).ndim
    except (TypeError, ValueError):
        return 2


def check_event_array(X, name: str = "X") -> None:
    """Reject event input that sklearn's conversion would silently misread.

    A masked array loses its mask (the hidden values would be used) and datetimes
    become integers.
    """
    if isinstance(X, np.ma.MaskedArray) and np.ma.getmaskarray(X).any():
        raise ValueError(
            f"{name} is a masked array with masked entries; drop the masked events (or, for "
            "ensembles, pass a 3-D array whose padded events are rows of NaN)."
        )
    dtype = getattr(X, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind in "mM":
        raise ValueError(f"{name} must be numeric, got dtype {dtype}.")


def check_positive_int(value, name: str, *, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int, or raise if it is not a positive integer."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def check_layer_sizes(sizes, name: str, *, allow_empty: bool = True) -> tuple[int, ...]:
    """Validate a sequence of hidden-layer widths."""
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {sizes!r}.") from None
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must contain at least one layer size.")
    for size in sizes:
        check_positive_int(size, f"every entry of {name}")
    return tuple(int(s) for s in sizes)


def check_bool(value, name: str) -> bool:
    """Return ``value`` as a bool, or raise if it is not True or False.

    Strings such as ``"no"`` are truthy; accepting them would silently turn an
    option on.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


def check_fraction(value, name: str, *, low_open: bool = True, high_open: bool = True) -> float:
    """Check that ``value`` is a real number inside (0, 1) (ends as requested)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}.")
    too_low = value <= 0 if low_open else value < 0
    too_high = value >= 1 if high_open else value > 1
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must lie in {lo}0, 1{hi}, got {value!r}.")
    return float(value)


def check_ensembles(
    E,
    mask=None,
    *,
    n_features: int | None = None,
    name: str = "E",
    allow_padding: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate an ensemble array.

    Parameters
    ----------
    E : array-like of shape (n_ensembles, ensemble_size, n_features)
        Ensembles; rows that are entirely NaN are padding.
    mask : array-like of shape (n_ensembles, ensemble_size), optional
        True for real events. Events where ``mask`` is False are ignored and may
        hold any value, NaN included.
    n_features : int, optional
        Expected number of features (set by ``fit``).
    allow_padding : bool
        If False, padded events raise (models that need full ensembles).

    Returns
    -------
    E : ndarray of shape (n_ensembles, ensemble_size, n_features), float32 or float64
        The input itself when it is float and unpadded; otherwise a copy in which
        padded events are replaced by zeros so that they are finite.
    mask : ndarray of bool of shape (n_ensembles, ensemble_size) or None
        None when every event is real.
    """
    if hasattr(E, "toarray") or hasattr(E, "tocsr"):
        raise TypeError(f"{name}: sparse input is not supported; pass a dense 3-D array.")
    try:
        if isinstance(E, np.ma.MaskedArray):
            # np.asarray would drop the mask and use the hidden values. As NaN, fully
            # masked events become padding and partly masked ones raise below.
            E = np.ma.filled(E.astype(np.float64), np.nan)
        E = np.asarray(E)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array: {exc}. {ENSEMBLE_CONVENTION}") from exc
    if E.dtype.kind in "mM":
        raise ValueError(f"{name} must be numeric, got dtype {E.dtype}.")
    if E.dtype == object or not (np.issubdtype(E.dtype, np.number) or E.dtype == bool):
        try:
            E = E.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric, got dtype {E.dtype}.") from exc
    if np.iscomplexobj(E):
        raise ValueError(f"{name} must be real-valued, got complex dtype {E.dtype}.")
    if E.ndim != 3:
        raise ValueError(f"{name} has {E.ndim} dimension(s) with shape {E.shape}; {ENSEMBLE_CONVENTION}")
    n_ensembles, ensemble_size, n_feat = E.shape
    if n_ensembles == 0 or ensemble_size == 0 or n_feat == 0:
        raise ValueError(f"{name} is empty (shape {E.shape}); need at least one ensemble, event and feature.")
    if n_features is not None and n_feat != n_features:
        raise ValueError(
            f"{name} has {n_feat} features per event, but the estimator was fitted with "
            f"{n_features} features."
        )
    # Float input is used as is (no copy): large ensemble arrays are only read.
    if E.dtype not in (np.float32, np.float64):
        E = E.astype(np.float64)

    if mask is not None:
        try:
            mask = np.asarray(mask)
        except ValueError as exc:  # ragged lists
            raise ValueError(f"mask could not be converted to an array: {exc}") from exc
        if mask.shape != E.shape[:2]:
            raise ValueError(
                f"mask must have shape {E.shape[:2]} (n_ensembles, ensemble_size), got {mask.shape}."
            )
        if mask.dtype != bool:
            if not np.all(np.isin(mask, (0, 1))):
                raise ValueError("mask must be boolean (True = real event).")
            mask = mask.astype(bool)
        if not mask.all():
            E = E.copy()
            E[~mask] = 0.0
    nan_events = np.isnan(E)
    if nan_events.any():
        nan_rows = nan_events.all(axis=2)
        partial = nan_events.any(axis=2) & ~nan_rows
        if partial.any():
            i, j = np.argwhere(partial)[0]
            raise ValueError(
                f"{name} contains NaN in event {j} of ensemble {i} that is not a fully padded "
                "row; only entire rows of NaN mark padding."
            )
        if mask is not None:
            # Events under mask=False were zero-filled above, so these rows are marked real.
            i, j = np.argwhere(nan_rows)[0]
            raise ValueError(
                f"{name}: event {j} of ensemble {i} is all NaN (or masked) but mask marks it as a real "
                "event; set mask to False for padding (or omit mask and keep the NaN rows)."
            )
        mask = ~nan_rows
        E = E.copy()
        E[nan_rows] = 0.0
    del nan_events
    if not np.isfinite(E).all():
        raise ValueError(f"{name} contains infinite values.")
    if mask is not None:
        if mask.all():
            mask = None
        else:
            empty = ~mask.any(axis=1)
            if empty.any():
                raise ValueError(
                    f"{name}: ensemble {int(np.flatnonzero(empty)[0])} has no events (all padding)."
                )
            if not allow_padding:
                raise ValueError(
                    f"{name} contains padded events, but this model needs complete ensembles of "
                    "a fixed size; use architecture='deepsets' or 'logratio_sum' for variable sizes."
                )
    return E, mask


def check_binary_labels(y, *, name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """Check that ``y`` holds exactly two classes; return (classes, y01 as float)."""
    target_type = type_of_target(y, input_name=name)
    if target_type == "continuous":
        values = np.unique(y)
        raise ValueError(
            f"{name} must hold class labels (0 = background, 1 = signal); got continuous "
            f"values such as {values[:3]}."
        )
    try:
        classes, y_encoded = np.unique(y, return_inverse=True)
    except TypeError as exc:
        # Labels of mixed types (e.g. 0 and "signal" in an object array) cannot be ordered.
        raise TypeError(
            f"{name} mixes label types that cannot be compared ({exc}); use one type, e.g. "
            "0 = background, 1 = signal."
        ) from None
    if len(classes) == 1:
        raise ValueError(
            f"{name} contains only one class ({classes[0]!r}); need 2 classes "
            "(0 = background, 1 = signal)."
        )
    if len(classes) != 2:
        raise ValueError(
            f"Only binary classification is supported: {name} contains {len(classes)} classes "
            f"{list(classes[:5])}; use 0 = background, 1 = signal."
        )
    return classes, y_encoded.astype(np.float64)


def check_labels_1d(y, n_samples: int, *, name: str = "y") -> np.ndarray:
    """Accept y of shape (n,) or (n, 1) and return it as 1-D."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must have shape (n,) or (n, 1), got {y.shape}.")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} entries but the data has {n_samples}.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return y


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    """Validate sample weights: finite, non-negative, not all zero."""
    if sample_weight is None:
        return np.ones(n_samples)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}.")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinite values.")
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative.")
    with np.errstate(over="ignore"):
        total = w.sum()
    if total <= 0:
        raise ValueError("sample_weight sums to zero; nothing to learn from.")
    # Only ratios of weights matter. Weights near the float64 limits would overflow
    # (sum = inf) or lose precision (subnormals) in the means and log odds taken later.
    if not np.isfinite(total) or w.max() < 1e-150:
        w = w / w.max()
    return w


def check_skorch_objects(skorch_kwargs: dict) -> None:
    """TypeError for an ``optimizer`` or ``callbacks`` that skorch would fail on obscurely."""
    from skorch.callbacks import Callback

    optimizer = skorch_kwargs.get("optimizer")
    if optimizer is not None and not callable(optimizer):
        raise TypeError(f"optimizer must be a torch optimizer class, e.g. torch.optim.SGD, got {optimizer!r}")
    callbacks = skorch_kwargs.get("callbacks")
    if callbacks is None:
        return
    if isinstance(callbacks, (str, Callback)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a list of skorch callbacks, got {callbacks!r}.")
    for entry in callbacks:
        callback = entry[1] if isinstance(entry, tuple) and len(entry) == 2 else entry
        is_class = isinstance(callback, type) and issubclass(callback, Callback)
        if not (isinstance(callback, Callback) or is_class):
            raise TypeError(
                f"callbacks must hold skorch Callback objects or (name, Callback) pairs, got {entry!r}."
            )
