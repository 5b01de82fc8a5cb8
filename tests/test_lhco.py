"""LHCO loaders: the preprocessed npz and the official HDF5 feature file."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ensemblelr.lhco import (
    FEATURE_NAMES,
    H5_COLUMNS,
    lhco_features,
    load_lhco,
    load_lhco_h5,
    load_lhco_npz,
)

pd = pytest.importorskip("pandas")
pytest.importorskip("tables")


def _jet_row(p1, m1, taus1, p2, m2, taus2, label):
    """One event of the official table: jets (px, py, pz) in GeV, masses, (tau1, tau2, tau3)."""
    row = {}
    for jet, p, m, taus in ((1, p1, m1, taus1), (2, p2, m2, taus2)):
        row.update({f"pxj{jet}": p[0], f"pyj{jet}": p[1], f"pzj{jet}": p[2], f"mj{jet}": m})
        row.update({f"tau1j{jet}": taus[0], f"tau2j{jet}": taus[1], f"tau3j{jet}": taus[2]})
    row["label"] = float(label)
    return row


# Back-to-back jets along x: the total momentum vanishes and mjj = E1 + E2.
IN_WINDOW = [
    # jet 1 heavier: 500 vs 100 GeV
    _jet_row((1750, 0, 0), 500, (0.5, 0.2, 0.1), (-1750, 0, 0), 100, (0.8, 0.6, 0.3), 1),
    # jet 2 heavier: 80 vs 400 GeV
    _jet_row((1700, 0, 0), 80, (0.4, 0.3, 0.2), (-1700, 0, 0), 400, (0.9, 0.3, 0.2), 0),
    _jet_row((0, 1720, 0), 150, (0.7, 0.35, 0.1), (0, -1720, 0), 250, (0.6, 0.48, 0.2), 0),
    _jet_row((0, 0, 1760), 60, (0.3, 0.15, 0.1), (0, 0, -1760), 90, (0.5, 0.25, 0.1), 1),
]
OUT_OF_WINDOW = [
    _jet_row((1000, 0, 0), 100, (0.5, 0.2, 0.1), (-1000, 0, 0), 100, (0.5, 0.2, 0.1), 0),  # ~2.0 TeV
    _jet_row((2000, 0, 0), 100, (0.5, 0.2, 0.1), (-2000, 0, 0), 100, (0.5, 0.2, 0.1), 1),  # ~4.0 TeV
]


def _mjj_back_to_back(p, m1, m2):
    return (math.sqrt(p**2 + m1**2) + math.sqrt(p**2 + m2**2)) / 1000.0


# Hand-computed features of IN_WINDOW: (mj1, delta_mj, tau21 lighter, tau21 heavier), TeV.
EXPECTED = np.array([
    [0.100, 0.400, 0.6 / 0.8, 0.2 / 0.5],
    [0.080, 0.320, 0.3 / 0.4, 0.3 / 0.9],
    [0.150, 0.100, 0.35 / 0.7, 0.48 / 0.6],
    [0.060, 0.030, 0.15 / 0.3, 0.25 / 0.5],
])
EXPECTED_MJJ = np.array([
    _mjj_back_to_back(1750, 500, 100),
    _mjj_back_to_back(1700, 80, 400),
    _mjj_back_to_back(1720, 150, 250),
    _mjj_back_to_back(1760, 60, 90),
])


@pytest.fixture
def h5_path(tmp_path):
    path = tmp_path / "events_anomalydetection_v2.features.h5"
    frame = pd.DataFrame(IN_WINDOW + OUT_OF_WINDOW, columns=list(H5_COLUMNS))
    frame.to_hdf(path, key="df", mode="w")
    return path


def _sorted_rows(X):
    return X[np.lexsort(X.T[::-1])]


def test_lhco_features_hand_computed():
    frame = pd.DataFrame(IN_WINDOW)
    X, mjj = lhco_features(frame)
    assert EXPECTED_MJJ[0] == pytest.approx(3.5728823, abs=1e-6)
    np.testing.assert_allclose(mjj, EXPECTED_MJJ, rtol=1e-12)
    np.testing.assert_allclose(X, EXPECTED, rtol=1e-12)


def test_lhco_features_mjj_with_longitudinal_boost():
    # Two massless jets with momenta (p, 0, pz) and (-p, 0, pz): mjj = 2 p exactly.
    row = _jet_row((1800, 0, 900), 0.0, (1, 1, 1), (-1800, 0, 900), 0.0, (1, 1, 1), 0)
    _, mjj = lhco_features(pd.DataFrame([row]))
    assert mjj[0] == pytest.approx(3.6, rel=1e-12)


def test_load_h5_selects_window_and_splits(h5_path):
    data = load_lhco(h5_path, standardize=False, random_state=0)
    assert data.format == "h5"
    assert data.feature_names == list(FEATURE_NAMES)
    assert data.n_events_read == 6
    assert data.n_in_window == 4
    assert data.X_train.shape == (2, 4) and data.X_val.shape == (2, 4)
    X_all = np.concatenate([data.X_train, data.X_val])
    y_all = np.concatenate([data.y_train, data.y_val])
    order = np.argsort(X_all[:, 0])
    expected_order = np.argsort(EXPECTED[:, 0])
    np.testing.assert_allclose(X_all[order], EXPECTED[expected_order], rtol=1e-12)
    np.testing.assert_array_equal(y_all[order], np.array([1, 0, 0, 1])[expected_order])


def test_load_h5_split_is_seeded(h5_path):
    a = load_lhco_h5(h5_path, random_state=1)
    b = load_lhco_h5(h5_path, random_state=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    splits = {tuple(load_lhco_h5(h5_path, random_state=seed).y_train) for seed in range(8)}
    assert len(splits) > 1


def test_load_h5_standardizes_with_training_statistics(h5_path):
    raw = load_lhco_h5(h5_path, standardize=False, random_state=3)
    std = load_lhco_h5(h5_path, standardize=True, random_state=3)
    mean, scale = raw.X_train.mean(axis=0), raw.X_train.std(axis=0)
    np.testing.assert_allclose(std.mean, mean)
    np.testing.assert_allclose(std.scale, scale)
    np.testing.assert_allclose(std.X_train, (raw.X_train - mean) / scale)
    np.testing.assert_allclose(std.X_val, (raw.X_val - mean) / scale)
    np.testing.assert_allclose(std.X_train.mean(axis=0), 0.0, atol=1e-12)


def test_load_h5_drops_undefined_tau21_with_warning(tmp_path):
    bad = _jet_row((1750, 0, 0), 500, (0.0, 0.2, 0.1), (-1750, 0, 0), 100, (0.8, 0.6, 0.3), 1)
    path = tmp_path / "tau.h5"
    pd.DataFrame([*IN_WINDOW, bad]).to_hdf(path, key="df", mode="w")
    with pytest.warns(UserWarning, match="1 signal-region event"):
        data = load_lhco_h5(path)
    assert data.n_dropped_nonfinite == 1
    assert len(data.y_train) + len(data.y_val) == 4
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_val).all()


def test_load_h5_missing_column(tmp_path):
    path = tmp_path / "cut.h5"
    pd.DataFrame(IN_WINDOW).drop(columns=["tau2j2", "label"]).to_hdf(path, key="df", mode="w")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['tau2j2', 'label'\]"):
        load_lhco(path)


def test_load_h5_bad_labels(tmp_path):
    path = tmp_path / "labels.h5"
    frame = pd.DataFrame(IN_WINDOW)
    frame.loc[0, "label"] = 2.0
    frame.to_hdf(path, key="df", mode="w")
    with pytest.raises(ValueError, match="label must be 0"):
        load_lhco(path)


def test_load_h5_too_few_events_in_window(tmp_path):
    path = tmp_path / "empty.h5"
    pd.DataFrame(OUT_OF_WINDOW).to_hdf(path, key="df", mode="w")
    with pytest.raises(ValueError, match="only 0 event"):
        load_lhco(path)


def test_load_h5_not_hdf(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not an HDF5 file")
    with pytest.raises(ValueError, match="not a pandas HDF5 table"):
        load_lhco(path)


def _write_npz(path, **overrides):
    rng = np.random.default_rng(0)
    arrays = {
        "X_train": rng.normal(size=(30, 4)).astype(np.float32),
        "y_train": (np.arange(30) % 2).astype(np.int8),
        "X_val": rng.normal(size=(20, 4)).astype(np.float32),
        "y_val": (np.arange(20) % 3 == 0).astype(np.int8),
        "feature_names": np.array(FEATURE_NAMES),
    }
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return arrays


def test_load_npz_round_trip(tmp_path):
    path = tmp_path / "small.npz"
    arrays = _write_npz(path)
    data = load_lhco(path)
    assert data.format == "npz"
    assert data.feature_names == list(FEATURE_NAMES)
    np.testing.assert_array_equal(data.X_train, arrays["X_train"].astype(np.float64))
    np.testing.assert_array_equal(data.y_val, arrays["y_val"])
    assert data.X_train.dtype == np.float64 and data.y_train.dtype.kind == "i"


def test_load_npz_without_feature_names(tmp_path):
    path = tmp_path / "nonames.npz"
    _write_npz(path, feature_names=None)
    assert load_lhco_npz(path).feature_names == list(FEATURE_NAMES)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"y_val": None}, r"lacks the array\(s\) \['y_val'\]"),
        ({"y_train": np.zeros(29, dtype=int)}, "y_train must have shape"),
        ({"X_val": np.zeros((20, 3))}, "X_train has 4 features but X_val has 3"),
        ({"X_train": np.full((30, 4), np.nan)}, "X_train contains NaN"),
        ({"y_train": np.full(30, 2)}, "y_train must hold 0"),
        ({"X_train": np.zeros(30)}, "X_train must be 2-D"),
        ({"feature_names": np.array(["a", "b"])}, "feature_names has 2 entries"),
    ],
)
def test_load_npz_wrong_layout(tmp_path, overrides, message):
    path = tmp_path / "bad.npz"
    _write_npz(path, **overrides)
    with pytest.raises(ValueError, match=message):
        load_lhco(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_lhco(tmp_path / "nope.npz")


def test_unknown_suffix_and_bad_path_type(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_lhco(path)
    with pytest.raises(TypeError, match="path must be"):
        load_lhco(42)
    with pytest.raises(ValueError, match="is not a file"):
        load_lhco(tmp_path)


def test_real_npz(lhco_npz_path):
    data = load_lhco(lhco_npz_path)
    assert data.X_train.shape == (98323, 4) and data.X_val.shape == (98324, 4)
    assert data.feature_names == list(FEATURE_NAMES)
    assert set(np.unique(data.y_train)) == {0, 1}
    # The README gives a 38.3% signal fraction.
    assert np.mean(np.concatenate([data.y_train, data.y_val])) == pytest.approx(0.383, abs=0.001)
