"""Accuracy, AUROC and cross-entropy against scikit-learn and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from w2sg.errors import W2SGError
from w2sg.metrics import accuracy, auroc, cross_entropy

SHAPES = [(n, c) for n in (7, 50, 333) for c in (2, 3, 5)]
SEEDS = (0, 1, 2)


def _sample(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with every class present, and Dirichlet probabilities bounded away from 0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    rng.shuffle(y)
    proba = 0.9 * rng.dirichlet(np.ones(c), size=n) + 0.1 / c
    return y, proba


def _tied_sample(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that take only a few distinct values, so scores tie across examples."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    logits = rng.integers(0, 3, size=(n, c)).astype(float)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_accuracy_matches_sklearn(n: int, c: int, seed: int) -> None:
    y, proba = _sample(n, c, seed)
    assert accuracy(y, proba) == pytest.approx(accuracy_score(y, proba.argmax(axis=1)), abs=1e-15)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_accuracy_hardens_soft_targets(n: int, c: int) -> None:
    y, proba = _sample(n, c, 3)
    _, soft = _sample(n, c, 4)
    expected = accuracy_score(soft.argmax(axis=1), proba.argmax(axis=1))
    assert accuracy(soft, proba) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_auroc_matches_sklearn(n: int, c: int, seed: int) -> None:
    y, proba = _sample(n, c, seed)
    if c == 2:
        expected = roc_auc_score(y, proba[:, 1])
    else:
        expected = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert auroc(y, proba) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_auroc_ties_match_sklearn(n: int, c: int, seed: int) -> None:
    y, proba = _tied_sample(n, c, seed)
    if c == 2:
        expected = roc_auc_score(y, proba[:, 1])
    else:
        expected = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    assert auroc(y, proba) == pytest.approx(expected, abs=1e-12)


def test_auroc_brute_force_pairs_with_ties() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=40)
    score = rng.integers(0, 4, size=40) / 4.0
    pos, neg = score[y == 1], score[y == 0]
    pairs = [(a > b) + 0.5 * (a == b) for a in pos for b in neg]
    proba = np.column_stack([1 - score, score])
    assert auroc(y, proba) == pytest.approx(np.mean(pairs), abs=1e-12)


def test_auroc_is_nan_when_a_class_is_absent() -> None:
    rng = np.random.default_rng(0)
    binary = rng.dirichlet(np.ones(2), size=10)
    assert math.isnan(auroc(np.zeros(10, dtype=int), binary))
    multi = rng.dirichlet(np.ones(3), size=10)
    assert math.isnan(auroc(np.array([0, 1] * 5), multi))


@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_matches_sklearn_log_loss(n: int, c: int, seed: int) -> None:
    y, proba = _sample(n, c, seed)
    expected = log_loss(y, proba, labels=list(range(c)))
    assert cross_entropy(y, proba) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_cross_entropy_soft_targets_match_torch(n: int, c: int) -> None:
    _, proba = _sample(n, c, 7)
    _, soft = _sample(n, c, 8)
    # With rows of proba summing to 1, log_softmax(log p) = log p: torch's soft-target CE.
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(np.log(proba)), torch.from_numpy(soft)
    ).item()
    assert cross_entropy(soft, proba) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("eps", [1e-6, 1e-3])
def test_cross_entropy_clips_before_log(eps: float) -> None:
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), size=30)
    proba[::3] = np.array([1.0, 0.0, 0.0])
    y = rng.integers(0, 3, size=30)
    expected = -sum(math.log(max(proba[i, y[i]], eps)) for i in range(30)) / 30
    assert cross_entropy(y, proba, eps=eps) == pytest.approx(expected, rel=1e-12)
    assert math.isfinite(cross_entropy(y, proba, eps=eps))


def test_labels_may_be_integral_floats() -> None:
    y, proba = _sample(20, 3, 0)
    assert accuracy(y.astype(float), proba) == accuracy(y, proba)


@pytest.mark.parametrize(
    ("y", "proba"),
    [
        (np.array([0, 1, 2]), np.full((3, 2), 0.5)),  # label out of range
        (np.array([0, 1]), np.full((3, 2), 0.5)),  # length mismatch
        (np.array([0, 1, 0]), np.full(3, 0.5)),  # 1-D probabilities
        (np.array([0.5, 1, 0]), np.full((3, 2), 0.5)),  # non-integer labels
        (np.array([0, 1, 0]), np.array([[0.5, 0.5], [np.nan, 1], [1, 0]])),  # NaN
        (np.array(["a", "b", "a"]), np.full((3, 2), 0.5)),  # strings
    ],
)
def test_bad_inputs_raise_w2sg_error(y: np.ndarray, proba: np.ndarray) -> None:
    for fn in (accuracy, auroc, cross_entropy):
        with pytest.raises(W2SGError):
            fn(y, proba)
