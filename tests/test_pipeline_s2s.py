"""Strong-to-strong rounds and weak-label cleaning in the pipeline, against hand-made chains."""

from __future__ import annotations

import json

import numpy as np
import pytest

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.errors import W2SGError
from w2sg.experiments.sweep import parse_sweep
from w2sg.heads.relabel import knn_average
from w2sg.heads.ridge import RidgeHead
from w2sg.heads.softmax import SoftmaxHead
from w2sg.pipeline import run_pipeline


def _arrays(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    W = np.column_stack([z[:, :1], rng.normal(size=(n, 3))])
    S = np.column_stack([z, 0.3 * rng.normal(size=(n, 8))])
    y = (z @ [1.0, 0.5, -0.7] > 0).astype(int)
    return W, S, y


def test_ridge_rounds_follow_the_hand_made_chain_and_theory_is_exact() -> None:
    W, S, y = _arrays()
    config = RunConfig(head="ridge", weak_ridge=1e-2, strong_ridge=1e-1, s2s_iters=2)
    res = run_pipeline(W, S, y, config)
    rounds = res.metrics["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    tr, hat, te = res.splits["weak_train"], res.splits["w2s_train"], res.splits["test"]
    onehot = np.eye(2)
    weak = RidgeHead(beta=1e-2).fit(W[tr], onehot[y[tr]])
    labels = weak.predict(W[hat])  # raw scores: a ridge student learns from them
    previous = labels
    student = RidgeHead(beta=1e-1).fit(S[hat], labels)
    for r in rounds:
        labels = student.predict(S[hat])
        nxt = RidgeHead(beta=1e-1).fit(S[hat], labels)
        scores = nxt.predict(S[te])
        assert r["test"]["accuracy"] == pytest.approx(np.mean(scores.argmax(axis=1) == y[te]))
        changed = int((labels.argmax(axis=1) != previous.argmax(axis=1)).sum())
        assert r["labels_changed"] == changed
        # The round's theory block has the teacher as its weak head: its w2s_error is this
        # round's student's test error on the ±1 targets, exactly.
        margin = scores[:, 1] - scores[:, 0]
        err = np.mean((margin - (2.0 * y[te] - 1.0)) ** 2)
        assert r["theory"]["w2s_error"] == pytest.approx(err, rel=1e-9)
        agree = np.mean(student.predict(S[te]).argmax(axis=1) == scores.argmax(axis=1))
        assert r["vs_teacher"]["test"]["agreement"] == pytest.approx(agree)
        previous, student = labels, nxt
    assert "rounds" in res.to_dict() and "cleaning" not in res.to_dict()


def test_knn_relabel_feeds_the_student() -> None:
    W, S, y = _arrays(seed=1)
    config = RunConfig(clean="knn_relabel", clean_k=7, strong_ridge=1e-2)
    res = run_pipeline(W, S, y, config)
    hat, te = res.splits["w2s_train"], res.splits["test"]
    weak_hat = res.predictions["weak"]["w2s_train"]
    cleaned = knn_average(S[hat], weak_hat, 7)
    ref = SoftmaxHead(l2=1e-2, seed=config.seed + 1).fit(S[hat], cleaned).predict_proba(S[te])
    np.testing.assert_allclose(res.predictions["w2s"]["test"], ref, atol=1e-10)
    note = res.metrics["cleaning"]
    assert note["changed"] == int((cleaned.argmax(1) != weak_hat.argmax(1)).sum())
    assert note["dropped"] == 0 and note["k"] == 7
    assert any("knn_relabel" in n for n in res.notes)


@pytest.mark.parametrize("head", ["softmax", "ridge"])
def test_filters_train_the_student_on_the_kept_rows(head: str) -> None:
    W, S, y = _arrays(seed=2)
    res = run_pipeline(W, S, y, RunConfig(head=head, clean="confidence", clean_keep=0.5))
    hat = res.splits["w2s_train"]
    note = res.metrics["cleaning"]
    assert note["n_before"] == len(hat) and note["n_after"] == len(hat) // 2
    assert note["dropped"] == len(hat) - len(hat) // 2
    if head == "ridge":
        assert any("probabilities, not scores" in n for n in res.notes)


def test_config_fields_validate_and_keep_old_hashes() -> None:
    base = RunConfig()
    assert "s2s_iters" not in base.identity() and "clean" not in base.identity()
    assert "s2s_iters" in RunConfig(s2s_iters=1).identity()
    for bad, match in (
        ({"s2s_iters": -1}, "s2s-iters"),
        ({"clean": "nope"}, "unknown cleaning"),
        ({"clean": "knn_relabel", "task": "regression", "head": "ridge"}, "regression"),
        ({"clean_keep": 0.0}, "clean-keep"),
        ({"clean_k": 0}, "clean-k"),
    ):
        with pytest.raises(W2SGError, match=match):
            RunConfig(**bad).validate()


def test_sweep_head_keys() -> None:
    sweep = {
        "name": "t",
        "tasks": [
            {
                "name": "s",
                "dataset": "synthetic",
                "params": {"n": 200, "n_weak": 1, "task": "classification"},
            }
        ],
        "weak": ["weak_1"],
        "strong": ["strong"],
        "heads": ["softmax", {"head": "softmax", "s2s_iters": 2, "clean": "knn_filter"}],
        "seeds": [0],
    }
    specs = parse_sweep(sweep).expand()
    assert len({s.config_hash for s in specs}) == 2
    cleaned = [s for s in specs if s.config.clean == "knn_filter"]
    assert len(cleaned) == 1 and cleaned[0].config.s2s_iters == 2


def test_cli_prints_rounds_and_cleaning(tmp_path, capsys) -> None:
    W, S, y = _arrays()
    for name, arr in (("W", W), ("S", S), ("y", y)):
        np.save(tmp_path / f"{name}.npy", arr)
    args = ["run", "--weak", str(tmp_path / "W.npy"), "--strong", str(tmp_path / "S.npy")]
    args += ["--labels", str(tmp_path / "y.npy"), "--s2s-iters", "1", "--clean", "probe_filter"]
    assert main([*args, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert len(record["rounds"]) == 1 and record["cleaning"]["method"] == "probe_filter"
    assert record["config"]["s2s_iters"] == 1
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "strong-to-strong rounds" in text and "probe_filter" in text
    assert main([*args, "--clean-keep", "2"]) == 2
    assert capsys.readouterr().err.startswith("w2sg: error: --clean-keep")


def test_python_api_takes_the_fields() -> None:
    import w2sg

    W, S, y = _arrays(seed=3)
    res = w2sg.run(W, S, y, s2s_iters=1, clean="probe_relabel", clean_l2=1e-2, no_bounds=True)
    record = res.to_dict()
    assert len(record["rounds"]) == 1 and record["cleaning"]["l2"] == 1e-2
    assert "strong-to-strong rounds" in res.summary()
