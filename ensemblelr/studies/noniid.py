"""``ensemblelr reproduce noniid``: ensembles whose events share a per-ensemble nuisance.

The paper shows that for independent (IID) events the product of per-event
likelihood ratios is the optimal ensemble classifier, and expects per-ensemble
training to matter only when events are correlated. This study makes them
correlated: every event of an ensemble gets the same shift ``delta ~ N(0, s^2)``.

(a) Gaussian events ``x ~ N(mu_y + delta, 1)`` with ``mu_1 = +0.1``, ``mu_0 = -0.1``.
    The nuisance integrates out exactly: given the ensemble mean ``xbar`` the events
    carry no further information about ``y`` (their spread around ``xbar`` has the
    same law for both classes), and ``xbar | y ~ N(mu_y, 1/N + s^2)``, so

        log LR_exact(E) = (mu_1 - mu_0) / (1/N + s^2) * (xbar - (mu_1 + mu_0) / 2).

    The per-event model learns the marginal ratio of one event,
    ``(mu_1 - mu_0) / (1 + s^2) * (x - ...)``, whose sum over N events is also a
    monotone function of ``xbar``: it ranks ensembles optimally (same ROC) but its
    ratio is too large by ``(1 + N s^2) / (1 + s^2)``. Per-ensemble training can only
    win on calibration (log-loss), not on AUC.
(b) Real LHCO events whose two mass features (columns 0 and 1, standardized) get
    one shift per ensemble, a stand-in for a per-run jet-mass calibration. Here the
    sum of per-event ratios is not a function of a sufficient statistic and
    per-ensemble models can also rank better.

Metrics on balanced test ensembles: AUC, 1/FPR at TPR 0.5 and the ensemble log-loss
(binary cross-entropy of ``sigmoid(log LR)`` in nats per ensemble, the measure of
how right the ratio's *value* is, with its standard error). For the Gaussians two
reference rows need no training: ``exact`` (the optimum above) and ``exact_product``
(the sum of exact marginal per-event ratios, the best any per-instance product can do).

Command used for benchmarks/results/noniid::

    ensemblelr reproduce noniid --out benchmarks/results/noniid \
        --data ../shared/data/lhco_sr_features.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.special import log_expit

from ..per_ensemble import PerEnsembleClassifier
from ..per_instance import PerInstanceClassifier
from ._common import (
    QUICK_LABEL,
    add_max_epochs_argument,
    add_run_arguments,
    format_table,
    prepare_run,
    quick_suffix,
    roc_summary,
    run_record,
    save_figure,
    write_results,
)

SHIFTS = (0.0, 0.1, 0.3)
MU_SIGNAL, MU_BACKGROUND = 0.1, -0.1
MODELS = ("per_instance", "logratio_sum", "deepsets")

FULL = {
    "gaussian": dict(sizes=(10, 30), n_train_events=200_000, n_test_ensembles=20_000),
    "lhco": dict(sizes=(3, 10), max_train_events=50_000, n_test_ensembles=8_000),
    "gaussian_net": dict(hidden=(32, 32), Phi=(32, 32), F=(32, 32), max_epochs=40, patience=8),
    "lhco_net": dict(hidden=(64, 64, 64), Phi=(64, 64, 64), F=(64, 64), max_epochs=40, patience=8),
}
QUICK = {
    "gaussian": dict(sizes=(10,), n_train_events=8_000, n_test_ensembles=1_000),
    "lhco": dict(sizes=(3,), max_train_events=6_000, n_test_ensembles=500),
    "gaussian_net": dict(hidden=(8,), Phi=(8,), F=(8,), max_epochs=3, patience=2),
    "lhco_net": dict(hidden=(8,), Phi=(8,), F=(8,), max_epochs=3, patience=2),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ensemblelr reproduce noniid``."""
    add_run_arguments(parser, "noniid")
    parser.add_argument("--data", type=Path, default=None, metavar="PATH",
                        help="LHCO .npz (X_train, y_train, X_val, y_val); part (b) is skipped without it "
                        "(no default file)")
    add_max_epochs_argument(parser)


