"""``w2sg sweep``, ``w2sg export``, ``w2sg study`` and ``w2sg report``."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from w2sg.cli.checks import seed
from w2sg.errors import W2SGError


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def cmd_sweep(args: argparse.Namespace) -> int:
    from w2sg.api import sweep as run_sweep
    from w2sg.experiments.sweep import load_sweep

    sweep = load_sweep(args.config)
    if args.dry_run:
        specs = sweep.expand()
        if args.json:
            print(json.dumps({"total": len(specs), "runs": [s.to_dict() for s in specs]}))
        else:
            for s in specs:
                print(f"{s.config_hash[:12]}  {s.task_name}  {s.weak.label} → {s.strong.label}  "
                      f"{s.head_label}  seed {s.config.seed}")  # fmt: skip
            print(f"{len(specs)} runs")
        return 0
    summary = run_sweep(
        sweep,
        args.store,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        retry_failed=args.retry_failed,
        progress=not args.no_progress,
        gpus_per_extraction=args.gpus_per_extraction,
        verbose=args.verbose,
    )
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print(
            f"{summary.total} runs: {summary.executed} executed ({summary.failed} failed), "
            f"{summary.skipped} already in {args.store}; {summary.seconds:.1f} s"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from w2sg.cli.checks import check_out_file
    from w2sg.experiments.store import export_runs

    check_out_file(args.out, "--out", (".parquet", ".csv"))
    status = None if args.status == "all" else args.status
    n = export_runs(args.store, args.out, status=status)
    print(f"wrote {n} runs to {args.out}", file=sys.stderr)
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from w2sg.experiments.studies import (
        done_runs,
        format_table,
        format_weak_table,
        run_study,
        weak_table,
    )

    _check(args.bootstrap >= 1, f"--bootstrap must be >= 1, got {args.bootstrap}")
    _check(0 < args.confidence < 1, f"--confidence must be in (0, 1), got {args.confidence}")
    if args.rank:
        from w2sg.experiments.studies import format_rank_table, rank_summary, rank_table

        table = rank_table(done_runs(args.store), error=args.error, n_boot=args.bootstrap,
                           confidence=args.confidence, seed=args.seed)  # fmt: skip
        if args.plot:
            from w2sg.experiments.studies import rank_points
            from w2sg.report.plots import rank_vs_error

            for i, points in enumerate(rank_points(done_runs(args.store), error=args.error)):
                path = Path(args.plot)
                target = path.with_name(f"{path.stem}-{i + 1}{path.suffix}") if i else path
                rank_vs_error(target, points, points["spearman"], points["ensembles"])
                print(f"wrote {target}", file=sys.stderr)
        if args.json:
            out = {"rows": table, "summary": rank_summary(table)}
            print(json.dumps(_json_safe(out), allow_nan=False))
        else:
            print(format_rank_table(table))
        return 0
    _check(
        args.score is None or args.error == "metrics",
        "--score names a test metric of the student; use it with --error metrics",
    )
    if args.ensembles:
        from w2sg.experiments.studies import ensemble_table, format_ensemble_table

        rows = ensemble_table(done_runs(args.store), error=args.error, score=args.score)
        if not rows:
            raise W2SGError(
                f"{args.store} holds no ensemble runs; add a weak entry "
                "{ensemble: [A, B, C], combine: metric} to the sweep (docs/sweeps.md)"
            )
        print(
            json.dumps(_json_safe(rows), allow_nan=False)
            if args.json
            else format_ensemble_table(rows)
        )
        return 0
    if args.by_weak:
        rows = weak_table(
            done_runs(args.store), error=args.error, score=args.score, theory=args.theory
        )
        print(
            json.dumps(_json_safe(rows), allow_nan=False) if args.json else format_weak_table(rows)
        )
        return 0
    table = run_study(
        args.store, error=args.error, n_boot=args.bootstrap, confidence=args.confidence,
        seed=args.seed, score=args.score, theory=args.theory,
    )  # fmt: skip
    if args.json:
        print(json.dumps(_json_safe(table), allow_nan=False))
    else:
        print(format_table(table))
        if not table:
            print(
                "no single weak models to correlate: every finished run has an ensemble weak "
                "side (w2sg study --ensembles, --by-weak)",
                file=sys.stderr,
            )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from w2sg.cli.checks import check_out_dir
    from w2sg.report import build_report

    _check(args.bootstrap >= 1, f"--bootstrap must be >= 1, got {args.bootstrap}")
    check_out_dir(args.out, "--out", "index.html and its figures")
    index = build_report(args.source, args.out, n_boot=args.bootstrap)
    for line in _report_summary(Path(args.source), index):
        print(line)
    return 0


def _report_summary(source: Path, index: Path) -> list[str]:
    """What ``w2sg report`` prints: what the page covers, its figures, and the page's path last
    (alone on its line, so ``| tail -1`` gives it, as before the summary)."""
    import re

    from w2sg.experiments.store import ResultStore

    if source.is_dir():
        metrics = source / "metrics.json"
        record = json.loads(metrics.read_text(encoding="utf-8")) if metrics.is_file() else {}
        what = [str(record.get("task") or "epochs only")]
        dataset = (record.get("provenance") or {}).get("dataset")
        what += [str(dataset)] if dataset else []
        epochs = " and epochs.csv" if (source / "epochs.csv").is_file() else ""
        covers = f"1 run ({', '.join(what)}) from run folder {source}{epochs}"
    else:
        with ResultStore(source, read_only=True) as store:
            total, done, failed = store.count(), store.count("done"), store.count("failed")
            tasks = sorted({str(row["task"]) for row in store.iter_rows()})
        shown = ", ".join(tasks[:6]) + (", …" if len(tasks) > 6 else "")
        covers = (
            f"{total} runs ({done} done, {failed} failed) over {len(tasks)} "
            f"task{'s' * (len(tasks) != 1)} ({shown}) from {source}"
        )
    figures = set(re.findall(r'<img[^>]*\bsrc="([^"]+)"', index.read_text(encoding="utf-8")))
    return [
        f"report: {covers}",
        f"figures: {len(figures)} PNG files written beside the page",
        str(index),
    ]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run every combination of a sweep config once, recording results in a store",
        description="Run tasks × weak models × strong models × heads × seeds from a YAML config. "
        "Runs already in the store are skipped, so a killed sweep resumes where it stopped.",
    )
    p.add_argument("config", help="sweep YAML (see docs/sweeps.md and examples/)")
    p.add_argument("--store", required=True, help="SQLite results store (created if missing)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: a process pool; ray: Ray tasks (default: local)")  # fmt: skip
    p.add_argument("--ray-address", help="join a running Ray cluster ('auto' to find it); "
                   "default: start a local one")  # fmt: skip
    p.add_argument("--workers", type=int, help="parallel workers (default: the number of cores)")
    p.add_argument("--gpus-per-extraction", type=float, default=None,
                   help="with --executor ray: GPUs per extraction by a neural model (default: 1 "
                   "when the cluster has GPUs, else 0)")  # fmt: skip
    p.add_argument("--retry-failed", action="store_true", help="re-run runs recorded as failed")
    p.add_argument("--dry-run", action="store_true", help="list the runs, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--verbose", action="store_true",
                   help="with --executor ray: show the Ray workers' own log lines")  # fmt: skip
    p.add_argument("--json", action="store_true",
                   help="print {total, executed, skipped, failed, seconds}")  # fmt: skip
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("export", help="export a results store to Parquet or CSV")
    p.add_argument("store", help="SQLite results store of `w2sg sweep`")
    p.add_argument("--out", required=True, help="runs.parquet or runs.csv (flattened columns)")
    p.add_argument(
        "--status", choices=("all", "done", "failed"), default="all", help="which runs to export"
    )
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser(
        "study",
        help="correlations between representation metrics and weak-to-strong error",
        description="Per task and strong model: Spearman, Kendall and Pearson correlations "
        "(bootstrap CIs over weak models) between op_norm, fro_sq_over_n, predicted_gap and the "
        "weak-to-strong test error.",
    )
    p.add_argument("store", help="SQLite results store of `w2sg sweep`")
    p.add_argument("--error", choices=("metrics", "theory"), default="metrics",
                   help="metrics: the trained head's test error (1 − accuracy, MSE or KL); "
                   "theory: the ridge head's test MSE from the theory block")  # fmt: skip
    p.add_argument("--score",
                   help="the student's error from this test metric instead of the headline one: "
                   "auroc, accuracy or r2 as 1 − score; cross_entropy, ece, mse, mae as "
                   "themselves")  # fmt: skip
    p.add_argument("--theory", choices=("frozen", "finetuned"), default="frozen",
                   help="frozen: op_norm etc. from the frozen representations (the run's theory "
                   "block); finetuned: from the fine-tuned ceiling's own representations "
                   "(theory_finetuned; --train full|lora runs only)")  # fmt: skip
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (0.95)")
    p.add_argument("--seed", type=seed, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--by-weak", action="store_true",
                   help="instead of correlations, one row per weak model (means over seeds): "
                   "scores, PGR, op_norm, fro_sq_over_n, predicted_gap, k_w, error")  # fmt: skip
    p.add_argument("--rank", action="store_true",
                   help="a rank study: did the weak model each ranker puts first turn out best? "
                   "precision@1 (within one SE of the best), regret, Spearman, per task and "
                   "overall (docs/rank-study.md)")  # fmt: skip
    p.add_argument("--ensembles", action="store_true",
                   help="does each ensemble weak side beat its members? its student's error "
                   "against the member the label-free op_norm picks and the best member, "
                   "paired by seed (docs/sweeps.md)")  # fmt: skip
    p.add_argument("--plot", help="with --rank: rank vs realised error per task to this PNG "
                   "(one file per task and configuration: NAME.png, NAME-2.png, ...)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=cmd_study)

    p = subparsers.add_parser(
        "report",
        help="HTML report with figures for a run folder or a results store",
    )
    p.add_argument("source", help="a run folder (w2sg run --out) or a sweep's .db")
    p.add_argument("--out", required=True, help="output folder for index.html and its PNGs")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    p.set_defaults(func=cmd_report)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise W2SGError(message)
