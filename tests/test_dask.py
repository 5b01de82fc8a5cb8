"""Scale-out on dask: grid search under joblib's dask backend, lazy ensemble scoring."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from ensemblelr import PerInstanceClassifier, ensemble_scorer  # noqa: E402
from ensemblelr.outofcore import score_ensembles_dask  # noqa: E402


@pytest.fixture(scope="module")
def client():
    # In-process worker threads: the dask scheduler, serialization and joblib
    # dispatch are all exercised without process start-up (torch imports take tens
    # of seconds on a busy 2-core runner). Concurrent seeded fits in threads take
    # turns on torch's global generator, so they reproduce the sequential search.
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(0)
    n = 600
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 2)) + 1.0 * y[:, None]
    return X, y


def test_grid_search_under_dask_backend_matches_sequential(client, events):
    X, y = events
    search = GridSearchCV(
        PerInstanceClassifier(lr=0.01, batch_size=32, max_epochs=5, early_stopping=False, random_state=0),
        {"hidden_layer_sizes": [(4,), (8, 8)]},
        scoring=ensemble_scorer("roc_auc", ensemble_size=5, random_state=0),
        cv=2,
        n_jobs=-1,
    )
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        search.fit(X, y)
    assert len(stream.data) >= 4, "the candidate fits did not run on the dask cluster"
    sequential = GridSearchCV(search.estimator, search.param_grid, scoring=search.scoring, cv=2, n_jobs=1)
    sequential.fit(X, y)
    assert_allclose(
        search.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"], rtol=1e-6
    )
    assert search.best_params_ == sequential.best_params_
    # Means 1 apart in 2 features: per-event AUC 0.84, far higher on ensembles of 5.
    assert search.cv_results_["mean_test_score"].min() > 0.9


def test_seeded_fits_in_concurrent_threads_reproduce(events):
    """In-process workers run fits in threads; each must still follow its own seed."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = events

    def fit(seed):
        clf = PerInstanceClassifier(hidden_layer_sizes=(8,), batch_size=32, max_epochs=3,
                                    early_stopping=False, random_state=seed)
        return clf.fit(X, y).decision_function(X[:20])

    sequential = [fit(seed) for seed in (0, 1)]
    with ThreadPoolExecutor(2) as pool:
        concurrent = list(pool.map(fit, (0, 1)))
    for expected, got in zip(sequential, concurrent):
        assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_score_ensembles_dask_matches_in_memory(client, events):
    X, y = events
    clf = PerInstanceClassifier(hidden_layer_sizes=(8,), max_epochs=1, early_stopping=False,
                                random_state=0).fit(X, y)
    E = np.random.default_rng(1).normal(size=(45, 7, 2))
    lazy = score_ensembles_dask(clf, da.from_array(E, chunks=(10, 7, 1)))
    assert lazy.shape == (45,)
    assert_allclose(lazy.compute(), clf.predict_ensemble_log_ratio(E), rtol=1e-5, atol=1e-5)


def test_score_ensembles_dask_bad_input(client, events):
    X, y = events
    clf = PerInstanceClassifier(hidden_layer_sizes=(4,), max_epochs=1, early_stopping=False,
                                random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="dask array"):
        score_ensembles_dask(clf, np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="3-D"):
        score_ensembles_dask(clf, da.zeros((3, 2)))
    with pytest.raises(ValueError, match="one score per ensemble"):
        score_ensembles_dask(clf, da.zeros((3, 2, 2)), method="predict_ensemble_proba").compute()
