"""Speed of ensemblelr against plain torch, and against sbi on the Gaussian mean problem.

Command (full run, 2.5 minutes on 2 quiet CPU cores, up to 8 on busy ones)::

    python benchmarks/bench_speed.py

Fast pass (1-2 minutes, smaller sizes, same code paths)::

    python benchmarks/bench_speed.py --quick

Writes ``benchmarks/results/speed/speed[_quick].json``, ``speed[_quick].md`` (the
table) and ``speed[_quick].png``. Every ratio is product time / reference time
measured side by side in the same process, repeats interleaved, median reported;
timings on a shared machine move by tens of percent between runs, ratios much less.

Parts
-----
1. ``PerInstanceClassifier.fit`` vs a hand-written torch loop (same 4-64-64-64-1 SiLU
   MLP with standardization, Adam, BCE with logits, 100k events, 3 epochs).
2. ``predict_ensemble_log_ratio`` on 1e5 x 100 x 4 float32 ensembles vs a plain
   forward pass plus sum under ``torch.inference_mode``; peak memory vs input size
   measured in fresh subprocesses (``ru_maxrss``).
3. Deep Sets (``PerEnsembleClassifier``) training throughput for N = 3, 10, 100 vs
   per-instance training on the same (real LHCO, when available) events.
4. ``ParametrizedRegressor.log_likelihood_ratio(E, thetas)`` on 1000 x 100 events x 101
   thetas vs one call per theta, and vs a Keras-style loop (per theta: build the
   (x, theta) array in numpy and predict in batches of 32).
5. The Gaussian mean problem (theta ~ U(-0.5, 0.5), N = 100 events of N(theta, 1))
   with ``ParametrizedRegressor`` and with sbi's neural ratio estimation (NRE, IID
   trials) trained on the very same simulated (theta, x) pairs: RMSE and wall time.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "benchmarks" / "results" / "speed"
LHCO_NPZ = REPO.parent / "shared" / "data" / "lhco_sr_features.npz"

FULL = dict(
    train_events=100_000, train_batch_sizes=(128, 1024), train_epochs=3, train_repeats=5,
    infer_ensembles=100_000, infer_ensembles_other=20_000, infer_repeats=3,
    memory_sizes=(1_000, 10_000, 100_000),
    deepsets_events=60_000, deepsets_sizes=(3, 10, 100), deepsets_epochs=2,
    scan_ensembles=1_000, scan_thetas=101, scan_keras_thetas=11,
    sbi_events=20_000, sbi_epochs=20, sbi_test=500,
)
QUICK = dict(
    train_events=20_000, train_batch_sizes=(128, 1024), train_epochs=2, train_repeats=2,
    infer_ensembles=10_000, infer_ensembles_other=5_000, infer_repeats=2,
    memory_sizes=(1_000, 10_000),
    deepsets_events=20_000, deepsets_sizes=(3, 10, 100), deepsets_epochs=1,
    scan_ensembles=200, scan_thetas=101, scan_keras_thetas=3,
    sbi_events=5_000, sbi_epochs=3, sbi_test=100,
)


def _tune_malloc() -> bool:
    """Keep freed activation buffers in glibc's heap instead of returning them to the OS.

    With glibc's defaults every chunk of a large prediction frees its activations
    (several MB), the heap top is trimmed and the next chunk page-faults it back:
    millions of page faults that cost plain torch and ensemblelr alike up to 2x and
    depend on the heap's history, which swamps the ratios being measured. The same
    setting is available to users as MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 64 << 20) and libc.mallopt(m_trim_threshold, 256 << 20))


def _timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _interleaved(reference, product, repeats: int, warm_up=None) -> dict:
    """Median times and median ratio of ``product`` / ``reference`` after a warm-up.

    ``warm_up`` (default: one call of each) runs first, outside the timings.
    """
    if warm_up is None:
        reference()
        product()
    else:
        warm_up()
    ref_times, prod_times, ratios = [], [], []
    for i in range(repeats):
        # Alternate the order so that drifting load on a shared machine cancels.
        if i % 2:
            t_prod, _ = _timed(product)
            t_ref, _ = _timed(reference)
        else:
            t_ref, _ = _timed(reference)
            t_prod, _ = _timed(product)
        ref_times.append(t_ref)
        prod_times.append(t_prod)
        ratios.append(t_prod / t_ref)
    return dict(
        reference_s=statistics.median(ref_times), product_s=statistics.median(prod_times),
        ratio=statistics.median(ratios), ratios=ratios,
    )


