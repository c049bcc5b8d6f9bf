"""Prediction studies (following [X], THEORY.md section 4, X3): do label-free representation metrics
rank weak models by their weak-to-strong error?

For each task, strong model and run configuration (everything but the seed), every weak model is
one point: the mean over seeds of a representation metric (``op_norm`` = ‖P_s(I − P_w)‖_op,
``fro_sq_over_n`` = ‖P_s(I − P_w)‖_F²/n̂, ``predicted_gap`` = G) and of the weak-to-strong test
error.
Across the weak models we report the Spearman, Kendall and Pearson correlations (point estimates
from :mod:`scipy.stats`) with percentile bootstrap confidence intervals that resample weak models.
A positive correlation means the metric predicts the error.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from w2sg.errors import W2SGError

METRICS: tuple[str, ...] = ("op_norm", "fro_sq_over_n", "predicted_gap")
CORRELATIONS: tuple[str, ...] = ("spearman", "kendall", "pearson")
ERROR_SOURCES: tuple[str, ...] = ("metrics", "theory")
#: Where the representation metrics come from: ``frozen`` (the run's ``theory`` block, computed
#: from the frozen representations before any training) or ``finetuned`` (``theory_finetuned``:
#: the same quantities on the fine-tuned ceiling's own final representations; fine-tuned runs only).
THEORY_SOURCES: tuple[str, ...] = ("frozen", "finetuned")
#: Test metrics where higher is better: ``w2s_error(score=...)`` uses 1 − score for these.
SCORES: tuple[str, ...] = ("accuracy", "auroc", "r2")

# The headline error of each task type, the same the pipeline uses for PGR.
_ERROR_OF_TASK = {
    "classification": ("accuracy", True),
    "regression": ("mse", False),
    "probability": ("kl", False),
}
# Keys of the theory block that hold the measured weak-to-strong test error of the ridge heads.
_THEORY_ERROR_KEYS = ("w2s_error",)


def w2s_error(row: dict[str, Any], source: str = "metrics", score: str | None = None) -> float:
    """The weak-to-strong test error of one stored run (NaN when the run does not have it).

    ``metrics``: the trained head's error: 1 − accuracy (classification), MSE (regression), mean KL
    from the truth (probability). ``theory``: the ridge head's error measured in the theory block.
    ``score`` (with ``metrics``) names another test metric of the student instead: a score of
    :data:`SCORES` counts as 1 − score (``auroc`` → 1 − AUROC), any other (``cross_entropy``,
    ``ece``, ``mae``, …) as itself.
    """
    if score is not None and source == "metrics":
        value = ((row.get("metrics") or {}).get("w2s") or {}).get(score)
        if not isinstance(value, int | float):
            return math.nan
        return 1.0 - float(value) if score in SCORES else float(value)
    if source == "theory":
        theory = row.get("theory") or {}
        for key in _THEORY_ERROR_KEYS:
            value = theory.get(key)
            if isinstance(value, int | float):
                return float(value)
        return math.nan
    task = ((row.get("config") or {}).get("run") or {}).get("task", "classification")
    key, is_score = _ERROR_OF_TASK.get(task, ("accuracy", True))
    value = ((row.get("metrics") or {}).get("w2s") or {}).get(key)
    if not isinstance(value, int | float):
        return math.nan
    return 1.0 - float(value) if is_score else float(value)


#: RunConfig fields that describe an ensemble weak side (they are in its weak label), left out of
#: the configuration that groups runs, so that ensembles sit with the single weak models they
#: combine.
_WEAK_SIDE_FIELDS = ("combine", "combine_temperature", "combine_labels")


def is_ensemble(row: dict[str, Any]) -> bool:
    """Whether a stored run's weak side is an ensemble (several weak models combined)."""
    weak = (row.get("config") or {}).get("weak")
    return isinstance(weak, dict) and "ensemble" in weak


def _group_key(row: dict[str, Any]) -> tuple[str, str, str]:
    config = row.get("config") or {}
    run = dict(config.get("run") or {})
    for key in ("seed", *_WEAK_SIDE_FIELDS):
        run.pop(key, None)
    weak = config.get("weak")
    if isinstance(weak, dict) and weak.get("train"):
        # a fine-tuned weak entry says so in its label (``minilm-l6@2[full]``): it sits with the
        # probed supervisors of the same student
        run.pop("weak_train", None)
    dataset = dict(config.get("dataset") or {})
    dataset.pop("seed", None)
    text = json.dumps({"run": run, "dataset": dataset}, sort_keys=True)
    return (
        str(row.get("task")),
        str(row.get("strong")),
        hashlib.sha256(text.encode()).hexdigest()[:12],
    )


@dataclass
class StudyGroup:
    """The weak models of one task × strong model × configuration, averaged over seeds."""

    task: str
    strong: str
    head: str
    config_id: str
    weak: list[str]
    n_runs: int
    metrics: dict[str, np.ndarray]
    error: np.ndarray
    flags: dict[str, int] = field(default_factory=dict)
    n_flagged: int = 0


