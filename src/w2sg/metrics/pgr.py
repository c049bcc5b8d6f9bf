"""Performance gap recovered (PGR) and its paired bootstrap confidence interval (THEORY.md §7)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from w2sg.errors import W2SGError
from w2sg.metrics.classification import (
    FloatArray,
    IntArray,
    _check_proba,
    _check_target,
    accuracy,
)
from w2sg.metrics.regression import _check_pair, mse

# Bootstrap index matrices are drawn in chunks of about this many entries to bound memory.
_CHUNK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class PGRValue:
    """A PGR number; ``value`` is NaN and ``reason`` says why when PGR is undefined."""

    value: float
    reason: str | None = None


@dataclass(frozen=True)
class PGRResult:
    """PGR on the full test set with a percentile bootstrap interval.

    ``ci_low``/``ci_high`` are quantiles over the ``n_boot_valid`` resamples whose PGR is defined;
    ``reason`` explains a NaN ``value`` or an interval that could not be formed.
    """

    value: float
    ci_low: float
    ci_high: float
    reason: str | None
    n_boot_valid: int


def pgr(
    weak: float, w2s: float, ceiling: float, higher_is_better: bool = True, tol: float = 1e-12
) -> PGRValue:
    """Performance gap recovered by the weak-to-strong model.

    For a score (``higher_is_better=True``) PGR = (w2s − weak) / (ceiling − weak); for an error
    PGR = (weak − w2s) / (weak − ceiling). The two are the same number, so one formula serves both:
    PGR = 1 means the student reached the ceiling, 0 means it only matched its weak teacher.
    Undefined (NaN with a reason) when |ceiling − weak| < ``tol`` or a score is NaN.
    """
    kind = "scores" if higher_is_better else "errors"
    if any(math.isnan(v) for v in (weak, w2s, ceiling)):
        return PGRValue(
            float("nan"), f"a {kind[:-1]} is NaN (weak={weak}, w2s={w2s}, ceiling={ceiling})"
        )
    gap = ceiling - weak
    if abs(gap) < tol:
        return PGRValue(
            float("nan"),
            f"the ceiling and weak {kind} differ by {abs(gap):.3g} < tol={tol:g}; PGR is undefined",
        )
    return PGRValue(float((w2s - weak) / gap), None)


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> Iterator[IntArray]:
    """Row blocks of ``default_rng(seed).integers(0, n, size=(n_boot, n))``, drawn in chunks."""
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ENTRIES // n)
    for start in range(0, n_boot, rows):
        yield rng.integers(0, n, size=(min(rows, n_boot - start), n))


def _per_example(
    metric: Callable[[ArrayLike, ArrayLike], float], y: ArrayLike, preds: Sequence[ArrayLike]
) -> FloatArray | None:
    """Per-example losses whose mean is ``metric``, for the metrics that have them, else None."""
    if metric is accuracy:
        rows = []
        for pred in preds:
            p = _check_proba(pred)
            hard = np.argmax(_check_target(y, p.shape[0], p.shape[1]), axis=1)
            rows.append(np.argmax(p, axis=1) == hard)
        return np.asarray(rows, dtype=np.float64)
    if metric is mse:
        rows_sq = []
        for pred in preds:
            t, f = _check_pair(y, pred)
            rows_sq.append((t - f) ** 2)
        return np.asarray(rows_sq, dtype=np.float64)
    return None


def pgr_bootstrap(
    metric: Callable[[ArrayLike, ArrayLike], float],
    y: ArrayLike,
    pred_weak: ArrayLike,
    pred_w2s: ArrayLike,
    pred_ceiling: ArrayLike,
    *,
    higher_is_better: bool,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    tol: float = 1e-12,
) -> PGRResult:
    """PGR of ``metric`` with a paired percentile bootstrap over test examples.

    ``value`` is :func:`pgr` of metric(y, pred) for the weak, w2s and ceiling predictions. Resample
    b uses the indices I_b = row b of ``numpy.random.default_rng(seed).integers(0, n,
    size=(n_boot, n))`` for all three models (paired), giving PGR_b from metric(y[I_b], pred[I_b]).
    The interval is the (1 − ci)/2 and (1 + ci)/2 quantiles (linear interpolation) of the PGR_b that
    are defined; ``n_boot_valid`` counts them. For ``metric`` = :func:`accuracy` or :func:`mse` the
    resampled metrics are means of precomputed per-example correctness / squared errors, so
    n = 10⁴, n_boot = 10³ takes well under a second; other metrics are called once per resample.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise W2SGError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0.0 < ci < 1.0:
        raise W2SGError(f"ci must be in (0, 1), got {ci}")
    y_arr = np.asarray(y)
    n = y_arr.shape[0] if y_arr.ndim > 0 else 0
    if n == 0:
        raise W2SGError("y must be a non-empty array of test targets")
    preds = [np.asarray(p) for p in (pred_weak, pred_w2s, pred_ceiling)]
    for name, pred in zip(("pred_weak", "pred_w2s", "pred_ceiling"), preds, strict=True):
        if pred.ndim == 0 or pred.shape[0] != n:
            raise W2SGError(
                f"{name} must have one row per test example ({n}), got shape {pred.shape}"
            )

    weak_score, w2s_score, ceiling_score = (metric(y_arr, p) for p in preds)
    point = pgr(weak_score, w2s_score, ceiling_score, higher_is_better, tol)

    scores = np.empty((3, n_boot), dtype=np.float64)
    losses = _per_example(metric, y_arr, preds)
    start = 0
    for idx in _bootstrap_indices(n, n_boot, seed):
        block = slice(start, start + idx.shape[0])
        if losses is not None:
            scores[:, block] = np.take(losses, idx, axis=1).mean(axis=2)
        else:
            for model, pred in enumerate(preds):
                scores[model, block] = [metric(y_arr[row], pred[row]) for row in idx]
        start += idx.shape[0]

    weak, w2s, ceiling = scores
    gap = ceiling - weak
    valid = np.isfinite(scores).all(axis=0) & (np.abs(gap) >= tol)
    n_valid = int(valid.sum())
    if n_valid == 0:
        reason = point.reason or "no bootstrap resample has a defined PGR"
        return PGRResult(point.value, float("nan"), float("nan"), reason, 0)
    resampled = (w2s[valid] - weak[valid]) / gap[valid]
    low, high = np.quantile(resampled, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    return PGRResult(point.value, float(low), float(high), point.reason, n_valid)
