"""``ensemblelr reproduce dilution``: how per-ensemble training dilutes each event's gradient.

The paper explains the slower training of per-ensemble models by gradient
dilution: the loss of an ensemble depends on its N events only through one
number, so every event of an ensemble receives the same error signal
``sigmoid(S) - y``, whatever its own content, and that signal vanishes once the
ensemble as a whole is classified confidently. This study measures it.

The same training events, grouped into same-label ensembles of N = 1, 3, 10, 30
(regrouped every epoch), train two per-ensemble architectures with the same
optimizer (Adam), the same initial weights, the same number of events per
optimizer step and the same number of steps:

- ``logratio_sum``: ensemble logit ``sum_i Phi(x_i)``; at N = 1 this *is*
  per-instance training, so its per-event AUC is directly comparable across N;
- ``deepsets``: ``F(sum_i Phi(x_i))``.

Recorded every epoch: the norm of each event's own contribution to the gradient of
the per-event network Phi (computed exactly with ``torch.func`` on a fixed probe
batch, times the number of ensembles per batch, see :func:`per_event_gradients`), the mean error
signal ``|dL/dPhi(x_i)|``, the full gradient norm seen by the optimizer, and
learning curves: per-event AUC and FPR at TPR 0.5 of Phi (``logratio_sum``), and
the ensemble AUC and FPR at TPR 0.5 on validation ensembles of the training N
(both architectures, plus the per-instance product from the N = 1 run).

Command used for benchmarks/results/dilution::

    ensemblelr reproduce dilution --out benchmarks/results/dilution \
        --data ../shared/data/lhco_sr_features.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve
from torch import nn
from torch.func import functional_call, grad, vmap

from .._modules import DeepSetsNet, LogRatioSumNet
from ..datasets import make_gaussian_events
from ._common import (
    QUICK_LABEL,
    add_run_arguments,
    format_table,
    positive_int,
    prepare_run,
    quick_suffix,
    run_record,
    save_figure,
    write_results,
)

SIZES = (1, 3, 10, 30)
ARCHITECTURES = ("logratio_sum", "deepsets")

FULL = dict(n_train_events=40_000, n_val_events=20_000, events_per_step=600, epochs=25, lr=1e-3,
            hidden=(64, 64, 64), Phi=(64, 64, 64), F=(64, 64), n_probe_events=600)
QUICK = dict(n_train_events=3_000, n_val_events=3_000, events_per_step=300, epochs=2, lr=1e-3,
             hidden=(8, 8), Phi=(8, 8), F=(8,), n_probe_events=300)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``ensemblelr reproduce dilution``.

    No --device: the hand-written training loop of this study runs on the CPU.
    """
    add_run_arguments(parser, "dilution", device=False)
    parser.add_argument("--data", type=Path, default=None, metavar="PATH",
                        help="LHCO .npz (X_train, y_train, X_val, y_val); Gaussian events without it "
                        "(no default file)")
    parser.add_argument(
        "--max-epochs", type=positive_int, default=None, metavar="E",
        help=f"number of epochs of every run (default {FULL['epochs']}; {QUICK['epochs']} with --quick); "
        "training has no early stopping",
    )
    # The old name of --max-epochs, kept working but not shown.
    parser.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)


# ------------------------------------------------------------------ data
def load_events(path, config: dict, seed: int):
    """Training and validation events: LHCO from ``path`` or Gaussian N(+-0.1, 1) when None."""
    rng = np.random.default_rng(seed)
    if path is None:
        n_train, n_val = config["n_train_events"] // 2, config["n_val_events"] // 2
        X, y = make_gaussian_events(n_train + n_val, random_state=seed)
        order = rng.permutation(len(y))
        X, y = X[order], y[order]
        cut = 2 * n_train
        return X[:cut], y[:cut], X[cut:], y[cut:], "gaussian"
    from .noniid import load_npz

    X_train, y_train, X_val, y_val = load_npz(path)
    train = rng.permutation(len(y_train))[: config["n_train_events"]]
    val = rng.permutation(len(y_val))[: config["n_val_events"]]
    return X_train[train], y_train[train], X_val[val], y_val[val], "lhco"


