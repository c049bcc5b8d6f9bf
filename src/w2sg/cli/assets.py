"""``w2sg models``, ``w2sg datasets``, ``w2sg embed`` and ``w2sg cache``: the offline assets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from w2sg.errors import W2SGError


def register(subparsers: Any) -> None:
    models = subparsers.add_parser(
        "models", help="list the registered models and whether they load offline now"
    )
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_models)

    datasets = subparsers.add_parser(
        "datasets", help="list the registered datasets and whether they load offline now"
    )
    datasets.add_argument("--json", action="store_true", help="print JSON instead of a table")
    datasets.set_defaults(func=_datasets)

    embed = subparsers.add_parser(
        "embed", help="extract representations of a dataset or a file of texts / SMILES"
    )
    embed.add_argument(
        "--model", required=True, help="registered name, hf:<name-or-path> or a folder"
    )
    source = embed.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset", help="registered dataset (w2sg datasets), e.g. rotten_tomatoes"
    )
    source.add_argument(
        "--texts", type=Path,
        help="UTF-8 file with one text per line (texts with newlines: use --data)",
    )  # fmt: skip
    source.add_argument("--smiles", type=Path, help="file with one SMILES per line")
    from w2sg.cli.run import DATA_HELP, add_data_arguments

    source.add_argument("--data", help=f"{DATA_HELP} (see the column options)")
    add_data_arguments(embed, with_data=False)
    embed.add_argument(
        "--labels", type=Path,
        help="with --texts/--smiles: a labels file (.npy/.csv, one per line) to check the line "
        "count against and copy into OUT.json",
    )  # fmt: skip
    embed.add_argument(
        "--layer", "--layers", dest="layer", default="-1",
        help="hidden-state index (0 = embeddings, -1 = last) or 'all' (default -1)",
    )  # fmt: skip
    embed.add_argument(
        "--pooling", choices=("mean", "cls", "last", "max"), default=None,
        help="token pooling (default: the model's own, else the registry default)",
    )  # fmt: skip
    embed.add_argument("--limit", type=int, default=None, help="seeded random subset of N rows")
    embed.add_argument("--seed", type=int, default=0, help="seed of the --limit subset")
    embed.add_argument(
        "--max-words", type=int, default=None,
        help="cut each text to its first N words first (the ids hash the cut texts)",
    )  # fmt: skip
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    embed.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    embed.add_argument("--out", required=True, type=Path, help="output .npy (ids in OUT.json)")
    embed.set_defaults(func=_embed)

    cache = subparsers.add_parser("cache", help="list or clear the embedding cache")
    cache_sub = cache.add_subparsers(dest="cache_command", metavar="ACTION")
    ls = cache_sub.add_parser("ls", help="list cached embeddings")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=_cache_ls)
    clear = cache_sub.add_parser("clear", help="delete cached embeddings")
    clear.add_argument(
        "--all", action="store_true",
        help="also delete assembled models and extracted dataset files",
    )  # fmt: skip
    clear.set_defaults(func=_cache_clear)
    cache.set_defaults(func=lambda args: (cache.print_help(), 2)[1])


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("-" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _yes(value: object) -> str:
    return "yes" if value else "no"


def _models(args: argparse.Namespace) -> int:
    from w2sg.represent.models import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    shown = [
        {
            **r,
            "available": _yes(r["available"]),
            "size": f"{r['size_mb']:g} MB" if r["size_mb"] else "-",
        }
        for r in rows
    ]
    print(
        _table(
            shown,
            [
                "name",
                "kind",
                "available",
                "source",
                "dim",
                "layers",
                "size",
                "extra",
                "description",
            ],
        )
    )
    missing = [r for r in rows if not r["available"]]
    if missing:
        print(f"\n{len(missing)} not installed; e.g. {missing[0]['name']}: {missing[0]['install']}")
    return 0


def _datasets(args: argparse.Namespace) -> int:
    from w2sg.data.datasets import list_datasets

    rows = list_datasets()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    shown = [{**r, "available": _yes(r["available"])} for r in rows]
    print(_table(shown, ["name", "kind", "task", "available", "size", "extra", "description"]))
    missing = [r for r in rows if not r["available"]]
    if missing:
        print(f"\n{len(missing)} not installed; e.g. {missing[0]['name']}: {missing[0]['install']}")
    return 0


def _embed(args: argparse.Namespace) -> int:
    import numpy as np

    from w2sg.atomic import save_npy
    from w2sg.data.datasets import read_lines, truncate_words
    from w2sg.data.splits import text_ids
    from w2sg.represent.cache import atomic_write_json
    from w2sg.represent.extract import embed
    from w2sg.represent.models import get_spec

    if args.out.suffix != ".npy":
        raise W2SGError(f"--out must end in .npy, got {args.out}")
    if args.limit is not None and args.limit < 1:
        raise W2SGError(f"--limit must be >= 1, got {args.limit}")
    spec = get_spec(args.model)
    meta: dict[str, Any] = {
        "model": args.model,
        "layer": args.layer,
        "pooling": args.pooling,
        "max_words": args.max_words,
    }
    data: Any = None
    labels_match = True
    if args.dataset or args.data:
        from w2sg.cli.run import describe_data, load_data

        args.data_seed = args.seed
        data = load_data(args)
        print("\n".join(describe_data(data)))
        inputs, ids, kind = data.inputs, data.ids, data.kind
        meta.update(dataset=data.name, task=data.task, classes=list(data.classes))
        if data.provenance:
            meta["data"] = data.provenance
        if data.splits:
            meta["splits"] = list(data.splits)
    else:
        from w2sg.cli.run import _column_options_given

        given = _column_options_given(args)
        if given:
            raise W2SGError(f"{given[0]} names a column of --data FILE (or --dataset hf:...)")
        path = args.texts or args.smiles
        kind = "text" if args.texts else "smiles"
        labels_match = _warn_lines(path, args.labels)
        inputs = read_lines(path)
        if args.limit is not None:
            inputs = inputs[: args.limit]
        if args.max_words is not None:
            if args.max_words < 1 or kind != "text":
                raise W2SGError("--max-words takes N >= 1 and applies to texts, not SMILES")
            inputs, _ = truncate_words(inputs, args.max_words)
        ids = [str(i) for i in text_ids(inputs)]
        meta.update(source=str(path))
    if spec.kind != kind:
        raise W2SGError(
            f"model {args.model!r} reads {spec.kind}, but the inputs are {kind}; pick a {kind} "
            "model (w2sg models)"
        )
    start = time.perf_counter()
    X = embed(
        args.model,
        inputs,
        layer=args.layer,
        pooling=args.pooling,
        batch_size=args.batch_size,
        device=args.device,
        cache=not args.no_cache,
    )
    elapsed = time.perf_counter() - start
    save_npy(args.out, np.asarray(X))
    meta.update(shape=list(X.shape), ids=ids)
    if data is not None:
        meta["labels"] = data.labels.tolist()
    elif args.labels is not None and labels_match and args.limit is None:
        from w2sg.data.io import load_array

        meta["labels"] = load_array(str(args.labels), "--labels").tolist()
    atomic_write_json(args.out.with_suffix(".json"), meta)
    print(
        f"wrote {args.out} {tuple(X.shape)} float32 and {args.out.with_suffix('.json')} "
        f"in {elapsed:.2f} s"
    )
    return 0


def _warn_lines(path: Path, labels: Path | None) -> bool:
    """Warn about what one-text-per-line files get wrong: blank lines (skipped, so later rows
    shift against labels kept elsewhere) and a line count that differs from ``--labels``.
    Returns whether the labels (if any) match the texts."""
    import sys

    from w2sg.data.files import check_text_lines

    found = check_text_lines(path)
    if found.blank:
        lines = ", ".join(map(str, found.blank[:5])) + (" …" if len(found.blank) > 5 else "")
        print(
            f"w2sg: warning: {path} has {len(found.blank)} blank lines (line {lines}), skipped: "
            "rows after them shift; for texts with newlines use --data FILE --text-column COL",
            file=sys.stderr,
        )
    if labels is not None:
        from w2sg.data.io import load_array

        n_labels = len(load_array(str(labels), "--labels"))
        n_texts = found.n_lines - len(found.blank)
        if n_labels != n_texts:
            print(
                f"w2sg: warning: {path} has {n_texts} non-blank lines but --labels has "
                f"{n_labels} rows, so the labels are not copied; a text with a newline spans "
                "several lines: use --data FILE --text-column COL",
                file=sys.stderr,
            )
            return False
    return True


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _cache_ls(args: argparse.Namespace) -> int:
    from w2sg.represent.cache import EmbeddingCache

    store = EmbeddingCache()
    entries = store.entries()
    rows = [
        {
            "key": e.key[:12],
            "model": e.meta.get("model"),
            "layer": e.meta.get("layer"),
            "pooling": e.meta.get("pooling"),
            "shape": "x".join(str(s) for s in e.shape),
            "size": _human(e.nbytes),
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(e.meta.get("created", 0))),
        }
        for e in entries
    ]
    if args.json:
        print(
            json.dumps(
                [
                    {**r, "key": e.key, "path": str(e.path), "bytes": e.nbytes}
                    for r, e in zip(rows, entries, strict=True)
                ],
                indent=1,
            )
        )
        return 0
    if rows:
        print(_table(rows, ["key", "model", "layer", "pooling", "shape", "size", "created"]))
    total = sum(e.nbytes for e in entries)
    print(f"{len(entries)} cached embeddings, {_human(total)} in {store.folder}")
    return 0


def _cache_clear(args: argparse.Namespace) -> int:
    import shutil

    from w2sg.represent.cache import EmbeddingCache

    store = EmbeddingCache()
    n, freed = store.clear()
    print(f"removed {n} cached embeddings ({_human(freed)}) from {store.folder}")
    if args.all:
        for sub in ("models", "datasets"):
            folder = store.root / sub
            if folder.exists():
                shutil.rmtree(folder)
                print(f"removed {folder}")
    return 0