# --------------------------------------------------------------------- part 1
def _torch_training_loop(X: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, seed: int = 0):
    """What a user would write by hand: the same network, optimizer and loss."""
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    mean, scale = Xt.mean(dim=0), Xt.std(dim=0)
    layers, width = [], X.shape[1]
    for size in (64, 64, 64):
        layers += [torch.nn.Linear(width, size), torch.nn.SiLU()]
        width = size
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    n = len(Xt)
    for _ in range(epochs):
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model((Xt[index] - mean) / scale).squeeze(-1), yt[index])
            loss.backward()
            optimizer.step()
    return model


def bench_training(cfg: dict, threads: int) -> list[dict]:
    from ensemblelr import PerInstanceClassifier

    rng = np.random.default_rng(0)
    n = cfg["train_events"]
    y = (rng.random(n) < 0.5).astype(int)
    X = rng.normal(size=(n, 4)) + 0.3 * y[:, None]
    rows = []
    for batch_size in cfg["train_batch_sizes"]:
        def product(batch_size=batch_size):
            PerInstanceClassifier(
                hidden_layer_sizes=(64, 64, 64), activation="silu", batch_size=batch_size,
                max_epochs=cfg["train_epochs"], early_stopping=False, random_state=0,
                lr_schedule="constant",  # the reference loop keeps a constant rate too
            ).fit(X, y)

        def reference(batch_size=batch_size):
            _torch_training_loop(X, y, batch_size, cfg["train_epochs"])

        result = _interleaved(reference, product, cfg["train_repeats"])
        rows.append(dict(part="1 train", threads=threads, case=f"batch {batch_size}", target="<= 1.1",
                         n_events=n, epochs=cfg["train_epochs"], **result))
        print(f"  train bs={batch_size} threads={threads}: ratio {result['ratio']:.3f}", flush=True)
    return rows


def profile_training(cfg: dict, batch_size: int = 128, top: int = 12) -> list[str]:
    """Where the time of a product fit goes (cProfile, cumulative), as text lines."""
    import cProfile
    import io
    import pstats

    from ensemblelr import PerInstanceClassifier

    rng = np.random.default_rng(0)
    n = min(cfg["train_events"], 30_000)
    y = (rng.random(n) < 0.5).astype(int)
    X = rng.normal(size=(n, 4)) + 0.3 * y[:, None]
    clf = PerInstanceClassifier(batch_size=batch_size, max_epochs=1, early_stopping=False, random_state=0)
    profiler = cProfile.Profile()
    profiler.runcall(clf.fit, X, y)
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    return [line for line in stream.getvalue().splitlines() if line.strip()]


# --------------------------------------------------------------------- part 2
def _small_per_instance(n_features: int = 4):
    from ensemblelr import PerInstanceClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, n_features))
    y = np.arange(4000) % 2
    return PerInstanceClassifier(max_epochs=1, early_stopping=False, random_state=0).fit(X, y)


