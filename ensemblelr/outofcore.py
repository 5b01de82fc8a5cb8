"""Scoring ensembles that do not fit in memory, chunk by chunk.

:func:`score_ensembles` streams ensembles from an HDF5 dataset, a memory map, a
dask array or any iterator of 3-D arrays through a fitted estimator and returns
the concatenated scores (one float per ensemble, so the output is small even when
the input is billions of events). :func:`score_ensembles_dask` is the lazy variant
for a dask cluster: every block of ensembles is scored on the worker holding it.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Iterator

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._validation import ENSEMBLE_CONVENTION, check_positive_int

# Events read per chunk when the caller gives no chunk_size: 32 MB of float64 with
# four features, large enough that reading and Python overhead stay small next to
# the network, small enough for any worker.
DEFAULT_CHUNK_EVENTS = 1 << 20

_DEFAULT_METHODS = ("predict_ensemble_log_ratio", "decision_function")


def _scoring_function(estimator, method: str | None):
    """The bound method that scores one chunk of ensembles."""
    if method is None:
        for name in _DEFAULT_METHODS:
            if callable(getattr(estimator, name, None)):
                method = name
                break
        else:
            raise TypeError(
                f"{type(estimator).__name__} has none of the methods {list(_DEFAULT_METHODS)}; "
                "pass method= naming the method that scores 3-D ensembles."
            )
    if not isinstance(method, str):
        raise TypeError(f"method must be the name of an estimator method, got {method!r}.")
    function = getattr(estimator, method, None)
    if not callable(function):
        raise TypeError(f"{type(estimator).__name__} has no method {method!r}.")
    check_is_fitted(estimator)
    return function


def _check_chunk_shape(shape: tuple, where: str) -> None:
    if len(shape) != 3:
        raise ValueError(f"{where} has shape {shape}; {ENSEMBLE_CONVENTION}")


def _is_sliceable(source) -> bool:
    """Array-like sources (numpy, memmap, h5py, dask, zarr): known shape, sliceable."""
    return hasattr(source, "shape") and hasattr(source, "__getitem__") and hasattr(source, "ndim")


def _materialize(chunk) -> np.ndarray:
    """A numpy array from a chunk; dask chunks are computed here, one at a time."""
    if hasattr(chunk, "compute") and not isinstance(chunk, np.ndarray):
        chunk = chunk.compute()
    return np.asarray(chunk)


def _default_chunk_size(shape: tuple, storage_chunks) -> int:
    """Ensembles per chunk: about DEFAULT_CHUNK_EVENTS events, on storage boundaries."""
    size = max(1, DEFAULT_CHUNK_EVENTS // max(1, shape[1]))
    if storage_chunks is not None:
        first = storage_chunks[0]
        # dask gives a tuple of block lengths per axis, h5py/zarr one length per axis.
        step = int(first[0]) if isinstance(first, tuple) else int(first)
        if step > 0:
            size = max(step, size // step * step)
    return size


def _array_chunks(source, chunk_size: int | None) -> tuple[Iterator[np.ndarray], int]:
    shape = tuple(source.shape)
    _check_chunk_shape(shape, "source")
    n = shape[0]
    if chunk_size is None:
        chunk_size = _default_chunk_size(shape, getattr(source, "chunks", None))

    def chunks():
        for start in range(0, n, chunk_size):
            yield _materialize(source[start : start + chunk_size])

    return chunks(), n


def _iterable_chunks(source: Iterable, chunk_size: int | None) -> Iterator[np.ndarray]:
    for i, item in enumerate(source):
        chunk = _materialize(item)
        _check_chunk_shape(chunk.shape, f"item {i} of source")
        if chunk_size is None or len(chunk) <= chunk_size:
            yield chunk
        else:
            for start in range(0, len(chunk), chunk_size):
                yield chunk[start : start + chunk_size]


def score_ensembles(
    estimator,
    source,
    *,
    chunk_size: int | None = None,
    method: str | None = None,
    progress: bool = False,
    **method_kwargs,
) -> np.ndarray:
    """Score ensembles chunk by chunk, reading one chunk into memory at a time.

    Parameters
    ----------
    estimator : fitted estimator
        Anything with a method taking 3-D ensembles, e.g. a fitted
        :class:`~ensemblelr.PerInstanceClassifier` or
        :class:`~ensemblelr.PerEnsembleClassifier`.
    source : array-like of shape (n_ensembles, ensemble_size, n_features) or iterable
        An HDF5 dataset (``h5py.Dataset``), numpy array or memmap, dask array (one
        chunk computed at a time), or an iterable of 3-D arrays (chunks may differ in
        length and, for models that allow it, in ensemble size). Rows of NaN are
        padding, as everywhere in this package.
    chunk_size : int, optional
        Ensembles per call of the estimator. Default: about 2**20 events per chunk,
        rounded to the storage chunks of an HDF5 or dask source; an iterable's
        items are used as they come (and split when larger than ``chunk_size``).
    method : str, optional
        Name of the scoring method; default ``predict_ensemble_log_ratio``, else
        ``decision_function``.
    progress : bool, default=False
        Show a tqdm progress bar counting ensembles.
    **method_kwargs
        Passed to the scoring method, e.g. ``thetas=`` for
        ``method="log_likelihood_ratio"`` of a parametrized regressor.

    Returns
    -------
    scores : ndarray of shape (n_ensembles,) or (n_ensembles, ...)
        The method's output for every ensemble, in source order, concatenated
        along the first axis.

    Examples
    --------
    >>> import h5py
    >>> with h5py.File("ensembles.h5") as f:  # doctest: +SKIP
    ...     log_ratio = score_ensembles(clf, f["E"], progress=True)
    """
    function = _scoring_function(estimator, method)
    if "mask" in method_kwargs:
        # One mask for the whole source would be passed unchanged to every chunk.
        raise ValueError(
            "score_ensembles cannot split mask= into chunks; mark padded events as rows of NaN in "
            "the source instead."
        )
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    if isinstance(source, (str, bytes, dict)) or isinstance(source, numbers.Number):
        raise TypeError(
            f"source must be a 3-D array, an HDF5 or dask array, or an iterable of 3-D arrays; "
            f"got {type(source).__name__}."
        )
    if isinstance(source, (list, tuple)) and source and np.ndim(source[0]) == 2:
        # A nested list of ensembles, not a list of chunks.
        source = np.asarray(source)
    if _is_sliceable(source):
        chunks, total = _array_chunks(source, chunk_size)
    else:
        try:
            iter(source)
        except TypeError:
            raise TypeError(
                f"source of type {type(source).__name__} is neither an array nor iterable."
            ) from None
        chunks, total = _iterable_chunks(source, chunk_size), None

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="scoring", unit="ensembles")
    parts = []
    done = 0
    try:
        for chunk in chunks:
            if len(chunk) == 0:
                continue
            try:
                parts.append(np.asarray(function(chunk, **method_kwargs)))
            except ValueError as exc:
                # Positions in the message are relative to the chunk; say where it starts.
                raise ValueError(f"{exc} (in the chunk starting at ensemble {done} of source)") from exc
            done += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    if not parts:
        raise ValueError("source holds no ensembles; nothing to score.")
    return np.concatenate(parts, axis=0)


def score_ensembles_dask(estimator, E, *, method: str | None = None, **method_kwargs):
    """Lazy scores of a dask array of ensembles, one task per block of ensembles.

    On a ``dask.distributed`` cluster each worker scores the blocks it holds, so
    inputs larger than any single machine can be scored; the estimator is sent to
    the workers (it pickles, and is small).

    Parameters
    ----------
    estimator : fitted estimator
        As for :func:`score_ensembles`; its method must return one value per ensemble.
    E : dask.array.Array of shape (n_ensembles, ensemble_size, n_features)
        Chunked along the first axis only (other axes are merged if chunked).
    method : str, optional
    **method_kwargs
        Passed to the scoring method.

    Returns
    -------
    scores : dask.array.Array of shape (n_ensembles,)
        Call ``.compute()`` (or ``dask.compute``) to evaluate.
    """
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - dask is an optional extra
        raise ImportError("score_ensembles_dask needs dask: pip install 'dask[array]'.") from exc
    function = _scoring_function(estimator, method)
    if "mask" in method_kwargs:
        raise ValueError(
            "score_ensembles_dask cannot split mask= into blocks; mark padded events as rows of NaN "
            "in E instead."
        )
    if not isinstance(E, da.Array):
        raise TypeError(f"E must be a dask array, got {type(E).__name__}; use score_ensembles.")
    _check_chunk_shape(tuple(E.shape), "E")
    E = E.rechunk({1: -1, 2: -1})

    def score_block(block: np.ndarray) -> np.ndarray:
        scores = np.asarray(function(block, **method_kwargs), dtype=np.float64)
        if scores.shape != (len(block),):
            raise ValueError(
                f"score_ensembles_dask needs one score per ensemble, but the method returned "
                f"shape {scores.shape} for {len(block)} ensembles; use score_ensembles."
            )
        return scores

    return E.map_blocks(score_block, drop_axis=[1, 2], dtype=np.float64, meta=np.empty(0))
