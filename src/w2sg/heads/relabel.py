"""Cleaning weak labels before the student trains: relabel or filter them (EleutherAI/w2s).

EleutherAI/w2s (``w2s/probe.py``, ``w2s/sft.py``) fits a *probe* on the strong model's
representation of the student's training rows D̂ with the weak labels as targets, then either
replaces the weak labels by the probe's predictions on the same rows (``probe_relabel``) or drops
the rows where probe and weak label disagree most (``probe_filter``, a ``contamination``
fraction, 0.1 by default). Its probes are a k-nearest-neighbour average (k = 20) and an L2
logistic regression (penalty 1e-3); an earlier version of its training script kept the most
confident half of the rows. All of it is here as pure functions on arrays:

- :func:`knn_average`: u_i = (1/k) Σ_{j ∈ N_k(i)} t_j, N_k(i) the k rows of H nearest to row i in
  Euclidean distance, **row i itself included** (EleutherAI fits the kNN probe on D̂ and queries it
  on the same rows, so each row's own label is one of the k); distance ties go to the lower row
  index;
- :func:`probe_predict`: an L2 logistic-regression probe fitted on (H, t) and evaluated on H;
- :func:`disagreement`: d_i = ½ Σ_j |u_ij − t_ij| (total variation; for two classes
  |u_i1 − t_i1|, EleutherAI's ``(preds - labels).abs()``);
- :func:`drop_most_disagreeing`: drop the ⌊c·n⌋ rows with the largest d (EleutherAI's
  ``argsort(descending=True)[int(c·n):]``; ties: the lower row index is dropped first);
- :func:`keep_most_confident`: keep the ⌊q·n⌋ rows with the largest confidence maxⱼ t_ij (for two
  classes the same order as |t_i1 − ½|; ties: the lower row index is kept first);
- :func:`clean_labels`: one of :data:`CLEAN_METHODS` applied to (H, t), with a note of how many
  labels changed and how many rows were dropped.

Targets are ``(n, C)`` rows of non-negative numbers (probabilities, or a least-squares head's
scores: the kNN average and confidence order apply to them as given, the probe needs rows on the
simplex).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from w2sg.config import CLEAN_METHODS  # ``none`` and the five rules of clean_labels
from w2sg.errors import W2SGError

__all__ = [
    "CLEAN_METHODS",
    "Cleaned",
    "clean_labels",
    "default_keep",
    "disagreement",
    "drop_most_disagreeing",
    "keep_most_confident",
    "knn_average",
    "probe_predict",
]


# Rows per block of the kNN distance computation (a block × n float64 matrix at a time).
_KNN_BLOCK = 512


def default_keep(method: str) -> float:
    """The kept fraction when none is given: 0.9 for the filters (EleutherAI's contamination
    0.1), 0.5 for ``confidence`` (its script's top half), 1 otherwise."""
    return {"knn_filter": 0.9, "probe_filter": 0.9, "confidence": 0.5}.get(method, 1.0)


def _matrix(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise W2SGError(f"{name} must be a 2-D array; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise W2SGError(f"{name} contains NaN or infinite values")
    return arr


def knn_average(H: ArrayLike, targets: ArrayLike, k: int = 20) -> NDArray[np.float64]:
    """u_i = mean of t_j over the k rows nearest to row i (Euclidean, row i included; ties to the
    lower index). ``H`` is (n, d), ``targets`` (n, C); returns (n, C)."""
    h = _matrix(H, "H")
    t = _matrix(targets, "targets")
    n = h.shape[0]
    if t.shape[0] != n:
        raise W2SGError(f"targets has {t.shape[0]} rows but H has {n}")
    if not 1 <= k <= n:
        raise W2SGError(f"kNN needs 1 <= k <= n rows; got k={k}, n={n}")
    sq = np.einsum("ij,ij->i", h, h)
    out = np.empty_like(t)
    for start in range(0, n, _KNN_BLOCK):
        block = h[start : start + _KNN_BLOCK]
        # ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b, clipped at 0 against rounding; each row's distance to
        # itself is set to exactly 0 so that it is always among its own neighbours.
        d2 = sq[start : start + _KNN_BLOCK, None] + sq[None, :] - 2.0 * (block @ h.T)
        np.maximum(d2, 0.0, out=d2)
        rows = np.arange(len(block))
        d2[rows, start + rows] = 0.0
        nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]
        out[start : start + len(block)] = t[nearest].mean(axis=1)
    return out


def probe_predict(
    H: ArrayLike, targets: ArrayLike, l2: float = 1e-3, max_iter: int = 500
) -> NDArray[np.float64]:
    """An L2 logistic-regression probe fitted on (H, t) by full-batch L-BFGS, evaluated on H.

    EleutherAI's probe minimises mean BCE(w·h + b, t_1) + l2·‖w‖² (binary; soft targets, intercept
    not penalised). :class:`~w2sg.heads.softmax.SoftmaxHead` minimises mean loss + (λ/2)‖W‖_F²
    with, for two classes, ‖W‖_F² = ‖w‖²/2 at the optimum (w = W_{:,1} − W_{:,0}), so λ = 4·l2
    gives the same probe; for C ≥ 3 (a full W) λ = 2·l2.
    """
    from w2sg.heads.softmax import SoftmaxHead

    t = _matrix(targets, "targets")
    lam = (4.0 if t.shape[1] == 2 else 2.0) * l2
    head = SoftmaxHead(loss="xent", l2=lam, max_iter=max_iter).fit(H, t)
    return head.predict_proba(H)


def disagreement(new: ArrayLike, old: ArrayLike) -> NDArray[np.float64]:
    """d_i = ½ Σ_j |new_ij − old_ij| (for two classes on the simplex, |new_i1 − old_i1|)."""
    a, b = np.asarray(new, dtype=np.float64), np.asarray(old, dtype=np.float64)
    return np.asarray(0.5 * np.abs(a - b).sum(axis=1), dtype=np.float64)


def _count(fraction: float, n: int, what: str) -> int:
    if not 0.0 <= fraction <= 1.0:
        raise W2SGError(f"the {what} fraction must be in [0, 1]; got {fraction}")
    return math.floor(fraction * n + 1e-9)


def drop_most_disagreeing(dis: ArrayLike, drop_fraction: float) -> NDArray[np.int64]:
    """Indices (ascending) of the rows kept after dropping the ⌊c·n⌋ largest ``dis``."""
    d = np.asarray(dis, dtype=np.float64)
    m = _count(drop_fraction, len(d), "dropped")
    order = np.argsort(-d, kind="stable")  # largest first; ties: lower index first
    return np.sort(order[m:]).astype(np.int64)


def keep_most_confident(targets: ArrayLike, keep_fraction: float) -> NDArray[np.int64]:
    """Indices (ascending) of the ⌊q·n⌋ rows with the largest maxⱼ t_ij."""
    t = np.asarray(targets, dtype=np.float64)
    m = _count(keep_fraction, len(t), "kept")
    order = np.argsort(-t.max(axis=1), kind="stable")
    return np.sort(order[:m]).astype(np.int64)


@dataclass
class Cleaned:
    """The student's training rows after cleaning: ``rows`` (ascending positions into the given
    arrays), their ``targets`` and a JSON-able ``note``."""

    rows: NDArray[np.int64]
    targets: NDArray[np.float64]
    note: dict[str, Any]


def clean_labels(
    method: str,
    H: ArrayLike,
    targets: ArrayLike,
    *,
    k: int = 20,
    l2: float = 1e-3,
    keep: float | None = None,
) -> Cleaned:
    """Relabel or filter the weak labels ``targets`` (n, C) of the rows of ``H`` (n, d).

    ``method``: ``none``; ``knn_relabel`` / ``probe_relabel`` (every label replaced by
    :func:`knn_average` / :func:`probe_predict`); ``knn_filter`` / ``probe_filter`` (labels kept,
    the rows where that probe disagrees most dropped so that a fraction ``keep`` remains);
    ``confidence`` (the fraction ``keep`` of rows with the most confident weak labels kept).
    ``keep`` defaults to :func:`default_keep`. The note records ``method``, ``n_before``,
    ``n_after``, ``dropped``, ``changed`` (kept rows whose argmax label changed), ``mean_change``
    (mean :func:`disagreement` between new and old labels of the kept rows) and the parameters.
    """
    if method not in CLEAN_METHODS:
        raise W2SGError(f"unknown cleaning {method!r}; use one of {', '.join(CLEAN_METHODS)}")
    t = _matrix(targets, "targets")
    n = t.shape[0]
    keep_fraction = default_keep(method) if keep is None else keep
    params: dict[str, Any] = {}
    new = t
    rows = np.arange(n, dtype=np.int64)
    if method in ("knn_relabel", "knn_filter"):
        params["k"] = k
        probe = knn_average(H, t, k)
    elif method in ("probe_relabel", "probe_filter"):
        params["l2"] = l2
        probe = probe_predict(H, t, l2)
    if method.endswith("_relabel"):
        new = probe
    elif method.endswith("_filter"):
        params["keep"] = keep_fraction
        rows = drop_most_disagreeing(disagreement(probe, t), 1.0 - keep_fraction)
    elif method == "confidence":
        params["keep"] = keep_fraction
        rows = keep_most_confident(t, keep_fraction)
    if len(rows) < 2:
        raise W2SGError(
            f"cleaning {method!r} keeps {len(rows)} of {n} rows; the student needs at least 2 — "
            "raise --clean-keep"
        )
    kept_new, kept_old = new[rows], t[rows]
    note = {
        "method": method,
        **params,
        "n_before": n,
        "n_after": len(rows),
        "dropped": n - len(rows),
        "changed": int((kept_new.argmax(axis=1) != kept_old.argmax(axis=1)).sum()),
        "mean_change": float(disagreement(kept_new, kept_old).mean()),
    }
    return Cleaned(rows=rows, targets=np.ascontiguousarray(kept_new), note=note)
