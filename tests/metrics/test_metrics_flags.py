"""Flags on constructed cases, the constant baseline, and the paired standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor

from w2sg.metrics import (
    PGRValue,
    accuracy,
    baseline_predictions,
    paired_se,
    pgr,
    run_flags,
    weak_label_range,
)
from w2sg.metrics.flags import CODES, OUT_OF_RANGE_IQR, collapse


def _codes(flags: list) -> list[str]:
    return [f.code for f in flags]


def _flags(
    scores: dict[str, float], higher: bool = True, gap_se: float = 0.01, **kw: object
) -> list:
    p = pgr(scores["weak"], scores["w2s"], scores["ceiling"], higher)
    args: dict = {
        "task": "classification",
        "metric": "accuracy",
        "higher_is_better": higher,
        "scores": scores,
        "pgr": {"accuracy": {"code": p.code, "reason": p.reason, "gap": p.gap, "gap_se": gap_se}},
        "ceiling_baseline_se": 0.01,
        "w2s_test": np.eye(2)[np.arange(100) % 2],
        "y_test": np.arange(100) % 2,
    }
    args.update(kw)
    return run_flags(**args)


def test_baseline_matches_scikit_learn_dummies() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=200, p=[0.2, 0.5, 0.3])
    y_test = rng.choice(3, size=50, p=[0.2, 0.5, 0.3])
    base = baseline_predictions("classification", y, 50, 3)
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((200, 1)), y)
    np.testing.assert_allclose(base, dummy.predict_proba(np.zeros((50, 1))))
    assert accuracy(y_test, base) == pytest.approx(np.mean(y_test == np.bincount(y).argmax()))
    t = rng.normal(size=200)
    reg = DummyRegressor().fit(np.zeros((200, 1)), t).predict(np.zeros((7, 1)))
    np.testing.assert_allclose(baseline_predictions("regression", t, 7), reg)
    q = rng.uniform(size=30)
    np.testing.assert_allclose(
        baseline_predictions("probability", q, 4)[:, 1], np.full(4, q.mean())
    )


def test_no_flags_on_a_healthy_run() -> None:
    assert _flags({"weak": 0.6, "w2s": 0.7, "ceiling": 0.8, "baseline": 0.5}) == []


def test_weak_beats_ceiling_carries_the_pgr_reason() -> None:
    flags = _flags({"weak": 0.79, "w2s": 0.64, "ceiling": 0.71, "baseline": 0.5})
    assert _codes(flags) == ["weak_beats_ceiling"]
    assert "accuracy" in flags[0].reason and "undefined" in flags[0].reason


def test_pgr_undefined_for_a_nan_score() -> None:
    flags = _flags(
        {"weak": 0.6, "w2s": 0.7, "ceiling": 0.8, "baseline": 0.5},
        pgr={"auroc": PGRValue(math.nan, "an auroc is NaN", "nan_score")},
    )
    assert _codes(flags) == ["pgr_undefined"]


def test_small_gap_within_one_standard_error() -> None:
    scores = {"weak": 0.70, "w2s": 0.75, "ceiling": 0.72, "baseline": 0.5}
    assert _codes(_flags(scores, gap_se=0.03)) == ["small_gap"]
    assert _codes(_flags(scores, gap_se=0.019)) == []
    # per PGR metric: a small AUROC gap is flagged on its own, and the reason names the metric
    flags = _flags(
        scores, gap_se=0.019,
        pgr={"accuracy": {"gap": 0.02, "gap_se": 0.019},
             "auroc": {"gap": 0.01, "gap_se": 0.02}},
    )  # fmt: skip
    assert _codes(flags) == ["small_gap"] and "in auroc" in flags[0].reason


def test_ceiling_at_baseline_and_below_baseline_per_model() -> None:
    # The case: every model learns about the majority class, weak models below it.
    scores = {"weak": 0.55, "w2s": 0.59, "ceiling": 0.605, "baseline": 0.60}
    flags = _flags(scores, gap_se=0.001)
    assert _codes(flags) == ["ceiling_at_baseline", "below_baseline", "below_baseline"]
    assert [f.model for f in flags[1:]] == ["weak", "w2s"]
    assert all(f.to_dict()["model"] == f.model for f in flags[1:])
    assert "model" not in flags[0].to_dict()
    clear = {"weak": 0.55, "w2s": 0.59, "ceiling": 0.65, "baseline": 0.60}
    assert "ceiling_at_baseline" not in _codes(_flags(clear, gap_se=0.001))


def test_errors_flip_every_comparison() -> None:
    # MSE: lower is better. The ceiling's error is above the mean predictor's.
    scores = {"weak": 1.2, "w2s": 1.1, "ceiling": 1.05, "baseline": 1.0}
    flags = _flags(
        scores, higher=False, task="regression", metric="mse",
        w2s_test=np.linspace(0, 1, 50), y_test=np.linspace(0, 1, 50),
    )  # fmt: skip
    assert _codes(flags) == ["ceiling_at_baseline", *["below_baseline"] * 3]
    assert "above the mean predictor" in flags[1].reason


@pytest.mark.parametrize(("n_top", "collapsed"), [(200, True), (197, True), (190, True),
                                                  (189, False), (100, False)])  # fmt: skip
def test_student_collapsed_at_95_percent(n_top: int, collapsed: bool) -> None:
    pred = np.zeros(200, dtype=int)
    pred[n_top:] = 1
    proba = np.eye(2)[pred] * 0.6 + 0.2
    y = np.arange(200) % 2
    why = collapse("classification", proba, y)
    assert (why is not None) == collapsed
    if collapsed:
        assert f"{n_top} of 200" in why and "50.0% of that class" in why
        flags = _flags({"weak": 0.6, "w2s": 0.5, "ceiling": 0.8, "baseline": 0.5}, w2s_test=proba)
        assert _codes(flags) == ["student_collapsed"]


def test_regression_student_collapsed_when_near_constant() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    assert collapse("regression", 0.01 * y + 3.0, y) is not None
    assert collapse("regression", 0.2 * y, y) is None
    assert collapse("regression", np.full(5, 2.0), np.full(5, 2.0)) is not None


def test_paired_se_against_numpy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=500), rng.normal(size=500)
    assert paired_se(a, b) == pytest.approx(np.std(a - b, ddof=1))
    a[3] = np.nan
    assert paired_se(a, b) == pytest.approx(np.std(np.delete(a - b, 3), ddof=1))
    assert math.isnan(paired_se([1.0], [0.0]))


def test_codes_are_stable() -> None:
    assert CODES == (
        "weak_beats_ceiling", "weak_equals_ceiling", "pgr_undefined", "small_gap",
        "ceiling_at_baseline", "below_baseline", "student_collapsed", "weak_labels_out_of_range",
    )  # fmt: skip


def _brute_out_of_range(labels: np.ndarray, y: np.ndarray, k: float) -> tuple[int, float]:
    """Row by row: the count beyond [min − k·IQR, max + k·IQR] (IQR by sorted-order
    interpolation, written out) and the largest excess in IQR units."""
    ys = sorted(float(v) for v in y)

    def quantile(q: float) -> float:
        pos = q * (len(ys) - 1)
        i = int(pos)
        return ys[i] + (pos - i) * (ys[min(i + 1, len(ys) - 1)] - ys[i])

    iqr = quantile(0.75) - quantile(0.25)
    count, worst = 0, 0.0
    for v in labels:
        if not math.isfinite(v):
            count, worst = count + 1, math.inf
            continue
        excess = max(ys[0] - v, v - ys[-1], 0.0) / iqr
        count += excess > k
        worst = max(worst, excess)
    return count, worst


def test_weak_label_range_counts_rows_beyond_the_fence_like_brute_force() -> None:
    rng = np.random.default_rng(5)
    y = rng.gamma(2.0, size=400)  # skewed targets
    labels = rng.normal(y.mean(), y.std(), size=500)
    labels[[3, 70, 71]] = [y.max() + 50.0, y.min() - 9.0, np.inf]
    labels[10] = y.max() + 2.9 * (np.percentile(y, 75) - np.percentile(y, 25))  # inside the fence
    out = weak_label_range(labels, y)
    assert out is not None
    count, worst = _brute_out_of_range(labels, y, OUT_OF_RANGE_IQR)
    assert out["n_out_of_range"] == count >= 3 and out["n"] == 500
    assert out["max_excess"] == math.inf == worst
    finite = np.isfinite(labels)
    _, worst_finite = _brute_out_of_range(labels[finite], y, OUT_OF_RANGE_IQR)
    assert weak_label_range(labels[finite], y)["max_excess"] == pytest.approx(worst_finite)
    # Scale-free: the same rows for a·y + b and a·ŷ + b.
    assert weak_label_range(-7.0 * labels + 3.0, -7.0 * y + 3.0)["n_out_of_range"] == count


def test_weak_labels_inside_the_range_raise_nothing() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=300)
    labels = np.clip(rng.normal(size=300) * 1.5, y.min() - 1.0, y.max() + 1.0)
    wr = weak_label_range(labels, y)
    assert wr is not None and wr["n_out_of_range"] == 0
    scores = {"weak": 1.2, "w2s": 1.0, "ceiling": 0.5, "baseline": 2.0}
    common = {"task": "regression", "metric": "mse", "higher": False, "y_test": y,
              "w2s_test": y}  # fmt: skip
    assert "weak_labels_out_of_range" not in _codes(_flags(scores, weak_labels_range=wr, **common))
    labels[:4] = y.max() + 10.0 * wr["scale"]
    wr = weak_label_range(labels, y)
    flags = _flags(scores, weak_labels_range=wr, **common)
    assert _codes(flags)[-1] == "weak_labels_out_of_range"
    assert flags[-1].reason.startswith("4 of 300 weak labels on w2s_train")


def test_weak_label_range_falls_back_to_the_sd_and_skips_constant_targets() -> None:
    y = np.r_[np.zeros(90), np.linspace(1.0, 2.0, 10)]  # IQR 0: the sd is the scale
    out = weak_label_range(np.array([0.0, 2.0 + 3.1 * y.std(), 2.0 + 2.9 * y.std()]), y)
    assert out is not None and out["scale_name"] == "sd"
    assert out["scale"] == pytest.approx(np.std(y)) and out["n_out_of_range"] == 1
    assert weak_label_range(np.array([5.0]), np.ones(10)) is None
