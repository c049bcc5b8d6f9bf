"""The per-task tables of docs/finetune-study.md from a fine-tuning study's results store.

    python examples/finetune_study_tables.py runs/finetune-study.db

One row per task x weak supervisor (means over seeds) for each entry of the sweep: the weak
model's test accuracy, the student's accuracy / AUROC / cross-entropy, the ceiling's accuracy,
op_norm from the frozen representations (`theory`) and from the fine-tuned ceiling's own
(`theory_finetuned`), the kept epochs and what selected them, and the seconds of training. The
correlations with bootstrap intervals come from `w2sg study` (see the page).
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from typing import Any

import numpy as np

from w2sg.experiments.studies import done_runs


def _mean(values: list[Any]) -> float:
    xs = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return float(np.mean(xs)) if xs else math.nan


def _get(row: dict[str, Any], *path: str) -> Any:
    value: Any = row
    for key in path:
        value = (value or {}).get(key) if isinstance(value, dict) else None
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--score", default="accuracy", help="the headline score column")
    args = parser.parse_args()
    groups: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in done_runs(args.store):
        train = _get(row, "metrics", "train") or {}
        mode = (train.get("w2s") or {}).get("mode", "probe")
        weak_mode = (train.get("weak") or {}).get("mode", "probe")
        if weak_mode != "probe":
            mode += f", weak: {weak_mode}"
        groups[(str(row["task"]), mode)][str(row["weak"])].append(row)
    for (task, mode), by_weak in sorted(groups.items()):
        print(f"\n### {task}, student: {mode}\n")
        sc = args.score
        head = ["weak", "seeds", f"weak {sc}", f"w2s {sc}", "w2s AUROC", "w2s CE", f"ceiling {sc}",
                "op_norm (frozen)", "op_norm (ft)", "kept epochs (w2s)", "w2s s"]  # fmt: skip
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        lines = []
        for weak, runs in by_weak.items():

            def m(model: str, key: str, runs: list[dict[str, Any]] = runs) -> float:
                return _mean([_get(r, "metrics", model, key) for r in runs])

            epochs = [_get(r, "metrics", "train", "w2s", "best_epoch") for r in runs]
            kept = ",".join(str(e) for e in epochs if e is not None) or "-"
            seconds = _mean([_get(r, "metrics", "train", "w2s", "seconds") for r in runs])
            op = _mean([_get(r, "theory", "op_norm") for r in runs])
            op_ft = _mean([_get(r, "metrics", "theory_finetuned", "op_norm") for r in runs])
            lines.append(
                (
                    m("w2s", args.score) * (-1 if args.score in ("accuracy", "auroc") else 1),
                    [weak, str(len(runs)), f"{m('weak', args.score):.3f}",
                     f"{m('w2s', args.score):.3f}", f"{m('w2s', 'auroc'):.3f}",
                     f"{m('w2s', 'cross_entropy'):.3f}", f"{m('ceiling', args.score):.3f}",
                     f"{op:.3f}", "-" if math.isnan(op_ft) else f"{op_ft:.3f}", kept,
                     "-" if math.isnan(seconds) else f"{seconds:.0f}"],
                )
            )  # fmt: skip
        for _, cells in sorted(lines, key=lambda x: x[0]):
            print("| " + " | ".join(cells) + " |")
        selected = sorted(
            {
                f"{role}: {_get(r, 'metrics', 'train', role, 'selected_by')}"
                for runs in by_weak.values()
                for r in runs
                for role in ("weak", "w2s", "ceiling")
                if _get(r, "metrics", "train", role, "selected_by")
            }
        )
        if selected:
            print("\nselected by: " + "; ".join(selected))


if __name__ == "__main__":
    main()
