"""Regression study: measuring a parameter shared by the events of an ensemble.

``ensemblelr reproduce regression [--quick] [--out DIR] [--seed S] [--data PATH] ...``

1. Gaussian mean (the paper's regression example): events N(theta, 1), theta ~ U(-0.5, 0.5),
   N = 100 events per ensemble. theta is estimated by

   - ``mle``: maximum likelihood within [-0.5, 0.5] with a
     :class:`~ensemblelr.ParametrizedRegressor` (trained on theta ~ U(-0.6, 0.6), so that
     the learned likelihood is accurate up to the ends of the range it is used on),
   - ``posterior_mean``: its posterior mean under the flat training prior,
   - ``direct_dense`` (and ``direct_deepsets`` in full mode): a
     :class:`~ensemblelr.PerEnsembleRegressor` trained with MSE (the paper's baseline),

   and compared on the same test ensembles with the exact answers: the sample mean
   clipped to the range (the exact constrained MLE), the exact posterior mean (a
   truncated normal mean) and the Cramer-Rao bound 1/sqrt(N) = 0.1. Reported: RMSE,
   bias at theta = -0.4, 0, +0.4, a calibration plot (mean estimate vs true theta with
   the spread as error bars), and the coverage of 68% profile-likelihood intervals for
   theta in [-0.3, 0.3] (away from the range ends, where intervals are clipped).

2. LHC Olympics R&D events (``--data``, default ``../shared/data/lhco_sr_features.npz``;
   skipped with a message when absent): ensembles of N = 100 events in which each event
   is signal with probability mu, mu in [0, 0.3]. mu is measured with a
   ParametrizedRegressor trained on (x, mu) pairs with mu ~ U(0, 0.5), and with the
   per-instance plug-in ``sum_i log(mu LR_S(x_i) + 1 - mu)`` from a
   :class:`~ensemblelr.PerInstanceClassifier` (LR_S = p_S / p_B), both maximized over
   mu in [0, 0.5]. Reported: bias and RMSE per mu, next to the RMSE of counting the true
   signal events, sqrt(mu (1 - mu) / N).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import chi2, norm

from ..datasets import make_gaussian_regression
from ..ensembles import make_mixture_ensembles
from ..per_instance import PerInstanceClassifier
from ..regression import ParametrizedRegressor, PerEnsembleRegressor
from ._common import (
    QUICK_LABEL,
    QUICK_TARGETS,
    add_max_epochs_argument,
    add_run_arguments,
    format_table,
    prepare_run,
    run_record,
    save_figure,
    timed,
    write_results,
)

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "lhco_sr_features.npz"
THETA_RANGE = (-0.5, 0.5)
# The parametrized network is trained on a wider range than it is used on: a learned
# likelihood is least accurate at the ends of its training range (one-sided data).
# Inference and the prior of the test ensembles stay THETA_RANGE.
PARAM_TRAIN_RANGE = (-0.6, 0.6)
ENSEMBLE_SIZE = 100
BIAS_THETAS = (-0.4, 0.0, 0.4)
INTERIOR = (-0.3, 0.3)
MU_VALUES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
MU_TRAIN_MAX = 0.5

# Sizes per mode. Full mode takes about 10 minutes on one CPU thread.
SETTINGS = {
    "quick": dict(
        param_train_ensembles=300, param_epochs=4, direct_train_ensembles=3000, direct_epochs=5,
        deepsets=False, test_ensembles=300, bias_ensembles=100, lhco_copies=1, lhco_param_epochs=3,
        lhco_classifier_epochs=3, lhco_test_ensembles=60,
    ),
    "full": dict(
        param_train_ensembles=3000, param_epochs=20, direct_train_ensembles=50_000, direct_epochs=30,
        deepsets=True, test_ensembles=2000, bias_ensembles=300, lhco_copies=8, lhco_param_epochs=20,
        lhco_classifier_epochs=30, lhco_test_ensembles=300, deepsets_epochs=15,
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ensemblelr reproduce regression``."""
    add_run_arguments(parser, "regression")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, metavar="PATH",
        help=f"LHCO features .npz (X_train, y_train, X_val, y_val) for part 2 (default {DEFAULT_DATA}; "
        "part 2 is skipped when the file is absent)",
    )
    add_max_epochs_argument(parser, "every network's")


