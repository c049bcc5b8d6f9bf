"""``w2sg run`` and ``w2sg demo``, and the argument helpers other commands share."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.cli.theory import add_kernel_arguments, kernel_config_from_args
from w2sg.config import HEADS, LOSSES, OPTIMIZERS, STEP_LOSSES, TASKS, RunConfig, default_head
from w2sg.errors import W2SGError


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--fractions takes comma-separated numbers like 0.4,0.4,0.2, got {text!r}"
        ) from None
    return values


def add_array_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weak/--strong/--labels`` (files) or ``--dataset`` with model names."""
    g = parser.add_argument_group("inputs")
    g.add_argument(
        "--weak",
        help="weak representation file (.npy/.npz/.parquet/.csv), or a model "
        "name with --dataset (NAME or NAME@LAYER)",
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
        "--data-seed", type=int, default=0,
        help="with --dataset --limit: seed of the random subset (default 0, as in sweeps)",
    )  # fmt: skip
    g.add_argument(
        "--max-words", type=int, default=None,
        help="with a text --dataset: cut each text to its first N words (every model alike)",
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
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
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
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--epochs", type=int, default=d.epochs, help="Adam epochs (--optimizer adam)")
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--max-iter", type=int, default=d.max_iter, help="L-BFGS iterations")
    g.add_argument("--radius", type=float, default=None, help="norm ball of --head least_squares")
    g.add_argument("--bootstrap", type=int, default=d.n_bootstrap, help="PGR bootstrap resamples")
    g.add_argument("--no-theory", action="store_true", help="skip the representation-kernel block")
    g.add_argument("--no-bounds", action="store_true", help="skip the bounds block")
    add_kernel_arguments(parser)


def config_from_args(args: argparse.Namespace, data_task: str | None = None) -> RunConfig:
    """The run's config; ``--task`` defaults to ``data_task`` (what the dataset says), else
    classification, and ``--head`` to the task's :func:`~w2sg.config.default_head`."""
    task = args.task or data_task or RunConfig.task
    config = RunConfig(
        task=task,
        head=args.head or default_head(task),
        loss=args.loss,
        optimizer=args.optimizer,
        weak_ridge=args.weak_ridge,
        strong_ridge=args.strong_ridge,
        fractions=tuple(args.fractions),
        seed=args.seed,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        max_iter=args.max_iter,
        radius=args.radius,
        n_bootstrap=args.bootstrap,
        kernel=kernel_config_from_args(args),
        theory=not args.no_theory,
        bounds=not args.no_bounds,
    )
    config.validate()
    return config


@dataclass
class Inputs:
    """What a command runs on: representations, labels and what the data says about itself.

    ``dataset`` is the loaded :class:`~w2sg.data.datasets.Dataset` with ``--data`` or
    ``--dataset`` (``None`` with array files); ``given_splits`` its own split per row, if any.
    """

    weak: np.ndarray | None
    strong: np.ndarray
    labels: np.ndarray
    weak_predictions: np.ndarray | None
    provenance: dict[str, Any]
    ids: np.ndarray | None = None
    dataset: Any = None
    given_splits: tuple[str, ...] | None = None


def columns_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~w2sg.data.files.Columns` of ``--text-column`` … ``--text-template``."""
    from w2sg.data.files import Columns, parse_column_list

    order = parse_column_list(args.label_order) if args.label_order else None
    return Columns(
        text=parse_column_list(args.text_column),
        label=args.label_column,
        id=args.id_column,
        split=args.split_column,
        smiles=args.smiles_column,
        label_order=order,
        template=args.text_template,
        task=getattr(args, "task", None),
    )


def _column_options_given(args: argparse.Namespace) -> list[str]:
    names = ("text_column", "label_column", "id_column", "split_column", "smiles_column",
             "label_order", "text_template")  # fmt: skip
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None)]


def load_data(args: argparse.Namespace) -> Any:
    """The :class:`~w2sg.data.datasets.Dataset` of ``--data FILE`` or ``--dataset NAME``, else
    ``None`` (array files). Cheap: nothing is embedded yet."""
    data_file = getattr(args, "data", None)
    name = getattr(args, "dataset", None)
    if data_file and name:
        raise W2SGError("give --data FILE or --dataset NAME, not both")
    if not data_file and not name:
        given = _column_options_given(args)
        if given:
            raise W2SGError(f"{given[0]} names a column of --data FILE (or --dataset hf:...)")
        return None
    select: dict[str, Any] = {
        "limit": getattr(args, "limit", None),
        "seed": getattr(args, "data_seed", 0),
        "max_words": getattr(args, "max_words", None),
    }
    if data_file:
        from w2sg.data.files import load_file

        return load_file(data_file, columns_from_args(args), **select)
    from w2sg.data.datasets import load_dataset

    columns = columns_from_args(args) if _column_options_given(args) else None
    return load_dataset(str(name), **select, columns=columns)


def _split_model(spec: str) -> tuple[str, int | str]:
    if "@" in spec:
        name, layer = spec.rsplit("@", 1)
        return name, (int(layer) if layer.lstrip("-").isdigit() else layer)
    return spec, -1


def embed_dataset(dataset: Any, model: str, what: str) -> np.ndarray:
    """The representation of every input of ``dataset`` by ``model`` (``NAME`` or
    ``NAME@LAYER``), through the embedding cache (keyed by the inputs' content)."""
    try:
        from w2sg.represent.extract import embed
        from w2sg.represent.models import get_spec
    except ImportError as exc:
        raise W2SGError(
            f"{what} with a dataset needs the representation extras ({exc.name} is missing); "
            "run `make demo` or `pip install -e .[text]`"
        ) from None
    name, layer = _split_model(model)
    spec = get_spec(name)
    if spec.kind != dataset.kind:
        raise W2SGError(
            f"{what}: model {name!r} reads {spec.kind} but {dataset.name} holds {dataset.kind}; "
            f"pick a {dataset.kind} model (w2sg models)"
        )
    return np.array(embed(name, dataset.inputs, layer=layer), dtype=np.float32)


def data_provenance(dataset: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The provenance of a loaded dataset: its source, columns, label mapping and notes."""
    prov: dict[str, Any] = {
        "dataset": dataset.name,
        "data": {**dataset.provenance, "notes": list(dataset.notes)},
        "limit": getattr(args, "limit", None),
        "data_seed": getattr(args, "data_seed", 0),
        "max_words": getattr(args, "max_words", None),
        "n_examples": len(dataset),
    }
    if dataset.classes and "label_mapping" not in prov["data"]:
        prov["data"]["label_mapping"] = {c: i for i, c in enumerate(dataset.classes)}
    return prov


def load_inputs(args: argparse.Namespace, dataset: Any = None) -> Inputs:
    """Load the inputs of a command: ``dataset`` (from :func:`load_data`) embedded by the
    models ``--weak``/``--strong``, or the array files ``--weak/--strong/--labels``."""
    if dataset is not None:
        return _dataset_inputs(args, dataset)
    from w2sg.data.io import file_sha256, load_array

    if not args.strong or not args.labels or not (args.weak or args.weak_predictions):
        raise W2SGError(
            "give --weak W.npy (or --weak-predictions P.npy), --strong S.npy and --labels y.npy, "
            "or --data FILE / --dataset NAME with model names"
        )
    files = {
        "weak": args.weak,
        "strong": args.strong,
        "labels": args.labels,
        "weak_predictions": args.weak_predictions,
    }
    loaded = {k: load_array(v, f"--{k.replace('_', '-')}") if v else None for k, v in files.items()}
    strong, labels = loaded["strong"], loaded["labels"]
    assert strong is not None and labels is not None
    prov = {
        "inputs": {
            k: {"path": str(v), "sha256": file_sha256(v.split(".npz:")[0])}
            for k, v in files.items()
            if v
        }
    }
    return Inputs(loaded["weak"], strong, labels, loaded["weak_predictions"], prov)


def _dataset_inputs(args: argparse.Namespace, dataset: Any) -> Inputs:
    if not args.weak or not args.strong:
        raise W2SGError(
            "--data and --dataset need --weak MODEL and --strong MODEL (see `w2sg models`)"
        )
    if args.weak_predictions:
        raise W2SGError("--weak-predictions is for array inputs; with --data give --weak MODEL")
    weak = embed_dataset(dataset, args.weak, "--weak")
    strong = embed_dataset(dataset, args.strong, "--strong")
    from w2sg.represent.models import model_fingerprint

    names = [_split_model(m)[0] for m in (args.weak, args.strong)]
    prov = data_provenance(dataset, args)
    prov.update(
        models={name: model_fingerprint(name) for name in names},
        weak_model=args.weak,
        strong_model=args.strong,
    )
    return Inputs(
        weak, strong, dataset.labels, None, prov, ids=np.asarray(dataset.ids),
        dataset=dataset, given_splits=dataset.splits or None,
    )  # fmt: skip


def describe_data(dataset: Any) -> list[str]:
    """Lines that say what was read: rows used, left out, and the label mapping."""
    prov = dataset.provenance
    lines = []
    if "n_rows" in prov:
        lines.append(
            f"data: {dataset.name}: {prov['n_rows']} rows read, {prov['n_used']} used "
            f"({dataset.kind}, task {dataset.task})"
        )
    else:
        lines.append(f"data: {dataset.name}: {len(dataset)} examples ({dataset.task})")
    lines += [f"  {note}" for note in dataset.notes]
    if dataset.classes:
        how = "as given by --label-order" if prov.get("label_order") == "given" else "sorted"
        mapping = ", ".join(f"{c!r} → {i}" for i, c in enumerate(dataset.classes))
        lines.append(f"  labels: {mapping} ({how})")
    if prov.get("template"):
        lines.append(f"  text template: {prov['template']!r}")
    if dataset.splits:
        counts = {s: dataset.splits.count(s) for s in dict.fromkeys(dataset.splits)}
        lines.append("  splits from the file: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return lines


# --------------------------------------------------------------------------------------------
# Printing


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def format_summary(record: dict[str, Any]) -> str:
    """A readable table of one run: weak / w2s / ceiling, PGR, theory and bounds highlights."""
    task = record["task"]
    cols = {
        "classification": ["accuracy", "auroc", "cross_entropy", "ece", "smooth_ce"],
        "probability": ["kl", "accuracy", "ece", "smooth_ce", "mse"],
        "regression": ["mse", "rmse", "mae", "r2"],
    }[task]
    n = record["n"]
    lines = ["split sizes: " + " · ".join(f"{k} {v}" for k, v in n.items())]
    mapping = (record.get("provenance") or {}).get("data", {}).get("label_mapping")
    if mapping:
        lines.append("classes: " + ", ".join(f"{i} = {c}" for c, i in mapping.items()))
    lines.append("")
    lines.append(f"{'model':<10}" + "".join(f"{c:>15}" for c in cols))
    for model in ("weak", "w2s", "ceiling"):
        row = record[model]
        lines.append(f"{model:<10}" + "".join(f"{_fmt(row.get(c)):>15}" for c in cols))
    p = record["pgr"]
    pgr = f"PGR ({p['metric']}, test): {_fmt(p['value'], 3)}"
    if p.get("ci_low") is not None:
        pgr += f"  95% CI [{_fmt(p['ci_low'], 3)}, {_fmt(p['ci_high'], 3)}]"
    if p.get("reason"):
        pgr += f"  ({p['reason']})"
    lines += ["", pgr]
    t = record.get("theory")
    if t:
        lines += [
            "",
            "representation kernels (ridge heads, following [X]):",
            f"  label-free ‖P_s(I−P_w)‖_op {_fmt(t.get('op_norm'))}   "
            f"‖·‖_F²/n {_fmt(t.get('fro_sq_over_n'))}   k_weak {t.get('k_weak')}   "
            f"k_strong {t.get('k_strong')}",
            f"  predicted gap G {_fmt(t.get('predicted_gap'))}   measured PredGap "
            f"{_fmt(t.get('measured_gap'))}   Err(w2s)−Err(ceiling) "
            f"{_fmt(t.get('w2s_minus_ceiling'))}   cross term {_fmt(t.get('cross_term'))}",
            f"  weak error on D̂ ‖e‖²/n {_fmt(t.get('weak_error_hat'))}   inherited ‖S_s e‖²/n "
            f"{_fmt(t.get('inherited_error'))}   corrected ‖(I−S_s)e‖²/n "
            f"{_fmt(t.get('corrected_error'))}",
        ]
    b = record.get("bounds")
    if b:
        lines += ["", "bounds (following [Y]/[C]; test unless marked D̂):"]
        rows: list[tuple[str, Any]] = []
        if "generalization" in b:
            rows.append(("cross-entropy, TV form", b["generalization"]["tv"]))
            rows.append(("0-1 error", b["disagreement"]))
            for entry in b["calibration"]["per_class"]:
                rows.append((f"smooth CE, class {entry['class']}", entry["mean_abs"]))
        for name in ("misfit_sq", "misfit_kl"):
            if name in b:
                rows.append((f"{name} on D̂", b[name]["train"]))
                rows.append((f"{name} on test", b[name]["test"]))
        for label, entry in rows:
            lines.append(f"  {label:<24}{_bound_row(entry)}")
        for note in b.get("notes", []):
            lines.append(f"  note: {note}")
    for note in record.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _bound_row(entry: dict[str, Any]) -> str:
    """One line for a bound ``{measured, weak, lower, upper, holds}`` or a misfit entry."""
    if "misfit" in entry:
        return (
            f"err_w2s {_fmt(entry['err_w2s'])} ≤ err_weak − misfit = {_fmt(entry['err_weak'])} − "
            f"{_fmt(entry['misfit'])}   holds {entry['holds']}"
        )
    return (
        f"measured {_fmt(entry['measured'])}  weak {_fmt(entry.get('weak'))}  "
        f"bound [{_fmt(entry.get('lower'))}, {_fmt(entry.get('upper'))}]  holds {entry['holds']}"
    )


# --------------------------------------------------------------------------------------------
# Commands


def cmd_run(args: argparse.Namespace) -> int:
    dataset = load_data(args)
    config = config_from_args(args, dataset.task if dataset is not None else None)
    if dataset is not None:  # what was read, before the (possibly long) extraction
        print("\n".join(describe_data(dataset)), file=sys.stderr if args.json else sys.stdout)
    inputs = load_inputs(args, dataset)
    from w2sg.pipeline import run_pipeline

    result = run_pipeline(
        inputs.weak, inputs.strong, inputs.labels, config,
        weak_predictions=inputs.weak_predictions, ids=inputs.ids, provenance=inputs.provenance,
        given_splits=inputs.given_splits,
    )  # fmt: skip
    record = result.to_dict()
    if args.out:
        result.save(args.out)
    if args.json:
        print(json.dumps(record))
    else:
        print(format_summary(record))
        if args.out:
            print(f"\nwrote {Path(args.out) / 'metrics.json'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from w2sg.experiments.demo import run_demo

    start = time.perf_counter()
    result, title = run_demo(seed=args.seed, synthetic=args.synthetic)
    out = Path(args.out)
    result.save(out)
    record = result.to_dict()
    if args.json:
        print(json.dumps(record))
        return 0
    print(title)
    print(format_summary(record))
    print(
        f"\nwrote {out}/ (config.json, metrics.json, predictions.npz) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


def register(subparsers: Any) -> None:
    run = subparsers.add_parser(
        "run",
        help="train weak, w2s and ceiling models on given representations and score them",
        description="Train the weak model on weak_train with true labels, label w2s_train with "
        "it, train the w2s student and the strong ceiling on w2s_train, and score all three.",
    )
    add_array_arguments(run)
    add_run_config_arguments(run)
    run.add_argument("--out", help="write config.json, metrics.json, predictions.npz here")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(func=cmd_run)

    demo = subparsers.add_parser("demo", help="run the main job on the embedded defaults")
    demo.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--synthetic",
        action="store_true",
        help="run on the synthetic model of THEORY.md §4 instead of real data",
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=cmd_demo)
