"""Rank studies (``w2sg study --rank``): precision@1, regret and Spearman of each ranker."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from w2sg.experiments.studies import format_rank_table, rank_points, rank_summary, rank_table


def _row(task: str, weak: str, seed: int, w2s: float, weak_acc: float, op: float) -> dict[str, Any]:
    return {
        "status": "done",
        "task": task,
        "strong": "S",
        "weak": weak,
        "head": "ridge",
        "config": {"run": {"task": "classification", "seed": seed}, "dataset": {"name": task}},
        "metrics": {"w2s": {"accuracy": w2s}, "weak": {"accuracy": weak_acc}, "n": {"test": 200}},
        "theory": {"op_norm": op, "fro_sq_over_n": op / 10, "predicted_gap": 2 * op},
    }


# weak model: (w2s accuracies over seeds, weak accuracy, op norm)
MODELS = {
    "a": ([0.80, 0.82, 0.78], 0.70, 0.50),  # best student, ranked second by op norm
    "b": ([0.79, 0.80, 0.78], 0.60, 0.40),  # ranked first, within one SE of a
    "c": ([0.60, 0.62, 0.61], 0.75, 0.90),  # best teacher, worst student
}


def _rows(models: dict[str, Any] = MODELS, task: str = "t") -> list[dict[str, Any]]:
    return [
        _row(task, w, s, acc[s], weak_acc, op)
        for w, (acc, weak_acc, op) in models.items()
        for s in range(3)
    ]


def test_rank_table_by_hand() -> None:
    table = {r["ranker"]: r for r in rank_table(_rows())}
    op = table["op_norm"]
    err = {w: 1 - np.mean(a) for w, (a, _, _) in MODELS.items()}
    se_a = np.std([1 - x for x in MODELS["a"][0]], ddof=1) / math.sqrt(3)
    assert (op["top"], op["best"]) == ("b", "a")
    assert op["regret"] == pytest.approx(err["b"] - err["a"])
    assert op["best_se"] == pytest.approx(se_a)
    assert op["precision_at_1"] == int(err["b"] - err["a"] <= se_a) == 1
    assert op["rank_of_best"] == 2
    assert op["random_regret"] == pytest.approx(np.mean(list(err.values())) - err["a"])
    ops = [MODELS[w][2] for w in ("a", "b", "c")]
    assert op["spearman"] == pytest.approx(stats.spearmanr(ops, [err[w] for w in "abc"]).statistic)
    # the label-using baseline picks the best teacher, c, whose student is the worst
    base = table["weak_error"]
    assert base["top"] == "c" and base["precision_at_1"] == 0
    assert base["regret"] == pytest.approx(err["c"] - err["a"])


def test_precision_fails_outside_one_se_and_summary() -> None:
    models = dict(MODELS, b=([0.70, 0.71, 0.69], 0.6, 0.40))
    rows = _rows() + _rows(models, task="u")
    table = rank_table(rows)
    by = {(r["task"], r["ranker"]): r for r in table}
    assert by[("t", "op_norm")]["precision_at_1"] == 1
    assert by[("u", "op_norm")]["precision_at_1"] == 0
    summary = {s["ranker"]: s for s in rank_summary(table)}
    assert summary["op_norm"]["n_tasks"] == 2
    assert summary["op_norm"]["precision_at_1"] == pytest.approx(0.5)
    regrets = [by[(t, "op_norm")]["regret"] for t in ("t", "u")]
    assert summary["op_norm"]["mean_regret"] == pytest.approx(np.mean(regrets))
    text = format_rank_table(table)
    assert "precision@1" in text and "op_norm" in text and "weak_error" in text


def test_one_seed_uses_the_binomial_se() -> None:
    rows = [r for r in _rows() if r["config"]["run"]["seed"] == 0]
    op = next(r for r in rank_table(rows) if r["ranker"] == "op_norm")
    e = 1 - 0.80
    assert op["best_se"] == pytest.approx(math.sqrt(e * (1 - e) / 200))


def test_rank_points_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    points = rank_points(_rows())
    assert len(points) == 1 and points[0]["weak"] == ["a", "b", "c"]
    assert points[0]["value"] == pytest.approx([0.5, 0.4, 0.9])
    from w2sg.cli import main
    from w2sg.experiments.store import ResultStore

    store = tmp_path / "s.db"
    with ResultStore(store) as db:
        for i, row in enumerate(_rows()):
            db.record({**row, "config_hash": f"h{i}", "seed": row["config"]["run"]["seed"]})
    plot = tmp_path / "rank.png"
    assert main(["study", str(store), "--rank", "--json", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {r["ranker"] for r in out["rows"]} == {"op_norm", "fro_sq_over_n", "predicted_gap",
                                                  "weak_error"}  # fmt: skip
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_spearman_interval_by_brute_force() -> None:
    """The rank table's Spearman interval: scipy's ρ on each bootstrap resample of the weak
    models (the resamples :func:`correlate` draws for the same seed), percentile interval."""
    rng = np.random.default_rng(3)
    models = {
        f"w{i}": (list(0.6 + 0.05 * rng.random(3)), 0.6, float(op))
        for i, op in enumerate(rng.random(6))
    }
    op = next(r for r in rank_table(_rows(models), n_boot=200, seed=5) if r["ranker"] == "op_norm")
    names = sorted(models)
    x = np.array([models[w][2] for w in names])
    y = np.array([1 - np.mean(models[w][0]) for w in names])
    idx = np.random.default_rng(5).integers(0, len(x), size=(200, len(x)))
    boot = [stats.spearmanr(x[i], y[i]).statistic for i in idx]
    boot = np.array([b for b in boot if np.isfinite(b)])
    assert op["spearman_ci"] == pytest.approx(list(np.quantile(boot, [0.025, 0.975])))
    assert op["spearman_ci"][0] <= op["spearman"] <= op["spearman_ci"][1]
    assert "[" in format_rank_table([op])