# ------------------------------------------------------------------ data
def shifted_ensembles(X, y, ensemble_size: int, shift_sd: float, columns, rng):
    """Same-label ensembles of ``X`` rows, one N(0, shift_sd^2) shift per ensemble on ``columns``.

    Parameters
    ----------
    X : ndarray of shape (n_events, n_features)
    y : ndarray of shape (n_events,) with values 0 / 1
    ensemble_size : int
    shift_sd : float
    columns : sequence of int
        Features that receive the shared shift.
    rng : numpy Generator

    Returns
    -------
    E : ndarray of shape (n_ensembles, ensemble_size, n_features)
    y_ens : ndarray of shape (n_ensembles,)
    """
    groups, labels = [], []
    for label in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == label))
        n = len(idx) // ensemble_size
        groups.append(idx[: n * ensemble_size].reshape(n, ensemble_size))
        labels.append(np.full(n, label))
    index, y_ens = np.concatenate(groups), np.concatenate(labels)
    order = rng.permutation(len(y_ens))
    E = X[index[order]].astype(np.float64)
    shift = rng.normal(0.0, shift_sd, len(order)) if shift_sd > 0 else np.zeros(len(order))
    E[:, :, list(columns)] += shift[:, None, None]
    return E, y_ens[order]


def gaussian_ensembles(n_ensembles_per_class: int, ensemble_size: int, shift_sd: float, rng):
    """Balanced 1-feature Gaussian ensembles with a shared N(0, shift_sd^2) mean shift."""
    y = np.repeat([1, 0], n_ensembles_per_class)
    mu = np.where(y == 1, MU_SIGNAL, MU_BACKGROUND) + rng.normal(0.0, 1.0, len(y)) * shift_sd
    E = mu[:, None, None] + rng.standard_normal((len(y), ensemble_size, 1))
    order = rng.permutation(len(y))
    return E[order], y[order]


def exact_gaussian_log_ratio(E: np.ndarray, shift_sd: float) -> np.ndarray:
    """Exact ensemble log LR with the shared shift marginalized, shape (n_ensembles,)."""
    n = E.shape[1]
    variance = 1.0 / n + shift_sd**2
    xbar = E[:, :, 0].mean(axis=1)
    return (MU_SIGNAL - MU_BACKGROUND) / variance * (xbar - 0.5 * (MU_SIGNAL + MU_BACKGROUND))


def exact_gaussian_product(E: np.ndarray, shift_sd: float) -> np.ndarray:
    """Sum of the exact *marginal* per-event log ratios: the best per-instance product."""
    variance = 1.0 + shift_sd**2
    centred = E[:, :, 0] - 0.5 * (MU_SIGNAL + MU_BACKGROUND)
    return (MU_SIGNAL - MU_BACKGROUND) / variance * centred.sum(axis=1)


def ensemble_log_loss(y, log_ratio, *, return_se: bool = False):
    """Mean binary cross-entropy (nats) of ``sigmoid(log_ratio)`` on balanced ensembles.

    With ``return_se`` also its standard error over the test ensembles.
    """
    log_ratio = np.asarray(log_ratio, dtype=np.float64)
    losses = -np.where(y == 1, log_expit(log_ratio), log_expit(-log_ratio))
    if return_se:
        return float(losses.mean()), float(losses.std(ddof=1) / np.sqrt(len(losses)))
    return float(losses.mean())


def _metrics(y, log_ratio) -> dict:
    loss, se = ensemble_log_loss(y, log_ratio, return_se=True)
    return {**roc_summary(y, log_ratio), "log_loss": loss, "log_loss_se": se}


# ---------------------------------------------------------------- models
def fit_and_score(E_train, y_train, E_test, net: dict, seed: int, verbose: bool, device: str = "cpu") -> dict:
    """Train the three models on the same events; return test ensemble log ratios and timings."""
    common = dict(max_epochs=net["max_epochs"], n_iter_no_change=net["patience"], random_state=seed,
                  device=device)
    events = E_train.reshape(-1, E_train.shape[-1])
    event_labels = np.repeat(y_train, E_train.shape[1])
    scores, info = {}, {}
    for name in MODELS:
        start = time.perf_counter()
        if name == "per_instance":
            model = PerInstanceClassifier(hidden_layer_sizes=net["hidden"], batch_size=512, **common)
            model.fit(events, event_labels)
            scores[name] = model.predict_ensemble_log_ratio(E_test)
        else:
            # 3-D input keeps each training ensemble's shared shift; regrouping events
            # would destroy exactly the correlation under study.
            model = PerEnsembleClassifier(
                architecture=name, hidden_layer_sizes=net["hidden"], Phi_sizes=net["Phi"],
                F_sizes=net["F"], batch_size=128, **common,
            )
            model.fit(E_train, y_train)
            scores[name] = model.decision_function(E_test)
        info[name] = {"train_seconds": time.perf_counter() - start, "epochs": model.n_epochs_}
        if verbose:
            seconds = info[name]["train_seconds"]
            print(f"    {name:<13} {seconds:6.1f} s, {model.n_epochs_} epochs", flush=True)
    return {"scores": scores, "info": info}


