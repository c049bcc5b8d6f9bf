"""Flags, the baseline and both PGRs survive the results store: pipeline run → store row →
``w2sg export`` (a ``flags`` column of codes) → ``w2sg study --by-weak``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.data.splits import content_ids, make_splits
from w2sg.experiments.runner import base_record, pipeline_run
from w2sg.experiments.store import ResultStore, export_runs, flat_rows
from w2sg.experiments.sweep import parse_sweep


def test_flags_round_trip_through_store_export_and_study(tmp_path: Path, capsys) -> None:
    spec = parse_sweep(
        {
            "tasks": [{"dataset": "synthetic", "params": {"n": 300, "task": "classification"}}],
            "weak": ["weak_1"],
            "strong": ["strong"],
            "heads": ["ridge"],
            "seeds": [0],
        }
    ).expand()[0]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=300)
    weak = np.column_stack([labels + 0.01 * rng.normal(size=300), rng.normal(size=(300, 2))])
    strong = rng.normal(size=(300, 6))  # carries nothing: the weak model beats the ceiling
    out = pipeline_run(spec, weak, strong, labels, content_ids(weak, strong, labels))
    flags = out["metrics"]["flags"]
    codes = [f["code"] for f in flags]
    assert "weak_beats_ceiling" in codes and "ceiling_at_baseline" in codes
    db = tmp_path / "runs.db"
    with ResultStore(db) as store:
        store.record({**base_record(spec), "status": "done", **out})
        (row,) = store.rows()
    assert row["metrics"]["flags"] == flags
    assert row["metrics"]["pgr"]["value"] is None and "pgr_auroc" in row["metrics"]
    assert row["metrics"]["baseline"]["accuracy"] == out["metrics"]["baseline"]["accuracy"]
    (flat,) = flat_rows([row])
    assert flat["flags"].split(",") == [
        f"{f['code']}({f['model']})" if "model" in f else f["code"] for f in flags
    ]
    assert json.loads(flat["metrics.flags"]) == flags
    assert export_runs(db, tmp_path / "runs.csv") == 1
    with (tmp_path / "runs.csv").open(newline="") as fh:
        (exported,) = list(csv.DictReader(fh))
    assert exported["flags"] == flat["flags"]
    assert main(["study", str(db), "--by-weak", "--json"]) == 0
    (by_weak,) = json.loads(capsys.readouterr().out)
    assert by_weak["flags"]["weak_beats_ceiling"] == 1
    assert by_weak["median_pgr"] is None and by_weak["n_pgr_excluded"] == 1


def test_out_of_range_weak_labels_are_counted_by_study_and_export(tmp_path: Path, capsys) -> None:
    spec = parse_sweep(
        {
            "tasks": [{"dataset": "synthetic", "params": {"n": 300, "task": "regression"}}],
            "weak": ["weak_1"],
            "strong": ["strong"],
            "heads": ["ridge"],
            "seeds": [0],
            "run": {"task": "regression", "theory": False},
        }
    ).expand()[0]
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 3))
    labels = z.sum(axis=1) + 0.3 * rng.normal(size=300)
    ids = content_ids(z, labels)
    hat = make_splits(ids, RunConfig().fractions, seed=0)["w2s_train"]
    noise = labels - z[:, 0]  # the weak head weighs this column ≈ 1 ...
    noise[hat[::10]] = 1e4  # ... so its labels are far out where it is large on D̂
    weak = np.column_stack([z[:, 0], noise])
    out = pipeline_run(spec, weak, z, labels, ids)
    wr = out["metrics"]["weak_label_range"]
    assert wr["n_out_of_range"] == len(hat[::10])
    assert "weak_labels_out_of_range" in [f["code"] for f in out["metrics"]["flags"]]
    db = tmp_path / "runs.db"
    with ResultStore(db) as store:
        store.record({**base_record(spec), "status": "done", **out})
        (row,) = store.rows()
    (flat,) = flat_rows([row])
    assert "weak_labels_out_of_range" in flat["flags"].split(",")
    assert flat["metrics.weak_label_range.n_out_of_range"] == wr["n_out_of_range"]
    assert main(["study", str(db), "--by-weak", "--json"]) == 0
    (by_weak,) = json.loads(capsys.readouterr().out)
    assert by_weak["flags"]["weak_labels_out_of_range"] == 1
