"""Weak-label cleaning against scikit-learn and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from w2sg.errors import W2SGError
from w2sg.heads.relabel import (
    CLEAN_METHODS,
    clean_labels,
    default_keep,
    disagreement,
    drop_most_disagreeing,
    keep_most_confident,
    knn_average,
    probe_predict,
)


def _data(n: int = 120, d: int = 5, n_classes: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n, d))
    soft = rng.dirichlet(np.ones(n_classes), size=n)
    return H, soft


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("k", [1, 5, 20])
def test_knn_hard_labels_match_sklearn_classifier(n_classes: int, k: int) -> None:
    H, soft = _data(n=700, n_classes=n_classes, seed=k)  # > one 512-row block
    hard = soft.argmax(axis=1)
    onehot = np.eye(n_classes)[hard]
    ref = KNeighborsClassifier(n_neighbors=k, algorithm="brute").fit(H, hard).predict_proba(H)
    np.testing.assert_allclose(knn_average(H, onehot, k), ref, atol=1e-12)


def test_knn_soft_labels_match_sklearn_regressor_and_include_self() -> None:
    H, soft = _data(n=90, n_classes=3, seed=4)
    ref = KNeighborsRegressor(n_neighbors=7, algorithm="brute").fit(H, soft).predict(H)
    np.testing.assert_allclose(knn_average(H, soft, 7), ref, atol=1e-12)
    np.testing.assert_allclose(knn_average(H, soft, 1), soft)  # k = 1: each row's own label


def test_knn_distance_ties_go_to_the_lower_index() -> None:
    # Rows 1 and 2 are equidistant from row 0 (and duplicates of each other).
    H = np.array([[0.0], [1.0], [-1.0], [5.0]])
    t = np.eye(2)[[0, 1, 0, 0]]
    out = knn_average(H, t, 2)
    np.testing.assert_allclose(out[0], (t[0] + t[1]) / 2)  # row 1 before row 2


@pytest.mark.parametrize("n_classes", [2, 3])
def test_probe_matches_sklearn_logistic_regression(n_classes: int) -> None:
    H, soft = _data(n=200, n_classes=n_classes, seed=7)
    hard = soft.argmax(axis=1)
    l2 = 1e-2
    ours = probe_predict(H, np.eye(n_classes)[hard], l2=l2)
    # EleutherAI's objective: mean log-loss + l2·‖w‖² (binary), i.e. sklearn's C = 1/(2·n·l2);
    # for C ≥ 3 with a full W and penalty l2·‖W‖_F², C = 1/(2·n·l2) as well.
    C = 1.0 / (2 * len(H) * l2)
    ref = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(H, hard).predict_proba(H)
    np.testing.assert_allclose(ours, ref, atol=2e-5)


def test_disagreement_and_selection_rules() -> None:
    new = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    old = np.array([[0.7, 0.3], [0.5, 0.5], [0.4, 0.6], [0.6, 0.4]])
    d = disagreement(new, old)
    np.testing.assert_allclose(d, np.abs(new[:, 1] - old[:, 1]))
    # ⌊0.5·4⌋ = 2 dropped: the two largest (rows 0 and 2 tie at 0.5: both dropped).
    np.testing.assert_array_equal(drop_most_disagreeing(d, 0.5), [1, 3])
    # A tie at the cut: the lower index is dropped first.
    np.testing.assert_array_equal(drop_most_disagreeing(np.array([1.0, 1.0, 0.0]), 0.34), [1, 2])
    np.testing.assert_array_equal(drop_most_disagreeing(d, 0.0), [0, 1, 2, 3])
    t = np.array([[0.6, 0.4], [0.1, 0.9], [0.9, 0.1], [0.5, 0.5], [0.3, 0.7]])
    # Keep ⌊0.6·5⌋ = 3 most confident: rows 1 and 2 (0.9), then row 4 (0.7).
    np.testing.assert_array_equal(keep_most_confident(t, 0.6), [1, 2, 4])
    with pytest.raises(W2SGError, match="fraction"):
        keep_most_confident(t, 1.5)


@pytest.mark.parametrize("method", CLEAN_METHODS)
def test_clean_labels_notes_agree_with_brute_force(method: str) -> None:
    H, soft = _data(n=150, seed=11)
    out = clean_labels(method, H, soft, k=10, l2=1e-2)
    n = len(soft)
    keep = default_keep(method)
    assert out.note["method"] == method and out.note["n_before"] == n
    assert out.note["n_after"] == len(out.rows) == len(out.targets)
    assert out.note["dropped"] == n - len(out.rows)
    if method.endswith("_filter"):
        assert len(out.rows) == n - int(np.floor((1 - keep) * n + 1e-9))  # ⌊c·n⌋ dropped
    if method == "confidence":
        assert len(out.rows) == int(np.floor(keep * n + 1e-9))  # ⌊q·n⌋ kept
    if method.endswith("_filter") or method == "confidence":
        np.testing.assert_array_equal(out.targets, soft[out.rows])  # labels kept as they were
        assert out.note["changed"] == 0
    if method == "knn_filter":  # the dropped rows are those farthest from their neighbours
        dis = np.abs(knn_average(H, soft, 10)[:, 1] - soft[:, 1])
        dropped = np.setdiff1d(np.arange(n), out.rows)
        assert dis[dropped].min() >= dis[out.rows].max()
    if method == "confidence":
        conf = soft.max(axis=1)
        dropped = np.setdiff1d(np.arange(n), out.rows)
        assert conf[out.rows].min() >= conf[dropped].max()
    if method.endswith("_relabel"):
        np.testing.assert_array_equal(out.rows, np.arange(n))
        changed = int((out.targets.argmax(axis=1) != soft.argmax(axis=1)).sum())
        assert out.note["changed"] == changed > 0
    if method == "none":
        np.testing.assert_array_equal(out.targets, soft)


def test_clean_labels_refusals() -> None:
    H, soft = _data(n=10)
    with pytest.raises(W2SGError, match="unknown cleaning"):
        clean_labels("magic", H, soft)
    with pytest.raises(W2SGError, match="at least 2"):
        clean_labels("confidence", H, soft, keep=0.1)
    with pytest.raises(W2SGError, match="k <= n"):
        clean_labels("knn_relabel", H, soft, k=11)
