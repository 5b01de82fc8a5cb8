"""Output helpers shared by the studies: metrics, tables, results.json and figures."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from .. import __version__

QUICK_LABEL = "  [--quick: smoke run, numbers not meaningful]"
QUICK_TARGETS = "targets (full run only; skipped in --quick)"


# ------------------------------------------------------------ shared command-line options
def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _bounded_int(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _bounded_int(text, 0, "a non-negative integer")


def _bounded_int(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def default_out(study: str) -> Path:
    """Where a study writes when --out is not given: ``./ensemblelr-results/<study>``."""
    return Path("ensemblelr-results") / study


def add_run_arguments(parser: argparse.ArgumentParser, study: str, *, device: bool = True) -> None:
    """--quick, --out, --seed, --device, --threads and --quiet, the same in every study.

    --seed and --threads are checked by the CLI (a one-line error), not by argparse.
    """
    parser.add_argument(
        "--quick", action="store_true",
        help="smoke run on small data with few epochs; numbers are not meaningful",
    )
    parser.add_argument(
        "--out", type=Path, default=default_out(study), metavar="DIR",
        help=f"directory for results.json and the figures (default ./{default_out(study)})",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    if device:
        parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    parser.add_argument(
        "--threads", type=int, default=None, metavar="T",
        help="torch CPU threads (default: torch's choice)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output, only the tables")


def add_max_epochs_argument(parser: argparse.ArgumentParser, what: str = "every model's") -> None:
    parser.add_argument(
        "--max-epochs", type=positive_int, default=None, metavar="E",
        help=f"override {what} maximum number of epochs",
    )


def prepare_run(args: argparse.Namespace) -> None:
    """Check --device (a one-line error, before any work) and set torch's thread count."""
    device = getattr(args, "device", None)
    if device is not None:
        from .._training import resolve_device

        try:
            resolve_device(device)
        except ValueError as exc:
            study = getattr(args, "study", "")
            raise SystemExit(f"ensemblelr reproduce {study}: error: {exc}") from None
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


def options_dict(args: argparse.Namespace) -> dict:
    """The parsed command-line options, for results.json."""
    return {key: value for key, value in vars(args).items() if not key.startswith("_")}


def command_line(args: argparse.Namespace, study: str | None = None) -> str:
    """An ``ensemblelr reproduce`` command that repeats this run (every option spelled out)."""
    parts = ["ensemblelr", "reproduce", str(getattr(args, "study", None) or study)]
    for key, value in options_dict(args).items():
        if key in ("command", "study") or value is None or value is False:
            continue
        option = "--" + key.replace("_", "-")
        parts.append(option if value is True else f"{option} {shlex.quote(str(value))}")
    return " ".join(parts)


def run_record(args: argparse.Namespace, study: str) -> dict:
    """The ``command`` (every option spelled out) and ``argv`` (as typed) fields of results.json."""
    record = {"command": command_line(args, study)}
    argv = getattr(args, "_argv", None)
    if argv is not None:
        record["argv"] = shlex.join(["ensemblelr", *argv])
    return record


def quick_suffix(args: argparse.Namespace) -> str:
    """`` (quick)`` for figure titles of --quick runs, else empty."""
    return " (quick)" if getattr(args, "quick", False) else ""


def roc_summary(y_true, score) -> dict:
    """AUC and 1/FPR at a true-positive rate of 0.5 (the paper's two figures of merit).

    Returns
    -------
    dict with ``auc`` and ``inv_fpr_at_tpr_0.5`` (inf when no background passes).
    """
    y_true = np.asarray(y_true)
    score = np.asarray(score, dtype=np.float64)
    fpr, tpr, _ = roc_curve(y_true, score)
    fpr_at_half = float(np.interp(0.5, tpr, fpr))
    return {
        "auc": float(roc_auc_score(y_true, score)),
        "inv_fpr_at_tpr_0.5": float(np.inf) if fpr_at_half == 0 else 1.0 / fpr_at_half,
    }


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """Plain-text table; ``columns`` holds (key, header, format spec) triples."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append([
            "" if row.get(key) is None else format(row[key], spec) if spec else str(row[key])
            for key, _, spec in columns
        ])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def environment() -> dict:
    """Versions and thread count recorded next to every result."""
    return {
        "ensemblelr": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def write_results(out_dir: Path | str, results: dict, name: str = "results.json") -> Path:
    """Write ``results`` (plus the environment) as JSON; non-finite floats become strings."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {**results, "environment": environment()}
    path = out_dir / name
    path.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=False) + "\n")
    return path


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if np.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


@contextmanager
def timed(record: dict, key: str = "train_seconds"):
    """Store the wall time of the ``with`` block in ``record[key]``."""
    start = time.perf_counter()
    yield record
    record[key] = time.perf_counter() - start


def save_figure(fig, path: Path | str) -> Path:
    """Lay out, write (as PNG at 120 dpi, creating folders) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rocs(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path | str, title: str) -> Path:
    """ROC curves in the paper's style: signal efficiency vs 1 / background efficiency.

    Parameters
    ----------
    curves : dict of label -> (y_true, score)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for label, (y_true, score) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, score)
        keep = fpr > 0
        ax.plot(tpr[keep], 1.0 / fpr[keep], label=f"{label} (AUC {roc_auc_score(y_true, score):.4f})")
    ax.set_yscale("log")
    ax.set_xlabel("signal efficiency (TPR)")
    ax.set_ylabel("1 / background efficiency (1 / FPR)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path = save_figure(fig, path)
    return path
