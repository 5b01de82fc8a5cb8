"""Command line: help at every level, quick runs of both studies, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import ensemblelr
from ensemblelr.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _help(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_help_top_level(capsys):
    out = _help(capsys, ["--help"])
    assert "reproduce" in out and "usage: ensemblelr" in out


def test_help_reproduce_lists_studies(capsys):
    out = _help(capsys, ["reproduce", "--help"])
    assert "gaussian" in out and "lhco" in out


@pytest.mark.parametrize(
    ("study", "options"),
    [
        ("gaussian", ["--ensemble-size", "--quick", "--out", "--seed", "--n-events", "--n-test"]),
        ("lhco", ["--data", "--ensemble-size", "--quick", "--out", "--seed", "--max-events"]),
    ],
)
def test_help_study(capsys, study, options):
    out = _help(capsys, ["reproduce", study, "--help"])
    for option in options:
        assert option in out


def test_version(capsys):
    out = _help(capsys, ["--version"])
    assert ensemblelr.__version__ in out


def test_python_dash_m_ensemblelr():
    result = subprocess.run(
        [sys.executable, "-m", "ensemblelr", "reproduce", "gaussian", "--help"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--ensemble-size" in result.stdout


def test_bad_options_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "gaussian", "--ensemble-size", "0"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "lhco"])
    assert exit_info.value.code == 2
    assert "--data" in capsys.readouterr().err


def test_bad_device_is_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "gaussian", "--quick", "--device", "nonsense", "--out", str(tmp_path)])
    assert "device must be" in str(exit_info.value.code)
    assert not (tmp_path / "results.json").exists()


def test_lhco_missing_file_is_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["reproduce", "lhco", "--data", str(tmp_path / "absent.npz"), "--quick", "--out", str(tmp_path)])
    assert "not found" in str(exit_info.value.code)


def _check_png(path):
    assert path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == PNG_MAGIC


def _load_results(out):
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["ensemblelr"] == ensemblelr.__version__
    assert results["quick"] is True
    for row in results["results"]:
        assert 0.0 <= row["auc"] <= 1.0
        assert row["one_minus_auc"] == pytest.approx(1.0 - row["auc"])
    return results


def test_quick_gaussian(tmp_path, capsys):
    out = tmp_path / "gaussian"
    main(["reproduce", "gaussian", "--quick", "--out", str(out), "--seed", "1", "--threads", "1"])
    printed = capsys.readouterr().out
    assert "f_1->10" in printed and "AUC" in printed and "[1/5] f_1" in printed

    results = _load_results(out)
    assert results["study"] == "gaussian"
    assert results["settings"]["ensemble_size"] == 10
    assert results["options"]["seed"] == 1
    assert results["command"] == (
        f"ensemblelr reproduce gaussian --ensemble-size 10 --quick --out {out} --seed 1 --device cpu "
        "--threads 1"
    )
    models = {(row["model"], row["level"]) for row in results["results"]}
    assert models == {
        ("f_1", "events"), ("f_10->1", "events"), ("optimum", "events"),
        ("f_1->10", "ensembles"), ("f_10 dense", "ensembles"), ("f_10 sorted", "ensembles"),
        ("f_10 deepsets", "ensembles"), ("f_10 logratio_sum", "ensembles"), ("optimum", "ensembles"),
    }
    rows = {(row["model"], row["level"]): row for row in results["results"]}
    # 2000 test events per class make 200 ensembles of 10 per class.
    assert results["data"]["n_test_ensembles"] == {"signal": 200, "background": 200}
    assert rows[("optimum", "ensembles")]["n_scored"] == 400
    assert rows[("optimum", "events")]["delta_auc"] == 0.0
    assert rows[("f_1", "events")]["train_seconds"] > 0
    # The summed exact log ratio separates ensembles far better than single events.
    assert rows[("optimum", "ensembles")]["auc"] > rows[("optimum", "events")]["auc"] + 0.05
    assert len(results["targets"]) == 3
    assert set(results["figures"]) == {"roc_events.png", "roc_ensembles.png", "log_ratio.png"}
    for name in results["figures"]:
        _check_png(out / name)


def test_quick_lhco_npz(tmp_path, capsys):
    # Small stand-in for the real file: two shifted 4-D Gaussians, same layout.
    rng = np.random.default_rng(0)

    def events(n):
        y = (rng.random(n) < 0.4).astype(np.int8)
        X = rng.normal(size=(n, 4)).astype(np.float32) + 1.5 * y[:, None]
        return X, y

    (X_train, y_train), (X_val, y_val) = events(600), events(600)
    data = tmp_path / "small.npz"
    np.savez(data, X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val,
             feature_names=np.array(["mj1", "delta_mj", "tau21_j1", "tau21_j2"]))
    out = tmp_path / "lhco"
    main(["reproduce", "lhco", "--data", str(data), "--quick", "--out", str(out), "--threads", "1"])
    assert "f_1->3" in capsys.readouterr().out

    results = _load_results(out)
    assert results["study"] == "lhco"
    assert results["data"]["format"] == "npz"
    assert results["data"]["n_train"] == 600
    models = {row["model"] for row in results["results"]}
    assert models == {"f_1", "f_3->1", "f_1->3", "f_3 dense", "f_3 sorted", "f_3 deepsets",
                      "f_3 logratio_sum"}
    rows = {row["model"]: row for row in results["results"]}
    # Chance is 0.5 with a standard error of about 0.025 here; the data separate at 0.98.
    assert rows["f_1"]["auc"] > 0.6
    assert rows["f_1->3"]["auc"] > rows["f_1"]["auc"]
    assert set(results["figures"]) == {"roc_events.png", "roc_ensembles.png"}
    for name in results["figures"]:
        _check_png(out / name)


def test_quick_lhco_official_h5_layout(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("tables")
    from ensemblelr.lhco import H5_COLUMNS

    # Back-to-back jets at mjj near 3.5 TeV; signal has heavier, two-prong jets.
    rng = np.random.default_rng(1)
    n = 400
    label = (rng.random(n) < 0.4).astype(float)
    frame = {"label": label}
    for jet in (1, 2):
        sign = 1 if jet == 1 else -1
        frame[f"pxj{jet}"] = sign * rng.uniform(1690, 1740, n)
        frame[f"pyj{jet}"] = np.zeros(n)
        frame[f"pzj{jet}"] = np.zeros(n)
        frame[f"mj{jet}"] = rng.uniform(30, 200, n) + 250 * label
        frame[f"tau1j{jet}"] = rng.uniform(0.2, 0.8, n)
        frame[f"tau2j{jet}"] = frame[f"tau1j{jet}"] * rng.uniform(0.5, 0.9, n) * (1 - 0.4 * label)
        frame[f"tau3j{jet}"] = frame[f"tau2j{jet}"] * 0.5
    data = tmp_path / "events_anomalydetection_v2.features.h5"
    pd.DataFrame(frame)[list(H5_COLUMNS)].to_hdf(data, key="df", mode="w")
    out = tmp_path / "lhco_h5"
    main(["reproduce", "lhco", "--data", str(data), "--quick", "--max-epochs", "1", "--out", str(out),
          "--threads", "1", "--quiet"])
    printed = capsys.readouterr().out
    assert "[1/5]" not in printed  # --quiet
    results = _load_results(out)
    assert results["data"]["format"] == "h5"
    assert results["data"]["n_events_read"] == n
    assert results["data"]["n_train"] + results["data"]["n_val"] == results["data"]["n_in_window"]
    assert results["data"]["n_in_window"] > 0.9 * n
    assert results["settings"]["per_instance"]["max_epochs"] == 1
