"""Performance gap recovered (PGR), its paired bootstrap interval, and its aggregations over runs
(THEORY.md §7).

PGR is defined only when the weak model is worse than the ceiling: the field reports it that way
(openai/weak-to-strong takes the median over (weak, strong) pairs with the weak model below the
strong one), and a ratio over a negative or vanishing gap says nothing about recovery. A run whose
weak model is not below its ceiling gets a NaN PGR with a reason and the code
``weak_beats_ceiling`` (or ``weak_equals_ceiling``); the flags of :mod:`w2sg.metrics.flags` carry
that code.
"""

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
    _check_labels,
    _check_proba,
    _check_target,
    accuracy,
    auroc,
)
from w2sg.metrics.regression import _check_pair, mse

# Bootstrap index matrices are drawn in chunks of about this many entries to bound memory.
_CHUNK_ENTRIES = 1 << 20


@dataclass(frozen=True)
class PGRValue:
    """A PGR number; ``value`` is NaN and ``reason`` says why when PGR is undefined.

    ``code`` names the cause of an undefined PGR: ``weak_beats_ceiling`` (the weak model is
    better than the ceiling), ``weak_equals_ceiling`` (the gap is within ``tol``) or
    ``nan_score``; ``None`` when PGR is defined. ``gap`` = sign·(ceiling − weak), sign = +1 for
    scores and −1 for errors (positive when the weak model is below the ceiling).
    """

    value: float
    reason: str | None = None
    code: str | None = None
    gap: float = math.nan


@dataclass(frozen=True)
class PGRResult:
    """PGR on the full test set with a percentile bootstrap interval.

    ``ci_low``/``ci_high`` are quantiles over the ``n_boot_valid`` resamples whose PGR is defined
    (weak below ceiling); they are NaN when the point PGR is undefined. ``gap`` is the point gap
    and ``gap_se`` its bootstrap standard deviation over all resamples (both ceiling − weak for
    scores, weak − ceiling for errors). ``reason``/``code`` as in :class:`PGRValue`.
    """

    value: float
    ci_low: float
    ci_high: float
    reason: str | None
    n_boot_valid: int
    gap_se: float = math.nan
    code: str | None = None
    gap: float = math.nan


def pgr(
    weak: float,
    w2s: float,
    ceiling: float,
    higher_is_better: bool = True,
    tol: float = 1e-12,
    metric: str | None = None,
) -> PGRValue:
    """Performance gap recovered by the weak-to-strong model.

    For a score (``higher_is_better=True``) PGR = (w2s − weak) / (ceiling − weak); for an error
    PGR = (weak − w2s) / (weak − ceiling). The two are the same number, so one formula serves both:
    PGR = 1 means the student reached the ceiling, 0 means it only matched its weak teacher.
    Defined only when the weak model is worse than the ceiling by at least ``tol``; otherwise NaN
    with a reason and a code (see :class:`PGRValue`). ``metric`` names the score in reasons.
    """
    kind = metric or ("score" if higher_is_better else "error")
    if any(math.isnan(v) for v in (weak, w2s, ceiling)):
        return PGRValue(
            float("nan"),
            f"a {kind} is NaN (weak={weak}, w2s={w2s}, ceiling={ceiling}); PGR is undefined",
            "nan_score",
        )
    gap = ceiling - weak
    sign = 1.0 if higher_is_better else -1.0
    if abs(gap) < tol:
        return PGRValue(
            float("nan"),
            f"the weak model's {kind} equals the ceiling's ({weak:.4g}; they differ by "
            f"{abs(gap):.3g} < tol={tol:g}): no gap to recover, PGR is undefined",
            "weak_equals_ceiling",
            sign * gap,
        )
    if sign * gap < 0:
        better = "higher" if higher_is_better else "lower"
        return PGRValue(
            float("nan"),
            f"the weak model's {kind} ({weak:.4g}) is {better} than the ceiling's "
            f"({ceiling:.4g}): no gap to recover, PGR is undefined (the ratio would be "
            f"{(w2s - weak) / gap:.3g})",
            "weak_beats_ceiling",
            sign * gap,
        )
    return PGRValue(float((w2s - weak) / gap), None, None, sign * gap)


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


