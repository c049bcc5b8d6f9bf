"""The results store: one SQLite database (WAL) with one row per run configuration.

Table ``runs``: ``config_hash`` (unique), ``status`` (``done`` or ``failed``), ``started`` /
``finished`` (ISO-8601 UTC), ``seconds``, and JSON columns ``versions``, ``config``, ``metrics``,
``theory``, ``bounds``, plus ``error`` for a failed run. ``task``, ``weak``, ``strong``, ``head``
and ``seed`` repeat fields of ``config`` so that the table reads well in any SQLite browser.

Each row is written in its own transaction, so a sweep killed at any moment (even ``kill -9``)
leaves every finished run recorded and no half-written row. A ``done`` row is never overwritten; a
``failed`` row is replaced when the run is retried.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from w2sg.atomic import atomic_path
from w2sg.errors import W2SGError

STATUSES: tuple[str, ...] = ("done", "failed")
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    config_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    task TEXT,
    weak TEXT,
    strong TEXT,
    head TEXT,
    seed INTEGER,
    started TEXT,
    finished TEXT,
    seconds REAL,
    versions TEXT,
    config TEXT NOT NULL,
    metrics TEXT,
    theory TEXT,
    bounds TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_JSON_COLUMNS = ("versions", "config", "metrics", "theory", "bounds")
_COLUMNS = (
    "config_hash",
    "status",
    "task",
    "weak",
    "strong",
    "head",
    "seed",
    "started",
    "finished",
    "seconds",
    "versions",
    "config",
    "metrics",
    "theory",
    "bounds",
    "error",
)


def _dumps(value: Any) -> str | None:
    """Canonical JSON; NaN and infinities become ``null`` (JSON has no such numbers)."""
    if value is None:
        return None
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is an SQLite database file (by its 16-byte header)."""
    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


class ResultStore:
    """An SQLite results store. Use as a context manager, or call :meth:`close`.

    Args:
        path: the database file; created (with its folder) unless ``create=False``.
        create: create a missing database. With ``False`` a missing file is a :class:`W2SGError`.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise W2SGError(f"results store {self.path} does not exist; run `w2sg sweep` first")
        if self.path.exists() and not is_store(self.path) and self.path.stat().st_size > 0:
            raise W2SGError(f"{self.path} is not an SQLite results store; pass the .db of a sweep")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except sqlite3.DatabaseError as exc:
            raise W2SGError(f"cannot open results store {self.path}: {exc}") from exc

    # -- context manager ---------------------------------------------------------------------

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # -- writing ----------------------------------------------------------------------------

    def record(self, record: dict[str, Any]) -> bool:
        """Write one run record in its own transaction; return whether a row was written.

        ``record`` has the keys of the table (JSON columns as Python objects). A ``done`` row
        already in the store is kept as it is (``False`` is returned); a ``failed`` row is
        replaced.
        """
        status = record.get("status")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if not record.get("config_hash"):
            raise ValueError("a run record needs a config_hash")
        values = []
        for col in _COLUMNS:
            v = record.get(col)
            values.append(_dumps(v) if col in _JSON_COLUMNS else v)
        placeholders = ", ".join("?" for _ in _COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "config_hash")
        sql = (
            f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders}) "
            f"ON CONFLICT(config_hash) DO UPDATE SET {updates} WHERE runs.status != 'done'"
        )
        with self._transaction():
            cur = self._conn.execute(sql, values)
        return cur.rowcount > 0

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # -- reading ----------------------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        """``config_hash`` → ``status`` for every row."""
        return dict(self._conn.execute("SELECT config_hash, status FROM runs").fetchall())

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        row = self._conn.execute("SELECT COUNT(*) FROM runs WHERE status = ?", (status,))
        return int(row.fetchone()[0])

    def rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every row (or those with ``status``), JSON columns parsed, in insertion order."""
        return list(self.iter_rows(status))

    def iter_rows(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        cols = ("id", *_COLUMNS)
        sql = f"SELECT {', '.join(cols)} FROM runs"
        params: tuple[Any, ...] = ()
        if status is not None:
            if status not in STATUSES:
                raise W2SGError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
            sql += " WHERE status = ?"
            params = (status,)
        for raw in self._conn.execute(sql + " ORDER BY id", params):
            row = dict(zip(cols, raw, strict=True))
            for col in _JSON_COLUMNS:
                if row[col] is not None:
                    row[col] = json.loads(row[col])
            yield row


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


# -- export ---------------------------------------------------------------------------------


def flat_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat dict per run: scalar columns, then ``config.*``, ``metrics.*``, ``theory.*``,
    ``bounds.*`` and ``versions.*`` with dotted names. Lists are kept as JSON text."""
    out = []
    for row in rows:
        flat: dict[str, Any] = {
            k: row[k] for k in ("config_hash", "status", "started", "finished", "seconds", "error")
        }
        for col in ("config", "metrics", "theory", "bounds", "versions"):
            _flatten(row.get(col), col, flat)
        out.append(flat)
    return out


def _flatten(value: Any, prefix: str, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}", into)
    elif isinstance(value, list):
        into[prefix] = json.dumps(value)
    elif value is not None:
        into[prefix] = value


def export_runs(store_path: str | Path, out: str | Path, *, status: str | None = None) -> int:
    """Write the runs of a store to ``out`` (``.parquet`` or ``.csv``, by suffix), atomically.

    Returns the number of rows written. Parquet needs pyarrow.
    """
    import pandas as pd

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise W2SGError(f"--out must end in .parquet or .csv, got {out.name!r}")
    if suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise W2SGError(
                "Parquet export needs pyarrow: pip install pyarrow (or 'w2sg[distributed]'), "
                "or export to .csv"
            )
    with ResultStore(store_path, create=False) as store:
        rows = store.rows(status)
    frame = pd.DataFrame(flat_rows(rows))
    with atomic_path(out, suffix) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return len(frame)
