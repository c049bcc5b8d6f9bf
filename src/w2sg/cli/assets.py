"""``w2sg models``, ``w2sg datasets``, ``w2sg embed`` and ``w2sg cache``: the offline assets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from w2sg.cli.checks import check_out_file, seed


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
    embed.add_argument(
        "--seed", type=seed, default=0, help="seed of the --limit subset (default 0)"
    )
    embed.add_argument(
        "--max-words", type=int, default=None,
        help="cut each text to its first N words first (the ids hash the cut texts)",
    )  # fmt: skip
    embed.add_argument("--batch-size", type=int, default=32, help="inputs per forward pass")
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
    from w2sg.api import COLUMN_OPTIONS, embed

    columns: dict[str, Any] = {name: getattr(args, name, None) for name in COLUMN_OPTIONS}

    from w2sg.represent.extract import check_device

    check_out_file(args.out, "--out", (".npy",))
    check_device(args.device)
    result = embed(
        args.model,
        args.dataset or args.texts or args.smiles,
        data=args.data,
        **columns,
        labels=args.labels,
        kind="text" if args.texts else "smiles" if args.smiles else None,
        layer=args.layer,
        pooling=args.pooling,
        limit=args.limit,
        seed=args.seed,
        max_words=args.max_words,
        batch_size=args.batch_size,
        device=args.device,
        cache=not args.no_cache,
        echo=print,
    )
    result.save(args.out)
    print(
        f"wrote {args.out} {result.shape} float32 and {args.out.with_suffix('.json')} "
        f"in {result.seconds:.2f} s"
    )
    return 0


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
