"""Sweeps over data files: parsed, hashed by content, run with the file's own splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from helpers import needs
from w2sg.cli import main
from w2sg.errors import W2SGError
from w2sg.experiments.store import ResultStore
from w2sg.experiments.sweep import RunSpec, parse_sweep


def _file(path: Path, n: int = 80) -> Path:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    frame = pd.DataFrame(
        {
            "text": [f'{words[i % 6]}, "really"\nreview {i}' for i in range(n)],
            "label": ["pos" if i % 6 < 3 else "neg" for i in range(n)],
            "part": ["train"] * (n - n // 4) + ["test"] * (n // 4),
        }
    )
    frame.to_csv(path, index=False)
    return path


def _sweep(path: str, source: str = "<sweep>", **extra):
    task = {"data": path, "text": "text", "label": "label", "split": "part", **extra}
    data = {"tasks": [task], "weak": ["static-64"], "strong": ["static-64"], "heads": ["softmax"]}
    return parse_sweep(data, source=source)


def test_a_data_task_is_hashed_by_content_not_by_path(tmp_path):
    path = _file(tmp_path / "a.csv")
    (spec,) = _sweep(str(path)).expand()
    data = spec.description()["dataset"]["data"]
    assert "path" not in data and len(data["sha256"]) == 64
    assert data["columns"] == {"text": ["text"], "label": "label", "split": "part"}
    assert spec.task_name == "a" and spec.config.task == "classification"
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(path, moved / "a.csv")
    assert _sweep(str(moved / "a.csv")).expand()[0].config_hash == spec.config_hash
    _file(path, n=84)  # an edited file is other data
    assert _sweep(str(path)).expand()[0].config_hash != spec.config_hash
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.data is not None and again.data["path"] == str(path.resolve())


def test_data_task_errors_name_the_key(tmp_path):
    path = _file(tmp_path / "a.csv")
    with pytest.raises(W2SGError, match=r"tasks\[0\]\.data: file not found"):
        _sweep(str(tmp_path / "missing.csv"))
    with pytest.raises(W2SGError, match=r"tasks\[0\]\.text: names a column"):
        parse_sweep({"tasks": [{"dataset": "synthetic", "text": "t"}], "weak": ["weak_1"],
                     "strong": ["strong"]})  # fmt: skip
    with pytest.raises(W2SGError, match="has no column 'nope'"):
        _sweep(str(path), label="nope")
    with pytest.raises(W2SGError, match="reads smiles but the data holds text"):
        parse_sweep({"tasks": [{"data": str(path), "text": "text", "label": "label"}],
                     "weak": ["maccs"], "strong": ["static-64"]})  # fmt: skip


def test_a_relative_path_is_found_beside_the_sweep_file(tmp_path):
    _file(tmp_path / "a.csv")
    (spec,) = _sweep("a.csv", source=str(tmp_path / "sweep.yaml")).expand()
    assert spec.data is not None and spec.data["path"] == str((tmp_path / "a.csv").resolve())


@needs("tokenlearn-static-model")
def test_a_sweep_runs_a_data_file_with_its_own_splits(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    path = _file(tmp_path / "reviews.csv")
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "tasks:\n  - {data: reviews.csv, text: text, label: label, split: part}\n"
        "weak: [static-64]\nstrong: [static-64]\nheads: [softmax]\nseeds: [0, 1]\n"
        "run: {n_bootstrap: 20, theory: false}\n"
    )
    db = tmp_path / "runs.db"
    args = ["sweep", str(cfg), "--store", str(db), "--json", "--workers", "1", "--no-progress"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["failed"]) == (2, 0), summary
    with ResultStore(db) as store:
        rows = store.rows("done")
    assert len(rows) == 2 and path.exists()
    for row in rows:
        assert row["metrics"]["n"]["test"] == 20  # the file's test rows, not a drawn 20%
        assert row["config"]["dataset"]["data"]["sha256"]


def test_hub_datasets_in_a_sweep_by_name_and_with_columns():
    (spec,) = parse_sweep(
        {"tasks": ["boolq"], "weak": ["static-64"], "strong": ["static-64"]}
    ).expand()
    assert spec.dataset == "boolq" and spec.config.task == "classification" and spec.data is None
    task = {"dataset": "hf:owner/qa", "text": ["q", "a"], "label": "ok", "template": "{q} {a}"}
    (spec,) = parse_sweep(
        {"tasks": [task], "weak": ["static-64"], "strong": ["static-64"]}
    ).expand()
    assert spec.data == {"columns": {"text": ["q", "a"], "label": "ok", "template": "{q} {a}"}}
    with pytest.raises(W2SGError, match="a data task needs label: COL and text: COL"):
        parse_sweep({"tasks": ["hf:owner/qa"], "weak": ["static-64"], "strong": ["static-64"]})