def _plain_ensemble_forward(module, E: np.ndarray, offset: float, chunk_events: int = 1 << 15) -> np.ndarray:
    """The reference: forward pass plus sum over events, in large chunks (as the product)."""
    n_ens, n_events, n_features = E.shape
    per_chunk = max(1, chunk_events // n_events)
    out = np.empty(n_ens)
    with torch.inference_mode():
        for start in range(0, n_ens, per_chunk):
            part = torch.from_numpy(E[start : start + per_chunk])
            logits = module(part.reshape(-1, n_features)).reshape(len(part), n_events)
            out[start : start + per_chunk] = logits.double().sum(dim=1).numpy()
    return out - n_events * offset


def bench_inference(cfg: dict, threads: int, n_ensembles: int) -> dict:
    clf = _small_per_instance()
    E = np.random.default_rng(1).standard_normal((n_ensembles, 100, 4), dtype=np.float32)
    module = clf.net_.module_
    module.eval()
    max_diff = float(np.abs(
        clf.predict_ensemble_log_ratio(E[:1000])
        - _plain_ensemble_forward(module, E[:1000], clf.log_prior_odds_)
    ).max())
    result = _interleaved(
        lambda: _plain_ensemble_forward(module, E, clf.log_prior_odds_),
        lambda: clf.predict_ensemble_log_ratio(E),
        cfg["infer_repeats"],
        warm_up=lambda: max_diff,  # the comparison above already ran both paths
    )
    print(f"  inference {n_ensembles} ensembles threads={threads}: ratio {result['ratio']:.3f}", flush=True)
    return dict(part="2 ensemble inference", threads=threads, case=f"{n_ensembles:.0e} x 100 x 4 float32",
                target="<= 1.1", max_abs_diff=max_diff,
                events_per_s=n_ensembles * 100 / result["product_s"], **result)


def _status_mb(field: str) -> float | None:
    """A ``Vm*`` field of /proc/self/status in MB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so that it measures what follows."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def bench_chunk_sizes(sizes=(1 << 11, 1 << 13, 1 << 15, 1 << 17), n_events: int = 1_000_000) -> list[dict]:
    """Forward time of the 4-64-64-64-1 network per chunk size (why PREDICT_CHUNK_EVENTS is 2**15)."""
    module = _small_per_instance().net_.module_
    module.eval()
    X = torch.randn(n_events, 4)
    rows = []
    with torch.inference_mode():
        module(X[:1000])
        for size in sizes:
            times = []
            for _ in range(2):
                start = time.perf_counter()
                for first in range(0, n_events, size):
                    module(X[first : first + size])
                times.append(time.perf_counter() - start)
            rows.append(dict(chunk_events=size, seconds_per_million=min(times) * 1e6 / n_events))
            print(f"  chunk {size}: {rows[-1]['seconds_per_million']:.2f} s per 1e6 events", flush=True)
    return rows


def _memory_child(n_ensembles: int) -> None:
    """Run in a fresh interpreter: RSS before, and peak RSS during, ensemble scoring."""
    import gc

    torch.set_num_threads(1)
    clf = _small_per_instance()
    E = np.random.default_rng(1).standard_normal((n_ensembles, 100, 4), dtype=np.float32)
    clf.predict_ensemble_log_ratio(E[:10])
    gc.collect()
    if _reset_peak_rss() and _status_mb("VmRSS") is not None:
        method, before = "VmHWM after reset", _status_mb("VmRSS")
        clf.predict_ensemble_log_ratio(E)
        after = _status_mb("VmHWM")
    else:  # ru_maxrss cannot be reset: it may include earlier peaks and read low
        method, before = "ru_maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        clf.predict_ensemble_log_ratio(E)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(input_mb=E.nbytes / 2**20, rss_before_mb=before, peak_during_mb=after,
                          method=method)))


def bench_memory(cfg: dict) -> list[dict]:
    rows = []
    for n in cfg["memory_sizes"]:
        done = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(n)],
            capture_output=True, text=True, check=True, cwd=REPO,
        )
        values = json.loads(done.stdout.strip().splitlines()[-1])
        extra = max(0.0, values["peak_during_mb"] - values["rss_before_mb"])
        rows.append(dict(n_ensembles=n, extra_mb=extra, **values))
        print(f"  memory {n} ensembles: input {values['input_mb']:.0f} MB, +{extra:.0f} MB", flush=True)
    return rows


# --------------------------------------------------------------------- part 3
def _events_for_throughput(n: int):
    if LHCO_NPZ.exists():
        with np.load(LHCO_NPZ) as data:
            return data["X_train"][:n].astype(np.float64), data["y_train"][:n].astype(int), "LHCO X_train"
    rng = np.random.default_rng(2)
    y = np.arange(n) % 2
    return rng.normal(size=(n, 4)) + 0.5 * y[:, None], y, "Gaussian 4-D"


def bench_deepsets(cfg: dict, threads: int) -> list[dict]:
    from ensemblelr import PerEnsembleClassifier, PerInstanceClassifier

    X, y, source = _events_for_throughput(cfg["deepsets_events"])
    epochs = cfg["deepsets_epochs"]
    models = {"per-instance (batch 512 events)": PerInstanceClassifier(
        max_epochs=epochs, early_stopping=False, random_state=0)}
    for size in cfg["deepsets_sizes"]:
        models[f"Deep Sets N={size} (batch 128 ensembles)"] = PerEnsembleClassifier(
            architecture="deepsets", ensemble_size=size, max_epochs=epochs, early_stopping=False,
            random_state=0,
        )
    rows = []
    for name, model in models.items():
        model.fit(X[:2000], y[:2000])  # warm-up
        seconds, _ = _timed(lambda model=model: model.fit(X, y))
        rate = len(X) * epochs / seconds
        rows.append(dict(part="3 per-ensemble training", threads=threads, case=name, data=source,
                         seconds=seconds, events_per_s=rate))
        print(f"  {name} threads={threads}: {rate:,.0f} events/s", flush=True)
    return rows


# --------------------------------------------------------------------- part 4
def _kernel_share(function) -> float:
    """Fraction of ``function``'s profiled time spent in torch's linear and activation kernels."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(function)
    stats = pstats.Stats(profiler).stats
    total = sum(entry[2] for entry in stats.values())
    kernels = sum(entry[2] for key, entry in stats.items() if key[2] in (
        "<built-in method torch._C._nn.linear>", "<built-in method torch._C._nn.silu>",
        "<built-in method cat>", "<method 'sum' of 'torch._C.TensorBase' objects>",
    ))
    return kernels / total if total else float("nan")


def _fit_gaussian_regressor(E, theta, max_epochs: int, early_stopping: bool = False):
    from ensemblelr.regression import ParametrizedRegressor

    X = E.reshape(-1, E.shape[-1])
    theta_events = np.repeat(theta, E.shape[1])
    return ParametrizedRegressor(
        theta_bounds=(-0.5, 0.5), max_epochs=max_epochs, early_stopping=early_stopping, random_state=0,
    ).fit(X, theta_events)


def _keras_style_scan(reg, E: np.ndarray, thetas: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The paper's approach: one predict per theta over an explicit (x, theta) array."""
    module = reg.net_.module_
    flat = E.reshape(-1, E.shape[-1]).astype(np.float32)
    out = np.empty((len(E), len(thetas)))
    for j, theta in enumerate(thetas):
        pairs = np.concatenate([flat, np.full((len(flat), 1), theta, dtype=np.float32)], axis=1)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(pairs)),
                                             batch_size=batch_size)
        with torch.no_grad():
            logits = torch.cat([module(batch) for (batch,) in loader])
        out[:, j] = (logits.double() - reg.log_prior_odds_).reshape(E.shape[:2]).sum(dim=1).numpy()
    return out


