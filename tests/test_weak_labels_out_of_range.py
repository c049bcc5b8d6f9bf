"""The ``weak_labels_out_of_range`` flag end to end: a single weak model whose ridge head
extrapolates on a few D̂ rows, a labeller through the CLI, and ensembles under every regression
combine rule. Counts against a row-by-row count of the labels the student was given."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.experiments.ensemble import run_ensemble
from w2sg.pipeline import run_pipeline

N_TRAIN, N_HAT, N_TEST = 150, 150, 100
SPLITS = ["weak_train"] * N_TRAIN + ["w2s_train"] * N_HAT + ["test"] * N_TEST
FAR_ROWS = np.array([N_TRAIN + 3, N_TRAIN + 40, N_TRAIN + 41, N_TRAIN + 120])  # rows of D̂


def _brute(labels: np.ndarray, y_train: np.ndarray, k: float = 3.0) -> int:
    """Labels beyond [min − k·IQR, max + k·IQR] of the targets, one by one (IQR: numpy's)."""
    q25, q75 = np.percentile(y_train, [25, 75])
    lo, hi, iqr = float(min(y_train)), float(max(y_train)), float(q75 - q25)
    return sum(1 for v in labels if not math.isfinite(v) or v < lo - k * iqr or v > hi + k * iqr)


def _data(far: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = z₁ + z₂ + ε; weak = [z₁, ε] (its ridge head puts weight ≈ 1 on ε); with ``far`` the
    ε column is 40 × the targets' sd on four D̂ rows, so the weak labels there are far out."""
    n = N_TRAIN + N_HAT + N_TEST
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    eps = 0.5 * rng.normal(size=n)
    y = z[:, 0] + z[:, 1] + eps
    strong = np.column_stack([z, 0.1 * rng.normal(size=(n, 4))])
    e = eps.copy()
    if far:
        e[FAR_ROWS] = 40.0 * y.std() * np.array([1, -1, 1, 1])
    return np.column_stack([z[:, 0], e]), strong, y


CONFIG = RunConfig(task="regression", head="ridge", n_bootstrap=30, theory=False)


@pytest.mark.parametrize("far", [True, False])
def test_single_weak_model(far: bool) -> None:
    weak, strong, y = _data(far)
    res = run_pipeline(weak, strong, y, CONFIG, given_splits=SPLITS)
    rec = res.to_dict()
    weak_hat = res.predictions["weak"]["w2s_train"]
    count = _brute(weak_hat, y[res.splits["weak_train"]])
    assert rec["weak_label_range"]["n_out_of_range"] == count
    assert rec["weak_label_range"]["n"] == N_HAT
    codes = [f["code"] for f in rec["flags"]]
    if far:
        assert count == len(FAR_ROWS)
        flag = next(f for f in rec["flags"] if f["code"] == "weak_labels_out_of_range")
        assert flag["reason"].startswith(f"{count} of {N_HAT} weak labels on w2s_train")
    else:
        assert count == 0 and "weak_labels_out_of_range" not in codes


def test_labeller_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, strong, y = _data(far=False, seed=1)
    labeller = y + 0.3 * np.random.default_rng(1).normal(size=len(y))
    labeller[::20] = 1e6  # 20 rows; the drawn splits put some of them in D̂
    np.save(tmp_path / "P.npy", labeller)
    np.save(tmp_path / "S.npy", strong)
    np.save(tmp_path / "y.npy", y)
    args = ["run", "--weak-predictions", str(tmp_path / "P.npy"), "--strong",
            str(tmp_path / "S.npy"), "--labels", str(tmp_path / "y.npy"), "--task", "regression",
            "--head", "ridge", "--bootstrap", "20"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert 1 <= rec["weak_label_range"]["n_out_of_range"] <= 20
    assert "weak_labels_out_of_range" in [f["code"] for f in rec["flags"]]
    assert main(args) == 0
    assert "weak_labels_out_of_range:" in capsys.readouterr().out


@pytest.mark.parametrize("rule", ["average", "metric", "learned", "learned_labelled", "vote"])
def test_every_combine_rule_checks_the_labels_the_student_got(rule: str) -> None:
    far_weak, strong, y = _data(far=True, seed=2)
    near_weak, _, _ = _data(far=False, seed=2)
    rng = np.random.default_rng(2)
    other = np.column_stack([near_weak[:, 0], rng.normal(size=len(y))])
    members = [far_weak, near_weak, other]
    config = RunConfig(task="regression", head="ridge", n_bootstrap=30, theory=False,
                       combine=rule, combine_labels=40)  # fmt: skip
    res = run_ensemble(members, strong, y, config, given_splits=SPLITS, op_norms=[0.5, 0.5, 0.9])
    rec = res.to_dict()
    tr = res.splits["weak_train"]
    combined = res.predictions["weak"]["w2s_train"]
    count = _brute(combined, y[tr])
    assert rec["weak_label_range"]["n_out_of_range"] == count
    assert ("weak_labels_out_of_range" in [f["code"] for f in rec["flags"]]) == (count > 0)
    assert rec["ensemble"]["member_out_of_range"] == [len(FAR_ROWS), 0, 0]
    if rule in ("average", "metric"):  # a third (or more) of 40 sd: still far out
        assert count == len(FAR_ROWS)
    if rule == "vote":  # the median of three ignores the one member that extrapolates
        assert count == 0
