"""Closed-form ridge heads with one decomposition reused across label vectors and penalties.

The objective (THEORY.md section 2) is

    θ̂ = argmin_θ (1/n)‖H_c θ − (r − r̄)‖² + β‖θ‖²,   intercept b = r̄ − μᵀθ̂,

with H_c = H − 1μᵀ the design matrix centred by its column mean μ (``center=True``; with
``center=False`` μ = 0, r̄ = 0 and there is no intercept). With the thin SVD H_c = U diag(s) Vᵀ,

    θ̂ = V diag(s / (s² + nβ)) Uᵀ (r − r̄),

so a single decomposition serves every β and every label vector. β = 0 gives the minimum-norm
least-squares solution; singular values s_i ≤ rcond · s_1 are treated as zero.

This objective equals scikit-learn's ``Ridge(alpha=n * beta, fit_intercept=center)`` divided by n.

Solver: the decomposition is the symmetric eigendecomposition of the Gram matrix of the smaller
side, computed in float64: H_cᵀH_c (d × d, accumulated over row chunks, so float32 input is never
copied whole) when d ≤ n, and H_c H_cᵀ (n × n, the dual form, never larger than H itself) when
n < d. This costs one Gram product plus one eigh, about 3–5× less than a thin SVD of H_c; the price
is that singular values below ≈ sqrt(eps) · s_1 cannot be resolved, so the default ``rcond`` is
10 · sqrt(max(n, d) · eps) rather than LAPACK's eps-level threshold. A single fit with β > 0 does
not need the eigendecomposition: :class:`RidgeHead` then solves the regularised normal equations
by Cholesky (``solver="cholesky"``, the default for β > 0, as in scikit-learn).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from w2sg.errors import W2SGError

FloatArray = NDArray[np.float64]

# Rows per chunk when a float32 (or otherwise non-float64) design matrix is multiplied in float64.
_CHUNK_ROWS = 8192


def check_design(H: ArrayLike, name: str = "H") -> NDArray[np.floating[Any]]:
    """Validate a design matrix: 2-D, at least one row and column, real, finite.

    Float arrays are returned as they are (no copy); other numeric arrays are cast to float64.
    """
    arr = np.asarray(H)
    if arr.ndim != 2:
        raise W2SGError(f"{name} must be a 2-D array (n, d); got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise W2SGError(f"{name} must have at least one row and one column; got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise W2SGError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    # A sum is NaN/inf when any entry is, and needs no n × d boolean temporary.
    if not np.isfinite(np.sum(arr, dtype=np.float64)):
        raise W2SGError(f"{name} contains NaN or inf values; remove or impute them")
    return arr


def check_targets(Y: ArrayLike, n: int, name: str = "Y") -> FloatArray:
    """Validate labels for a design with ``n`` rows: (n,) or (n, m), finite; returned as float64."""
    arr = np.asarray(Y)
    if arr.ndim not in (1, 2):
        raise W2SGError(f"{name} must have shape (n,) or (n, m); got shape {arr.shape}")
    if arr.shape[0] != n:
        raise W2SGError(f"{name} has {arr.shape[0]} rows but the design matrix has {n}; align them")
    if arr.dtype.kind not in "biuf":
        raise W2SGError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    out = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise W2SGError(f"{name} contains NaN or inf values; remove or impute them")
    return out


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not np.isfinite(beta) or beta < 0:
        raise W2SGError(f"the ridge penalty beta must be a finite number >= 0; got {beta}")
    return beta


def _row_chunks(n: int) -> list[slice]:
    return [slice(i, min(i + _CHUNK_ROWS, n)) for i in range(0, n, _CHUNK_ROWS)]


def _matmul(H: NDArray[np.floating[Any]], X: FloatArray) -> FloatArray:
    """H @ X in float64 without copying a non-float64 H whole."""
    if H.dtype == np.float64:
        return np.asarray(H @ X, dtype=np.float64)
    out = np.empty((H.shape[0],) + X.shape[1:], dtype=np.float64)
    for sl in _row_chunks(H.shape[0]):
        out[sl] = H[sl].astype(np.float64) @ X
    return out


def _rmatmul(H: NDArray[np.floating[Any]], R: FloatArray) -> FloatArray:
    """Hᵀ @ R in float64 without copying a non-float64 H whole."""
    if H.dtype == np.float64:
        return np.asarray(H.T @ R, dtype=np.float64)
    out = np.zeros((H.shape[1],) + R.shape[1:], dtype=np.float64)
    for sl in _row_chunks(H.shape[0]):
        out += H[sl].astype(np.float64).T @ R[sl]
    return out


def _centred_covariance(H: NDArray[np.floating[Any]], mean: FloatArray) -> FloatArray:
    """H_cᵀ H_c (d × d) in float64, accumulated over row chunks of H − 1μᵀ."""
    d = H.shape[1]
    gram = np.zeros((d, d), dtype=np.float64)
    for sl in _row_chunks(H.shape[0]):
        block = H[sl].astype(np.float64) - mean
        gram += block.T @ block  # numpy uses syrk for Xᵀ X
    return gram


def _eigh_descending(gram: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigenvalues (descending) and eigenvectors of a symmetric PSD Gram matrix (overwritten)."""
    evals, evecs = scipy.linalg.eigh(gram, driver="evd", overwrite_a=True, check_finite=False)
    return evals[::-1], evecs[:, ::-1]


