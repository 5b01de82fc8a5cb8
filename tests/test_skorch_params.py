"""skorch pass-through parameters, progress output, early stopping and devices."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from ensemblelr import PerEnsembleClassifier, PerInstanceClassifier

FAST = dict(hidden_layer_sizes=(8,), max_epochs=3, lr=1e-2, batch_size=64, random_state=0)


@pytest.fixture(scope="module")
def events():
    """600 + 600 events of N(+-0.5, 1) in 2 features."""
    rng = np.random.default_rng(1)
    n = 600
    X = np.concatenate([rng.normal(0.5, 1, (n, 2)), rng.normal(-0.5, 1, (n, 2))])
    y = np.repeat([1, 0], n)
    return X, y


class EpochRecorder(Callback):
    """Counts epochs and keeps a copy of the weights and validation loss after each."""

    def __init__(self, keep_weights: bool = False):
        self.keep_weights = keep_weights

    def initialize(self):
        self.epochs_ = 0
        self.weights_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        if self.keep_weights:
            self.weights_.append(copy.deepcopy(net.module_.state_dict()))


# ------------------------------------------------------------------ parameters


def test_skorch_params_in_get_params_and_clone():
    recorder = EpochRecorder()
    model = PerInstanceClassifier(
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, optimizer__weight_decay=1e-3,
        callbacks=[("recorder", recorder)], iterator_train__shuffle=False,
    )
    params = model.get_params()
    assert params["optimizer"] is torch.optim.SGD
    assert params["optimizer__momentum"] == 0.9
    assert params["optimizer__weight_decay"] == 1e-3
    assert params["iterator_train__shuffle"] is False
    assert params["callbacks"][0][0] == "recorder"

    twin = clone(model)
    twin_params = twin.get_params()
    assert set(twin_params) == set(params)
    for key in ("optimizer", "optimizer__momentum", "optimizer__weight_decay", "iterator_train__shuffle"):
        assert twin_params[key] == params[key]
    # clone copies the callback instead of sharing it between estimators.
    assert twin_params["callbacks"][0][1] is not recorder


def test_skorch_params_reach_the_net(events):
    X, y = events
    recorder = EpochRecorder()
    model = PerInstanceClassifier(
        **FAST, early_stopping=False,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, optimizer__weight_decay=1e-3,
        callbacks=[("recorder", recorder)], iterator_train__shuffle=False,
    ).fit(X, y)
    optimizer = model.net_.optimizer_
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert group["momentum"] == 0.9
    assert group["weight_decay"] == 1e-3
    assert group["lr"] == FAST["lr"]
    assert model.net_.iterator_train__shuffle is False
    # skorch initializes the callbacks it is given: the recorder saw every epoch.
    assert dict(model.net_.callbacks_)["recorder"].epochs_ == FAST["max_epochs"] == model.n_epochs_


def test_set_params_skorch_param_reaches_the_net(events):
    X, y = events
    model = PerInstanceClassifier(**FAST, early_stopping=False)
    assert "optimizer__weight_decay" not in model.get_params()
    model.set_params(optimizer__weight_decay=0.25, hidden_layer_sizes=(4,))
    assert model.get_params()["optimizer__weight_decay"] == 0.25
    model.fit(X, y)
    assert model.net_.optimizer_.param_groups[0]["weight_decay"] == 0.25
    assert isinstance(model.net_.optimizer_, torch.optim.Adam)
    assert model.net_.module_.mlp[0].out_features == 4


def test_module_params_reach_the_module(events):
    X, y = events
    model = PerInstanceClassifier(**FAST, module__dropout=0.5).fit(X, y)
    dropouts = [layer for layer in model.net_.module_.modules() if isinstance(layer, torch.nn.Dropout)]
    assert [layer.p for layer in dropouts] == [0.5]


def test_skorch_params_on_per_ensemble(events):
    X, y = events
    model = PerEnsembleClassifier(
        architecture="logratio_sum", ensemble_size=5, **FAST, optimizer__weight_decay=0.125,
    ).fit(X, y)
    assert model.net_.optimizer_.param_groups[0]["weight_decay"] == 0.125
    assert clone(model).get_params()["optimizer__weight_decay"] == 0.125


def test_grid_search_over_skorch_param(events):
    X, y = events
    search = GridSearchCV(
        PerInstanceClassifier(**FAST, early_stopping=False),
        {"optimizer__weight_decay": [0.0, 0.5]}, cv=2,
    ).fit(X, y)
    assert [p["optimizer__weight_decay"] for p in search.cv_results_["params"]] == [0.0, 0.5]
    best = search.best_params_["optimizer__weight_decay"]
    assert search.best_estimator_.net_.optimizer_.param_groups[0]["weight_decay"] == best


def test_unknown_keyword_raises_type_error():
    with pytest.raises(TypeError, match=r"unexpected keyword argument.*hiden_layer_sizes"):
        PerInstanceClassifier(hiden_layer_sizes=(3,))
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        PerEnsembleClassifier(Phi_size=(3,))
    # set_params follows sklearn: an unknown name is a ValueError naming it.
    with pytest.raises(ValueError, match="hiden_layer_sizes"):
        PerInstanceClassifier().set_params(hiden_layer_sizes=(3,))


# -------------------------------------------------------------------- progress


def test_verbose_1_shows_per_epoch_progress_bar(events, capfd):
    X, y = events
    PerInstanceClassifier(**{**FAST, "max_epochs": 4}, early_stopping=False, verbose=1).fit(X, y)
    out, err = capfd.readouterr()
    assert out == ""
    assert "PerInstanceClassifier" in err
    assert "4/4" in err
    assert "epoch" in err
    assert "train_loss" in err


def test_verbose_0_prints_nothing(events, capfd):
    X, y = events
    model = PerInstanceClassifier(**FAST, verbose=0).fit(X, y)
    model.predict_proba(X)
    PerEnsembleClassifier(ensemble_size=4, Phi_sizes=(4,), F_sizes=(4,), max_epochs=2).fit(X, y)
    out, err = capfd.readouterr()
    assert out == ""
    assert err == ""


def test_verbose_2_reports_early_stopping(capfd):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 2)), np.repeat([0, 1], 200)  # labels carry no information
    PerInstanceClassifier(
        hidden_layer_sizes=(64, 64), lr=3e-2, batch_size=16, max_epochs=100, n_iter_no_change=2,
        random_state=0, verbose=2,
    ).fit(X, y)
    out, _ = capfd.readouterr()
    assert "Restoring best model from epoch" in out


# -------------------------------------------------------------- early stopping


def _epoch_sums(history, key: str) -> list[int]:
    return [sum(history[i, "batches", :, key]) for i in range(len(history))]


def test_no_early_stopping_trains_on_every_event(events):
    X, y = events
    model = PerInstanceClassifier(**FAST, early_stopping=False).fit(X, y)
    history = model.net_.history
    assert model.n_epochs_ == FAST["max_epochs"] == len(history)
    assert _epoch_sums(history, "train_batch_size") == [len(X)] * FAST["max_epochs"]
    assert "valid_loss" not in history[-1]


def test_early_stopping_holds_out_a_seeded_stratified_fraction(events):
    X, y = events
    model = PerInstanceClassifier(**FAST, validation_fraction=0.25).fit(X, y)
    history = model.net_.history
    # 25% of each class (600 events) is held out: 150 + 150.
    assert _epoch_sums(history, "valid_batch_size") == [300] * len(history)
    assert _epoch_sums(history, "train_batch_size") == [900] * len(history)
    # The split and training are seeded: a second fit sees the same validation losses.
    again = PerInstanceClassifier(**FAST, validation_fraction=0.25).fit(X, y)
    assert again.net_.history[:, "valid_loss"] == history[:, "valid_loss"]
    other = PerInstanceClassifier(**{**FAST, "random_state": 1}, validation_fraction=0.25).fit(X, y)
    assert other.net_.history[:, "valid_loss"] != history[:, "valid_loss"]


def test_early_stopping_stops_and_restores_best_weights():
    rng = np.random.default_rng(0)
    # Labels independent of the features: a wide network at a high learning rate
    # overfits within a few epochs, so the validation loss turns up early.
    X, y = rng.normal(size=(400, 2)), np.repeat([0, 1], 200)
    recorder = EpochRecorder(keep_weights=True)
    patience, max_epochs = 3, 100
    model = PerInstanceClassifier(
        hidden_layer_sizes=(64, 64), lr=3e-2, batch_size=16, max_epochs=max_epochs,
        n_iter_no_change=patience, random_state=0, callbacks=[("recorder", recorder)],
    ).fit(X, y)
    history = model.net_.history
    valid_loss = np.asarray(history[:, "valid_loss"])
    assert model.n_epochs_ == len(history) < max_epochs
    best = int(np.argmin(valid_loss))
    # Stopped after `patience` epochs without improvement on the best one.
    assert model.n_epochs_ == best + 1 + patience
    weights = dict(model.net_.callbacks_)["recorder"].weights_
    # Early stopping ends the last epoch before later callbacks see it.
    assert len(weights) == model.n_epochs_ - 1
    restored = model.net_.module_.state_dict()
    for name, value in weights[best].items():
        torch.testing.assert_close(restored[name], value, rtol=0, atol=0)
    # ... and not the last epoch's weights.
    assert any(not torch.equal(restored[name], value) for name, value in weights[-1].items())


def test_early_stopping_per_ensemble_reports_epochs(events):
    X, y = events
    model = PerEnsembleClassifier(
        architecture="deepsets", ensemble_size=4, Phi_sizes=(8,), F_sizes=(8,),
        max_epochs=5, random_state=0,
    ).fit(X, y)
    history = model.net_.history
    assert model.n_epochs_ == len(history) <= 5
    assert "valid_loss" in history[-1]
    no_stop = clone(model).set_params(early_stopping=False).fit(X, y)
    assert "valid_loss" not in no_stop.net_.history[-1]
    assert no_stop.n_epochs_ == 5


# --------------------------------------------------------------------- devices


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the error raised without CUDA")
@pytest.mark.parametrize("cls", [PerInstanceClassifier, PerEnsembleClassifier])
def test_cuda_without_gpu_is_a_clear_value_error(cls, events):
    X, y = events
    model = cls(device="cuda", ensemble_size=4) if cls is PerEnsembleClassifier else cls(device="cuda")
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA"):
        model.fit(X, y)


def test_unknown_device_is_a_value_error(events):
    X, y = events
    with pytest.raises(ValueError, match="device must be"):
        PerInstanceClassifier(device="tpu-please").fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_and_predict_on_cuda(events):
    X, y = events
    model = PerInstanceClassifier(**FAST, device="cuda").fit(X, y)
    assert next(model.net_.module_.parameters()).device.type == "cuda"
    log_ratio = model.decision_function(X)
    assert log_ratio.dtype == np.float64 and np.isfinite(log_ratio).all()
    assert model.predict_proba(X).shape == (len(X), 2)
    E = X[:400].reshape(100, 4, 2)
    np.testing.assert_allclose(
        model.predict_ensemble_log_ratio(E), log_ratio[:400].reshape(100, 4).sum(axis=1), rtol=1e-5, atol=1e-5
    )
    ensemble = PerEnsembleClassifier(
        architecture="logratio_sum", ensemble_size=4, hidden_layer_sizes=(8,), max_epochs=3,
        device="cuda", random_state=0,
    ).fit(X, y)
    assert ensemble.decision_function(E).shape == (100,)
    assert np.isfinite(ensemble.per_instance_.decision_function(X)).all()
