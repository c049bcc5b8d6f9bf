"""Ridge head: against scikit-learn, the minimum-norm least-squares solution, and reuse."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from w2sg.errors import W2SGError
from w2sg.heads.ridge import RidgeDecomposition, RidgeHead


def _data(n: int, d: int, m: int | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + rng.normal(size=d)
    Y = rng.normal(size=(n,) if m is None else (n, m)) + 3.0
    return H, Y


@pytest.mark.parametrize("n,d", [(80, 10), (60, 60), (30, 90), (200, 5)])
@pytest.mark.parametrize("m", [None, 3])
@pytest.mark.parametrize("beta", [1e-3, 0.5])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_matches_sklearn_ridge(
    n: int, d: int, m: int | None, beta: float, center: bool, solver: str
) -> None:
    H, Y = _data(n, d, m)
    head = RidgeHead(beta=beta, center=center, solver=solver).fit(H, Y)
    assert (head.decomposition_ is None) == (solver == "cholesky")
    ref = Ridge(alpha=n * beta, fit_intercept=center, solver="svd").fit(H, Y)
    np.testing.assert_allclose(head.coef_, ref.coef_.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(head.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
    Ht, _ = _data(17, d, m, seed=1)
    np.testing.assert_allclose(head.predict(Ht), ref.predict(Ht), rtol=1e-8, atol=1e-10)
    assert head.coef_.shape == ((d,) if m is None else (d, m))


def test_cholesky_falls_back_to_eigh_for_tiny_beta() -> None:
    # Duplicated column: G = [[18, 18], [18, 18]] and the second Cholesky pivot rounds to a
    # negative number for tiny β; the eigh solver gives the minimum-norm solution instead.
    H = np.array([[3.0, 3.0], [-3.0, -3.0]])
    y = np.array([1.0, -1.0])
    head = RidgeHead(beta=1e-300, solver="cholesky").fit(H, y)
    assert head.decomposition_ is not None
    np.testing.assert_allclose(head.coef_, [1 / 6, 1 / 6], rtol=1e-12)


def test_float32_input_matches_float64() -> None:
    H, Y = _data(300, 40, None)
    H32 = H.astype(np.float32)
    for solver in ("eigh", "cholesky"):
        a = RidgeHead(beta=0.01, solver=solver).fit(H32, Y)
        b = RidgeHead(beta=0.01, solver=solver).fit(H32.astype(np.float64), Y)
        np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)
        np.testing.assert_allclose(a.predict(H32), b.predict(H32.astype(np.float64)), rtol=1e-10)


@pytest.mark.parametrize("n,d", [(80, 10), (30, 90), (40, 40)])
def test_ridgeless_is_minimum_norm_least_squares(n: int, d: int) -> None:
    H, Y = _data(n, d, 2)
    head = RidgeHead(beta=0.0, center=True).fit(H, Y)
    Hc = H - H.mean(axis=0)
    Yc = Y - Y.mean(axis=0)
    theta_ref = np.linalg.pinv(Hc) @ Yc
    lstsq = np.linalg.lstsq(Hc, Yc, rcond=None)[0]
    np.testing.assert_allclose(head.coef_, theta_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(head.coef_, lstsq, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(head.intercept_, Y.mean(0) - H.mean(0) @ theta_ref, rtol=1e-8)
    if d >= n:  # centred design has rank n - 1: the head interpolates
        assert head.decomposition_.rank_ == n - 1
        np.testing.assert_allclose(head.predict(H), Y, rtol=1e-8)


@pytest.mark.parametrize("n,d", [(70, 12), (25, 60)])
def test_decomposition_reuse_equals_fresh_fits(n: int, d: int) -> None:
    H, _ = _data(n, d, None)
    rng = np.random.default_rng(5)
    dec = RidgeDecomposition(H)
    for beta in (0.0, 1e-4, 0.3, 10.0):
        for _ in range(3):
            y = rng.normal(size=n)
            theta, b = dec.solve(y, beta)
            fresh = RidgeHead(beta=beta, solver="eigh").fit(H, y)
            np.testing.assert_allclose(theta, fresh.coef_, rtol=1e-12, atol=1e-14)
            assert b == pytest.approx(fresh.intercept_, rel=1e-12, abs=1e-14)
            np.testing.assert_allclose(dec.smoother_apply(y, beta), fresh.predict(H), rtol=1e-9)


@pytest.mark.parametrize("n,d,center", [(50, 8, True), (20, 45, True), (50, 8, False)])
def test_smoother_and_singular_vectors_against_dense(n: int, d: int, center: bool) -> None:
    H, Y = _data(n, d, 2)
    dec = RidgeDecomposition(H, center=center)
    Hc = H - H.mean(0) if center else H
    s_ref = np.linalg.svd(Hc, compute_uv=False)
    np.testing.assert_allclose(dec.s_[: dec.rank_], s_ref[: dec.rank_], rtol=1e-9)
    U = dec.left_vectors()
    np.testing.assert_allclose(U.T @ U, np.eye(dec.rank_), atol=1e-9)
    np.testing.assert_allclose((U * dec.s_[: dec.rank_]) @ dec.V_.T, Hc, atol=1e-9)
    beta = 0.05
    K = Hc @ Hc.T / n
    S = K @ np.linalg.inv(K + beta * np.eye(n))
    ybar = Y.mean(0) if center else 0.0
    np.testing.assert_allclose(dec.smoother_apply(Y, beta), ybar + S @ (Y - ybar), rtol=1e-9)


def test_bad_inputs_raise_w2sg_error() -> None:
    H, y = _data(20, 3, None)
    with pytest.raises(W2SGError, match="rows"):
        RidgeHead().fit(H, y[:-1])
    bad = H.copy()
    bad[0, 0] = np.nan
    with pytest.raises(W2SGError, match="NaN"):
        RidgeHead().fit(bad, y)
    with pytest.raises(W2SGError, match="beta"):
        RidgeHead(beta=-1.0).fit(H, y)
    with pytest.raises(W2SGError, match="not fitted"):
        RidgeHead().predict(H)
    with pytest.raises(W2SGError, match="features"):
        RidgeHead().fit(H, y).predict(H[:, :2])
    with pytest.raises(W2SGError, match="2-D"):
        RidgeDecomposition(y)
    with pytest.raises(W2SGError, match="solver"):
        RidgeHead(beta=0.1, solver="lsqr").fit(H, y)
    with pytest.raises(W2SGError, match="beta > 0"):
        RidgeHead(beta=0.0, solver="cholesky").fit(H, y)


def test_fit_from_a_shared_decomposition_equals_sklearn() -> None:
    """A decomposition computed once serves several heads on the same H (as in a ridge run: the
    student, the ceiling and the theory block); a decomposition of another matrix is refused."""
    rng = np.random.default_rng(4)
    H = rng.normal(size=(120, 30))
    dec = RidgeDecomposition(H)
    for Y in (rng.normal(size=120), rng.normal(size=(120, 3))):
        head = RidgeHead(beta=0.05).fit(H, Y, decomposition=dec)
        ref = Ridge(alpha=120 * 0.05).fit(H, Y)
        np.testing.assert_allclose(head.predict(H), ref.predict(H), atol=1e-9)
        assert head.decomposition_ is dec
    with pytest.raises(W2SGError, match="pass the decomposition of H itself"):
        RidgeHead(beta=0.05).fit(H[:100], rng.normal(size=100), decomposition=dec)
    with pytest.raises(W2SGError, match="center"):
        RidgeHead(beta=0.05, center=False).fit(H, rng.normal(size=120), decomposition=dec)