def _buckets(
    rows: Iterable[dict[str, Any]], ensembles: bool = False
) -> list[tuple[tuple[str, str, str], str, dict[str, list[dict[str, Any]]]]]:
    """``done`` runs as sorted ``(group key, head, {weak: runs})``; ensemble weak sides only with
    ``ensembles`` (correlations and rank studies are over single weak supervisors)."""
    buckets: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
    heads: dict[tuple[str, str, str], str] = {}
    for row in rows:
        if row.get("status") != "done" or (not ensembles and is_ensemble(row)):
            continue
        key = _group_key(row)
        buckets.setdefault(key, {}).setdefault(str(row.get("weak")), []).append(row)
        heads[key] = str(row.get("head"))
    order = sorted(buckets, key=lambda k: (k[0], k[1], heads[k], k[2]))  # task, strong, head
    return [(key, heads[key], buckets[key]) for key in order]


def _check_sources(error: str, theory: str) -> None:
    if error not in ERROR_SOURCES:
        raise W2SGError(f"unknown error source {error!r}; use one of {', '.join(ERROR_SOURCES)}")
    if theory not in THEORY_SOURCES:
        raise W2SGError(f"unknown theory source {theory!r}; use {' or '.join(THEORY_SOURCES)}")


def study_groups(
    rows: Iterable[dict[str, Any]],
    error: str = "metrics",
    *,
    score: str | None = None,
    theory: str = "frozen",
) -> list[StudyGroup]:
    """Group ``done`` runs by (task, strong model, configuration); average seeds per weak model.
    Runs whose weak side is an ensemble are left out (:func:`weak_table` lists them).
    ``score`` and ``theory``: see :func:`w2s_error` and :data:`THEORY_SOURCES`."""
    _check_sources(error, theory)
    groups = []
    for key, head, by_weak in _buckets(rows):
        weak = sorted(by_weak)
        values = {
            m: np.array([_mean([_theory_value(r, m, theory) for r in by_weak[w]]) for w in weak])
            for m in METRICS
        }
        err = np.array([_mean([w2s_error(r, error, score) for r in by_weak[w]]) for w in weak])
        groups.append(
            StudyGroup(
                task=key[0],
                strong=key[1],
                head=head,
                config_id=key[2],
                weak=weak,
                n_runs=sum(len(v) for v in by_weak.values()),
                metrics=values,
                error=err,
                flags=flag_counts(r for runs in by_weak.values() for r in runs),
                n_flagged=sum(
                    bool((r.get("metrics") or {}).get("flags"))
                    for runs in by_weak.values()
                    for r in runs
                ),
            )
        )
    return groups


def weak_table(
    rows: Iterable[dict[str, Any]],
    error: str = "metrics",
    *,
    score: str | None = None,
    theory: str = "frozen",
) -> list[dict[str, Any]]:
    """One row per (task, strong model, configuration, weak model): means over seeds.

    Each row: ``task``, ``strong``, ``head``, ``config_id``, ``weak``, ``n_seeds``, ``score``
    (the task's headline metric: accuracy, mse or kl) and its ``weak_score``, ``w2s_score``,
    ``ceiling_score``; the PGR aggregations of :func:`pgr_summary` over the seeds
    (``median_pgr``, ``n_pgr``, ``pgr_of_means``, and ``median_pgr_auroc``,
    ``pgr_of_means_auroc`` for classification; ``flags``: code → number of seeds flagged); the
    representation metrics ``op_norm``, ``fro_sq_over_n``, ``predicted_gap``; ``k_weak``,
    ``k_strong`` (from the ``theory`` source); and ``error`` (as in :func:`w2s_error`).
    Ensemble weak sides (``ensemble[rule](a+b)``) are rows of the group of the single weak models
    beside them, with ``ensemble`` (the rule, the members and each member's weight, mean over
    seeds); runs with strong-to-strong rounds add ``s2s_rounds`` and ``s2s_score`` (the last
    round's headline score, mean over seeds).
    Within a group, rows go from the largest weak-to-strong error to the smallest, so a metric
    that predicts the error decreases down the table.
    """
    _check_sources(error, theory)
    table = []
    for key, head, by_weak in _buckets(rows, ensembles=True):
        group = []
        for weak, runs in by_weak.items():
            task = ((runs[0].get("config") or {}).get("run") or {}).get("task", "classification")
            headline, _ = _ERROR_OF_TASK.get(task, ("accuracy", True))

            def score_of(
                model: str, runs: list[dict[str, Any]] = runs, score: str = headline
            ) -> float:
                return _mean([_number(((r.get("metrics") or {}).get(model) or {}).get(score))
                              for r in runs])  # fmt: skip

            row: dict[str, Any] = {
                "task": key[0],
                "strong": key[1],
                "head": head,
                "config_id": key[2],
                "weak": weak,
                "n_seeds": len(runs),
                "score": headline,
                "weak_score": score_of("weak"),
                "w2s_score": score_of("w2s"),
                "ceiling_score": score_of("ceiling"),
            }
            row.update(pgr_summary(runs))
            for name in (*METRICS, "k_weak", "k_strong"):
                row[name] = _mean([_theory_value(r, name, theory) for r in runs])
            row["error"] = _mean([w2s_error(r, error, score) for r in runs])
            rounds = [last_round_score(r) for r in runs]
            if any(n for n, _ in rounds):
                row["s2s_rounds"] = max(n for n, _ in rounds)
                row["s2s_score"] = _mean([v for _, v in rounds])
            if is_ensemble(runs[0]):
                row["ensemble"] = ensemble_weights(runs)
            group.append(row)
        group.sort(key=lambda r: -r["error"] if math.isfinite(r["error"]) else math.inf)
        table += group
    return table


