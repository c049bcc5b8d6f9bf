"""``w2sg metric``: the representation metric of [X] from two representation files."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from w2sg.atomic import save_npy
from w2sg.cli.checks import check_out_file, seed
from w2sg.config import KERNEL_OPTIONS, TASKS, KernelConfig
from w2sg.errors import W2SGError


def add_kernel_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that build a :class:`KernelConfig` (see :func:`kernel_config_from_args`)."""
    k = parser.add_argument_group(
        "principal kernels (THEORY.md section 3)",
        "one k rule; none given: --mp-edge with σ̂ from the median (the default since issue 14;"
        " it was --variance 0.9)",
    )
    k.add_argument("--k-weak", type=int, help="fixed number of weak principal components")
    k.add_argument("--k-strong", type=int, help="fixed number of strong principal components")
    k.add_argument("--variance", type=float, help="k explains this fraction of variance, e.g. 0.9")
    k.add_argument(
        "--noise-floor", type=float, help="k: eigenvalues above this factor × the mean of the rest"
    )
    k.add_argument(
        "--gavish-donoho", action="store_true",
        help="k: singular values above the optimal hard threshold ω(β)·median (no parameter)",
    )  # fmt: skip
    k.add_argument(
        "--mp-edge", action="store_true",
        help="k: singular values above the Marchenko–Pastur noise bulk edge σ̂(√n + √d) (default)",
    )  # fmt: skip
    k.add_argument(
        "--parallel-analysis", action="store_true",
        help="k: Horn's parallel analysis against 5 column permutations (95%% quantile)",
    )  # fmt: skip
    k.add_argument(
        "--sigma-estimate", choices=("median", "iterative"),
        help="σ̂ of --mp-edge: from the median singular value (default) or iteratively",
    )  # fmt: skip
    k.add_argument(
        "--noise-sigma-weak", type=float,
        help="known noise level per entry of the weak representation (--mp-edge/--gavish-donoho)",
    )  # fmt: skip
    k.add_argument(
        "--noise-sigma-strong", type=float,
        help="known noise level per entry of the strong representation (--mp-edge/--gavish-donoho)",
    )  # fmt: skip
    k.add_argument("--hard", action="store_true", help="γ = 0: orthogonal projections")
    k.add_argument(
        "--gamma-weak", type=float, help="explicit γ of the weak kernel (else β_w + δ_w)"
    )
    k.add_argument(
        "--gamma-strong", type=float, help="explicit γ of the strong kernel (else β_s + δ_s)"
    )
    k.add_argument("--no-center", action="store_true", help="do not centre representations")


def kernel_options(args: argparse.Namespace) -> dict[str, Any]:
    """The kernel flags of ``args`` as the keyword options of :meth:`KernelConfig.from_options`."""
    options = {name: getattr(args, name, None) for name in KERNEL_OPTIONS}
    for flag in ("gavish_donoho", "mp_edge", "parallel_analysis"):
        options[flag] = bool(options[flag])
    options["hard"] = bool(options["hard"])
    options["center"] = not getattr(args, "no_center", False)
    return options


def kernel_config_from_args(args: argparse.Namespace) -> KernelConfig:
    """One k rule (``--k-weak/--k-strong``, ``--variance``, ``--noise-floor``, ``--gavish-donoho``,
    ``--mp-edge`` or ``--parallel-analysis``; default: :class:`KernelConfig`'s) and either
    ``--hard`` or explicit γ's."""
    return KernelConfig.from_options(**kernel_options(args))


def cmd_metric(args: argparse.Namespace) -> int:
    from w2sg.api import COLUMN_OPTIONS, metric
    from w2sg.cli.run import echo_to

    columns: dict[str, Any] = {name: getattr(args, name, None) for name in COLUMN_OPTIONS}

    if args.scores and not (args.labels or args.data or args.dataset):
        raise W2SGError("--scores needs --labels (the scores are [P_s(I − P_w)ŷ]_i)")
    if args.scores:
        check_out_file(args.scores, "--scores", (".npy",))
    result = metric(
        args.weak,
        args.strong,
        args.labels,
        data=args.data,
        dataset=args.dataset,
        **columns,
        limit=args.limit,
        data_seed=args.data_seed,
        max_words=getattr(args, "max_words", None),
        task=args.task,
        weak_train=args.weak_train,
        beta_weak=args.beta_weak,
        beta_strong=args.beta_strong,
        echo=None if args.json else echo_to(args),
        **kernel_options(args),
    )
    if args.scores:
        assert result.scores is not None
        save_npy(args.scores, np.asarray(result.scores))
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(result.summary())
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
    metric.add_argument(
        "--data-seed", type=seed, default=0, help="seed of the --limit subset (default 0)"
    )
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