def _rows(part: str, size: int, shift: float, y_test, scores: dict, info: dict) -> list[dict]:
    rows = []
    for name, score in scores.items():
        row = {"part": part, "N": size, "s": shift, "model": name, **_metrics(y_test, score)}
        row.update(info.get(name, {}))
        rows.append(row)
    return rows


def run_gaussian(config: dict, net: dict, seed: int, verbose: bool, device: str = "cpu") -> list[dict]:
    rows = []
    for size in config["sizes"]:
        for k, shift in enumerate(SHIFTS):
            rng = np.random.default_rng([seed, size, k])
            n_train = config["n_train_events"] // size // 2
            E_train, y_train = gaussian_ensembles(n_train, size, shift, rng)
            E_test, y_test = gaussian_ensembles(config["n_test_ensembles"] // 2, size, shift, rng)
            if verbose:
                print(f"  gaussian N={size} s={shift}", flush=True)
            fitted = fit_and_score(E_train, y_train, E_test, net, seed, verbose, device)
            scores = {
                "exact": exact_gaussian_log_ratio(E_test, shift),
                "exact_product": exact_gaussian_product(E_test, shift),
                **fitted["scores"],
            }
            rows += _rows("gaussian", size, shift, y_test, scores, fitted["info"])
    return rows


def load_npz(path: Path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    with np.load(path) as data:
        missing = {"X_train", "y_train", "X_val", "y_val"} - set(data.files)
        if missing:
            raise ValueError(f"{path} lacks arrays {sorted(missing)}; expected an LHCO features .npz.")
        return (data["X_train"].astype(np.float64), data["y_train"].astype(int),
                data["X_val"].astype(np.float64), data["y_val"].astype(int))


def run_lhco(
    path: Path, config: dict, net: dict, seed: int, verbose: bool, device: str = "cpu"
) -> list[dict]:
    X_train, y_train, X_val, y_val = load_npz(path)
    if config["max_train_events"] is not None:
        pick = np.random.default_rng(seed).permutation(len(y_train))[: config["max_train_events"]]
        X_train, y_train = X_train[pick], y_train[pick]
    rows = []
    for size in config["sizes"]:
        for k, shift in enumerate(SHIFTS):
            rng = np.random.default_rng([seed, size, k, 1])
            E_train, ye_train = shifted_ensembles(X_train, y_train, size, shift, (0, 1), rng)
            E_test, ye_test = shifted_ensembles(X_val, y_val, size, shift, (0, 1), rng)
            E_test, ye_test = _balanced(E_test, ye_test, config["n_test_ensembles"] // 2, rng)
            if verbose:
                print(f"  lhco N={size} s={shift}", flush=True)
            fitted = fit_and_score(E_train, ye_train, E_test, net, seed, verbose, device)
            rows += _rows("lhco", size, shift, ye_test, fitted["scores"], fitted["info"])
    return rows


def _balanced(E, y, n_per_class: int, rng):
    """Equal numbers of signal and background test ensembles, so log-loss is at prior 0.5."""
    n = min(n_per_class, (y == 0).sum(), (y == 1).sum())
    keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n] for c in (0, 1)])
    return E[keep], y[keep]


# -------------------------------------------------------------- summary
def gains(rows: list[dict]) -> list[dict]:
    """Per-ensemble model minus per-instance product, for each (part, N, s)."""
    out = []
    keys = sorted({(r["part"], r["N"], r["s"]) for r in rows})
    for part, size, shift in keys:
        group = {r["model"]: r for r in rows if (r["part"], r["N"], r["s"]) == (part, size, shift)}
        base = group["per_instance"]
        for name in ("logratio_sum", "deepsets", "exact_product", "exact"):
            if name not in group:
                continue
            reduction = base["log_loss"] - group[name]["log_loss"]
            out.append({
                "part": part, "N": size, "s": shift, "model": name,
                "delta_auc": group[name]["auc"] - base["auc"],
                "log_loss_reduction": reduction,
                "relative_log_loss_reduction": reduction / base["log_loss"],
            })
    return out


