"""Shared test fixtures.

Torch is pinned to one thread per test process: on a 2-core machine running
pytest-xdist, two threads per worker oversubscribe the cores and run many times
slower.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
LHCO_NPZ = REPO_ROOT.parent / "shared" / "data" / "lhco_sr_features.npz"


@pytest.fixture
def lhco_npz_path() -> Path:
    """Path of the real LHCO R&D features (../shared beside the clone), or skip."""
    if not LHCO_NPZ.exists():
        pytest.skip(f"real LHCO data not found at {LHCO_NPZ} (../shared is absent on this machine)")
    return LHCO_NPZ


@pytest.fixture
def gaussian_events():
    """50k + 50k events of N(+0.1, 1) (signal, y=1) and N(-0.1, 1) (background, y=0)."""
    rng = np.random.default_rng(0)
    n = 50_000
    X = np.concatenate([rng.normal(0.1, 1, n), rng.normal(-0.1, 1, n)])[:, None]
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    return X, y
