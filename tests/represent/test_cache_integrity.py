"""The embedding cache never serves bad data (issue 12, item 4): every read checks the recorded
shape, dtype and SHA-256; a zero-byte, truncated, reshaped or replaced entry is a miss (with a
note) and is recomputed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import installed
from w2sg.represent.cache import EmbeddingCache


@pytest.fixture()
def cache(tmp_path: Path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path)


def entry(cache: EmbeddingCache, key: str = "ab" * 32) -> tuple[str, np.ndarray, Path, Path]:
    arr = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    cache.put(key, arr, {"model": "m"})
    npy, meta = cache._paths(key)
    return key, arr, npy, meta


def test_put_records_shape_dtype_and_the_sha256_of_the_bytes(cache):
    key, arr, _, meta = entry(cache)
    record = json.loads(meta.read_text())
    assert record["shape"] == [50, 8] and record["dtype"] == "float32"
    assert record["sha256"] == hashlib.sha256(arr.tobytes()).hexdigest()
    assert np.array_equal(cache.get(key), arr)


@pytest.mark.parametrize("damage", ["zero-byte", "truncated", "reshaped", "replaced", "missing"])
def test_a_damaged_entry_is_a_miss_with_a_note_and_is_removed(cache, capsys, damage):
    key, arr, npy, meta = entry(cache)
    if damage == "zero-byte":
        npy.write_bytes(b"")
    elif damage == "truncated":
        npy.write_bytes(npy.read_bytes()[:-40])
    elif damage == "reshaped":
        np.save(npy, arr.reshape(100, 4))
    elif damage == "replaced":  # same shape and dtype, other numbers
        np.save(npy, arr + 1)
    else:
        npy.unlink()
    assert cache.get(key) is None
    err = capsys.readouterr().err
    assert err.startswith(f"w2sg: note: cache entry {key[:12]} (m) is damaged:")
    assert "recomputing" in err
    assert not meta.exists() and not npy.exists()


def test_an_entry_from_before_checksums_is_served_and_gets_one(cache, capsys):
    key, arr, _, meta = entry(cache)
    record = json.loads(meta.read_text())
    del record["sha256"]
    meta.write_text(json.dumps(record))
    assert np.array_equal(cache.get(key), arr)
    assert json.loads(meta.read_text())["sha256"] == hashlib.sha256(arr.tobytes()).hexdigest()
    assert capsys.readouterr().err == ""


def test_embed_recomputes_a_replaced_entry(tmp_path, monkeypatch, capsys):
    if not installed("tokenlearn-static-model"):
        pytest.skip("static-64 needs tokenlearn-static-model (scripts/install_assets.sh base)")
    from w2sg.represent.extract import embed

    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path))
    texts = ["a good film", "a bad film", "nothing at all"]
    first = np.array(embed("static-64", texts, progress=False))
    (entry_npy,) = (tmp_path / "embeddings").glob("*/*.npy")
    np.save(entry_npy, np.zeros_like(first))
    again = np.array(embed("static-64", texts, progress=False))
    assert np.array_equal(again, first)
    assert "is damaged: its bytes differ" in capsys.readouterr().err
    third = np.array(embed("static-64", texts, progress=False))  # the rewritten entry is served
    assert np.array_equal(third, first) and capsys.readouterr().err == ""
