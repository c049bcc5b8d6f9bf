"""Representation kernels and the representation metric (THEORY.md sections 2–4, following [X]).

For a representation on a sample of n rows, H_c/√n = U diag(s) Vᵀ (thin SVD of the centred design
matrix; ``center=False`` skips centring) and λ_j = s_j² are the eigenvalues of Σ̂ = H_cᵀH_c/n.

- Principal part: the top k components, k chosen by ``rule`` (``"k"``, ``"variance"``,
  ``"noise_floor"``, ``"gavish_donoho"``, ``"mp_edge"``, ``"parallel_analysis"``; see
  :func:`principal_decomposition`). Every rule but ``"k"`` keeps at least one component when one is
  detectable above the Marchenko–Pastur bulk edge; k = 0 comes with a flag.
- Non-principal energy: δ = Σ_{j>k} λ_j / n, the mean eigenvalue of K^N = H^N H^Nᵀ/n.
- Effective regularisation: γ = β + δ with δ of the sample the head was trained on.
- Principal kernel operator on D̂: P = U_k diag(λ^P_i / (λ^P_i + γ)) U_kᵀ with
  λ^P_i = max(λ_i − δ̂, 0) (δ̂ of D̂ itself); ``hard=True`` gives the projection U_k U_kᵀ.
- Metrics on D̂ (n̂ rows): ‖P_s(I − P_w)‖_op, ‖P_s(I − P_w)‖_F²/n̂, and with labels the predicted
  gap G = ‖P_s(I − P_w)ŷ‖²/n̂ and the predicted weak error ‖(I − P_w)ŷ‖²/n̂.

Everything is evaluated in low rank: C = U_sᵀU_w, P_s(I − P_w)y = U_s D_s(U_sᵀy − C D_w U_wᵀy) and
M Mᵀ = D_s(I − C(2D_w − D_w²)Cᵀ)D_s for M = D_s U_sᵀ(I − P_w). No n × n matrix is ever formed; the
cost is one Gram eigendecomposition per representation (O(n d²) for d ≤ n, O(n² d) otherwise) plus
O(n k_s k_w), and the memory O(n (k_s + k_w)) beyond the input.

Labels are centred with their mean when the representations are centred (the heads then carry an
intercept). This leaves G unchanged (the columns of U are orthogonal to the constant vector) and
removes the label mean from the predicted weak error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from w2sg.config import K_RULES, KernelConfig
from w2sg.errors import W2SGError
from w2sg.heads.ridge import RidgeDecomposition, check_design, check_targets

FloatArray = NDArray[np.float64]
JSONValue = float | int | str


@dataclass(frozen=True)
class PrincipalDecomposition:
    """The principal/non-principal split of one representation on one sample.

    ``U`` (n, k): top-k left singular vectors of H_c/√n; ``s``: all min(n, d) singular values of
    H_c/√n (descending); ``eigenvalues`` λ = s²; ``k``; ``delta`` δ = Σ_{j>k} λ_j / n; ``rule``;
    ``n``; ``center``; ``isotropy`` (see :func:`isotropy`); ``detectable``: the number of singular
    values above the Marchenko–Pastur bulk edge σ̂(√n' + √d') with σ̂ from the median
    (:func:`mp_edge_count`); ``flag``: ``""``, or a one-line note when k = 0 (nothing detectable)
    or when k was raised to 1 because a component is detectable but the rule kept none.
    """

    U: FloatArray
    s: FloatArray
    eigenvalues: FloatArray
    k: int
    delta: float
    rule: str
    n: int
    center: bool
    isotropy: float
    detectable: int = 0
    flag: str = ""


def gavish_donoho_omega(beta: float) -> float:
    """ω(β) ≈ 0.56β³ − 0.95β² + 1.82β + 1.43: the optimal hard threshold of singular values,
    in units of their median, for an m × n matrix (β = m/n ≤ 1) that is low rank plus white noise
    of unknown level (Gavish & Donoho 2014, eq. 5; within 0.02 of the exact λ*(β)/√μ_β)."""
    return 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43


def gavish_donoho_lambda(beta: float) -> float:
    """λ*(β) = sqrt(2(β + 1) + 8β / ((β + 1) + sqrt(β² + 14β + 1))): the optimal hard threshold of
    singular values, in units of √N·σ, for an m × N matrix (β = m/N ≤ 1) that is low rank plus
    white noise of *known* level σ per entry (Gavish & Donoho 2014, eq. 11; λ*(1) = 4/√3)."""
    return float(
        np.sqrt(2 * (beta + 1) + 8 * beta / ((beta + 1) + np.sqrt(beta**2 + 14 * beta + 1)))
    )


def marchenko_pastur_median(beta: float) -> float:
    """μ_β: the median of the Marchenko–Pastur law with ratio β ∈ (0, 1] and unit variance, the
    law of the eigenvalues of X Xᵀ/N for an m × N matrix X of i.i.d. N(0, 1) entries (β = m/N).
    Density sqrt((b − x)(x − a)) / (2πβx) on [a, b] = [(1 − √β)², (1 + √β)²]; the median is
    found by bisection on the closed-form distribution function evaluated by quadrature."""
    from scipy import integrate, optimize

    beta = float(min(max(beta, 1e-9), 1.0))
    lo, hi = (1 - np.sqrt(beta)) ** 2, (1 + np.sqrt(beta)) ** 2

    def density(x: float) -> float:
        return float(np.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * np.pi * beta * x))

    def mass_below(m: float) -> float:
        return float(integrate.quad(density, lo, m, limit=200)[0]) - 0.5

    return float(optimize.brentq(mass_below, lo + 1e-12, hi - 1e-12, xtol=1e-10))


def _aspect(shape: tuple[int, int], size: int) -> tuple[int, int, int]:
    """(rows, cols, m): the matrix's effective shape (centring removes a row, constant columns do
    not count) and m = the number of its singular values that can be non-zero."""
    rows, cols = shape
    return rows, cols, min(rows, cols, size)


def mp_edge_threshold(
    sv: FloatArray,
    shape: tuple[int, int],
    *,
    sigma: float | None = None,
    sigma_estimate: str = "median",
) -> float:
    """The Marchenko–Pastur bulk edge σ̂(√n' + √d') of the singular values ``sv`` of an n' × d'
    noise matrix with i.i.d. entries of standard deviation σ (Marchenko & Pastur 1967; the largest
    noise singular value converges to it, Geman 1980), the threshold of :func:`mp_edge_count`.

    σ̂: ``sigma`` when known; else ``"median"``: σ̂ = median(sv) / √(N μ_β) with N = max(n', d'),
    β = min/max and μ_β the Marchenko–Pastur median (:func:`marchenko_pastur_median`), the robust
    estimator of Gavish & Donoho (2014, eq. 4); or ``"iterative"``: starting from the median count
    k, σ̂² = Σ_{j>k} sv_j² / ((n' − k)(d' − k)) (the energy of the components not kept per noise
    degree of freedom), recounting k until it no longer changes (at most 20 rounds).
    """
    rows, cols, m = _aspect(shape, sv.size)
    if m <= 0:
        return float("inf")
    edge_unit = np.sqrt(rows) + np.sqrt(cols)
    if sigma is not None:
        return float(sigma) * edge_unit
    big = max(rows, cols)
    beta = m / big
    s = sv[:m]
    sigma_hat = float(np.median(s)) / np.sqrt(big * marchenko_pastur_median(beta))
    if sigma_estimate == "iterative":
        k = int(np.sum(s > sigma_hat * edge_unit))
        for _ in range(20):
            dof = (rows - k) * (cols - k)
            if k >= m or dof <= 0:
                break
            sigma_hat = float(np.sqrt(np.sum(s[k:] ** 2) / dof))
            k_new = int(np.sum(s > sigma_hat * edge_unit))
            if k_new == k:
                break
            k = k_new
    return sigma_hat * edge_unit


def mp_edge_count(
    sv: FloatArray,
    shape: tuple[int, int],
    *,
    sigma: float | None = None,
    sigma_estimate: str = "median",
) -> int:
    """The number of singular values above the Marchenko–Pastur bulk edge
    (:func:`mp_edge_threshold`): the components detectable above white noise. A spike of population
    variance ℓ (in noise units) separates from the bulk when ℓ > sqrt(d'/n') (Baik, Ben Arous &
    Péché 2005), which is the regime the kernels need (P's shrinkage λ/(λ + γ) discounts weak
    components itself), unlike a denoising-optimal threshold such as Gavish–Donoho's, which is
    higher by a factor up to ≈ 1.5 and drops spikes that are detectable but not worth keeping for
    reconstruction."""
    _, _, m = _aspect(shape, sv.size)
    if m <= 0:
        return 0
    tau = mp_edge_threshold(sv, shape, sigma=sigma, sigma_estimate=sigma_estimate)
    return int(np.sum(sv[:m] > tau))


def parallel_analysis_count(
    H: NDArray[np.floating[Any]],
    sv: FloatArray,
    mean: FloatArray,
    *,
    quantile: float = 0.95,
    permutations: int = 5,
    seed: int = 0,
) -> int:
    """Horn's parallel analysis (Horn 1965; Buja & Eyuboglu 1992): permute every column of the
    centred matrix H_c independently (which keeps each column's distribution and destroys the
    correlations between columns), ``permutations`` times with seeds derived from ``seed``, and
    keep the components whose singular value exceeds the ``quantile`` of the *largest* singular
    value of the permuted matrices.

    Comparing with the largest permuted singular value (the null's bulk edge) rather than index by
    index is the conservative form: index-matched thresholds let the top of the data's own noise
    bulk pass as signal (Dobriban 2017, "Permutation methods for factor analysis and PCA").
    The largest singular value of each permuted matrix is exact (the smaller Gram matrix) when
    min(n, d) ≤ 2000, else from a seeded Lanczos run (ARPACK ``svds``)."""
    X = np.asarray(H, dtype=np.float64) - mean
    n, d = X.shape
    m = min(n, d, sv.size)
    if m <= 0:
        return 0
    rng = np.random.default_rng([seed, 0x9A])
    tops = []
    for _ in range(permutations):
        Xp = rng.permuted(X, axis=0)
        if min(n, d) <= 2000:
            gram = Xp @ Xp.T if n <= d else Xp.T @ Xp
            tops.append(float(np.sqrt(max(np.linalg.eigvalsh(gram)[-1], 0.0))))
        else:
            from scipy.sparse.linalg import svds

            v0 = rng.normal(size=min(n, d))
            tops.append(float(svds(Xp, k=1, v0=v0, return_singular_vectors=False)[0]))
    threshold = float(np.quantile(tops, quantile))
    return int(np.sum(sv[:m] > threshold))


def _choose_k(
    lam: FloatArray,
    rank: int,
    n_struct: int,
    rule: str,
    k: int | None,
    variance: float,
    floor: float,
    shape: tuple[int, int] = (0, 0),
    *,
    n_samples: int = 1,
    sigma: float | None = None,
    sigma_estimate: str = "median",
) -> int:
    if rule == "k":
        if k is None or not 1 <= k <= rank:
            raise W2SGError(
                f"k = {k} principal components asked for, but the representation has numerical "
                f"rank {rank}; choose k between 1 and {rank}"
            )
        return int(k)
    if rule == "variance":
        total = float(lam.sum())
        if total <= 0:
            return 0
        frac = np.cumsum(lam) / total
        return min(int(np.searchsorted(frac, variance * (1 - 1e-12))) + 1, rank)
    if rule == "gavish_donoho":
        # Singular values s_j = √λ_j of the (centred) n_rows × d matrix: keep those above
        # ω(β)·median(s), β the aspect ratio; scale-free, so the 1/√n of λ does not matter.
        # Constant columns are not noise: they add exact zero singular values. β and the median
        # both count the m = min(rows, non-constant columns) singular values of the matrix with
        # them removed (small ones included: they are the noise the threshold is set against).
        # With a known noise level σ per entry (``sigma``, in units of the matrix's entries) the
        # threshold is λ*(β)·√N·σ on the raw singular values s_j·√n_samples (eq. 11).
        rows, cols = shape
        m = min(rows, cols, lam.size)
        if m <= 0 or rank <= 0:
            return 0
        if (
            m == 1 and sigma is None
        ):  # one direction: nothing to tell apart, it is the principal part
            return 1
        beta = min(rows, cols) / max(rows, cols)
        s = np.sqrt(np.clip(lam[:m], 0.0, None))
        if sigma is not None:
            sv = s * np.sqrt(n_samples)
            tau = gavish_donoho_lambda(beta) * np.sqrt(max(rows, cols)) * sigma
            return min(int(np.sum(sv > tau)), rank)
        tau = gavish_donoho_omega(beta) * float(np.median(s))
        return min(int(np.sum(s > tau)), rank)
    if rule == "mp_edge":
        sv = np.sqrt(np.clip(lam, 0.0, None)) * np.sqrt(n_samples)
        count = mp_edge_count(sv, shape, sigma=sigma, sigma_estimate=sigma_estimate)
        return min(count, rank)
    # noise_floor: the leading components whose λ_j exceeds F × the mean of λ_{j+1..p}, where p is
    # the structural rank (centring removes one dimension; d < n caps it), stopping at the first
    # component that does not.
    m = min(rank, n_struct - 1)
    if m <= 0:
        return 0
    tail_sums = np.cumsum(lam[:n_struct][::-1])[::-1]  # Σ_{i≥j} λ_i
    rest_mean = tail_sums[1 : m + 1] / (n_struct - 1 - np.arange(m))
    fails = np.flatnonzero(lam[:m] <= floor * rest_mean)
    return int(fails[0]) if fails.size else m


def isotropy(eigenvalues: ArrayLike, k: int, n: int, center: bool = True) -> float:
    """Isotropy diagnostic ‖Q(K^N − δI)Q‖_op / δ of the non-principal Gram K^N = H^N H^Nᵀ/n.

    H^N = H_c(I − V_k V_kᵀ) is the non-principal part, δ = Σ_{j>k} λ_j / n and Q projects onto the
    orthogonal complement of the principal sample directions U_k and (when centred) of the constant
    vector, the space where K^N lives: K^N annihilates U_k and 1 exactly, so without Q the
    diagnostic would be at least 1 on every sample. It is exact and needs no matrix-vector products:
    on range(Q) the eigenvalues of K^N are λ_{k+1..p} (p = min(n − 1, d) centred, min(n, d)
    otherwise) and max(n − 1 − d, 0) (resp. n − d) zeros. NaN when δ = 0 or range(Q) is empty.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    d_struct = n - (1 if center else 0)
    p = min(d_struct, lam.size)
    tail = lam[k:p]
    delta = float(tail.sum()) / n
    if delta <= 0 or d_struct - k <= 0:
        return float("nan")
    worst = float(np.max(np.abs(tail - delta))) if tail.size else 0.0
    if d_struct - p > 0:  # K^N has zero eigenvalues on range(Q)
        worst = max(worst, delta)
    return worst / delta


def _principal_from_ridge(
    dec: RidgeDecomposition,
    *,
    rule: str,
    k: int | None,
    variance: float,
    noise_floor: float,
    sigma: float | None = None,
    sigma_estimate: str = "median",
    pa_quantile: float = 0.95,
    pa_permutations: int = 5,
    pa_seed: int = 0,
) -> PrincipalDecomposition:
    n = dec.n_samples_
    s = dec.s_ / np.sqrt(n)
    lam = s * s
    n_struct = min(n - (1 if dec.center else 0), lam.size)
    shape = (n - (1 if dec.center else 0), dec.n_active_features_)
    detectable = min(mp_edge_count(dec.s_, shape), dec.rank_)
    if rule == "parallel_analysis":
        k_chosen = min(
            parallel_analysis_count(
                dec._H,  # raw (primal) or already centred (dual)
                dec.s_,
                np.zeros(dec.n_features_) if dec.solver_ == "dual" else dec.mean_,
                quantile=pa_quantile,
                permutations=pa_permutations,
                seed=pa_seed,
            ),
            dec.rank_,
        )
    else:
        k_chosen = _choose_k(
            lam, dec.rank_, n_struct, rule, k, variance, noise_floor, shape,
            n_samples=n, sigma=sigma, sigma_estimate=sigma_estimate,
        )  # fmt: skip
    flag = ""
    if rule != "k" and k_chosen == 0:
        if detectable > 0:
            k_chosen = 1
            flag = (
                f"the {rule} rule kept no component although {detectable} lie above the noise "
                "bulk edge; k raised to 1"
            )
        else:
            flag = (
                "no component above the Marchenko–Pastur noise bulk edge: k = 0, the kernel is "
                "empty (P = 0) and this representation is predicted to express nothing"
            )
    return PrincipalDecomposition(
        U=dec.left_vectors(k_chosen),
        s=s,
        eigenvalues=lam,
        k=k_chosen,
        delta=float(lam[k_chosen:].sum()) / n,
        rule=rule,
        n=n,
        center=dec.center,
        isotropy=isotropy(lam, k_chosen, n, dec.center),
        detectable=detectable,
        flag=flag,
    )


def _check_rule(rule: str) -> None:
    if rule not in K_RULES:
        raise W2SGError(f"unknown k rule {rule!r}; use one of {', '.join(K_RULES)}")


def principal_decomposition(
    H: ArrayLike,
    *,
    rule: str = "mp_edge",
    k: int | None = None,
    variance: float = 0.90,
    noise_floor: float = 10.0,
    center: bool = True,
    sigma: float | None = None,
    sigma_estimate: str = "median",
    pa_quantile: float = 0.95,
    pa_permutations: int = 5,
    pa_seed: int = 0,
) -> PrincipalDecomposition:
    """Split a representation H (n, d) into its principal top-k part and the rest.

    With s_j the singular values of the centred matrix (n' = n − 1 rows when centred, d' its
    non-constant columns, β = min(n', d')/max(n', d')), k by ``rule``:

    - ``"k"``: ``k`` itself.
    - ``"variance"``: the smallest k with Σ_{j≤k} λ_j ≥ ``variance`` · Σ_j λ_j.
    - ``"noise_floor"``: the leading components with λ_j > ``noise_floor`` · mean(λ_{j+1..p})
      (p the structural rank), stopping at the first that fails.
    - ``"gavish_donoho"``: s_j > ω(β)·median(s) (:func:`gavish_donoho_omega`), or with a known
      noise level ``sigma`` per entry s_j > λ*(β)·√max(n', d')·σ (:func:`gavish_donoho_lambda`):
      the optimal hard threshold for *denoising* (Gavish & Donoho 2014).
    - ``"mp_edge"`` (the default): s_j above the Marchenko–Pastur bulk edge σ̂(√n' + √d'),
      σ̂ = ``sigma`` or estimated by ``sigma_estimate`` (``"median"`` or ``"iterative"``,
      :func:`mp_edge_threshold`): the components *detectable* above white noise.
    - ``"parallel_analysis"``: Horn's parallel analysis against ``pa_permutations`` seeded
      column permutations at the ``pa_quantile`` (:func:`parallel_analysis_count`); the only rule
      that needs more than the one decomposition.

    Every rule but ``"k"`` that keeps no component while one is detectable above the bulk edge
    keeps 1 instead; k = 0 happens only when nothing is detectable, and both cases set ``flag``.
    δ = Σ_{j>k} λ_j / n.

    The thin SVD comes from the eigendecomposition of the smaller Gram matrix
    (:class:`w2sg.heads.ridge.RidgeDecomposition`): for d ≤ n the d × d covariance accumulated in
    float64 over row chunks, then U_k = H_c V_k / (√n s_k) in O(n d k), so float32 input of
    n = 200 000, d = 1024 needs no float64 copy.
    """
    _check_rule(rule)
    dec = RidgeDecomposition(H, center=center)
    return _principal_from_ridge(
        dec,
        rule=rule,
        k=k,
        variance=variance,
        noise_floor=noise_floor,
        sigma=sigma,
        sigma_estimate=sigma_estimate,
        pa_quantile=pa_quantile,
        pa_permutations=pa_permutations,
        pa_seed=pa_seed,
    )


def kernel_operator(
    decomposition: PrincipalDecomposition, gamma: float, *, hard: bool = False
) -> tuple[FloatArray, FloatArray]:
    """Low-rank principal kernel operator P = U diag(D) Uᵀ on the decomposition's sample.

    D_i = λ^P_i / (λ^P_i + γ) with λ^P_i = max(λ_i − δ, 0) (δ of this sample), 0 where λ^P_i = 0;
    ``hard=True`` gives D_i = 1 (the orthogonal projection onto the principal columns).
    Returns ``(U, D)`` with U (n, k) and D (k,).
    """
    if not np.isfinite(gamma) or gamma < 0:
        raise W2SGError(f"gamma must be a finite number >= 0; got {gamma}")
    k = decomposition.k
    if hard:
        return decomposition.U, np.ones(k)
    lam_p = np.clip(decomposition.eigenvalues[:k] - decomposition.delta, 0.0, None)
    denom = lam_p + gamma
    D = np.divide(lam_p, denom, out=np.zeros(k), where=lam_p > 0)
    return decomposition.U, D


class RepresentationMetrics(NamedTuple):
    """``metrics``: JSON-able numbers (see :func:`representation_metrics`); ``scores``: the
    per-example vector [P_s(I − P_w)ŷ]_i, (n̂,) or (n̂, m), or ``None`` without labels."""

    metrics: dict[str, JSONValue]
    scores: FloatArray | None


def _gamma(override: float | None, hard: bool, beta: float, delta: float) -> float:
    if hard:
        return 0.0
    if override is not None:
        return float(override)
    return float(beta) + delta


def _k_flag(weak: PrincipalDecomposition, strong: PrincipalDecomposition) -> str:
    """``""`` when both k were chosen without incident, else the flags of both decompositions."""
    notes = [
        f"{name}: {dec.flag}" for name, dec in (("weak", weak), ("strong", strong)) if dec.flag
    ]
    return "; ".join(notes)


def _metrics_from_decompositions(
    weak: PrincipalDecomposition,
    strong: PrincipalDecomposition,
    delta_weak_train: float,
    y: FloatArray | None,
    beta_weak: float,
    beta_strong: float,
    config: KernelConfig,
) -> RepresentationMetrics:
    gamma_w = _gamma(config.gamma_weak, config.hard, beta_weak, delta_weak_train)
    gamma_s = _gamma(config.gamma_strong, config.hard, beta_strong, strong.delta)
    Uw, Dw = kernel_operator(weak, gamma_w, hard=config.hard)
    Us, Ds = kernel_operator(strong, gamma_s, hard=config.hard)
    n = strong.n
    C = Us.T @ Uw
    MMt = (Ds[:, None] * (np.eye(strong.k) - (C * (2 * Dw - Dw**2)) @ C.T)) * Ds[None, :]
    top = float(np.linalg.eigvalsh(MMt)[-1]) if strong.k else 0.0
    metrics: dict[str, JSONValue] = {
        "op_norm": float(np.sqrt(max(top, 0.0))),
        "fro_sq_over_n": float(max(np.trace(MMt), 0.0)) / n,
        "k_weak": int(weak.k),
        "k_strong": int(strong.k),
        "k_rule": config.rule,
        "k_flag": _k_flag(weak, strong),
        "detectable_weak": int(weak.detectable),
        "detectable_strong": int(strong.detectable),
        "delta_weak": float(delta_weak_train),
        "delta_strong": float(strong.delta),
        "gamma_weak": gamma_w,
        "gamma_strong": gamma_s,
        "isotropy_weak": float(weak.isotropy),
        "isotropy_strong": float(strong.isotropy),
    }
    scores: FloatArray | None = None
    if y is not None:
        Y = y[:, None] if y.ndim == 1 else y
        if config.center:
            Y = Y - Y.mean(axis=0)
        b = Uw.T @ Y
        inner = Ds[:, None] * (Us.T @ Y - C @ (Dw[:, None] * b))
        weak_residual = Y - Uw @ (Dw[:, None] * b)
        metrics["predicted_gap"] = float(np.sum(inner**2)) / n
        metrics["predicted_weak_error"] = float(np.sum(weak_residual**2)) / n
        full_scores = Us @ inner
        scores = full_scores[:, 0] if y.ndim == 1 else full_scores
    return RepresentationMetrics(metrics, scores)


def _decompose(H: ArrayLike, name: str, center: bool) -> RidgeDecomposition:
    return RidgeDecomposition(check_design(H, name), center=center)


def _principal(
    dec: RidgeDecomposition, k: int | None, config: KernelConfig, sigma: float | None = None
) -> PrincipalDecomposition:
    return _principal_from_ridge(
        dec,
        rule=config.rule,
        k=k,
        variance=config.variance,
        noise_floor=config.noise_floor,
        sigma=sigma,
        sigma_estimate=config.sigma_estimate,
        pa_quantile=config.pa_quantile,
        pa_permutations=config.pa_permutations,
        pa_seed=config.pa_seed,
    )


def _weak_train_delta(dec: RidgeDecomposition, k: int) -> float:
    """δ̃_w: the energy of the weak representation on D̃ beyond its k principal components."""
    lam = (dec.s_ / np.sqrt(dec.n_samples_)) ** 2
    return float(lam[min(k, lam.size) :].sum()) / dec.n_samples_


def representation_metrics(
    weak_hat: ArrayLike,
    strong_hat: ArrayLike,
    *,
    weak_train: ArrayLike | None = None,
    y: ArrayLike | None = None,
    beta_weak: float = 0.0,
    beta_strong: float = 0.0,
    config: KernelConfig | None = None,
) -> RepresentationMetrics:
    """The representation metric of [X] and its companions on D̂ (THEORY.md section 3).

    ``weak_hat`` (n̂, d_w) and ``strong_hat`` (n̂, d_s) are the two representations on D̂;
    ``weak_train`` (ñ, d_w), when given, is the weak representation on D̃, from which
    δ̃_w = Σ_{j>k_w} λ̃_j / ñ is taken (k_w as chosen on D̂); otherwise δ̂_w of D̂ is used.
    γ_w = β_w + δ_w, γ_s = β_s + δ̂_s unless ``config`` sets them (or ``hard``).

    ``metrics``: ``op_norm`` ‖P_s(I − P_w)‖_op, ``fro_sq_over_n`` ‖P_s(I − P_w)‖_F²/n̂, ``k_weak``,
    ``k_strong``, ``k_rule``, ``k_flag`` (``""``, or why a k is 0 or was raised to 1),
    ``detectable_weak``/``detectable_strong`` (components above the Marchenko–Pastur bulk edge,
    :func:`mp_edge_count`), ``delta_weak``, ``delta_strong``, ``gamma_weak``, ``gamma_strong``,
    ``isotropy_weak``/``isotropy_strong`` (on D̂, see :func:`isotropy`), and with labels ``y``
    ((n̂,) or (n̂, m); Frobenius norms for m > 1) ``predicted_gap`` G = ‖P_s(I − P_w)ŷ‖²/n̂ and
    ``predicted_weak_error`` ‖(I − P_w)ŷ‖²/n̂. ``scores`` = P_s(I − P_w)ŷ per example.
    """
    config = config or KernelConfig()
    config.validate()
    for name, beta in (("beta_weak", beta_weak), ("beta_strong", beta_strong)):
        if not np.isfinite(beta) or beta < 0:
            raise W2SGError(f"{name} must be a finite number >= 0; got {beta}")
    weak_dec = _decompose(weak_hat, "weak_hat", config.center)
    strong_dec = _decompose(strong_hat, "strong_hat", config.center)
    n = strong_dec.n_samples_
    if weak_dec.n_samples_ != n:
        raise W2SGError(
            f"weak_hat has {weak_dec.n_samples_} rows but strong_hat has {n}; both must be the "
            "representations of the same D̂ examples in the same order"
        )
    y_arr = None if y is None else check_targets(y, n, "y")
    weak = _principal(weak_dec, config.k_weak, config, config.noise_sigma_weak)
    strong = _principal(strong_dec, config.k_strong, config, config.noise_sigma_strong)
    if weak_train is None:
        delta_train = weak.delta
    else:
        train_dec = _decompose(weak_train, "weak_train", config.center)
        if train_dec.n_features_ != weak_dec.n_features_:
            raise W2SGError(
                f"weak_train has {train_dec.n_features_} features but weak_hat has "
                f"{weak_dec.n_features_}; pass the same weak representation on both samples"
            )
        delta_train = _weak_train_delta(train_dec, weak.k)
    return _metrics_from_decompositions(
        weak, strong, delta_train, y_arr, beta_weak, beta_strong, config
    )


def _mean_sq(A: FloatArray) -> float:
    """Mean over examples of the squared Euclidean norm (summed over outputs)."""
    A2 = A[:, None] if A.ndim == 1 else A
    return float(np.sum(A2 * A2)) / A2.shape[0]


def theory_block(
    *,
    weak_train: ArrayLike,
    weak_hat: ArrayLike,
    strong_hat: ArrayLike,
    strong_test: ArrayLike,
    y_train: ArrayLike,
    y_hat: ArrayLike,
    y_test: ArrayLike,
    beta_weak: float,
    beta_strong: float,
    config: KernelConfig | None = None,
    decompositions: dict[str, RidgeDecomposition] | None = None,
) -> dict[str, Any]:
    """Ridge-based theory of a weak-to-strong run: exact identities (section 2) and predictions
    (sections 3–4), as a JSON-able dict.

    ``decompositions``: the :class:`RidgeDecomposition` of ``weak_train`` and/or ``strong_hat``
    (keys of those names, centred as ``config.center``) when the caller has them already (the
    pipeline's own ridge heads solve from the same ones); the others are computed here.

    Ridge heads on numeric targets (regression values, ±1, one-hot; (n,) or (n, m)): the weak head
    f_w (β_w) on (``weak_train``, ``y_train``); on D̂ one decomposition of ``strong_hat`` serves
    f_w2s (labels f_w(X̂)), f_sc (labels ŷ) and the residual head g (labels e = f_w(X̂) − ŷ),
    all with β_s. Squared errors are summed over outputs and averaged over examples.

    Keys: everything of :func:`representation_metrics` (with ``weak_train``) plus

    - ``measured_gap`` = mean_T ‖g(x)‖² (= mean_T ‖f_w2s − f_sc‖², PredGap);
    - ``w2s_error``, ``ceiling_error``: test MSE of f_w2s and f_sc; ``w2s_minus_ceiling``;
    - ``cross_term`` = 2 mean_T (f_w2s − f_sc)·(f_sc − y), so that
      w2s_minus_ceiling = measured_gap + cross_term exactly;
    - ``inherited_error`` ‖S_s e‖²/n̂ and ``corrected_error`` ‖(I − S_s)e‖²/n̂, with S_s the
      in-sample smoother of the strong head (including its intercept);
    - ``weak_error_hat`` ‖e‖²/n̂; ``gap_ratio`` = predicted_gap / measured_gap (NaN if 0).
    """
    config = config or KernelConfig()
    config.validate()
    center = config.center
    given = decompositions or {}
    if any(dec.center != center for dec in given.values()):
        raise W2SGError("the decompositions given to theory_block must be centred as config")
    train_dec = given.get("weak_train") or _decompose(weak_train, "weak_train", center)
    Wh = check_design(weak_hat, "weak_hat")
    strong_dec = given.get("strong_hat") or _decompose(strong_hat, "strong_hat", center)
    St = check_design(strong_test, "strong_test")
    n_hat = strong_dec.n_samples_
    if Wh.shape[0] != n_hat:
        raise W2SGError(
            f"weak_hat has {Wh.shape[0]} rows but strong_hat has {n_hat}; both must cover D̂"
        )
    if Wh.shape[1] != train_dec.n_features_:
        raise W2SGError(
            f"weak_hat has {Wh.shape[1]} features but weak_train has {train_dec.n_features_}"
        )
    if St.shape[1] != strong_dec.n_features_:
        raise W2SGError(
            f"strong_test has {St.shape[1]} features but strong_hat has {strong_dec.n_features_}"
        )
    Ytr = check_targets(y_train, train_dec.n_samples_, "y_train")
    Yh = check_targets(y_hat, n_hat, "y_hat")
    Yt = check_targets(y_test, St.shape[0], "y_test")
    if not Ytr.shape[1:] == Yh.shape[1:] == Yt.shape[1:]:
        raise W2SGError("y_train, y_hat and y_test must have the same number of outputs")

    theta_w, b_w = train_dec.solve(Ytr, beta_weak)
    weak_pred_hat = Wh @ theta_w + b_w

    weak = _principal(
        _decompose(Wh, "weak_hat", center), config.k_weak, config, config.noise_sigma_weak
    )
    strong = _principal(strong_dec, config.k_strong, config, config.noise_sigma_strong)
    delta_train = _weak_train_delta(train_dec, weak.k)
    result = _metrics_from_decompositions(
        weak, strong, delta_train, Yh, beta_weak, beta_strong, config
    )
    out: dict[str, Any] = dict(result.metrics)
    out.update(_measured(strong_dec, St, weak_pred_hat, Yh, Yt, beta_strong))
    measured_gap = out["measured_gap"]
    out["gap_ratio"] = (
        float(out["predicted_gap"]) / measured_gap if measured_gap > 0 else float("nan")
    )
    return out


def _measured(
    strong_dec: RidgeDecomposition,
    St: NDArray[np.floating[Any]],
    weak_pred_hat: FloatArray,
    Yh: FloatArray,
    Yt: FloatArray,
    beta_strong: float,
) -> dict[str, float]:
    """The exact identities of section 2 for a strong ridge head (β_s) trained on D̂ with the
    labels ``weak_pred_hat`` (the student) and ``Yh`` (the ceiling), scored on the test rows
    ``St`` against ``Yt``: the student is linear in its labels, so θ_w2s − θ_sc is the ridge
    solution for e = weak_pred_hat − Yh, whatever produced the weak labels."""
    e = weak_pred_hat - Yh

    def fit_predict(labels: FloatArray) -> FloatArray:
        theta, b = strong_dec.solve(labels, beta_strong)
        return np.asarray(St @ theta + b, dtype=np.float64)

    f_w2s = fit_predict(weak_pred_hat)
    f_sc = fit_predict(Yh)
    gap_pred = fit_predict(e)
    inherited = strong_dec.smoother_apply(e, beta_strong)
    w2s_error = _mean_sq(f_w2s - Yt)
    ceiling_error = _mean_sq(f_sc - Yt)
    return {
        "measured_gap": _mean_sq(gap_pred),
        "w2s_error": w2s_error,
        "ceiling_error": ceiling_error,
        "w2s_minus_ceiling": w2s_error - ceiling_error,
        "cross_term": 2.0 * float(np.sum(gap_pred * (f_sc - Yt))) / St.shape[0],
        "inherited_error": _mean_sq(inherited),
        "corrected_error": _mean_sq(e - inherited),
        "weak_error_hat": _mean_sq(e),
    }


def metrics_against_many(
    fixed: ArrayLike,
    candidates: Iterable[tuple[str, ArrayLike]],
    *,
    fixed_role: str = "strong",
    y: ArrayLike | None = None,
    beta_weak: float = 0.0,
    beta_strong: float = 0.0,
    config: KernelConfig | None = None,
    workers: int | None = None,
) -> Iterator[tuple[str, dict[str, JSONValue]]]:
    """:func:`representation_metrics` of one fixed representation against many candidates, with
    the fixed side factorised once.

    ``fixed_role="strong"``: ``fixed`` is the strong representation on D̂ and every candidate a
    weak one (ranking weak supervisors for a strong model); ``"weak"``: the transpose (ranking
    strong models for one weak supervisor). Yields ``(name, metrics)`` in the candidates' order,
    each ``metrics`` equal to ``representation_metrics(weak, strong, y=y, ...)`` of that pair
    (δ_w of D̂, no ``weak_train``). Cost: one Gram eigendecomposition of ``fixed``, then one per
    candidate plus O(n k_s k_w), so linear in the number of candidates.

    ``workers`` (default: the cores this process may use): candidates decomposed at the same time,
    each on one BLAS thread (the limit is process-wide while the generator runs). Many d × d
    eigendecompositions with d ≤ 1,024 run faster side by side than one after another on threaded
    BLAS, and far faster on a busy machine, where threaded BLAS spins (measured in
    benchmarks/README.md). At most ``workers`` + 1 candidates are held at a time.
    """
    if fixed_role not in ("strong", "weak"):
        raise W2SGError(f"fixed_role must be 'strong' or 'weak'; got {fixed_role!r}")
    config = config or KernelConfig()
    config.validate()
    for name, beta in (("beta_weak", beta_weak), ("beta_strong", beta_strong)):
        if not np.isfinite(beta) or beta < 0:
            raise W2SGError(f"{name} must be a finite number >= 0; got {beta}")
    other_role = "weak" if fixed_role == "strong" else "strong"
    k_of = {"weak": config.k_weak, "strong": config.k_strong}
    sigma_of = {"weak": config.noise_sigma_weak, "strong": config.noise_sigma_strong}
    fixed_dec = _decompose(fixed, fixed_role, config.center)
    n = fixed_dec.n_samples_
    fixed_pd = _principal(fixed_dec, k_of[fixed_role], config, sigma_of[fixed_role])
    del fixed_dec
    y_arr = None if y is None else check_targets(y, n, "y")

    def one(name: str, H: ArrayLike) -> dict[str, JSONValue]:
        dec = _decompose(H, f"{other_role} candidate {name}", config.center)
        if dec.n_samples_ != n:
            raise W2SGError(
                f"{other_role} candidate {name} has {dec.n_samples_} rows but the {fixed_role} "
                f"representation has {n}; every representation must hold the same examples"
            )
        pd = _principal(dec, k_of[other_role], config, sigma_of[other_role])
        weak, strong = (pd, fixed_pd) if fixed_role == "strong" else (fixed_pd, pd)
        return _metrics_from_decompositions(
            weak, strong, weak.delta, y_arr, beta_weak, beta_strong, config
        ).metrics

    workers = _n_workers() if workers is None else max(int(workers), 1)
    if workers == 1:
        for name, H in candidates:
            yield name, one(name, H)
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), ThreadPoolExecutor(workers) as pool:
        pending: list[tuple[str, Future[dict[str, JSONValue]]]] = []
        for name, H in candidates:
            pending.append((name, pool.submit(one, name, H)))
            if len(pending) > workers:
                done_name, future = pending.pop(0)
                yield done_name, future.result()
        for done_name, future in pending:
            yield done_name, future.result()


