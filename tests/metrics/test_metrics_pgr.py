"""PGR and its paired bootstrap against a naive loop with scikit-learn metrics."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score, roc_auc_score

from w2sg.errors import W2SGError
from w2sg.metrics import accuracy, auroc, mse, pgr, pgr_bootstrap, r2

# The function w2sg.metrics.pgr shadows the submodule of the same name as a package attribute.
pgr_module = importlib.import_module("w2sg.metrics.pgr")


@pytest.mark.parametrize("seed", range(5))
def test_pgr_formula_for_scores_and_errors(seed: int) -> None:
    rng = np.random.default_rng(seed)
    w2s = rng.uniform()
    weak, ceiling = np.sort(rng.uniform(size=2))
    assert pgr(weak, w2s, ceiling).value == pytest.approx((w2s - weak) / (ceiling - weak))
    # Read as errors, the weak model must have the larger error:
    # (err_weak − err_w2s) / (err_weak − err_ceiling).
    as_errors = pgr(ceiling, w2s, weak, higher_is_better=False)
    assert as_errors.value == pytest.approx((ceiling - w2s) / (ceiling - weak))
    assert as_errors.reason is None and as_errors.code is None


@pytest.mark.parametrize("higher", [True, False])
def test_pgr_undefined_when_the_weak_model_beats_the_ceiling(higher: bool) -> None:
    # A labeller at 0.79 accuracy, its student at 0.64 and a ceiling at 0.71: the ratio
    # (0.64 − 0.79) / (0.71 − 0.79) = 1.875 is not a recovery of anything.
    weak, w2s, ceiling = (0.79, 0.64, 0.71) if higher else (0.21, 0.36, 0.29)
    result = pgr(weak, w2s, ceiling, higher_is_better=higher, metric="accuracy")
    assert math.isnan(result.value)
    assert result.code == "weak_beats_ceiling"
    assert "accuracy" in (result.reason or "") and "would be 1.8" in (result.reason or "")
    tie = pgr(0.7, 0.8, 0.7, higher_is_better=higher)
    assert math.isnan(tie.value) and tie.code == "weak_equals_ceiling"


def test_pgr_endpoints() -> None:
    assert pgr(0.6, 0.6, 0.9).value == 0.0
    assert pgr(0.6, 0.9, 0.9).value == 1.0
    assert pgr(0.5, 0.3, 0.1, higher_is_better=False).value == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("weak", "w2s", "ceiling"),
    [(0.7, 0.8, 0.7), (0.7, 0.8, 0.7 + 1e-13), (float("nan"), 0.8, 0.9), (0.7, 0.8, float("nan"))],
)
def test_pgr_undefined_is_nan_with_reason(weak: float, w2s: float, ceiling: float) -> None:
    result = pgr(weak, w2s, ceiling)
    assert math.isnan(result.value)
    assert isinstance(result.reason, str) and result.reason


def test_pgr_tolerance_is_a_parameter() -> None:
    assert math.isnan(pgr(0.5, 0.6, 0.51, tol=0.1).value)
    assert pgr(0.5, 0.6, 0.51, tol=1e-3).value == pytest.approx(10.0)


def _naive_bootstrap(
    metric: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    preds: list[np.ndarray],
    n_boot: int,
    seed: int,
    ci: float,
    higher: bool = True,
) -> tuple[float, float, int]:
    idx = np.random.default_rng(seed).integers(0, y.shape[0], size=(n_boot, y.shape[0]))
    values = []
    for row in idx:
        weak, w2s, ceiling = (metric(y[row], p[row]) for p in preds)
        gap = (ceiling - weak) * (1.0 if higher else -1.0)
        if gap >= 1e-12 and not np.isnan([weak, w2s, ceiling]).any():
            values.append((w2s - weak) / (ceiling - weak))
    if not values:
        return float("nan"), float("nan"), 0
    low, high = np.percentile(values, [50 * (1 - ci), 50 * (1 + ci)])
    return float(low), float(high), len(values)


def _classification_preds(n: int, c: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    preds = []
    for noise in (3.0, 1.5, 0.5):
        logits = np.eye(c)[y] + noise * rng.normal(size=(n, c))
        preds.append(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))
    return y, preds


def _loop_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    # Brute force rather than scikit-learn inside the loop: its input checks cost ~1 ms a call.
    return float(np.mean(p.argmax(axis=1) == y))


def _loop_mse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((y - p) ** 2))


@pytest.mark.parametrize(
    ("n", "c", "ci"), [(7, 2, 0.95), (50, 3, 0.9), (333, 2, 0.95), (333, 5, 0.8)]
)
def test_bootstrap_accuracy_fast_path_matches_naive(n: int, c: int, ci: float) -> None:
    y, preds = _classification_preds(n, c, n + c)
    result = pgr_bootstrap(accuracy, y, *preds, higher_is_better=True, n_boot=200, seed=3, ci=ci)
    low, high, n_valid = _naive_bootstrap(_loop_accuracy, y, preds, 200, 3, ci)
    full = [accuracy_score(y, p.argmax(axis=1)) for p in preds]
    expected = pgr(*full)
    assert result.value == pytest.approx(expected.value, nan_ok=True)
    assert result.n_boot_valid == n_valid
    assert result.ci_low == pytest.approx(low, abs=1e-12, nan_ok=True)
    assert result.ci_high == pytest.approx(high, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("n", [7, 50, 333])
def test_bootstrap_mse_fast_path_matches_naive(n: int) -> None:
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    preds = [y + s * rng.normal(size=n) for s in (1.0, 0.6, 0.2)]
    result = pgr_bootstrap(mse, y, *preds, higher_is_better=False, n_boot=150, seed=1)
    low, high, n_valid = _naive_bootstrap(_loop_mse, y, preds, 150, 1, 0.95, higher=False)
    errors = [mean_squared_error(y, p) for p in preds]
    assert result.value == pytest.approx(pgr(*errors, higher_is_better=False).value)
    assert result.n_boot_valid == n_valid
    assert result.ci_low == pytest.approx(low, rel=1e-9)
    assert result.ci_high == pytest.approx(high, rel=1e-9)
    assert result.ci_low <= result.ci_high


@pytest.mark.parametrize("n", [30, 120])
def test_bootstrap_auroc_fast_path_matches_naive(n: int) -> None:
    """AUROC resamples by a weighted Mann–Whitney sum, checked against scikit-learn per resample
    (probabilities rounded to 1 decimal so that ties occur)."""
    y, preds = _classification_preds(n, 2, 11 * n)
    preds = [np.round(p, 1) for p in preds]
    result = pgr_bootstrap(auroc, y, *preds, higher_is_better=True, n_boot=60, seed=4)

    def sk_auroc(t: np.ndarray, p: np.ndarray) -> float:
        return float(roc_auc_score(t, p[:, 1])) if len(set(t.tolist())) == 2 else float("nan")

    low, high, n_valid = _naive_bootstrap(sk_auroc, y, preds, 60, 4, 0.95)
    assert result.n_boot_valid == n_valid
    assert result.ci_low == pytest.approx(low, abs=1e-10)
    assert result.ci_high == pytest.approx(high, abs=1e-10)


def test_bootstrap_chunking_does_not_change_the_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=40)
    preds = [y + s * rng.normal(size=40) for s in (1.0, 0.5, 0.1)]
    monkeypatch.setattr(pgr_module, "_CHUNK_ENTRIES", 100)  # 2 resamples per chunk
    chunked = pgr_bootstrap(mse, y, *preds, higher_is_better=False, n_boot=25, seed=9)

    def sk_r2(t: np.ndarray, p: np.ndarray) -> float:
        return float(r2_score(t, p))

    generic = pgr_bootstrap(r2, y, *preds, higher_is_better=True, n_boot=25, seed=9)
    low, high, _ = _naive_bootstrap(_loop_mse, y, preds, 25, 9, 0.95, higher=False)
    assert chunked.ci_low == pytest.approx(low, rel=1e-9)
    assert chunked.ci_high == pytest.approx(high, rel=1e-9)
    low_r2, high_r2, _ = _naive_bootstrap(sk_r2, y, preds, 25, 9, 0.95)
    assert generic.ci_low == pytest.approx(low_r2, rel=1e-9)
    assert generic.ci_high == pytest.approx(high_r2, rel=1e-9)


def test_bootstrap_drops_undefined_resamples() -> None:
    # Weak and ceiling differ on one example only: resamples without it have no PGR.
    n = 7
    y = np.zeros(n, dtype=int)
    good = np.tile([0.9, 0.1], (n, 1))
    weak = good.copy()
    weak[0] = [0.1, 0.9]
    w2s = good.copy()
    result = pgr_bootstrap(accuracy, y, weak, w2s, good, higher_is_better=True, n_boot=300)
    _, _, n_valid = _naive_bootstrap(_loop_accuracy, y, [weak, w2s, good], 300, 0, 0.95)
    assert 0 < result.n_boot_valid == n_valid < 300
    assert result.value == pytest.approx(1.0)
    assert result.ci_low == result.ci_high == pytest.approx(1.0)


def test_bootstrap_all_undefined() -> None:
    y, preds = _classification_preds(20, 2, 0)
    result = pgr_bootstrap(
        accuracy, y, preds[0], preds[1], preds[0], higher_is_better=True, n_boot=50
    )
    assert math.isnan(result.value) and math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.n_boot_valid == 0
    assert result.reason


def test_bootstrap_validates_inputs() -> None:
    y, preds = _classification_preds(20, 2, 0)
    with pytest.raises(W2SGError):
        pgr_bootstrap(accuracy, y, preds[0][:10], *preds[1:], higher_is_better=True)
    with pytest.raises(W2SGError):
        pgr_bootstrap(accuracy, y, *preds, higher_is_better=True, n_boot=0)
    with pytest.raises(W2SGError):
        pgr_bootstrap(accuracy, y, *preds, higher_is_better=True, ci=1.5)


@pytest.mark.parametrize(("n", "c"), [(40, 3), (90, 4)])
def test_bootstrap_multiclass_auroc_matches_sklearn(n: int, c: int) -> None:
    y, preds = _classification_preds(n, c, n)
    preds = [np.round(p, 2) for p in preds]
    boot = pgr_module.bootstrap_scores(auroc, y, preds, n_boot=40, seed=2)
    idx = np.random.default_rng(2).integers(0, n, size=(40, n))
    for b, row in enumerate(idx):
        for m, p in enumerate(preds):
            if len(set(y[row].tolist())) < c:  # a class missing: AUROC undefined, as auroc()
                assert math.isnan(boot[m, b])
                continue
            # macro one-vs-rest, class by class (the rounded rows no longer sum to 1)
            expected = np.mean([roc_auc_score(y[row] == k, p[row, k]) for k in range(c)])
            assert boot[m, b] == pytest.approx(expected, abs=1e-12)


def test_gap_se_is_the_sd_of_the_resampled_gap() -> None:
    y, preds = _classification_preds(200, 2, 5)
    result = pgr_bootstrap(accuracy, y, *preds, higher_is_better=True, n_boot=300, seed=7)
    idx = np.random.default_rng(7).integers(0, 200, size=(300, 200))
    gaps = [_loop_accuracy(y[r], preds[2][r]) - _loop_accuracy(y[r], preds[0][r]) for r in idx]
    assert result.gap_se == pytest.approx(np.std(gaps, ddof=1), rel=1e-12)


def test_bootstrap_interval_is_nan_when_the_weak_model_beats_the_ceiling() -> None:
    y, preds = _classification_preds(300, 2, 1)
    best, mid, worst = preds[2], preds[1], preds[0]
    result = pgr_bootstrap(accuracy, y, best, worst, mid, higher_is_better=True, n_boot=100)
    assert math.isnan(result.value) and math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.code == "weak_beats_ceiling" and result.reason


def test_median_pgr_and_pgr_of_means_against_a_hand_computation() -> None:
    # Three runs: PGRs 0.5, 0.25 and one whose weak model beats its ceiling (excluded).
    weak = np.array([0.6, 0.5, 0.8])
    w2s = np.array([0.7, 0.55, 0.7])
    ceiling = np.array([0.8, 0.7, 0.75])
    med = pgr_module.median_pgr(weak, w2s, ceiling)
    assert med.value == pytest.approx(np.median([0.5, 0.25]))
    assert (med.n_used, med.n_excluded) == (2, 1)
    # PGR of the means: (0.65 − 0.6333) / (0.75 − 0.6333)
    of_means = pgr_module.pgr_of_means(weak, w2s, ceiling)
    assert of_means.value == pytest.approx(
        (w2s.mean() - weak.mean()) / (ceiling.mean() - weak.mean())
    )
    # Errors: the same numbers as 1 − score give the same aggregations.
    as_err = pgr_module.median_pgr(1 - weak, 1 - w2s, 1 - ceiling, higher_is_better=False)
    assert as_err.value == pytest.approx(med.value)
    assert pgr_module.pgr_of_means(
        1 - weak, 1 - w2s, 1 - ceiling, higher_is_better=False
    ).value == pytest.approx(of_means.value)


def test_pgr_of_means_is_the_gap_weighted_mean_of_the_ratios() -> None:
    rng = np.random.default_rng(3)
    weak = rng.uniform(0.5, 0.6, size=9)
    ceiling = weak + rng.uniform(0.01, 0.3, size=9)
    w2s = weak + rng.uniform(-0.1, 0.3, size=9)
    gap = ceiling - weak
    expected = np.sum(gap * (w2s - weak) / gap) / gap.sum()
    assert pgr_module.pgr_of_means(weak, w2s, ceiling).value == pytest.approx(expected)
    nan_run = pgr_module.median_pgr([np.nan, 0.5], [0.6, 0.6], [0.7, 0.7])
    assert (nan_run.n_used, nan_run.n_excluded) == (1, 1)
    assert math.isnan(pgr_module.median_pgr([0.9], [0.6], [0.7]).value)
