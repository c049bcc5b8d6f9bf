"""Convex heads for the exact misfit checks of THEORY.md sections 5.3 and 5.4.

Both heads fit a *convex* class of predictors, so the misfit inequalities hold on the training
sample when the truth lies in the class:

- :class:`LeastSquaresHead`: linear heads f(x) = θᵀh(x) + b, optionally in the ball ‖θ‖ ≤ R,
  fitted by least squares (section 5.3).
- :class:`ConvexKLHead`: affine probabilities p(x) = θᵀh(x) + b constrained to [ε, 1 − ε] on the
  training sample, fitted by minimising the reverse KL mean_x KL(p(x) ‖ q(x)) to the weak
  probabilities q (binary; section 5.4).

A sigmoid/softmax of a linear head is not a convex class; use these heads when the inequality must
be exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import brentq

from w2sg.errors import W2SGError

__all__ = ["ConvexKLHead", "LeastSquaresHead"]


def _check_matrix(H: Any, what: str) -> np.ndarray:
    H = np.asarray(H, dtype=float)
    if H.ndim != 2:
        raise W2SGError(f"{what} must be a 2-D array (n, d), got shape {H.shape}")
    if not np.isfinite(H).all():
        raise W2SGError(f"{what} contains NaN or inf; remove or impute those rows")
    return H


def _thin_svd(M: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of ``M`` truncated to its numerical rank (s > max(n, d)·machine eps·s₁)."""
    U, s, Vt = np.linalg.svd(M, full_matrices=False)
    if s.size == 0 or s[0] == 0.0:
        return U[:, :0], s[:0], Vt[:0]
    keep = s > max(M.shape) * np.finfo(float).eps * s[0]
    return U[:, keep], s[keep], Vt[keep]


class LeastSquaresHead:
    """Least squares on a linear head, optionally in the ball ‖θ‖ ≤ R.

    Solves

        θ, b = argmin (1/n) ‖H θ + b − y‖²  subject to ‖θ‖ ≤ R   (‖·‖ Frobenius for 2-D y),

    with H centred by its training column mean when ``center`` (b is then free, not in the ball,
    and equals the target mean); with ``center=False`` there is no intercept (b = 0).
    Without a radius, or when the minimum-norm least-squares solution θ₀ = H⁺ y already has
    ‖θ₀‖ ≤ R, that solution is returned. Otherwise the constraint is active and the solution is the
    ridge solution θ(β) = (HᵀH/n + β I)⁻¹ Hᵀy/n whose norm equals R: with H = U S Vᵀ (one SVD),
    ‖θ(β)‖² = Σ_j s_j² ‖u_jᵀ y‖² / (s_j² + nβ)² decreases in β, and β is found by a 1-D root find.
    ``beta_`` is that β (0 when the ball is inactive), in the ridge convention of
    :class:`w2sg.heads.ridge.RidgeHead`.

    Fitted state: ``coef_`` (d,) or (d, k), ``intercept_``, ``mean_`` (column mean of H, zeros when
    not centred), ``beta_``, ``norm_`` (‖θ‖).
    """

    def __init__(self, radius: float | None = None, center: bool = True) -> None:
        self.radius = radius
        self.center = center

    def fit(self, H: np.ndarray, y: np.ndarray) -> LeastSquaresHead:
        """Fit to targets ``y`` of shape (n,) or (n, k)."""
        if self.radius is not None and not self.radius > 0:
            raise W2SGError(f"radius must be > 0 (or None for no ball), got {self.radius}")
        H = _check_matrix(H, "H")
        y = np.asarray(y, dtype=float)
        if y.shape[:1] != H.shape[:1] or y.ndim not in (1, 2):
            raise W2SGError(
                f"targets must have shape (n,) or (n, k) with n={len(H)}, got {y.shape}"
            )
        n = H.shape[0]
        self.mean_ = H.mean(axis=0) if self.center else np.zeros(H.shape[1])
        y_mean = y.mean(axis=0) if self.center else np.zeros(y.shape[1:])
        Hc = H - self.mean_
        yc = y - y_mean
        U, s, Vt = _thin_svd(Hc)
        c = U.T @ yc  # (r,) or (r, k)
        c2 = c**2 if c.ndim == 1 else (c**2).sum(axis=1)

        def coef(lam: float) -> np.ndarray:
            w = s / (s**2 + lam)
            return Vt.T @ (w[:, None] * c if c.ndim == 2 else w * c)

        def norm(lam: float) -> float:
            return float(np.sqrt(np.sum(s**2 * c2 / (s**2 + lam) ** 2)))

        lam = 0.0
        if self.radius is not None and norm(0.0) > self.radius:
            R = float(self.radius)
            hi = float(np.sqrt(np.sum(s**2 * c2))) / R  # ‖θ(λ)‖ ≤ ‖S c‖ / λ = R here
            lam = brentq(lambda t: norm(t) - R, 0.0, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)
        self.coef_ = coef(lam)
        self.beta_ = lam / n
        self.norm_ = float(np.linalg.norm(self.coef_))
        self.intercept_: float | np.ndarray = float(y_mean) if y.ndim == 1 else y_mean
        return self

    def predict(self, H: np.ndarray) -> np.ndarray:
        """f(x) = (h(x) − mean_)ᵀ θ + b, shape (n,) or (n, k) like the targets."""
        H = _check_matrix(H, "H")
        if H.shape[1] != self.mean_.shape[0]:
            raise W2SGError(f"H has {H.shape[1]} columns; the head was fitted on {len(self.mean_)}")
        return (H - self.mean_) @ self.coef_ + self.intercept_