def group(y: np.ndarray, size: int, generator: torch.Generator | None):
    """Same-label grouping of event indices: (index (n_ensembles, size), labels (n_ensembles,))."""
    groups, labels = [], []
    for label in (0, 1):
        idx = torch.as_tensor(np.flatnonzero(y == label))
        if generator is not None:
            idx = idx[torch.randperm(len(idx), generator=generator)]
        n = len(idx) // size
        groups.append(idx[: n * size].view(n, size))
        labels.append(torch.full((n,), float(label)))
    index, target = torch.cat(groups), torch.cat(labels)
    if generator is not None:
        order = torch.randperm(len(target), generator=generator)
        index, target = index[order], target[order]
    return index, target


# ---------------------------------------------------------------- model parts
def build(arch: str, n_features: int, config: dict, mean, scale, log_prior_odds: float) -> nn.Module:
    if arch == "logratio_sum":
        return LogRatioSumNet(n_features, config["hidden"], "silu", mean, scale, log_prior_odds)
    return DeepSetsNet(n_features, config["Phi"], config["F"], "silu", mean, scale)


def per_event_parts(model: nn.Module, arch: str):
    """(Phi as a module mapping raw events to per-event outputs, head mapping them to logits)."""
    if arch == "logratio_sum":
        phi = model.event_net

        def head(per_event: torch.Tensor) -> torch.Tensor:
            return per_event.sum(dim=1) + model.log_prior_odds
    else:
        phi = nn.Sequential(model.standardize, model.phi)

        def head(per_event: torch.Tensor) -> torch.Tensor:
            return model.F(per_event.sum(dim=1)).squeeze(-1)
    return phi, head


def per_event_gradients(model, arch, E: torch.Tensor, target: torch.Tensor) -> dict:
    """Each event's contribution to the gradient of Phi's parameters, for one batch.

    With loss ``L`` the mean BCE over the batch's ensembles, event ``i`` contributes
    ``J_i^T dL/dPhi_i`` to ``dL/dtheta_Phi``. Its norm is multiplied by the number of
    ensembles in the batch, which makes the error signal of ``logratio_sum``
    ``|sigmoid(S_e) - y_e|`` for every event of ensemble ``e`` (``|sigmoid(Phi_i) - y_i|``
    at N = 1): the overall scale of the loss is irrelevant to Adam, what counts is how
    much each event is pushed relative to the others.
    """
    phi, head = per_event_parts(model, arch)
    n_ens, size, n_features = E.shape
    flat = E.reshape(-1, n_features)
    outputs = phi(flat)
    outputs = outputs.reshape(n_ens, size, *outputs.shape[1:])
    loss = nn.functional.binary_cross_entropy_with_logits(head(outputs), target)
    (signal,) = torch.autograd.grad(loss, outputs)
    signal = signal.reshape(n_ens * size, *signal.shape[2:]).detach() * n_ens
    params = {name: p.detach() for name, p in phi.named_parameters()}

    def contribution(p, x, g):
        return (functional_call(phi, p, (x.unsqueeze(0),))[0] * g).sum()

    grads = vmap(grad(contribution), in_dims=(None, 0, 0))(params, flat, signal)
    norms = torch.sqrt(sum(g.reshape(len(flat), -1).pow(2).sum(dim=1) for g in grads.values()))
    error = signal.abs() if signal.dim() == 1 else signal.norm(dim=1)
    return {
        "per_event_grad_norm_mean": float(norms.mean()),
        "per_event_grad_norm_median": float(norms.median()),
        "error_signal_mean": float(error.mean()),
    }


def _roc(y, score) -> tuple[float, float]:
    fpr, tpr, _ = roc_curve(y, score)
    return float(roc_auc_score(y, score)), float(np.interp(0.5, tpr, fpr))


@torch.no_grad()
def evaluate(model, arch, X_val, y_val, val_ensembles: dict, size: int, all_sizes: bool) -> dict:
    """Per-event metrics of Phi (logratio_sum) and ensemble metrics at N (all N for N = 1)."""
    model.eval()
    out = {}
    phi, head = per_event_parts(model, arch)
    if arch == "logratio_sum":
        event_score = phi(X_val).numpy()
        out["event_auc"], out["event_fpr"] = _roc(y_val, event_score)
    for n in (val_ensembles if all_sizes else [size]):
        index, target = val_ensembles[n]
        per_event = phi(X_val[index.reshape(-1)])
        per_event = per_event.reshape(len(target), n, *per_event.shape[1:])
        out[f"ensemble_auc_N{n}"], out[f"ensemble_fpr_N{n}"] = _roc(target.numpy(), head(per_event).numpy())
    model.train()
    return out


