"""Representation metric: low-rank (w2sg) vs the dense n × n computation (see benchmarks/README.md).

Each case runs once, in its own process (so that its peak RSS is its own):

- ``dense`` at n = 2k, 4k, 8k, d = 768: the same principal directions (eigh of the d × d
  covariance), then every operator formed as an n × n matrix: K^P = X Xᵀ/n − δ̂ Π (X = H_c V_k, Π
  the projector onto its columns), P = K^P (K^P + γI)⁻¹ by a Cholesky solve, A = P_s(I − P_w),
  ‖A‖_op by ARPACK (``svds``), ‖A‖_F², G = ‖A ŷ‖²/n.
- ``lowrank`` at the same sizes: :func:`w2sg.theory.kernels.representation_metrics`.
- ``large``: ``representation_metrics`` alone at n = 200 000, d = 1024 (float32 input),
  k_w = 128, k_s = 256.

Time is wall-clock; memory is the tracemalloc peak of the call (numpy reports its buffers) and the
process's peak RSS (input arrays included).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_kernels.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import svds

from w2sg.config import KernelConfig
from w2sg.theory.kernels import representation_metrics

K_WEAK, K_STRONG = 4, 8


def make_inputs(
    n: int, d: int, dtype: type = np.float64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weak (sees 4 of 8 latent coordinates) and strong (all 8) representations plus labels,
    written chunk by chunk so that float32 inputs never exist in float64."""
    rng = np.random.default_rng(seed)
    energies = 4.0 * 0.8 ** np.arange(K_STRONG)
    weak = np.empty((n, d), dtype=dtype)
    strong = np.empty((n, d), dtype=dtype)
    y = np.empty(n)
    mix_w = rng.normal(size=(K_WEAK, d)) / np.sqrt(d)
    mix_s = rng.normal(size=(K_STRONG, d)) / np.sqrt(d)
    for start in range(0, n, 20_000):
        m = min(20_000, n - start)
        z = rng.normal(size=(m, K_STRONG)) * np.sqrt(energies)
        y[start : start + m] = z.sum(axis=1) + 0.1 * rng.normal(size=m)
        weak[start : start + m] = z[:, :K_WEAK] @ mix_w * 8 + rng.normal(size=(m, d)) / np.sqrt(d)
        strong[start : start + m] = z @ mix_s * 8 + rng.normal(size=(m, d)) / np.sqrt(d)
    return weak, strong, y


def _dense_P(H: np.ndarray, k: int, beta: float) -> np.ndarray:
    n = H.shape[0]
    Hc = H - H.mean(axis=0)
    lam, V = np.linalg.eigh(Hc.T @ Hc / n)
    lam, V = lam[::-1], V[:, ::-1]
    delta = float(lam[k:].sum()) / n
    X = Hc @ V[:, :k]
    Q, _ = np.linalg.qr(X)
    KP = X @ X.T / n - delta * (Q @ Q.T)
    reg = KP + (beta + delta) * np.eye(n)
    # K^P and (K^P + γI)⁻¹ commute, so P = (K^P + γI)⁻¹ K^P.
    return np.asarray(scipy.linalg.solve(reg, KP, assume_a="pos"))


def dense_metrics(weak: np.ndarray, strong: np.ndarray, y: np.ndarray) -> dict[str, float]:
    n = weak.shape[0]
    Pw = _dense_P(weak, K_WEAK, 0.0)
    Ps = _dense_P(strong, K_STRONG, 0.0)
    A = Ps - Ps @ Pw
    yc = y - y.mean()
    op = float(svds(A, k=1, return_singular_vectors=False)[0])
    return {
        "op_norm": op,
        "fro_sq_over_n": float(np.sum(A * A)) / n,
        "predicted_gap": float(np.sum((A @ yc) ** 2)) / n,
    }


def lowrank_metrics(weak: np.ndarray, strong: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    config = KernelConfig(rule="k", k_weak=K_WEAK, k_strong=K_STRONG)
    return representation_metrics(weak, strong, y=y, config=config).metrics


def run_case(case: str, n: int, d: int) -> dict[str, Any]:
    if case == "large":
        weak, strong, y = make_inputs(n, d, dtype=np.float32)
        config = KernelConfig(rule="k", k_weak=128, k_strong=256)

        def fn() -> dict[str, Any]:
            return representation_metrics(weak, strong, y=y, config=config).metrics

    else:
        weak, strong, y = make_inputs(n, d)

        def fn() -> dict[str, Any]:
            return (dense_metrics if case == "dense" else lowrank_metrics)(weak, strong, y)

    tracemalloc.start()
    start = time.perf_counter()
    metrics = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "case": case,
        "n": n,
        "d": d,
        "seconds": seconds,
        "peak_traced_gib": peak / 2**30,
        "peak_rss_gib": rss / 2**30,
        "metrics": {k: metrics[k] for k in ("op_norm", "fro_sq_over_n", "predicted_gap")},
    }


def _subprocess(case: str, n: int, d: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, case, str(n), str(d)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    print(
        f"{'n':>7} {'d':>5} {'dense s':>8} {'w2sg s':>7} {'speed-up':>8} {'dense GiB':>9} "
        f"{'w2sg GiB':>8} {'rel.diff op':>11} {'rel.diff G':>10}"
    )
    for n in (2000, 4000, 8000):
        low = _subprocess("lowrank", n, 768)
        dense = _subprocess("dense", n, 768)
        rel = {
            k: abs(low["metrics"][k] - dense["metrics"][k]) / abs(dense["metrics"][k])
            for k in ("op_norm", "predicted_gap")
        }
        print(
            f"{n:>7} {768:>5} {dense['seconds']:8.2f} {low['seconds']:7.3f} "
            f"{dense['seconds'] / low['seconds']:8.1f} {dense['peak_traced_gib']:9.2f} "
            f"{low['peak_traced_gib']:8.3f} {rel['op_norm']:11.1e} {rel['predicted_gap']:10.1e}"
        )
    large = _subprocess("large", 200_000, 1024)
    print(
        f"\nn=200000, d=1024 float32, k_w=128, k_s=256: {large['seconds']:.1f} s, traced peak "
        f"{large['peak_traced_gib']:.2f} GiB, process peak RSS {large['peak_rss_gib']:.2f} GiB "
        f"(inputs {2 * 200_000 * 1024 * 4 / 2**30:.2f} GiB); op_norm "
        f"{large['metrics']['op_norm']:.4f}, G {large['metrics']['predicted_gap']:.4f}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4:
        print(json.dumps(run_case(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