def _weighted_binary_auroc(
    positive: np.ndarray, score: np.ndarray, counts: FloatArray
) -> FloatArray:
    """AUROC of each resample given by multiplicities ``counts`` (B, n) of the n examples.

    With w_i the multiplicity of example i, AUROC_b = Σ_{i pos, j neg} w_i w_j K(s_i, s_j) /
    (W₊ W₋), K = 1 for s_i > s_j and ½ for a tie: the Mann–Whitney statistic of the resample.
    Examples are sorted by score once; tied scores form groups, and per resample
    Σ_g P_g (N_<g + ½ N_g) sums positive weight P_g times the negative weight below each group.
    """
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = counts[:, order]
    pos = positive[order]
    pos_w = np.add.reduceat(np.where(pos, w, 0.0), starts, axis=1)
    neg_w = np.add.reduceat(np.where(pos, 0.0, w), starts, axis=1)
    below = np.cumsum(neg_w, axis=1) - neg_w
    num = (pos_w * (below + 0.5 * neg_w)).sum(axis=1)
    den = pos_w.sum(axis=1) * neg_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _auroc_resampled(y: ArrayLike, preds: Sequence[ArrayLike], idx: IntArray) -> FloatArray:
    """:func:`auroc` of each model on each resample (rows of ``idx``), shape (models, B)."""
    n = idx.shape[1]
    counts = (
        np.bincount((idx + n * np.arange(idx.shape[0])[:, None]).ravel(), minlength=idx.size)
        .reshape(idx.shape)
        .astype(np.float64)
    )
    out = np.empty((len(preds), idx.shape[0]))
    for m, pred in enumerate(preds):
        p = _check_proba(pred)
        labels = _check_labels(y, p.shape[1])
        if p.shape[1] == 2:
            out[m] = _weighted_binary_auroc(labels == 1, p[:, 1], counts)
        else:  # macro one-vs-rest; NaN when a class is absent from the resample, as auroc
            per_class = [
                _weighted_binary_auroc(labels == c, p[:, c], counts) for c in range(p.shape[1])
            ]
            out[m] = np.mean(per_class, axis=0)
    return out


