"""The paper's classification comparison, shared by the Gaussian and LHCO studies.

One run trains, on labelled events, the per-event model f_1 and the per-ensemble
models f_N (``dense``, ``sorted``, ``deepsets``, ``logratio_sum``), then scores on
held-out events and on same-label ensembles of N held-out events:

- event level: f_1, and f_{N->1} (the per-event network extracted from
  ``logratio_sum``);
- ensemble level: f_{1->N} (f_1's log ratios summed over the ensemble) and every f_N.

Where the exact per-event log ratio is known it is scored on the same events and
ensembles as ``optimum``.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..ensembles import make_ensembles
from ..per_ensemble import PerEnsembleClassifier
from ..per_instance import PerInstanceClassifier
from ._common import (  # noqa: F401 (command_line, options_dict: re-exported for the studies)
    QUICK_TARGETS,
    add_run_arguments,
    command_line,
    format_table,
    non_negative_int,
    options_dict,
    plot_rocs,
    positive_int,
    prepare_run,
    roc_summary,
    timed,
)

ARCHITECTURES = ("dense", "sorted", "deepsets", "logratio_sum")

# Offsets added to --seed so that each model and the test grouping get their own stream.
_SEED_OFFSETS = {"f_1": 0, "dense": 1, "sorted": 2, "deepsets": 3, "logratio_sum": 4, "test_ensembles": 100}

TABLE_COLUMNS = (
    ("model", "model", ""),
    ("level", "scored on", ""),
    ("auc", "AUC", ".4f"),
    ("one_minus_auc", "1-AUC", ".2e"),
    ("inv_fpr_text", "1/FPR@TPR=0.5", ""),
    ("train_seconds", "train s", ".1f"),
    ("n_epochs", "epochs", "d"),
    ("note", "note", ""),
)
DELTA_COLUMN = ("delta_auc", "AUC-optimum", "+.4f")

# Model settings shared by the Gaussian and LHCO studies (full runs and --quick smoke runs).
FULL_MODELS = {
    "per_instance": dict(hidden_layer_sizes=(64, 64, 64), lr=1e-3, batch_size=512, max_epochs=100,
                         n_iter_no_change=10),
    "per_ensemble": dict(hidden_layer_sizes=(64, 64, 64), Phi_sizes=(64, 64, 64), F_sizes=(64, 64),
                         lr=1e-3, batch_size=128, max_epochs=100, n_iter_no_change=10),
}
QUICK_MODELS = {
    "per_instance": dict(hidden_layer_sizes=(16, 16), batch_size=256, max_epochs=3),
    "per_ensemble": dict(hidden_layer_sizes=(16, 16), Phi_sizes=(16, 16), F_sizes=(16,), batch_size=64,
                         max_epochs=3),
}



@dataclass
class Setup:
    """Settings of one classification run.

    Parameters
    ----------
    ensemble_size : int
        N, the events per ensemble of the f_N models and of the test ensembles.
    per_instance : dict
        Keyword arguments of :class:`PerInstanceClassifier` (f_1).
    per_ensemble : dict of str -> dict
        Keyword arguments of :class:`PerEnsembleClassifier` for each architecture.
    seed : int
    verbose : int
        1 prints a line per model and shows the estimators' progress bars.
    device : str
    """

    ensemble_size: int
    per_instance: dict
    per_ensemble: dict[str, dict]
    seed: int = 0
    verbose: int = 1
    device: str = "cpu"
    architectures: Sequence[str] = field(default_factory=lambda: ARCHITECTURES)

    def as_dict(self) -> dict:
        return {
            "ensemble_size": self.ensemble_size,
            "seed": self.seed,
            "device": self.device,
            "per_instance": _plain(self.per_instance),
            "per_ensemble": {arch: _plain(self.per_ensemble[arch]) for arch in self.architectures},
        }


@dataclass
class Outcome:
    """What a run produced: table rows, scores for the figures and the fitted per-event models."""

    rows: list[dict]
    event_scores: dict[str, np.ndarray]
    ensemble_scores: dict[str, np.ndarray]
    y_events: np.ndarray
    y_ensembles: np.ndarray
    per_event_models: dict[str, PerInstanceClassifier]
    n_test_ensembles: dict[str, int]


def add_common_arguments(
    parser: argparse.ArgumentParser, default_ensemble_size: int, study: str
) -> None:
    """Options shared by the classification studies: -N and the options of every study."""
    parser.add_argument(
        "--ensemble-size", "-N", type=positive_int, default=default_ensemble_size, metavar="N",
        help=f"events per ensemble (default {default_ensemble_size})",
    )
    add_run_arguments(parser, study)


def prepare(args: argparse.Namespace) -> None:
    """Check the device (a one-line error, before any work) and set torch's thread count."""
    prepare_run(args)


