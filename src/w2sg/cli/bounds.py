"""``w2sg epochs``: the over-optimisation study of THEORY.md section 5 (per-epoch bounds)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from w2sg import atomic
from w2sg.cli.checks import check_out_dir, seed
from w2sg.cli.run import (
    add_array_arguments,
    describe_data,
    load_data,
    load_inputs,
    parse_fractions,
)
from w2sg.config import DEVICES, DTYPES, LOSSES, TRAIN_MODES, FinetuneConfig, RunConfig
from w2sg.errors import W2SGError

# The columns printed by default (the CSV and JSON hold every column).
_SHOWN = (
    ("epoch", "epoch", "d"),
    ("w2s_error", "err", ".4f"),
    ("weak_error", "weak err", ".4f"),
    ("disagreement", "disagree", ".4f"),
    ("w2s_ce", "w2s CE", ".4f"),
    ("weak_ce", "weak CE", ".4f"),
    ("d_fwd", "d_fwd", ".4f"),
    ("d_rev", "d_rev", ".4f"),
    ("gen_tv_lower", "CE lower", ".3f"),
    ("gen_tv_upper", "CE upper", ".3f"),
    ("smooth_ce", "smCE", ".4f"),
    ("ece", "ECE", ".4f"),
)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The per-epoch table as fixed-width text, and whether every bound held."""
    lines = ["".join(f"{title:>10}" for _, title, _ in _SHOWN)]
    for row in rows:
        lines.append("".join(f"{row[key]:>10{fmt}}" for key, _, fmt in _SHOWN))
    held = all(row["gen_holds"] and row["err_holds"] and row["cal_holds"] for row in rows)
    lines.append("")
    lines.append(
        "CE lower/upper: the generalization bound L(F*,F_w) ± (1/γ_p)·mean TV(F_w, F_sw); "
        f"every bound held at every epoch: {held}"
    )
    return "\n".join(lines)


def cmd_epochs(args: argparse.Namespace) -> int:
    from w2sg.experiments.epochs import epoch_study, parse_epochs

    epochs = parse_epochs(args.epochs)
    if args.out:
        check_out_dir(args.out, "--out", "epochs.csv, epochs.json, epochs.png, epochs_config.json")
    dataset = load_data(args)
    finetune = FinetuneConfig()
    if args.train != "probe":
        finetune = FinetuneConfig(
            lr=args.ft_lr, batch_size=args.ft_batch_size, max_length=args.max_length,
            lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, device=args.device,
            dtype=args.dtype, warmup=args.warmup,
        )  # fmt: skip
    config = RunConfig(
        task=args.task or (dataset.task if dataset is not None else RunConfig.task),
        head="softmax",
        loss=args.loss,
        weak_ridge=args.weak_ridge,
        strong_ridge=args.strong_ridge,
        fractions=tuple(args.fractions),
        seed=args.seed,
        optimizer="adam",
        epochs=max(epochs),
        lr=args.lr,
        batch_size=args.batch_size,
        max_iter=args.max_iter,
        eps=args.eps,
        theory=False,
        train=args.train,
        finetune=finetune,
    )
    config.validate()
    from w2sg.api import check_finetune, finetune_learners

    check_finetune(config, args.weak, args.strong, dataset)
    if args.weak_predictions:
        raise W2SGError(
            "w2sg epochs trains the weak model itself: give --weak W.npy (a representation), "
            "not --weak-predictions"
        )
    if dataset is not None:
        print("\n".join(describe_data(dataset)), file=sys.stderr if args.json else sys.stdout)
    inputs = load_inputs(args, dataset)
    if inputs.weak is None:
        raise W2SGError("w2sg epochs needs a weak representation: give --weak W.npy")
    learners = finetune_learners(config, args.weak, args.strong, dataset)
    study = epoch_study(
        inputs.weak, inputs.strong, inputs.labels, config, epochs=epochs, ids=inputs.ids,
        given_splits=inputs.given_splits, student=learners.get("strong"),
    )  # fmt: skip
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        study.to_csv(out / "epochs.csv")
        study.to_json(out / "epochs.json")
        study.plot(out / "epochs.png")
        atomic.write_json(out / "epochs_config.json", config.to_dict())
    if args.json:
        print(json.dumps(study.to_dict(), allow_nan=False))
        return 0
    print("split sizes: " + " · ".join(f"{k} {v}" for k, v in study.sizes.items()))
    print(format_table(study.rows))
    for note in study.notes:
        print(f"note: {note}")
    if args.out:
        print(f"wrote {Path(args.out)}/ (epochs.csv, epochs.json, epochs.png, epochs_config.json)")
    return 0