def _n_workers() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def combined_metrics(
    weak_hats: Sequence[ArrayLike],
    strong_hat: ArrayLike,
    weights: ArrayLike,
    *,
    weak_trains: Sequence[ArrayLike] | None = None,
    y: ArrayLike | None = None,
    beta_weak: float = 0.0,
    beta_strong: float = 0.0,
    config: KernelConfig | None = None,
) -> dict[str, Any]:
    """The representation metrics of a weighted combination of M weak supervisors (docs/theory.md,
    "Several weak supervisors").

    With each member's principal kernel P_m = U_m D_m U_mᵀ on D̂ (as in
    :func:`representation_metrics`, δ̃ from ``weak_trains[m]`` when given) and weights α, the
    combination's kernel is P̄ = Σ_m α_m P_m. Returned (on D̂, n̂ rows):

    - ``op_norm`` ‖P_s(I − P̄)‖_op and ``fro_sq_over_n`` ‖P_s(I − P̄)‖_F²/n̂ (label-free);
    - with labels ``predicted_gap`` ‖P_s(I − P̄)ŷ‖²/n̂ and ``predicted_weak_error``
      ‖(I − P̄)ŷ‖²/n̂;
    - ``members``: each member's own :func:`representation_metrics` numbers.

    Exact in low rank: with B = U_sᵀ − Σ_m α_m C_m D_m U_mᵀ (k_s × n̂, C_m = U_sᵀU_m),
    P_s(I − P̄) = U_s D_s B, so ‖·‖_op² = λ_max(D_s B Bᵀ D_s) and ‖·‖_F² = tr(D_s B Bᵀ D_s); no
    n̂ × n̂ matrix is formed (memory O(n̂ (k_s + max k_m))). That P̄ŷ describes the combined weak
    labels is the approximation (X1) of each member, and holds for fixed weights only.
    """
    config = config or KernelConfig()
    config.validate()
    alpha = np.asarray(weights, dtype=np.float64)
    if alpha.ndim != 1 or alpha.size != len(weak_hats) or not np.isfinite(alpha).all():
        raise W2SGError(f"weights must be {len(weak_hats)} finite numbers, one per weak model")
    if weak_trains is not None and len(weak_trains) != len(weak_hats):
        raise W2SGError("give one weak_train representation per weak model, or none")
    strong_dec = _decompose(strong_hat, "strong_hat", config.center)
    n = strong_dec.n_samples_
    strong = _principal(strong_dec, config.k_strong, config, config.noise_sigma_strong)
    gamma_s = _gamma(config.gamma_strong, config.hard, beta_strong, strong.delta)
    Us, Ds = kernel_operator(strong, gamma_s, hard=config.hard)
    y_arr = None if y is None else check_targets(y, n, "y")
    Y = None
    if y_arr is not None:
        Y = y_arr[:, None] if y_arr.ndim == 1 else y_arr
        if config.center:
            Y = Y - Y.mean(axis=0)
    B = Us.T.copy()
    PY = None if Y is None else np.zeros_like(Y)
    members = []
    for m, H in enumerate(weak_hats):
        dec = _decompose(H, f"weak_hats[{m}]", config.center)
        if dec.n_samples_ != n:
            raise W2SGError(f"weak_hats[{m}] has {dec.n_samples_} rows but strong_hat has {n}")
        weak = _principal(dec, config.k_weak, config, config.noise_sigma_weak)
        delta = weak.delta
        if weak_trains is not None:
            delta = _weak_train_delta(
                _decompose(weak_trains[m], "weak_train", config.center), weak.k
            )
        members.append(
            _metrics_from_decompositions(weak, strong, delta, y_arr, beta_weak, beta_strong, config)
            .metrics
        )  # fmt: skip
        gamma_w = _gamma(config.gamma_weak, config.hard, beta_weak, delta)
        Uw, Dw = kernel_operator(weak, gamma_w, hard=config.hard)
        B -= alpha[m] * ((Us.T @ Uw) * Dw) @ Uw.T
        if Y is not None and PY is not None:
            PY += alpha[m] * (Uw @ (Dw[:, None] * (Uw.T @ Y)))
    M = Ds[:, None] * B
    MMt = M @ M.T
    top = float(np.linalg.eigvalsh(MMt)[-1]) if strong.k else 0.0
    out: dict[str, Any] = {
        "op_norm": float(np.sqrt(max(top, 0.0))),
        "fro_sq_over_n": float(max(np.trace(MMt), 0.0)) / n,
        "k_strong": int(strong.k),
        "weights": [float(a) for a in alpha],
    }
    if Y is not None and PY is not None:
        out["predicted_gap"] = float(np.sum((Ds[:, None] * (B @ Y)) ** 2)) / n
        out["predicted_weak_error"] = float(np.sum((Y - PY) ** 2)) / n
    out["members"] = members
    return out


