"""``w2sg run`` and ``w2sg demo``, and the argument helpers other commands share."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from w2sg.cli.checks import check_out_dir, seed
from w2sg.cli.theory import add_kernel_arguments
from w2sg.config import (
    CLEAN_METHODS,
    COMBINE_RULES,
    DEVICES,
    DTYPES,
    HEADS,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    STEP_LOSSES,
    TASKS,
    TRAIN_MODES,
    FinetuneConfig,
    RunConfig,
)
from w2sg.report.summary import format_summary


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--fractions takes comma-separated numbers like 0.4,0.4,0.2, got {text!r}"
        ) from None
    return values


def add_array_arguments(parser: argparse.ArgumentParser, several_weak: bool = False) -> None:
    """``--weak/--strong/--labels`` (files) or ``--dataset`` with model names.

    ``several_weak``: ``--weak`` takes one or more (several are combined by ``--combine``)."""
    g = parser.add_argument_group("inputs")
    g.add_argument(
        "--weak",
        nargs="+" if several_weak else None,
        help="weak representation file (.npy/.npz/.parquet/.csv), or a model "
        "name with --dataset (NAME or NAME@LAYER)"
        + (
            "; several are combined into one set of weak labels (--combine)" if several_weak else ""
        ),
    )
    g.add_argument("--strong", help="strong representation file, or a model name with --dataset")
    g.add_argument("--labels", help="labels file, rows aligned with --weak and --strong")
    g.add_argument(
        "--weak-predictions",
        help="the weak model as its predictions for every row "
        "(a labeller): (n, C) probabilities or (n,) values; replaces --weak",
    )
    g.add_argument(
        "--dataset",
        help="a registered dataset (see `w2sg datasets`); --weak and "
        "--strong are then model names (see `w2sg models`)",
    )
    g.add_argument("--limit", type=int, help="with --dataset: use at most this many examples")
    g.add_argument(
        "--data-seed", type=seed, default=0,
        help="with --dataset --limit: seed of the random subset (default 0, as in sweeps)",
    )  # fmt: skip
    g.add_argument(
        "--max-words", type=int, default=None,
        help="with a text --dataset: cut each text to its first N words (every model alike)",
    )  # fmt: skip
    g.add_argument(
        "--pooling", choices=("mean", "cls", "last", "max"), default=None,
        help="with model names: token pooling of both models (default: each model's own, "
        "else the registry's)",
    )  # fmt: skip
    add_data_arguments(parser)


DATA_HELP = "a table (CSV, TSV, JSONL, JSON, Parquet) of texts or SMILES with labels"


def add_data_arguments(parser: argparse.ArgumentParser, *, with_data: bool = True) -> None:
    """``--data FILE`` and the column options (also for ``--dataset hf:owner/name``)."""
    g = parser.add_argument_group("data file columns (docs/datasets.md)")
    if with_data:
        g.add_argument("--data", help=f"{DATA_HELP}; --weak and --strong are then model names")
    g.add_argument(
        "--text-column",
        help="the text column, or two or more joined by --text-template (e.g. question,answer)",
    )
    g.add_argument("--smiles-column", help="the SMILES column (molecules), instead of text")
    g.add_argument("--label-column", help="the label column (class names, 0/1, booleans, numbers)")
    g.add_argument("--id-column", help="optional example ids (default: content hashes)")
    g.add_argument(
        "--split-column",
        help="use the file's own splits (train/test/validation or weak_train/w2s_train/test/val)",
    )
    g.add_argument(
        "--label-order",
        help="class names in class order, e.g. neg,pos (default: sorted); class 1 is positive",
    )
    g.add_argument(
        "--text-template",
        help="how several text columns become one text, e.g. 'Q: {question} A: {answer}' "
        "(default: joined by a blank line)",
    )


def add_run_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Every field of :class:`RunConfig` that a user sets from the command line."""
    d = RunConfig()
    g = parser.add_argument_group("run configuration")
    g.add_argument(
        "--task", choices=TASKS, default=None,
        help="default: what the dataset or data file says, else classification",
    )  # fmt: skip
    g.add_argument(
        "--head", choices=HEADS, default=None,
        help="default: ridge for regression, softmax for classification and probability",
    )  # fmt: skip
    g.add_argument(
        "--loss", default=d.loss,
        help=f"the w2s student's loss, one of {', '.join(LOSSES)} (docs/pipeline.md: losses; "
        f"{', '.join(STEP_LOSSES)} need --optimizer adam with the softmax head)",
    )  # fmt: skip
    g.add_argument(
        "--optimizer", choices=OPTIMIZERS, default=d.optimizer,
        help="how the softmax head is fitted: full-batch L-BFGS or mini-batch Adam",
    )  # fmt: skip
    g.add_argument(
        "--weak-ridge", type=float, default=d.weak_ridge, help="β_w, L2 of the weak head"
    )
    g.add_argument(
        "--strong-ridge",
        type=float,
        default=d.strong_ridge,
        help="β_s, L2 of the w2s and ceiling heads",
    )
    g.add_argument(
        "--fractions",
        type=parse_fractions,
        default=d.fractions,
        help="weak_train,w2s_train,test[,val] (default 0.4,0.4,0.2)",
    )
    g.add_argument(
        "--seed", type=seed, default=d.seed, help=f"split and training seed (default {d.seed})"
    )
    f = FinetuneConfig()
    g.add_argument(
        "--epochs", type=int, default=None,
        help=f"epochs of the fine-tuned models with --train full|lora (default {f.epochs}); "
        f"else of Adam heads (--optimizer adam, default {d.epochs})",
    )  # fmt: skip
    g.add_argument(
        "--lr", type=float, default=None,
        help="peak learning rate of the fine-tuned transformers (default 2e-5 full, 2e-4 lora); "
        f"else of Adam heads (default {d.lr})",
    )  # fmt: skip
    g.add_argument(
        "--batch-size", type=int, default=None,
        help=f"micro-batch of fine-tuning (default {f.batch_size}); else of Adam heads "
        f"(default {d.batch_size})",
    )  # fmt: skip
    g.add_argument("--max-iter", type=int, default=d.max_iter, help="L-BFGS iterations")
    g.add_argument("--radius", type=float, default=None, help="norm ball of --head least_squares")
    g.add_argument("--bootstrap", type=int, default=d.n_bootstrap, help="PGR bootstrap resamples")
    g.add_argument("--no-theory", action="store_true", help="skip the representation-kernel block")
    g.add_argument("--no-bounds", action="store_true", help="skip the bounds block")
    g.add_argument(
        "--s2s-iters", type=int, default=d.s2s_iters,
        help="strong-to-strong rounds after the w2s student: each trains a fresh student on the "
        "previous one's predictions on w2s_train (result: rounds)",
    )  # fmt: skip
    g.add_argument(
        "--clean", choices=CLEAN_METHODS, default=d.clean,
        help="relabel or filter the weak labels of w2s_train in the strong representation before "
        "the student trains (docs/pipeline.md)",
    )  # fmt: skip
    g.add_argument("--clean-k", type=int, default=d.clean_k, help="kNN neighbours (default 20)")
    g.add_argument(
        "--clean-l2", type=float, default=d.clean_l2, help="probe L2 penalty (default 1e-3)"
    )
    g.add_argument(
        "--clean-keep", type=float, default=None,
        help="kept fraction of the filters (default 0.9; confidence 0.5)",
    )  # fmt: skip
    e = parser.add_argument_group("several weak models (--weak A B C; docs/ensembles.md)")
    e.add_argument(
        "--combine", choices=COMBINE_RULES, default=None,
        help="how the weak models' outputs become one set of weak labels (default average)",
    )  # fmt: skip
    e.add_argument(
        "--combine-temperature", type=float, default=d.combine_temperature,
        help="τ of --combine metric: weights softmax(−op_norm/τ) (default 0.05)",
    )  # fmt: skip
    e.add_argument(
        "--combine-labels", type=int, default=d.combine_labels,
        help="--combine learned_labelled: true labels revealed on this many D̂ examples (100)",
    )  # fmt: skip
    add_finetune_arguments(parser)
    add_kernel_arguments(parser)


