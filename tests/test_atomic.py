"""Atomic writes and the cross-process file lock."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest

from w2sg import atomic


def test_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "trunc')
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left


def test_npy_and_npz_round_trip_without_pickle(tmp_path: Path) -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    atomic.save_npy(tmp_path / "x.npy", x)
    atomic.save_npz(tmp_path / "x.npz", {"a": x, "b": x[0]})
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy", allow_pickle=False), x)
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["b"], x[0])


def _hold(lock: str, log: str, name: str, hold_s: float) -> None:
    with atomic.file_lock(lock):
        with open(log, "a") as f:
            f.write(f"{name} in {time.monotonic():.6f}\n")
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(f"{name} out {time.monotonic():.6f}\n")


def test_file_lock_excludes_other_processes(tmp_path: Path) -> None:
    """Two processes that both hold the lock for a while never overlap."""
    lock, log = str(tmp_path / "m.lock"), str(tmp_path / "log")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hold, args=(lock, log, n, 0.4)) for n in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = [line.split() for line in Path(log).read_text().splitlines()]
    assert [e[1] for e in events] == ["in", "out", "in", "out"]
    assert events[0][0] == events[1][0] and events[2][0] == events[3][0]
    assert float(events[2][2]) >= float(events[1][2])


def test_file_lock_is_released_after_an_error(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "x.lock"
    with pytest.raises(ValueError), atomic.file_lock(lock):
        raise ValueError("boom")
    with atomic.file_lock(lock):  # would block forever if the lock were still held
        pass
    assert lock.exists()


def test_umask_is_read_without_changing_it() -> None:
    import os

    saved = os.umask(0o027)
    try:
        assert atomic._umask() == 0o027
        assert os.umask(0o027) == 0o027  # still in place
    finally:
        os.umask(saved)


def test_published_files_get_the_mode_of_a_plain_open(tmp_path: Path) -> None:
    """Not the 0600 of the temporary file: results and reports stay readable by others."""
    import os
    import stat

    saved = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "index.html", "<html></html>")
        atomic.save_npy(tmp_path / "x.npy", np.zeros(3))
        with (tmp_path / "plain.txt").open("w") as handle:
            handle.write("x")
    finally:
        os.umask(saved)
    plain = stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert plain == 0o644
    for name in ("index.html", "x.npy"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == plain
    import tempfile

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    saved = os.umask(0o022)
    try:
        atomic.make_shareable(folder)
    finally:
        os.umask(saved)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
