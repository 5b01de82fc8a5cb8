"""Loaders for the LHC Olympics 2020 R&D dijet data in the paper's four features.

Two inputs are understood:

- an ``.npz`` file with ``X_train``, ``y_train``, ``X_val``, ``y_val`` (and optionally
  ``feature_names``), already preprocessed, like ``lhco_sr_features.npz``;
- the official R&D feature file ``events_anomalydetection_v2.features.h5`` (a pandas
  HDF5 table with per-jet ``px py pz m tau1 tau2 tau3`` for two jets and ``label``, in
  GeV), from which the signal-region features are built here.

The features, in column order, are ``mj1`` (lighter jet mass), ``delta_mj`` (heavier
minus lighter jet mass), ``tau21_j1`` and ``tau21_j2`` (tau2/tau1 of the lighter and of
the heavier jet); masses are in TeV. Label 1 is signal, 0 background.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

FEATURE_NAMES = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
SIGNAL_REGION_TEV = (3.3, 3.7)

NPZ_KEYS = ("X_train", "y_train", "X_val", "y_val")
JET_COLUMNS = tuple(
    f"{quantity}j{jet}" for jet in (1, 2) for quantity in ("px", "py", "pz", "m", "tau1", "tau2", "tau3")
)
H5_COLUMNS = (*JET_COLUMNS, "label")
_H5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def load_lhco(path, *, random_state=0, standardize: bool = True, mjj_window=SIGNAL_REGION_TEV) -> Bunch:
    """Load LHCO R&D events as a train/validation split of the paper's four features.

    The format is chosen from the file suffix: ``.npz`` (see :func:`load_lhco_npz`) or
    ``.h5`` / ``.hdf5`` / ``.hdf`` (see :func:`load_lhco_h5`).

    Parameters
    ----------
    path : str or Path
    random_state : int, RandomState or None, default=0
        Seeds the 50/50 split of the HDF5 format (an npz file carries its own split).
    standardize : bool, default=True
        HDF5 format only: standardize with the training split's mean and standard
        deviation. An npz file is returned as stored.
    mjj_window : (float, float), default=(3.3, 3.7)
        HDF5 format only: signal region in dijet mass, TeV.

    Returns
    -------
    data : Bunch
        ``X_train`` (n_train, 4), ``y_train`` (n_train,), ``X_val`` (n_val, 4),
        ``y_val`` (n_val,), ``feature_names`` and ``format`` (``"npz"`` or ``"h5"``),
        plus the loader-specific fields documented there.
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return load_lhco_npz(path)
    if suffix in _H5_SUFFIXES:
        return load_lhco_h5(path, random_state=random_state, standardize=standardize, mjj_window=mjj_window)
    raise ValueError(
        f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}: expected .npz "
        f"(preprocessed X_train/y_train/X_val/y_val) or one of {_H5_SUFFIXES} (the official "
        "LHCO R&D feature file)."
    )


def load_lhco_npz(path) -> Bunch:
    """Preprocessed features from an npz file laid out like ``lhco_sr_features.npz``.

    Parameters
    ----------
    path : str or Path
        Holds ``X_train`` (n_train, n_features), ``y_train`` (n_train,), ``X_val``
        (n_val, n_features), ``y_val`` (n_val,) with labels 0/1, and optionally
        ``feature_names`` (n_features,).

    Returns
    -------
    data : Bunch
        The four arrays (float64 features, int labels), ``feature_names`` and
        ``format="npz"``.
    """
    path = _existing_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable npz file: {exc}") from exc
    # np.load returns a bare array (no context manager) for an .npy file named .npz.
    if not hasattr(archive, "files"):
        raise ValueError(f"{str(path)!r} holds a single array, not an npz archive with {NPZ_KEYS}.")
    with archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(
                f"{str(path)!r} lacks the array(s) {missing}; an LHCO npz file needs {list(NPZ_KEYS)} "
                f"(found {sorted(archive.files)})."
            )
        try:
            arrays = {key: archive[key] for key in NPZ_KEYS}
            names = archive["feature_names"] if "feature_names" in archive.files else None
        except (OSError, ValueError) as exc:  # object (pickled) or corrupt members
            raise ValueError(f"{str(path)!r}: an array could not be read: {exc}") from exc
    X_train, y_train = _check_split(arrays["X_train"], arrays["y_train"], "train", path)
    X_val, y_val = _check_split(arrays["X_val"], arrays["y_val"], "val", path)
    if X_train.shape[1] != X_val.shape[1]:
        raise ValueError(
            f"{str(path)!r}: X_train has {X_train.shape[1]} features but X_val has {X_val.shape[1]}."
        )
    if names is None:
        names = FEATURE_NAMES if X_train.shape[1] == len(FEATURE_NAMES) else [
            f"x{i}" for i in range(X_train.shape[1])
        ]
    names = [str(name) for name in np.asarray(names).ravel()]
    if len(names) != X_train.shape[1]:
        raise ValueError(
            f"{str(path)!r}: feature_names has {len(names)} entries for {X_train.shape[1]} features."
        )
    return Bunch(
        X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val,
        feature_names=names, format="npz", source=str(path),
    )


