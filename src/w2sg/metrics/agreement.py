"""How two models' predictions relate: agreement, KL divergences (d_fwd, d_rev), TV and misfit.

THEORY.md section 5: L(P, Q) := mean_x KL(P(x) ‖ Q(x)); d_fwd := L(F_w, F_sw) and
d_rev := L(F_sw, F_w), where F_w is the weak model and F_sw the weak-to-strong student.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from w2sg.errors import W2SGError
from w2sg.metrics.classification import FloatArray, _check_proba


def _check_proba_pair(
    p: ArrayLike, q: ArrayLike, names: tuple[str, str]
) -> tuple[FloatArray, FloatArray]:
    a = _check_proba(p, names[0])
    b = _check_proba(q, names[1])
    if a.shape != b.shape:
        raise W2SGError(
            f"{names[0]} has shape {a.shape} but {names[1]} has {b.shape}; "
            "pass probabilities of the same examples and classes"
        )
    return a, b


def check_eps(eps: float) -> None:
    """Refuse a clip floor outside (0, 1) with a one-line W2SGError."""
    if not 0.0 < eps < 1.0:
        raise W2SGError(f"eps must be in (0, 1), got {eps}")


def agreement(proba_a: ArrayLike, proba_b: ArrayLike) -> float:
    """Fraction of examples on which two models predict the same class.

    agreement = (1/n) Σ_i 1[argmax_c a_ic = argmax_c b_ic]   (ties go to the lowest index).
    """
    a, b = _check_proba_pair(proba_a, proba_b, ("proba_a", "proba_b"))
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def disagreement(proba_a: ArrayLike, proba_b: ArrayLike) -> float:
    """Fraction of examples on which two models predict different classes, 1 − agreement."""
    return 1.0 - agreement(proba_a, proba_b)


def clip_count(p: ArrayLike, eps: float = 1e-6) -> int:
    """Number of entries of a probability array that clipping to [ε, 1] changes.

    clip_count = #{(i, c) : p_ic < ε or p_ic > 1}.
    """
    check_eps(eps)
    arr = np.asarray(p, dtype=np.float64)
    return int(np.count_nonzero((arr < eps) | (arr > 1.0)))


def clip_rows(p: FloatArray, eps: float) -> FloatArray:
    """clip(p, ε, 1) / row sum: the rows every KL of w2sg takes logarithms of."""
    clipped = np.clip(p, eps, 1.0)
    return np.asarray(clipped / clipped.sum(axis=1, keepdims=True), dtype=np.float64)


def mean_kl(p: ArrayLike, q: ArrayLike, eps: float = 1e-6) -> float:
    """Mean Kullback–Leibler divergence between rows, L(P, Q) of THEORY.md section 5.

        L(P, Q) = (1/n) Σ_i Σ_c p̃_ic log(p̃_ic / q̃_ic),
        p̃_i = clip(p_i, ε, 1) / Σ_c clip(p_ic, ε, 1),

    and q̃ likewise: both arguments are clipped to [ε, 1] and each row is renormalised to sum to 1,
    so every term is finite and L ≥ 0. With a one-hot P this is the cross-entropy of Q up to
    O(ε log ε) from the clipped zeros. :func:`clip_count` says how many entries were clipped.
    """
    check_eps(eps)
    a, b = _check_proba_pair(p, q, ("p", "q"))
    pt = clip_rows(a, eps)
    qt = clip_rows(b, eps)
    return float(np.mean(np.sum(pt * (np.log(pt) - np.log(qt)), axis=1)))


def d_fwd(weak: ArrayLike, student: ArrayLike, eps: float = 1e-6) -> float:
    """Forward divergence d_fwd = L(F_w, F_sw) = mean_x KL(weak(x) ‖ student(x)).

    It is the objective of ordinary soft-label (cross-entropy) training, up to the weak entropy.
    Clipping and renormalisation as in :func:`mean_kl`.
    """
    return mean_kl(weak, student, eps)


def d_rev(weak: ArrayLike, student: ArrayLike, eps: float = 1e-6) -> float:
    """Reverse divergence d_rev = L(F_sw, F_w) = mean_x KL(student(x) ‖ weak(x)).

    Clipping and renormalisation as in :func:`mean_kl`.
    """
    return mean_kl(student, weak, eps)


def mean_tv(p: ArrayLike, q: ArrayLike) -> float:
    """Mean total-variation distance between rows, (1/n) Σ_i ½ Σ_c |p_ic − q_ic| (no clipping)."""
    a, b = _check_proba_pair(p, q, ("p", "q"))
    return float(np.mean(0.5 * np.sum(np.abs(a - b), axis=1)))


def misfit_sq(a: ArrayLike, b: ArrayLike) -> float:
    """Squared misfit between two models' outputs (THEORY.md section 5.3).

    For ``(n,)`` arrays, (1/n) Σ_i (a_i − b_i)²; for ``(n, C)`` arrays the squared differences are
    summed over the columns and averaged over the rows, (1/n) Σ_i Σ_c (a_ic − b_ic)².
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[0] == 0 or x.shape != y.shape:
        raise W2SGError(
            f"a and b must be non-empty arrays of one shape, (n,) or (n, C); got {x.shape} and "
            f"{y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise W2SGError("a or b contains NaN or inf; check the model outputs")
    squared = (x - y) ** 2
    if squared.ndim == 2:
        squared = squared.sum(axis=1)
    return float(np.mean(squared))