EPOCH_SETTINGS = ("param_epochs", "direct_epochs", "deepsets_epochs", "lhco_param_epochs",
                  "lhco_classifier_epochs")


def run(args: argparse.Namespace) -> dict:
    prepare_run(args)
    mode = "quick" if args.quick else "full"
    settings = dict(SETTINGS[mode])
    max_epochs = getattr(args, "max_epochs", None)
    if max_epochs is not None:
        settings.update({key: max_epochs for key in EPOCH_SETTINGS if key in settings})
    settings["device"] = getattr(args, "device", "cpu")
    settings["verbose"] = not getattr(args, "quiet", False)
    settings["quick"] = bool(args.quick)
    start = time.perf_counter()
    results = {
        "study": "regression",
        **run_record(args, "regression"),
        "quick": bool(args.quick),
        "mode": mode,
        "seed": args.seed,
        "settings": settings,
        "gaussian": gaussian_study(settings, args.seed, args.out),
        "lhco": lhco_study(settings, args.seed, args.out, args.data,
                           default_data=Path(args.data) == DEFAULT_DATA),
    }
    results["total_seconds"] = time.perf_counter() - start
    path = write_results(args.out, results)
    print(f"\nwrote {path} in {results['total_seconds']:.0f} s")
    return results


def _targets(targets: dict, settings: dict) -> dict:
    """Print the target checks; in a --quick run only a note, and the checks are recorded as None."""
    if settings.get("quick"):
        print(QUICK_TARGETS)
        return dict.fromkeys(targets)
    print("targets:", ", ".join(f"{key}: {'met' if ok else 'MISSED'}" for key, ok in targets.items()))
    return targets


def _say(settings: dict, text: str) -> None:
    if settings.get("verbose", True):
        print(text, flush=True)


# ---------------------------------------------------------------------------- Gaussian
def _exact_posterior_mean(E: np.ndarray) -> np.ndarray:
    """Posterior mean of theta for N(theta, 1) events under a flat prior on THETA_RANGE."""
    n = E.shape[1]
    mean, sigma = E.mean(axis=(1, 2)), 1.0 / np.sqrt(n)
    a, b = (THETA_RANGE[0] - mean) / sigma, (THETA_RANGE[1] - mean) / sigma
    mass = norm.cdf(b) - norm.cdf(a)
    return mean + sigma * (norm.pdf(a) - norm.pdf(b)) / mass


def _summary(estimate: np.ndarray, truth: np.ndarray) -> dict:
    error = estimate - truth
    return {"rmse": float(np.sqrt(np.mean(error**2))), "bias": float(error.mean())}


