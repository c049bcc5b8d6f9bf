"""``w2sg rank``: rank candidate weak supervisors (or strong models) without labels."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from w2sg.cli.theory import add_kernel_arguments, kernel_config_from_args
from w2sg.errors import W2SGError


def cmd_rank(args: argparse.Namespace) -> int:
    from w2sg.experiments.rank import rank

    config = kernel_config_from_args(args)
    if args.with_labels and args.labels:
        raise W2SGError("give --labels FILE or --with-labels (the dataset's labels), not both")
    if args.with_labels and not args.dataset:
        raise W2SGError("--with-labels uses the labels of --dataset; give --dataset or --labels")
    labels: Any = args.labels or (True if args.with_labels else None)
    result = rank(
        args.strong,
        args.weak,
        dataset=args.dataset,
        texts=args.texts,
        smiles=args.smiles,
        limit=args.limit,
        seed=args.data_seed,
        max_words=args.max_words,
        labels=labels,
        task=args.task,
        by=args.by,
        beta_weak=args.beta_weak,
        beta_strong=args.beta_strong,
        config=config,
    )
    if args.plot:
        from w2sg.report.plots import rank_bars

        rank_bars(Path(args.plot), result.to_dict())
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    other = "strong models" if result.role == "strong" else "weak supervisors"
    fixed = "weak" if result.role == "strong" else "strong"
    print(
        f"{len(result.candidates)} {other} for {fixed} = {result.fixed}, n = {result.n}, "
        f"by {result.by} (smaller is better), k rule {config.rule}"
    )
    print(result.table())
    s = result.seconds
    print(f"\n{s['total']:.2f} s ({s['load']:.2f} s loading, {s['metric']:.2f} s kernels)")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "rank",
        help="rank weak supervisors for a strong model (or the transpose) without labels",
        description="Rank candidate weak supervisors for one strong model by the label-free "
        "‖P_s(I − P_w)‖_op of [X] and ‖·‖_F²/n (and the predicted gap G with labels), the strong "
        "side factorised once. With one --weak and several --strong, rank strong models for "
        "that weak supervisor instead. Candidates are representation files (.npy/.npz/.parquet/"
        ".csv) or models (NAME, NAME@LAYER, hf:NAME, a folder) computed on --dataset, --texts or "
        "--smiles; layers of one model come from one cached forward pass.",
    )
    p.add_argument("--strong", nargs="+", required=True, help="strong representation(s)")
    p.add_argument("--weak", nargs="+", required=True, help="weak representation(s)")
    src = p.add_argument_group("examples the models read (not needed for files)")
    src.add_argument("--dataset", help="a registered dataset (see `w2sg datasets`)")
    src.add_argument("--texts", type=Path, help="UTF-8 file with one text per line")
    src.add_argument("--smiles", type=Path, help="file with one SMILES per line")
    src.add_argument("--limit", type=int, help="use at most this many examples")
    src.add_argument("--data-seed", type=int, default=0, help="seed of the --limit subset")
    src.add_argument("--max-words", type=int, help="cut each text to its first N words")
    lab = p.add_argument_group("labels (optional: adds the predicted gap G)")
    lab.add_argument("--labels", help="labels file, one per example")
    lab.add_argument("--with-labels", action="store_true", help="use the dataset's labels")
    lab.add_argument(
        "--task", choices=("classification", "regression", "probability"),
        help="how labels are encoded for G (default: the dataset's; integers: classification)",
    )  # fmt: skip
    p.add_argument(
        "--by", default="op_norm", choices=("op_norm", "fro_sq_over_n", "predicted_gap"),
        help="the ranking metric (default op_norm; smaller is better)",
    )  # fmt: skip
    p.add_argument("--beta-weak", type=float, default=0.0, help="β_w, ridge of the weak head")
    p.add_argument("--beta-strong", type=float, default=0.0, help="β_s, ridge of the strong head")
    add_kernel_arguments(p)
    p.add_argument("--plot", help="write a bar chart of the ranking to this PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_rank)
