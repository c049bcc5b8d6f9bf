"""The per-model metric dicts against scikit-learn, torchmetrics and scipy references."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import entropy
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from torchmetrics.functional.classification import multiclass_calibration_error

import w2sg.metrics as metrics
from w2sg.errors import W2SGError
from w2sg.metrics import classification_metrics, probability_metrics, regression_metrics


def test_every_public_name_is_exported() -> None:
    for name in metrics.__all__:
        assert callable(getattr(metrics, name))


@pytest.mark.parametrize(("n", "c"), [(50, 2), (333, 2), (50, 3), (333, 5)])
def test_classification_metrics_match_references(n: int, c: int) -> None:
    rng = np.random.default_rng(n + c)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    proba = rng.dirichlet(np.ones(c), size=n).astype(np.float32).astype(np.float64)
    proba[0] = np.eye(c)[0]  # one row with zeros, which cross-entropy clips
    got = classification_metrics(y, proba)
    assert set(got) == {"accuracy", "auroc", "cross_entropy", "ece", "smooth_ce", "n_clipped"}
    json.dumps(got)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, proba.argmax(axis=1)))
    expected_auroc = (
        roc_auc_score(y, proba[:, 1])
        if c == 2
        else roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert got["auroc"] == pytest.approx(expected_auroc, abs=1e-12)
    clipped = np.clip(proba, 1e-6, 1.0)
    expected_ce = -np.mean(np.log(clipped[np.arange(n), y]))
    assert got["cross_entropy"] == pytest.approx(expected_ce, rel=1e-12)
    expected_ece = multiclass_calibration_error(
        torch.from_numpy(proba), torch.from_numpy(y), num_classes=c, n_bins=15, norm="l1"
    ).item()
    assert got["ece"] == pytest.approx(expected_ece, abs=1e-6)
    assert got["n_clipped"] == c - 1
    residual = np.eye(c)[y] - proba
    # smCE lies between |mean residual| and mean |residual| for every class.
    lower = np.abs(residual.mean(axis=0))
    upper = np.abs(residual).mean(axis=0)
    if c == 2:
        assert lower[1] - 1e-9 <= got["smooth_ce"] <= upper[1] + 1e-9
    else:
        assert lower.mean() - 1e-9 <= got["smooth_ce"] <= upper.mean() + 1e-9


@pytest.mark.parametrize("n", [7, 50, 333])
def test_regression_metrics_match_sklearn(n: int) -> None:
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    pred = y + 0.3 * rng.normal(size=n)
    got = regression_metrics(y, pred)
    assert got["mse"] == pytest.approx(mean_squared_error(y, pred), rel=1e-12)
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-12)
    assert got["mae"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert got["r2"] == pytest.approx(r2_score(y, pred), rel=1e-10)


@pytest.mark.parametrize("n", [7, 50, 333])
def test_probability_metrics_match_references(n: int) -> None:
    rng = np.random.default_rng(3 * n)
    q = rng.uniform(size=n)
    q[0] = 1.0  # a certain truth, which KL clips
    pred = np.clip(q + 0.1 * rng.normal(size=n), 0.01, 0.99)
    proba = np.column_stack([1 - pred, pred])
    got = probability_metrics(q, proba)
    truth = np.column_stack([1 - q, q])
    expected_kl = np.mean(
        [
            entropy(np.clip(t, 1e-6, 1), np.clip(p, 1e-6, 1))
            for t, p in zip(truth, proba, strict=True)
        ]
    )
    assert got["kl"] == pytest.approx(expected_kl, rel=1e-10)
    assert got["accuracy"] == pytest.approx(accuracy_score((q > 0.5).astype(int), pred > 0.5))
    assert got["mse"] == pytest.approx(mean_squared_error(q, pred), rel=1e-12)
    # Top-label ECE with soft truth, bin by bin.
    conf = proba.max(axis=1)
    hit = truth[np.arange(n), proba.argmax(axis=1)]
    bins = np.minimum((conf * 15).astype(int), 15)
    expected_ece = sum(
        abs(np.sum(hit[bins == b] - conf[bins == b])) / n for b in range(16) if np.any(bins == b)
    )
    assert got["ece"] == pytest.approx(expected_ece, abs=1e-12)
    assert abs(np.mean(q - pred)) - 1e-9 <= got["smooth_ce"] <= np.mean(np.abs(q - pred)) + 1e-9
    assert got["n_clipped"] == 0


def test_probability_metrics_validate_inputs() -> None:
    with pytest.raises(W2SGError):
        probability_metrics(np.array([0.2, 1.5]), np.full((2, 2), 0.5))
    with pytest.raises(W2SGError):
        probability_metrics(np.array([0.2, 0.5]), np.full((2, 3), 1 / 3))
