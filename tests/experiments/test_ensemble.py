"""Several weak supervisors combined into one set of weak labels (``w2sg.experiments.ensemble``)."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.data.splits import content_ids
from w2sg.errors import W2SGError
from w2sg.experiments.ensemble import (
    agreement_weights,
    labelled_weights,
    metric_weights,
    run_ensemble,
    soft_vote,
    vote,
)
from w2sg.pipeline import run_pipeline


def _onehot(classes: np.ndarray, c: int = 2) -> np.ndarray:
    return np.eye(c)[classes]


def test_metric_weights_are_a_softmax() -> None:
    ops = np.array([0.9, 0.7, 0.95])
    np.testing.assert_allclose(metric_weights(ops, 0.05), softmax(-ops / 0.05), rtol=1e-12)
    with pytest.raises(W2SGError, match="temperature"):
        metric_weights(ops, 0.0)


def test_agreement_weights_drop_a_random_member() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, size=2000)

    def noisy(acc: float) -> np.ndarray:
        flip = rng.random(2000) > acc
        return _onehot(np.where(flip, rng.integers(0, 3, size=2000), truth), 3)

    # Accuracies are identifiable from agreements with three informative members or more.
    members = [noisy(0.9), noisy(0.8), noisy(0.7), _onehot(rng.integers(0, 3, size=2000), 3)]
    alpha = agreement_weights(members, "classification")
    assert alpha.sum() == pytest.approx(1.0)
    assert alpha[0] > alpha[1] > alpha[2] > alpha[3]
    assert alpha[3] < 0.05  # chance agreement: log((C − 1)a/(1 − a)) ≈ 0
    # accuracy a = 1/C + (1 − 1/C)·acc of the non-flipped part: the weights' ratio matches
    a = 1 / 3 + (2 / 3) * np.array([0.9, 0.8, 0.7])
    ideal = np.log(2 * a / (1 - a))
    np.testing.assert_allclose(alpha[:3] / alpha[:3].sum(), ideal / ideal.sum(), atol=0.03)
    values = [truth + 0.1 * rng.normal(size=2000), truth + 1.0 * rng.normal(size=2000)]
    reg = agreement_weights([*values, truth + 0.2 * rng.normal(size=2000)], "regression")
    assert reg[0] > reg[1]


def test_labelled_weights_minimise_the_loss_on_the_simplex() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, size=300)
    good = np.clip(_onehot(truth) * 0.8 + 0.1 + rng.normal(size=(300, 2)) * 0.05, 0.01, None)
    good /= good.sum(1, keepdims=True)
    bad = softmax(rng.normal(size=(300, 2)), axis=1)
    alpha = labelled_weights([good, bad], truth, "classification")

    def loss(a: float) -> float:
        p = a * good + (1 - a) * bad
        return float(-np.mean(np.log(p[np.arange(300), truth])))

    grid = min(loss(a) for a in np.linspace(0, 1, 2001))
    assert loss(alpha[0]) <= grid + 1e-6
    y = rng.normal(size=200)
    a = labelled_weights([y + 0.1, y - 0.1], y, "regression")
    np.testing.assert_allclose(a, [0.5, 0.5], atol=1e-4)  # the mean cancels the two offsets


def test_votes() -> None:
    members = [
        np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.4, 0.6, 0.0]]),
        np.array([[0.6, 0.4, 0.0], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9]]),
        np.array([[0.1, 0.9, 0.0], [0.3, 0.6, 0.1], [0.45, 0.55, 0.0]]),
    ]
    np.testing.assert_allclose(vote(members, "classification"), [[1, 0, 0], [0, 1, 0], [0, 1, 0]])
    tie = [_onehot(np.array([0])), _onehot(np.array([1]))]
    np.testing.assert_allclose(vote(tie, "classification"), [[0.5, 0.5]])
    mean = np.mean(members, axis=0)
    np.testing.assert_allclose(soft_vote(members), np.eye(3)[mean.argmax(1)])
    np.testing.assert_allclose(
        vote([np.array([1.0, 5.0]), np.array([2.0, 0.0]), np.array([9.0, 1.0])], "regression"),
        [2.0, 1.0],
    )


def _data(n: int = 500, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6))
    y = (z @ np.ones(6) + 0.5 * rng.normal(size=n) > 0).astype(int)
    strong = np.hstack([z, 0.5 * rng.normal(size=(n, 30))])
    weak = [np.hstack([z[:, :r], 0.5 * rng.normal(size=(n, 8))]) for r in (1, 2, 4)]
    return weak, strong, y


def test_identical_members_are_the_single_run() -> None:
    weak, strong, y = _data()
    ids = content_ids(strong, y)
    config = RunConfig(head="softmax", n_bootstrap=50, combine="average", theory=False)
    ens = run_ensemble([weak[2], weak[2]], strong, y, config, ids=ids).to_dict()
    single_config = RunConfig(head="softmax", n_bootstrap=50, theory=False)
    single = run_pipeline(weak[2], strong, y, single_config, ids=ids).to_dict()
    for model in ("weak", "w2s", "ceiling"):
        assert ens[model]["accuracy"] == pytest.approx(single[model]["accuracy"], abs=1e-12)
        assert ens[model]["cross_entropy"] == pytest.approx(single[model]["cross_entropy"], 1e-6)
    assert ens["ensemble"]["weights"] == [0.5, 0.5]


def test_identical_members_with_given_splits_are_the_single_run() -> None:
    """The data's own splits (a split column): members, student and ceiling all use them."""
    weak, strong, y = _data()
    ids = content_ids(strong, y)
    names = np.array(["train"] * 200 + ["test"] * 60 + ["train"] * (len(y) - 260))
    config = RunConfig(head="softmax", n_bootstrap=50, combine="average", theory=False)
    ens = run_ensemble([weak[2], weak[2]], strong, y, config, ids=ids,
                       given_splits=names).to_dict()  # fmt: skip
    single = run_pipeline(weak[2], strong, y, RunConfig(head="softmax", n_bootstrap=50,
                          theory=False), ids=ids, given_splits=list(names)).to_dict()  # fmt: skip
    assert ens["n"] == single["n"] and ens["n"]["test"] == 60
    for model in ("weak", "w2s", "ceiling"):
        assert ens[model]["accuracy"] == pytest.approx(single[model]["accuracy"], abs=1e-12)
        assert ens[model]["cross_entropy"] == pytest.approx(single[model]["cross_entropy"], 1e-6)
    drawn = run_ensemble([weak[2], weak[2]], strong, y, config, ids=ids).to_dict()
    assert drawn["n"]["test"] != 60  # the drawn splits differ: the given ones were used


