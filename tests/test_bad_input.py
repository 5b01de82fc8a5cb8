"""Regression tests for bad and odd input found by adversarial testing.

Each test names an input a physicist could plausibly pass and pins down the
behaviour: a ValueError / TypeError naming the problem, or a correct finite
result; never a silent NaN/inf, a silently ignored argument or an error from deep
inside numpy, torch or skorch. Cases already covered by test_validation.py and
test_fuzz.py are not repeated here.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ensemblelr import (
    BaggedPerInstanceClassifier,
    EnsembleLogRatio,
    PerEnsembleClassifier,
    PerEnsembleRegressor,
    PerInstanceClassifier,
    ensemble_scorer,
    make_ensembles,
    make_mixture_ensembles,
)
from ensemblelr.cli import main
from ensemblelr.datasets import gaussian_log_ratio, make_gaussian_events, make_gaussian_regression
from ensemblelr.lhco import load_lhco

TINY = dict(max_epochs=1, early_stopping=False, random_state=0)
TINY_NET = dict(hidden_layer_sizes=(4,), Phi_sizes=(4,), F_sizes=(4,))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.arange(120) % 2
    return X, y


@pytest.fixture(scope="module")
def per_instance(data):
    return PerInstanceClassifier(hidden_layer_sizes=(4,), **TINY).fit(*data)


# ----------------------------------------------------------- sample weights
@pytest.mark.parametrize("value", [1e308, 1e-320])
def test_extreme_uniform_weights_equal_unit_weights(data, value):
    # Was: 1e308 overflowed the weight sums and every log ratio came out NaN.
    X, y = data
    make = lambda: PerInstanceClassifier(hidden_layer_sizes=(4,), **TINY)  # noqa: E731
    unit = make().fit(X, y, sample_weight=np.ones(len(y)))
    extreme = make().fit(X, y, sample_weight=np.full(len(y), value))
    assert extreme.log_prior_odds_ == pytest.approx(unit.log_prior_odds_, abs=1e-12)
    np.testing.assert_allclose(extreme.decision_function(X), unit.decision_function(X), atol=1e-6)


def test_extreme_weights_in_ensemble_grouping(data):
    X, y = data
    weight = np.where(y == 1, 1e308, 5e307)
    model = PerEnsembleClassifier("logratio_sum", ensemble_size=3, **TINY_NET, **TINY)
    model.fit(X, y, sample_weight=weight)
    # Each class carries 60 // 3 = 20 ensembles; the weight ratio is 2.
    assert model.log_prior_odds_ == pytest.approx(np.log(2.0), abs=1e-12)


# ------------------------------------------------------ boolean parameters
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: PerInstanceClassifier(**{**TINY, "early_stopping": "no"}), "early_stopping"),
        (lambda: PerInstanceClassifier(standardize="no", max_epochs=1), "standardize"),
        (lambda: PerEnsembleClassifier(ensemble_size=2, regroup_each_epoch="no", max_epochs=1),
         "regroup_each_epoch"),
        (lambda: BaggedPerInstanceClassifier(PerInstanceClassifier(**TINY), bootstrap="no"), "bootstrap"),
    ],
)
def test_string_for_a_boolean_option_is_rejected(data, make, name):
    # Was: "no" is truthy, so the option was silently switched on.
    with pytest.raises(ValueError, match=f"{name} must be True or False"):
        make().fit(*data)


def test_string_for_boolean_in_regressor_and_helpers(data):
    X, y = data
    with pytest.raises(ValueError, match="standardize_target must be True or False"):
        PerEnsembleRegressor(standardize_target="false", **TINY).fit(X.reshape(40, 3, 2), np.arange(40.0))
    with pytest.raises(ValueError, match="shuffle must be True or False"):
        make_ensembles(X, y, 3, shuffle="no")
    with pytest.raises(ValueError, match="replace must be True or False"):
        make_mixture_ensembles(X, X, 3, 0.5, n_ensembles=2, replace="no")


# ------------------------------------------------------ training parameters
def test_infinite_lr_is_rejected_before_training(data):
    # Was: training ran and then reported diverged weights.
    with pytest.raises(ValueError, match="lr must be a positive number"):
        PerInstanceClassifier(lr=np.inf, **TINY).fit(*data)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(optimizer="adam"), "optimizer must be a torch optimizer class"),
        (dict(callbacks=[1]), "callbacks must hold skorch Callback objects"),
        (dict(callbacks="early_stopping"), "callbacks must be a list"),
    ],
)
def test_bad_skorch_objects_are_type_errors(data, params, message):
    # Was: AttributeError / "'str' object is not callable" from inside skorch.
    with pytest.raises(TypeError, match=message):
        PerInstanceClassifier(**TINY).set_params(**params).fit(*data)


# ------------------------------------------------------------------ labels
def test_mixed_type_labels_name_y(data):
    X, _ = data
    y = np.array([0, "signal"] * 60, dtype=object)
    with pytest.raises(TypeError, match="y mixes label types"):
        PerInstanceClassifier(**TINY).fit(X, y)


# ------------------------------------------------------- masks and padding
def test_nan_event_marked_real_by_mask_is_rejected(per_instance, data):
    # Was: the all-NaN event was silently dropped although mask said it is real.
    E = data[0][:12].reshape(4, 3, 2).copy()
    E[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"event 2 of ensemble 1 is all NaN \(or masked\) but mask marks it"):
        per_instance.predict_ensemble_log_ratio(E, mask=np.ones((4, 3), dtype=bool))
    consistent = np.ones((4, 3), dtype=bool)
    consistent[1, 2] = False
    expected = per_instance.predict_ensemble_log_ratio(E)
    np.testing.assert_allclose(per_instance.predict_ensemble_log_ratio(E, mask=consistent), expected)


def test_ragged_mask_names_the_mask(per_instance):
    with pytest.raises(ValueError, match="mask could not be converted"):
        per_instance.predict_ensemble_log_ratio(np.zeros((2, 2, 2)), mask=[[True, True], [True]])


def test_numpy_masked_arrays(per_instance, data):
    # Was: np.asarray dropped the mask and the hidden values were used.
    X = data[0]
    E = X[:12].reshape(4, 3, 2)
    hidden = np.ma.masked_array(E.copy(), mask=np.zeros(E.shape, dtype=bool))
    hidden[0, 1] = np.ma.masked
    padded = E.copy()
    padded[0, 1] = np.nan
    np.testing.assert_allclose(
        per_instance.predict_ensemble_log_ratio(hidden), per_instance.predict_ensemble_log_ratio(padded)
    )
    partial = np.ma.masked_array(E.copy(), mask=np.zeros(E.shape, dtype=bool))
    partial[0, 1, 0] = np.ma.masked
    with pytest.raises(ValueError, match="NaN in event 1 of ensemble 0"):
        per_instance.predict_ensemble_log_ratio(partial)
    events = np.ma.masked_array(X, mask=X > 2)
    with pytest.raises(ValueError, match="masked array with masked entries"):
        per_instance.decision_function(events)
    with pytest.raises(ValueError, match="masked array with masked entries"):
        PerInstanceClassifier(**TINY).fit(events, data[1])


def test_datetimes_are_not_numbers(per_instance):
    # Was: datetime64 / timedelta64 silently became integers.
    with pytest.raises(ValueError, match="must be numeric"):
        per_instance.decision_function(np.zeros((2, 2), dtype="datetime64[s]"))
    with pytest.raises(ValueError, match="must be numeric"):
        per_instance.predict_ensemble_log_ratio(np.zeros((1, 2, 2), dtype="timedelta64[s]"))


# ------------------------------------------------------------ transformers
def test_ensemble_log_ratio_rejects_mask_for_2d_input():
    # Was: the mask was silently ignored and padded events were summed.
    with pytest.raises(ValueError, match="mask applies to 3-D input"):
        EnsembleLogRatio(ensemble_size=2).transform(np.array([1.0, 5.0, 2.0, 3.0]), mask=[[1, 0], [1, 1]])


@pytest.mark.parametrize("shape", [(2,), (1, 2, 1)])
def test_ensemble_log_ratio_overflow_raises(shape):
    # Was: inf with a RuntimeWarning.
    with pytest.raises(ValueError, match="overflow float64"):
        EnsembleLogRatio(ensemble_size=2).transform(np.full(shape, 1e308))


def test_mixture_ensembles_need_a_signal_fraction(data):
    X = data[0]
    with pytest.raises(ValueError, match="signal_fraction is empty"):
        make_mixture_ensembles(X, X, 3, [])


# ----------------------------------------------------------------- scoring
def test_scorer_needs_ensemble_predictions(data):
    # Was: AttributeError.
    X, y = data
    scorer = ensemble_scorer(ensemble_size=3, random_state=0)
    with pytest.raises(TypeError, match="needs an estimator with predict_ensemble_proba"):
        scorer(LogisticRegression().fit(X, y), X, y)


@pytest.mark.parametrize("relabel", [lambda y: np.where(y == 1, "s", "b"), lambda y: y + 1])
def test_scorer_rejects_labels_unknown_to_the_model(per_instance, data, relabel):
    # Was: NaN AUC for {"b", "s"}, and silently swapped classes for {1, 2}.
    X, y = data
    with pytest.raises(ValueError, match="estimator was fitted with classes"):
        ensemble_scorer(ensemble_size=3, random_state=0)(per_instance, X, relabel(y))


# --------------------------------------------------------------- regression
def test_regressor_target_overflow_raises(data):
    # Was: the target variance overflowed and every prediction was +-inf.
    E = data[0].reshape(40, 3, 2)
    theta = np.linspace(-1e300, 1e300, 40)
    with pytest.raises(ValueError, match="y spans too large a range"):
        PerEnsembleRegressor(**TINY_NET, **TINY).fit(E, theta)


# ----------------------------------------------------------------- datasets
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: make_gaussian_events(10, signal_mean=np.nan), "class means must be finite"),
        (lambda: gaussian_log_ratio([[0.0]], background_mean=np.inf), "class means must be finite"),
        (lambda: gaussian_log_ratio([[0.0]], sigma="1"), "sigma must be a positive finite number"),
        (lambda: make_gaussian_regression(3, theta_range=(-np.inf, 1)), "theta_range must be"),
        (lambda: make_gaussian_regression(3, theta_range=(0, 1, 2)), "theta_range must be a pair"),
    ],
)
def test_gaussian_generators_reject_non_finite_parameters(call, message):
    # Was: NaN events / NaN log ratios, or OverflowError from numpy.
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------- LHCO
def _npz(path, **overrides):
    arrays = dict(X_train=np.zeros((4, 4)), y_train=np.array([0, 1, 0, 1]),
                  X_val=np.zeros((4, 4)), y_val=np.array([0, 1, 0, 1]))
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


def test_lhco_npz_accepts_boolean_labels(tmp_path):
    data = load_lhco(_npz(tmp_path / "bool.npz", y_train=np.array([0, 1, 0, 1], dtype=bool)))
    np.testing.assert_array_equal(data.y_train, [0, 1, 0, 1])


def test_lhco_npz_that_is_not_an_archive(tmp_path):
    # Was: TypeError "'numpy.ndarray' object does not support the context manager protocol".
    path = tmp_path / "single.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros(3))
    with pytest.raises(ValueError, match="holds a single array"):
        load_lhco(path)
    with pytest.raises(ValueError, match=r"obj\.npz.*could not be read"):
        load_lhco(_npz(tmp_path / "obj.npz", X_train=np.zeros((4, 4), dtype=object)))


# ---------------------------------------------------------------------- CLI
def test_cli_unusable_out_directory_fails_before_training(tmp_path):
    # Was: the study trained and then died with a FileExistsError traceback.
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a directory")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as exit_info:
            main(["reproduce", "gaussian", "--quick", "--out", str(out)])
        assert "is not a directory" in str(exit_info.value.code)


# -------------------------------------------------------------- out of core
def test_score_ensembles_refuses_an_unsplittable_mask(per_instance, data):
    # Was: worked for one chunk, failed with a confusing mask shape error for several.
    from ensemblelr.outofcore import score_ensembles

    E = data[0].reshape(40, 3, 2)
    with pytest.raises(ValueError, match="cannot split mask"):
        score_ensembles(per_instance, E, chunk_size=5, mask=np.ones((40, 3), dtype=bool))
    bad = E.copy()
    bad[12, 1, 0] = np.nan
    # The error locates the chunk, since positions inside it are relative.
    with pytest.raises(ValueError, match=r"ensemble 2 .* chunk starting at ensemble 10"):
        score_ensembles(per_instance, bad, chunk_size=5)


def test_regressor_checks_n_grid_changed_after_fit():
    # Was: n_grid=1 gave divide-by-zero warnings and a meaningless estimate; 5.5 a numpy TypeError.
    from ensemblelr import ParametrizedRegressor

    rng = np.random.default_rng(1)
    theta = rng.uniform(-1, 1, 80)
    model = ParametrizedRegressor(n_grid=5, hidden_layer_sizes=(4,), batch_size=64, **TINY)
    model.fit(theta[:, None] + rng.normal(size=(80, 1)), theta)
    E = rng.normal(size=(2, 4, 1))
    for bad in (1, 5.5, 10**7):
        model.set_params(n_grid=bad)
        with pytest.raises(ValueError, match="n_grid must be"):
            model.predict(E)
    model.set_params(n_grid=7)
    assert model.theta_grid().shape == (7,)
    assert np.isfinite(model.predict(E)).all()


@pytest.mark.parametrize(
    "argv, message",
    [
        # Was: a ValueError traceback after the Gaussian part had trained.
        (["regression", "--data", "{tmp}/events.csv"], "cannot tell the format"),
        (["noniid", "--data", "{tmp}/events.csv"], "cannot tell the format"),
        # Was: RuntimeError / numpy ValueError tracebacks.
        (["regression", "--threads", "0"], "--threads must be a positive integer"),
        (["dilution", "--seed", "-1"], r"--seed must lie in \[0, 2\*\*32\)"),
        # A ValueError raised by a study becomes a one-line error.
        (["dilution", "--epochs", "0"], "--epochs must be positive"),
    ],
)
def test_cli_bad_options_are_one_line_errors(tmp_path, argv, message):
    (tmp_path / "events.csv").write_text("1,2,3\n")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", *argv, "--quick", "--out", str(tmp_path / "out")])
    text = str(exit_info.value.code)
    assert text.startswith(f"ensemblelr reproduce {argv[0]}: error:")
    assert re.search(message, text)
    assert not (tmp_path / "out" / "results.json").exists()


def test_masked_events_are_refused_by_every_event_fit(data):
    # Was: validate_data / check_array dropped the mask and fitted on the hidden values.
    from ensemblelr import CalibratedLogRatio, mutual_information

    X, y = data
    events = np.ma.masked_array(X, mask=X > 2)
    calls = [
        lambda: CalibratedLogRatio(PerInstanceClassifier(**TINY)).fit(events, y),
        lambda: BaggedPerInstanceClassifier(PerInstanceClassifier(**TINY), n_estimators=1).fit(events, y),
        lambda: mutual_information(events, y, PerInstanceClassifier(**TINY)),
        lambda: make_ensembles(events, y, 3),
        lambda: make_mixture_ensembles(events, X, 3, 0.5, n_ensembles=2),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="masked array with masked entries"):
            call()
