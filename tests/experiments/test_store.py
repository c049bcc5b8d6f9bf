"""The SQLite results store: WAL, one row per configuration, done rows never overwritten, export."""

from __future__ import annotations

import importlib.util
import math
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from w2sg.errors import W2SGError
from w2sg.experiments.store import ResultStore, export_runs, flat_rows, is_store


def record(h: str, status: str = "done", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "config_hash": h,
        "status": status,
        "task": "t",
        "weak": "w",
        "strong": "s",
        "head": "ridge",
        "seed": 0,
        "started": "2026-01-01T00:00:00+00:00",
        "finished": "2026-01-01T00:00:01+00:00",
        "seconds": 1.0,
        "versions": {"w2sg": "0.1.0"},
        "config": {"run": {"task": "classification"}, "list": [1, 2]},
        "metrics": {"w2s": {"accuracy": 0.8, "nan": math.nan}, "pgr": {"value": 0.5}},
        "theory": {"op_norm": 0.3},
        "bounds": None,
        "error": None if status == "done" else "boom",
    }
    base.update(extra)
    return base


def test_wal_and_schema(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "runs.db"
    with ResultStore(db) as store:
        assert store.count() == 0
    assert is_store(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    expected = {"config_hash", "status", "started", "finished", "seconds", "versions", "config"}
    assert cols >= expected | {"metrics", "theory", "bounds", "error"}
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO runs(config_hash, status, config) VALUES ('x', 'running', '{}')")


def test_round_trip_and_nan_to_null(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as store:
        assert store.record(record("a"))
        (row,) = store.rows()
    assert row["metrics"]["w2s"] == {"accuracy": 0.8, "nan": None}
    assert row["config"]["list"] == [1, 2]
    assert row["bounds"] is None and row["status"] == "done"


def test_done_is_never_overwritten_failed_is_replaced(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as store:
        assert store.record(record("a"))
        assert not store.record(record("a", status="failed"))
        assert store.record(record("b", status="failed"))
        assert store.record(record("b", metrics={"w2s": {"accuracy": 0.9}}))
        assert not store.record(record("b", metrics={"w2s": {"accuracy": 0.1}}))
        rows = {r["config_hash"]: r for r in store.rows()}
        assert store.count() == 2 and store.count("done") == 2 and store.count("failed") == 0
    assert rows["a"]["status"] == "done"
    assert rows["b"]["metrics"]["w2s"]["accuracy"] == 0.9
    assert rows["b"]["error"] is None


def test_statuses_and_bad_records(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as store:
        store.record(record("a"))
        store.record(record("b", status="failed"))
        assert store.statuses() == {"a": "done", "b": "failed"}
        assert [r["config_hash"] for r in store.rows("failed")] == ["b"]
        with pytest.raises(ValueError):
            store.record(record("c", status="running"))
        with pytest.raises(W2SGError, match="unknown status"):
            store.rows("running")


def test_not_a_store(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not sqlite")
    with pytest.raises(W2SGError, match="is not an SQLite results store"):
        ResultStore(text)
    with pytest.raises(W2SGError, match="does not exist"):
        ResultStore(tmp_path / "missing.db", create=False)


def test_flat_rows() -> None:
    (flat,) = flat_rows([record("a")])
    assert flat["metrics.w2s.accuracy"] == 0.8
    assert flat["theory.op_norm"] == 0.3
    assert flat["config.run.task"] == "classification"
    assert flat["config.list"] == "[1, 2]"
    assert flat["versions.w2sg"] == "0.1.0"
    assert "bounds" not in flat


def test_export_csv(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        store.record(record("a"))
        store.record(record("b", status="failed", metrics=None, theory=None))
    out = tmp_path / "out" / "runs.csv"
    assert export_runs(db, out) == 2
    frame = pd.read_csv(out)
    assert list(frame["config_hash"]) == ["a", "b"]
    assert frame.loc[0, "metrics.w2s.accuracy"] == 0.8
    assert export_runs(db, out, status="failed") == 1
    assert not list(out.parent.glob(".*.tmp"))
    with pytest.raises(W2SGError, match=r"--out must end in \.parquet or \.csv"):
        export_runs(db, tmp_path / "runs.xlsx")


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_export_parquet(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultStore(db) as store:
        store.record(record("a"))
        store.record(record("b", metrics={"w2s": {"accuracy": 0.7}}))
    out = tmp_path / "runs.parquet"
    assert export_runs(db, out) == 2
    frame = pd.read_parquet(out)
    assert list(frame["metrics.w2s.accuracy"]) == [0.8, 0.7]


def test_export_parquet_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "r.db"
    ResultStore(db).close()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    with pytest.raises(W2SGError, match="Parquet export needs pyarrow"):
        export_runs(db, tmp_path / "runs.parquet")