def train_run(arch: str, size: int, data: dict, config: dict, steps_per_epoch: int, seed: int,
              verbose: bool) -> dict:
    """Train one (architecture, N) pair for ``config['epochs']`` epochs; return its curves."""
    X_train, y_train = data["X_train"], data["y_train"]
    torch.manual_seed(seed)  # same initial weights for every N of an architecture
    n_per_class = [(y_train == c).sum() // size for c in (0, 1)]
    log_prior_odds = float(np.log(n_per_class[1] / n_per_class[0]))
    model = build(arch, X_train.shape[1], config, data["mean"], data["scale"], log_prior_odds)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    generator = torch.Generator().manual_seed(seed + size)
    batch_ensembles = config["events_per_step"] // size
    probe_index, probe_target = data["probes"][size]
    probe = X_train[probe_index]
    curves: dict[str, list] = {"epoch": []}

    def record(epoch: int, step_grad_norms: list[float]) -> None:
        entry = {"epoch": epoch, **per_event_gradients(model, arch, probe, probe_target)}
        entry["optimizer_grad_norm_mean"] = float(np.mean(step_grad_norms)) if step_grad_norms else None
        entry.update(evaluate(model, arch, data["X_val"], data["y_val"], data["val_ensembles"], size,
                              all_sizes=arch == "logratio_sum" and size == 1))
        for key, value in entry.items():
            curves.setdefault(key, []).append(value)

    start = time.perf_counter()
    record(0, [])
    for epoch in range(1, config["epochs"] + 1):
        index, target = group(y_train, size, generator)
        step_norms = []
        for step in range(steps_per_epoch):
            rows = slice(step * batch_ensembles, (step + 1) * batch_ensembles)
            logits = model(X_train[index[rows]])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target[rows])
            optimizer.zero_grad()
            loss.backward()
            step_norms.append(float(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))))
            optimizer.step()
        record(epoch, step_norms)
        if verbose:
            last = {k: v[-1] for k, v in curves.items()}
            print(f"  {arch:<12} N={size:<3} epoch {epoch:>3}: ens AUC {last[f'ensemble_auc_N{size}']:.5f}"
                  f"  event AUC {last.get('event_auc', float('nan')):.4f}"
                  f"  per-event |grad| {last['per_event_grad_norm_mean']:.3g}", flush=True)
    return {"architecture": arch, "N": size, "train_seconds": time.perf_counter() - start,
            "batch_ensembles": batch_ensembles, "curves": curves}


