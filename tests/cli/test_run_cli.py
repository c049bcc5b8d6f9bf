"""``w2sg run``: JSON output, run folder, and one clear line for each kind of bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from w2sg.cli import main


@pytest.fixture()
def arrays(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 3))
    np.save(tmp_path / "W.npy", np.column_stack([z[:, :1], rng.normal(size=(300, 3))]))
    np.save(tmp_path / "S.npy", np.column_stack([z, 0.2 * rng.normal(size=(300, 10))]))
    np.save(tmp_path / "y.npy", (z @ [1.0, 0.5, -0.7] > 0).astype(int))
    np.save(tmp_path / "yr.npy", z @ [1.0, 0.5, -0.7])
    return tmp_path


def test_run_json_has_the_documented_shape(arrays, capsys):
    out = arrays / "run"
    code = main(
        [
            "run",
            "--weak",
            str(arrays / "W.npy"),
            "--strong",
            str(arrays / "S.npy"),
            "--labels",
            str(arrays / "y.npy"),
            "--out",
            str(out),
            "--json",
            "--bootstrap",
            "200",
        ]
    )
    assert code == 0
    rec = json.loads(capsys.readouterr().out)
    for m in ("weak", "w2s", "ceiling"):
        assert {"accuracy", "ece"} <= set(rec[m])
    assert set(rec["pgr"]) >= {"value", "ci_low", "ci_high"}
    assert rec["n"] == {"weak_train": 120, "w2s_train": 120, "test": 60}
    expected = (rec["w2s"]["accuracy"] - rec["weak"]["accuracy"]) / (
        rec["ceiling"]["accuracy"] - rec["weak"]["accuracy"]
    )
    assert rec["pgr"]["value"] == pytest.approx(expected)
    assert {"config.json", "metrics.json", "predictions.npz"} <= {p.name for p in out.iterdir()}
    assert "theory" in rec and "bounds" in rec
    assert sum(rec["reliability"]["w2s"]["count"]) == 60


def test_run_regression_json_reports_mse(arrays, capsys):
    code = main(
        [
            "run",
            "--weak",
            str(arrays / "W.npy"),
            "--strong",
            str(arrays / "S.npy"),
            "--labels",
            str(arrays / "yr.npy"),
            "--task",
            "regression",
            "--head",
            "ridge",
            "--json",
        ]
    )
    assert code == 0
    rec = json.loads(capsys.readouterr().out)
    assert all("mse" in rec[m] for m in ("weak", "w2s", "ceiling"))


def _bad(tmp, name, arr):
    np.save(tmp / name, arr)
    return str(tmp / name)


@pytest.mark.parametrize(
    "case,pattern",
    [
        ("nan", "NaN or inf"),
        ("rows", "rows"),
        ("missing", "file not found"),
        ("float_labels", "integer class labels"),
        ("too_small", "split"),
        ("loss", "unknown loss"),
        ("step_loss", "full-batch L-BFGS has no steps: add --optimizer adam"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(arrays, capsys, case, pattern):
    W, S, y = str(arrays / "W.npy"), str(arrays / "S.npy"), str(arrays / "y.npy")
    extra: list[str] = []
    if case == "nan":
        w = np.load(W)
        w[3, 1] = np.nan
        W = _bad(arrays, "Wnan.npy", w)
    elif case == "rows":
        S = _bad(arrays, "Sshort.npy", np.load(S)[:-5])
    elif case == "missing":
        W = str(arrays / "absent.npy")
    elif case == "float_labels":
        y = str(arrays / "yr.npy")
    elif case == "too_small":
        W = _bad(arrays, "Ws.npy", np.load(W)[:4])
        S = _bad(arrays, "Ss.npy", np.load(S)[:4])
        y = _bad(arrays, "ys.npy", np.array([0, 1, 0, 1]))
    elif case == "loss":
        extra = ["--loss", "bogus"]
    elif case == "step_loss":
        extra = ["--loss", "logconf_eai"]
    code = main(["run", "--weak", W, "--strong", S, "--labels", y, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("w2sg: error: ")
    assert pattern in err
    assert len(err.strip().splitlines()) == 1


def test_real_process_prints_no_traceback(arrays):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "w2sg",
            "run",
            "--weak",
            str(arrays / "missing.npy"),
            "--strong",
            str(arrays / "S.npy"),
            "--labels",
            str(arrays / "y.npy"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"w2sg: error: --weak: file not found: {arrays / 'missing.npy'}"
