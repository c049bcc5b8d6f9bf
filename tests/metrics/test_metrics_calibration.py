"""Binned ECE against torchmetrics; the exact smooth calibration error against an independent DP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from w2sg.errors import W2SGError
from w2sg.metrics import (
    ece,
    reliability_bins,
    smooth_calibration_error,
    smooth_calibration_error_ovr,
)

SHAPES = [(n, c) for n in (7, 50, 333) for c in (2, 3, 5)]


def _torchmetrics_ece(y: np.ndarray, proba: np.ndarray, n_bins: int) -> float:
    """torchmetrics bins and sums in float32, so agreement is to about 1e-7."""
    return float(
        multiclass_calibration_error(
            torch.from_numpy(proba),
            torch.from_numpy(y.astype(np.int64)),
            num_classes=proba.shape[1],
            n_bins=n_bins,
            norm="l1",
        )
    )


def _ece_loop(soft: np.ndarray, proba: np.ndarray, n_bins: int) -> float:
    """Bin by bin: bins [k/B, (k+1)/B) and a last bin for confidence 1."""
    n = proba.shape[0]
    conf = [max(row) for row in proba]
    pred = [list(row).index(max(row)) for row in proba]
    total = 0.0
    for b in range(n_bins + 1):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n) if (lo <= conf[i] < hi if b < n_bins else conf[i] >= 1.0)]
        if members:
            acc = np.mean([soft[i, pred[i]] for i in members])
            mean_conf = np.mean([conf[i] for i in members])
            total += len(members) / n * abs(acc - mean_conf)
    return total


def _smce_lattice_dp(y: np.ndarray, p: np.ndarray, k: int) -> float:
    """Exact smCE for predictions on the lattice {j/k}, by dynamic programming over w ∈ {j/k}.

    The constraint matrix of the LP is a difference (network) matrix, so with gaps and bounds on
    the lattice every vertex, in particular an optimal one, lies on the lattice.
    """
    n = y.shape[0]
    keys = np.rint(p * k).astype(int)
    levels = sorted(set(keys.tolist()))
    r = [float(np.sum((y - p)[keys == lev])) / n for lev in levels]
    grid = np.arange(-k, k + 1) / k
    value = r[0] * grid
    for j in range(1, len(levels)):
        step = levels[j] - levels[j - 1]
        best = np.array(
            [value[max(0, g - step) : g + step + 1].max() for g in range(grid.shape[0])]
        )
        value = best + r[j] * grid
    return float(value.max())


@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_ece_matches_torchmetrics(n: int, c: int, n_bins: int) -> None:
    rng = np.random.default_rng(n * 100 + c * 10 + n_bins)
    # float32-representable probabilities: torchmetrics casts the confidences to float32.
    proba = rng.dirichlet(np.full(c, 0.5), size=n).astype(np.float32).astype(np.float64)
    y = rng.integers(0, c, size=n)
    assert ece(y, proba, n_bins) == pytest.approx(_torchmetrics_ece(y, proba, n_bins), abs=1e-6)


@pytest.mark.parametrize("n_bins", [4, 8, 16])
def test_ece_bin_edges_match_torchmetrics(n_bins: int) -> None:
    """Confidences exactly on bin edges and at 1.0 (torchmetrics bins 1.0 on its own).

    Dyadic bin counts make every edge exact in float32 and float64, as torchmetrics computes in
    float32.
    """
    torch_edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float32).numpy()
    on_edge = [k / n_bins for k in range(n_bins + 1) if k / n_bins > 0.5]
    assert all(torch_edges[round(e * n_bins)] == e for e in on_edge)
    rng = np.random.default_rng(n_bins)
    near_top = list(rng.uniform(1 - 1 / n_bins, 1.0, size=5))
    conf = np.array(on_edge * 4 + near_top + list(rng.uniform(0.5, 1.0, size=10)))
    conf = conf.astype(np.float32).astype(np.float64)
    rng.shuffle(conf)
    proba = np.column_stack([1 - conf, conf])
    y = rng.integers(0, 2, size=len(conf))
    # Wrong at confidence 1 and right just below it, so that binning 1.0 with the last bin, or
    # right-closed bins, would give another number.
    y[conf >= 1 - 1 / n_bins] = np.where(conf[conf >= 1 - 1 / n_bins] == 1.0, 0, 1)
    assert ece(y, proba, n_bins) == pytest.approx(_torchmetrics_ece(y, proba, n_bins), abs=1e-6)
    assert ece(y, proba, n_bins) == pytest.approx(_ece_loop(np.eye(2)[y], proba, n_bins), abs=1e-12)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_ece_soft_targets_match_loop(n: int, c: int) -> None:
    rng = np.random.default_rng(n + c)
    proba = rng.dirichlet(np.ones(c), size=n)
    soft = rng.dirichlet(np.ones(c), size=n)
    assert ece(soft, proba, 15) == pytest.approx(_ece_loop(soft, proba, 15), abs=1e-12)
    y = rng.integers(0, c, size=n)
    assert ece(np.eye(c)[y], proba, 7) == pytest.approx(ece(y, proba, 7), abs=1e-15)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_reliability_bins_match_a_loop_and_give_ece(n: int, c: int) -> None:
    rng = np.random.default_rng(10 * n + c)
    proba = rng.dirichlet(np.ones(c) * 0.5, size=n)
    proba[0] = np.eye(c)[0]  # a confidence of exactly 1: the last bin
    y = rng.integers(0, c, size=n)
    bins = reliability_bins(y, proba, 10)
    conf, top = proba.max(axis=1), proba.argmax(axis=1)
    for b in range(11):
        inside = (conf >= b / 10) & (conf < (b + 1) / 10) if b < 10 else conf >= 1.0
        assert bins["count"][b] == inside.sum()
        assert bins["confidence"][b] == pytest.approx(conf[inside].sum(), abs=1e-12)
        assert bins["correct"][b] == (top[inside] == y[inside]).sum()
    assert bins["count"][10] >= 1
    ece_from_bins = np.abs(np.subtract(bins["correct"], bins["confidence"])).sum() / n
    assert ece_from_bins == pytest.approx(_torchmetrics_ece(y, proba, 10), abs=1e-6)
    # pooling two samples = adding their bins
    half = n // 2
    if half >= 1:
        a, b2 = (
            reliability_bins(y[:half], proba[:half], 10),
            reliability_bins(y[half:], proba[half:], 10),
        )
        for key in ("count", "confidence", "correct"):
            assert np.add(a[key], b2[key]) == pytest.approx(bins[key], abs=1e-12)


def test_ece_rejects_bad_bins() -> None:
    with pytest.raises(W2SGError):
        ece(np.array([0, 1]), np.full((2, 2), 0.5), n_bins=0)


@pytest.mark.parametrize("n", [1, 5, 20, 60])
@pytest.mark.parametrize("k", [4, 10, 20])
@pytest.mark.parametrize("soft", [False, True])
def test_smooth_ce_matches_lattice_dp(n: int, k: int, soft: bool) -> None:
    rng = np.random.default_rng(n * 1000 + k + soft)
    p = rng.integers(0, k + 1, size=n) / k
    y = rng.uniform(size=n) if soft else (rng.uniform(size=n) < p**2).astype(float)
    assert smooth_calibration_error(y, p) == pytest.approx(_smce_lattice_dp(y, p, k), abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_smooth_ce_two_levels_closed_form(seed: int) -> None:
    """Two distinct predictions a < b: max over the box cut by |w_a − w_b| ≤ b − a, by hand."""
    rng = np.random.default_rng(seed)
    a, b = np.sort(rng.uniform(size=2))
    p = np.array([a] * 3 + [b] * 4)
    y = rng.uniform(size=7)
    ra, rb = np.sum((y - p)[:3]) / 7, np.sum((y - p)[3:]) / 7
    gap = b - a
    if ra * rb >= 0:
        expected = abs(ra) + abs(rb)
    else:
        big, small = max(abs(ra), abs(rb)), min(abs(ra), abs(rb))
        expected = big - small * (1 - gap)
    assert smooth_calibration_error(y, p) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("n", [1, 9, 40])
def test_smooth_ce_constant_prediction_is_mean_residual(n: int) -> None:
    rng = np.random.default_rng(n)
    p = np.full(n, rng.uniform())
    y = rng.integers(0, 2, size=n).astype(float)
    assert smooth_calibration_error(y, p) == pytest.approx(abs(np.mean(y - p)), abs=1e-12)


@pytest.mark.parametrize("n", [7, 50, 333])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smooth_ce_bounds_and_lipschitz(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed + 10 * n)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p**1.5).astype(float)
    value = smooth_calibration_error(y, p)
    assert abs(np.mean(y - p)) - 1e-9 <= value <= np.mean(np.abs(y - p)) + 1e-9
    # THEORY §5.2: |smCE(f) − smCE(g)| ≤ 2 mean|f − g|.
    g = np.clip(p + rng.normal(scale=0.05, size=n), 0.0, 1.0)
    bound = 2 * np.mean(np.abs(p - g))
    assert abs(value - smooth_calibration_error(y, g)) <= bound + 1e-9


def test_smooth_ce_of_calibrated_lattice_predictor_is_zero() -> None:
    # y equals p on average within each prediction level: every r_j = 0.
    p = np.array([0.25] * 4 + [0.5] * 2 + [1.0] * 3)
    y = np.array([1, 0, 0, 0, 1, 0, 1, 1, 1], dtype=float)
    assert smooth_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("c", [3, 5])
@pytest.mark.parametrize("n", [7, 50])
def test_smooth_ce_ovr_matches_lattice_dp(c: int, n: int) -> None:
    k = 10
    rng = np.random.default_rng(c * n)
    proba = np.array([rng.multinomial(k, rng.dirichlet(np.ones(c))) for _ in range(n)]) / k
    y = rng.integers(0, c, size=n)
    got = smooth_calibration_error_ovr(y, proba)
    assert len(got) == c
    for cls in range(c):
        expected = _smce_lattice_dp((y == cls).astype(float), proba[:, cls], k)
        assert got[cls] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("n", [7, 50, 333])
def test_smooth_ce_ovr_binary_is_symmetric(n: int) -> None:
    rng = np.random.default_rng(n)
    p = rng.uniform(size=n)
    y = rng.integers(0, 2, size=n)
    both = smooth_calibration_error_ovr(y, np.column_stack([1 - p, p]))
    assert both[0] == pytest.approx(both[1], abs=1e-9)


def test_smooth_ce_validates_inputs() -> None:
    with pytest.raises(W2SGError):
        smooth_calibration_error(np.array([0.0, 2.0]), np.array([0.1, 0.2]))
    with pytest.raises(W2SGError):
        smooth_calibration_error(np.array([0.0, 1.0]), np.array([0.1, 1.2]))
    with pytest.raises(W2SGError):
        smooth_calibration_error(np.array([0.0, 1.0]), np.array([0.1]))