def gaussian_study(settings: dict, seed: int, out: Path) -> dict:
    rng = np.random.RandomState(seed)
    N = ENSEMBLE_SIZE

    def draw(n):
        return make_gaussian_regression(n, N, THETA_RANGE, random_state=rng)

    E_train, theta_train = make_gaussian_regression(
        settings["param_train_ensembles"], N, PARAM_TRAIN_RANGE, random_state=rng
    )
    device = settings.get("device", "cpu")
    param = ParametrizedRegressor(
        theta_bounds=THETA_RANGE, max_epochs=settings["param_epochs"], early_stopping=False,
        random_state=seed, device=device,
    )
    timing: dict = {}
    _say(settings, f"Gaussian mean: training ParametrizedRegressor on {len(E_train) * N} events")
    with timed(timing, "mle_train_seconds"):
        param.fit(E_train.reshape(-1, 1), np.repeat(theta_train, N))

    direct_models = {"direct_dense": PerEnsembleRegressor(
        architecture="dense", max_epochs=settings["direct_epochs"], random_state=seed, device=device,
    )}
    if settings["deepsets"]:
        direct_models["direct_deepsets"] = PerEnsembleRegressor(
            architecture="deepsets", Phi_sizes=(32, 32), F_sizes=(32,),
            max_epochs=settings.get("deepsets_epochs", 15), random_state=seed, device=device,
        )
    E_direct, theta_direct = draw(settings["direct_train_ensembles"])
    for name, model in direct_models.items():
        # Deep Sets costs ~ensemble_size times more per ensemble; it gets a fifth of the data.
        n_use = len(E_direct) if name == "direct_dense" else len(E_direct) // 5
        _say(settings, f"Gaussian mean: training {name} on {n_use} ensembles")
        with timed(timing, f"{name}_train_seconds"):
            model.fit(E_direct[:n_use], theta_direct[:n_use])

    E_test, theta_test = draw(settings["test_ensembles"])
    estimates = {}
    with timed(timing, "mle_predict_seconds"):
        estimates["mle"] = param.predict(E_test)
    estimates["posterior_mean"] = param.predict(E_test, method="posterior_mean")
    for name, model in direct_models.items():
        estimates[name] = model.predict(E_test)
    estimates["exact_mle_clipped_mean"] = np.clip(E_test.mean(axis=(1, 2)), *THETA_RANGE)
    estimates["exact_posterior_mean"] = _exact_posterior_mean(E_test)
    with timed(timing, "interval_seconds"):
        intervals = param.predict_interval(E_test, confidence=0.68)

    rows, methods = [], {}
    for name, estimate in estimates.items():
        methods[name] = _summary(estimate, theta_test)
    exact_rmse = methods["exact_mle_clipped_mean"]["rmse"]

    # Bias at fixed theta values, on dedicated ensembles.
    for theta in BIAS_THETAS:
        E_fixed = theta + rng.standard_normal((settings["bias_ensembles"], N, 1))
        fixed = {
            "mle": param.predict(E_fixed),
            "posterior_mean": param.predict(E_fixed, method="posterior_mean"),
            **{name: model.predict(E_fixed) for name, model in direct_models.items()},
            "exact_mle_clipped_mean": np.clip(E_fixed.mean(axis=(1, 2)), *THETA_RANGE),
            "exact_posterior_mean": _exact_posterior_mean(E_fixed),
        }
        for name, estimate in fixed.items():
            methods[name][f"bias_at_{theta:+.1f}"] = float(estimate.mean() - theta)
            methods[name][f"bias_error_at_{theta:+.1f}"] = float(estimate.std() / np.sqrt(len(estimate)))

    for name, summary in methods.items():
        summary["rmse_over_exact_mle"] = summary["rmse"] / exact_rmse
        summary["rmse_over_cramer_rao"] = summary["rmse"] * np.sqrt(N)
        rows.append({"method": name, **summary})

    interior = (theta_test > INTERIOR[0]) & (theta_test < INTERIOR[1])
    covered = (intervals[:, 0] <= theta_test) & (theta_test <= intervals[:, 1])
    coverage = {
        "confidence": 0.68,
        "n_interior": int(interior.sum()),
        "interior_range": INTERIOR,
        "coverage_interior": float(covered[interior].mean()),
        "coverage_all": float(covered.mean()),
        "mean_width_interior": float((intervals[interior, 1] - intervals[interior, 0]).mean()),
        "exact_width": float(2 * np.sqrt(chi2.ppf(0.68, df=1)) / np.sqrt(N)),
    }
    bins = np.linspace(*THETA_RANGE, 11)
    calibration = _calibration(theta_test, estimates, bins)
    quick = settings.get("quick", False)
    figure = _plot_calibration(calibration, bins, Path(out) / "gaussian_calibration.png", quick)

    print(f"\nGaussian mean, N={N}: RMSE (Cramer-Rao bound {1 / np.sqrt(N):.3f}) and bias"
          + (QUICK_LABEL if quick else ""))
    print(format_table(rows, [
        ("method", "method", ""), ("rmse", "RMSE", ".4f"), ("rmse_over_exact_mle", "/exact MLE", ".3f"),
        ("bias_at_-0.4", "bias@-0.4", "+.4f"), ("bias_at_+0.0", "bias@0", "+.4f"),
        ("bias_at_+0.4", "bias@+0.4", "+.4f"),
    ]))
    print(
        f"68% profile-likelihood intervals: coverage {coverage['coverage_interior']:.3f} over "
        f"{coverage['n_interior']} ensembles with theta in {INTERIOR}; mean width "
        f"{coverage['mean_width_interior']:.4f} (exact {coverage['exact_width']:.4f})"
    )
    mle = methods["mle"]
    targets = {
        "mle_rmse_over_exact_le_1.05": bool(mle["rmse_over_exact_mle"] <= 1.05),
        "mle_abs_bias_le_0.03_at_-0.4_0_+0.4": bool(
            max(abs(mle[f"bias_at_{t:+.1f}"]) for t in BIAS_THETAS) <= 0.03
        ),
        "coverage_68_within_0.64_0.72": bool(0.64 <= coverage["coverage_interior"] <= 0.72),
    }
    targets = _targets(targets, settings)
    return {
        "targets": targets,
        "ensemble_size": N,
        "theta_range": THETA_RANGE,
        "parametrized_train_theta_range": PARAM_TRAIN_RANGE,
        "n_train_events_parametrized": len(E_train) * N,
        "n_train_ensembles_direct": len(E_direct),
        "n_test_ensembles": len(E_test),
        "cramer_rao_bound": 1 / np.sqrt(N),
        "methods": methods,
        "coverage": coverage,
        "calibration": calibration,
        "timing": timing,
        "figure": figure,
        "paper": {"direct_dense_rmse": 0.136, "direct_dense_edge_bias": 0.067, "cramer_rao_bound": 0.100},
    }