@pytest.mark.parametrize(
    "rule,head", list(product(["metric", "learned", "learned_labelled", "vote"], ["ridge"]))
    + [("soft_vote", "softmax")],
)  # fmt: skip
def test_run_ensemble_records_rule_weights_and_theory(rule: str, head: str) -> None:
    weak, strong, y = _data(seed=2)
    config = RunConfig(head=head, n_bootstrap=50, combine=rule, combine_labels=40)
    result = run_ensemble(weak, strong, y, config, names=["a", "b", "c"])
    record = result.to_dict()
    ens = record["ensemble"]
    assert ens["rule"] == rule and ens["members"] == ["a", "b", "c"]
    assert len(ens["member_weak"]) == 3 and len(ens["member_op_norm"]) == 3
    theory = record["theory"]
    assert theory["combine"] == rule
    exact = theory["w2s_minus_ceiling"] - theory["measured_gap"] - theory["cross_term"]
    assert abs(exact) < 1e-9
    if rule in ("vote", "soft_vote"):
        assert ens["weights"] is None and "predicted_gap" not in theory
    else:
        assert sum(ens["weights"]) == pytest.approx(1.0)
        assert min(ens["weights"]) >= 0
        assert theory["op_norm"] > 0 and theory["predicted_gap"] >= 0
    if rule == "learned_labelled":
        assert ens["n_labelled"] == 40 and len(set(ens["labelled_ids"])) == 40
    if rule == "metric":  # the member with the smallest op norm gets the largest weight
        assert int(np.argmax(ens["weights"])) == int(np.argmin(ens["member_op_norm"]))
    assert record["config"]["combine"] == rule
    assert any("combined by" in note for note in record["notes"])


def test_ensemble_errors() -> None:
    weak, strong, y = _data()
    with pytest.raises(W2SGError, match="at least 2"):
        run_ensemble(weak[:1], strong, y, RunConfig(combine="average"))
    with pytest.raises(W2SGError, match="soft_vote"):
        run_ensemble(weak, strong, y.astype(float), RunConfig(task="regression", head="ridge",
                                                              combine="soft_vote"))  # fmt: skip
    with pytest.raises(W2SGError, match="combine rule"):
        RunConfig(combine="median").validate()


def test_cli_several_weak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weak, strong, y = _data(n=300)
    paths = []
    for i, w in enumerate(weak):
        paths.append(str(tmp_path / f"w{i}.npy"))
        np.save(paths[-1], w)
    np.save(tmp_path / "s.npy", strong)
    np.save(tmp_path / "y.npy", y)
    base = ["run", "--strong", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "y.npy"),
            "--head", "ridge", "--bootstrap", "20"]  # fmt: skip
    assert main([*base, "--weak", *paths, "--combine", "vote", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["ensemble"]["rule"] == "vote"
    assert [x["path"] for x in record["provenance"]["weak_inputs"]] == paths
    assert main([*base, "--weak", *paths]) == 0
    assert "combined by average" in capsys.readouterr().out
    assert main([*base, "--weak", paths[0], "--combine", "metric"]) == 2
    assert "several weak models" in capsys.readouterr().err


def test_api_several_weak_and_shared_outputs(tmp_path: Path) -> None:
    import w2sg
    from w2sg.experiments.ensemble import member_outputs

    weak, strong, y = _data(n=300, seed=4)
    paths = []
    for i, w in enumerate(weak):
        paths.append(str(tmp_path / f"w{i}.npy"))
        np.save(paths[-1], w)
    result = w2sg.run(weak=paths, strong=strong, labels=y, combine="learned", head="ridge",
                      bootstrap=20)  # fmt: skip
    assert result.record["ensemble"]["members"] == paths
    config = RunConfig(head="ridge", n_bootstrap=20, combine="learned")
    ids = content_ids(*weak, strong, y)
    shared = run_ensemble(weak, strong, y, config, ids=ids, outputs=member_outputs(weak, y, config,
                          ids)).to_dict()  # fmt: skip
    assert shared["w2s"] == result.record["w2s"]
    assert shared["ensemble"]["weights"] == result.record["ensemble"]["weights"]
