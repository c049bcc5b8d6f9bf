"""Softmax head (L-BFGS) against scikit-learn's LogisticRegression on the same data.

Data: synthetic Gaussian features H ~ N(0, I_d), n = 4000, with a linear truth: labels drawn from
softmax(H W*), W* ~ N(0, 9/d) (about 80-90% Bayes accuracy). Both fit the same objective
(``SoftmaxHead(l2)`` and ``LogisticRegression(C=sklearn_C(l2, n, C))``, lbfgs, the same ``tol``).
Reports the median of 3 timed fits after one warm-up fit, the ratio sklearn/ours (> 1: we are
faster) and the largest absolute difference of predicted probabilities on held-out rows.

Run: ``PYTHONPATH=src python benchmarks/bench_softmax.py [--threads 2] [--l2 1e-2] [--tol 1e-9]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from w2sg.heads.softmax import SoftmaxHead, sklearn_C


def make_data(
    n: int, d: int, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(2 * n, d))
    w_true = rng.normal(scale=3.0 / np.sqrt(d), size=(d, n_classes))
    logits = H @ w_true
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((2 * n, 1))).argmax(axis=1)
    return H[:n], y[:n], H[n:]


def median_time(fit: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    model = fit()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model = fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times), model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args()
    # The same thread count for both: torch's intra-op pool and numpy's BLAS (used by sklearn).
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)

    print(f"n={args.n} l2={args.l2:g} tol={args.tol:g} torch threads={torch.get_num_threads()}")
    header = (
        f"{'d':>5} {'C':>3} {'ours s':>8} {'sklearn s':>9} {'ratio':>6} {'iters':>9} {'max|dp|':>9}"
    )
    print(header)
    for d in (384, 768):
        for n_classes in (2, 5):
            H, y, H_test = make_data(args.n, d, n_classes, seed=d + n_classes)
            targets = np.eye(n_classes)[y]
            ours_s, ours = median_time(
                partial(SoftmaxHead(l2=args.l2, tol=args.tol).fit, H, targets)
            )
            c = sklearn_C(args.l2, args.n, n_classes)
            sk_s, sk = median_time(
                partial(LogisticRegression(C=c, tol=args.tol, max_iter=10000).fit, H, y)
            )
            diff = np.abs(ours.predict_proba(H_test) - sk.predict_proba(H_test)).max()
            iters = f"{ours.n_iter_}/{int(np.max(sk.n_iter_))}"
            print(
                f"{d:>5} {n_classes:>3} {ours_s:>8.3f} {sk_s:>9.3f} {sk_s / ours_s:>6.2f} "
                f"{iters:>9} {diff:>9.1e}"
            )


if __name__ == "__main__":
    main()