def plot(rows: list[dict], path: Path, title_suffix: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [p for p in ("gaussian", "lhco") if any(r["part"] == p for r in rows)]
    fig, axes = plt.subplots(len(parts), 2, figsize=(10, 3.6 * len(parts)), squeeze=False)
    styles = {"exact": "k--", "exact_product": "k:", "per_instance": "C0-o", "logratio_sum": "C1-s",
              "deepsets": "C2-^"}
    for i, part in enumerate(parts):
        sizes = sorted({r["N"] for r in rows if r["part"] == part})
        for j, metric in enumerate(("auc", "log_loss")):
            ax = axes[i, j]
            for size_index, size in enumerate(sizes):
                for name, style in styles.items():
                    pts = sorted((r["s"], r[metric]) for r in rows
                                 if r["part"] == part and r["N"] == size and r["model"] == name)
                    if pts:
                        s, v = zip(*pts)
                        ax.plot(s, v, style, alpha=1.0 - 0.4 * size_index,
                                label=f"{name} N={size}", markersize=4)
            ax.set_xlabel("per-ensemble shift sd s")
            ax.set_ylabel("AUC" if metric == "auc" else "ensemble log-loss (nats)")
            ax.set_title(f"{part}: {metric}{title_suffix}")
            ax.grid(alpha=0.3)
        axes[i, 0].legend(fontsize=6)
    path = save_figure(fig, path)
    return path


COLUMNS = [
    ("part", "part", ""), ("N", "N", "d"), ("s", "s", ".1f"), ("model", "model", ""),
    ("auc", "AUC", ".4f"), ("inv_fpr_at_tpr_0.5", "1/FPR@0.5", ".1f"), ("log_loss", "log-loss", ".4f"),
    ("log_loss_se", "+-", ".4f"),
    ("epochs", "epochs", ""), ("train_seconds", "train s", ".1f"),
]
GAIN_COLUMNS = [
    ("part", "part", ""), ("N", "N", "d"), ("s", "s", ".1f"), ("model", "model", ""),
    ("delta_auc", "dAUC vs product", "+.4f"), ("log_loss_reduction", "log-loss gain", "+.4f"),
    ("relative_log_loss_reduction", "rel. gain", "+.1%"),
]


def run(args: argparse.Namespace) -> dict:
    """Run the study, print the tables, write results.json and noniid.png under ``args.out``."""
    prepare_run(args)
    config = dict(QUICK if args.quick else FULL)
    max_epochs = getattr(args, "max_epochs", None)
    if max_epochs is not None:
        for key in ("gaussian_net", "lhco_net"):
            config[key] = {**config[key], "max_epochs": max_epochs}
    verbose = not args.quiet
    device = getattr(args, "device", "cpu")
    start = time.perf_counter()
    rows = run_gaussian(config["gaussian"], config["gaussian_net"], args.seed, verbose, device)
    lhco_note = None
    if args.data is None:
        lhco_note = "skipped: no --data given (LHCO features .npz)"
    elif not Path(args.data).is_file():
        lhco_note = f"skipped: data file {args.data} not found"
    else:
        print(f"LHCO part (b): using data file {args.data}", flush=True)
        rows += run_lhco(args.data, config["lhco"], config["lhco_net"], args.seed, verbose, device)
    if lhco_note:
        print(f"LHCO part (b) {lhco_note}")
    gain_rows = gains(rows)
    if args.quick:
        print(QUICK_LABEL.strip())
    print(format_table(rows, COLUMNS))
    print()
    print("Per-ensemble model minus per-instance product (positive = per-ensemble better):")
    print(format_table(gain_rows, GAIN_COLUMNS))
    out = Path(args.out)
    figure = plot(rows, out / "noniid.png", quick_suffix(args))
    results = {
        "study": "noniid",
        **run_record(args, "noniid"),
        "quick": bool(args.quick),
        "config": {k: v for k, v in config.items()},
        "shifts": list(SHIFTS),
        "lhco": lhco_note or "run",
        "rows": rows,
        "gains": gain_rows,
        "figure": figure.name,
        "total_seconds": time.perf_counter() - start,
    }
    path = write_results(out, results)
    print(f"wrote {path} and {figure} in {results['total_seconds']:.0f} s")
    return results
