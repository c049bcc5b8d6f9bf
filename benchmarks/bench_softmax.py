"""Softmax head (L-BFGS) against scikit-learn's LogisticRegression on the same data.

Data: synthetic Gaussian features H ~ N(0, I_d) with a linear truth: labels drawn from
softmax(H W*), W* ~ N(0, 9/d). Both fit the same objective (``SoftmaxHead(l2)`` and
``LogisticRegression(C=sklearn_C(l2, n, C))``, lbfgs, the same ``tol``) with the same number of
threads. After one warm-up fit each, the two are timed alternately ``--repeats`` times (so load from
other processes hits both alike) and the medians are reported, as wall-clock time
(``time.perf_counter``) and as CPU time of this process (``time.process_time``, which other
processes on a shared machine disturb less): the ratios sklearn/ours (> 1: we are faster) and the
largest absolute difference of predicted probabilities on n held-out rows.

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
    """(H_train, y_train, H_test): n rows each, labels sampled from softmax(H W*)."""
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(2 * n, d))
    w_true = rng.normal(scale=3.0 / np.sqrt(d), size=(d, n_classes))
    logits = H @ w_true
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((2 * n, 1))).argmax(axis=1)
    return H[:n], y[:n], H[n:]


def timed(fit: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, fitted model)."""
    wall, cpu = time.perf_counter(), time.process_time()
    model = fit()
    return time.perf_counter() - wall, time.process_time() - cpu, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--l2", type=float, default=1e-2)
    parser.add_argument("--tol", type=float, default=1e-9)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # The same thread count for both: torch's intra-op pool and numpy's BLAS (used by sklearn).
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)

    print(f"n={args.n} l2={args.l2:g} tol={args.tol:g} threads={args.threads}")
    print(
        f"{'d':>5} {'C':>3} {'wall ours':>9} {'sklearn':>8} {'ratio':>6} "
        f"{'cpu ours':>9} {'sklearn':>8} {'ratio':>6} {'iters':>7} {'max|dp|':>9}"
    )
    for d in (384, 768):
        for n_classes in (2, 5):
            H, y, H_test = make_data(args.n, d, n_classes, seed=d + n_classes)
            c = sklearn_C(args.l2, args.n, n_classes)
            fit_ours = partial(SoftmaxHead(l2=args.l2, tol=args.tol).fit, H, np.eye(n_classes)[y])
            fit_sk = partial(LogisticRegression(C=c, tol=args.tol, max_iter=10000).fit, H, y)
            fit_ours(), fit_sk()  # warm-up
            ours_t: list[tuple[float, float]] = []
            sk_t: list[tuple[float, float]] = []
            for _ in range(args.repeats):
                wall, cpu, ours = timed(fit_ours)
                ours_t.append((wall, cpu))
                wall, cpu, sk = timed(fit_sk)
                sk_t.append((wall, cpu))
            ours_wall, ours_cpu = (statistics.median(col) for col in zip(*ours_t, strict=True))
            sk_wall, sk_cpu = (statistics.median(col) for col in zip(*sk_t, strict=True))
            diff = np.abs(ours.predict_proba(H_test) - sk.predict_proba(H_test)).max()
            iters = f"{ours.n_iter_}/{int(np.max(sk.n_iter_))}"
            print(
                f"{d:>5} {n_classes:>3} {ours_wall:>9.3f} {sk_wall:>8.3f} "
                f"{sk_wall / ours_wall:>6.2f} "
                f"{ours_cpu:>9.3f} {sk_cpu:>8.3f} {sk_cpu / ours_cpu:>6.2f} {iters:>7} {diff:>9.1e}"
            )


if __name__ == "__main__":
    main()
