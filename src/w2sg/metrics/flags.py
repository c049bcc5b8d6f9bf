"""Flags: stable codes, each with a one-line reason, for runs whose numbers mislead without a word.

Pure functions (numbers and arrays in, flags out); the pipeline attaches :func:`run_flags` to every
run result. The codes (docs/pipeline.md has the table):

- ``weak_beats_ceiling``: the weak model scores better than the ceiling, so there is no gap to
  recover and PGR is undefined (its value is null); ``weak_equals_ceiling`` when they tie.
  Raised per PGR metric (accuracy and AUROC for classification), the reason names the metric.
- ``pgr_undefined``: a score of the PGR is NaN (an AUROC on a test split missing a class).
- ``small_gap``: ceiling − weak is within its bootstrap standard error: PGR divides by noise
  (per PGR metric, the reason names it).
- ``ceiling_at_baseline``: the ceiling is not better than the baseline (majority-class rate, or the
  mean predictor for regression and probability tasks) by more than the standard error of their
  difference: the strong representation does not carry the task, and PGR means little.
- ``below_baseline`` (with ``model``): that model scores worse than the baseline.
- ``student_collapsed``: the w2s student predicts one class on at least 95% of the test rows, or
  (regression) its predictions' standard deviation is under 5% of the targets'.
- ``weak_labels_out_of_range`` (regression): at least one weak label on D̂ (w2s_train) lies more
  than :data:`OUT_OF_RANGE_IQR` interquartile ranges of the weak_train targets beyond their
  observed range (:func:`weak_label_range`): the weak teacher extrapolates wildly there and the
  student fits those labels. Single weak models, labellers and ensembles alike (any combine rule:
  the flag looks at the labels the student was given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from w2sg.errors import W2SGError

#: Every flag code, in the order flags are listed.
CODES: tuple[str, ...] = (
    "weak_beats_ceiling",
    "weak_equals_ceiling",
    "pgr_undefined",
    "small_gap",
    "ceiling_at_baseline",
    "below_baseline",
    "student_collapsed",
    "weak_labels_out_of_range",
)

#: A student predicting one class on at least this fraction of test rows has collapsed.
COLLAPSE_FRACTION = 0.95
#: A regression student whose predictions' sd is below this fraction of the targets' sd has
#: collapsed to a near-constant output.
CONSTANT_RATIO = 0.05

#: A regression weak label on D̂ farther than this many IQRs of the weak_train targets beyond
#: their range [min, max] is out of range (:func:`weak_label_range`).
OUT_OF_RANGE_IQR = 3.0

_BASELINE_NAME = {
    "classification": "the majority-class rate",
    "regression": "the mean predictor",
    "probability": "the mean predictor",
}


@dataclass(frozen=True)
class Flag:
    """One flag: a stable ``code``, a one-line ``reason`` and, for per-model flags, ``model``."""

    code: str
    reason: str
    model: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "reason": self.reason}
        if self.model is not None:
            out["model"] = self.model
        return out


def baseline_predictions(task: str, y_train: ArrayLike, n: int, n_classes: int = 0) -> np.ndarray:
    """The constant baseline's predictions for ``n`` rows, fitted to the training labels.

    ``classification``: every row is the class frequencies of ``y_train`` (class indices), so the
    argmax is the majority class and the accuracy is the majority-class rate; ``regression``: the
    mean of ``y_train`` ``(n,)``; ``probability``: the mean positive-class probability q̄ as rows
    (1 − q̄, q̄) ``(n, 2)``.
    """
    y = np.asarray(y_train)
    if y.ndim != 1 or y.size == 0:
        raise W2SGError("the baseline needs a non-empty 1-D vector of training labels")
    if task == "classification":
        freq = np.bincount(y.astype(np.int64), minlength=n_classes) / y.size
        return np.tile(freq, (n, 1))
    if task == "regression":
        return np.full(n, float(np.mean(y)))
    if task == "probability":
        q = float(np.mean(y))
        return np.tile([1.0 - q, q], (n, 1))
    raise W2SGError(f"unknown task {task!r}; use classification, regression or probability")


def paired_se(boot_a: ArrayLike, boot_b: ArrayLike) -> float:
    """Bootstrap standard error of a − b: the sd (ddof = 1) of a_b − b_b over paired resamples
    where both are finite; NaN with fewer than two."""
    d = np.asarray(boot_a, float) - np.asarray(boot_b, float)
    d = d[np.isfinite(d)]
    return float(np.std(d, ddof=1)) if d.size >= 2 else math.nan


def collapse(task: str, output: ArrayLike, y: ArrayLike | None = None) -> str | None:
    """Why a model's test ``output`` has collapsed, or ``None``.

    Classification and probability tasks (``output`` (n, C) probabilities): the most predicted
    class covers at least :data:`COLLAPSE_FRACTION` of the rows. Regression (``output`` (n,)):
    sd(output) < :data:`CONSTANT_RATIO` · sd(y) (any sd below 1e-12 when y is constant or absent).
    """
    out = np.asarray(output, float)
    if task == "regression":
        sd = float(np.std(out))
        sd_y = float(np.std(np.asarray(y, float))) if y is not None else 0.0
        limit = CONSTANT_RATIO * sd_y if sd_y > 0 else 1e-12
        if sd < limit:
            return (
                f"near-constant predictions: sd {sd:.3g} < {CONSTANT_RATIO:g} × the targets' sd "
                f"{sd_y:.3g}"
            )
        return None
    if out.ndim != 2 or out.shape[0] == 0:
        raise W2SGError(f"output must be (n, C) probabilities, got shape {out.shape}")
    pred = np.argmax(out, axis=1)
    counts = np.bincount(pred, minlength=out.shape[1])
    top = int(np.argmax(counts))
    n = out.shape[0]
    if counts[top] < COLLAPSE_FRACTION * n:
        return None
    share = ""
    if y is not None:
        yv = np.asarray(y)
        truth = np.round(yv).astype(int) if task == "probability" else yv.astype(int)
        share = f"; the labels hold {np.mean(truth == top):.1%} of that class"
    return f"predicts class {top} on {counts[top]} of {n} test rows ({counts[top] / n:.1%}{share})"


def weak_label_range(
    weak_labels: ArrayLike, y_train: ArrayLike, k: float = OUT_OF_RANGE_IQR
) -> dict[str, Any] | None:
    """How many regression weak labels fall far outside the range of the true training targets.

    With y the true targets of weak_train (D̃), s = IQR(y) = q₇₅ − q₂₅ (linear percentiles; the
    sd of y when the IQR is 0) and the fence [min y − k·s, max y + k·s], a weak label ŷ on
    w2s_train (D̂) is *out of range* when it lies outside the fence or is not finite. Returns
    ``n`` (labels), ``n_out_of_range``, ``low`` and ``high`` (the fence), ``scale`` (s),
    ``scale_name`` (``iqr`` or ``sd``), ``k`` and ``max_excess`` = max_i max(min y − ŷ_i,
    ŷ_i − max y, 0) / s (how far beyond the range the farthest label lies, in units of s; inf
    when a label is not finite); ``None`` when y is constant (no scale).

    The rule is scale-free (the same rows for a·y + b and a·ŷ + b, a ≠ 0), never counts a label
    inside the targets' observed range, and the IQR is not moved by the few extreme targets that
    already widen [min, max]. k = 3 lies 3 IQRs beyond the extremes, wider than Tukey's
    "far out" fence (3 IQRs beyond the quartiles); measured on the molecular study (FreeSolv and
    solubility, 15 weak models × 3 seeds, ridge β = 0.001) ordinary weak models reach at most
    1.1 IQRs beyond the range while `rdkit2d`'s raw descriptors reach 19 and 290
    (docs/pipeline.md).
    """
    w = np.asarray(weak_labels, dtype=float).ravel()
    y = np.asarray(y_train, dtype=float).ravel()
    if y.size == 0:
        raise W2SGError("the range check needs the weak_train targets; got none")
    q25, q75 = np.percentile(y, [25.0, 75.0])
    scale, scale_name = float(q75 - q25), "iqr"
    if not scale > 0:
        scale, scale_name = float(np.std(y)), "sd"
    if not scale > 0:
        return None
    lo, hi = float(np.min(y)), float(np.max(y))
    finite = np.isfinite(w)
    excess = np.full(w.shape, np.inf)
    excess[finite] = np.maximum(np.maximum(lo - w[finite], w[finite] - hi), 0.0) / scale
    return {
        "n": int(w.size),
        "n_out_of_range": int(np.sum(excess > k)),
        "low": lo - k * scale,
        "high": hi + k * scale,
        "scale": scale,
        "scale_name": scale_name,
        "k": float(k),
        "max_excess": float(excess.max()) if w.size else 0.0,
    }


def _field(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def run_flags(
    *,
    task: str,
    metric: str,
    higher_is_better: bool,
    scores: Mapping[str, float],
    pgr: Mapping[str, Any],
    ceiling_baseline_se: float,
    w2s_test: ArrayLike,
    y_test: ArrayLike | None = None,
    weak_labels_range: Mapping[str, Any] | None = None,
) -> list[Flag]:
    """The flags of one run.

    ``scores``: the headline ``metric`` on test for ``weak``, ``w2s``, ``ceiling`` and
    ``baseline``; ``pgr``: metric name → a PGR result with ``code``, ``reason``, ``gap`` and
    ``gap_se`` (a :class:`~w2sg.metrics.pgr.PGRResult` or such a dict); ``ceiling_baseline_se``:
    the bootstrap standard error of ceiling − baseline; ``w2s_test``: the student's test outputs;
    ``y_test``: the test truth (for the reasons and regression scale). With sign = +1 for a score
    and −1 for an error:

    - ``weak_beats_ceiling`` / ``weak_equals_ceiling`` / ``pgr_undefined`` from each PGR's code;
    - ``small_gap`` for each PGR metric whose 0 < gap ≤ gap_se;
    - ``ceiling_at_baseline`` when sign·(ceiling − baseline) ≤ ceiling_baseline_se (or ≤ 0 when
      the standard error is NaN);
    - ``below_baseline`` for model m when sign·(m − baseline) < 0;
    - ``student_collapsed`` from :func:`collapse` of ``w2s_test``;
    - ``weak_labels_out_of_range`` when ``weak_labels_range`` (:func:`weak_label_range` of the
      weak labels on D̂, regression) counts at least one label out of range.
    """
    if task not in _BASELINE_NAME:
        raise W2SGError(f"unknown task {task!r}; use classification, regression or probability")
    sign = 1.0 if higher_is_better else -1.0
    base_name = _BASELINE_NAME[task]
    flags: list[Flag] = []
    for name, entry in pgr.items():
        code, reason = _field(entry, "code"), _field(entry, "reason")
        if code in ("weak_beats_ceiling", "weak_equals_ceiling"):
            flags.append(Flag(code, f"PGR on {name}: {reason}"))
        elif code is not None:
            flags.append(Flag("pgr_undefined", f"PGR on {name}: {reason}"))
    for name, entry in pgr.items():
        gap, gap_se = (_field(entry, k) for k in ("gap", "gap_se"))
        if gap is None or gap_se is None or not (math.isfinite(gap) and math.isfinite(gap_se)):
            continue
        if 0 < gap <= gap_se:
            flags.append(
                Flag(
                    "small_gap",
                    f"the ceiling − weak gap in {name}, {gap:.3g}, is within its bootstrap "
                    f"standard error {gap_se:.3g}: the PGR on {name} divides by noise",
                )
            )
    ceiling, base = float(scores["ceiling"]), float(scores["baseline"])
    margin = sign * (ceiling - base)
    limit = ceiling_baseline_se if math.isfinite(ceiling_baseline_se) else 0.0
    if math.isfinite(margin) and margin <= limit:
        flags.append(
            Flag(
                "ceiling_at_baseline",
                f"the ceiling's {metric} {ceiling:.4g} is not better than {base_name} "
                f"{base:.4g} by more than its standard error {limit:.3g}: the strong "
                "representation does not carry the task",
            )
        )
    for model in ("weak", "w2s", "ceiling"):
        value = float(scores[model])
        if sign * (value - base) < 0:
            worse = "below" if higher_is_better else "above"
            flags.append(
                Flag(
                    "below_baseline",
                    f"{model} {metric} {value:.4g} is {worse} {base_name} {base:.4g}",
                    model,
                )
            )
    why = collapse(task, w2s_test, y_test)
    if why is not None:
        flags.append(Flag("student_collapsed", f"the w2s student {why}"))
    wr = weak_labels_range
    if wr is not None and int(wr["n_out_of_range"]) > 0:
        scale = "IQR" if wr["scale_name"] == "iqr" else "sd"
        flags.append(
            Flag(
                "weak_labels_out_of_range",
                f"{wr['n_out_of_range']} of {wr['n']} weak labels on w2s_train lie more than "
                f"{wr['k']:g} × the weak_train targets' {scale} ({wr['scale']:.3g}) "
                f"outside [{wr['low']:.4g}, {wr['high']:.4g}] (the farthest "
                f"{wr['max_excess']:.3g} × beyond their range): the weak teacher extrapolates "
                "and the student fits those labels",
            )
        )
    return flags
