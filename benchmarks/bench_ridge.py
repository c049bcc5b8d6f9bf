"""Ridge head vs scikit-learn Ridge on the same data (one run each; see benchmarks/README.md).

For each shape, both fit every β of a path on m label vectors and predict a test set.
scikit-learn refits per β (``Ridge(alpha=n * beta)``, its default ``solver="auto"``, multi-output
in one fit); w2sg decomposes the design matrix once and solves per β. A single-β fit is also
timed with both solvers of ``RidgeHead`` (``eigh``: the reusable decomposition; ``cholesky``: the
default for β > 0).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_ridge.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.linear_model import Ridge

from w2sg.heads.ridge import RidgeDecomposition, RidgeHead

BETAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
N_LABELS = 8
N_TEST = 1000


def _make(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = 1.0 / np.sqrt(np.arange(1, d + 1))
    H = rng.normal(size=(n + N_TEST, d)) * scales + 0.5
    W = rng.normal(size=(d, N_LABELS))
    Y = H[:n] @ W + rng.normal(size=(n, N_LABELS))
    return H[:n], Y, H[n:]


def _ours_path(H: np.ndarray, Y: np.ndarray, Ht: np.ndarray) -> list[np.ndarray]:
    dec = RidgeDecomposition(H)
    preds = []
    for beta in BETAS:
        theta, b = dec.solve(Y, beta)
        preds.append(Ht @ theta + b)
    return preds


def _sklearn_path(H: np.ndarray, Y: np.ndarray, Ht: np.ndarray) -> list[np.ndarray]:
    n = H.shape[0]
    return [Ridge(alpha=n * beta).fit(H, Y).predict(Ht) for beta in BETAS]


def _single_fit(
    H: np.ndarray, Y: np.ndarray, Ht: np.ndarray, solver: str, beta: float = 1e-2
) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    ours = RidgeHead(beta=beta, solver=solver).fit(H, Y)
    t1 = time.perf_counter()
    ref = Ridge(alpha=H.shape[0] * beta).fit(H, Y)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, float(np.max(np.abs(ours.predict(Ht) - ref.predict(Ht))))


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    print(f"betas={BETAS}, {N_LABELS} label vectors, {N_TEST} test rows; one run each")
    header = (
        f"{'n':>6} {'d':>6} {'case':>14} {'w2sg s':>8} {'sklearn s':>9} {'speed-up':>8} "
        f"{'max|Δpred|':>11} {'max|pred|':>9}"
    )
    print(header)
    for n, d in ((4000, 768), (1000, 4096)):
        H, Y, Ht = _make(n, d)
        t_ours, p_ours = _timed(_ours_path, H, Y, Ht)
        t_sk, p_sk = _timed(_sklearn_path, H, Y, Ht)
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(p_ours, p_sk, strict=True))
        scale = max(float(np.max(np.abs(b))) for b in p_sk)
        print(
            f"{n:>6} {d:>6} {'beta path':>14} {t_ours:8.3f} {t_sk:9.3f} {t_sk / t_ours:8.2f} "
            f"{diff:11.2e} {scale:9.2f}"
        )
        for solver in ("eigh", "cholesky"):
            t_ours1, t_sk1, diff1 = _single_fit(H, Y, Ht, solver)
            print(
                f"{n:>6} {d:>6} {'1 beta ' + solver:>14} {t_ours1:8.3f} {t_sk1:9.3f} "
                f"{t_sk1 / t_ours1:8.2f} {diff1:11.2e}"
            )


if __name__ == "__main__":
    main()
