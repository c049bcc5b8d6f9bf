"""The k rules built for detection (issue 14): mp_edge, parallel_analysis, Gavish–Donoho with a
known noise level, the k = 0 flag, and the default rule on the model of THEORY.md section 4."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg.config import KernelConfig, RunConfig
from w2sg.data.synthetic import RepresentationSpec, SyntheticData, SyntheticTask, make_synthetic
from w2sg.heads.ridge import RidgeDecomposition
from w2sg.pipeline import run_pipeline
from w2sg.theory.kernels import (
    gavish_donoho_lambda,
    gavish_donoho_omega,
    marchenko_pastur_median,
    mp_edge_threshold,
    parallel_analysis_count,
    principal_decomposition,
    representation_metrics,
    theory_block,
)


def _spiked(n: int, d: int, strengths: tuple[float, ...], seed: int) -> np.ndarray:
    """White noise N(0, 1) plus rank-len(strengths) signal in random directions, spike j of
    population variance ℓ_j · sqrt(d/n) (in noise units; ℓ > 1 is above the BBP detection
    threshold, so its sample singular value separates from the bulk)."""
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n, d))
    for ell in strengths:
        v = rng.normal(size=d)
        v /= np.linalg.norm(v)
        H += np.outer(rng.normal(size=n) * np.sqrt(ell * np.sqrt(d / n)), v)
    return H


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0])
def test_marchenko_pastur_median_matches_random_matrices(beta: float) -> None:
    rng = np.random.default_rng(0)
    N = 800
    m = int(beta * N)
    X = rng.normal(size=(m, N))
    ev = np.linalg.eigvalsh(X @ X.T / N)
    assert marchenko_pastur_median(beta) == pytest.approx(float(np.median(ev)), rel=0.03)


@pytest.mark.parametrize("beta", [0.05, 0.3, 1.0])
def test_known_and_unknown_noise_gavish_donoho_agree(beta: float) -> None:
    # ω(β) = λ*(β)/√μ_β (Gavish & Donoho 2014, eq. 5 vs eq. 11); λ*(1) = 4/√3
    assert gavish_donoho_lambda(1.0) == pytest.approx(4 / np.sqrt(3))
    ratio = gavish_donoho_lambda(beta) / np.sqrt(marchenko_pastur_median(beta))
    assert ratio == pytest.approx(gavish_donoho_omega(beta), abs=0.02)


@pytest.mark.parametrize(("n", "d"), [(300, 60), (150, 1200), (200, 200)])
def test_mp_edge_matches_the_true_noise_edge_and_finds_detectable_spikes(n: int, d: int) -> None:
    """Spikes at 3×, 2.2×, 1.8× the detection threshold: all three found, by the median and the
    iterative σ̂ and with σ known; the estimated edge is within 3% of the true σ(√n' + √d)."""
    H = _spiked(n, d, (3.0, 2.2, 1.8), seed=n + d)
    sv = np.linalg.svd(H - H.mean(0), compute_uv=False)
    true_edge = np.sqrt(n - 1) + np.sqrt(d)
    assert mp_edge_threshold(sv, (n - 1, d)) == pytest.approx(true_edge, rel=0.03)
    for kwargs in ({}, {"sigma_estimate": "iterative"}, {"sigma": 1.0}):
        dec = principal_decomposition(H, rule="mp_edge", **kwargs)
        assert dec.k == 3, kwargs
        assert dec.flag == "" and dec.detectable == 3
    # the brute-force count against the true edge
    assert int(np.sum(sv > true_edge)) == 3
    # Gavish–Donoho's denoising threshold is higher: it drops spikes the kernels can use
    assert principal_decomposition(H, rule="gavish_donoho").k < 3
    assert principal_decomposition(H, rule="gavish_donoho", sigma=1.0).k < 3


def test_parallel_analysis_finds_correlated_spikes_and_is_seeded() -> None:
    H = _spiked(150, 300, (6.0, 4.0), seed=3)
    a = principal_decomposition(H, rule="parallel_analysis", pa_seed=1)
    b = principal_decomposition(H, rule="parallel_analysis", pa_seed=1)
    assert a.k == b.k == 2
    # brute force: the 95% quantile of the top singular value of 10 column permutations
    rng = np.random.default_rng(9)
    Hc = H - H.mean(0)
    tops = [np.linalg.svd(rng.permuted(Hc, axis=0), compute_uv=False)[0] for _ in range(10)]
    sv = np.linalg.svd(Hc, compute_uv=False)
    assert int(np.sum(sv > np.quantile(tops, 0.95))) == 2
    # the one rule that ignores the columns' variances alone: a single high-variance column
    # (axis-aligned, uncorrelated with the rest) is no spike for parallel analysis
    lone = np.hstack([rng.normal(size=(150, 1)) * 30.0, rng.normal(size=(150, 300))])
    pa = principal_decomposition(lone, rule="parallel_analysis")
    assert pa.k == 1 and "parallel_analysis rule kept no component" in pa.flag
    assert principal_decomposition(lone, rule="mp_edge").k == 1


def test_parallel_analysis_threshold_is_the_dense_one_on_the_same_permutations() -> None:
    """The count equals a brute-force count (dense SVD of each permuted matrix, the permutation
    stream of ``pa_seed``) at two quantiles, for a wide and a tall matrix, and every singular value
    falls on the same side of the threshold."""
    for shape in ((60, 400), (400, 60)):
        H = _spiked(*shape, (5.0, 3.5, 2.5), seed=4)
        Hc = H - H.mean(0)
        sv = np.linalg.svd(Hc, compute_uv=False)
        rng = np.random.default_rng([7, 0x9A])  # the permutation stream of pa_seed = 7
        tops = [np.linalg.svd(rng.permuted(Hc, axis=0), compute_uv=False)[0] for _ in range(5)]
        for q in (0.5, 0.95):
            expected = int(np.sum(sv > np.quantile(tops, q)))
            got = parallel_analysis_count(H, sv, H.mean(0), quantile=q, permutations=5, seed=7)
            assert got == expected, (shape, q)
        edges = sv[:6]
        for s_i in edges:
            dense = bool(s_i > np.quantile(tops, 0.95))
            assert dense == (
                parallel_analysis_count(H, np.array([s_i]), H.mean(0), permutations=5, seed=7) == 1
            )


def test_pure_noise_gives_k_zero_with_a_flag_and_a_spike_is_never_dropped() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(size=(150, 600))
    for rule in ("mp_edge", "gavish_donoho", "noise_floor", "parallel_analysis"):
        dec = principal_decomposition(noise, rule=rule)
        assert dec.k == 0 and dec.detectable == 0
        assert "no component above" in dec.flag
    # one spike 1.6× above detection: below Gavish–Donoho and the noise floor, but detectable,
    # so no rule returns k = 0 for it
    H = _spiked(150, 600, (1.6,), seed=11)
    for rule in ("mp_edge", "gavish_donoho", "noise_floor"):
        dec = principal_decomposition(H, rule=rule)
        assert dec.k == 1, rule
        assert dec.detectable == 1
    assert "raised to 1" in principal_decomposition(H, rule="noise_floor").flag
    m = representation_metrics(noise, H, config=KernelConfig(rule="noise_floor")).metrics
    assert m["k_weak"] == 0 and m["k_strong"] == 1
    assert str(m["k_flag"]).startswith("weak: no component above")
    assert "strong:" in str(m["k_flag"])


def test_new_kernel_fields_stay_out_of_the_hash_at_their_default() -> None:
    explicit = RunConfig(kernel=KernelConfig(rule="variance", variance=0.9))
    assert "pa_quantile" not in explicit.identity()["kernel"]
    assert set(explicit.identity()["kernel"]) == {
        "rule", "k_weak", "k_strong", "variance", "noise_floor", "hard",
        "gamma_weak", "gamma_strong", "center",
    }  # fmt: skip
    other = RunConfig(kernel=KernelConfig(rule="parallel_analysis", pa_permutations=9))
    assert other.identity()["kernel"]["pa_permutations"] == 9
    assert other.hash() != RunConfig(kernel=KernelConfig(rule="parallel_analysis")).hash()
    for bad in (
        KernelConfig(sigma_estimate="mean"),
        KernelConfig(noise_sigma_weak=0.0),
        KernelConfig(pa_quantile=1.0),
        KernelConfig(pa_permutations=0),
    ):
        with pytest.raises(Exception, match="sigma|pa_"):
            bad.validate()


#: The true k of the weak models of :func:`_issue_regime_half` (the strong model has 12).
HALF_WEAK_K = (2, 4, 5, 6, 7, 8)


def _issue_regime_half() -> tuple[SyntheticData, SyntheticData, SyntheticData]:
    """Issue 14's regime at half its size, every ratio kept: n = 180 per split (not 360), noise
    blocks of 10,000 / 4,000 dimensions (not 20,000 / 8,000; the same d/n), half the principal
    coordinates (strong 12, weak 2, 4, 5, 6, 7, 8; the same n/k) with principal energies from 7×
    to 0.65× the noise eigenvalue c/n as in benchmarks/bench_k_rules.py. Returns the samples
    D̃, D̂ and the test split (seeds 1, 2, 3)."""
    n = 180
    energies = np.geomspace(0.02, 0.0018, 12) * 360 / n
    task = SyntheticTask(
        latent_dim=12,
        energies=tuple(float(e) for e in energies),
        label_noise=0.1 * float(np.sqrt(energies.sum())),
    )
    specs = {"strong": RepresentationSpec(tuple(range(12)), noise_dim=9988, rotate=True)}
    for i, k in enumerate(HALF_WEAK_K):
        specs[f"w{i}"] = RepresentationSpec(tuple(range(k)), noise_dim=4000 - k, rotate=True)
    tr, hat, te = (make_synthetic(n, task, specs, seed=s) for s in (1, 2, 3))
    return tr, hat, te


def _assert_issue_target(k_strong: int, k_weak: list[int], ratios: list[float]) -> None:
    """The issue's done-when: k within 2× of the truth for the strong model and ≥ 5 of 6 weak
    ones, G / measured gap within 30% for every weak model."""
    assert 6 <= k_strong <= 24, k_strong
    assert sum(k / 2 <= kw <= 2 * k for kw, k in zip(k_weak, HALF_WEAK_K, strict=True)) >= 5, k_weak
    assert all(abs(r - 1) <= 0.3 for r in ratios), ratios


def test_mp_edge_on_the_issue_regime_at_reduced_scale() -> None:
    """On :func:`_issue_regime_half`, ``mp_edge`` (median σ̂, named explicitly) meets the issue's
    target (:func:`_assert_issue_target`) in :func:`theory_block`."""
    weak_k = HALF_WEAK_K
    tr, hat, te = _issue_regime_half()
    config = KernelConfig(rule="mp_edge")
    k_weak, ratios = [], []
    strong_dec = RidgeDecomposition(hat.representations["strong"])
    for i in range(len(weak_k)):
        out = theory_block(
            weak_train=tr.representations[f"w{i}"],
            weak_hat=hat.representations[f"w{i}"],
            strong_hat=hat.representations["strong"],
            strong_test=te.representations["strong"],
            y_train=tr.labels,
            y_hat=hat.labels,
            y_test=te.labels,
            beta_weak=0.0,
            beta_strong=0.0,
            config=config,
            decompositions={"strong_hat": strong_dec},
        )
        assert out["k_rule"] == config.rule and out["k_flag"] == ""
        k_strong = out["k_strong"]
        k_weak.append(out["k_weak"])
        ratios.append(out["gap_ratio"])
    _assert_issue_target(k_strong, k_weak, ratios)


def test_the_default_rule_meets_the_issue_target_through_a_default_run() -> None:
    """The default k rule (no kernel named anywhere: ``w2sg run --head ridge`` on the issue's
    regime at half scale, as the issue measured it) meets the issue's done-when: k within 2× for
    the strong model and ≥ 5 of 6 weak, G / measured gap within 30% for every weak model. The
    run's theory block records the rule it used (``mp_edge``, with σ̂ from the median)."""
    tr, hat, te = _issue_regime_half()
    config = RunConfig(
        task="regression", head="ridge", weak_ridge=0.0, strong_ridge=0.0,
        n_bootstrap=10, bounds=False,
    )  # fmt: skip
    assert config.kernel == KernelConfig()
    splits = ["weak_train"] * len(tr.labels) + ["w2s_train"] * len(hat.labels)
    splits += ["test"] * len(te.labels)
    labels = np.concatenate([tr.labels, hat.labels, te.labels])
    strong = np.vstack([d.representations["strong"] for d in (tr, hat, te)])
    k_strong, k_weak, ratios = [], [], []
    for i in range(len(HALF_WEAK_K)):
        weak = np.vstack([d.representations[f"w{i}"] for d in (tr, hat, te)])
        theory = run_pipeline(weak, strong, labels, config, given_splits=splits).theory
        assert theory is not None
        assert theory["k_rule"] == "mp_edge" and theory["k_flag"] == ""
        k_strong.append(int(theory["k_strong"]))
        k_weak.append(int(theory["k_weak"]))
        ratios.append(float(theory["gap_ratio"]))
    assert len(set(k_strong)) == 1  # one strong representation, one k
    _assert_issue_target(k_strong[0], k_weak, ratios)