def _calibration(truth: np.ndarray, estimates: dict, bins: np.ndarray) -> dict:
    which = np.clip(np.digitize(truth, bins) - 1, 0, len(bins) - 2)
    table = {"bin_centers": 0.5 * (bins[1:] + bins[:-1])}
    for name, estimate in estimates.items():
        means, spreads = [], []
        for k in range(len(bins) - 1):
            part = estimate[which == k]
            means.append(float(part.mean()) if len(part) else float("nan"))
            spreads.append(float(part.std()) if len(part) > 1 else float("nan"))
        table[name] = {"mean": means, "std": spreads}
    return table


def _plot_calibration(calibration: dict, bins: np.ndarray, path: Path, quick: bool = False) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers = calibration["bin_centers"]
    names = [name for name in calibration if name != "bin_centers" and name != "exact_posterior_mean"]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    width = bins[1] - bins[0]
    for k, name in enumerate(names):
        shift = (k - (len(names) - 1) / 2) * 0.12 * width
        ax.errorbar(centers + shift, calibration[name]["mean"], yerr=calibration[name]["std"],
                    fmt="o", ms=3, capsize=2, label=name)
    ax.plot(bins[[0, -1]], bins[[0, -1]], "k--", lw=1, label="ideal")
    ax.set_xlabel("true theta")
    ax.set_ylabel("mean estimate (error bars: spread)")
    ax.set_title(f"Gaussian mean, N={ENSEMBLE_SIZE} events per ensemble" + (" (quick)" if quick else ""))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path = save_figure(fig, path)
    return str(path)


