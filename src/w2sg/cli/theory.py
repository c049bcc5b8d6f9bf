"""``w2sg metric``: the representation metric of [X] from two representation files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.config import KernelConfig
from w2sg.data.io import load_array
from w2sg.errors import W2SGError
from w2sg.theory.kernels import representation_metrics

# Printed first, in this order; the remaining diagnostics follow.
_MAIN_KEYS = (
    "op_norm",
    "fro_sq_over_n",
    "k_weak",
    "k_strong",
    "predicted_gap",
    "predicted_weak_error",
)


def add_kernel_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that build a :class:`KernelConfig` (see :func:`kernel_config_from_args`)."""
    k = parser.add_argument_group("principal kernels (THEORY.md section 3)")
    k.add_argument("--k-weak", type=int, help="fixed number of weak principal components")
    k.add_argument("--k-strong", type=int, help="fixed number of strong principal components")
    k.add_argument("--variance", type=float, help="k explains this fraction of the variance (0.9)")
    k.add_argument(
        "--noise-floor", type=float, help="k: eigenvalues above this factor × the mean of the rest"
    )
    k.add_argument(
        "--gavish-donoho", action="store_true",
        help="k: singular values above the optimal hard threshold ω(β)·median (no parameter)",
    )  # fmt: skip
    k.add_argument("--hard", action="store_true", help="γ = 0: orthogonal projections")
    k.add_argument(
        "--gamma-weak", type=float, help="explicit γ of the weak kernel (else β_w + δ_w)"
    )
    k.add_argument(
        "--gamma-strong", type=float, help="explicit γ of the strong kernel (else β_s + δ_s)"
    )
    k.add_argument("--no-center", action="store_true", help="do not centre representations")


def kernel_config_from_args(args: argparse.Namespace) -> KernelConfig:
    """One k rule (``--k-weak/--k-strong``, ``--variance``, ``--noise-floor`` or
    ``--gavish-donoho``; default ``--variance 0.9``) and either ``--hard`` or explicit γ's."""
    given = [
        name
        for name, used in (
            ("--k-weak/--k-strong", args.k_weak is not None or args.k_strong is not None),
            ("--variance", args.variance is not None),
            ("--noise-floor", args.noise_floor is not None),
            ("--gavish-donoho", bool(getattr(args, "gavish_donoho", False))),
        )
        if used
    ]
    if len(given) > 1:
        raise W2SGError(f"choose one k rule, not {' and '.join(given)}")
    if args.hard and (args.gamma_weak is not None or args.gamma_strong is not None):
        raise W2SGError("--hard sets γ = 0; drop --gamma-weak/--gamma-strong or --hard")
    rule = {
        "--k-weak/--k-strong": "k",
        "--noise-floor": "noise_floor",
        "--gavish-donoho": "gavish_donoho",
    }.get(given[0] if given else "", "variance")
    default = KernelConfig()
    config = KernelConfig(
        rule=rule,
        k_weak=args.k_weak,
        k_strong=args.k_strong,
        variance=args.variance if args.variance is not None else default.variance,
        noise_floor=args.noise_floor if args.noise_floor is not None else default.noise_floor,
        hard=bool(args.hard),
        gamma_weak=args.gamma_weak,
        gamma_strong=args.gamma_strong,
        center=not args.no_center,
    )
    config.validate()
    return config


def _load_matrix(path: str, what: str) -> np.ndarray:
    arr = load_array(path, what)
    if arr.ndim != 2:
        raise W2SGError(f"{what}: {path} has shape {arr.shape}; a representation is (n, d)")
    return arr


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def cmd_metric(args: argparse.Namespace) -> int:
    config = kernel_config_from_args(args)
    if args.scores and not args.labels:
        raise W2SGError("--scores needs --labels (the scores are [P_s(I − P_w)ŷ]_i)")
    weak = _load_matrix(args.weak, "--weak")
    strong = _load_matrix(args.strong, "--strong")
    if weak.shape[0] != strong.shape[0]:
        raise W2SGError(
            f"--weak has {weak.shape[0]} rows and --strong {strong.shape[0]}; "
            "both must hold the same examples (D̂) in the same order"
        )
    labels = None
    if args.labels:
        labels = load_array(args.labels, "--labels")
        if labels.ndim not in (1, 2) or labels.shape[0] != weak.shape[0]:
            raise W2SGError(
                f"--labels has shape {labels.shape}; it needs ({weak.shape[0]},) or "
                f"({weak.shape[0]}, m), one row per row of --weak"
            )
    weak_train = _load_matrix(args.weak_train, "--weak-train") if args.weak_train else None
    result = representation_metrics(
        weak,
        strong,
        weak_train=weak_train,
        y=labels,
        beta_weak=args.beta_weak,
        beta_strong=args.beta_strong,
        config=config,
    )
    if args.scores:
        assert result.scores is not None
        np.save(Path(args.scores), result.scores)
    metrics = result.metrics
    if args.json:
        print(json.dumps(metrics))
        return 0
    keys = [k for k in _MAIN_KEYS if k in metrics] + [k for k in metrics if k not in _MAIN_KEYS]
    width = max(len(k) for k in keys)
    for key in keys:
        print(f"{key:<{width}}  {_format_value(metrics[key])}")
    if args.scores:
        print(f"\nwrote per-example scores to {args.scores}")
    return 0


def register(subparsers: Any) -> None:
    metric = subparsers.add_parser(
        "metric",
        help="representation metric ‖P_s(I − P_w)‖ and the predicted weak-to-strong gap",
        description="Principal kernels of a weak and a strong representation on the same "
        "examples (D̂), following [X]: the label-free metric ‖P_s(I − P_w)‖_op, its Frobenius "
        "variant, and with --labels the predicted gap ‖P_s(I − P_w)ŷ‖²/n and the predicted weak "
        "error. Labels are numeric targets: values, ±1 for binary, one-hot (n, C) for classes.",
    )
    metric.add_argument("--weak", required=True, help="weak representation on D̂ (n, d_w)")
    metric.add_argument("--strong", required=True, help="strong representation on D̂ (n, d_s)")
    metric.add_argument("--labels", help="true labels on D̂, (n,) or (n, m)")
    metric.add_argument(
        "--weak-train",
        help="weak representation on D̃ (the weak head's training sample), for δ̃_w; "
        "without it δ_w is taken on D̂",
    )
    metric.add_argument("--beta-weak", type=float, default=0.0, help="β_w, ridge of the weak head")
    metric.add_argument(
        "--beta-strong", type=float, default=0.0, help="β_s, ridge of the strong head"
    )
    add_kernel_arguments(metric)
    metric.add_argument(
        "--scores", help="write the per-example scores to this .npy (needs --labels)"
    )
    metric.add_argument("--json", action="store_true", help="print one JSON object")
    metric.set_defaults(func=cmd_metric)
