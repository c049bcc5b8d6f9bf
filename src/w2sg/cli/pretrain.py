"""``w2sg pretrain-smiles``: pretrain a family of small SMILES transformers (the molecular weak
models) by masked-language modelling on QM9 SMILES."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

_COLUMNS = ("name", "layers", "hidden", "steps", "params", "mlm_loss", "val_loss", "seconds", "")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pretrain-smiles",
        help="pretrain a family of small SMILES transformers (MLM on QM9 SMILES)",
        description="Pretrain every member of a family file (examples/molecular/family.yaml) and "
        "save each as a Hugging Face folder OUT/<name>; finished members are skipped.",
    )
    parser.add_argument("--family", required=True, type=Path, help="family file (.yaml or .json)")
    parser.add_argument(
        "--out", type=Path, default=None,
        help="folder for the models (default $W2SG_CACHE_DIR/smiles-lm, ~/.cache/w2sg/smiles-lm)",
    )  # fmt: skip
    parser.add_argument(
        "--limit-smiles", type=int, default=None,
        help="pretrain on N QM9 SMILES instead of the family's data.limit_smiles",
    )  # fmt: skip
    parser.add_argument(
        "--force", action="store_true", help="retrain members whose folder already exists"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from w2sg.errors import W2SGError
    from w2sg.progress import progress_bar
    from w2sg.represent.smiles_lm import (
        SmilesLMConfig,
        default_root,
        load_family,
        pretrain_family,
        read_pretrain_record,
    )

    if args.limit_smiles is not None and args.limit_smiles < 2:
        raise W2SGError(f"--limit-smiles must be >= 2, got {args.limit_smiles}")
    from w2sg.cli.checks import check_out_dir

    root = args.out.expanduser() if args.out is not None else default_root()
    check_out_dir(root, "--out", "one model folder per family member")
    family = load_family(args.family)
    total = sum(m.steps for m in family.models if read_pretrain_record(root / m.name) is None)
    bar = progress_bar(total, "pretrain", "step", enabled=not args.no_progress)

    def on_model(config: SmilesLMConfig) -> Any:
        bar.set_description(config.name)

        def step(_: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        return step

    try:
        results = pretrain_family(
            family, root, limit_smiles=args.limit_smiles, on_model=on_model, force=args.force
        )
    finally:
        bar.close()
    rows = [r.to_dict() for r in results]
    if args.json:
        print(json.dumps({"family": family.name, "models": rows}, indent=1))
        return 0
    cells = [
        [
            r.name, str(r.layers), str(r.hidden), str(r.steps), str(r.parameters),
            f"{r.final_loss:.3f}", "-" if r.val_loss is None else f"{r.val_loss:.3f}",
            f"{r.seconds:.1f}", "skipped (already trained)" if r.skipped else "",
        ]
        for r in results
    ]  # fmt: skip
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(_COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    print(f"models in {root}; embed with: w2sg embed --model hf:{root}/<name> ...")
    return 0
