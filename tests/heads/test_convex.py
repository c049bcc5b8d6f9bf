"""Convex heads: independent references for the solvers and the exact misfit inequalities."""

import numpy as np
import pytest
from scipy.optimize import minimize

from w2sg.errors import W2SGError
from w2sg.heads.convex import ConvexKLHead, LeastSquaresHead
from w2sg.heads.ridge import RidgeHead
from w2sg.theory.bounds import bounds_block, misfit_kl, misfit_sq


def _bernoulli_kl(p, q):
    return np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))


def _affine_truth(rng, n, d, low, high):
    """H and an affine truth p* = Hθ* + b with values spread over [low, high]."""
    H = rng.normal(size=(n, d))
    u = H @ rng.normal(size=d)
    u = (u - u.min()) / (u.max() - u.min())
    return H, low + (high - low) * u


def _noisy(rng, p, scale):
    """Weak probabilities: the truth perturbed in logit space."""
    return 1 / (1 + np.exp(-(np.log(p / (1 - p)) + scale * rng.normal(size=p.shape))))


# -- LeastSquaresHead --------------------------------------------------------------------------
def test_least_squares_matches_lstsq_with_intercept():
    rng = np.random.default_rng(0)
    H, y = rng.normal(size=(50, 6)), rng.normal(size=50)
    head = LeastSquaresHead().fit(H, y)
    X = np.column_stack([H, np.ones(50)])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    np.testing.assert_allclose(head.coef_, coef[:-1], atol=1e-12)
    np.testing.assert_allclose(head.predict(H), X @ coef, atol=1e-12)
    assert head.beta_ == 0.0


def test_least_squares_minimum_norm_when_underdetermined():
    rng = np.random.default_rng(1)
    H, y = rng.normal(size=(10, 30)), rng.normal(size=10)
    head = LeastSquaresHead().fit(H, y)
    Hc = H - H.mean(axis=0)
    np.testing.assert_allclose(head.coef_, np.linalg.pinv(Hc) @ (y - y.mean()), atol=1e-10)
    np.testing.assert_allclose(head.predict(H), y, atol=1e-10)  # interpolates


