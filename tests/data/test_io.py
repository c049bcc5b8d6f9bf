import numpy as np
import pandas as pd
import pytest

from w2sg.data.io import file_sha256, load_array
from w2sg.errors import W2SGError


def test_loads_npy_npz_parquet_csv(tmp_path):
    X = np.arange(6, dtype=float).reshape(3, 2)
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "b.npz", only=X)
    np.savez(tmp_path / "c.npz", x=X, y=X + 1)
    pd.DataFrame(X, columns=["u", "v"]).to_parquet(tmp_path / "d.parquet")
    pd.DataFrame(X, columns=["u", "v"]).to_csv(tmp_path / "e.csv", index=False)
    for spec in ["a.npy", "b.npz", "d.parquet", "e.csv"]:
        assert np.array_equal(load_array(str(tmp_path / spec), "--weak"), X)
    assert np.array_equal(load_array(str(tmp_path / "c.npz") + ":y", "--weak"), X + 1)
    with pytest.raises(W2SGError, match="holds 2 arrays"):
        load_array(str(tmp_path / "c.npz"), "--weak")


def test_refuses_missing_nan_object_and_unknown(tmp_path):
    with pytest.raises(W2SGError, match="--weak: file not found"):
        load_array(str(tmp_path / "nope.npy"), "--weak")
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan]))
    with pytest.raises(W2SGError, match="NaN or inf"):
        load_array(str(tmp_path / "nan.npy"), "--labels")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(W2SGError, match="cannot read"):
        load_array(str(tmp_path / "obj.npy"), "--labels")
    (tmp_path / "x.txt").write_text("1 2")
    with pytest.raises(W2SGError, match="unsupported file type"):
        load_array(str(tmp_path / "x.txt"), "--labels")


def test_file_sha256_matches_hashlib(tmp_path):
    import hashlib

    p = tmp_path / "f.bin"
    p.write_bytes(b"abc" * 1000)
    assert file_sha256(p) == hashlib.sha256(b"abc" * 1000).hexdigest()
