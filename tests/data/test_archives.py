"""A damaged or truncated archive (the bigbench sdist, a model's split zip) is one W2SGError
line, not a tarfile/zipfile traceback (issue 12, item 3)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from w2sg.cli import main
from w2sg.errors import W2SGError


def _bigbench_tar(path: Path) -> None:
    data = json.dumps({"examples": [{"input": "q", "target_scores": {"Yes": 1, "No": 0}}]})
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("bigbench-1.0.0/bigbench/benchmark_tasks/strategyqa/task.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data.encode()))


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_bigbench_archive_is_one_line(tmp_path, monkeypatch, capsys, damage):
    from w2sg.data.datasets import load_dataset

    archive = tmp_path / "bigbench-1.0.0.tar.gz"
    _bigbench_tar(archive)
    good = archive.read_bytes()
    archive.write_bytes(b"not a tar at all" * 10 if damage == "garbage" else good[: len(good) // 2])
    monkeypatch.setenv("W2SG_BIGBENCH_ARCHIVE", str(archive))
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(W2SGError, match="bigbench archive .* is damaged or truncated"):
        load_dataset("strategyqa")
    assert main(["embed", "--model", "static-64", "--dataset", "strategyqa", "--out",
                 str(tmp_path / "e.npy")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.startswith("w2sg: error: the bigbench archive") and "\n" not in err


def test_intact_bigbench_archive_still_reads(tmp_path, monkeypatch):
    from w2sg.data.datasets import load_dataset

    archive = tmp_path / "bigbench-1.0.0.tar.gz"
    _bigbench_tar(archive)
    monkeypatch.setenv("W2SG_BIGBENCH_ARCHIVE", str(archive))
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    assert list(load_dataset("strategyqa").labels) == [1]  # classes sorted: No, Yes


def test_damaged_model_zip_is_one_line(tmp_path, monkeypatch):
    from dataclasses import replace

    from w2sg.represent import models

    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    spec = next(s for s in models.REGISTRY.values() if s.assemble == "zip-parts")
    part = tmp_path / "part.zip.001"
    part.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(W2SGError, match="is damaged or truncated"):
        models._assemble_zip_parts(replace(spec), [part])
    assert not any((tmp_path / "cache").rglob("joined.zip"))
