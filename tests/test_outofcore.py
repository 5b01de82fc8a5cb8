"""Chunked (out-of-core) ensemble scoring gives the in-memory answer."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ensemblelr import PerEnsembleClassifier, PerInstanceClassifier
from ensemblelr.outofcore import score_ensembles

# Per-event outputs come from float32 forward passes whose rounding can depend on
# the batch shape; sums of 6-20 of them agree to well below this.
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1000, 2))
    y = (X[:, 0] + rng.normal(size=1000) > 0).astype(int)
    clf = PerInstanceClassifier(
        hidden_layer_sizes=(8,), max_epochs=2, early_stopping=False, random_state=0
    ).fit(X, y)
    return clf


@pytest.fixture(scope="module")
def ensembles():
    rng = np.random.default_rng(2)
    return rng.normal(size=(53, 6, 2))


def test_array_source_matches_in_memory(fitted, ensembles):
    expected = fitted.predict_ensemble_log_ratio(ensembles)
    for chunk_size in (1, 7, 53, 1000):
        got = score_ensembles(fitted, ensembles, chunk_size=chunk_size)
        assert got.shape == (53,)
        assert_allclose(got, expected, **TOL)


class _RecordingArray:
    """Array-like that records which slices are read."""

    def __init__(self, array):
        self._array = array
        self.shape = array.shape
        self.ndim = array.ndim
        self.reads = []

    def __getitem__(self, key):
        self.reads.append((key.start, key.stop))
        return self._array[key]


def test_nested_list_is_one_array_and_list_of_arrays_is_chunks(fitted, ensembles):
    expected = fitted.predict_ensemble_log_ratio(ensembles)
    assert_allclose(score_ensembles(fitted, ensembles.tolist(), chunk_size=10), expected, **TOL)
    assert_allclose(score_ensembles(fitted, [ensembles[:30], ensembles[30:]]), expected, **TOL)


def test_reads_one_chunk_at_a_time(fitted, ensembles):
    source = _RecordingArray(ensembles)
    score_ensembles(fitted, source, chunk_size=10)
    assert source.reads == [(0, 10), (10, 20), (20, 30), (30, 40), (40, 50), (50, 60)]


def test_iterator_source_with_padding_and_mixed_sizes(fitted, ensembles):
    padded = np.concatenate([ensembles[:5], np.full((5, 3, 2), np.nan)], axis=1)
    small = ensembles[5:9, :4]
    chunks = [ensembles[9:30], padded, small, ensembles[30:]]
    expected = np.concatenate([fitted.predict_ensemble_log_ratio(c) for c in chunks])
    got = score_ensembles(fitted, iter(chunks), chunk_size=8)
    assert got.shape == (53,)
    assert_allclose(got, expected, **TOL)
    # Padding rows contribute nothing: padded ensembles score as the unpadded ones.
    assert_allclose(got[21:26], fitted.predict_ensemble_log_ratio(ensembles[:5]), **TOL)


def test_hdf5_source(fitted, ensembles, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "ensembles.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("E", data=ensembles.astype(np.float32), chunks=(8, 6, 2))
    expected = fitted.predict_ensemble_log_ratio(ensembles.astype(np.float32))
    with h5py.File(path, "r") as f:
        got_default = score_ensembles(fitted, f["E"])
        got_chunked = score_ensembles(fitted, f["E"], chunk_size=5)
    assert_allclose(got_default, expected, **TOL)
    assert_allclose(got_chunked, expected, **TOL)


def test_dask_array_source(fitted, ensembles):
    da = pytest.importorskip("dask.array")
    source = da.from_array(ensembles, chunks=(10, 3, 2))
    expected = fitted.predict_ensemble_log_ratio(ensembles)
    assert_allclose(score_ensembles(fitted, source), expected, **TOL)
    assert_allclose(score_ensembles(fitted, source, chunk_size=4), expected, **TOL)


def test_progress_bar_counts_ensembles(fitted, ensembles, capsys):
    score_ensembles(fitted, ensembles, chunk_size=20, progress=True)
    err = capsys.readouterr().err
    assert "53/53" in err


def test_per_ensemble_model_uses_its_log_ratio(ensembles):
    rng = np.random.default_rng(3)
    E = rng.normal(size=(40, 6, 2))
    y = np.arange(40) % 2
    model = PerEnsembleClassifier(
        Phi_sizes=(4,), F_sizes=(4,), max_epochs=1, early_stopping=False, random_state=0
    ).fit(E, y)
    assert_allclose(
        score_ensembles(model, ensembles, chunk_size=9), model.decision_function(ensembles), **TOL
    )


class _GridModel(BaseEstimator):
    """Stub with a 2-D output method taking keyword arguments."""

    def fit(self):
        self.fitted_ = True
        return self

    def log_likelihood_ratio(self, E, thetas):
        return E.sum(axis=(1, 2))[:, None] * np.asarray(thetas)[None, :]


def test_method_and_keyword_arguments(ensembles):
    model = _GridModel().fit()
    thetas = np.array([-1.0, 0.0, 2.0])
    got = score_ensembles(model, iter([ensembles[:20], ensembles[20:]]), method="log_likelihood_ratio",
                          thetas=thetas, chunk_size=6)
    assert got.shape == (53, 3)
    assert_allclose(got, model.log_likelihood_ratio(ensembles, thetas))


def test_bad_input(fitted, ensembles):
    with pytest.raises(ValueError, match="3-D"):
        score_ensembles(fitted, ensembles[0])
    with pytest.raises(ValueError, match="item 1 of source"):
        score_ensembles(fitted, [ensembles[:3], ensembles[0]])
    with pytest.raises(ValueError, match="no ensembles"):
        score_ensembles(fitted, iter([]))
    with pytest.raises(ValueError, match="chunk_size"):
        score_ensembles(fitted, ensembles, chunk_size=0)
    with pytest.raises(TypeError, match="source"):
        score_ensembles(fitted, "ensembles.h5")
    with pytest.raises(TypeError, match="source"):
        score_ensembles(fitted, 3.0)
    with pytest.raises(TypeError, match="no method 'nope'"):
        score_ensembles(fitted, ensembles, method="nope")
    with pytest.raises(TypeError, match="none of the methods"):
        score_ensembles(_GridModel().fit(), ensembles)
    with pytest.raises(NotFittedError):
        score_ensembles(PerInstanceClassifier(), ensembles)
    # Validation inside the estimator still applies to every chunk.
    with pytest.raises(ValueError, match="features"):
        score_ensembles(fitted, np.zeros((4, 3, 5)), chunk_size=2)
