"""Correlation tables: point estimates equal scipy.stats, bootstrap resamples are scipy's statistic
on each resample, grouping averages seeds per weak model."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from w2sg.errors import W2SGError
from w2sg.experiments.studies import (
    _kendall_rows,
    _pearson_rows,
    _spearman_rows,
    correlate,
    correlation_table,
    format_table,
    format_weak_table,
    pgr_summary,
    study_groups,
    w2s_error,
    weak_table,
)


@pytest.mark.parametrize("n", [3, 5, 12, 40])
@pytest.mark.parametrize("seed", [0, 1])
def test_point_estimates_equal_scipy(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=n)
    y[: n // 3] = np.round(y[: n // 3])  # some ties
    out = correlate(x, y, n_boot=200, seed=seed)
    assert out["spearman"]["value"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert out["kendall"]["value"] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert out["pearson"]["value"] == pytest.approx(stats.pearsonr(x, y).statistic)
    for name in ("spearman", "kendall", "pearson"):
        c = out[name]
        assert -1.0 <= c["ci_low"] <= c["ci_high"] <= 1.0


def test_bootstrap_statistics_equal_scipy_on_each_resample() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 9))
    y = x + rng.normal(size=(30, 9))
    y[:, :3] = np.round(y[:, :3])
    y[0] = 1.0  # a constant resample: undefined
    sp, kd, pe = _spearman_rows(x, y), _kendall_rows(x, y), _pearson_rows(x, y)
    assert np.isnan(sp[0]) and np.isnan(pe[0]) and np.isnan(kd[0])
    for b in range(1, 30):
        assert sp[b] == pytest.approx(stats.spearmanr(x[b], y[b]).statistic)
        assert kd[b] == pytest.approx(stats.kendalltau(x[b], y[b]).statistic)
        assert pe[b] == pytest.approx(stats.pearsonr(x[b], y[b]).statistic)


def test_interval_is_percentile_of_resampled_statistic() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=15)
    y = x + 0.8 * rng.normal(size=15)
    out = correlate(x, y, n_boot=300, seed=11, confidence=0.9)
    idx = np.random.default_rng(11).integers(0, 15, size=(300, 15))
    boot = np.array([stats.pearsonr(x[i], y[i]).statistic for i in idx])
    lo, hi = np.quantile(boot, [0.05, 0.95])
    assert out["pearson"]["ci_low"] == pytest.approx(lo)
    assert out["pearson"]["ci_high"] == pytest.approx(hi)


def test_perfect_and_degenerate() -> None:
    x = np.arange(6.0)
    out = correlate(x, 2 * x + 1, n_boot=100)
    for name in ("spearman", "kendall", "pearson"):
        assert out[name]["value"] == pytest.approx(1.0)
        assert out[name]["ci_low"] == pytest.approx(1.0)
    two = correlate(np.array([1.0, 2.0]), np.array([2.0, 1.0]))
    assert all(math.isnan(v["value"]) for v in two.values())
    with_nan = correlate(np.array([1.0, 2.0, np.nan, 4.0]), np.array([1.0, 2.0, 3.0, 5.0]))
    assert with_nan["spearman"]["value"] == pytest.approx(1.0)


def run(task: str, weak: str, seed: int, op: float, acc: float, **theory: float) -> dict[str, Any]:
    return {
        "status": "done",
        "task": task,
        "weak": weak,
        "strong": "S",
        "head": "ridge",
        "seed": seed,
        "config": {
            "run": {"task": "classification", "seed": seed, "head": "ridge"},
            "dataset": {"name": "synthetic", "params": {"n": 100}, "seed": seed},
        },
        "metrics": {"w2s": {"accuracy": acc}},
        "theory": {
            "op_norm": op,
            "fro_sq_over_n": op / 2,
            "predicted_gap": op / 3,
            "w2s_error": 1 - acc,
            **theory,
        },
    }


def test_groups_average_seeds_per_weak_model() -> None:
    rows = [
        run("A", "w1", 0, 0.1, 0.90),
        run("A", "w1", 1, 0.3, 0.80),
        run("A", "w2", 0, 0.5, 0.70),
        run("A", "w3", 0, 0.9, 0.60),
        run("B", "w1", 0, 0.2, 0.9),
        {**run("A", "w4", 0, 5.0, 0.1), "status": "failed"},
    ]
    groups = study_groups(rows)
    assert [(g.task, g.weak) for g in groups] == [("A", ["w1", "w2", "w3"]), ("B", ["w1"])]
    a = groups[0]
    assert a.metrics["op_norm"] == pytest.approx([0.2, 0.5, 0.9])
    assert a.error == pytest.approx([0.15, 0.30, 0.40])
    assert a.n_runs == 4
    table = correlation_table(rows, n_boot=50)
    a_rows = [r for r in table if r["task"] == "A"]
    assert len(a_rows) == 3 and all(r["spearman"]["value"] == pytest.approx(1.0) for r in a_rows)
    b_rows = [r for r in table if r["task"] == "B"]
    assert all(r["reason"] and math.isnan(r["pearson"]["value"]) for r in b_rows)
    text = format_table(table)
    assert "op_norm" in text and "n/a" in text


def test_configs_that_differ_beyond_the_seed_are_separate_groups() -> None:
    r1 = run("A", "w1", 0, 0.1, 0.9)
    r2 = run("A", "w1", 0, 0.1, 0.9)
    r2["config"]["run"]["strong_ridge"] = 1.0
    assert len(study_groups([r1, r2])) == 2


def test_w2s_error_sources() -> None:
    r = run("A", "w1", 0, 0.1, 0.75)
    assert w2s_error(r) == pytest.approx(0.25)
    assert w2s_error(r, "theory") == pytest.approx(0.25)
    r["config"]["run"]["task"] = "regression"
    r["metrics"]["w2s"] = {"mse": 0.4}
    assert w2s_error(r) == pytest.approx(0.4)
    r["config"]["run"]["task"] = "probability"
    r["metrics"]["w2s"] = {"kl": 0.2}
    assert w2s_error(r) == pytest.approx(0.2)
    assert math.isnan(w2s_error({"metrics": {}, "config": {}}))


def test_weak_table_means_over_seeds_sorted_by_error() -> None:
    rows = [
        run("A", "w1", 0, 0.1, 0.90, k_weak=10),
        run("A", "w1", 1, 0.3, 0.80, k_weak=20),
        run("A", "w2", 0, 0.9, 0.60, k_weak=5),
        {**run("A", "w3", 0, 5.0, 0.1), "status": "failed"},
    ]
    scores = [(0.7, 0.95, 0.5), (0.6, 0.95, 0.1), (0.5, 0.9, 0.2)]
    for r, (weak, ceiling, pgr) in zip(rows[:3], scores, strict=True):
        r["metrics"].update(
            weak={"accuracy": weak}, ceiling={"accuracy": ceiling}, pgr={"value": pgr}
        )
    table = weak_table(rows)
    assert [r["weak"] for r in table] == ["w2", "w1"]  # largest error first; failed left out
    w1 = table[1]
    assert w1["n_seeds"] == 2 and w1["score"] == "accuracy"
    assert w1["weak_score"] == pytest.approx(0.65) and w1["w2s_score"] == pytest.approx(0.85)
    assert w1["ceiling_score"] == pytest.approx(0.95)
    # median over seeds of the per-seed PGRs, and the PGR of the seed means: two named numbers
    per_seed = [(0.9 - 0.7) / (0.95 - 0.7), (0.8 - 0.6) / (0.95 - 0.6)]
    assert w1["median_pgr"] == pytest.approx(np.median(per_seed)) and w1["n_pgr"] == 2
    assert w1["pgr_of_means"] == pytest.approx((0.85 - 0.65) / (0.95 - 0.65))
    assert w1["median_pgr"] != pytest.approx(w1["pgr_of_means"])
    assert w1["op_norm"] == pytest.approx(0.2) and w1["k_weak"] == pytest.approx(15)
    assert w1["error"] == pytest.approx(0.15)
    assert math.isnan(w1["k_strong"])
    text = format_weak_table(table)
    assert text.splitlines()[1].split()[3] == "w2" and "0.650" in text.splitlines()[2]
    with pytest.raises(W2SGError, match="unknown error source"):
        weak_table(rows, error="nope")
    assert weak_table([]) == [] and format_weak_table([]).split()[:2] == ["task", "strong"]
    assert format_table([]).split()[:2] == ["task", "strong"]


def test_pgr_summary_excludes_weak_above_ceiling_and_counts_flags() -> None:
    rows = [run("A", "w1", seed, 0.1, acc) for seed, acc in enumerate((0.8, 0.7, 0.75))]
    scores = [(0.6, 0.9, 0.3), (0.65, 0.9, 0.5), (0.8, 0.7, 0.6)]  # weak, ceiling, auroc weak
    for r, (weak, ceiling, auc_weak) in zip(rows, scores, strict=True):
        r["metrics"].update(
            weak={"accuracy": weak, "auroc": auc_weak},
            ceiling={"accuracy": ceiling, "auroc": 0.9},
        )
        r["metrics"]["w2s"]["auroc"] = 0.7
    rows[2]["metrics"]["flags"] = [
        {"code": "weak_beats_ceiling", "reason": "x"},
        {"code": "below_baseline", "model": "w2s", "reason": "y"},
        {"code": "below_baseline", "model": "weak", "reason": "z"},
    ]
    rows[1]["metrics"]["flags"] = [{"code": "small_gap", "reason": "w"}]
    summary = pgr_summary(rows)
    weak = np.array([0.6, 0.65, 0.8])
    w2s = np.array([0.8, 0.7, 0.75])
    ceiling = np.array([0.9, 0.9, 0.7])
    per_run = (w2s - weak) / (ceiling - weak)
    assert summary["median_pgr"] == pytest.approx(np.median(per_run[:2]))
    assert (summary["n_pgr"], summary["n_pgr_excluded"]) == (2, 1)
    expected = (w2s.mean() - weak.mean()) / (ceiling.mean() - weak.mean())
    assert summary["pgr_of_means"] == pytest.approx(expected)
    auc_weak = np.array([0.3, 0.5, 0.6])
    assert summary["median_pgr_auroc"] == pytest.approx(
        np.median((0.7 - auc_weak) / (0.9 - auc_weak))
    )
    assert summary["flags"] == {"below_baseline": 1, "weak_beats_ceiling": 1, "small_gap": 1}
    (row,) = weak_table(rows)
    assert row["flags"] == summary["flags"] and row["median_pgr"] == summary["median_pgr"]
    assert "weak_beats_ceiling" in format_weak_table([row])
    table = correlation_table(rows, n_boot=10)
    assert table[0]["n_flagged"] == 2 and "2/3" in format_table(table)


def test_score_and_finetuned_theory_sources() -> None:
    """--score takes another student metric (1 − score for scores, else itself); --theory
    finetuned reads op_norm etc. from the stored theory_finetuned block, against scipy."""
    rows = []
    tf_ops = [0.9, 0.2, 0.5, 0.7]
    aurocs = [0.60, 0.85, 0.72, 0.70]
    ces = [0.69, 0.41, 0.55, 0.52]
    for i, (tf, auc, ce) in enumerate(zip(tf_ops, aurocs, ces, strict=True)):
        r = run("A", f"w{i}", 0, op=0.1 * (i + 1), acc=0.6)
        r["metrics"]["w2s"].update({"auroc": auc, "cross_entropy": ce})
        r["metrics"]["theory_finetuned"] = {"op_norm": tf, "fro_sq_over_n": tf, "predicted_gap": 1}
        rows.append(r)
    assert w2s_error(rows[0], score="auroc") == pytest.approx(0.40)
    assert w2s_error(rows[0], score="cross_entropy") == pytest.approx(0.69)
    assert math.isnan(w2s_error(rows[0], score="brier"))
    (g,) = study_groups(rows, score="auroc", theory="finetuned")
    assert g.metrics["op_norm"] == pytest.approx(tf_ops)
    assert g.error == pytest.approx([1 - a for a in aurocs])
    table = correlation_table(rows, n_boot=50, score="cross_entropy", theory="finetuned")
    op = next(r for r in table if r["metric"] == "op_norm")
    assert op["spearman"]["value"] == pytest.approx(stats.spearmanr(tf_ops, ces).statistic)
    frozen = next(r for r in correlation_table(rows, n_boot=50) if r["metric"] == "op_norm")
    assert math.isnan(frozen["spearman"]["value"])  # accuracy is constant: undefined
    (w,) = [r for r in weak_table(rows, score="auroc", theory="finetuned") if r["weak"] == "w1"]
    assert w["op_norm"] == pytest.approx(0.2) and w["error"] == pytest.approx(0.15)
    probe_only = run("A", "w9", 0, 0.3, 0.7)  # a probe run has no theory_finetuned: NaN
    assert math.isnan(study_groups([probe_only], theory="finetuned")[0].metrics["op_norm"][0])
    with pytest.raises(W2SGError, match="theory source"):
        study_groups(rows, theory="tuned")