def bench_theta_scan(cfg: dict, threads: int) -> dict | None:
    try:
        from ensemblelr.regression import ParametrizedRegressor  # noqa: F401
    except ImportError as exc:
        print(f"  theta scan skipped: ParametrizedRegressor is not available ({exc}).")
        return None
    from ensemblelr.datasets import make_gaussian_regression

    E_train, theta_train = make_gaussian_regression(100, 100, random_state=0)
    reg = _fit_gaussian_regressor(E_train, theta_train, max_epochs=1)
    E, _ = make_gaussian_regression(cfg["scan_ensembles"], 100, random_state=1)
    thetas = np.linspace(-0.5, 0.5, cfg["scan_thetas"])

    def batched():
        return reg.log_likelihood_ratio(E, thetas)

    def per_theta():
        return np.stack([reg.log_likelihood_ratio(E, thetas[j : j + 1])[:, 0] for j in range(len(thetas))], 1)

    with warnings.catch_warnings():
        # Grid ends lie just outside the range of the 100 training thetas.
        warnings.simplefilter("ignore", UserWarning)
        t_batched, ll_batched = _timed(batched)
        t_per_theta, ll_per_theta = _timed(per_theta)
        t_batched2, _ = _timed(batched)
        share = _kernel_share(batched)
    t_batched = min(t_batched, t_batched2)
    subset = thetas[:: max(1, len(thetas) // cfg["scan_keras_thetas"])][: cfg["scan_keras_thetas"]]
    t_keras, ll_keras = _timed(lambda: _keras_style_scan(reg, E, subset))
    t_keras_full = t_keras * len(thetas) / len(subset)
    index = np.searchsorted(thetas, subset)
    row = dict(
        part="4 theta scan", threads=threads, case=f"{len(E)} x 100 x {len(thetas)} thetas",
        target=">= 20x", batched_s=t_batched, per_theta_call_s=t_per_theta,
        keras_style_s=t_keras_full, keras_style_thetas_timed=len(subset),
        speedup_vs_per_theta_call=t_per_theta / t_batched, speedup_vs_keras_style=t_keras_full / t_batched,
        pairs_per_s=E.shape[0] * E.shape[1] * len(thetas) / t_batched,
        max_abs_diff_per_theta=float(np.abs(ll_batched - ll_per_theta).max()),
        max_abs_diff_keras=float(np.abs(ll_batched[:, index] - ll_keras).max()),
        batched_time_in_kernels=share,
    )
    print(f"  theta scan threads={threads}: batched {t_batched:.2f}s, per-theta calls {t_per_theta:.2f}s, "
          f"keras-style {t_keras_full:.2f}s (from {len(subset)} thetas)", flush=True)
    return row


# --------------------------------------------------------------------- part 5
def bench_sbi(cfg: dict, threads: int) -> dict | None:
    try:
        from sbi.inference import NRE, ratio_estimator_based_potential
        from sbi.utils import BoxUniform
    except ImportError as exc:
        print(f"  sbi comparison skipped: sbi is not installed ({exc}); pip install sbi torch==<yours>.")
        return None
    from ensemblelr.datasets import make_gaussian_regression

    n_ens = cfg["sbi_events"] // 100
    E_train, theta_train = make_gaussian_regression(n_ens, 100, random_state=10)
    E_test, theta_test = make_gaussian_regression(cfg["sbi_test"], 100, random_state=11)
    # Both methods estimate theta as the maximum of the summed log ratio on this grid.
    grid = np.linspace(-0.5, 0.5, 101)

    def ours():
        reg = _fit_gaussian_regressor(E_train, theta_train, cfg["sbi_epochs"], early_stopping=True)
        grid_ll = reg.log_likelihood_ratio(E_test, grid)
        return reg, grid[grid_ll.argmax(axis=1)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        t_ours, (reg, ours_grid) = _timed(ours)

    prior = BoxUniform(torch.tensor([-0.5]), torch.tensor([0.5]))
    theta_pairs = torch.as_tensor(np.repeat(theta_train, 100)[:, None], dtype=torch.float32)
    x_pairs = torch.as_tensor(E_train.reshape(-1, 1), dtype=torch.float32)
    grid_t = torch.as_tensor(grid[:, None], dtype=torch.float32)

    def peer():
        torch.manual_seed(0)
        inference = NRE(prior=prior, show_progress_bars=False)
        estimator = inference.append_simulations(theta_pairs, x_pairs).train(max_num_epochs=cfg["sbi_epochs"])
        estimator.eval()
        estimates = np.empty(len(E_test))
        with torch.no_grad():
            for i, ensemble in enumerate(E_test):
                x_o = torch.as_tensor(ensemble, dtype=torch.float32)  # 100 IID trials
                potential, _ = ratio_estimator_based_potential(estimator, prior, x_o, enable_transform=False)
                estimates[i] = grid[int(potential(grid_t).argmax())]
        return estimates, inference._summary["epochs_trained"][-1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_peer, (peer_grid, peer_epochs) = _timed(peer)

    def rmse(estimate):
        return float(np.sqrt(np.mean((estimate - theta_test) ** 2)))

    sample_mean = np.clip(E_test.mean(axis=(1, 2)), -0.5, 0.5)
    row = dict(
        part="5 sbi peer", threads=threads, case=f"{cfg['sbi_events']} simulated events, {len(E_test)} test",
        target="RMSE no worse, time lower", ours_s=t_ours, sbi_s=t_peer,
        ours_rmse_grid=rmse(ours_grid), sbi_rmse_grid=rmse(peer_grid),
        sample_mean_rmse=rmse(sample_mean), cramer_rao=0.1, ours_epochs=int(reg.n_epochs_),
        sbi_epochs=int(peer_epochs), max_epochs=cfg["sbi_epochs"],
    )
    print(f"  sbi: ours RMSE {row['ours_rmse_grid']:.4f} in {t_ours:.1f}s; sbi NRE RMSE "
          f"{row['sbi_rmse_grid']:.4f} in {t_peer:.1f}s; sample mean {row['sample_mean_rmse']:.4f}",
          flush=True)
    return row


# ------------------------------------------------------------------- output
def _table(results: dict) -> str:
    lines = ["| part | threads | case | reference | ensemblelr | ratio / result | target |",
             "|---|---|---|---|---|---|---|"]
    for r in results["train"]:
        lines.append(f"| 1 train | {r['threads']} | {r['case']}, {r['n_events']:,} events x {r['epochs']} ep "
                     f"| torch loop {r['reference_s']:.2f} s | {r['product_s']:.2f} s "
                     f"| **{r['ratio']:.2f}** | {r['target']} |")
    for r in results["inference"]:
        lines.append(f"| 2 ensemble inference | {r['threads']} | {r['case']} "
                     f"| torch forward+sum {r['reference_s']:.2f} s | {r['product_s']:.2f} s "
                     f"| **{r['ratio']:.2f}** | {r['target']} |")
    for m in results["memory"]:
        lines.append(f"| 2 peak memory | 1 | {m['n_ensembles']:,} x 100 x 4 float32 | input "
                     f"{m['input_mb']:.0f} MB | +{m['extra_mb']:.0f} MB over input | "
                     f"{m['extra_mb'] / max(m['input_mb'], 1e-9):.2f} x input | bounded |")
    per_instance = {
        r["threads"]: r["events_per_s"] for r in results["deepsets"] if "per-instance" in r["case"]
    }
    for r in results["deepsets"]:
        rel = r["events_per_s"] / per_instance[r["threads"]]
        lines.append(f"| 3 training throughput | {r['threads']} | {r['case']} | | "
                     f"{r['events_per_s']:,.0f} events/s | {rel:.2f} x per-instance | |")
    if results.get("chunk_sizes"):
        cells = ", ".join(f"2^{int(np.log2(c['chunk_events']))}: {c['seconds_per_million']:.2f} s"
                          for c in results["chunk_sizes"])
        lines.append(f"| 2 chunk size | {results['thread_settings'][0]} | forward time per 1e6 events | "
                     f"{cells} | 2^15 used | | |")
    if results.get("theta_scan"):
        r = results["theta_scan"]
        lines.append(f"| 4 theta scan | {r['threads']} | {r['case']} | one call per theta "
                     f"{r['per_theta_call_s']:.2f} s | batched {r['batched_s']:.2f} s "
                     f"| **{r['speedup_vs_per_theta_call']:.2f}x** | {r['target']} |")
        lines.append(f"| 4 theta scan | {r['threads']} | {r['case']} | Keras-style loop, batch 32 "
                     f"{r['keras_style_s']:.1f} s | batched {r['batched_s']:.2f} s "
                     f"| **{r['speedup_vs_keras_style']:.1f}x** | {r['target']} |")
    if results.get("sbi"):
        r = results["sbi"]
        lines.append(f"| 5 vs sbi NRE | {r['threads']} | {r['case']} | sbi {r['sbi_s']:.1f} s, RMSE "
                     f"{r['sbi_rmse_grid']:.4f} ({r['sbi_epochs']} ep) | {r['ours_s']:.1f} s, RMSE "
                     f"{r['ours_rmse_grid']:.4f} ({r['ours_epochs']} ep) | "
                     f"time {r['ours_s'] / r['sbi_s']:.2f}x, "
                     f"sample mean {r['sample_mean_rmse']:.4f} | {r['target']} |")
    return "\n".join(lines)


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels, ratios = [], []
    for r in results["train"] + results["inference"]:
        kind = "train" if r["part"].startswith("1") else "predict"
        labels.append(f"{kind}\n{r['case'].split(' x ')[0].split(',')[0]}\n{r['threads']} thr")
        ratios.append(r["ratio"])
    axes[0].bar(range(len(ratios)), ratios, color="tab:blue")
    axes[0].axhline(1.1, color="tab:red", ls="--", label="target 1.1")
    axes[0].axhline(1.0, color="k", lw=0.8)
    axes[0].set_xticks(range(len(ratios)), labels, fontsize=7)
    axes[0].set_ylabel("ensemblelr time / plain torch time")
    axes[0].legend()
    memory = results["memory"]
    sizes = [m["input_mb"] for m in memory]
    axes[1].plot(sizes, [m["extra_mb"] for m in memory], "o-", label="extra over input")
    axes[1].plot(sizes, sizes, "k:", label="= input size")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("input size (MB)")
    axes[1].set_ylabel("peak RSS above input (MB)")
    axes[1].legend()
    for threads in sorted({r["threads"] for r in results["deepsets"]}):
        rows = [r for r in results["deepsets"] if r["threads"] == threads]
        names = ["per-event" if "per-instance" in r["case"] else r["case"].split(" (")[0].split()[-1]
                 for r in rows]
        axes[2].bar([f"{name}\n{threads} thr" for name in names],
                    [r["events_per_s"] for r in rows], alpha=0.7)
    axes[2].set_ylabel("training events / s")
    axes[2].tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    parser.add_argument("--skip-sbi", action="store_true", help="leave out part 5")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of a product fit")
    parser.add_argument("--threads", default="1,default",
                        help="torch thread counts for parts 1-3, comma separated ('default' = torch's)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="keep glibc's default allocator settings (noisier ratios, see _tune_malloc)")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(args.memory_child)
        return {}
    cfg = QUICK if args.quick else FULL
    # Memory is measured in fresh subprocesses with the default allocator.
    malloc_tuned = False if args.default_malloc else _tune_malloc()
    default_threads = torch.get_num_threads()
    thread_settings = []
    for item in args.threads.split(","):
        value = default_threads if item.strip() == "default" else int(item)
        if value not in thread_settings:
            thread_settings.append(value)
    started = time.perf_counter()
    results = dict(
        command=" ".join(["python benchmarks/bench_speed.py", *(sys.argv[1:] if argv is None else argv)]),
        config=cfg, torch=torch.__version__, python=platform.python_version(),
        cpu_count=os.cpu_count(), default_threads=default_threads, thread_settings=thread_settings,
        load_average_start=os.getloadavg(), malloc_tuned=malloc_tuned,
        train=[], inference=[], memory=[], deepsets=[], theta_scan=None, sbi=None,
    )
    for threads in thread_settings:
        torch.set_num_threads(threads)
        print(f"[threads={threads}]", flush=True)
        results["train"] += bench_training(cfg, threads)
        # The full size runs once, at the first thread setting; the others use a smaller one.
        n_ens = cfg["infer_ensembles"] if threads == thread_settings[0] else cfg["infer_ensembles_other"]
        results["inference"].append(bench_inference(cfg, threads, n_ens))
        results["deepsets"] += bench_deepsets(cfg, threads)
    print("[memory, fresh processes]", flush=True)
    results["memory"] = bench_memory(cfg)
    torch.set_num_threads(thread_settings[0])
    print(f"[prediction chunk size, threads={thread_settings[0]}]", flush=True)
    results["chunk_sizes"] = bench_chunk_sizes(n_events=200_000 if args.quick else 1_000_000)
    # Parts 4 and 5 are long: they run once, at the first thread setting.
    torch.set_num_threads(thread_settings[0])
    print(f"[theta scan, threads={thread_settings[0]}]", flush=True)
    results["theta_scan"] = bench_theta_scan(cfg, thread_settings[0])
    if not args.skip_sbi:
        print(f"[sbi peer, threads={thread_settings[0]}]", flush=True)
        results["sbi"] = bench_sbi(cfg, thread_settings[0])
    if args.profile:
        torch.set_num_threads(1)
        results["profile_fit_batch128"] = profile_training(cfg)
        print("\n".join(results["profile_fit_batch128"]))
    results["load_average_end"] = os.getloadavg()
    results["total_s"] = time.perf_counter() - started

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stem = "speed_quick" if args.quick else "speed"
    table = _table(results)
    header = (f"Command: `{results['command']}`; torch {results['torch']}, {results['cpu_count']} CPUs, "
              f"default threads {default_threads}, load average {results['load_average_start'][0]:.1f} at "
              f"start; glibc malloc tuned: {malloc_tuned}; total {results['total_s']:.0f} s.\n\n")
    (OUT_DIR / f"{stem}.md").write_text(header + table + "\n")
    (OUT_DIR / f"{stem}.json").write_text(json.dumps(results, indent=2, default=float))
    _plot(results, OUT_DIR / f"{stem}.png")
    print()
    print(header + table)
    return results


if __name__ == "__main__":
    main()
