"""Classification metrics on ``(n, C)`` probabilities: accuracy, AUROC and cross-entropy.

Labels are integer class indices ``(n,)`` in ``0..C-1``; probabilities are always ``(n, C)``, also
for binary tasks (``C = 2``, column 1 is the positive class). The private ``_check_*`` helpers are
the input validation that every module of :mod:`w2sg.metrics` runs at its public boundary.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import rankdata

from w2sg.errors import W2SGError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _check_proba(proba: ArrayLike, name: str = "proba") -> FloatArray:
    """Return ``proba`` as a finite float ``(n, C)`` array with n >= 1 and C >= 2."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise W2SGError(
            f"{name} must be a 2-D (n, C) probability array with n >= 1 and C >= 2 "
            f"(binary tasks use C = 2), got shape {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        raise W2SGError(f"{name} contains NaN or inf; check the model's predictions")
    return p


def _check_vector(x: ArrayLike, name: str) -> FloatArray:
    """Return ``x`` as a finite float ``(n,)`` array with n >= 1."""
    v = np.asarray(x, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] == 0:
        raise W2SGError(f"{name} must be a non-empty 1-D array, got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise W2SGError(f"{name} contains NaN or inf; remove or impute those entries")
    return v


def _check_same_length(n_a: int, n_b: int, name_a: str, name_b: str) -> None:
    if n_a != n_b:
        raise W2SGError(f"{name_a} has {n_a} rows but {name_b} has {n_b}; pass aligned arrays")


def _check_labels(y: ArrayLike, n_classes: int, name: str = "y") -> IntArray:
    """Return integer class indices ``(n,)`` in ``0..n_classes-1`` (integral floats accepted)."""
    raw = np.asarray(y)
    if raw.ndim != 1 or raw.shape[0] == 0:
        raise W2SGError(
            f"{name} must be non-empty 1-D integer class indices, got shape {raw.shape}"
        )
    if raw.dtype.kind not in "iub":
        try:
            as_float = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise W2SGError(
                f"{name} must hold integer class indices 0..C-1, got dtype {raw.dtype}"
            ) from None
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise W2SGError(f"{name} must hold integer class indices 0..C-1, got non-integers")
        raw = as_float
    labels = raw.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise W2SGError(
            f"{name} holds class indices {labels.min()}..{labels.max()} but the probabilities "
            f"have {n_classes} columns; labels must be in 0..{n_classes - 1}"
        )
    return labels


def _check_target(target: ArrayLike, n: int, n_classes: int, name: str = "y") -> FloatArray:
    """Return a target as ``(n, C)`` rows: one-hot for int labels ``(n,)``, as given if soft."""
    t = np.asarray(target)
    if t.ndim == 2:
        soft = np.asarray(t, dtype=np.float64)
        if soft.shape != (n, n_classes):
            raise W2SGError(
                f"soft {name} must have shape ({n}, {n_classes}) like the probabilities, "
                f"got {soft.shape}"
            )
        if not np.all(np.isfinite(soft)) or soft.min() < 0.0:
            raise W2SGError(f"soft {name} must be finite and non-negative")
        return soft
    labels = _check_labels(t, n_classes, name)
    _check_same_length(labels.shape[0], n, name, "proba")
    return np.eye(n_classes, dtype=np.float64)[labels]


def accuracy(y: ArrayLike, proba: ArrayLike) -> float:
    """Fraction of examples whose most probable class is the label.

    accuracy = (1/n) Σ_i 1[argmax_c p_ic = y_i]

    Ties in ``proba`` go to the lowest class index (``numpy.argmax``). ``y`` may also be soft
    ``(n, C)`` targets (for instance weak labels); they are hardened with argmax first.
    """
    p = _check_proba(proba)
    target = _check_target(y, p.shape[0], p.shape[1])
    return float(np.mean(np.argmax(p, axis=1) == np.argmax(target, axis=1)))


def _binary_auroc(positive: NDArray[np.bool_], score: FloatArray) -> float:
    """Mann–Whitney AUROC: (R₊ − n₊(n₊+1)/2) / (n₊ n₋), R₊ the sum of mid-ranks of positives."""
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score, method="average")
    rank_sum = float(ranks[positive].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def auroc(y: ArrayLike, proba: ArrayLike) -> float:
    """Area under the ROC curve, with ties counted one half (as scikit-learn's ``roc_auc_score``).

    Binary (C = 2), on the positive-class score s_i = p_i1, by the Mann–Whitney formula

        AUROC = (R₊ − n₊(n₊ + 1)/2) / (n₊ n₋),

    where R₊ is the sum over positives of the mid-rank of s_i among all n scores, which equals
    P(s₊ > s₋) + ½ P(s₊ = s₋) for a random positive/negative pair. Multiclass: the macro average
    over classes c of the one-vs-rest AUROC of column c, (1/C) Σ_c AUROC(1[y = c], p_·c).

    Returns NaN when a class is absent from ``y`` (binary: only one class present; multiclass: any
    class missing), since the one-vs-rest AUROC of that class is undefined.
    """
    p = _check_proba(proba)
    labels = _check_labels(y, p.shape[1])
    _check_same_length(labels.shape[0], p.shape[0], "y", "proba")
    if p.shape[1] == 2:
        return _binary_auroc(labels == 1, p[:, 1])
    per_class = [_binary_auroc(labels == c, p[:, c]) for c in range(p.shape[1])]
    return float(np.mean(per_class))


def cross_entropy(target: ArrayLike, proba: ArrayLike, eps: float = 1e-6) -> float:
    """Mean cross-entropy of probabilities against hard or soft targets.

    CE = −(1/n) Σ_i Σ_c t_ic log(clip(p_ic, ε, 1)),

    with t the one-hot encoding of integer labels ``(n,)`` or the given soft targets ``(n, C)``.
    Probabilities are clipped to [ε, 1] before the logarithm and not renormalised, so with one-hot
    targets CE = −(1/n) Σ_i log max(p_{i,y_i}, ε). Use :func:`w2sg.metrics.clip_count` to report how
    many entries the clipping touched.
    """
    if not eps > 0.0:
        raise W2SGError(f"eps must be > 0, got {eps}")
    p = _check_proba(proba)
    t = _check_target(target, p.shape[0], p.shape[1], "target")
    return float(-np.mean(np.sum(t * np.log(np.clip(p, eps, 1.0)), axis=1)))