def test_least_squares_ball_is_ridge_on_the_boundary():
    rng = np.random.default_rng(2)
    H = rng.normal(size=(40, 5))
    y = H @ np.array([3.0, -2.0, 1.0, 0.5, 0.0]) + 0.1 * rng.normal(size=40)
    free = LeastSquaresHead().fit(H, y)
    R = 0.5 * np.linalg.norm(free.coef_)
    head = LeastSquaresHead(radius=R).fit(H, y)
    assert np.linalg.norm(head.coef_) == pytest.approx(R, rel=1e-12)
    assert head.beta_ > 0
    # Independent references: ridge with the reported β, and a generic constrained solver.
    ridge = RidgeHead(beta=head.beta_).fit(H, y)
    np.testing.assert_allclose(head.predict(H), ridge.predict(H), atol=1e-9)
    Hc, yc = H - H.mean(axis=0), y - y.mean()
    res = minimize(
        lambda t: np.mean((Hc @ t - yc) ** 2),
        np.zeros(5),
        jac=lambda t: 2 * Hc.T @ (Hc @ t - yc) / 40,
        constraints=[{"type": "ineq", "fun": lambda t: R**2 - t @ t, "jac": lambda t: -2 * t}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    ours = np.mean((Hc @ head.coef_ - yc) ** 2)
    assert ours <= res.fun + 1e-10
    np.testing.assert_allclose(head.coef_, res.x, atol=1e-5)


def test_least_squares_inactive_ball_and_multi_output():
    rng = np.random.default_rng(3)
    H, Y = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    free = LeastSquaresHead().fit(H, Y)
    loose = LeastSquaresHead(radius=2 * np.linalg.norm(free.coef_)).fit(H, Y)
    np.testing.assert_allclose(loose.coef_, free.coef_, atol=1e-14)
    assert loose.beta_ == 0.0 and loose.predict(H).shape == (30, 3)
    tight = LeastSquaresHead(radius=0.1).fit(H, Y)
    assert np.linalg.norm(tight.coef_) == pytest.approx(0.1, rel=1e-12)


def test_least_squares_errors():
    with pytest.raises(W2SGError, match="radius"):
        LeastSquaresHead(radius=-1.0).fit(np.ones((3, 2)), np.ones(3))
    with pytest.raises(W2SGError, match="targets"):
        LeastSquaresHead().fit(np.ones((3, 2)), np.ones(4))
    head = LeastSquaresHead().fit(np.random.default_rng(0).normal(size=(5, 2)), np.arange(5.0))
    with pytest.raises(W2SGError, match="columns"):
        head.predict(np.ones((2, 3)))


@pytest.mark.parametrize("radius_factor", [None, 2.0, 1.0])
def test_squared_misfit_holds_when_truth_is_in_the_class(radius_factor):
    """Truth linear in h; with a ball, the ball contains the truth (factor ≥ 1 times ‖θ*‖)."""
    rng = np.random.default_rng(4)
    H = rng.normal(size=(80, 6))
    theta = rng.normal(size=6)
    truth = H @ theta + 0.7
    weak = truth + rng.normal(scale=0.8, size=80) + 0.3 * np.sin(3 * H[:, 0])
    radius = None if radius_factor is None else radius_factor * np.linalg.norm(theta)
    head = LeastSquaresHead(radius=radius).fit(H, weak)
    out = misfit_sq(truth, weak, head.predict(H))
    assert out["holds"], out
    if radius is None:  # unconstrained linear class: equality (Pythagoras)
        assert abs(out["slack"]) < 1e-12
    else:
        assert out["slack"] >= -1e-12


def test_squared_misfit_can_fail_when_truth_is_outside_the_class():
    rng = np.random.default_rng(5)
    H = rng.normal(size=(60, 3))
    truth = np.sin(2 * H[:, 0]) + H[:, 1] ** 2  # not linear in h
    weak = truth.copy()  # slack = −2 ‖(I − P) truth‖²/n < 0
    w2s = LeastSquaresHead().fit(H, weak).predict(H)
    out = misfit_sq(truth, weak, w2s)
    assert not out["holds"] and out["slack"] < -0.1
    block = bounds_block(
        task="regression",
        head="least_squares",
        loss="xent",
        truth_hat=truth,
        truth_test=truth,
        weak_hat=weak,
        weak_test=weak,
        w2s_hat=w2s,
        w2s_test=w2s,
    )
    assert block["misfit_sq"]["train"]["holds"] is False


# -- ConvexKLHead -----------------------------------------------------------------------------
def test_convex_kl_full_rank_is_the_clipped_target():
    """d ≥ n − 1: every vector is affine in h, so the minimiser is clip(q, ε, 1 − ε) per example."""
    rng = np.random.default_rng(6)
    H = rng.normal(size=(20, 25))
    q = rng.uniform(0.0, 1.0, size=20)
    q[:3] = [0.01, 0.995, 0.5]
    head = ConvexKLHead(eps=0.05).fit(H, q)
    np.testing.assert_allclose(head.predict_proba(H)[:, 1], np.clip(q, 0.05, 0.95), atol=1e-10)
    assert head.active_ == int(np.sum((q < 0.05) | (q > 0.95)))


def test_convex_kl_matches_a_generic_constrained_solver():
    rng = np.random.default_rng(7)
    H, truth = _affine_truth(rng, 60, 3, 0.05, 0.95)
    q = _noisy(rng, truth, 1.5)
    eps = 0.1
    head = ConvexKLHead(eps=eps).fit(H, q)
    p = head.predict_proba(H)[:, 1]
    assert head.active_ > 0  # the box binds: a real constrained test
    X = np.column_stack([H - H.mean(axis=0), np.ones(60)])
    res = minimize(
        lambda w: _bernoulli_kl(X @ w, q),
        np.r_[np.zeros(3), 0.5],
        constraints=[
            {"type": "ineq", "fun": lambda w: X @ w - eps, "jac": lambda w: X},
            {"type": "ineq", "fun": lambda w: 1 - eps - X @ w, "jac": lambda w: -X},
        ],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    assert res.success
    assert _bernoulli_kl(p, q) <= res.fun + 1e-12
    np.testing.assert_allclose(p, X @ res.x, atol=1e-5)
    assert p.min() >= eps - 1e-12 and p.max() <= 1 - eps + 1e-12


@pytest.mark.parametrize(
    ("seed", "n", "d", "noise", "eps"),
    [
        (8, 200, 5, 0.5, 1e-3),
        (9, 150, 40, 1.0, 1e-3),
        (10, 100, 4, 2.0, 0.2),
        (11, 40, 60, 1.0, 0.1),
    ],
)
def test_kl_misfit_holds_when_truth_is_in_the_class(seed, n, d, noise, eps):
    rng = np.random.default_rng(seed)
    H, truth = _affine_truth(rng, n, d, eps + 0.01, 1 - eps - 0.01)
    q = _noisy(rng, truth, noise)
    head = ConvexKLHead(eps=eps).fit(H, q)
    student = head.predict_proba(H)
    table = lambda p: np.column_stack([1 - p, p])  # noqa: E731
    out = misfit_kl(table(truth), table(q), student)
    assert out["slack"] >= -1e-6
    assert out["holds"], out  # to the bounds' 1e-12 tolerance
    assert out["err_w2s"] == pytest.approx(_bernoulli_kl(truth, student[:, 1]), abs=1e-12)


def test_kl_misfit_can_fail_and_the_block_reports_it():
    rng = np.random.default_rng(12)
    H = rng.normal(size=(120, 2))
    y = (np.sin(3 * H[:, 0]) > 0).astype(int)  # not affine in h, and one-hot truth
    q = np.where(y == 1, 0.97, 0.03)  # a confident, correct teacher
    head = ConvexKLHead().fit(H, q)
    student = head.predict_proba(H)
    weak = np.column_stack([1 - q, q])
    block = bounds_block(
        task="classification",
        head="convex_kl",
        loss="reverse_kl",
        truth_hat=y,
        truth_test=y,
        weak_hat=weak,
        weak_test=weak,
        w2s_hat=student,
        w2s_test=student,
    )
    assert block["misfit_kl"]["train"]["holds"] is False
    assert block["misfit_kl"]["train"]["slack"] < 0
    assert any("outside the convex class" in note for note in block["notes"])


def test_convex_kl_accepts_tables_and_clips_off_sample():
    rng = np.random.default_rng(13)
    H, truth = _affine_truth(rng, 50, 2, 0.2, 0.8)
    q = _noisy(rng, truth, 0.3)
    a = ConvexKLHead().fit(H, q)
    b = ConvexKLHead().fit(H, np.column_stack([1 - q, q]))
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-12)
    far = a.predict_proba(100 * rng.normal(size=(30, 2)))
    assert far.shape == (30, 2)
    assert far[:, 1].min() >= a.eps and far[:, 1].max() <= 1 - a.eps
    np.testing.assert_allclose(far.sum(axis=1), 1.0)


def test_convex_kl_errors():
    H = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(W2SGError, match="binary"):
        ConvexKLHead().fit(H, np.full((10, 3), 1 / 3))
    with pytest.raises(W2SGError, match="eps"):
        ConvexKLHead(eps=0.6).fit(H, np.full(10, 0.5))
    with pytest.raises(W2SGError, match=r"\[0, 1\]"):
        ConvexKLHead().fit(H, np.full(10, 1.5))
    with pytest.raises(W2SGError, match="rows"):
        ConvexKLHead().fit(H, np.full(9, 0.5))
