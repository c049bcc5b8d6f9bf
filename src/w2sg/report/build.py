"""Build the HTML report of a run directory or a sweep's results store.

``build_report(source, out)`` writes ``out/index.html`` and its PNG figures beside it. A *run
directory* is what ``w2sg run --out`` writes (``metrics.json``, ``predictions.npz``) plus, when
present, ``epochs.csv`` from ``w2sg epochs``. A *store* is the SQLite file of ``w2sg sweep``.
Sections whose data the source does not have say so instead of disappearing, so every report has the
same outline.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2sg import atomic
from w2sg.errors import W2SGError
from w2sg.report import plots

SECTIONS: tuple[str, ...] = (
    "Summary",
    "Representation metrics vs weak-to-strong error",
    "PGR per pair",
    "Reliability diagrams",
    "Bounds vs measured",
    "Over-optimization",
    "Predicted vs measured gap",
)
#: Sections a page has only when its source holds their rows (a results store with several
#: single weak models per group, ensemble runs, runs with strong-to-strong rounds), each placed
#: after the section named beside it.
OPTIONAL_SECTIONS: dict[str, str] = {
    "Rank vs realized error": "Representation metrics vs weak-to-strong error",
    "Ensemble weights": "PGR per pair",
    "Strong-to-strong rounds": "Ensemble weights",
}


def page_sections(sections: dict[str, Section]) -> list[Section]:
    """Every section of :data:`SECTIONS` in order, with each optional section that has content
    after the one it follows."""
    out: list[Section] = []

    def add(title: str) -> None:
        out.append(sections[title])
        for name, after in OPTIONAL_SECTIONS.items():
            if after == title and name in sections and sections[name].blocks:
                add(name)

    for title in SECTIONS:
        add(title)
    return out


@dataclass
class Section:
    title: str
    blocks: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.blocks.append(f'<p class="note">{html.escape(text)}</p>')

    def image(self, path: Path, alt: str, caption: str = "") -> None:
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.blocks.append(
            f'<figure><img src="{html.escape(path.name)}" alt="{html.escape(alt)}">{cap}</figure>'
        )

    def table(
        self, header: list[str], rows: Iterable[Iterable[Any]], folded: str | None = None
    ) -> None:
        """An HTML table; with ``folded``, inside a ``<details>`` element with that summary."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>"
            for row in rows
        )
        block = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        if folded is not None:
            block = f"<details><summary>{html.escape(folded)}</summary>{block}</details>"
        self.blocks.append(block)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _num(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    )


def _slug(*parts: str) -> str:
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")[:80] or "fig"


# -- bound checks ---------------------------------------------------------------------------