def bootstrap_scores(
    metric: Callable[[ArrayLike, ArrayLike], float],
    y: ArrayLike,
    preds: Sequence[ArrayLike],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> FloatArray:
    """``metric`` of each prediction on each paired bootstrap resample, shape (len(preds), n_boot).

    Resample b uses the indices I_b = row b of ``numpy.random.default_rng(seed).integers(0, n,
    size=(n_boot, n))`` for every model (paired). :func:`accuracy` and :func:`mse` are means of
    per-example correctness / squared errors (well under a second at n = 10⁴, n_boot = 10³), and
    :func:`auroc` is a weighted Mann–Whitney statistic of the multiplicities (6× faster than
    calling it per resample: 9.8 s against 57 s for three models at n = 10⁴, n_boot = 10³ on the
    loaded 2-core build machine); other metrics are called once per resample and model.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise W2SGError(f"n_boot must be a positive integer, got {n_boot!r}")
    y_arr = np.asarray(y)
    n = y_arr.shape[0] if y_arr.ndim > 0 else 0
    if n == 0:
        raise W2SGError("y must be a non-empty array of test targets")
    arrays = [np.asarray(p) for p in preds]
    for i, pred in enumerate(arrays):
        if pred.ndim == 0 or pred.shape[0] != n:
            raise W2SGError(
                f"prediction {i} must have one row per test example ({n}), got shape {pred.shape}"
            )
    scores = np.empty((len(arrays), n_boot), dtype=np.float64)
    losses = _per_example(metric, y_arr, arrays)
    start = 0
    for idx in _bootstrap_indices(n, n_boot, seed):
        block = slice(start, start + idx.shape[0])
        if losses is not None:
            scores[:, block] = np.take(losses, idx, axis=1).mean(axis=2)
        elif metric is auroc:
            scores[:, block] = _auroc_resampled(y_arr, arrays, idx)
        else:
            for model, pred in enumerate(arrays):
                scores[model, block] = [metric(y_arr[row], pred[row]) for row in idx]
        start += idx.shape[0]
    return scores


def pgr_interval(
    point: PGRValue,
    boot: FloatArray,
    *,
    higher_is_better: bool,
    ci: float = 0.95,
    tol: float = 1e-12,
) -> PGRResult:
    """A :class:`PGRResult` from the point PGR and the resampled scores ``boot`` (3, B) of the
    weak, w2s and ceiling models (:func:`bootstrap_scores`).

    PGR_b is defined on the resamples where the weak model is worse than the ceiling by at least
    ``tol``, as the point PGR; the interval is the (1 − ci)/2 and (1 + ci)/2 quantiles (linear
    interpolation) of those PGR_b, NaN when the point PGR is undefined or no PGR_b is.
    ``gap_se`` = the standard deviation (ddof = 1) of sign·(ceiling_b − weak_b) over the finite
    resamples, sign = +1 for scores, −1 for errors.
    """
    if not 0.0 < ci < 1.0:
        raise W2SGError(f"ci must be in (0, 1), got {ci}")
    weak, w2s, ceiling = boot
    sign = 1.0 if higher_is_better else -1.0
    gap = ceiling - weak
    finite = np.isfinite(boot).all(axis=0)
    gap_se = float(np.std(sign * gap[finite], ddof=1)) if finite.sum() >= 2 else math.nan
    valid = finite & (sign * gap >= tol)
    n_valid = int(valid.sum())
    if n_valid == 0 or math.isnan(point.value):
        reason = point.reason or "no bootstrap resample has a defined PGR"
        nan = float("nan")
        return PGRResult(point.value, nan, nan, reason, n_valid, gap_se, point.code, point.gap)
    resampled = (w2s[valid] - weak[valid]) / gap[valid]
    low, high = np.quantile(resampled, [(1.0 - ci) / 2.0, (1.0 + ci) / 2.0])
    return PGRResult(point.value, float(low), float(high), None, n_valid, gap_se, None, point.gap)


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
    name: str | None = None,
) -> PGRResult:
    """PGR of ``metric`` with a paired percentile bootstrap over test examples.

    ``value`` is :func:`pgr` of metric(y, pred) for the weak, w2s and ceiling predictions; the
    interval is :func:`pgr_interval` of :func:`bootstrap_scores` (same ``seed``, so the resamples
    are those of ``default_rng(seed).integers(0, n, size=(n_boot, n))``). ``name`` names the
    metric in reasons.
    """
    if not 0.0 < ci < 1.0:
        raise W2SGError(f"ci must be in (0, 1), got {ci}")
    preds = (pred_weak, pred_w2s, pred_ceiling)
    boot = bootstrap_scores(metric, y, preds, n_boot=n_boot, seed=seed)
    y_arr = np.asarray(y)
    weak_score, w2s_score, ceiling_score = (metric(y_arr, np.asarray(p)) for p in preds)
    point = pgr(weak_score, w2s_score, ceiling_score, higher_is_better, tol, name)
    return pgr_interval(point, boot, higher_is_better=higher_is_better, ci=ci, tol=tol)


# -- aggregations over runs -----------------------------------------------------------------


@dataclass(frozen=True)
class MedianPGR:
    """The median PGR over runs whose PGR is defined; ``n_used`` runs entered it and
    ``n_excluded`` were left out (weak not below the ceiling, or a NaN score)."""

    value: float
    n_used: int
    n_excluded: int


def median_pgr(
    weak: ArrayLike, w2s: ArrayLike, ceiling: ArrayLike, higher_is_better: bool = True
) -> MedianPGR:
    """Median over runs of the per-run PGR, as openai/weak-to-strong reports it.

        median_pgr = median { PGR_r : weak_r worse than ceiling_r }

    over the runs r given by the aligned score arrays (one (weak, strong) pair and seed per run);
    runs whose PGR is undefined (:func:`pgr`: weak not below the ceiling, or a NaN score) are
    excluded and counted. NaN when no run has a defined PGR.
    """
    values = [
        pgr(float(a), float(b), float(c), higher_is_better).value
        for a, b, c in zip(
            np.ravel(np.asarray(weak, float)),
            np.ravel(np.asarray(w2s, float)),
            np.ravel(np.asarray(ceiling, float)),
            strict=True,
        )
    ]
    used = [v for v in values if not math.isnan(v)]
    value = float(np.median(used)) if used else math.nan
    return MedianPGR(value, len(used), len(values) - len(used))


def pgr_of_means(
    weak: ArrayLike, w2s: ArrayLike, ceiling: ArrayLike, higher_is_better: bool = True
) -> PGRValue:
    """PGR of the mean scores over runs: :func:`pgr` (mean weak, mean w2s, mean ceiling).

    Runs with a NaN score are left out. Equal to Σ_r gap_r·q_r / Σ_r gap_r, the gap-weighted mean
    of the per-run ratios q_r = (w2s_r − weak_r) / gap_r, so it stays steady when one run's gap is
    near zero (where q_r explodes).
    """
    a, b, c = (np.ravel(np.asarray(x, float)) for x in (weak, w2s, ceiling))
    keep = np.isfinite(a) & np.isfinite(b) & np.isfinite(c)
    if not keep.any():
        return PGRValue(math.nan, "no run has all three scores", "nan_score")
    return pgr(
        float(a[keep].mean()), float(b[keep].mean()), float(c[keep].mean()), higher_is_better
    )
