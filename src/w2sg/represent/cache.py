"""Content-addressed embedding cache: memory-mapped ``.npy`` arrays plus JSON metadata.

The key of an entry is the SHA-256 of the model identity (name, backend, hashes of the weight files,
library versions for featurizers), the layer, the pooling and the hash of the inputs, so changed
weights or inputs can never hit a stale entry and nothing needs renaming by hand. Writes go to a
temporary file in the same folder and are published with :func:`os.replace`, array first, metadata
last: an entry exists once its ``.json`` exists, and two processes writing the same key both publish
a complete, identical file. Nothing is pickled.

The metadata records the array's shape, dtype and the SHA-256 of its bytes, and every read checks
them: an entry whose array is missing, empty, truncated, of another shape or with other bytes (a
damaged disk, a file replaced by hand) is removed with a note on stderr and recomputed by the
caller, never served. Entries written before checksums were recorded are checked by shape and get
their checksum on first read.

Location: ``$W2SG_CACHE_DIR``, else ``$XDG_CACHE_HOME/w2sg``, else ``~/.cache/w2sg``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
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


def array_sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes in C order (what a cache entry's metadata records)."""
    digest = hashlib.sha256()
    flat = np.ascontiguousarray(array).reshape(-1)
    step = max(1, (16 << 20) // max(flat.itemsize, 1))
    for start in range(0, flat.size, step):
        digest.update(flat[start : start + step].tobytes())
    return digest.hexdigest()


def _check_entry(array: np.ndarray, meta: dict[str, Any]) -> str | None:
    """Why ``array`` is not the entry ``meta`` describes, or ``None``."""
    if not meta:
        return "its metadata cannot be read"
    shape = meta.get("shape")
    if not isinstance(shape, list) or tuple(array.shape) != tuple(shape):
        return f"shape {tuple(array.shape)} instead of {tuple(shape or ())}"
    if meta.get("dtype") is not None and str(array.dtype) != meta["dtype"]:
        return f"dtype {array.dtype} instead of {meta['dtype']}"
    if "sha256" in meta and array_sha256(array) != meta["sha256"]:
        return "its bytes differ from the checksum recorded when it was written"
    return None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else type(exc).__name__


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
        """The cached array, memory-mapped read-only, or ``None`` on a miss.

        The array is checked against the shape, dtype and checksum its metadata records; an entry
        that fails is removed (with a note on stderr) and reported as a miss, so the caller
        recomputes it.
        """
        npy, meta_path = self._paths(key)
        if not meta_path.exists():
            return None
        meta = _read_json(meta_path)
        problem: str | None
        try:
            array = np.load(npy, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            array, problem = None, "its array file is missing"
        except (OSError, ValueError, EOFError) as exc:
            array, problem = None, f"its array cannot be read ({_first_line(exc)})"
        else:
            problem = _check_entry(array, meta)
        if problem is None:
            if "sha256" not in meta and meta:  # an entry from before checksums: record it now
                meta["sha256"] = array_sha256(array)
                with contextlib.suppress(OSError):
                    atomic_write_json(meta_path, meta)
            return array
        model = meta.get("model", "?")
        print(
            f"w2sg: note: cache entry {key[:12]} ({model}) is damaged: {problem}; recomputing it",
            file=sys.stderr,
        )
        with contextlib.suppress(OSError):
            self.delete(key)
        return None

    def put(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
        """Store ``array`` with ``meta`` (array first, metadata last, with its shape, dtype and
        SHA-256); return it memory-mapped."""
        npy, meta_path = self._paths(key)
        array = np.ascontiguousarray(array)
        atomic.save_npy(npy, array)
        record = dict(meta)
        record.update(
            key=key, shape=list(array.shape), dtype=str(array.dtype), sha256=array_sha256(array),
            created=time.time(),
        )  # fmt: skip
        atomic_write_json(meta_path, record)
        loaded = self.get(key)
        if loaded is None:
            raise OSError(f"the cache entry {npy} did not read back as written")
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