def bound_checks(bounds: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Flatten a ``bounds`` block into checks: ``{name, family, kind, split, bound, measured,
    holds, applies, reason}``. Two-sided checks compare the measured |student − weak| with the
    bound's radius (exact inequalities: they always apply); misfit checks compare err_w2s with
    err_weak − misfit and apply only where their premise holds (``applies``/``reason`` of the
    entry; for entries stored before those existed, test sides are out of sample and train sides
    unchecked, ``applies`` None)."""
    out: list[dict[str, Any]] = []
    if not bounds:
        return out

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict):
            if {"lower", "upper", "measured", "weak", "radius"} <= set(node):
                out.append(
                    {
                        "name": ".".join(path),
                        "family": path[0] if path else "bound",
                        "kind": "two_sided",
                        "split": "test",
                        "bound": _num(node["radius"]),
                        "measured": abs(_num(node["measured"]) - _num(node["weak"])),
                        "holds": bool(node.get("holds")),
                        "applies": True,
                        "reason": None,
                    }
                )
                return
            if {"err_weak", "err_w2s", "misfit"} <= set(node):
                out.append(
                    {
                        "name": ".".join(path),
                        "family": path[0] if path else "misfit",
                        "kind": "misfit",
                        "split": path[-1] if path else "test",
                        "bound": _num(node["err_weak"]) - _num(node["misfit"]),
                        "measured": _num(node["err_w2s"]),
                        "holds": bool(node.get("holds")),
                        **_misfit_premise(node, path[-1] if path else "test"),
                    }
                )
                return
            for key, value in node.items():
                if key in ("ece", "notes"):
                    continue
                walk(value, [*path, str(key)])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                label = str(value.get("class", i)) if isinstance(value, dict) else str(i)
                walk(value, [*path, f"class{label}"])

    walk(bounds, [])
    return [c for c in out if math.isfinite(c["bound"]) and math.isfinite(c["measured"])]


def _misfit_premise(node: dict[str, Any], split: str) -> dict[str, Any]:
    if "applies" in node:
        return {"applies": node["applies"], "reason": node.get("reason")}
    from w2sg.theory.bounds import OUT_OF_SAMPLE

    if split == "test":
        return {"applies": False, "reason": OUT_OF_SAMPLE}
    return {"applies": None, "reason": "premise not recorded (a run stored by an older w2sg)"}


def check_counts(checks: list[dict[str, Any]], n_runs: int) -> str:
    """One honest line: checks that apply (and how many of those are violated) apart from those
    whose premise fails or that are out of sample (a failure there is not a violation)."""
    apply = [c for c in checks if c["applies"] is True]
    violated = sum(not c["holds"] for c in apply)
    off = [c for c in checks if c["applies"] is False]
    unknown = [c for c in checks if c["applies"] is None]
    text = (
        f"{len(checks)} checks over {n_runs} run{'' if n_runs == 1 else 's'}: "
        f"{len(apply)} apply, {violated} of them violated; "
        f"{len(off)} do not apply (premise not met, or out of sample), "
        f"{sum(not c['holds'] for c in off)} of which do not hold (not a violation)"
    )
    if unknown:
        text += (
            f"; {len(unknown)} with an unchecked premise, "
            f"{sum(not c['holds'] for c in unknown)} of which do not hold"
        )
    return text


def _reason_rows(checks: list[dict[str, Any]]) -> list[list[Any]]:
    """(check name, why it does not apply, how many) for the checks that do not apply."""
    counts: dict[tuple[str, str], list[int]] = {}
    for c in checks:
        if c["applies"] is not True:
            entry = counts.setdefault((c["name"], str(c["reason"])), [0, 0])
            entry[0] += 1
            entry[1] += not c["holds"]
    return [[name, reason, n, fails] for (name, reason), (n, fails) in sorted(counts.items())]


# -- run directory ----------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise W2SGError(
            f"cannot read {path}: {exc}; re-run `w2sg run --out` to rewrite it"
        ) from exc
    if not isinstance(data, dict):
        raise W2SGError(f"{path} is not a JSON object; re-run `w2sg run --out` to rewrite it")
    return data


def read_epochs_csv(path: Path) -> dict[str, np.ndarray]:
    """Numeric columns of an ``epochs.csv`` (booleans become 0/1, other text is dropped)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "epoch" not in rows[0]:
        raise W2SGError(f"{path} has no 'epoch' column; write it with `w2sg epochs --out`")
    cols: dict[str, np.ndarray] = {}
    for key in rows[0]:
        values = []
        for row in rows:
            text = (row.get(key) or "").strip()
            if text in ("True", "False"):
                values.append(float(text == "True"))
                continue
            try:
                values.append(float(text))
            except ValueError:
                break
        else:
            cols[key] = np.array(values)
    return cols


def _model_rows(record: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    models = [m for m in ("weak", "w2s", "ceiling", "baseline") if isinstance(record.get(m), dict)]
    keys: list[str] = []
    for m in models:
        for k, v in record[m].items():
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in keys:
                keys.append(k)
    return ["model", *keys], [[m, *(record[m].get(k) for k in keys)] for m in models]


def _run_dir_sections(folder: Path, out: Path) -> tuple[str, list[Section]]:
    metrics_path = folder / "metrics.json"
    epochs_path = folder / "epochs.csv"
    if not metrics_path.is_file() and not epochs_path.is_file():
        raise W2SGError(
            f"{folder} has neither metrics.json nor epochs.csv; pass a folder written by "
            "`w2sg run --out` (or `w2sg epochs`), or a sweep's .db"
        )
    record = _read_json(metrics_path) if metrics_path.is_file() else {}
    config = record.get("config") or {}
    sections = {title: Section(title) for title in SECTIONS}

    summary = sections["Summary"]
    if record:
        n = record.get("n") or {}
        summary.table(
            ["task", "head", "loss", "seed", *(f"n {k}" for k in n)],
            [[record.get("task"), config.get("head"), config.get("loss"), config.get("seed"),
              *n.values()]],
        )  # fmt: skip
        header, rows = _model_rows(record)
        if rows:
            summary.table(header, rows)
        if "baseline" in record:
            summary.note(
                "baseline: a constant predictor fitted to the training labels (class frequencies: "
                "its accuracy is the majority-class rate; the mean for regression)"
            )
        _flags_block(summary, record.get("flags"))
        for note in record.get("notes") or []:
            summary.note(str(note))
    else:
        summary.note("no metrics.json in this folder: only the over-optimization study is shown")

    sections["Representation metrics vs weak-to-strong error"].note(
        "needs several weak models: build the report from a sweep's results store "
        "(w2sg report RESULTS.db --out DIR)"
    )

    blocks = [record[k] for k in ("pgr", "pgr_auroc") if isinstance(record.get(k), dict)]
    sec = sections["PGR per pair"]
    if blocks:
        path = plots.pgr_bars(
            out / "pgr.png",
            "PGR of this run (weak → w2s)",
            [str(b.get("metric", "headline metric")) for b in blocks],
            np.array([_num(b.get("value")) for b in blocks]),
            np.array([_num(b.get("ci_low")) for b in blocks]),
            np.array([_num(b.get("ci_high")) for b in blocks]),
        )
        sec.image(path, "PGR of this run", "PGR per metric with its paired-bootstrap 95% interval")
        for b in blocks:
            if b.get("reason"):
                sec.note(f"PGR on {b.get('metric')} undefined: {b['reason']}")
    else:
        sec.note("no PGR in this folder")

    sec = sections["Reliability diagrams"]
    pred_path = folder / "predictions.npz"
    if pred_path.is_file() and record.get("task") != "regression":
        with np.load(pred_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        labels = arrays.get("test_labels")
        curves = {
            m: (arrays[f"{m}_test_proba"], labels)
            for m in ("weak", "w2s", "ceiling")
            if f"{m}_test_proba" in arrays and labels is not None
        }
        if curves:
            path = plots.reliability(out / "reliability.png", "Reliability on test", curves)
            sec.image(path, "reliability diagram", "top-label confidence, 10 equal-width bins")
        else:
            sec.note("predictions.npz has no test probabilities")
    elif record.get("task") == "regression":
        sec.note("regression run: no probabilities to calibrate")
    else:
        sec.note("no predictions.npz in this folder")

    sec = sections["Bounds vs measured"]
    checks = bound_checks(record.get("bounds"))
    if checks:
        path = plots.bounds_vs_measured(out / "bounds.png", "Bounds vs measured", checks)
        sec.image(path, "bounds versus measured values")
        sec.note(check_counts(checks, 1))
        sec.table(
            ["check", "bound", "measured", "holds", "applies", "why it does not apply"],
            [[c["name"], c["bound"], c["measured"], c["holds"], c["applies"], c["reason"]]
             for c in checks],
        )  # fmt: skip
    else:
        sec.note("no bounds block in this run")

    sec = sections["Over-optimization"]
    if epochs_path.is_file():
        from w2sg.experiments.epochs import epochs_title

        cols = read_epochs_csv(epochs_path)
        config_path = folder / "epochs_config.json"
        study_config = _read_json(config_path) if config_path.is_file() else {}
        title = epochs_title(study_config.get("loss"), study_config.get("train", "probe"))
        path = plots.epoch_curves(out / "epochs.png", title, cols)
        sec.image(
            path,
            "over-optimization curves",
            "from epochs.csv: the same figure as epochs.png of `w2sg epochs`",
        )
    else:
        sec.note("no epochs.csv in this folder (write one with `w2sg epochs --out`)")

    sec = sections["Predicted vs measured gap"]
    theory = record.get("theory") or {}
    gaps = {k: _num(theory.get(k)) for k in ("predicted_gap", "measured_gap") if k in theory}
    if gaps:
        path = plots.gap_bars(out / "gap.png", "Predicted vs measured gap", gaps)
        sec.image(path, "predicted and measured gap")
        extra = [[k, v] for k, v in theory.items() if isinstance(v, int | float | str)]
        sec.table(["theory", "value"], extra)
    else:
        sec.note("no theory block in this run")
    _run_dir_ensemble(sections, record, out)
    _run_dir_rounds(sections, record, out)
    title = f"w2sg report: {folder.name}"
    return title, page_sections(sections)


def _run_dir_ensemble(sections: dict[str, Section], record: dict[str, Any], out: Path) -> None:
    """A run with several weak models (``w2sg run --weak A B C --combine``): its members'
    weights, op norms and own scores."""
    ens = record.get("ensemble")
    if not isinstance(ens, dict):
        return
    sec = sections["Ensemble weights"] = Section("Ensemble weights")
    members = [str(m) for m in ens.get("members") or []]
    weights = ens.get("weights")
    rule = str(ens.get("rule"))
    if weights is not None:
        path = plots.ensemble_weights(
            out / "ensemble.png",
            f"weights of the {len(members)} weak models ({rule})",
            {rule: dict(zip(members, weights, strict=True))},
        )
        sec.image(path, f"ensemble weights ({rule})")
    else:
        sec.note(f"{rule} combines by voting, without weights")
    op = ens.get("member_op_norm") or [None] * len(members)
    own = ens.get("member_weak") or [{}] * len(members)
    sec.table(
        ["weak model", "weight", "op_norm", *sorted({k for o in own for k in o})],
        [[m, None if weights is None else weights[i], op[i],
          *(own[i].get(k) for k in sorted({k for o in own for k in o}))]
         for i, m in enumerate(members)],
    )  # fmt: skip


def _run_dir_rounds(sections: dict[str, Section], record: dict[str, Any], out: Path) -> None:
    """A run with strong-to-strong rounds (``--s2s-iters``): the headline score per round."""
    rounds = record.get("rounds")
    if not rounds:
        return
    from w2sg.experiments.studies import headline_score, round_scores

    row = {"config": {"run": record.get("config") or {}}, "metrics": record}
    score = headline_score(row)
    curve = round_scores(row)
    sec = sections["Strong-to-strong rounds"] = Section("Strong-to-strong rounds")
    path = plots.s2s_rounds(
        out / "rounds.png",
        "Strong-to-strong rounds of this run",
        {"student": curve},
        score,
        {
            "ceiling": _num((record.get("ceiling") or {}).get(score)),
            "weak": _num((record.get("weak") or {}).get(score)),
        },
    )
    sec.image(path, "strong-to-strong rounds", f"test {score} per round (0: the w2s student)")
    sec.table(
        ["round", f"test {score}", "labels changed", "PGR"],
        [[0, curve[0], None, (record.get("pgr") or {}).get("value")]]
        + [[r.get("round"), curve[k + 1], r.get("labels_changed"),
            (r.get("pgr") or {}).get("value")] for k, r in enumerate(rounds)],
    )  # fmt: skip


# -- results store --------------------------------------------------------------------------


def _store_sections(db: Path, out: Path, n_boot: int) -> tuple[str, list[Section]]:
    from w2sg.experiments.store import ResultStore
    from w2sg.experiments.studies import (
        correlation_table,
        flag_counts,
        format_flag_counts,
        pgr_summary,
        study_groups,
        w2s_error,
        weak_table,
    )

    with ResultStore(db, read_only=True) as store:
        rows = store.rows()
    if not rows:
        raise W2SGError(f"{db} holds no runs; run `w2sg sweep` first")
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    sections = {title: Section(title) for title in SECTIONS}

    summary = sections["Summary"]
    by_task: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault((str(r["task"]), str(r["strong"]), str(r["head"])), []).append(r)
    summaries = {
        key: pgr_summary([r for r in rs if r["status"] == "done"])
        for key, rs in by_task.items()
        if any(r["status"] == "done" for r in rs)
    }
    summary.table(
        ["task", "strong", "head", "runs", "done", "failed", "weak models", "mean w2s error",
         "median PGR", "PGR of means", "median PGR (AUROC)", "PGR of means (AUROC)",
         "flagged runs"],
        [
            [t, s, h, len(rs), sum(r["status"] == "done" for r in rs),
             sum(r["status"] == "failed" for r in rs), len({r["weak"] for r in rs}),
             _mean(w2s_error(r) for r in rs if r["status"] == "done"),
             *_aggregates(summaries.get((t, s, h)))]
            for (t, s, h), rs in sorted(by_task.items())
        ],
    )  # fmt: skip
    summary.note(
        "median PGR: the median of the per-run PGRs over runs whose weak model is below the "
        "ceiling, as openai/weak-to-strong reports it (n = runs that entered it); PGR of means: "
        "the PGR of the mean weak, w2s and ceiling scores. Headline score: accuracy "
        "(classification), MSE (regression), KL (probability)."
    )
    flagged = [r for r in done if (r.get("metrics") or {}).get("flags")]
    if flagged:
        summary.table(
            ["task", "weak", "strong", "head", "seed", "flag", "reason"],
            [
                [r["task"], r["weak"], r["strong"], r["head"], r["seed"], _flag_label(f),
                 f.get("reason")]
                for r in flagged
                for f in r["metrics"]["flags"]
            ],
            folded=f"flags: {len(flagged)} of {len(done)} finished runs carry flags "
            f"({format_flag_counts(flag_counts(done))})",
        )  # fmt: skip
    else:
        summary.note(f"flags: none of the {len(done)} finished runs carries a flag")
    seconds = [r["seconds"] for r in rows if isinstance(r.get("seconds"), int | float)]
    summary.note(
        f"{len(rows)} runs: {len(done)} done, {len(failed)} failed; "
        f"{sum(seconds):.1f} s of run time in total"
    )
    if failed:
        summary.table(
            ["config_hash", "task", "weak", "strong", "head", "seed", "error"],
            [
                [r["config_hash"][:12], r["task"], r["weak"], r["strong"], r["head"], r["seed"],
                 (r.get("error") or "").splitlines()[0][:200]]
                for r in failed
            ],
        )  # fmt: skip

    sec = sections["Representation metrics vs weak-to-strong error"]
    groups = study_groups(done)
    table = correlation_table(done, n_boot=n_boot) if done else []
    if groups:
        for i, g in enumerate(groups):
            rho = {
                r["metric"]: r["spearman"]["value"]
                for r in table
                if (r["task"], r["strong"], r["config_id"]) == (g.task, g.strong, g.config_id)
            }
            title = f"{g.task}: weak models → {g.strong} ({g.head})"
            path = plots.metric_scatter(
                out / f"scatter-{i:02d}-{_slug(g.task, g.strong, g.head)}.png",
                title,
                g.weak,
                g.metrics,
                g.error,
                rho,
            )
            sec.image(path, f"metric vs weak-to-strong error, {title}")
        sec.table(
            ["task", "strong", "head", "metric", "n_weak", "Spearman", "Kendall", "Pearson"],
            [
                [r["task"], r["strong"], r["head"], r["metric"], r["n_weak"],
                 *(_ci(r[c]) for c in ("spearman", "kendall", "pearson"))]
                for r in table
            ],
        )  # fmt: skip
        sec.note(
            "one point per weak model (mean over seeds); correlations from scipy.stats with "
            f"{n_boot}-resample percentile bootstrap 95% intervals over weak models"
        )
    elif done:
        sec.note(
            "every finished run has an ensemble weak side: the correlations are over single "
            "weak models (add them to the sweep); the ensembles are under Ensemble weights"
        )
    else:
        sec.note("no finished runs")

    sec = sections["PGR per pair"]
    pgr_groups: dict[tuple[str, str, str], dict[str, list[tuple[float, float, float]]]] = {}
    for r in done:
        key = (str(r["task"]), str(r["strong"]), str(r["head"]))
        pgr_groups.setdefault(key, {}).setdefault(str(r["weak"]), []).append(_pgr(r))
    for i, ((task, strong, head), by_weak) in enumerate(sorted(pgr_groups.items())):
        weak = sorted(by_weak)
        one_seed = all(len(by_weak[w]) == 1 for w in weak)
        if one_seed:  # one run per pair: its PGR and paired-bootstrap interval
            stats = np.array([by_weak[w][0] for w in weak])
            caption = "PGR per pair with its paired-bootstrap 95% interval"
        else:  # several seeds: the median over seeds, each seed's PGR as a dot
            med = [_median(v[0] for v in by_weak[w]) for w in weak]
            stats = np.column_stack([med, [math.nan] * len(weak), [math.nan] * len(weak)])
            caption = (
                "bar: median PGR over seeds (runs whose weak model is not below the "
                "ceiling have no PGR and are left out); dots: each seed's PGR"
            )
        path = plots.pgr_bars(
            out / f"pgr-{i:02d}-{_slug(task, strong, head)}.png",
            f"{task}: weak → {strong} ({head})",
            weak,
            stats[:, 0],
            stats[:, 1],
            stats[:, 2],
            points=None if one_seed else [[v[0] for v in by_weak[w]] for w in weak],
        )
        sec.image(path, f"PGR per pair, {task}", caption)
    if not pgr_groups:
        sec.note("no finished runs")
    per_weak: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for w in weak_table(done):
        per_weak.setdefault((w["task"], w["strong"], w["head"], w["config_id"]), []).append(w)
    for (task, strong, head, _), ws in per_weak.items():
        sec.table(
            ["weak", "seeds", "score", "weak", "w2s", "ceiling", "median PGR", "PGR of means",
             "op_norm", "fro_sq_over_n", "predicted_gap", "k_w", "w2s error", "flags"],
            [[w["weak"], w["n_seeds"], w["score"], w["weak_score"], w["w2s_score"],
              w["ceiling_score"], w["median_pgr"], w["pgr_of_means"], w["op_norm"],
              w["fro_sq_over_n"], w["predicted_gap"], w["k_weak"], w["error"],
              format_flag_counts(w["flags"])] for w in ws],
            folded=f"per weak model: {task}, weak → {strong} ({head}); means over seeds, "
            "largest w2s error first",
        )  # fmt: skip

    sec = sections["Reliability diagrams"]
    pooled: dict[tuple[str, str, str], dict[str, dict[str, np.ndarray]]] = {}
    n_pooled: dict[tuple[str, str, str], int] = {}
    for r in done:
        by_model = (r.get("metrics") or {}).get("reliability")
        if not isinstance(by_model, dict):
            continue
        key = (str(r["task"]), str(r["strong"]), str(r["head"]))
        n_pooled[key] = n_pooled.get(key, 0) + 1
        for model, b in by_model.items():
            acc = pooled.setdefault(key, {}).setdefault(model, {})
            for name in ("count", "confidence", "correct"):
                acc[name] = acc.get(name, 0) + np.asarray(b[name], float)
    for i, ((task, strong, head), by_model) in enumerate(sorted(pooled.items())):
        order: list[str] = [m for m in ("weak", "w2s", "ceiling") if m in by_model]
        # weak, w2s, ceiling: the colours of a run folder's diagram
        bins = {m: {k: v.tolist() for k, v in by_model[m].items()} for m in order}
        title = f"{task}: weak → {strong} ({head})"
        path = plots.reliability_from_bins(
            out / f"reliability-{i:02d}-{_slug(task, strong, head)}.png", title, bins
        )
        n = n_pooled[(task, strong, head)]
        sec.image(
            path,
            f"reliability, {title}",
            f"test predictions of all {n} runs pooled (every weak model and seed); top-label "
            "confidence, 10 equal-width bins",
        )
    if not pooled:
        sec.note(
            "no reliability bins in these runs (regression, or stored by an older w2sg): build "
            "the report of one run folder (w2sg run --out DIR) for its diagram"
        )

    sec = sections["Bounds vs measured"]
    checks = [c for r in done for c in bound_checks(r.get("bounds"))]
    if checks:
        path = plots.bounds_vs_measured(out / "bounds.png", "Bounds vs measured, all runs", checks)
        sec.image(path, "bounds versus measured values")
        sec.note(check_counts(checks, len(done)))
        reasons = _reason_rows(checks)
        if reasons:
            sec.table(
                ["check", "why it does not apply", "checks", "of which do not hold"],
                reasons,
                folded="checks that do not apply, and why",
            )
    else:
        sec.note("no bounds blocks in the finished runs")

    sections["Over-optimization"].note(
        "over-optimization curves come from `w2sg epochs --out DIR`; build the report of that "
        "folder"
    )

    sec = sections["Predicted vs measured gap"]
    pred = np.array([_num((r.get("theory") or {}).get("predicted_gap")) for r in done])
    meas = np.array([_num((r.get("theory") or {}).get("measured_gap")) for r in done])
    if np.isfinite(pred).any() and np.isfinite(meas).any():
        path = plots.gap_scatter(
            out / "gap.png",
            "Predicted vs measured gap, all runs",
            pred,
            meas,
            [f"{r['task']} → {r['strong']}" for r in done],
        )
        sec.image(path, "predicted versus measured gap")
        keep = np.isfinite(pred) & np.isfinite(meas) & (pred > 0)
        if keep.any():
            ratio = meas[keep] / pred[keep]
            sec.note(
                f"measured / predicted over {int(keep.sum())} runs: median {np.median(ratio):.3g},"
                f" 10–90% range {np.quantile(ratio, 0.1):.3g}–{np.quantile(ratio, 0.9):.3g}"
            )
    else:
        sec.note("no theory blocks with predicted_gap and measured_gap")
    optional = {title: Section(title) for title in OPTIONAL_SECTIONS}
    _rank_section(optional["Rank vs realized error"], done, out, n_boot)
    _ensemble_section(optional["Ensemble weights"], done, out)
    _rounds_section(optional["Strong-to-strong rounds"], done, out)
    return f"w2sg report: {db.name}", page_sections({**sections, **optional})


def _rank_section(sec: Section, done: list[dict[str, Any]], out: Path, n_boot: int) -> None:
    """Figure (a): per group with ≥ 2 single weak supervisors, the label-free op_norm of each
    against the realised w2s error, the top-ranked pick marked, Spearman in the title; then the
    rank table of op_norm (:func:`w2sg.experiments.studies.rank_table`)."""
    from w2sg.experiments.studies import rank_points, rank_table

    points = [p for p in rank_points(done) if np.isfinite(_finite_pairs(p)).sum() >= 2]
    if not points:
        return
    for i, p in enumerate(points):
        path = plots.rank_vs_error(
            out / f"rank-{i:02d}-{_slug(p['task'], p['strong'], p['head'])}.png",
            p,
            p["spearman"],
            p["ensembles"] if p["ensembles"]["weak"] else None,
        )
        sec.image(
            path,
            f"op_norm rank vs realised error, {p['title']}",
            "one point per single weak supervisor (mean over seeds, ± one SE); circled: the "
            "label-free pick (smallest op_norm), star: the best student; diamonds: ensembles of "
            "the same group (not ranked)",
        )
    table = [
        r
        for r in rank_table(done, n_boot=n_boot)
        if r["ranker"] == "op_norm" and r.get("reason") is None
    ]
    sec.table(
        ["task", "strong", "head", "weak models", "top-ranked (op_norm)", "best", "top error",
         "best error ± SE", "precision@1", "regret", "random regret", "best ranked", "Spearman",
         "Spearman 95% CI"],
        [[r["task"], r["strong"], r["head"], r["n_weak"], r["top"], r["best"], r["top_error"],
          f"{_cell(r['best_error'])} ± {_cell(r['best_se'])}", r["precision_at_1"], r["regret"],
          r["random_regret"], r["rank_of_best"], r["spearman"],
          _interval(r.get("spearman_ci"))] for r in table],
    )  # fmt: skip
    sec.table(
        ["task", "head", "weak", "op_norm", "w2s error", "SE"],
        [[p["task"], p["head"], w, v, e, se]
         for p in points
         for w, v, e, se in zip(p["weak"], p["value"], p["error"], p["se"], strict=True)],
        folded="the plotted values (means over seeds)",
    )  # fmt: skip
    sec.note(
        "precision@1: the top-ranked supervisor's student is within one SE of the best one's; "
        "regret: its error minus the best error (w2sg study --rank, docs/rank-study.md)"
    )


def _diff(d: dict[str, Any] | None) -> str:
    """A paired difference ``{mean, se, n}`` as ``+0.012 ± 0.004 (n = 3)``."""
    if not d or not math.isfinite(_num(d.get("mean"))):
        return "n/a"
    se = _num(d.get("se"))
    return f"{d['mean']:+.4f}" + (f" ± {se:.4f}" if math.isfinite(se) else "") + f" (n = {d['n']})"


def _interval(ci: Any) -> str:
    """``[lo, hi]`` of a stored interval (a pair, or a dict with ci_low/ci_high), else n/a."""
    if isinstance(ci, dict):
        ci = (ci.get("ci_low"), ci.get("ci_high"))
    if isinstance(ci, list | tuple) and len(ci) == 2:
        lo, hi = _num(ci[0]), _num(ci[1])
        if math.isfinite(lo) and math.isfinite(hi):
            return f"[{lo:+.2f}, {hi:+.2f}]"
    return "n/a"


def _finite_pairs(points: dict[str, Any]) -> np.ndarray:
    """NaN where a weak model lacks its ranker value or its error, else 1."""
    x, y = np.array(points["value"], float), np.array(points["error"], float)
    return np.where(np.isfinite(x) & np.isfinite(y), 1.0, np.nan)


def ensemble_groups(done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ensemble runs of a store by (task, strong, head, members): per combination rule the
    mean weights over seeds (``None`` for the votes) and the mean w2s error. Each entry:
    ``task``, ``strong``, ``head``, ``members``, ``rules`` ({rule: {"weak", "weights",
    "error", "seeds"}})."""
    from w2sg.experiments.studies import ensemble_weights, is_ensemble, w2s_error

    by: dict[tuple[str, str, str, tuple[str, ...]], dict[str, list[dict[str, Any]]]] = {}
    for r in done:
        if not is_ensemble(r):
            continue
        record = (r.get("metrics") or {}).get("ensemble") or {}
        members = tuple(str(m) for m in record.get("members") or [])
        key = (str(r["task"]), str(r["strong"]), str(r["head"]), members)
        by.setdefault(key, {}).setdefault(str(r["weak"]), []).append(r)
    out = []
    for (task, strong, head, members), sides in sorted(by.items()):
        rules: dict[str, dict[str, Any]] = {}
        for weak, runs in sorted(sides.items()):
            combo = ensemble_weights(runs)
            name = weak.split("](")[0].removeprefix("ensemble[")  # rule and its setting
            rules[name] = {
                "weak": weak,
                "weights": combo["weights"],
                "error": _mean(w2s_error(r) for r in runs),
                "seeds": len(runs),
            }
        out.append({"task": task, "strong": strong, "head": head, "members": list(members),
                    "rules": rules})  # fmt: skip
    return out


def _ensemble_section(sec: Section, done: list[dict[str, Any]], out: Path) -> None:
    """Figure (b): for each set of ensemble members, the weight of each member under each
    combination rule (mean over seeds)."""
    from w2sg.experiments.studies import ensemble_table

    groups = ensemble_groups(done)
    versus = [r for r in ensemble_table(done) if r["n_members_run"]]
    if versus:
        sec.table(
            ["task", "strong", "head", "ensemble", "seeds", "w2s error", "pick (op_norm)",
             "pick error", "ensemble − pick", "best member", "best error", "ensemble − best"],
            [[r["task"], r["strong"], r["head"], r["ensemble"], r["n_seeds"], r["error"],
              r["pick"], r["pick_error"], _diff(r["vs_pick"]), r["best"], r["best_error"],
              _diff(r["vs_best"])] for r in versus],
        )  # fmt: skip
        sec.note(
            "does the mix beat its members? pick: the member of smallest label-free op_norm "
            "(the choice of w2sg rank); best: the member whose student erred least (needs "
            "labels); differences paired by seed, mean ± SE (negative: the ensemble is better); "
            "w2sg study --ensembles"
        )
    for i, g in enumerate(groups):
        weighted = {
            rule: dict(zip(g["members"], v["weights"], strict=True))
            for rule, v in g["rules"].items()
            if v["weights"] is not None
        }
        title = f"{g['task']}: ensembles of {len(g['members'])} → {g['strong']} ({g['head']})"
        if weighted:
            path = plots.ensemble_weights(
                out / f"ensemble-{i:02d}-{_slug(g['task'], g['strong'], g['head'])}.png",
                title,
                weighted,
            )
            sec.image(
                path,
                f"ensemble weights, {title}",
                "weight of each member per combination rule (mean over seeds); votes have none",
            )
        unweighted = [rule for rule, v in g["rules"].items() if v["weights"] is None]
        if unweighted:
            sec.note(f"{title}: {', '.join(unweighted)} combine by voting, without weights")
        sec.table(
            ["rule", "seeds", "w2s error", *g["members"]],
            [[rule, v["seeds"], v["error"],
              *(v["weights"] if v["weights"] is not None else [None] * len(g["members"]))]
             for rule, v in g["rules"].items()],
        )  # fmt: skip


def _rounds_section(sec: Section, done: list[dict[str, Any]], out: Path) -> None:
    """Figure (c): per task × strong × head with strong-to-strong rounds, the headline test score
    of each round (round 0: the w2s student), one line per weak side, mean over seeds."""
    from w2sg.experiments.studies import headline_score, round_scores

    groups: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    for r in done:
        if (r.get("metrics") or {}).get("rounds"):
            key = (str(r["task"]), str(r["strong"]), str(r["head"]))
            groups.setdefault(key, {}).setdefault(str(r["weak"]), []).append(r)
    for i, ((task, strong, head), by_weak) in enumerate(sorted(groups.items())):
        score = headline_score(next(iter(by_weak.values()))[0])
        curves = {}
        for weak, runs in sorted(by_weak.items()):
            per_seed = [round_scores(r) for r in runs]
            n = min(len(s) for s in per_seed)
            curves[weak] = [_mean(s[k] for s in per_seed) for k in range(n)]
        ceiling = _mean(
            _num(((r.get("metrics") or {}).get("ceiling") or {}).get(score))
            for runs in by_weak.values()
            for r in runs
        )
        title = f"{task}: weak → {strong} ({head})"
        path = plots.s2s_rounds(
            out / f"rounds-{i:02d}-{_slug(task, strong, head)}.png",
            title,
            curves,
            score,
            {"ceiling (mean)": ceiling},
        )
        sec.image(
            path,
            f"strong-to-strong rounds, {title}",
            f"test {score} of the w2s student (round 0) and of each strong-to-strong round, "
            "mean over seeds",
        )
        n_rounds = max(len(v) for v in curves.values())
        sec.table(
            ["weak", *(f"round {k}" if k else "w2s (round 0)" for k in range(n_rounds))],
            [[w, *v, *[None] * (n_rounds - len(v))] for w, v in curves.items()],
        )


def _aggregates(summary: dict[str, Any] | None) -> list[Any]:
    """Summary-table cells of :func:`w2sg.experiments.studies.pgr_summary`."""
    if summary is None:
        return [None] * 5
    med = summary["median_pgr"]
    cell = f"{med:.3g} (n = {summary['n_pgr']})" if math.isfinite(med) else "n/a"
    if summary["n_pgr_excluded"]:
        cell += f", {summary['n_pgr_excluded']} excluded"
    from w2sg.experiments.studies import format_flag_counts

    flagged = format_flag_counts(summary["flags"])
    return [cell, summary["pgr_of_means"], summary.get("median_pgr_auroc"),
            summary.get("pgr_of_means_auroc"), flagged or "none"]  # fmt: skip


def _flag_label(flag: dict[str, Any]) -> str:
    code = str(flag.get("code"))
    return f"{code} ({flag['model']})" if flag.get("model") else code


def _flags_block(section: Section, flags: Any) -> None:
    """The flags of one run as a table, or a line saying there are none (or none recorded)."""
    if flags is None:
        section.note("flags: not recorded (a run written by an older w2sg)")
    elif not flags:
        section.note("flags: none")
    else:
        section.table(["flag", "reason"], [[_flag_label(f), f.get("reason")] for f in flags])


def _pgr(row: dict[str, Any]) -> tuple[float, float, float]:
    p = (row.get("metrics") or {}).get("pgr") or {}
    return _num(p.get("value")), _num(p.get("ci_low")), _num(p.get("ci_high"))


def _mean(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _median(values: Iterable[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def _ci(c: dict[str, Any]) -> str:
    v, lo, hi = (_num(c.get(k)) for k in ("value", "ci_low", "ci_high"))
    if not math.isfinite(v):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{v:+.2f}"
    return f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]"


# -- page -----------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.85rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; } figure { margin: 1rem 0; } img { max-width: 100%; }
figcaption, .note { color: #555; font-size: 0.85rem; } nav a { margin-right: 0.8rem; }
"""


def render_page(title: str, sections: list[Section], source: str) -> str:
    """The report page: a title, a table of contents and the sections, with inline CSS."""
    nav = " ".join(f'<a href="#{_slug(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    body = "\n".join(
        f'<section id="{_slug(s.title)}"><h2>{html.escape(s.title)}</h2>\n'
        + "\n".join(s.blocks)
        + "</section>"
        for s in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="note">source: {html.escape(source)}</p>\n'
        f"<nav>{nav}</nav>\n{body}\n</body></html>\n"
    )


def build_report(source: str | Path, out: str | Path, *, n_boot: int = 1000) -> Path:
    """Write ``out/index.html`` (and its PNGs beside it) for a run directory or a results store.

    Returns the path of ``index.html``.
    """
    from w2sg.experiments.store import is_store

    src = Path(source)
    out_dir = Path(out)
    if not src.exists():
        raise W2SGError(f"{src} does not exist; pass a run folder or a sweep's .db")
    out_dir.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        title, sections = _run_dir_sections(src, out_dir)
    elif is_store(src):
        title, sections = _store_sections(src, out_dir, n_boot)
    else:
        raise W2SGError(f"{src} is neither a run folder nor an SQLite results store")
    page = render_page(title, sections, str(src))
    index = out_dir / "index.html"
    atomic.write_text(index, page)
    return index
