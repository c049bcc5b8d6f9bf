"""The content-addressed embedding cache: keys, atomic writes, concurrent writers, no pickle."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import needs
from w2sg.represent.cache import EmbeddingCache, cache_dir, cache_key, file_sha256, hash_inputs


def test_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("W2SG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "w2sg"


def test_keys_change_with_every_part() -> None:
    base = cache_key("m|w=abc", -1, None, hash_inputs(["a", "b"]))
    assert base == cache_key("m|w=abc", -1, None, hash_inputs(["a", "b"]))
    others = {
        cache_key("m|w=abd", -1, None, hash_inputs(["a", "b"])),
        cache_key("m|w=abc", 3, None, hash_inputs(["a", "b"])),
        cache_key("m|w=abc", -1, "mean", hash_inputs(["a", "b"])),
        cache_key("m|w=abc", -1, None, hash_inputs(["b", "a"])),
        cache_key("m|w=abc", -1, None, hash_inputs(["ab"])),
    }
    assert base not in others and len(others) == 5


def test_put_get_roundtrip_is_memory_mapped_and_listed(tmp_path: Path) -> None:
    store = EmbeddingCache(tmp_path)
    X = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    assert store.get("ab" * 32) is None
    got = store.put("ab" * 32, X, {"model": "m"})
    assert isinstance(got, np.memmap) and not got.flags.writeable
    np.testing.assert_array_equal(store.get("ab" * 32), X)
    (entry,) = store.entries()
    assert entry.shape == (7, 3) and entry.meta["model"] == "m"
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind
    assert store.clear() == (1, entry.nbytes)
    assert store.get("ab" * 32) is None


def test_entry_without_metadata_is_a_miss(tmp_path: Path) -> None:
    store = EmbeddingCache(tmp_path)
    store.put("cd" * 32, np.ones((2, 2), np.float32), {})
    (tmp_path / "embeddings" / "cd" / ("cd" * 32 + ".json")).unlink()
    assert store.get("cd" * 32) is None


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    store = EmbeddingCache(tmp_path)
    store.put("ef" * 32, np.ones((1, 1), np.float32), {})
    npy = tmp_path / "embeddings" / "ef" / ("ef" * 32 + ".npy")
    np.save(npy, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert store.get("ef" * 32) is None


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from w2sg.represent.cache import EmbeddingCache

    store = EmbeddingCache(sys.argv[1])
    X = np.arange(400_000, dtype=np.float32).reshape(1000, 400)
    for _ in range(int(sys.argv[2])):
        store.put("5a" * 32, X, {"writer": sys.argv[3]})
        got = store.get("5a" * 32)
        assert got is not None and got.shape == X.shape and float(got[-1, -1]) == 399_999.0
    """
)


def test_two_concurrent_writers_leave_one_complete_entry(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), "15", str(i)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    store = EmbeddingCache(tmp_path)
    (entry,) = store.entries()
    got = store.get(entry.key)
    assert got is not None
    np.testing.assert_array_equal(got, np.arange(400_000, dtype=np.float32).reshape(1000, 400))
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []


def test_weight_hash_is_remembered_by_path_size_and_mtime(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"abc")
    first = file_sha256(weights, root=tmp_path)
    stat = weights.stat()
    weights.write_bytes(b"xyz")  # same size; restore the mtime: the remembered hash is reused
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_sha256(weights, root=tmp_path) == first
    weights.write_bytes(b"abcd")
    assert file_sha256(weights, root=tmp_path) != first


@needs("tokenlearn-static-model")
def test_a_killed_long_extraction_resumes_from_its_finished_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces are cached as they complete; after a crash in the third piece, the re-run encodes
    only the pieces that are missing, and the result equals one uninterrupted pass."""
    from w2sg.represent import extract

    monkeypatch.setattr(extract, "PIECE_INPUTS", 10)
    texts = [f"review {i}: the film was {'good' if i % 3 else 'long'}" for i in range(35)]
    store = EmbeddingCache(tmp_path)
    real_load = extract._load
    calls: list[int] = []

    def counting_load(resolved, device):  # type: ignore[no-untyped-def]
        encoder = real_load(resolved, device)

        class Counting:
            def encode(self, inputs, **kwargs):  # type: ignore[no-untyped-def]
                calls.append(len(inputs))
                if fail_at is not None and len(calls) == fail_at:
                    raise RuntimeError("killed")
                return encoder.encode(inputs, **kwargs)

        return Counting()

    monkeypatch.setattr(extract, "_load", counting_load)
    fail_at: int | None = 3
    with pytest.raises(RuntimeError, match="killed"):
        extract.embed("static-64", texts, cache=store, progress=False)
    assert calls == [10, 10, 10] and len(store.entries()) == 2  # two pieces kept
    calls.clear()
    fail_at = None
    X = extract.embed("static-64", texts, cache=store, progress=False)
    assert calls == [10, 5]  # only the missing pieces
    reference = extract.embed("static-64", texts, cache=False, progress=False)
    np.testing.assert_allclose(X, reference, rtol=0, atol=1e-6)
    (entry,) = store.entries()  # the pieces are gone, the whole is cached
    assert entry.shape == (35, 64) and entry.meta["n_inputs"] == 35
    calls.clear()
    np.testing.assert_array_equal(extract.embed("static-64", texts, cache=store), X)
    assert calls == []


@needs("rdkit")
def test_featurizers_are_never_split_into_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RDKit 2D descriptors repair non-finite values with medians over the whole array, so a
    piece-wise extraction would change them: featurizers run in one piece."""
    from w2sg.represent import extract

    monkeypatch.setattr(extract, "PIECE_INPUTS", 4)
    smiles = ["CCO", "[Na+].[Cl-]", "[Se]", "c1ccccc1O", "CC(=O)O", "CCN", "O=C=O", "[He]"]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        whole = extract.embed("rdkit2d", smiles, cache=False, progress=False)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        cached = extract.embed("rdkit2d", smiles, cache=EmbeddingCache(tmp_path), progress=False)
    np.testing.assert_array_equal(cached, whole)