def prepare(X_train, y_train, X_val, y_val, config: dict, seed: int) -> tuple[dict, int]:
    """Tensors, fixed validation ensembles and probe batches shared by every run."""
    generator = torch.Generator().manual_seed(seed)
    data = {
        "X_train": torch.as_tensor(X_train, dtype=torch.float32),
        "y_train": np.asarray(y_train),
        "X_val": torch.as_tensor(X_val, dtype=torch.float32),
        "y_val": np.asarray(y_val),
        "mean": X_train.mean(axis=0),
        "scale": X_train.std(axis=0),
        "val_ensembles": {n: group(np.asarray(y_val), n, generator) for n in SIZES},
        "probes": {},
    }
    probe_events = config["n_probe_events"]
    for n in SIZES:
        index, target = group(np.asarray(y_train), n, torch.Generator().manual_seed(seed + 1))
        data["probes"][n] = (index[: probe_events // n], target[: probe_events // n])
    # Same number of optimizer steps for every N: the smallest number of full batches.
    y = np.asarray(y_train)
    steps = min(len(group(y, n, None)[1]) // (config["events_per_step"] // n) for n in SIZES)
    return data, steps


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for run in runs:
        c, size = run["curves"], run["N"]
        best = int(np.argmax(c[f"ensemble_auc_N{size}"]))
        rows.append({
            "model": run["architecture"], "N": size,
            "grad_epoch1": c["per_event_grad_norm_mean"][1],
            "grad_last": c["per_event_grad_norm_mean"][-1],
            "event_auc_last": c["event_auc"][-1] if "event_auc" in c else None,
            "event_auc_epoch1": c["event_auc"][1] if "event_auc" in c else None,
            "ens_auc_last": c[f"ensemble_auc_N{size}"][-1],
            "ens_fpr_last": c[f"ensemble_fpr_N{size}"][-1],
            "best_epoch": best,
        })
    return rows


def plot(runs: list[dict], path: Path, dataset: str, title_suffix: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    colors = {n: f"C{i}" for i, n in enumerate(SIZES)}
    product = next((r for r in runs if r["architecture"] == "logratio_sum" and r["N"] == 1), None)
    for run in runs:
        c, n = run["curves"], run["N"]
        style = "-" if run["architecture"] == "logratio_sum" else "--"
        label = f"{run['architecture']} N={n}"
        if "event_auc" in c:
            axes[0, 0].plot(c["epoch"], c["event_auc"], style, color=colors[n], label=label)
            axes[0, 1].plot(c["epoch"], np.maximum(c["event_fpr"], 1e-6), style, color=colors[n], label=label)
        axes[1, 0].plot(c["epoch"], c["per_event_grad_norm_mean"], style, color=colors[n], label=label)
        axes[1, 1].plot(c["epoch"], np.maximum(1 - np.asarray(c[f"ensemble_auc_N{n}"]), 1e-7), style,
                        color=colors[n], label=label)
    if product is not None:
        for n in SIZES[1:]:
            axes[1, 1].plot(product["curves"]["epoch"],
                            np.maximum(1 - np.asarray(product["curves"][f"ensemble_auc_N{n}"]), 1e-7),
                            ":", color=colors[n], label=f"per-instance product N={n}")
    axes[0, 0].set(title="per-event AUC of Phi", xlabel="epoch", ylabel="AUC")
    axes[0, 1].set(title="per-event FPR at TPR 0.5", xlabel="epoch", ylabel="FPR", yscale="log")
    axes[1, 0].set(title="per-event gradient norm (Phi parameters)", xlabel="epoch",
                   ylabel="|event's gradient| x ensembles/batch", yscale="log")
    axes[1, 1].set(title="ensemble 1 - AUC at the training N", xlabel="epoch",
                   ylabel="1 - AUC (AUC = 1 drawn at 1e-7)", yscale="log")
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    axes[1, 1].legend(fontsize=6)
    fig.suptitle(f"Gradient dilution ({dataset}): same events, same optimizer steps{title_suffix}")
    path = save_figure(fig, path)
    return path


COLUMNS = [
    ("model", "model", ""), ("N", "N", "d"), ("grad_epoch1", "|g_event| ep1", ".3g"),
    ("grad_last", "|g_event| last", ".3g"), ("event_auc_epoch1", "event AUC ep1", ".4f"),
    ("event_auc_last", "event AUC last", ".4f"), ("ens_auc_last", "ens AUC last", ".5f"),
    ("ens_fpr_last", "ens FPR@0.5 last", ".2e"), ("best_epoch", "best ens epoch", "d"),
]


def run(args: argparse.Namespace) -> dict:
    """Run the study, print a table, write results.json and dilution.png under ``args.out``."""
    prepare_run(args)
    config = dict(QUICK if args.quick else FULL)
    epochs = getattr(args, "max_epochs", None)
    if epochs is None and getattr(args, "epochs", None) is not None:
        if args.epochs < 1:
            raise ValueError(f"--epochs must be positive, got {args.epochs}.")
        epochs = args.epochs
    if epochs is not None:
        config["epochs"] = epochs
    data_path = args.data
    if data_path is not None and not Path(data_path).is_file():
        print(f"data file {data_path} not found; using Gaussian events instead")
        data_path = None
    elif data_path is not None:
        print(f"using data file {data_path}", flush=True)
    start = time.perf_counter()
    X_train, y_train, X_val, y_val, dataset = load_events(data_path, config, args.seed)
    data, steps = prepare(X_train, y_train, X_val, y_val, config, args.seed)
    runs = []
    for arch in ARCHITECTURES:
        for size in SIZES:
            runs.append(train_run(arch, size, data, config, steps, args.seed, verbose=not args.quiet))
    rows = summarize(runs)
    if args.quick:
        print(QUICK_LABEL.strip())
    print(format_table(rows, COLUMNS))
    out = Path(args.out)
    figure = plot(runs, out / "dilution.png", dataset, quick_suffix(args))
    results = {
        "study": "dilution",
        **run_record(args, "dilution"),
        "quick": bool(args.quick),
        "dataset": dataset,
        "config": config,
        "steps_per_epoch": steps,
        "sizes": list(SIZES),
        "summary": rows,
        "runs": runs,
        "figure": figure.name,
        "total_seconds": time.perf_counter() - start,
    }
    path = write_results(out, results)
    print(f"wrote {path} and {figure} in {results['total_seconds']:.0f} s")
    return results
