"""The three-model pipeline, checked against models fitted independently with scikit-learn."""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_squared_error

from w2sg.config import RunConfig
from w2sg.pipeline import run_pipeline


def _task(n=600, d_w=5, d_s=20, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    weak = np.column_stack([z[:, :2], rng.normal(size=(n, d_w - 2))])
    strong = np.column_stack([z, 0.3 * rng.normal(size=(n, d_s - 4))])
    score = z @ rng.normal(size=(4, classes))
    y = score.argmax(axis=1) if classes > 2 else (score[:, 0] > 0).astype(int)
    return weak, strong, y, z


def test_regression_ridge_matches_independent_sklearn_fits():
    weak, strong, _, z = _task()
    y = z @ np.array([1.0, -0.5, 0.3, 0.8]) + 0.1 * np.random.default_rng(1).normal(size=len(z))
    cfg = RunConfig(task="regression", head="ridge", weak_ridge=0.1, strong_ridge=0.05)
    res = run_pipeline(weak, strong, y, cfg)
    tr, hat, te = (res.splits[k] for k in ("weak_train", "w2s_train", "test"))
    n_tr, n_hat = len(tr), len(hat)
    # Our objective (1/n)||Hθ−y||² + β||θ||² is sklearn's ||Hθ−y||² + (nβ)||θ||².
    weak_sk = Ridge(alpha=n_tr * 0.1).fit(weak[tr], y[tr])
    labels_hat = weak_sk.predict(weak[hat])
    w2s_sk = Ridge(alpha=n_hat * 0.05).fit(strong[hat], labels_hat)
    ceil_sk = Ridge(alpha=n_hat * 0.05).fit(strong[hat], y[hat])
    np.testing.assert_allclose(
        res.predictions["weak"]["test"], weak_sk.predict(weak[te]), atol=1e-8
    )
    np.testing.assert_allclose(
        res.predictions["w2s"]["test"], w2s_sk.predict(strong[te]), atol=1e-8
    )
    np.testing.assert_allclose(
        res.predictions["ceiling"]["test"], ceil_sk.predict(strong[te]), atol=1e-8
    )
    mse = {
        m: mean_squared_error(y[te], res.predictions[m]["test"]) for m in ("weak", "w2s", "ceiling")
    }
    for m, v in mse.items():
        assert res.metrics[m]["mse"] == pytest.approx(v, rel=1e-10)
    expected_pgr = (mse["weak"] - mse["w2s"]) / (mse["weak"] - mse["ceiling"])
    assert res.metrics["pgr"]["value"] == pytest.approx(expected_pgr, rel=1e-10)
    assert res.metrics["pgr"]["ci_low"] <= expected_pgr <= res.metrics["pgr"]["ci_high"]


@pytest.mark.parametrize("classes", [2, 4])
def test_classification_softmax_weak_and_ceiling_match_sklearn(classes):
    weak, strong, y, _ = _task(classes=classes, seed=classes)
    cfg = RunConfig(task="classification", head="softmax", weak_ridge=1e-2, strong_ridge=1e-2)
    res = run_pipeline(weak, strong, y, cfg)
    tr, hat, te = (res.splits[k] for k in ("weak_train", "w2s_train", "test"))
    # Softmax with penalty (l2/2)||W||² on a mean loss == multinomial LR with C = 1/(n·l2);
    # for two classes the symmetric W penalty halves: C = 2/(n·l2) on w = W1 − W0.
    scale = 2.0 if classes == 2 else 1.0
    for model, X, idx in (("weak", weak, tr), ("ceiling", strong, hat)):
        sk = LogisticRegression(C=scale / (len(idx) * 1e-2), tol=1e-10, max_iter=10000)
        sk.fit(X[idx], y[idx])
        np.testing.assert_allclose(
            res.predictions[model]["test"], sk.predict_proba(X[te]), atol=1e-4
        )
    for m in ("weak", "w2s", "ceiling"):
        acc = accuracy_score(y[te], res.predictions[m]["test"].argmax(axis=1))
        assert res.metrics[m]["accuracy"] == pytest.approx(acc)
    # The student learned from the weak labels: it agrees with them more than the ceiling does.
    vs = res.metrics["vs_weak"]["w2s_train"]
    assert vs["w2s"]["agreement"] >= vs["ceiling"]["agreement"]
    assert res.theory is not None and res.bounds is not None


def test_same_config_and_seed_give_identical_numbers_and_other_seed_differs():
    weak, strong, y, _ = _task(seed=5)
    a = run_pipeline(weak, strong, y, RunConfig(seed=3)).to_dict()
    b = run_pipeline(weak, strong, y, RunConfig(seed=3)).to_dict()
    c = run_pipeline(weak, strong, y, RunConfig(seed=4)).to_dict()
    strip = lambda r: {k: v for k, v in r.items() if k != "provenance"}  # noqa: E731
    assert json.dumps(strip(a), sort_keys=True) == json.dumps(strip(b), sort_keys=True)
    assert a["w2s"] != c["w2s"]


def test_labeller_predictions_replace_the_weak_model():
    weak, strong, y, _ = _task(seed=6)
    rng = np.random.default_rng(0)
    p = np.clip(0.5 + 0.35 * (2 * y - 1) + 0.3 * rng.normal(size=len(y)), 0.01, 0.99)
    res = run_pipeline(None, strong, y, RunConfig(), weak_predictions=p)
    te = res.splits["test"]
    np.testing.assert_allclose(res.predictions["weak"]["test"][:, 1], p[te])
    assert res.metrics["weak"]["accuracy"] == pytest.approx(accuracy_score(y[te], p[te] > 0.5))
    assert res.theory is None and any("labeller" in n for n in res.notes)


def test_probability_task_scores_kl_from_truth():
    weak, strong, _, z = _task(seed=7)
    p_true = 1 / (1 + np.exp(-(z[:, 0] + 0.5 * z[:, 2])))
    res = run_pipeline(weak, strong, p_true, RunConfig(task="probability"))
    te = res.splits["test"]
    q = np.clip(res.predictions["w2s"]["test"][:, 1], 1e-6, 1 - 1e-6)
    t = p_true[te]
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(t > 0, t * np.log(t / q), 0) + np.where(
            t < 1, (1 - t) * np.log((1 - t) / (1 - q)), 0
        )
    assert res.metrics["w2s"]["kl"] == pytest.approx(kl.mean(), rel=1e-5)
    assert res.metrics["pgr"]["metric"] == "kl"


def test_save_writes_atomic_files_that_reload_without_pickle(tmp_path):
    weak, strong, y, _ = _task(seed=8)
    res = run_pipeline(weak, strong, y, RunConfig())
    out = res.save(tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "metrics.json",
        "predictions.npz",
    ]
    with np.load(out / "predictions.npz", allow_pickle=False) as z:
        keys = set(z.keys())
        for m in ("weak", "w2s", "ceiling"):
            for s in ("w2s_train", "test"):
                assert f"{m}_{s}_proba" in keys
        acc = accuracy_score(z["test_labels"], z["w2s_test_proba"].argmax(axis=1))
    assert json.loads((out / "metrics.json").read_text())["w2s"]["accuracy"] == pytest.approx(acc)
    cfg = json.loads((out / "config.json").read_text())
    assert RunConfig.from_dict(cfg["config"]) == res.config
    assert "numpy" in cfg["provenance"]["versions"]


def test_reliability_bins_describe_the_test_predictions():
    """Classification runs keep the bins of a reliability diagram (poolable across a sweep);
    their ECE is the run's ECE with 10 bins, checked against torchmetrics in the metric tests."""
    from w2sg.metrics import ece

    weak, strong, y, z = _task(classes=3, seed=5)
    res = run_pipeline(weak, strong, y, RunConfig(task="classification", head="softmax"))
    te = res.splits["test"]
    for m in ("weak", "w2s", "ceiling"):
        bins = res.metrics["reliability"][m]
        assert sum(bins["count"]) == len(te) and len(bins["count"]) == 11
        gap = np.abs(np.subtract(bins["correct"], bins["confidence"])).sum() / len(te)
        assert gap == pytest.approx(ece(y[te], res.predictions[m]["test"], 10), abs=1e-12)
    assert json.loads(json.dumps(res.to_dict()))["reliability"] == res.metrics["reliability"]
    reg = run_pipeline(weak, strong, z[:, 0], RunConfig(task="regression", head="ridge"))
    assert "reliability" not in reg.metrics