def headline_score(row: dict[str, Any]) -> str:
    """The headline score of a stored run's task: ``accuracy``, ``mse`` or ``kl``."""
    task = ((row.get("config") or {}).get("run") or {}).get("task", "classification")
    return _ERROR_OF_TASK.get(task, ("accuracy", True))[0]


def last_round_score(row: dict[str, Any]) -> tuple[int, float]:
    """``(rounds, score)``: the number of strong-to-strong rounds of a stored run and the last
    round's headline test score (accuracy, mse or kl); ``(0, nan)`` without rounds."""
    rounds = (row.get("metrics") or {}).get("rounds") or []
    if not rounds:
        return 0, math.nan
    task = ((row.get("config") or {}).get("run") or {}).get("task", "classification")
    key, _ = _ERROR_OF_TASK.get(task, ("accuracy", True))
    return len(rounds), _number((rounds[-1].get("test") or {}).get(key))


def round_scores(row: dict[str, Any]) -> list[float]:
    """The headline test score of the w2s student (round 0) and of every strong-to-strong round
    of a stored run."""
    metrics = row.get("metrics") or {}
    task = ((row.get("config") or {}).get("run") or {}).get("task", "classification")
    key, _ = _ERROR_OF_TASK.get(task, ("accuracy", True))
    out = [_number((metrics.get("w2s") or {}).get(key))]
    return out + [_number((r.get("test") or {}).get(key)) for r in metrics.get("rounds") or []]