def add_finetune_arguments(parser: argparse.ArgumentParser) -> None:
    """How the models learn: probes (default) or fine-tuned transformers (full, LoRA)."""
    f = FinetuneConfig()
    g = parser.add_argument_group("training mode (fine-tuning needs --dataset/--data and models)")
    g.add_argument(
        "--train", choices=TRAIN_MODES, default=None,
        help="how the strong model (w2s student and ceiling) learns: a head on its frozen "
        "representation (probe, the default), every weight (full) or LoRA adapters (lora)",
    )  # fmt: skip
    g.add_argument(
        "--weak-train", choices=TRAIN_MODES, default=None,
        help="how the weak model learns (default: --train's mode when the weak model is a "
        "transformers checkpoint, else probe)",
    )  # fmt: skip
    g.add_argument("--grad-accum", type=int, default=None, help="micro-batches per step (1)")
    g.add_argument(
        "--max-length", type=int, default=None, help="token limit (default: the model's own)"
    )
    g.add_argument(
        "--warmup", type=float, default=None, help=f"warm-up fraction of steps ({f.warmup})"
    )
    g.add_argument("--schedule", choices=SCHEDULES, default=None, help="decay after warm-up")
    g.add_argument(
        "--head-lr", type=float, default=None, help=f"the linear head's rate ({f.head_lr})"
    )
    g.add_argument("--weight-decay", type=float, default=None, help="AdamW decay (0)")
    g.add_argument("--lora-rank", type=int, default=None, help=f"({f.lora_rank})")
    g.add_argument("--lora-alpha", type=int, default=None, help=f"({f.lora_alpha})")
    g.add_argument("--lora-dropout", type=float, default=None, help=f"({f.lora_dropout})")
    g.add_argument(
        "--gradient-checkpointing", action="store_true", default=None,
        help="--train full: save memory",
    )  # fmt: skip
    g.add_argument(
        "--select", choices=("best", "last"), default=None,
        help="keep the epoch of lowest val loss (best, the default; weak-labelled for the "
        "student; needs a val split, see --fractions) or the last one",
    )  # fmt: skip
    g.add_argument("--patience", type=int, default=None, help="early stopping (epochs)")
    g.add_argument("--device", choices=DEVICES, default=None, help="(auto)")
    g.add_argument(
        "--dtype", choices=DTYPES, default=None, help="auto: bfloat16 on CUDA, float32 on CPU"
    )
    w = parser.add_argument_group(
        "the weak model's own fine-tuning (--weak-train full|lora; each unset flag: the "
        "student's value; device and dtype are shared)"
    )
    w.add_argument("--weak-lr", type=float, default=None, help="peak rate (--lr)")
    w.add_argument("--weak-head-lr", type=float, default=None, help="head rate (--head-lr)")
    w.add_argument("--weak-epochs", type=int, default=None, help="epochs (--epochs)")
    w.add_argument("--weak-batch-size", type=int, default=None, help="(--batch-size)")
    w.add_argument("--weak-warmup", type=float, default=None, help="(--warmup)")
    w.add_argument("--weak-lora-rank", type=int, default=None, help="(--lora-rank)")
    w.add_argument("--weak-lora-alpha", type=int, default=None, help="(--lora-alpha)")