class RidgeDecomposition:
    """Thin SVD H_c = U diag(s) Vᵀ of a (centred) training design matrix, for closed-form ridge.

    Parameters
    ----------
    H : (n, d) array
        Training design matrix (float32 input is multiplied in float64 chunk by chunk, never
        copied).
    center : bool
        Subtract the column mean μ of ``H`` (the head then has an intercept).
    rcond : float or None
        Relative cut-off: singular values s_i ≤ rcond · s_1 count as zero (they define the
        minimum-norm solution at β = 0). ``None`` means 10 · sqrt(max(n, d) · eps), the
        resolution of the Gram eigendecomposition (see the module docstring).

    Attributes
    ----------
    mean_ : (d,) column mean μ (zeros when ``center=False``).
    s_ : (min(n, d),) all singular values of H_c, descending, ≥ 0 (including those below the
        cut-off).
    rank_ : number of singular values above the cut-off.
    V_ : (d, rank_) right singular vectors of the retained singular values (computed on first use
        in the dual solver).
    solver_ : ``"primal"`` (eigh of the d × d Gram, d ≤ n) or ``"dual"`` (eigh of the n × n Gram).
    n_samples_, n_features_ : the shape of H.
    n_active_features_ : columns of H that are not constant (``center=True``) or not all zero
        (``center=False``), decided exactly, whatever their scale.

    The left singular vectors U = H_c V / s are computed on demand by :meth:`left_vectors`.
    """

    def __init__(self, H: ArrayLike, center: bool = True, rcond: float | None = None) -> None:
        Harr = check_design(H, "H")
        n, d = Harr.shape
        self.center = center
        self.n_samples_ = n
        self.n_features_ = d
        self.mean_: FloatArray = (
            np.mean(Harr, axis=0, dtype=np.float64) if center else np.zeros(d, dtype=np.float64)
        )
        self.rcond = (
            float(rcond) if rcond is not None else 10.0 * np.sqrt(max(n, d) * np.finfo(float).eps)
        )
        self._U: FloatArray | None = None
        if d <= n:
            self.solver_ = "primal"
            self._H = Harr
            evals, evecs = _eigh_descending(_centred_covariance(Harr, self.mean_))
            self.s_: FloatArray = np.sqrt(np.clip(evals, 0.0, None))
            self.rank_ = int(np.sum(self.s_ > self.rcond * self.s_[0])) if self.s_[0] > 0 else 0
            self._V: FloatArray | None = np.ascontiguousarray(evecs[:, : self.rank_])
        else:
            self.solver_ = "dual"
            Hc = np.asarray(Harr, dtype=np.float64) - self.mean_
            self._H = Hc
            evals, evecs = _eigh_descending(Hc @ Hc.T)
            self.s_ = np.sqrt(np.clip(evals, 0.0, None))
            self.rank_ = int(np.sum(self.s_ > self.rcond * self.s_[0])) if self.s_[0] > 0 else 0
            self._U = np.ascontiguousarray(evecs[:, : self.rank_])
            self._V = None
        # Exactly, whatever the columns' scales: non-constant columns (centred), non-zero ones
        # (uncentred).
        varies = np.ptp(Harr, axis=0) > 0 if center else np.any(Harr != 0, axis=0)
        self.n_active_features_ = int(np.count_nonzero(varies))

    @property
    def V_(self) -> FloatArray:
        """Right singular vectors V = H_cᵀ U / s of the retained components, (d, rank_)."""
        if self._V is None:
            assert self._U is not None
            self._V = _rmatmul(self._H, self._U) / self.s_[: self.rank_]
        return self._V

    def left_vectors(self, k: int | None = None) -> FloatArray:
        """Top-``k`` left singular vectors U_k = H_c V_k / s_k, (n, k); all retained if ``None``.

        In the primal solver they are computed from H in O(n d k) (and cached when ``k`` is None).
        """
        k = self.rank_ if k is None else int(k)
        if not 0 <= k <= self.rank_:
            raise W2SGError(
                f"asked for {k} singular vectors but the design matrix has numerical rank "
                f"{self.rank_}; ask for at most {self.rank_}"
            )
        if self._U is not None:
            return self._U[:, :k]
        Vk = self.V_[:, :k]
        Uk = (_matmul(self._H, Vk) - self.mean_ @ Vk) / self.s_[:k]
        if k == self.rank_:
            self._U = Uk
        return Uk

    def _project(self, R: FloatArray) -> FloatArray:
        """c = diag(s) Uᵀ R = Vᵀ H_cᵀ R for centred labels R (retained components only)."""
        if self._U is not None:
            return self.s_[: self.rank_, None] * (self._U.T @ R)
        HcR = _rmatmul(self._H, R) - np.outer(self.mean_, R.sum(axis=0))
        return self.V_.T @ HcR

    def _centre_labels(self, Y: ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
        Yarr = check_targets(Y, self.n_samples_, "Y")
        vector = Yarr.ndim == 1
        Y2 = Yarr[:, None] if vector else Yarr
        ybar = Y2.mean(axis=0) if self.center else np.zeros(Y2.shape[1])
        return Y2 - ybar, ybar, vector

    def _shrink(self, beta: float) -> FloatArray:
        """Per-component factors 1 / (s² + nβ) on the retained components."""
        s = self.s_[: self.rank_]
        return 1.0 / (s * s + self.n_samples_ * beta)

    def solve(self, Y: ArrayLike, beta: float) -> tuple[FloatArray, FloatArray | float]:
        """Ridge coefficients θ = V diag(s / (s² + nβ)) Uᵀ (Y − Ȳ) and intercept Ȳ − μᵀθ.

        ``Y`` is (n,) or (n, m); θ is (d,) or (d, m) and the intercept a float or (m,).
        """
        beta = _check_beta(beta)
        R, ybar, vector = self._centre_labels(Y)
        if self.solver_ == "dual":
            # θ = H_cᵀ U diag(1/(s²+nβ)) Uᵀ R: no need for V (d × n) in the dual form.
            assert self._U is not None
            alpha = self._U @ (self._shrink(beta)[:, None] * (self._U.T @ R))
            theta = _rmatmul(self._H, alpha)
        else:
            theta = self.V_ @ (self._shrink(beta)[:, None] * self._project(R))
        intercept = ybar - self.mean_ @ theta
        if vector:
            return theta[:, 0], float(intercept[0])
        return theta, intercept

    def smoother_apply(self, Y: ArrayLike, beta: float) -> FloatArray:
        """In-sample predictions Ȳ + S (Y − Ȳ) with S = U diag(s² / (s² + nβ)) Uᵀ, S never formed.

        S = K (K + βI)⁻¹ with K = H_c H_cᵀ / n. With centring, S 1 = 0, so the full smoother of the
        head with intercept is J + S with J = 11ᵀ/n. Returns an array shaped like ``Y``.
        """
        beta = _check_beta(beta)
        R, ybar, vector = self._centre_labels(Y)
        coef = self._shrink(beta)[:, None] * self._project(R)  # = diag(1/(s²+nβ)) Vᵀ H_cᵀ R
        if self._U is not None:
            fitted = self._U @ (self.s_[: self.rank_, None] * coef)
        else:
            Vc = self.V_ @ coef
            fitted = _matmul(self._H, Vc) - self.mean_ @ Vc
        out = fitted + ybar
        return out[:, 0] if vector else out


SOLVERS: tuple[str, ...] = ("auto", "eigh", "cholesky")


def _cholesky_ridge(
    H: NDArray[np.floating[Any]], R: FloatArray, mean: FloatArray, beta: float
) -> FloatArray:
    """θ = (H_cᵀH_c + nβI)⁻¹ H_cᵀR (d ≤ n) or H_cᵀ(H_cH_cᵀ + nβI)⁻¹R (n < d), by Cholesky."""
    n, d = H.shape
    if d <= n:
        gram = _centred_covariance(H, mean)
        rhs = _rmatmul(H, R) - np.outer(mean, R.sum(axis=0))
    else:
        Hc = np.asarray(H, dtype=np.float64) - mean
        gram, rhs = Hc @ Hc.T, R
    gram[np.diag_indices_from(gram)] += n * beta
    factor = scipy.linalg.cho_factor(gram, overwrite_a=True, check_finite=False)
    sol = scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    return sol if d <= n else np.asarray(Hc.T @ sol)


class RidgeHead:
    """Linear head f(h) = hᵀθ + b fitted by ridge: argmin (1/n)‖H_c θ − (y − ȳ)‖² + β‖θ‖².

    Equivalent to scikit-learn ``Ridge(alpha=n * beta, fit_intercept=center)``; β = 0 is the
    minimum-norm least-squares solution.

    ``solver``: ``"eigh"`` builds a :class:`RidgeDecomposition` (kept as ``decomposition_``,
    reusable for other β and labels; needed for β = 0); ``"cholesky"`` solves the regularised
    normal equations of the smaller side, (H_cᵀH_c + nβI)θ = H_cᵀ(y − ȳ) or the dual form, which
    is 3–5× cheaper for one β and needs β > 0 (``decomposition_`` is then ``None``; if the
    factorisation fails because nβ is below the rounding error of the Gram matrix, it falls back to
    ``"eigh"``); ``"auto"``
    (default) picks ``"cholesky"`` when β > 0 and ``"eigh"`` otherwise, like scikit-learn.

    Attributes after :meth:`fit`: ``coef_`` (d,) or (d, m), ``intercept_`` float or (m,),
    ``mean_`` (d,), ``decomposition_``.
    """

    coef_: FloatArray
    intercept_: FloatArray | float
    mean_: FloatArray
    decomposition_: RidgeDecomposition | None

    def __init__(self, beta: float = 0.0, center: bool = True, solver: str = "auto") -> None:
        self.beta = beta
        self.center = center
        self.solver = solver

    def fit(
        self, H: ArrayLike, Y: ArrayLike, decomposition: RidgeDecomposition | None = None
    ) -> RidgeHead:
        """Solve for ``Y`` ((n,) or (n, m)) at ``self.beta`` with the chosen solver.

        ``decomposition``: a :class:`RidgeDecomposition` of this very ``H`` (same centring)
        computed elsewhere, e.g. by the theory block of the same run; the head then solves from it
        (as ``"eigh"``) instead of factorising ``H`` again.
        """
        beta = _check_beta(self.beta)
        if decomposition is not None:
            shape = (decomposition.n_samples_, decomposition.n_features_)
            if decomposition.center != self.center or np.shape(H) != shape:
                raise W2SGError(
                    f"the decomposition given to RidgeHead.fit is of a {shape} matrix "
                    f"(center={decomposition.center}), not of H {np.shape(H)} "
                    f"(center={self.center}); pass the decomposition of H itself"
                )
            self.decomposition_ = decomposition
            self.coef_, self.intercept_ = decomposition.solve(Y, beta)
            self.mean_ = decomposition.mean_
            return self
        if self.solver not in SOLVERS:
            raise W2SGError(
                f"unknown ridge solver {self.solver!r}; use one of {', '.join(SOLVERS)}"
            )
        solver = ("cholesky" if beta > 0 else "eigh") if self.solver == "auto" else self.solver
        if solver == "cholesky" and beta == 0:
            raise W2SGError(
                "the cholesky ridge solver needs beta > 0; use solver='eigh' for beta=0"
            )
        self.decomposition_ = None
        if solver == "cholesky":
            Harr = check_design(H, "H")
            n, d = Harr.shape
            mean: FloatArray = (
                np.asarray(np.mean(Harr, axis=0, dtype=np.float64))
                if self.center
                else np.zeros(d, np.float64)
            )
            Yarr = check_targets(Y, n, "Y")
            Y2 = Yarr[:, None] if Yarr.ndim == 1 else Yarr
            ybar = Y2.mean(axis=0) if self.center else np.zeros(Y2.shape[1])
            try:
                theta = _cholesky_ridge(Harr, Y2 - ybar, mean, beta)
            except np.linalg.LinAlgError:
                # nβ below the rounding error of the Gram matrix: only the eigh solver is safe.
                solver = "eigh"
            else:
                intercept = ybar - mean @ theta
                self.mean_ = mean
                if Yarr.ndim == 1:
                    self.coef_, self.intercept_ = theta[:, 0], float(intercept[0])
                else:
                    self.coef_, self.intercept_ = theta, intercept
                return self
        self.decomposition_ = RidgeDecomposition(H, center=self.center)
        self.coef_, self.intercept_ = self.decomposition_.solve(Y, beta)
        self.mean_ = self.decomposition_.mean_
        return self

    def predict(self, H: ArrayLike) -> FloatArray:
        """Predictions Hθ + b, (n,) or (n, m)."""
        if not hasattr(self, "coef_"):
            raise W2SGError("this RidgeHead is not fitted yet; call fit(H, Y) first")
        Harr = check_design(H, "H")
        if Harr.shape[1] != self.coef_.shape[0]:
            raise W2SGError(
                f"H has {Harr.shape[1]} features but the head was fitted on {self.coef_.shape[0]}"
            )
        return _matmul(Harr, self.coef_) + self.intercept_