def ensemble_weights(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The combination of ensemble runs (one weak side, several seeds): ``rule``, ``members``
    and ``weights`` (each member's weight, mean over seeds; ``None`` for the votes, which have
    none)."""
    records = [(r.get("metrics") or {}).get("ensemble") or {} for r in runs]
    first = records[0]
    members = [str(m) for m in first.get("members") or []]
    weights = [rec.get("weights") for rec in records if rec.get("weights") is not None]
    mean = np.mean(np.array(weights, dtype=float), axis=0).tolist() if weights else None
    return {"rule": first.get("rule"), "members": members, "weights": mean}


def _scores(runs: list[dict[str, Any]], key: str) -> list[np.ndarray]:
    """Per-run ``key`` scores of the weak, w2s and ceiling models (NaN where missing)."""
    return [
        np.array([_number(((r.get("metrics") or {}).get(m) or {}).get(key)) for r in runs])
        for m in ("weak", "w2s", "ceiling")
    ]


def flag_counts(runs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many runs carry each flag code (a code counted once per run)."""
    counts: dict[str, int] = {}
    for r in runs:
        flags = (r.get("metrics") or {}).get("flags") or []
        for code in sorted({str(f.get("code")) for f in flags if isinstance(f, dict)}):
            counts[code] = counts.get(code, 0) + 1
    return counts


def pgr_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The named PGR aggregations of stored runs (each run one (weak, strong) pair at one seed).

    ``median_pgr``: :func:`w2sg.metrics.median_pgr` of the headline scores (accuracy, or mse /
    kl as errors): the median of the per-run PGRs over runs whose weak model is below the ceiling,
    as openai/weak-to-strong reports it; ``n_pgr`` runs entered it, ``n_pgr_excluded`` did not.
    ``pgr_of_means``: :func:`w2sg.metrics.pgr_of_means`, PGR of the mean scores. For
    classification also ``median_pgr_auroc`` and ``pgr_of_means_auroc`` on AUROC. ``flags``:
    :func:`flag_counts`. Both aggregations are computed from the stored scores, so runs stored
    before PGR required the weak model below the ceiling aggregate the same way.
    """
    from w2sg.metrics import median_pgr, pgr_of_means

    task = ((runs[0].get("config") or {}).get("run") or {}).get("task", "classification")
    key, higher = _ERROR_OF_TASK.get(task, ("accuracy", True))
    weak, w2s, ceiling = _scores(runs, key)
    med = median_pgr(weak, w2s, ceiling, higher)
    out: dict[str, Any] = {
        "median_pgr": med.value,
        "n_pgr": med.n_used,
        "n_pgr_excluded": med.n_excluded,
        "pgr_of_means": pgr_of_means(weak, w2s, ceiling, higher).value,
    }
    if task == "classification":
        a_weak, a_w2s, a_ceiling = _scores(runs, "auroc")
        out["median_pgr_auroc"] = median_pgr(a_weak, a_w2s, a_ceiling).value
        out["pgr_of_means_auroc"] = pgr_of_means(a_weak, a_w2s, a_ceiling).value
    out["flags"] = flag_counts(runs)
    return out


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def _theory_value(row: dict[str, Any], metric: str, theory: str = "frozen") -> float:
    block = (
        row.get("theory")
        if theory == "frozen"
        else (row.get("metrics") or {}).get("theory_finetuned")
    )
    value = (block or {}).get(metric)
    return float(value) if isinstance(value, int | float) else math.nan


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


# -- correlations ---------------------------------------------------------------------------


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of ``x`` and ``y`` (shape ``(B, n)``); NaN for constant rows."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    num = (xc * yc).sum(axis=1)
    tiny = den <= 1e-12 * np.maximum(np.abs(num), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(tiny | (den == 0), np.nan, num / np.where(den == 0, 1.0, den))
    return np.clip(r, -1.0, 1.0)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair: Pearson r of the average ranks."""
    return _pearson_rows(stats.rankdata(x, axis=1), stats.rankdata(y, axis=1))


def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty(len(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(len(x)):
            out[b] = stats.kendalltau(x[b], y[b]).statistic
    return out


def _point(name: str, x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "spearman":
            return float(stats.spearmanr(x, y).statistic)
        if name == "kendall":
            return float(stats.kendalltau(x, y).statistic)
        return float(stats.pearsonr(x, y).statistic)


def correlate(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Spearman, Kendall and Pearson correlation of ``x`` and ``y`` with bootstrap intervals.

    Point estimates are :func:`scipy.stats.spearmanr`, :func:`~scipy.stats.kendalltau` and
    :func:`~scipy.stats.pearsonr`. The interval is the percentile interval of the statistic over
    ``n_boot`` resamples of the pairs (x_i, y_i) with replacement; resamples where the statistic is
    undefined (a constant resample) are dropped. Fewer than 3 pairs give NaN throughout.

    Returns ``{name: {"value", "ci_low", "ci_high"}}``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if len(x) < 3:
        return {name: dict(nan) for name in CORRELATIONS}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    xb, yb = x[idx], y[idx]
    boot = {
        "spearman": _spearman_rows(xb, yb),
        "kendall": _kendall_rows(xb, yb),
        "pearson": _pearson_rows(xb, yb),
    }
    alpha = (1.0 - confidence) / 2.0
    out: dict[str, dict[str, float]] = {}
    for name in CORRELATIONS:
        b = boot[name][np.isfinite(boot[name])]
        lo, hi = np.quantile(b, [alpha, 1.0 - alpha]) if len(b) else (math.nan, math.nan)
        out[name] = {"value": _point(name, x, y), "ci_low": float(lo), "ci_high": float(hi)}
    return out


def correlation_table(
    rows: Iterable[dict[str, Any]],
    *,
    error: str = "metrics",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    score: str | None = None,
    theory: str = "frozen",
) -> list[dict[str, Any]]:
    """One row per (task, strong model, configuration, metric): the three correlations with CIs.
    ``score``/``theory``: which error and which theory block (:func:`study_groups`).

    Each row: ``task``, ``strong``, ``head``, ``config_id``, ``metric``, ``n_weak``, ``n_runs``,
    ``spearman``/``kendall``/``pearson`` (each ``{value, ci_low, ci_high}``), ``reason`` (why the
    correlations are NaN, else ``None``), ``n_flagged`` (runs of the group with any flag) and
    ``flags`` (:func:`flag_counts` of the group's runs).
    """
    table = []
    for group in study_groups(rows, error, score=score, theory=theory):
        for metric in METRICS:
            x = group.metrics[metric]
            ok = np.isfinite(x) & np.isfinite(group.error)
            corr = correlate(x, group.error, n_boot=n_boot, confidence=confidence, seed=seed)
            reason = None
            if ok.sum() < 3:
                reason = f"{int(ok.sum())} weak models with {metric} and an error; need >= 3"
            table.append(
                {
                    "task": group.task,
                    "strong": group.strong,
                    "head": group.head,
                    "config_id": group.config_id,
                    "metric": metric,
                    "n_weak": int(ok.sum()),
                    "n_runs": group.n_runs,
                    **corr,
                    "reason": reason,
                    "n_flagged": group.n_flagged,
                    "flags": group.flags,
                }
            )
    return table


def done_runs(store: str | Path) -> list[dict[str, Any]]:
    """The ``done`` runs of a results store (an error when there are none)."""
    from w2sg.experiments.store import ResultStore

    with ResultStore(store, read_only=True) as db:
        rows = db.rows("done")
    if not rows:
        raise W2SGError(f"{store} holds no finished runs; run `w2sg sweep` first")
    return rows


def run_study(
    store: str | Path,
    *,
    error: str = "metrics",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    score: str | None = None,
    theory: str = "frozen",
) -> list[dict[str, Any]]:
    """:func:`correlation_table` of the ``done`` runs of a results store."""
    rows = done_runs(store)
    return correlation_table(
        rows, error=error, n_boot=n_boot, confidence=confidence, seed=seed, score=score,
        theory=theory,
    )  # fmt: skip


def _aligned(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, the header first."""
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(s.rstrip() for s in out)


def format_weak_table(table: list[dict[str, Any]]) -> str:
    """The per-weak-model table as aligned text (scores and metrics with 3 decimals; PGRs with 2;
    ``flags``: code×seeds; with strong-to-strong runs, ``s2s_last``: the last round's score and
    its round)."""
    header: tuple[str, ...] = (
        "task", "strong", "head", "weak", "seeds", "score", "weak", "w2s", "ceiling",
        "median_pgr", "pgr_of_means", "op_norm", "fro_sq/n", "pred_gap", "k_w", "error", "flags",
    )  # fmt: skip

    def num(x: float, digits: int = 3) -> str:
        return f"{x:.{digits}f}" if math.isfinite(x) else "n/a"

    lines: list[tuple[str, ...]] = [
        (
            r["task"],
            r["strong"],
            r["head"],
            r["weak"],
            str(r["n_seeds"]),
            r["score"],
            num(r["weak_score"]),
            num(r["w2s_score"]),
            num(r["ceiling_score"]),
            num(r["median_pgr"], 2),
            num(r["pgr_of_means"], 2),
            num(r["op_norm"]),
            num(r["fro_sq_over_n"]),
            num(r["predicted_gap"]),
            num(r["k_weak"], 0),
            num(r["error"]),
            format_flag_counts(r["flags"]) or "-",
        )  # fmt: skip
        for r in table
    ]
    if any("s2s_score" in r for r in table):  # runs with strong-to-strong rounds
        header = (*header[:-1], "s2s_last", header[-1])
        lines = [
            (*line[:-1], f"{num(r['s2s_score'])} (r{r['s2s_rounds']})" if "s2s_score" in r
             else "-", line[-1])
            for line, r in zip(lines, table, strict=True)
        ]  # fmt: skip
    return _aligned(header, lines)


def format_flag_counts(counts: dict[str, int]) -> str:
    """``code×n`` for each flag code (``code`` alone when n = 1), comma-separated."""
    return ",".join(code if n == 1 else f"{code}×{n}" for code, n in counts.items())


def _fmt(c: dict[str, Any]) -> str:
    v, lo, hi = c["value"], c["ci_low"], c["ci_high"]
    if v is None or not math.isfinite(v):
        return "n/a"
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{v:+.2f}"
    return f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def format_table(table: list[dict[str, Any]]) -> str:
    """The correlation table as aligned text, one line per row; ``flagged runs``: runs with any
    flag out of the group's runs, then code×runs."""
    header = ("task", "strong", "head", "metric", "n_weak", *CORRELATIONS, "flagged runs")
    lines = [
        (
            r["task"],
            r["strong"],
            r["head"],
            r["metric"],
            str(r["n_weak"]),
            *(_fmt(r[c]) for c in CORRELATIONS),
            f"{r.get('n_flagged', 0)}/{r['n_runs']} {format_flag_counts(r.get('flags') or {})}",
        )
        for r in table
    ]
    return _aligned(header, lines)


# -- rank studies ---------------------------------------------------------------------------

#: What a rank study ranks candidates by: the label-free metrics, the label-aware G, and, as the
#: baseline a practitioner with labels would use, the weak model's own test error.
RANKERS: tuple[str, ...] = (*METRICS, "weak_error")


def _weak_error(row: dict[str, Any]) -> float:
    """The weak model's own test error (1 − accuracy, MSE or KL), as :func:`w2s_error`."""
    task = ((row.get("config") or {}).get("run") or {}).get("task", "classification")
    key, is_score = _ERROR_OF_TASK.get(task, ("accuracy", True))
    value = ((row.get("metrics") or {}).get("weak") or {}).get(key)
    if not isinstance(value, int | float):
        return math.nan
    return 1.0 - float(value) if is_score else float(value)


def rank_table(
    rows: Iterable[dict[str, Any]],
    error: str = "metrics",
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Did the top-ranked supervisor turn out best? One row per (task, strong model,
    configuration, ranker).

    For each weak model: the ranker's value (mean over seeds; smaller is better) and the student's
    realised test error (mean over seeds, with its standard error SE = sd / √seeds; one seed: the
    binomial SE √(e(1 − e)/n_test) for classification, else NaN). ``top`` is the weak model the
    ranker puts first, ``best`` the one with the smallest realised error.

    Each row: ``task``, ``strong``, ``head``, ``config_id``, ``ranker``, ``n_weak``, ``top``,
    ``best``, ``top_error``, ``best_error``, ``best_se``, ``precision_at_1`` (1 when the top
    model's error is within one SE of the best's, else 0), ``regret`` (top_error − best_error: in
    accuracy points for classification), ``random_regret`` (the mean regret of a candidate drawn
    at random, for scale), ``rank_of_best`` (where the ranker puts the best model, 1 = first),
    ``spearman`` (ranker value vs realised error over the weak models) with ``spearman_ci``, its
    percentile bootstrap interval over ``n_boot`` resamples of the weak models (as
    :func:`correlate`; NaN below 3 weak models).
    """
    if error not in ERROR_SOURCES:
        raise W2SGError(f"unknown error source {error!r}; use one of {', '.join(ERROR_SOURCES)}")
    table = []
    for key, head, by_weak in _buckets(rows):
        weak = sorted(by_weak)
        errs = [[w2s_error(r, error) for r in by_weak[w]] for w in weak]
        mean = np.array([_mean(e) for e in errs])
        se = np.array([_standard_error(e, by_weak[w]) for e, w in zip(errs, weak, strict=True)])
        for ranker in RANKERS:
            if ranker == "weak_error":
                value = np.array([_mean([_weak_error(r) for r in by_weak[w]]) for w in weak])
            else:
                value = np.array([_mean([_theory_value(r, ranker) for r in by_weak[w]])
                                  for w in weak])  # fmt: skip
            ok = np.isfinite(value) & np.isfinite(mean)
            row: dict[str, Any] = {
                "task": key[0], "strong": key[1], "head": head, "config_id": key[2],
                "ranker": ranker, "n_weak": int(ok.sum()),
            }  # fmt: skip
            if ok.sum() < 2:
                table.append({**row, "reason": f"{int(ok.sum())} weak models ranked; need >= 2"})
                continue
            idx = np.flatnonzero(ok)
            top = int(idx[np.lexsort((mean[idx], value[idx]))[0]])
            best = int(idx[np.argmin(mean[idx])])
            order = idx[np.lexsort((mean[idx], value[idx]))]
            regret = float(mean[top] - mean[best])
            within = regret <= se[best] if math.isfinite(se[best]) else regret == 0.0
            row.update(
                top=weak[top],
                best=weak[best],
                top_error=float(mean[top]),
                best_error=float(mean[best]),
                best_se=float(se[best]),
                precision_at_1=int(within),
                regret=regret,
                random_regret=float(np.mean(mean[idx]) - mean[best]),
                rank_of_best=int(np.flatnonzero(order == best)[0]) + 1,
                spearman=_point("spearman", value[idx], mean[idx]) if ok.sum() >= 3 else math.nan,
                spearman_ci=_spearman_ci(value[idx], mean[idx], n_boot, confidence, seed),
                reason=None,
            )
            table.append(row)
    return table


def _spearman_ci(
    x: np.ndarray, y: np.ndarray, n_boot: int, confidence: float, seed: int
) -> list[float]:
    """The percentile bootstrap interval of Spearman's ρ over resamples of the pairs, exactly
    the ``spearman`` interval of :func:`correlate` (same resamples for the same seed)."""
    if len(x) < 3:
        return [math.nan, math.nan]
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    boot = _spearman_rows(x[idx], y[idx])
    boot = boot[np.isfinite(boot)]
    if not len(boot):
        return [math.nan, math.nan]
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def _standard_error(errors: list[float], runs: list[dict[str, Any]]) -> float:
    finite = [e for e in errors if math.isfinite(e)]
    if len(finite) >= 2:
        return float(np.std(finite, ddof=1) / math.sqrt(len(finite)))
    if len(finite) == 1:
        run = runs[0]
        task = ((run.get("config") or {}).get("run") or {}).get("task", "classification")
        n_test = ((run.get("metrics") or {}).get("n") or {}).get("test")
        if task == "classification" and isinstance(n_test, int) and n_test > 0:
            e = finite[0]
            return math.sqrt(e * (1 - e) / n_test)
    return math.nan


def rank_summary(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (head, ranker) over the tasks of a rank table: ``n_tasks``, ``precision_at_1`` (the
    share of tasks whose top-ranked model was within one SE of the best), ``mean_regret``,
    ``mean_random_regret`` and ``mean_spearman``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in table:
        if row.get("reason") is None:
            groups.setdefault((row["head"], row["ranker"]), []).append(row)
    out = []
    for (head, ranker), rows in groups.items():
        out.append(
            {
                "head": head,
                "ranker": ranker,
                "n_tasks": len(rows),
                "precision_at_1": float(np.mean([r["precision_at_1"] for r in rows])),
                "mean_regret": float(np.mean([r["regret"] for r in rows])),
                "mean_random_regret": float(np.mean([r["random_regret"] for r in rows])),
                "mean_spearman": _mean([r["spearman"] for r in rows]),
            }
        )
    return out


def _rho(value: float, ci: list[float] | None) -> str:
    if not math.isfinite(value):
        return "n/a"
    if ci and all(math.isfinite(c) for c in ci):
        return f"{value:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
    return f"{value:+.2f}"


def format_rank_table(table: list[dict[str, Any]]) -> str:
    """The rank table, then the per-ranker summary, as aligned text."""

    def num(x: Any, digits: int = 3) -> str:
        return f"{x:.{digits}f}" if isinstance(x, float) and math.isfinite(x) else "n/a"

    header = ("task", "strong", "head", "ranker", "n_weak", "top-ranked", "best", "top_err",
              "best_err±SE", "p@1", "regret", "random", "best@", "spearman")  # fmt: skip
    lines = []
    for r in table:
        if r.get("reason"):
            lines.append((r["task"], r["strong"], r["head"], r["ranker"], str(r["n_weak"]),
                          r["reason"], *[""] * 8))  # fmt: skip
            continue
        lines.append(
            (
                r["task"],
                r["strong"],
                r["head"],
                r["ranker"],
                str(r["n_weak"]),
                r["top"],
                r["best"],
                num(r["top_error"]),
                f"{num(r['best_error'])}±{num(r['best_se'])}",
                str(r["precision_at_1"]),
                num(r["regret"]),
                num(r["random_regret"]),
                str(r["rank_of_best"]),
                _rho(r["spearman"], r.get("spearman_ci")),
            )  # fmt: skip
        )
    summary = rank_summary(table)
    sheader = ("head", "ranker", "tasks", "precision@1", "mean regret", "random regret",
               "mean spearman")  # fmt: skip
    slines = [
        (s["head"], s["ranker"], str(s["n_tasks"]), f"{s['precision_at_1']:.2f}",
         num(s["mean_regret"]), num(s["mean_random_regret"]),
         f"{s['mean_spearman']:+.2f}" if math.isfinite(s["mean_spearman"]) else "n/a")
        for s in summary
    ]  # fmt: skip
    return _aligned(header, lines) + "\n\n" + _aligned(sheader, slines)


def rank_points(
    rows: Iterable[dict[str, Any]], error: str = "metrics", ranker: str = "op_norm"
) -> list[dict[str, Any]]:
    """Per (task, strong model, configuration): the data of a rank-vs-realised-error figure:
    ``title``, ``task``, ``strong``, ``head``, ``config_id``, ``ranker``, ``weak`` names (single
    weak supervisors), ``value`` (the ranker, mean over seeds), ``error`` and ``se`` (the
    student's realised error and its standard error), ``spearman`` (ranker vs error over the
    weak models with both, NaN below 3), and ``ensembles``: the ensemble weak sides of the group
    (``weak``, ``value``, ``error``), which are not ranked."""

    def value_of(runs: list[dict[str, Any]]) -> float:
        if ranker == "weak_error":
            return _mean([_weak_error(r) for r in runs])
        return _mean([_theory_value(r, ranker) for r in runs])

    out = []
    for key, head, by_weak in _buckets(rows, ensembles=True):
        weak = sorted(w for w, runs in by_weak.items() if not is_ensemble(runs[0]))
        if not weak:
            continue
        mixed = sorted(w for w, runs in by_weak.items() if is_ensemble(runs[0]))
        errs = [[w2s_error(r, error) for r in by_weak[w]] for w in weak]
        value = [value_of(by_weak[w]) for w in weak]
        mean = [_mean(e) for e in errs]
        x, y = np.array(value), np.array(mean)
        ok = np.isfinite(x) & np.isfinite(y)
        out.append(
            {
                "title": f"{key[0]} · strong {key[1]} · {head}",
                "task": key[0],
                "strong": key[1],
                "head": head,
                "config_id": key[2],
                "ranker": ranker,
                "weak": weak,
                "value": value,
                "error": mean,
                "se": [_standard_error(e, by_weak[w]) for e, w in zip(errs, weak, strict=True)],
                "spearman": _point("spearman", x[ok], y[ok]) if ok.sum() >= 3 else math.nan,
                "ensembles": {
                    "weak": mixed,
                    "value": [value_of(by_weak[w]) for w in mixed],
                    "error": [_mean([w2s_error(r, error) for r in by_weak[w]]) for w in mixed],
                },
            }
        )
    return out


# -- ensembles ------------------------------------------------------------------------------


def _paired(
    a: list[dict[str, Any]], b: list[dict[str, Any]], error: str, score: str | None = None
) -> dict[str, Any]:
    """Mean and SE (sd/√n, n ≥ 2) over seeds of error(a) − error(b), runs paired by seed."""
    ea = {r.get("seed"): w2s_error(r, error, score) for r in a}
    eb = {r.get("seed"): w2s_error(r, error, score) for r in b}
    diffs = [ea[s] - eb[s] for s in sorted(set(ea) & set(eb), key=str)
             if math.isfinite(ea[s]) and math.isfinite(eb[s])]  # fmt: skip
    if not diffs:
        return {"mean": math.nan, "se": math.nan, "n": 0}
    se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))) if len(diffs) >= 2 else math.nan
    return {"mean": float(np.mean(diffs)), "se": se, "n": len(diffs)}


def ensemble_table(
    rows: Iterable[dict[str, Any]], error: str = "metrics", *, score: str | None = None
) -> list[dict[str, Any]]:
    """Does an ensemble beat its members? One row per ensemble weak side of each (task, strong
    model, configuration) group, with the single-model runs of its members in the same group.

    Each row: ``task``, ``strong``, ``head``, ``config_id``, ``ensemble`` (its weak label),
    ``rule``, ``members``, ``weights`` (mean over seeds; ``None`` for the votes), ``n_seeds``,
    ``error`` (the student's test error, mean over seeds, as :func:`w2s_error`); when members
    were also run alone: ``pick`` (the member of smallest label-free op_norm, mean over seeds:
    the choice ``w2sg rank`` makes), ``pick_error``, ``best`` (the member whose student's error is
    smallest, known only with labels), ``best_error``, and ``vs_pick``, ``vs_best``: the ensemble's
    error minus theirs, paired by seed (``mean``, ``se``, ``n`` seeds; negative: the ensemble is
    better). ``n_members_run``: how many members have single-model runs. ``score``: the error
    from another test metric, as in :func:`w2s_error`."""
    if error not in ERROR_SOURCES:
        raise W2SGError(f"unknown error source {error!r}; use one of {', '.join(ERROR_SOURCES)}")
    table = []
    for key, head, by_weak in _buckets(rows, ensembles=True):
        singles = {w: runs for w, runs in by_weak.items() if not is_ensemble(runs[0])}
        for weak, runs in sorted(by_weak.items()):
            if not is_ensemble(runs[0]):
                continue
            combo = ensemble_weights(runs)
            present = [m for m in combo["members"] if m in singles]
            row: dict[str, Any] = {
                "task": key[0], "strong": key[1], "head": head, "config_id": key[2],
                "ensemble": weak, "rule": combo["rule"], "members": combo["members"],
                "weights": combo["weights"], "n_seeds": len(runs),
                "error": _mean([w2s_error(r, error, score) for r in runs]),
                "n_members_run": len(present),
            }  # fmt: skip
            if present:
                op = {m: _mean([_theory_value(r, "op_norm") for r in singles[m]]) for m in present}
                err = {m: _mean([w2s_error(r, error, score) for r in singles[m]]) for m in present}
                ranked = [m for m in present if math.isfinite(op[m])]
                pick = min(ranked, key=lambda m: (op[m], m)) if ranked else None
                scored = [m for m in present if math.isfinite(err[m])]
                best = min(scored, key=lambda m: (err[m], m)) if scored else None
                row["pick"] = pick
                row["pick_error"] = err[pick] if pick else math.nan
                row["best"] = best
                row["best_error"] = err[best] if best else math.nan
                row["vs_pick"] = _paired(runs, singles[pick], error, score) if pick else None
                row["vs_best"] = _paired(runs, singles[best], error, score) if best else None
            table.append(row)
    return table


def format_ensemble_table(table: list[dict[str, Any]]) -> str:
    """The ensemble table as aligned text: errors with 3 decimals, paired differences as
    mean±SE."""

    def num(x: Any) -> str:
        return f"{x:.3f}" if isinstance(x, float) and math.isfinite(x) else "n/a"

    def diff(d: dict[str, Any] | None) -> str:
        if not d or not math.isfinite(d["mean"]):
            return "n/a"
        se = f"±{d['se']:.3f}" if math.isfinite(d["se"]) else ""
        return f"{d['mean']:+.3f}{se}"

    header = ("task", "strong", "head", "ensemble", "seeds", "error", "pick (op_norm)",
              "pick_err", "ens−pick", "best member", "best_err", "ens−best")  # fmt: skip
    lines = [
        (r["task"], r["strong"], r["head"], r["ensemble"], str(r["n_seeds"]), num(r["error"]),
         str(r.get("pick") or "-"), num(r.get("pick_error")), diff(r.get("vs_pick")),
         str(r.get("best") or "-"), num(r.get("best_error")), diff(r.get("vs_best")))
        for r in table
    ]  # fmt: skip
    return _aligned(header, lines)
