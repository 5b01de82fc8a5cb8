"""Output helpers shared by the studies: metrics, tables, results.json and figures."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from .. import __version__


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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
