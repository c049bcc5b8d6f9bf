"""Calibration metrics: binned top-label ECE and the exact smooth calibration error (§5.2)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import linprog

from w2sg.errors import W2SGError
from w2sg.metrics.classification import (
    _check_proba,
    _check_same_length,
    _check_target,
    _check_vector,
)


def ece(y: ArrayLike, proba: ArrayLike, n_bins: int = 15) -> float:
    """Top-label expected calibration error with equal-width bins and the L1 norm.

    With confidence c_i = max_k p_ik, predicted class ŷ_i = argmax_k p_ik and correctness
    a_i = t_{i,ŷ_i} (the one-hot label, or a soft target's probability of the predicted class),

        ECE = Σ_b (|B_b| / n) · |mean_{i∈B_b} a_i − mean_{i∈B_b} c_i|
            = (1/n) Σ_b |Σ_{i∈B_b} (a_i − c_i)|.

    The bins follow torchmetrics' ``multiclass_calibration_error(..., norm="l1")``: edges
    e_k = k / n_bins, bin b = [e_b, e_{b+1}) closed on the left, and a confidence of exactly 1
    (or above) falls in a bin of its own. Ties in ``proba`` go to the lowest class index. For C = 2
    this is the top-label ECE, which differs from torchmetrics' ``binary_calibration_error`` (that
    one bins the positive-class probability).
    """
    bins = reliability_bins(y, proba, n_bins)
    gap = np.asarray(bins["correct"]) - np.asarray(bins["confidence"])
    return float(np.sum(np.abs(gap)) / np.sum(bins["count"]))


def reliability_bins(y: ArrayLike, proba: ArrayLike, n_bins: int = 10) -> dict[str, list[float]]:
    """Top-label reliability bins, the data of a reliability diagram, as sums over examples.

    With the confidence c_i, correctness a_i and bins of :func:`ece`, for b = 0 … n_bins (the
    last bin holds confidences of exactly 1):

        count_b = |B_b|,   confidence_b = Σ_{i∈B_b} c_i,   correct_b = Σ_{i∈B_b} a_i,

    so mean confidence and observed frequency are ``confidence_b / count_b`` and
    ``correct_b / count_b``, ECE = Σ_b |correct_b − confidence_b| / n, and bins of several runs
    pool by adding them (which is how a sweep report draws one diagram per task).
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise W2SGError(f"n_bins must be a positive integer, got {n_bins!r}")
    p = _check_proba(proba)
    target = _check_target(y, p.shape[0], p.shape[1])
    rows = np.arange(p.shape[0])
    predicted = np.argmax(p, axis=1)
    confidence = p[rows, predicted]
    correct = target[rows, predicted]
    edges = np.arange(n_bins + 1, dtype=np.float64) / n_bins
    bins = np.searchsorted(edges, confidence, side="right") - 1
    return {
        "count": np.bincount(bins, minlength=n_bins + 1).astype(float).tolist(),
        "confidence": np.bincount(bins, weights=confidence, minlength=n_bins + 1).tolist(),
        "correct": np.bincount(bins, weights=correct, minlength=n_bins + 1).tolist(),
    }


def smooth_calibration_error(y: ArrayLike, p: ArrayLike) -> float:
    """Exact smooth calibration error (Błasiok et al. 2023) of a binary predictor on a sample.

        smCE = sup { (1/n) Σ_i w(p_i) (y_i − p_i) : w 1-Lipschitz on [0, 1], |w| ≤ 1 },

    with y_i ∈ {0, 1} (or a probability of the positive class) and p_i the predicted positive-class
    probability. Only the values of w at the m sorted distinct predictions v_1 < … < v_m matter, and
    any such values with |w_j − w_{j+1}| ≤ v_{j+1} − v_j and |w_j| ≤ 1 extend to an admissible w,
    so the supremum is the linear program

        max_w Σ_j r_j w_j   s.t.  |w_{j+1} − w_j| ≤ v_{j+1} − v_j,  −1 ≤ w_j ≤ 1,

    with r_j = (1/n) Σ_{i: p_i = v_j} (y_i − p_i), solved exactly by HiGHS. It satisfies
    |mean(y − p)| ≤ smCE ≤ mean|y − p| (by w ≡ ±1, and by |w| ≤ 1 and the triangle inequality).
    """
    target = _check_vector(y, "y")
    pred = _check_vector(p, "p")
    _check_same_length(target.shape[0], pred.shape[0], "y", "p")
    if target.min() < 0.0 or target.max() > 1.0:
        raise W2SGError("y must be binary labels or probabilities in [0, 1]")
    if pred.min() < 0.0 or pred.max() > 1.0:
        raise W2SGError("p must be positive-class probabilities in [0, 1]")
    values, group = np.unique(pred, return_inverse=True)
    # Sums rather than means keep the LP's coefficients O(1) per group for HiGHS's tolerances.
    residual = np.bincount(group, weights=target - pred, minlength=values.shape[0])
    n = target.shape[0]
    m = values.shape[0]
    if m == 1:
        return float(abs(residual[0]) / n)
    gaps = np.diff(values)
    rows = np.arange(m - 1)
    diff = sp.csr_matrix(
        (
            np.concatenate([-np.ones(m - 1), np.ones(m - 1)]),
            (np.tile(rows, 2), np.r_[rows, rows + 1]),
        ),
        shape=(m - 1, m),
    )
    result = linprog(
        -residual,
        A_ub=sp.vstack([diff, -diff], format="csr"),
        b_ub=np.concatenate([gaps, gaps]),
        bounds=(-1.0, 1.0),
        method="highs",
    )
    if result.status != 0:
        raise W2SGError(
            f"the smooth calibration LP failed ({result.message}); report this as a bug"
        )
    return float(-result.fun / n)


def smooth_calibration_error_ovr(y: ArrayLike, proba: ArrayLike) -> list[float]:
    """One-vs-rest smooth calibration error of each class k of a multiclass predictor.

        smCE_k = smCE(1[y = k], p_·k),

    with :func:`smooth_calibration_error` applied to the indicator of class k (or a soft target's
    column k) and the predicted probability of class k.
    """
    probs = _check_proba(proba)
    target = _check_target(y, probs.shape[0], probs.shape[1])
    return [
        smooth_calibration_error(target[:, k], np.clip(probs[:, k], 0.0, 1.0))
        for k in range(probs.shape[1])
    ]