def load_lhco_h5(path, *, random_state=0, standardize: bool = True, mjj_window=SIGNAL_REGION_TEV) -> Bunch:
    """Build the paper's signal-region features from the official LHCO R&D feature file.

    Reads the pandas HDF5 table (needs ``pandas`` and ``tables``), computes the
    features with :func:`lhco_features`, keeps ``mjj_window[0] < mjj < mjj_window[1]``,
    splits the kept events 50/50 at random and, if asked, standardizes both halves
    with the training half's statistics.

    Parameters
    ----------
    path : str or Path
    random_state : int, RandomState or None, default=0
        Seeds the train/validation split.
    standardize : bool, default=True
    mjj_window : (float, float), default=(3.3, 3.7)
        Signal region in dijet mass, TeV.

    Returns
    -------
    data : Bunch
        ``X_train``, ``y_train``, ``X_val``, ``y_val``, ``feature_names``,
        ``format="h5"``, ``n_events_read``, ``n_in_window``, ``n_dropped_nonfinite``
        (events in the window whose tau21 is undefined because tau1 = 0), and
        ``mean`` / ``scale`` (the standardization, zeros / ones when disabled).
    """
    path = _existing_file(path)
    low, high = (float(v) for v in mjj_window)
    if not 0 <= low < high:
        raise ValueError(f"mjj_window must be (low, high) in TeV with 0 <= low < high, got {mjj_window!r}.")
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "reading the LHCO HDF5 file needs pandas and PyTables: pip install pandas tables"
        ) from exc
    try:
        table = pd.read_hdf(path)
    except ImportError:  # pragma: no cover - PyTables missing: keep pandas' own message
        raise
    except Exception as exc:
        raise ValueError(
            f"{str(path)!r} is not a pandas HDF5 table with a single data set: {exc}"
        ) from exc
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{str(path)!r} holds a {type(table).__name__}, not a pandas DataFrame.")
    missing = [column for column in H5_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(
            f"{str(path)!r} lacks the column(s) {missing}; the LHCO R&D feature file has "
            f"{list(H5_COLUMNS)}."
        )
    jets = {column: table[column].to_numpy(dtype=np.float64) for column in JET_COLUMNS}
    labels = table["label"].to_numpy(dtype=np.float64)
    if not np.isin(labels, (0.0, 1.0)).all():
        bad = labels[~np.isin(labels, (0.0, 1.0))][0]
        raise ValueError(f"{str(path)!r}: label must be 0 (background) or 1 (signal), found {bad!r}.")
    X, mjj = lhco_features(jets)
    in_window = (mjj > low) & (mjj < high)
    finite = np.isfinite(X).all(axis=1)
    n_dropped = int((in_window & ~finite).sum())
    if n_dropped:
        warnings.warn(
            f"{n_dropped} signal-region event(s) have tau1 = 0 (tau21 undefined) and were dropped.",
            UserWarning,
            stacklevel=2,
        )
    keep = in_window & finite
    X, y = X[keep], labels[keep].astype(int)
    if len(y) < 2:
        raise ValueError(
            f"{str(path)!r}: only {len(y)} event(s) lie in {low} < mjj < {high} TeV; need at least 2 "
            "to split into training and validation halves."
        )
    order = check_random_state(random_state).permutation(len(y))
    n_train = (len(y) + 1) // 2
    train, val = order[:n_train], order[n_train:]
    X_train, X_val = X[train], X[val]
    if standardize:
        mean = X_train.mean(axis=0)
        scale = X_train.std(axis=0)
        # A constant feature (possible in tiny files) is centred but not rescaled.
        scale[~(scale > 0)] = 1.0
        X_train, X_val = (X_train - mean) / scale, (X_val - mean) / scale
    else:
        mean, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
    return Bunch(
        X_train=X_train, y_train=y[train], X_val=X_val, y_val=y[val],
        feature_names=list(FEATURE_NAMES), format="h5", source=str(path),
        n_events_read=len(labels), n_in_window=int(in_window.sum()),
        n_dropped_nonfinite=n_dropped, mean=mean, scale=scale,
    )


def lhco_features(jets) -> tuple[np.ndarray, np.ndarray]:
    """The paper's four features and the dijet mass from two jets' kinematics.

    Parameters
    ----------
    jets : mapping of column name -> array of shape (n_events,)
        ``pxj1 pyj1 pzj1 mj1 tau1j1 tau2j1`` and the same for ``j2``, in GeV (a
        pandas DataFrame works); ``tau3`` is not used.

    Returns
    -------
    X : ndarray of shape (n_events, 4)
        ``mj1`` (lighter jet mass, TeV), ``delta_mj`` (heavier minus lighter, TeV),
        ``tau21_j1``, ``tau21_j2`` (tau2/tau1 of the lighter, heavier jet; NaN or inf
        where tau1 = 0).
    mjj : ndarray of shape (n_events,)
        Invariant mass of the two jets, TeV.
    """
    def column(name: str) -> np.ndarray:
        return np.asarray(jets[name], dtype=np.float64)

    momenta = [np.stack([column(f"p{axis}j{jet}") for axis in "xyz"]) for jet in (1, 2)]
    masses = [column(f"mj{jet}") for jet in (1, 2)]
    energies = [np.sqrt((p**2).sum(axis=0) + m**2) for p, m in zip(momenta, masses)]
    total_p = momenta[0] + momenta[1]
    mjj2 = (energies[0] + energies[1]) ** 2 - (total_p**2).sum(axis=0)
    # Round-off can make the square of a tiny mass slightly negative.
    mjj = np.sqrt(np.clip(mjj2, 0.0, None)) / 1000.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tau21 = [column(f"tau2j{jet}") / column(f"tau1j{jet}") for jet in (1, 2)]
    first_lighter = masses[0] <= masses[1]
    light_mass = np.where(first_lighter, masses[0], masses[1])
    heavy_mass = np.where(first_lighter, masses[1], masses[0])
    X = np.stack(
        [
            light_mass / 1000.0,
            (heavy_mass - light_mass) / 1000.0,
            np.where(first_lighter, tau21[0], tau21[1]),
            np.where(first_lighter, tau21[1], tau21[0]),
        ],
        axis=1,
    )
    return X, mjj


def _existing_file(path) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"LHCO data file not found: {str(path)!r}.")
    if not path.is_file():
        raise ValueError(f"LHCO data path {str(path)!r} is not a file.")
    return path


def _check_split(X, y, split: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"{str(path)!r}: X_{split} must be 2-D (n_events, n_features), got shape {X.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"{str(path)!r}: y_{split} must have shape ({len(X)},) to match X_{split}, got {y.shape}."
        )
    if y.dtype == bool:
        y = y.astype(int)
    if not (np.issubdtype(X.dtype, np.number) and np.issubdtype(y.dtype, np.number)):
        raise ValueError(f"{str(path)!r}: X_{split} and y_{split} must be numeric.")
    if len(X) == 0:
        raise ValueError(f"{str(path)!r}: X_{split} is empty.")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{str(path)!r}: X_{split} contains NaN or infinite values.")
    if not np.isin(y, (0, 1)).all():
        bad = y[~np.isin(y, (0, 1))][0]
        raise ValueError(f"{str(path)!r}: y_{split} must hold 0 (background) or 1 (signal), found {bad!r}.")
    return X, y.astype(int)