def labeller_theory_block(
    *,
    strong_hat: ArrayLike,
    strong_test: ArrayLike,
    weak_labels_hat: ArrayLike,
    y_hat: ArrayLike,
    y_test: ArrayLike,
    beta_strong: float,
    config: KernelConfig | None = None,
) -> dict[str, float]:
    """The exact part of the theory block for weak labels from anywhere (a labeller, an ensemble):
    the keys ``measured_gap``, ``w2s_error``, ``ceiling_error``, ``w2s_minus_ceiling``,
    ``cross_term``, ``inherited_error``, ``corrected_error``, ``weak_error_hat`` of
    :func:`theory_block`, for ridge heads (β_s) on the strong representation trained on
    ``weak_labels_hat`` (the student) and ``y_hat`` (the ceiling), numeric targets as there."""
    config = config or KernelConfig()
    config.validate()
    strong_dec = _decompose(strong_hat, "strong_hat", config.center)
    St = check_design(strong_test, "strong_test")
    n = strong_dec.n_samples_
    Wl = check_targets(weak_labels_hat, n, "weak_labels_hat")
    Yh = check_targets(y_hat, n, "y_hat")
    Yt = check_targets(y_test, St.shape[0], "y_test")
    if Wl.shape[1:] != Yh.shape[1:] or Yh.shape[1:] != Yt.shape[1:]:
        raise W2SGError("weak_labels_hat, y_hat and y_test must have the same number of outputs")
    return _measured(strong_dec, St, Wl, Yh, Yt, beta_strong)
