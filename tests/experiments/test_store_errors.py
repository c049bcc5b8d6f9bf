"""Stores that cannot serve bad data (issue 12, item 4): readers open read-only and never touch a
foreign file; foreign, damaged and locked stores and bad JSON rows are one line naming the file."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from sweep_fakes import fake_prepare, fake_run, make_specs

from w2sg.cli import main
from w2sg.errors import W2SGError
from w2sg.experiments.executors import run_sweep
from w2sg.experiments.store import ResultStore, StoreLocked


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def a_store(path: Path, n: int = 3) -> Path:
    """A store of ``n`` done runs, written as the sweep writes them (without a worker pool)."""
    from w2sg.experiments.runner import execute, inputs_of

    with ResultStore(path) as store:
        for spec in make_specs([f"w{i}" for i in range(n)], [0]):
            inputs = {
                role: fake_prepare(unit, [name])[0]
                for role, (unit, name) in inputs_of(spec).items()
            }
            store.record(execute(spec.to_dict(), inputs, fake_run))
    return path


@pytest.fixture()
def foreign(tmp_path: Path) -> Path:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "{db}", "--out", "{tmp}/x.csv"],
        ["study", "{db}"],
        ["study", "{db}", "--by-weak"],
        ["report", "{db}", "--out", "{tmp}/rep"],
        ["sweep", "{sweep}", "--store", "{db}", "--no-progress"],
    ],
)
def test_foreign_sqlite_is_refused_and_left_untouched(tmp_path, foreign, capsys, argv):
    sweep = Path(__file__).resolve().parents[2] / "examples" / "sweep-synthetic.yaml"
    before = digest(foreign)
    args = [a.format(db=foreign, tmp=tmp_path, sweep=sweep) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"w2sg: error: {foreign} is an SQLite database but not a w2sg results store (its "
        "tables: t); pass the .db of a sweep, or a new file name"
    )
    assert digest(foreign) == before
    conn = sqlite3.connect(foreign)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert [n for (n,) in conn.execute("SELECT name FROM sqlite_master")] == ["t"]


@pytest.mark.parametrize("command", ["export", "study", "report"])
def test_damaged_store_is_one_line(tmp_path, capsys, command):
    db = tmp_path / "bad.db"
    db.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    argv = {
        "export": ["export", str(db), "--out", str(tmp_path / "x.csv")],
        "study": ["study", str(db)],
        "report": ["report", str(db), "--out", str(tmp_path / "rep")],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"w2sg: error: cannot open results store {db}") and "\n" not in err


def test_readers_write_nothing(tmp_path):
    db = a_store(tmp_path / "runs.db")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    before = digest(db)
    with ResultStore(db, read_only=True) as store:
        assert store.count() == 3
        with pytest.raises(W2SGError, match="opened read-only"):
            store.record(store.rows()[0])
    assert digest(db) == before


def test_read_only_store_falls_back_to_immutable(tmp_path, monkeypatch):
    """Where even the WAL index cannot be made (a read-only folder), the file is read as
    immutable; simulated by refusing the first, ``mode=ro`` connection as SQLite would."""
    db = a_store(tmp_path / "runs.db")
    real = sqlite3.connect
    seen: list[str] = []

    def connect(target, *args, **kwargs):
        seen.append(str(target))
        if "mode=ro" in str(target):

            class Refusing:
                def execute(self, *a, **k):
                    raise sqlite3.OperationalError("unable to open database file")

                def close(self):
                    pass

            return Refusing()
        return real(target, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    with ResultStore(db, read_only=True) as store:
        assert store.count() == 3
    assert any("immutable=1" in s for s in seen)


def test_bad_json_row_names_the_file_and_row(tmp_path, capsys):
    db = a_store(tmp_path / "runs.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET metrics = '{broken' WHERE id = 2")
    conn.commit()
    conn.close()
    assert main(["export", str(db), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"w2sg: error: results store {db}: row 2 (")
    assert "invalid JSON in column 'metrics'" in err


def test_locked_store_is_waited_for_then_one_line(tmp_path, monkeypatch):
    db = a_store(tmp_path / "runs.db", n=1)
    other = sqlite3.connect(db, isolation_level=None)
    with ResultStore(db, timeout=0.2) as store:
        row = {**store.rows()[0], "config_hash": "new", "status": "failed"}
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreLocked, match="locked by another process \\(waited 0.2 s"):
            store.record(row)
    other.execute("ROLLBACK")
    with ResultStore(db, timeout=0.2) as store:
        assert store.record(row) and store.count() == 2


def test_lock_taken_mid_sweep_keeps_every_finished_run(tmp_path, monkeypatch):
    """A worker process takes the store's write lock while the sweep runs: the sweep waits
    W2SG_STORE_TIMEOUT, then stops with one line; the runs recorded before stay."""
    monkeypatch.setenv("W2SG_STORE_TIMEOUT", "0.5")
    db = tmp_path / "runs.db"
    specs = make_specs(["a", "b", "lock", "c"], [0])
    specs = [s.__class__(**{**s.__dict__, "params": {**s.params, "store": str(db)}}) for s in specs]
    with pytest.raises(StoreLocked, match="every run recorded so far is kept"):
        run_sweep(specs, db, workers=1, progress=False, run_fn=fake_run, prepare_fn=fake_prepare)
    with ResultStore(db, read_only=True) as store:
        stored = {r["weak"] for r in store.rows()}
    assert stored and stored <= {"a", "b", "c"}
