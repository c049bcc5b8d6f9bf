"""PGR as the field reports it and the flags of degenerate runs, end to end through the pipeline
and the CLI: a labeller that beats the ceiling, a collapsed student, labels the representations
don't carry. References: scikit-learn metrics and dummy models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, roc_auc_score

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.pipeline import run_pipeline


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    weak = np.column_stack([z[:, :1], rng.normal(size=(n, 3))])
    strong = np.column_stack([z, 0.3 * rng.normal(size=(n, 10))])
    y = (z @ [1.0, 0.5, -0.7] + 0.8 * rng.normal(size=n) > 0).astype(int)
    return weak, strong, y


def _codes(record: dict) -> list[str]:
    return [f["code"] for f in record["flags"]]


def test_pgr_on_accuracy_and_auroc_and_the_baseline_match_sklearn() -> None:
    weak, strong, y = _data()
    res = run_pipeline(weak, strong, y, RunConfig(theory=False, n_bootstrap=200))
    rec = res.to_dict()
    te, train = res.splits["test"], np.r_[res.splits["weak_train"], res.splits["w2s_train"]]
    p = {m: res.predictions[m]["test"] for m in ("weak", "w2s", "ceiling")}
    acc = {m: accuracy_score(y[te], v.argmax(axis=1)) for m, v in p.items()}
    auc = {m: roc_auc_score(y[te], v[:, 1]) for m, v in p.items()}
    assert acc["weak"] < acc["ceiling"] and auc["weak"] < auc["ceiling"]
    for key, s in (("pgr", acc), ("pgr_auroc", auc)):
        expected = (s["w2s"] - s["weak"]) / (s["ceiling"] - s["weak"])
        assert rec[key]["value"] == pytest.approx(expected)
        assert rec[key]["ci_low"] <= rec[key]["ci_high"]
        assert rec[key]["gap_se"] > 0 and rec[key]["n_boot_valid"] <= 200
    assert rec["pgr_auroc"]["metric"] == "auroc"
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(train), 1)), y[train])
    majority = accuracy_score(y[te], dummy.predict(np.zeros((len(te), 1))))
    assert rec["baseline"]["accuracy"] == pytest.approx(majority)
    assert rec["baseline"]["auroc"] == pytest.approx(0.5)
    assert rec["flags"] == []
    json.dumps(rec, allow_nan=False)


def test_labeller_that_beats_the_ceiling_has_no_pgr(tmp_path, capsys) -> None:
    weak, strong, y = _data(seed=1)
    rng = np.random.default_rng(1)
    right = rng.random(len(y)) > 0.03  # a labeller right on 97% of rows, confidently
    p1 = np.where(y == 1, 0.9, 0.1)
    p1[~right] = 1.0 - p1[~right]
    np.save(tmp_path / "P.npy", p1)
    np.save(tmp_path / "S.npy", strong)
    np.save(tmp_path / "y.npy", y)
    args = ["run", "--weak-predictions", str(tmp_path / "P.npy"), "--bootstrap", "100"]
    args += ["--strong", str(tmp_path / "S.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main([*args, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["weak"]["accuracy"] > rec["ceiling"]["accuracy"]
    assert rec["pgr"]["value"] is None and rec["pgr"]["ci_low"] is None
    assert "higher than the ceiling" in rec["pgr"]["reason"]
    assert "weak_beats_ceiling" in _codes(rec)
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "PGR (accuracy, test): n/a" in table and "weak_beats_ceiling" in table


def test_student_that_predicts_one_class_is_flagged_collapsed() -> None:
    _, strong, y = _data(seed=2)
    confident_one = np.full(len(y), 0.8)  # a labeller that says "class 1" for every row
    rec = run_pipeline(
        None, strong, y, RunConfig(n_bootstrap=100), weak_predictions=confident_one
    ).to_dict()
    flags = {f["code"]: f for f in rec["flags"]}
    assert "student_collapsed" in flags
    assert "predicts class 1 on" in flags["student_collapsed"]["reason"]


def test_random_labels_put_the_ceiling_at_the_baseline() -> None:
    weak, strong, _ = _data(seed=3)
    y = np.random.default_rng(3).integers(0, 2, size=len(strong))
    rec = run_pipeline(weak, strong, y, RunConfig(theory=False, n_bootstrap=200)).to_dict()
    assert "ceiling_at_baseline" in _codes(rec)
    assert rec["ceiling"]["accuracy"] - rec["baseline"]["accuracy"] < 0.1


def test_regression_and_probability_runs_carry_a_mean_baseline() -> None:
    weak, strong, _ = _data(seed=4)
    t = strong[:, 0] - 0.5 * strong[:, 2]
    res = run_pipeline(weak, strong, t, RunConfig(task="regression", head="ridge", n_bootstrap=50))
    rec = res.to_dict()
    te = res.splits["test"]
    train = np.r_[res.splits["weak_train"], res.splits["w2s_train"]]
    assert rec["baseline"]["mse"] == pytest.approx(np.mean((t[te] - t[train].mean()) ** 2))
    assert "pgr_auroc" not in rec and isinstance(rec["flags"], list)
    q = 1 / (1 + np.exp(-t))
    rec = run_pipeline(weak, strong, q, RunConfig(task="probability", n_bootstrap=50)).to_dict()
    assert rec["pgr"]["metric"] == "kl" and "kl" in rec["baseline"]