def print_targets(checked: Sequence[dict], quick: bool) -> None:
    """The target lines of a full run; in a --quick run only a note that they do not apply."""
    if quick:
        print(QUICK_TARGETS)
    else:
        print("targets (full run):")
        print(targets_text(checked))


def run_models(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    setup: Setup,
    exact_log_ratio: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Outcome:
    """Train every model on the training events and score it on the test events.

    Parameters
    ----------
    X_train, X_test : ndarray of shape (n_train, n_features), (n_test, n_features)
    y_train, y_test : ndarray of shape (n_train,), (n_test,)
        1 = signal, 0 = background.
    setup : Setup
    exact_log_ratio : callable, optional
        Maps events (n, n_features) to their exact log likelihood ratio (n,); adds
        the ``optimum`` rows and each row's ``delta_auc``.

    Returns
    -------
    Outcome
    """
    N = setup.ensemble_size
    say = print if setup.verbose else _silent
    with warnings.catch_warnings():
        # Leftover test events of each class that do not fill an ensemble are not scored
        # at ensemble level; their number is small (< N per class) and reported.
        warnings.filterwarnings("ignore", message="make_ensembles: .* dropped", category=UserWarning)
        E_test, yE_test = make_ensembles(
            X_test, y_test, N, random_state=setup.seed + _SEED_OFFSETS["test_ensembles"]
        )
    n_test_ensembles = {"signal": int((yE_test == 1).sum()), "background": int((yE_test == 0).sum())}
    say(
        f"training on {len(y_train)} events ({int((y_train == 1).sum())} signal); scoring on "
        f"{len(y_test)} test events and {len(yE_test)} test ensembles of N={N}",
        flush=True,
    )
    rows: list[dict] = []
    event_scores: dict[str, np.ndarray] = {}
    ensemble_scores: dict[str, np.ndarray] = {}
    per_event_models: dict[str, PerInstanceClassifier] = {}
    n_models = 1 + len(setup.architectures)
    estimator_verbose = 1 if setup.verbose else 0

    say(f"[1/{n_models}] f_1: PerInstanceClassifier on single events", flush=True)
    f1 = PerInstanceClassifier(
        **setup.per_instance, device=setup.device, random_state=setup.seed + _SEED_OFFSETS["f_1"],
        verbose=estimator_verbose,
    )
    record: dict = {}
    with timed(record):
        f1.fit(X_train, y_train)
    say(f"      {record['train_seconds']:.1f} s, {f1.n_epochs_} epochs", flush=True)
    event_scores["f_1"] = f1.decision_function(X_test)
    rows.append(_row("f_1", "events", y_test, event_scores["f_1"], record["train_seconds"], f1.n_epochs_,
                     "per-event classifier"))
    per_event_models["f_1"] = f1
    name = f"f_1->{N}"
    ensemble_scores[name] = f1.predict_ensemble_log_ratio(E_test)
    rows.append(_row(name, "ensembles", yE_test, ensemble_scores[name], None, None,
                     "f_1 log ratio summed over the ensemble"))

    for i, arch in enumerate(setup.architectures, start=2):
        say(f"[{i}/{n_models}] f_{N} {arch}: PerEnsembleClassifier on ensembles of {N}", flush=True)
        model = PerEnsembleClassifier(
            architecture=arch, ensemble_size=N, **setup.per_ensemble[arch], device=setup.device,
            random_state=setup.seed + _SEED_OFFSETS[arch], verbose=estimator_verbose,
        )
        record = {}
        with timed(record):
            model.fit(X_train, y_train)
        say(f"      {record['train_seconds']:.1f} s, {model.n_epochs_} epochs", flush=True)
        name = f"f_{N} {arch}"
        ensemble_scores[name] = model.decision_function(E_test)
        rows.append(_row(name, "ensembles", yE_test, ensemble_scores[name], record["train_seconds"],
                         model.n_epochs_, _ARCH_NOTES[arch]))
        if arch == "logratio_sum":
            name = f"f_{N}->1"
            event_scores[name] = model.per_instance_.decision_function(X_test)
            rows.append(_row(name, "events", y_test, event_scores[name], None, None,
                             "per-event Phi of logratio_sum"))
            per_event_models[name] = model.per_instance_

    if exact_log_ratio is not None:
        event_scores["optimum"] = exact_log_ratio(X_test)
        ensemble_scores["optimum"] = exact_log_ratio(E_test.reshape(-1, E_test.shape[-1])).reshape(
            E_test.shape[:2]
        ).sum(axis=1)
        rows.append(_row("optimum", "events", y_test, event_scores["optimum"], None, None,
                         "exact log ratio"))
        rows.append(_row("optimum", "ensembles", yE_test, ensemble_scores["optimum"], None, None,
                         "exact log ratio summed"))
        best = {row["level"]: row["auc"] for row in rows if row["model"] == "optimum"}
        for row in rows:
            row["delta_auc"] = row["auc"] - best[row["level"]]
    rows.sort(key=lambda row: (row["level"] != "events", row["model"] == "optimum"))
    return Outcome(
        rows=rows, event_scores=event_scores, ensemble_scores=ensemble_scores,
        y_events=np.asarray(y_test), y_ensembles=np.asarray(yE_test),
        per_event_models=per_event_models, n_test_ensembles=n_test_ensembles,
    )


def results_table(rows: list[dict]) -> str:
    """The printed table: AUC, 1-AUC, 1/FPR at TPR 0.5, training time (and AUC - optimum).

    Where no background passes the TPR = 0.5 cut, 1/FPR is shown as a lower bound,
    ``>n`` with ``n`` the number of background examples scored.
    """
    columns = list(TABLE_COLUMNS)
    if any("delta_auc" in row for row in rows):
        columns.insert(3, DELTA_COLUMN)
    shown = []
    for row in rows:
        value = row["inv_fpr_at_tpr_0.5"]
        text = f"{value:.2f}" if np.isfinite(value) else f">{row['n_background_scored']}"
        shown.append({**row, "inv_fpr_text": text})
        # Rounding noise (a monotone model ranks like the optimum) would print as -0.0000.
        if "delta_auc" in row and abs(row["delta_auc"]) < 5e-5:
            shown[-1]["delta_auc"] = 0.0
    return format_table(shown, columns)


def check_targets(rows: list[dict], targets: Sequence[dict]) -> list[dict]:
    """Compare measured numbers with targets.

    Parameters
    ----------
    rows : list of dict
        From :func:`run_models`.
    targets : list of dict
        Each with ``model``, ``level``, ``metric`` (a row key), ``op`` (``">="`` or
        ``"<="``), ``value`` and ``description``.

    Returns
    -------
    list of dict
        The targets with ``measured`` and ``passed`` added.
    """
    checked = []
    for target in targets:
        matches = [r for r in rows if r["model"] == target["model"] and r["level"] == target["level"]]
        if len(matches) != 1:
            raise ValueError(f"no unique result row for target {target!r}.")
        measured = float(matches[0][target["metric"]])
        passed = measured >= target["value"] if target["op"] == ">=" else measured <= target["value"]
        checked.append({**target, "measured": measured, "passed": bool(passed)})
    return checked


def targets_text(checked: Sequence[dict]) -> str:
    lines = []
    for target in checked:
        mark = "PASS" if target["passed"] else "MISS"
        lines.append(
            f"  [{mark}] {target['description']}: {target['metric']} = {target['measured']:.5g} "
            f"({target['op']} {target['value']:g})"
        )
    return "\n".join(lines)


def write_roc_figures(
    outcome: Outcome, out_dir: Path, title: str, ensemble_size: int, suffix: str = ""
) -> list[Path]:
    """ROC curves at event level and at ensemble level (PNG files in ``out_dir``).

    ``suffix`` ends each title, e.g. `` (quick)``.
    """
    return [
        plot_rocs(
            {name: (outcome.y_events, score) for name, score in outcome.event_scores.items()},
            Path(out_dir) / "roc_events.png", f"{title}: single events{suffix}",
        ),
        plot_rocs(
            {name: (outcome.y_ensembles, score) for name, score in outcome.ensemble_scores.items()},
            Path(out_dir) / "roc_ensembles.png", f"{title}: ensembles of N={ensemble_size}{suffix}",
        ),
    ]


def _row(model, level, y_true, score, seconds, epochs, note) -> dict:
    score = np.asarray(score, dtype=np.float64)
    if not np.isfinite(score).all():
        raise ValueError(f"model {model!r} produced non-finite scores; training diverged.")
    summary = roc_summary(y_true, score)
    return {
        "model": model,
        "level": level,
        "auc": summary["auc"],
        "one_minus_auc": 1.0 - summary["auc"],
        "inv_fpr_at_tpr_0.5": summary["inv_fpr_at_tpr_0.5"],
        "train_seconds": seconds,
        "n_epochs": epochs,
        "note": note,
        "n_scored": len(score),
        "n_background_scored": int((np.asarray(y_true) == 0).sum()),
    }


_ARCH_NOTES = {
    "dense": "MLP on the flattened ensemble",
    "sorted": "MLP on events sorted by feature 0",
    "deepsets": "F(sum_i Phi(x_i))",
    "logratio_sum": "sum_i Phi(x_i), scalar Phi",
}


def _plain(params: dict) -> dict:
    return {key: list(value) if isinstance(value, tuple) else value for key, value in params.items()}


def _silent(*args, **kwargs) -> None:
    return None
