"""Kernels of several weak supervisors (``combined_metrics``) and the labeller theory block, against
dense n × n computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from test_kernels import _dense_P_direct, _dense_split, _rep

from w2sg.config import KernelConfig
from w2sg.errors import W2SGError
from w2sg.theory.kernels import combined_metrics, labeller_theory_block, representation_metrics

RTOL = 1e-8


def _members(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 5)) * [2.0, 1.5, 1.2, 1.0, 0.8]
    y = z @ [1.0, -1.0, 0.5, 0.3, 0.2] + 0.1 * rng.normal(size=n)
    weak = [_rep(n, d, r, seed + i, z) for i, (d, r) in enumerate([(10, 2), (14, 3), (30, 4)])]
    return weak, _rep(n, 25, 5, seed + 9, z), y


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("weights", [(1 / 3, 1 / 3, 1 / 3), (0.7, 0.2, 0.1), (0.0, 1.0, 0.0)])
def test_combined_equals_dense(center: bool, weights: tuple[float, ...]) -> None:
    n, k_w, k_s, bw, bs = 50, 2, 4, 0.05, 0.1
    weak, strong, y = _members(n)
    cfg = KernelConfig(rule="k", k_weak=k_w, k_strong=k_s, center=center)
    got = combined_metrics(weak, strong, weights, y=y, beta_weak=bw, beta_strong=bs, config=cfg)
    _, _, delta_s = _dense_split(strong, k_s, center)
    Ps = _dense_P_direct(strong, k_s, bs + delta_s, center)
    Pbar = np.zeros((n, n))
    for a, W in zip(weights, weak, strict=True):
        _, _, delta_w = _dense_split(W, k_w, center)
        Pbar += a * _dense_P_direct(W, k_w, bw + delta_w, center)
    A = Ps @ (np.eye(n) - Pbar)
    yc = y - y.mean() if center else y
    assert got["op_norm"] == pytest.approx(np.linalg.norm(A, 2), rel=RTOL)
    assert got["fro_sq_over_n"] == pytest.approx(np.sum(A**2) / n, rel=RTOL)
    assert got["predicted_gap"] == pytest.approx(np.sum((A @ yc) ** 2) / n, rel=RTOL)
    weak_err = np.sum(((np.eye(n) - Pbar) @ yc) ** 2) / n
    assert got["predicted_weak_error"] == pytest.approx(weak_err, rel=RTOL)
    assert got["weights"] == pytest.approx(list(weights))
    assert len(got["members"]) == 3


def test_one_member_is_the_single_metric() -> None:
    weak, strong, y = _members(80, seed=2)
    train, _, _ = _members(90, seed=5)
    got = combined_metrics([weak[1]], strong, [1.0], weak_trains=[train[1]], y=y, beta_weak=0.01)
    ref = representation_metrics(weak[1], strong, weak_train=train[1], y=y, beta_weak=0.01).metrics
    for key in ("op_norm", "fro_sq_over_n", "predicted_gap", "predicted_weak_error"):
        assert got[key] == pytest.approx(ref[key], rel=1e-10), key
        assert got["members"][0][key] == pytest.approx(ref[key], rel=1e-10), key


def test_combined_rejects_bad_weights() -> None:
    weak, strong, _ = _members(40)
    with pytest.raises(W2SGError, match="one per weak model"):
        combined_metrics(weak, strong, [0.5, 0.5])


def test_labeller_block_equals_sklearn_ridge() -> None:
    """Student and ceiling as scikit-learn ridge fits on any weak labels; the identities hold."""
    rng = np.random.default_rng(3)
    n, n_test, d = 70, 40, 12
    S, St = rng.normal(size=(n, d)), rng.normal(size=(n_test, d))
    y_hat, y_test = rng.normal(size=n), rng.normal(size=n_test)
    weak_labels = y_hat + rng.normal(size=n) * 0.5
    beta = 0.05
    got = labeller_theory_block(
        strong_hat=S, strong_test=St, weak_labels_hat=weak_labels, y_hat=y_hat, y_test=y_test,
        beta_strong=beta,
    )  # fmt: skip
    w2s = Ridge(alpha=n * beta).fit(S, weak_labels).predict(St)
    sc = Ridge(alpha=n * beta).fit(S, y_hat).predict(St)
    assert got["w2s_error"] == pytest.approx(np.mean((w2s - y_test) ** 2), rel=1e-9)
    assert got["ceiling_error"] == pytest.approx(np.mean((sc - y_test) ** 2), rel=1e-9)
    assert got["measured_gap"] == pytest.approx(np.mean((w2s - sc) ** 2), rel=1e-9)
    assert got["w2s_minus_ceiling"] == pytest.approx(
        got["measured_gap"] + got["cross_term"], rel=1e-9
    )
    assert got["weak_error_hat"] == pytest.approx(np.mean((weak_labels - y_hat) ** 2), rel=1e-12)


def test_mixture_is_never_predicted_worse_than_its_members_mean() -> None:
    """Triangle inequality (docs/theory.md §8): ‖P_s(I − P̄)‖ ≤ Σ α_m ‖P_s(I − P_m)‖, and the same
    for √G."""
    rng = np.random.default_rng(4)
    weak, strong, y = _members(120, seed=4)
    for _ in range(5):
        alpha = rng.dirichlet(np.ones(3))
        got = combined_metrics(weak, strong, alpha, y=y, beta_weak=0.02)
        ops = np.array([m["op_norm"] for m in got["members"]])
        gaps = np.array([m["predicted_gap"] for m in got["members"]])
        assert got["op_norm"] <= alpha @ ops + 1e-12
        assert np.sqrt(got["predicted_gap"]) <= alpha @ np.sqrt(gaps) + 1e-12
