"""Content-addressed embedding cache: memory-mapped ``.npy`` arrays plus JSON metadata.

The key of an entry is the SHA-256 of the model identity (name, backend, hashes of the weight files,
library versions for featurizers), the layer, the pooling and the hash of the inputs, so changed
weights or inputs can never hit a stale entry and nothing needs renaming by hand. Writes go to a
temporary file in the same folder and are published with :func:`os.replace`, array first, metadata
last: an entry exists once its ``.json`` exists, and two processes writing the same key both publish
a complete, identical file. Nothing is pickled.

Location: ``$W2SG_CACHE_DIR``, else ``$XDG_CACHE_HOME/w2sg``, else ``~/.cache/w2sg``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from w2sg import atomic

_HASHES_FILE = "weight-hashes.json"


def cache_dir() -> Path:
    """The root cache folder (not created here)."""
    env = os.environ.get("W2SG_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "w2sg"


def atomic_write_json(path: Path, obj: Any) -> None:
    """Metadata as sorted, indented JSON, written atomically (:mod:`w2sg.atomic`)."""
    atomic.write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def hash_inputs(inputs: Sequence[str]) -> str:
    """SHA-256 of the inputs in order (length-prefixed, so boundaries cannot shift)."""
    digest = hashlib.sha256()
    for text in inputs:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def file_sha256(path: Path, *, root: Path | None = None) -> str:
    """SHA-256 of a file's bytes, remembered by (path, size, mtime) so reruns do not re-read it."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    store = (root or cache_dir()) / _HASHES_FILE
    known = _read_json(store)
    if isinstance(known.get(key), str):
        return str(known[key])
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    value = digest.hexdigest()
    # Re-read just before writing so concurrent processes lose as little as possible; a lost
    # entry only costs one more hash later.
    known = _read_json(store)
    known[key] = value
    with contextlib.suppress(OSError):
        atomic_write_json(store, known)
    return value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cache_key(model_identity: str, layer: int | str, pooling: str | None, inputs_hash: str) -> str:
    """SHA-256 of (model identity, layer, pooling, inputs hash): the name of a cache entry."""
    text = json.dumps(
        {"model": model_identity, "layer": layer, "pooling": pooling, "inputs": inputs_hash},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """One cached array, as listed by ``w2sg cache ls``."""

    key: str
    path: Path
    shape: tuple[int, ...]
    nbytes: int
    meta: dict[str, Any]


class EmbeddingCache:
    """Arrays stored under ``<root>/embeddings/<key[:2]>/<key>.npy`` with ``<key>.json`` beside."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir()

    @property
    def folder(self) -> Path:
        return self.root / "embeddings"

    def _paths(self, key: str) -> tuple[Path, Path]:
        sub = self.folder / key[:2]
        return sub / f"{key}.npy", sub / f"{key}.json"

    def get(self, key: str) -> np.ndarray | None:
        """The cached array, memory-mapped read-only, or ``None`` on a miss."""
        npy, meta = self._paths(key)
        if not meta.exists():
            return None
        try:
            return np.load(npy, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None

    def put(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        """Store ``array`` with ``meta`` (array first, metadata last); return it memory-mapped."""
        npy, meta_path = self._paths(key)
        atomic.save_npy(npy, array)
        record = dict(meta)
        record.update(key=key, shape=list(array.shape), dtype=str(array.dtype), created=time.time())
        atomic_write_json(meta_path, record)
        loaded = self.get(key)
        assert loaded is not None
        return loaded

    def delete(self, key: str) -> None:
        """Remove one entry (metadata first, so a reader never sees a half-removed entry)."""
        npy, meta_path = self._paths(key)
        meta_path.unlink(missing_ok=True)
        npy.unlink(missing_ok=True)

    def entries(self) -> list[CacheEntry]:
        """Every complete entry, oldest first."""
        found: list[CacheEntry] = []
        if not self.folder.exists():
            return found
        for meta_path in sorted(self.folder.glob("*/*.json")):
            npy = meta_path.with_suffix(".npy")
            meta = _read_json(meta_path)
            if not npy.exists() or not meta:
                continue
            found.append(
                CacheEntry(
                    key=meta_path.stem,
                    path=npy,
                    shape=tuple(int(s) for s in meta.get("shape", [])),
                    nbytes=npy.stat().st_size,
                    meta=meta,
                )
            )
        found.sort(key=lambda e: float(e.meta.get("created", 0.0)))
        return found

    def clear(self) -> tuple[int, int]:
        """Delete every embedding entry; return (entries removed, bytes freed)."""
        entries = self.entries()
        freed = sum(e.nbytes for e in entries)
        if self.folder.exists():
            shutil.rmtree(self.folder)
        return len(entries), freed