#: ``argparse`` destinations of ``w2sg run`` that are not inputs or options of :func:`w2sg.run`.
_CLI_ONLY = frozenset({"help", "out", "json"})


def run_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`w2sg.api.run` that ``args`` (of ``w2sg run``) stand for:
    every option of the sub-command under its destination name, which the API reads as the input
    or RunConfig field of the same name (an option the API does not know is an error there)."""
    keys = [a.dest for a in args.run_parser._actions if a.dest not in _CLI_ONLY]
    return {k: getattr(args, k) for k in keys}


def _column_values(args: argparse.Namespace) -> dict[str, Any]:
    from w2sg.api import COLUMN_OPTIONS

    return {name: getattr(args, name, None) for name in COLUMN_OPTIONS}


def load_data(args: argparse.Namespace) -> Any:
    """The :class:`~w2sg.data.datasets.Dataset` of ``--data FILE`` or ``--dataset NAME``, else
    ``None`` (array files): :func:`w2sg.api.load_data` on the arguments."""
    from w2sg.api import load_data as load

    return load(
        getattr(args, "data", None),
        getattr(args, "dataset", None),
        **_column_values(args),
        task=getattr(args, "task", None),
        limit=getattr(args, "limit", None),
        data_seed=getattr(args, "data_seed", 0),
        max_words=getattr(args, "max_words", None),
    )


def load_inputs(args: argparse.Namespace, dataset: Any = None) -> Any:
    """The :class:`~w2sg.api.RunInputs` of a command: ``dataset`` (from :func:`load_data`)
    embedded by the models ``--weak``/``--strong``, or the array files."""
    from w2sg.api import load_inputs as load

    return load(
        args.weak,
        args.strong,
        args.labels,
        weak_predictions=args.weak_predictions,
        loaded=dataset,
        limit=getattr(args, "limit", None),
        data_seed=getattr(args, "data_seed", 0),
        max_words=getattr(args, "max_words", None),
        pooling=getattr(args, "pooling", None),
    )


def describe_data(dataset: Any) -> list[str]:
    """Lines that say what was read (:func:`w2sg.api.describe_data`)."""
    from w2sg.api import describe_data as describe

    return list(describe(dataset))


def echo_to(args: argparse.Namespace) -> Any:
    """Where the lines describing the data go: stderr with ``--json`` (stdout is the JSON)."""
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout
    return lambda line: print(line, file=stream)


# --------------------------------------------------------------------------------------------
# Commands


_RUN_FILES = "config.json, metrics.json, predictions.npz"


def written_files(out: Path, since: float) -> str:
    """The files in ``out`` written since ``since`` (``time.time()``), for the "wrote" line."""
    names = sorted(
        p.name for p in out.iterdir() if p.is_file() and p.stat().st_mtime >= since - 0.5
    )
    return ", ".join(names)


def cmd_run(args: argparse.Namespace) -> int:
    from w2sg.api import run

    if args.out:
        check_out_dir(args.out, "--out", _RUN_FILES)
    checkpoints = Path(args.out) / "checkpoints" if args.out else None
    result = run(**run_kwargs(args), echo=echo_to(args), checkpoint_dir=checkpoints)
    if args.out:
        since = time.time()
        result.save(args.out)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.summary())
        if args.out:
            print(f"\nwrote {args.out}/ ({written_files(Path(args.out), since)})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from w2sg.experiments.demo import run_demo

    start = time.perf_counter()
    out = Path(args.out or ("runs/demo-synthetic" if args.synthetic else "runs/demo"))
    check_out_dir(out, "--out", _RUN_FILES)
    result, title = run_demo(seed=args.seed, synthetic=args.synthetic)
    since = time.time()
    result.save(out)
    record = result.to_dict()
    if args.json:
        print(json.dumps(record))
        return 0
    print(title)
    print(format_summary(record))
    print(f"\nwrote {out}/ ({written_files(out, since)}) in {time.perf_counter() - start:.1f} s")
    return 0


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="train weak, w2s and ceiling models on given representations and score them",
        description="Train the weak model on weak_train with true labels, label w2s_train with "
        "it, train the w2s student and the strong ceiling on w2s_train, and score all three.",
    )
    add_array_arguments(run, several_weak=True)
    add_run_config_arguments(run)
    run.add_argument("--out", help="write config.json, metrics.json, predictions.npz here")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    # The sub-command's own options (not the global ones) go to w2sg.run by name.
    run.set_defaults(func=cmd_run, run_parser=run)

    demo = subparsers.add_parser(
        "demo",
        help="run the main job on the embedded defaults",
        description="Rotten Tomatoes, weak static-64, strong minilm-l6, softmax heads: the whole "
        "pipeline with its table, theory and bounds (with --synthetic: the synthetic model of "
        "THEORY.md section 4). Writes config.json, metrics.json and predictions.npz.",
    )
    demo.add_argument(
        "--out", default=None,
        help="run folder (default runs/demo, or runs/demo-synthetic with --synthetic)",
    )  # fmt: skip
    demo.add_argument("--seed", type=seed, default=0, help="split and training seed (default 0)")
    demo.add_argument(
        "--synthetic",
        action="store_true",
        help="run on the synthetic model of THEORY.md §4 instead of real data",
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=cmd_demo)
