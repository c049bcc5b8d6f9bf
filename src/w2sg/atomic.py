"""Atomic file writes: write a temporary file in the target folder, then ``os.replace`` it.

A reader never sees a half-written result, cache entry, report or plot, and a killed process leaves
either the old file or the new one. Published files get the usual mode (0666 less the umask), not
the 0600 of a temporary file. Nothing here pickles.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


@contextlib.contextmanager
def atomic_path(final: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``final``; on success it replaces ``final`` atomically.

    ``suffix`` matters to writers that infer the format from the name (matplotlib, pandas).
    On an exception the temporary file is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates 0600 files; the published file gets the mode of a plain open():
        # 0666 less the umask, so reports, results and a shared cache stay readable.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def make_shareable(folder: str | Path) -> None:
    """Give a folder made by ``tempfile.mkdtemp`` (mode 0700) the mode of a plain ``mkdir``
    (0777 less the umask) before it is published with ``os.replace``."""
    os.chmod(folder, 0o777 & ~_umask())


def _umask() -> int:
    """The process umask: from /proc on Linux (no side effect); elsewhere by setting it and
    putting it back (not atomic, so another thread's file could get 022 in that instant)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` atomically and fsync it before the rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save`` atomically, refusing object arrays (never pickles)."""
    with atomic_path(path, ".npy") as tmp, tmp.open("wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed ``.npz`` of plain arrays, atomically."""
    for key, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {key!r} has dtype object; it would need pickle")
    with atomic_path(path, ".npz") as tmp, tmp.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) while the block runs.

    Processes that build the same cached artefact (two sweep workers converting one model) take
    turns: the second waits, then finds the artefact published. ``flock`` is released by the
    kernel when the holder exits, so a killed process never leaves a stale lock. Where ``fcntl``
    does not exist (Windows) the block runs unlocked and the atomic publish still keeps the
    result correct.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
