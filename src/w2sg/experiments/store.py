"""The results store: one SQLite database (WAL) with one row per run configuration.

Table ``runs``: ``config_hash`` (unique), ``status`` (``done`` or ``failed``), ``started`` /
``finished`` (ISO-8601 UTC), ``seconds``, and JSON columns ``versions``, ``config``, ``metrics``,
``theory``, ``bounds``, plus ``error`` for a failed run. ``task``, ``weak``, ``strong``, ``head``
and ``seed`` repeat fields of ``config`` so that the table reads well in any SQLite browser.

Each row is written in its own transaction, so a sweep killed at any moment (even ``kill -9``)
leaves every finished run recorded and no half-written row. A ``done`` row is never overwritten; a
``failed`` row is replaced when the run is retried.

Readers (``export``, ``study``, ``report``) open a store read-only (SQLite URI ``mode=ro``, and
``immutable=1`` where even the WAL index cannot be opened): they never create a table or change
the journal mode, and they work on a read-only file. A writer initialises only a new or empty file
or a w2sg store. A foreign SQLite file, a damaged one, or a row whose JSON does not parse is one
:class:`W2SGError` naming the file. A store locked by another process is waited for
(``W2SG_STORE_TIMEOUT`` seconds, default 60), then reported as :class:`StoreLocked`.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import urllib.parse
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
    try:
        with p.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


class StoreLocked(W2SGError):
    """Another process held the store's write lock for longer than the wait allowed."""