def register(subparsers: Any) -> None:
    d = RunConfig()
    p = subparsers.add_parser(
        "epochs",
        help="over-optimisation study: the w2s student's error and every section-5 bound per epoch",
        description="Train the weak model, label w2s_train with it, then train the softmax student "
        "with Adam on those labels and record, after each epoch of the schedule, its test error, "
        "d_fwd, d_rev, calibration, and both sides of the generalization, 0-1 error and "
        "calibration bounds (THEORY.md section 5).",
    )
    add_array_arguments(p)
    g = p.add_argument_group("study configuration")
    g.add_argument(
        "--task", choices=("classification", "probability"), default=None,
        help="default: what the data says, else classification",
    )  # fmt: skip
    g.add_argument("--loss", choices=LOSSES, default=d.loss, help="the student's loss")
    g.add_argument("--weak-ridge", type=float, default=d.weak_ridge, help="L2 of the weak head")
    g.add_argument("--strong-ridge", type=float, default=d.strong_ridge, help="L2 of the student")
    g.add_argument(
        "--fractions",
        type=parse_fractions,
        default=d.fractions,
        help="weak_train,w2s_train,test[,val] (default 0.4,0.4,0.2)",
    )
    g.add_argument(
        "--seed", type=seed, default=d.seed, help=f"split and training seed (default {d.seed})"
    )
    g.add_argument(
        "--epochs",
        default=",".join(str(e) for e in (1, 2, 4, 8, 16, 32, 64)),
        help="epochs after which to record, increasing (default 1,2,4,8,16,32,64)",
    )
    g.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="Adam batch size")
    g.add_argument("--max-iter", type=int, default=d.max_iter, help="L-BFGS iterations (weak)")
    g.add_argument("--eps", type=float, default=d.eps, help="probability clip floor (1e-6)")
    f = FinetuneConfig()
    t = p.add_argument_group("fine-tuned student (--train full|lora, with --dataset or --data)")
    t.add_argument(
        "--train", choices=TRAIN_MODES, default="probe",
        help="fine-tune the strong model itself as the student (the weak model stays a probe)",
    )  # fmt: skip
    t.add_argument("--ft-lr", type=float, default=None, help="fine-tuning peak learning rate")
    t.add_argument(
        "--ft-batch-size", type=int, default=f.batch_size, help="fine-tuning micro-batch"
    )
    t.add_argument(
        "--max-length", type=int, default=None, help="token limit (default: the model's own)"
    )
    t.add_argument("--warmup", type=float, default=f.warmup, help="warm-up fraction of steps")
    t.add_argument("--lora-rank", type=int, default=f.lora_rank, help="LoRA rank (--train lora)")
    t.add_argument("--lora-alpha", type=int, default=f.lora_alpha, help="LoRA alpha")
    t.add_argument("--device", choices=DEVICES, default=f.device, help="fine-tuning device")
    t.add_argument("--dtype", choices=DTYPES, default=f.dtype, help="fine-tuning precision")
    p.add_argument(
        "--out", help="write epochs.csv, epochs.json, epochs.png, epochs_config.json here"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_epochs)
