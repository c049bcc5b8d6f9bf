"""``w2sg metric``: the representation metric of [X] from two representation files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.config import TASKS, KernelConfig
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


def encode_metric_labels(labels: np.ndarray, task: str | None) -> tuple[np.ndarray, str]:
    """Numeric targets of the kernel formulas, encoded exactly as ``w2sg run`` encodes them for
    its theory block (:meth:`w2sg.pipeline.Labels.theory_targets`), and a note saying how.

    Class labels (``task="classification"``, or by default integer labels with at most
    max(50, n/5) distinct values) become ±1 when binary (class 0 → −1, class 1 → +1, classes
    numbered in sorted order) and one-hot ``(n, C)`` otherwise; probabilities p become 2p − 1;
    regression values and ``(n, m)`` arrays are used as given.
    """
    from w2sg.pipeline import prepare_labels

    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:
        if task not in (None, "regression"):
            raise W2SGError(f"--task {task} needs one label per row, got shape {y.shape}")
        return y.astype(float), "as given ((n, m) targets)"
    flat = y.reshape(-1)
    if task is None:
        integral = flat.dtype.kind in "biu" or bool(np.all(flat == np.round(flat)))
        few = len(np.unique(flat)) <= max(50, len(flat) // 5)
        task = "classification" if integral and few and len(np.unique(flat)) >= 2 else "regression"
    lab = prepare_labels(flat, task)
    targets = lab.theory_targets(np.arange(len(flat)))
    if task == "classification" and lab.n_classes == 2:
        assert lab.classes is not None
        c0, c1 = (v.item() if hasattr(v, "item") else v for v in lab.classes)
        return targets, f"±1 as in w2sg run (class {c0!r} → −1, class {c1!r} → +1)"
    if task == "classification":
        return targets, f"one-hot over {lab.n_classes} classes, as in w2sg run"
    if task == "probability":
        return targets, "2p − 1 of the positive-class probability, as in w2sg run"
    return targets, "as given (regression values)"


def cmd_metric(args: argparse.Namespace) -> int:
    config = kernel_config_from_args(args)
    from w2sg.cli.run import describe_data, embed_dataset, load_data

    dataset = load_data(args)
    if args.scores and not (args.labels or dataset is not None):
        raise W2SGError("--scores needs --labels (the scores are [P_s(I − P_w)ŷ]_i)")
    raw_labels: np.ndarray | None = None
    if dataset is not None:
        if args.labels:
            raise W2SGError("--labels is for array files; --data FILE takes --label-column")
        if not args.json:
            print("\n".join(describe_data(dataset)))
        weak = embed_dataset(dataset, args.weak, "--weak").astype(np.float64)
        strong = embed_dataset(dataset, args.strong, "--strong").astype(np.float64)
        raw_labels = dataset.labels
    else:
        weak = _load_matrix(args.weak, "--weak")
        strong = _load_matrix(args.strong, "--strong")
    if weak.shape[0] != strong.shape[0]:
        raise W2SGError(
            f"--weak has {weak.shape[0]} rows and --strong {strong.shape[0]}; "
            "both must hold the same examples (D̂) in the same order"
        )
    if args.labels:
        raw_labels = load_array(args.labels, "--labels")
        if raw_labels.ndim not in (1, 2) or raw_labels.shape[0] != weak.shape[0]:
            raise W2SGError(
                f"--labels has shape {raw_labels.shape}; it needs ({weak.shape[0]},) or "
                f"({weak.shape[0]}, m), one row per row of --weak"
            )
    labels = None
    encoding = None
    if raw_labels is not None:
        task = args.task or (dataset.task if dataset is not None else None)
        labels, encoding = encode_metric_labels(raw_labels, task)
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
    metrics = dict(result.metrics)
    if encoding is not None:
        metrics["label_encoding"] = encoding
    if args.json:
        print(json.dumps(metrics))
        return 0
    if encoding is not None:
        print(f"labels encoded: {encoding}")
    shown = {k: v for k, v in metrics.items() if k != "label_encoding"}
    keys = [k for k in _MAIN_KEYS if k in shown] + [k for k in shown if k not in _MAIN_KEYS]
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
    metric.add_argument(
        "--weak", required=True,
        help="weak representation on D̂ (n, d_w), or a model name with --data/--dataset",
    )  # fmt: skip
    metric.add_argument(
        "--strong", required=True,
        help="strong representation on D̂ (n, d_s), or a model name with --data/--dataset",
    )  # fmt: skip
    metric.add_argument(
        "--labels",
        help="true labels on D̂, (n,) or (n, m); class labels are encoded as in w2sg run "
        "(binary ±1, else one-hot), and the output says how",
    )
    metric.add_argument(
        "--task", choices=TASKS, default=None,
        help="how to read --labels (default: integer labels with few values are classes)",
    )  # fmt: skip
    metric.add_argument(
        "--data",
        help="a data file (every row is D̂); --weak and --strong are then model names",
    )
    metric.add_argument("--dataset", help="a registered or hf: dataset (every row is D̂)")
    metric.add_argument("--limit", type=int, help="with --data/--dataset: at most N rows")
    metric.add_argument("--data-seed", type=int, default=0, help="seed of the --limit subset")
    from w2sg.cli.run import add_data_arguments

    add_data_arguments(metric, with_data=False)
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