def store_timeout() -> float:
    """Seconds to wait for a store locked by another process (``W2SG_STORE_TIMEOUT``, 60)."""
    text = os.environ.get("W2SG_STORE_TIMEOUT", "")
    try:
        value = float(text) if text else 60.0
    except ValueError:
        raise W2SGError(f"W2SG_STORE_TIMEOUT must be a number of seconds, got {text!r}") from None
    return max(value, 0.0)


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class ResultStore:
    """An SQLite results store. Use as a context manager, or call :meth:`close`.

    Args:
        path: the database file; created (with its folder) unless ``create=False``.
        create: create a missing database. With ``False`` a missing file is a :class:`W2SGError`.
        read_only: open without writing anything (implies ``create=False``).
        timeout: seconds to wait for a lock held by another process (default
            :func:`store_timeout`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        read_only: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.timeout = store_timeout() if timeout is None else timeout
        if (read_only or not create) and not self.path.exists():
            raise W2SGError(f"results store {self.path} does not exist; run `w2sg sweep` first")
        if self.path.is_dir():
            raise W2SGError(f"results store {self.path} is a folder; pass the .db of a sweep")
        if self.path.exists() and not is_store(self.path) and self.path.stat().st_size > 0:
            raise W2SGError(f"{self.path} is not an SQLite results store; pass the .db of a sweep")
        try:
            if read_only:
                self._conn = self._connect_read_only()
                self._check_schema(allow_empty=False)
            else:
                self._open_for_writing()
        except StoreLocked:
            raise
        except sqlite3.Error as exc:
            if _is_locked(exc):
                raise self._locked() from None
            raise W2SGError(
                f"cannot open results store {self.path}: {exc}; is it a damaged file?"
            ) from None

    def _locked(self) -> StoreLocked:
        return StoreLocked(
            f"results store {self.path} is locked by another process (waited {self.timeout:g} s, "
            "W2SG_STORE_TIMEOUT); every run recorded so far is kept: re-run the same command when "
            "the other process is done"
        )

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(str(self.path.absolute()))
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=self.timeout)
        try:
            conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "unable to open" not in str(exc) and "readonly" not in str(exc):
                raise
        # A WAL store in a folder this process cannot write: its -shm index cannot be made, so
        # read the file as immutable (nothing can write it from here either).
        return sqlite3.connect(uri + "?immutable=1", uri=True, timeout=self.timeout)

    def _open_for_writing(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from w2sg.data.io import os_problem

            raise W2SGError(f"results store {self.path}: {os_problem(exc)}") from None
        self._conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        if self._check_schema(allow_empty=True):
            self._conn.execute("PRAGMA synchronous=FULL")
            return  # an existing store: opening it takes no write lock
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )

    def _check_schema(self, *, allow_empty: bool) -> bool:
        """Whether the file is a complete w2sg store (``False``: empty, with ``allow_empty``).
        Refuse an SQLite file that is not a w2sg store (other tables, or a ``runs`` table without
        the store's columns), before anything is written to it."""
        tables = [
            name
            for (name,) in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        if not tables and allow_empty:
            return False
        if "runs" in tables:
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(runs)")}
            if set(_COLUMNS) <= columns:
                return "meta" in tables
        self._conn.close()
        shown = ", ".join(tables[:5]) if tables else "none"
        raise W2SGError(
            f"{self.path} is an SQLite database but not a w2sg results store (its tables: "
            f"{shown}); pass the .db of a sweep, or a new file name"
        )

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
        if self.read_only:
            raise W2SGError(f"results store {self.path} was opened read-only")
        try:
            with self._transaction():
                cur = self._conn.execute(sql, values)
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked() from None
            raise
        return cur.rowcount > 0

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # -- reading ----------------------------------------------------------------------------

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query; a lock held too long or a damaged file is a W2SGError."""
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                raise self._locked() from None
            raise W2SGError(f"cannot read results store {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise W2SGError(f"cannot read results store {self.path}: {exc}; damaged?") from None

    def statuses(self) -> dict[str, str]:
        """``config_hash`` → ``status`` for every row."""
        return {str(h): str(s) for h, s in self._fetch("SELECT config_hash, status FROM runs")}

    def count(self, status: str | None = None) -> int:
        if status is None:
            return int(self._fetch("SELECT COUNT(*) FROM runs")[0][0])
        return int(self._fetch("SELECT COUNT(*) FROM runs WHERE status = ?", (status,))[0][0])

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
        for raw in self._fetch(sql + " ORDER BY id", params):
            row = dict(zip(cols, raw, strict=True))
            for col in _JSON_COLUMNS:
                if row[col] is not None:
                    try:
                        row[col] = json.loads(row[col])
                    except (TypeError, ValueError):
                        raise W2SGError(
                            f"results store {self.path}: row {row['id']} "
                            f"({str(row['config_hash'])[:12]}) holds invalid JSON in column "
                            f"{col!r}; delete that row or re-run the sweep into a new store"
                        ) from None
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
    """One flat dict per run: scalar columns (``weak`` is the weak side's label, e.g.
    ``ensemble[metric](a+b+c)`` for an ensemble), ``flags`` (the run's flag codes, comma-separated;
    empty when none, absent for runs stored before flags existed), then ``config.*``,
    ``metrics.*``, ``theory.*``, ``bounds.*`` and ``versions.*`` with dotted names. Lists are kept
    as JSON text (``metrics.flags`` holds the codes with their reasons)."""
    out = []
    for row in rows:
        flat: dict[str, Any] = {
            k: row.get(k)
            for k in ("config_hash", "status", "task", "weak", "strong", "head", "seed",
                      "started", "finished", "seconds", "error")
        }  # fmt: skip
        flags = (row.get("metrics") or {}).get("flags")
        if isinstance(flags, list):
            flat["flags"] = ",".join(_flag_label(f) for f in flags)
        for col in ("config", "metrics", "theory", "bounds", "versions"):
            _flatten(row.get(col), col, flat)
        out.append(flat)
    return out


def _flag_label(flag: Any) -> str:
    if not isinstance(flag, dict):
        return str(flag)
    code = str(flag.get("code"))
    return f"{code}({flag['model']})" if flag.get("model") else code


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
    if out.is_dir():
        raise W2SGError(f"--out {out} is a folder; give a file name ending in {suffix}")
    with ResultStore(store_path, read_only=True) as store:
        rows = store.rows(status)
    frame = pd.DataFrame(flat_rows(rows))
    with atomic_path(out, suffix) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return len(frame)