# ------------------------------------------------------------------------------- LHCO
def _mu_pairs(X_signal, X_background, mu_max: float, copies: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Events with the signal fraction mu that generated them, mu ~ U(0, mu_max).

    Drawing mu ~ U(0, mu_max) and then each event as signal with probability mu is the
    same joint distribution as: signal events with mu ~ density proportional to mu,
    background events with mu ~ density proportional to 1 - mu, in the proportion
    E[mu] : 1 - E[mu]. That form uses every background event (and as many signal events
    as the proportion needs) without replacement; ``copies`` independent mu draws per
    event multiply the pairs seen in training.
    """
    mean_mu = mu_max / 2
    n_background = len(X_background)
    n_signal = round(n_background * mean_mu / (1 - mean_mu))
    if n_signal > len(X_signal):
        n_background = round(len(X_signal) * (1 - mean_mu) / mean_mu)
        n_signal = len(X_signal)
    signal = X_signal[rng.permutation(len(X_signal))[:n_signal]]
    background = X_background[rng.permutation(len(X_background))[:n_background]]
    X, mu = [], []
    for _ in range(copies):
        # Inverse CDFs of the two conditional densities of mu on [0, mu_max].
        mu_signal = mu_max * np.sqrt(rng.random_sample(n_signal))
        area = mu_max - mu_max**2 / 2
        mu_background = 1 - np.sqrt(1 - 2 * area * rng.random_sample(n_background))
        X += [signal, background]
        mu += [mu_signal, mu_background]
    return np.concatenate(X), np.concatenate(mu)


def _plugin_mle(log_lr: np.ndarray, mu_max: float) -> np.ndarray:
    """Maximize ``sum_i log(1 + mu (LR_i - 1))`` over mu in [0, mu_max] for each ensemble.

    Parameters
    ----------
    log_lr : ndarray of shape (n_ensembles, ensemble_size)
        Per-event log LR_S = log p_S(x) / p_B(x).
    """
    lr_minus_one = np.expm1(log_lr)
    grid = np.linspace(0, mu_max, 501)
    log_like = np.log1p(grid[None, :, None] * lr_minus_one[:, None, :]).sum(axis=2)
    best = np.argmax(log_like, axis=1)
    step = grid[1] - grid[0]
    estimates = grid[best].astype(np.float64)
    for i, k in enumerate(best):
        bracket = (max(0.0, grid[k] - step), min(mu_max, grid[k] + step))
        result = minimize_scalar(
            lambda mu, r=lr_minus_one[i]: -np.log1p(mu * r).sum(), bounds=bracket, method="bounded",
            options={"xatol": 1e-7},
        )
        if result.fun <= -log_like[i, k]:
            estimates[i] = result.x
    return estimates


def lhco_study(settings: dict, seed: int, out: Path, data: Path, default_data: bool = False) -> dict:
    data = Path(data)
    which = "default data file" if default_data else "data file"
    if not data.exists():
        message = f"LHCO study skipped: {which} {data} not found (pass --data)."
        print(f"\n{message}")
        return {"skipped": message}
    print(f"\nLHCO study: using {which} {data}" + (" (pass --data to change)" if default_data else ""),
          flush=True)
    rng = np.random.RandomState(seed + 1)
    with np.load(data) as npz:
        X_train, y_train = npz["X_train"].astype(np.float64), npz["y_train"]
        X_val, y_val = npz["X_val"].astype(np.float64), npz["y_val"]
    N = ENSEMBLE_SIZE
    timing: dict = {}

    X_pairs, mu_pairs = _mu_pairs(
        X_train[y_train == 1], X_train[y_train == 0], MU_TRAIN_MAX, settings["lhco_copies"], rng
    )
    device = settings.get("device", "cpu")
    param = ParametrizedRegressor(
        theta_bounds=(0.0, MU_TRAIN_MAX), max_epochs=settings["lhco_param_epochs"], early_stopping=False,
        random_state=seed, device=device,
    )
    _say(settings, f"LHCO: training ParametrizedRegressor on {len(X_pairs)} (event, mu) pairs")
    with timed(timing, "parametrized_train_seconds"):
        param.fit(X_pairs, mu_pairs)
    classifier = PerInstanceClassifier(max_epochs=settings["lhco_classifier_epochs"], random_state=seed,
                                       device=device)
    _say(settings, f"LHCO: training PerInstanceClassifier on {len(X_train)} events")
    with timed(timing, "classifier_train_seconds"):
        classifier.fit(X_train, y_train)

    signal_val, background_val = X_val[y_val == 1], X_val[y_val == 0]
    rows, per_mu = [], {}
    for mu in MU_VALUES:
        E, n_signal = make_mixture_ensembles(
            signal_val, background_val, N, mu, n_ensembles=settings["lhco_test_ensembles"], random_state=rng,
        )
        with timed(timing, f"parametrized_predict_seconds_mu_{mu:.2f}"):
            param_hat = param.predict(E)
        log_lr = classifier.decision_function(E.reshape(-1, E.shape[2])).reshape(E.shape[:2])
        plugin_hat = _plugin_mle(log_lr, MU_TRAIN_MAX)
        entry = {"mu": mu, "n_ensembles": len(E), "mean_signal_fraction": float(n_signal.mean() / N)}
        for name, estimate in (("parametrized", param_hat), ("plugin", plugin_hat)):
            error = estimate - mu
            entry[f"{name}_bias"] = float(error.mean())
            entry[f"{name}_bias_error"] = float(estimate.std() / np.sqrt(len(estimate)))
            entry[f"{name}_rmse"] = float(np.sqrt(np.mean(error**2)))
            entry[f"{name}_mean"] = float(estimate.mean())
            entry[f"{name}_std"] = float(estimate.std())
        entry["counting_rmse"] = float(np.sqrt(mu * (1 - mu) / N))
        rows.append(entry)
        per_mu[f"{mu:.2f}"] = entry
    quick = settings.get("quick", False)
    figure = _plot_mu(rows, Path(out) / "lhco_mu_calibration.png", quick)
    print(f"\nLHCO signal fraction, N={N} events per ensemble, {settings['lhco_test_ensembles']} per mu"
          + (QUICK_LABEL if quick else ""))
    print(format_table(rows, [
        ("mu", "mu", ".2f"), ("parametrized_bias", "param bias", "+.4f"),
        ("parametrized_rmse", "param RMSE", ".4f"), ("plugin_bias", "plug-in bias", "+.4f"),
        ("plugin_rmse", "plug-in RMSE", ".4f"), ("counting_rmse", "counting RMSE", ".4f"),
    ]))
    max_abs_bias = {
        name: float(max(abs(row[f"{name}_bias"]) for row in rows)) for name in ("parametrized", "plugin")
    }
    targets = {f"{name}_abs_bias_le_0.01_every_mu": bool(v <= 0.01) for name, v in max_abs_bias.items()}
    targets = _targets(targets, settings)
    return {
        "targets": targets,
        "data": str(data),
        "ensemble_size": N,
        "mu_train_range": (0.0, MU_TRAIN_MAX),
        "n_train_pairs_parametrized": len(X_pairs),
        "n_train_events_classifier": len(X_train),
        "per_mu": per_mu,
        "max_abs_bias": max_abs_bias,
        "timing": timing,
        "figure": figure,
    }


def _plot_mu(rows: list[dict], path: Path, quick: bool = False) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mu = np.array([row["mu"] for row in rows])
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for k, name in enumerate(("parametrized", "plugin")):
        ax.errorbar(mu + (k - 0.5) * 0.004, [row[f"{name}_mean"] for row in rows],
                    yerr=[row[f"{name}_std"] for row in rows], fmt="o", ms=3, capsize=2, label=name)
    ax.plot([0, mu.max()], [0, mu.max()], "k--", lw=1, label="ideal")
    ax.set_xlabel("true signal fraction mu")
    ax.set_ylabel("mean estimate (error bars: spread)")
    ax.set_title(f"LHCO R&D, N={ENSEMBLE_SIZE} events per ensemble" + (" (quick)" if quick else ""))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    path = save_figure(fig, path)
    return str(path)