class ConvexKLHead:
    """Affine probability head fitted by reverse KL to weak probabilities (binary, convex).

    The model is p(x) = θᵀ(h(x) − μ) + b (μ the training column mean when ``center``, else 0; the
    intercept b is always present, so ``center`` changes only the numerics), and the fit solves the
    convex problem

        min_{θ, b}  (1/n) Σ_i KL(p_i ‖ q_i)   subject to  ε ≤ p_i ≤ 1 − ε  for every training i,

        KL(p ‖ q) = p log(p/q) + (1 − p) log((1 − p)/(1 − q)),

    where q_i is the weak positive-class probability (the student is the first argument). KL(p‖q) is
    convex in p and the constraints are linear in (θ, b), so the feasible set is a convex class and
    the KL misfit inequality of THEORY.md section 5.4 holds on the training sample when the truth is
    in the class. Weak probabilities are clipped to [``target_eps``, 1] per class and renormalised
    first (the clipping of THEORY.md section 5), so q ∈ (0, 1).

    Solver: the predictions on the sample live in the column space of [H − μ, 1]; with its thin SVD
    A = U (orthonormal, rank r ≤ n) the problem has r variables z with p = A z. A log-barrier Newton
    method (exact gradients and Hessians, t grows by ``mu`` per outer step) runs until the duality
    gap of the mean-KL objective is below max(``tol``, 1e-8); then the constraints that are active
    are fixed and Newton is run on the equality-constrained problem, which gives the KKT point to
    machine precision when the active set is right (checked: feasibility, multiplier signs and
    stationarity). If the check fails, the barrier method goes on to a gap of ``tol``.
    ``max_iter`` bounds the Newton steps (checked after each centring).

    Off the training sample an affine function can leave [ε, 1 − ε]; :meth:`predict_proba` clips to
    that interval (a no-op on the training sample).

    Fitted state: ``coef_`` (d,), ``intercept_``, ``mean_``, ``n_iter_``, ``gap_`` (duality-gap
    bound on the mean KL at the returned point; 0 after a successful active-set polish),
    ``active_`` (number of training examples at ε or 1 − ε).
    """

    def __init__(
        self,
        eps: float = 1e-3,
        center: bool = True,
        max_iter: int = 500,
        tol: float = 1e-10,
        target_eps: float = 1e-6,
        mu: float = 20.0,
    ) -> None:
        self.eps = eps
        self.center = center
        self.max_iter = max_iter
        self.tol = tol
        self.target_eps = target_eps
        self.mu = mu

    # -- public -----------------------------------------------------------------------------------
    def fit(self, H: np.ndarray, q: np.ndarray) -> ConvexKLHead:
        """Fit to weak probabilities ``q``: positive-class (n,) or a binary table (n, 2)."""
        if not 0.0 < self.eps < 0.5:
            raise W2SGError(f"eps must be in (0, 0.5), got {self.eps}")
        if not 0.0 < self.target_eps < 0.5:
            raise W2SGError(f"target_eps must be in (0, 0.5), got {self.target_eps}")
        H = _check_matrix(H, "H")
        q = self._positive_class(q, len(H))
        n = H.shape[0]
        self.mean_ = H.mean(axis=0) if self.center else np.zeros(H.shape[1])
        M = np.hstack([H - self.mean_, np.ones((n, 1))])
        A, s, Vt = _thin_svd(M)
        logit_q = np.log(q) - np.log1p(-q)
        z, self.n_iter_, self.gap_ = self._solve(A, logit_q, q)
        # p = A z = M Vᵀ S⁻¹ z, so (θ, b) = Vᵀ S⁻¹ z.
        w = Vt.T @ (z / s)
        self.coef_ = w[:-1]
        self.intercept_ = float(w[-1])
        p = A @ z
        self.active_ = int(np.sum((p - self.eps < 1e-9) | (1 - self.eps - p < 1e-9)))
        return self

    def predict_proba(self, H: np.ndarray) -> np.ndarray:
        """[1 − p(x), p(x)] with p(x) = clip(θᵀ(h(x) − μ) + b, ε, 1 − ε), shape (n, 2)."""
        H = _check_matrix(H, "H")
        if H.shape[1] != self.mean_.shape[0]:
            raise W2SGError(f"H has {H.shape[1]} columns; the head was fitted on {len(self.mean_)}")
        p = np.clip((H - self.mean_) @ self.coef_ + self.intercept_, self.eps, 1.0 - self.eps)
        return np.column_stack([1.0 - p, p])

    # -- internals --------------------------------------------------------------------------------
    def _positive_class(self, q: Any, n: int) -> np.ndarray:
        q = np.asarray(q, dtype=float)
        if q.ndim == 2:
            if q.shape[1] != 2:
                raise W2SGError(
                    f"ConvexKLHead is binary; got weak probabilities with {q.shape[1]} classes "
                    "(use --head softmax for multiclass)"
                )
            table = q
        elif q.ndim == 1:
            table = np.column_stack([1.0 - q, q])
        else:
            raise W2SGError(f"weak probabilities must be (n,) or (n, 2), got shape {q.shape}")
        if len(table) != n:
            raise W2SGError(f"weak probabilities have {len(table)} rows, H has {n}")
        if not np.isfinite(table).all() or (table < 0).any() or (table > 1).any():
            raise W2SGError("weak probabilities must lie in [0, 1]")
        clipped = np.maximum(table, self.target_eps)
        return clipped[:, 1] / clipped.sum(axis=1)

    def _solve(
        self, A: np.ndarray, logit_q: np.ndarray, q: np.ndarray
    ) -> tuple[np.ndarray, int, float]:
        n = A.shape[0]
        z = A.T @ np.full(n, 0.5)  # p = 1/2 everywhere: strictly feasible (1 ∈ col A)
        t = 1.0
        iters = 0
        # The sum-scale barrier problem t·Σ KL − Σ log(slacks) has duality gap 2n/t, i.e. 2/t on the
        # mean-KL scale. Run the barrier to a moderate gap, then polish on the active set.
        while True:
            iters += self._center(A, z, t, logit_q, q)
            gap = 2.0 / t
            if gap <= max(self.tol, 1e-8) or iters >= self.max_iter:
                break
            t *= self.mu
        polished = self._polish(A, z, logit_q)
        if polished is not None:
            return polished, iters, 0.0
        while gap > self.tol and iters < self.max_iter:
            t *= self.mu
            iters += self._center(A, z, t, logit_q, q)
            gap = 2.0 / t
        return z, iters, gap

    def _barrier(self, p: np.ndarray, t: float, q: np.ndarray) -> float:
        """t · Σ KL(p_i ‖ q_i) − Σ log(p_i − ε) − Σ log(1 − ε − p_i); inf outside the box."""
        s1, s2 = p - self.eps, 1.0 - self.eps - p
        if (s1 <= 0).any() or (s2 <= 0).any():
            return np.inf
        kl = p * (np.log(p) - np.log(q)) + (1 - p) * (np.log1p(-p) - np.log1p(-q))
        return t * float(kl.sum()) - float(np.log(s1).sum() + np.log(s2).sum())

    def _center(
        self, A: np.ndarray, z: np.ndarray, t: float, logit_q: np.ndarray, q: np.ndarray
    ) -> int:
        """Damped Newton on the barrier problem at ``t``; updates ``z`` in place, returns steps."""
        lo, hi = self.eps, 1.0 - self.eps
        n = A.shape[0]
        # Stop when the Newton decrement says the barrier problem is solved to within 1e-3 · tol
        # on the mean-KL scale (its values are t · n times that scale), or to 1e-10 absolutely.
        enough = max(1e-10, 1e-3 * self.tol * t * n)
        steps = 0
        while steps < 100:
            p = A @ z
            s1, s2 = p - lo, hi - p
            # d/dp KL(p‖q) = logit p − logit q; d²/dp² = 1 / (p (1 − p)).
            g = t * (np.log(p) - np.log1p(-p) - logit_q) - 1.0 / s1 + 1.0 / s2
            h = t / (p * (1 - p)) + 1.0 / s1**2 + 1.0 / s2**2
            grad = A.T @ g
            step = -_solve_psd((A.T * h) @ A, grad)
            decrement = float(-grad @ step)
            steps += 1
            if decrement / 2 <= enough:
                break
            Ad = A @ step
            alpha = 1.0
            down, up = Ad < 0, Ad > 0
            if down.any():
                alpha = min(alpha, 0.99 * float(np.min(s1[down] / -Ad[down])))
            if up.any():
                alpha = min(alpha, 0.99 * float(np.min(s2[up] / Ad[up])))
            f0 = self._barrier(p, t, q)
            while self._barrier(p + alpha * Ad, t, q) > f0 - 0.25 * alpha * decrement:
                alpha *= 0.5
                if alpha < 1e-16:
                    return steps
            z += alpha * step
        return steps

    def _polish(self, A: np.ndarray, z: np.ndarray, logit_q: np.ndarray) -> np.ndarray | None:
        """Newton on the problem with the (estimated) active constraints as equalities.

        Returns the KKT point of the original problem, or None when the active-set guess fails the
        checks (feasibility, multiplier signs, stationarity).
        """
        lo, hi = self.eps, 1.0 - self.eps
        p = A @ z
        at_lo = p - lo < 1e-6 * (hi - lo)
        at_hi = hi - p < 1e-6 * (hi - lo)
        active = at_lo | at_hi
        A_act = A[active]
        if active.any():
            # z = z0 + N w with A_act z0 = bound values and the columns of N spanning null(A_act).
            target = np.where(at_lo, lo, hi)[active]
            _, sa, Vta = np.linalg.svd(A_act, full_matrices=True)
            rank = int(np.sum(sa > max(A_act.shape) * np.finfo(float).eps * sa[0]))
            z0 = np.linalg.lstsq(A_act, target, rcond=None)[0]
            if np.abs(A_act @ z0 - target).max() > 1e-12:
                return None
            N = Vta[rank:].T
        else:
            z0 = np.zeros_like(z)
            N = np.eye(len(z))
        B = A @ N
        base = A @ z0
        w = N.T @ (z - z0)
        for _ in range(50):
            p = base + B @ w
            if (p <= 0).any() or (p >= 1).any():
                return None
            grad = B.T @ (np.log(p) - np.log1p(-p) - logit_q)
            step = -_solve_psd((B.T / (p * (1 - p))) @ B, grad)
            w = w + step
            if float(-grad @ step) <= 1e-30 or np.abs(step).max() <= 1e-15 * (1 + np.abs(w).max()):
                break
        p = base + B @ w
        if (p < lo - 1e-12).any() or (p > hi + 1e-12).any() or (p <= 0).any() or (p >= 1).any():
            return None
        g = np.log(p) - np.log1p(-p) - logit_q
        residual = A.T @ g
        if active.any():
            # Multipliers: Aᵀ g = A_actᵀ λ with λ ≥ 0 at ε and λ ≤ 0 at 1 − ε for a minimum.
            lam = np.linalg.lstsq(A_act.T, residual, rcond=None)[0]
            sign = np.where(at_lo[active], 1.0, -1.0)
            if (sign * lam < -1e-9 * max(1.0, float(np.abs(lam).max()))).any():
                return None
            residual = residual - A_act.T @ lam
        if np.linalg.norm(residual) > 1e-8 * max(1.0, float(np.linalg.norm(g))):
            return None
        return np.asarray(z0 + N @ w)


def _solve_psd(M: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve M x = b for a symmetric positive (semi-)definite M; least squares if singular."""
    try:
        return np.asarray(np.linalg.solve(M, b))
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.lstsq(M, b, rcond=None)[0])
