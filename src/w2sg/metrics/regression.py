"""Regression metrics on float ``(n,)`` targets and predictions: MSE, RMSE, MAE and R²."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from w2sg.metrics.classification import FloatArray, _check_same_length, _check_vector


def _check_pair(y: ArrayLike, pred: ArrayLike) -> tuple[FloatArray, FloatArray]:
    t = _check_vector(y, "y")
    f = _check_vector(pred, "pred")
    _check_same_length(t.shape[0], f.shape[0], "y", "pred")
    return t, f


def mse(y: ArrayLike, pred: ArrayLike) -> float:
    """Mean squared error, MSE = (1/n) Σ_i (y_i − f_i)²."""
    t, f = _check_pair(y, pred)
    return float(np.mean((t - f) ** 2))


def rmse(y: ArrayLike, pred: ArrayLike) -> float:
    """Root mean squared error, RMSE = sqrt((1/n) Σ_i (y_i − f_i)²)."""
    return float(np.sqrt(mse(y, pred)))


def mae(y: ArrayLike, pred: ArrayLike) -> float:
    """Mean absolute error, MAE = (1/n) Σ_i |y_i − f_i|."""
    t, f = _check_pair(y, pred)
    return float(np.mean(np.abs(t - f)))


def r2(y: ArrayLike, pred: ArrayLike, force_finite: bool = True) -> float:
    """Coefficient of determination, as scikit-learn's ``r2_score``.

    R² = 1 − Σ_i (y_i − f_i)² / Σ_i (y_i − ȳ)².

    When y is constant the ratio is undefined. With ``force_finite=True`` (scikit-learn's default)
    R² is then 1.0 for a perfect prediction and 0.0 otherwise; with ``force_finite=False`` it is NaN
    for a perfect prediction and −inf otherwise.
    """
    t, f = _check_pair(y, pred)
    residual = float(np.sum((t - f) ** 2))
    total = float(np.sum((t - np.mean(t)) ** 2))
    if total == 0.0:
        if force_finite:
            return 1.0 if residual == 0.0 else 0.0
        return float("nan") if residual == 0.0 else float("-inf")
    return 1.0 - residual / total
