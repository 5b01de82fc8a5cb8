"""The classification comparison shared by the Gaussian and LHCO studies."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from scipy.stats import norm

from ensemblelr.datasets import gaussian_log_ratio, make_gaussian_events
from ensemblelr.studies._classification import (
    Setup,
    _row,
    check_targets,
    non_negative_int,
    positive_int,
    results_table,
    run_models,
    targets_text,
)

TINY = dict(hidden_layer_sizes=(8,), lr=1e-2, batch_size=256, max_epochs=8)


@pytest.fixture(scope="module")
def outcome():
    X_train, y_train = make_gaussian_events(1_500, random_state=0)
    X_test, y_test = make_gaussian_events(5_000, random_state=1)
    setup = Setup(
        ensemble_size=10, per_instance=dict(TINY), per_ensemble={"logratio_sum": dict(TINY)},
        seed=3, verbose=0, architectures=("logratio_sum",),
    )
    return run_models(X_train, y_train, X_test, y_test, setup, exact_log_ratio=gaussian_log_ratio)


def _rows(outcome):
    return {(row["model"], row["level"]): row for row in outcome.rows}


def test_rows_and_order(outcome):
    names = [(row["model"], row["level"]) for row in outcome.rows]
    assert names == [
        ("f_1", "events"), ("f_10->1", "events"), ("optimum", "events"),
        ("f_1->10", "ensembles"), ("f_10 logratio_sum", "ensembles"), ("optimum", "ensembles"),
    ]
    rows = _rows(outcome)
    assert rows[("f_1", "events")]["n_epochs"] == 8
    assert rows[("f_1->10", "ensembles")]["train_seconds"] is None


def test_every_model_is_scored_on_the_same_test_sample(outcome):
    # 5000 test events per class -> 500 ensembles of 10 per class, none dropped.
    assert outcome.n_test_ensembles == {"signal": 500, "background": 500}
    for row in outcome.rows:
        assert row["n_scored"] == (10_000 if row["level"] == "events" else 1_000)
    E_sum = outcome.ensemble_scores["optimum"]
    assert E_sum.shape == outcome.y_ensembles.shape


def test_optimum_matches_the_analytic_auc(outcome):
    # For N(+0.1, 1) vs N(-0.1, 1) the exact log ratio of an ensemble of N events is
    # 0.2 * sum x ~ N(+-0.2 N, 0.04 N): AUC = Phi(0.1 sqrt(2 N)). The tolerance is four
    # standard errors of an AUC near 0.5-0.7 from n per class, sqrt(2 / (12 n)).
    rows = _rows(outcome)
    for level, n_per_class, size in (("events", 5_000, 1), ("ensembles", 500, 10)):
        analytic = norm.cdf(0.1 * np.sqrt(2 * size))
        tolerance = 4 * np.sqrt(2 / (12 * n_per_class))
        assert rows[("optimum", level)]["auc"] == pytest.approx(analytic, abs=tolerance)
        assert rows[("optimum", level)]["delta_auc"] == 0.0


def test_summed_f1_tracks_the_optimum(outcome):
    # Any increasing per-event function ranks single events like the optimum; summed
    # over ensembles it can only lose a little, even after a few epochs.
    rows = _rows(outcome)
    assert abs(rows[("f_1", "events")]["delta_auc"]) < 0.01
    assert rows[("f_1->10", "ensembles")]["delta_auc"] > -0.03


def test_results_table_columns(outcome):
    table = results_table(outcome.rows)
    header = table.splitlines()[0]
    for column in ("model", "AUC", "AUC-optimum", "1-AUC", "1/FPR@TPR=0.5", "train s"):
        assert column in header
    row = dict(outcome.rows[0], **{"inv_fpr_at_tpr_0.5": float("inf"), "n_background_scored": 123})
    assert ">123" in results_table([row])
    without = results_table([{k: v for k, v in row.items() if k != "delta_auc"} for row in outcome.rows])
    assert "AUC-optimum" not in without


def test_check_targets(outcome):
    targets = [
        dict(model="optimum", level="events", metric="delta_auc", op=">=", value=-0.001, description="a"),
        dict(model="f_1->10", level="ensembles", metric="one_minus_auc", op="<=", value=1e-6,
             description="b"),
    ]
    checked = check_targets(outcome.rows, targets)
    assert [t["passed"] for t in checked] == [True, False]
    assert checked[1]["measured"] == pytest.approx(_rows(outcome)[("f_1->10", "ensembles")]["one_minus_auc"])
    text = targets_text(checked)
    assert "[PASS] a" in text and "[MISS] b" in text
    with pytest.raises(ValueError, match="no unique result row"):
        check_targets(outcome.rows, [dict(targets[0], model="f_99")])


def test_non_finite_scores_are_an_error():
    with pytest.raises(ValueError, match="non-finite scores"):
        _row("f_1", "events", np.array([0, 1]), np.array([0.1, np.nan]), None, None, "")


def test_integer_option_types():
    assert positive_int("3") == 3
    assert non_negative_int("0") == 0
    for text in ("0", "-2", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer"):
            positive_int(text)
    with pytest.raises(argparse.ArgumentTypeError, match="non-negative integer"):
        non_negative_int("-1")


def test_setup_as_dict_is_json_ready():
    setup = Setup(ensemble_size=3, per_instance={"hidden_layer_sizes": (4, 4)},
                  per_ensemble={"dense": {"hidden_layer_sizes": (2,)}}, architectures=("dense",))
    assert setup.as_dict() == {
        "ensemble_size": 3, "seed": 0, "device": "cpu",
        "per_instance": {"hidden_layer_sizes": [4, 4]},
        "per_ensemble": {"dense": {"hidden_layer_sizes": [2]}},
    }
