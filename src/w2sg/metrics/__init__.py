"""Metrics of THEORY.md section 7: classification, regression, calibration, agreement, PGR.

Every function takes arrays and returns plain Python numbers. Classification labels are int
class indices ``(n,)``; probabilities are ``(n, C)`` (binary: C = 2, column 1 positive);
regression targets and predictions are float ``(n,)``. The ``*_metrics`` functions bundle the
numbers that a report shows for one model on one split, as JSON-able dicts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from w2sg.errors import W2SGError
from w2sg.metrics.agreement import (
    agreement,
    clip_count,
    d_fwd,
    d_rev,
    disagreement,
    mean_kl,
    mean_tv,
    misfit_sq,
)
from w2sg.metrics.calibration import (
    ece,
    reliability_bins,
    smooth_calibration_error,
    smooth_calibration_error_ovr,
)
from w2sg.metrics.classification import (
    _check_labels,
    _check_proba,
    _check_same_length,
    _check_vector,
    accuracy,
    auroc,
    cross_entropy,
)
from w2sg.metrics.flags import (
    Flag,
    baseline_predictions,
    paired_se,
    run_flags,
    weak_label_range,
)
from w2sg.metrics.pgr import (
    MedianPGR,
    PGRResult,
    PGRValue,
    bootstrap_scores,
    median_pgr,
    pgr,
    pgr_bootstrap,
    pgr_interval,
    pgr_of_means,
)
from w2sg.metrics.regression import mae, mse, r2, rmse

__all__ = [
    "Flag",
    "MedianPGR",
    "PGRResult",
    "PGRValue",
    "accuracy",
    "agreement",
    "auroc",
    "baseline_predictions",
    "bootstrap_scores",
    "classification_metrics",
    "clip_count",
    "cross_entropy",
    "d_fwd",
    "d_rev",
    "disagreement",
    "ece",
    "reliability_bins",
    "mae",
    "mean_kl",
    "mean_tv",
    "median_pgr",
    "misfit_sq",
    "mse",
    "pgr",
    "paired_se",
    "pgr_bootstrap",
    "pgr_interval",
    "pgr_of_means",
    "probability_metrics",
    "r2",
    "regression_metrics",
    "rmse",
    "run_flags",
    "smooth_calibration_error",
    "smooth_calibration_error_ovr",
    "weak_label_range",
]


def classification_metrics(
    y: ArrayLike, proba: ArrayLike, *, n_bins: int = 15, eps: float = 1e-6
) -> dict[str, float]:
    """Accuracy, AUROC, cross-entropy, ECE and smooth calibration error of one model.

    ``smooth_ce`` is :func:`smooth_calibration_error` of the positive class for C = 2 and the mean
    of :func:`smooth_calibration_error_ovr` over classes otherwise; ``n_clipped`` is
    :func:`clip_count` of ``proba`` at ``eps`` (the entries the cross-entropy clipped).
    """
    p = _check_proba(proba)
    labels = _check_labels(y, p.shape[1])
    _check_same_length(labels.shape[0], p.shape[0], "y", "proba")
    if p.shape[1] == 2:
        smooth = smooth_calibration_error(labels, np.clip(p[:, 1], 0.0, 1.0))
    else:
        smooth = float(np.mean(smooth_calibration_error_ovr(labels, p)))
    return {
        "accuracy": accuracy(labels, p),
        "auroc": auroc(labels, p),
        "cross_entropy": cross_entropy(labels, p, eps),
        "ece": ece(labels, p, n_bins),
        "smooth_ce": smooth,
        "n_clipped": clip_count(p, eps),
    }


def regression_metrics(y: ArrayLike, pred: ArrayLike) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of one regression model (see each function)."""
    return {"mse": mse(y, pred), "rmse": rmse(y, pred), "mae": mae(y, pred), "r2": r2(y, pred)}


def probability_metrics(
    p_true: ArrayLike, proba: ArrayLike, *, n_bins: int = 15, eps: float = 1e-6
) -> dict[str, float]:
    """Metrics for the ``probability`` task, whose ground truth is a positive-class probability.

    With truth rows t_i = (1 − q_i, q_i) for q = ``p_true`` ``(n,)`` and predictions ``proba``
    ``(n, 2)``:
    ``kl`` = :func:`mean_kl` (t ‖ proba); ``accuracy`` against the labels round(q_i) (q_i = ½ rounds
    to 0); ``ece`` with t as soft labels; ``smooth_ce`` = :func:`smooth_calibration_error` (q,
    proba₁); ``mse`` = (1/n) Σ_i (proba_i1 − q_i)²; ``n_clipped`` = :func:`clip_count` of ``proba``.
    """
    q = _check_vector(p_true, "p_true")
    if q.min() < 0.0 or q.max() > 1.0:
        raise W2SGError("p_true must hold positive-class probabilities in [0, 1]")
    p = _check_proba(proba)
    if p.shape[1] != 2:
        raise W2SGError(f"the probability task is binary: proba must be (n, 2), got {p.shape}")
    _check_same_length(q.shape[0], p.shape[0], "p_true", "proba")
    truth = np.column_stack([1.0 - q, q])
    positive = np.clip(p[:, 1], 0.0, 1.0)
    return {
        "kl": mean_kl(truth, p, eps),
        "accuracy": accuracy(np.round(q).astype(np.int64), p),
        "ece": ece(truth, p, n_bins),
        "smooth_ce": smooth_calibration_error(q, positive),
        "mse": float(np.mean((p[:, 1] - q) ** 2)),
        "n_clipped": clip_count(p, eps),
    }
