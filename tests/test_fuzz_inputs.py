"""Fuzzing the readers of user input (issue 12, item 6): any bytes or structure given as an
array file, labels, a text file, a data file, a sweep config or a family file gives either a
result or a W2SGError (one line for the CLI), never another exception."""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from w2sg.errors import W2SGError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


_DIR = Path(tempfile.mkdtemp(prefix="w2sg-fuzz-"))
atexit.register(shutil.rmtree, _DIR, True)
_COUNT = itertools.count()


def _file(data: bytes, suffix: str) -> Path:
    path = _DIR / f"input-{next(_COUNT)}{suffix}"
    path.write_bytes(data)
    return path


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` cut, with bytes flipped, or with bytes appended."""
    how = draw(st.sampled_from(["cut", "flip", "append", "keep"]))
    if how == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip" and data:
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if how == "append":
        return data + draw(st.binary(max_size=64))
    return data


arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_, np.uint16]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
)


@st.composite
def array_files(draw: st.DrawFn) -> tuple[bytes, str]:
    kind = draw(st.sampled_from([".npy", ".npz", ".csv", ".parquet", "raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=300)), draw(st.sampled_from([".npy", ".npz", ".csv"]))
    arr = draw(arrays)
    if kind == ".npy":
        data = _npy_bytes(arr)
    elif kind == ".npz":
        buf = io.BytesIO()
        np.savez(buf, a=arr, **({"b": arr} if draw(st.booleans()) else {}))
        data = buf.getvalue()
    elif kind == ".csv":
        data = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    else:
        import pandas as pd

        buf = io.BytesIO()
        pd.DataFrame({"a": arr.astype(float).reshape(-1)}).to_parquet(buf)
        data = buf.getvalue()
    return _mutations(draw, data), kind


@FUZZ
@given(array_files())
def test_load_array_gives_an_array_or_a_w2sg_error(case):
    from w2sg.data.io import load_array

    data, suffix = case
    try:
        arr = load_array(str(_file(data, suffix)), "--weak")
    except W2SGError as exc:
        assert "\n" not in str(exc)
        return
    assert arr.dtype.kind in "biuf"


@FUZZ
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float64, np.int64, np.bool_, np.int8]),
        shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=12),
        elements={"allow_nan": False, "allow_infinity": False},
    ),
    st.sampled_from(["classification", "regression", "probability"]),
)
def test_labels_give_labels_or_a_w2sg_error(labels, task):
    from w2sg.pipeline import prepare_labels

    with contextlib.suppress(W2SGError):
        prepare_labels(labels, task)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".txt", ".smi"]))
def test_text_files_give_lines_or_a_w2sg_error(data, suffix):
    from w2sg.data.datasets import read_lines
    from w2sg.data.files import check_text_lines

    path = _file(data, suffix)
    try:
        lines = read_lines(path)
        check_text_lines(path)
    except W2SGError:
        return
    assert all(isinstance(line, str) and line for line in lines)


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".csv.gz"]))
def test_data_files_give_a_dataset_or_a_w2sg_error(data, suffix):
    from w2sg.data.files import Columns, load_file

    with contextlib.suppress(W2SGError):
        load_file(_file(data, suffix), Columns(text=("text",), label="label"))


_KEYS = [
    "name", "tasks", "weak", "strong", "heads", "seeds", "run", "dataset", "params", "limit",
    "seed", "task", "model", "layer", "pooling", "head", "loss", "kernel", "rule", "n",
    "max_words", "models", "hidden", "layers", "steps", "data", "limit_smiles", "batch_size",
]  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5000), st.floats(allow_nan=True),
    st.sampled_from(["synthetic", "ridge", "softmax/xent", "static-64", "weak_1", "strong",
                     "rotten_tomatoes", "x@3", "hf:", "", "@"]),
    st.text(max_size=8),
)  # fmt: skip
structures = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=5)), inner, max_size=5),
    ),
    max_leaves=20,
)


@FUZZ
@given(structures)
def test_sweep_structures_give_a_sweep_or_a_w2sg_error(data):
    from w2sg.experiments.sweep import parse_sweep

    with contextlib.suppress(W2SGError):
        parse_sweep(data)


@FUZZ
@given(structures)
def test_family_structures_give_a_family_or_a_w2sg_error(data):
    pytest.importorskip("transformers")
    from w2sg.represent.smiles_lm import parse_family

    with contextlib.suppress(W2SGError):
        parse_family(data)


@FUZZ
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_config_files_give_a_config_or_a_w2sg_error(data):
    from w2sg.experiments.sweep import load_sweep
    from w2sg.represent.smiles_lm import load_family

    for loader, suffix in ((load_sweep, ".yaml"), (load_family, ".yaml"), (load_family, ".json")):
        with contextlib.suppress(W2SGError):
            loader(_file(data, suffix))
