"""Executors: every run once, failures recorded without stopping the sweep, resume after kill -9.

The data preparation and the pipeline are replaced by the fast stand-ins of ``sweep_fakes`` (the
end-to-end tests with the real pipeline are in test_sweep_e2e.py).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sweep_fakes import WORKER_ENV_KEYS, fake_prepare, fake_run, make_specs

from helpers import local_ray
from w2sg.errors import W2SGError
from w2sg.experiments.executors import run_sweep
from w2sg.experiments.store import ResultStore

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def sweep_specs(log: Path) -> list:
    ok = make_specs(["a", "b", "bad"], [0, 1], log=str(log))
    broken = make_specs(["a"], [0], tasks=("broken",))
    return ok + broken


def check_first_sweep(db: Path, summary, log: Path) -> None:
    assert (summary.total, summary.executed, summary.skipped, summary.failed) == (7, 7, 0, 3)
    with ResultStore(db) as store:
        rows = store.rows()
    assert len(rows) == 7 and len({r["config_hash"] for r in rows}) == 7
    failed = {
        (r["task"], r["weak"], r["seed"]): r["error"] for r in rows if r["status"] == "failed"
    }
    assert set(failed) == {("t1", "bad", 0), ("t1", "bad", 1), ("broken", "a", 0)}
    assert "this weak model always fails" in failed[("t1", "bad", 0)]
    assert "preparing" in failed[("broken", "a", 0)]
    assert "cannot load this task" in failed[("broken", "a", 0)]
    done = [r for r in rows if r["status"] == "done"]
    assert all(r["metrics"]["w2s"]["accuracy"] > 0 and r["theory"]["op_norm"] for r in done)
    assert all(r["versions"]["w2sg"] and r["started"] <= r["finished"] for r in done)
    # each data unit (one per seed here) was prepared exactly once and shared by its runs
    prepared = Counter(p.name.split("-")[0] for p in log.iterdir())
    assert len(prepared) == 2 and set(prepared.values()) == {1}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray cluster for the module (run_sweep uses it and leaves it running)."""
    with local_ray(num_cpus=2):
        yield


@pytest.mark.parametrize(
    "executor",
    ["local", pytest.param("ray", marks=pytest.mark.ray)],
)
def test_sweep_runs_once_records_failures_and_resumes(
    executor: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    log = tmp_path / "log"
    log.mkdir()
    db = tmp_path / "runs.db"
    kwargs: dict[str, Any] = {
        "executor": executor,
        "workers": 2,
        "run_fn": fake_run,
        "prepare_fn": fake_prepare,
    }
    summary = run_sweep(sweep_specs(log), db, progress=False, **kwargs)
    check_first_sweep(db, summary, log)

    again = run_sweep(sweep_specs(log), db, progress=False, **kwargs)
    assert (again.executed, again.skipped, again.failed) == (0, 7, 0)

    retry = run_sweep(sweep_specs(log), db, progress=False, retry_failed=True, **kwargs)
    assert (retry.executed, retry.skipped, retry.failed) == (3, 4, 3)
    with ResultStore(db) as store:
        assert store.count() == 7 and store.count("failed") == 3


def test_local_workers_use_one_thread_and_no_hub_progress_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool already uses every core, and the sweep draws its own bar; the sweep process's
    environment is left as it was."""
    for key in WORKER_ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    db = tmp_path / "runs.db"
    specs = make_specs(["a", "b"], [0])
    run_sweep(specs, db, workers=2, progress=False, run_fn=fake_run, prepare_fn=fake_prepare)
    with ResultStore(db) as store:
        envs = [r["metrics"]["worker_env"] for r in store.rows("done")]
    assert envs == [{"OMP_NUM_THREADS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}] * 2
    assert not any(key in os.environ for key in WORKER_ENV_KEYS)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(W2SGError, match="unknown executor 'dask'"):
        run_sweep([], tmp_path / "r.db", executor="dask")
    with pytest.raises(W2SGError, match="--workers must be >= 1"):
        run_sweep([], tmp_path / "r.db", workers=0)


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill_9_mid_sweep_then_resume(tmp_path: Path) -> None:
    """SIGKILL the sweep process mid-sweep: finished runs stay, a re-run completes the rest, no
    run is lost or duplicated, and the orphaned pool workers exit by themselves."""
    db = tmp_path / "runs.db"
    n_weak, sleep = 12, 0.25  # 24 runs of 0.25 s on 2 workers: ~3 s
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC)])}
    code = f"import sweep_fakes; sweep_fakes.sweep_main({str(db)!r}, {n_weak}, {sleep})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 4:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the sweep recorded nothing in 120 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # The pool's workers notice that the sweep is gone and leave within a few seconds.
        deadline = time.monotonic() + 20
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group_alive(proc.pid), "sweep workers outlived the killed sweep"
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stderr:
            proc.stderr.close()

    recorded = _count(db)
    assert 4 <= recorded < 2 * n_weak
    leftover = db.with_name("runs.db.inputs")
    assert leftover.is_dir()  # the killed sweep could not remove its prepared inputs
    specs = make_specs([f"w{i}" for i in range(n_weak)], [0, 1], sleep=sleep)
    summary = run_sweep(
        specs, db, workers=2, run_fn=fake_run, prepare_fn=fake_prepare, progress=False
    )
    assert summary.total == 2 * n_weak
    assert summary.skipped == recorded
    assert summary.executed == 2 * n_weak - recorded
    assert summary.failed == 0
    with ResultStore(db) as store:
        rows = store.rows()
    hashes = [r["config_hash"] for r in rows]
    assert len(hashes) == len(set(hashes)) == 2 * n_weak
    assert {r["config_hash"] for r in rows} == {s.config_hash for s in specs}
    assert all(r["status"] == "done" for r in rows)
    assert not leftover.exists()  # the next sweep removed them, and its own

    final = run_sweep(
        specs, db, workers=2, run_fn=fake_run, prepare_fn=fake_prepare, progress=False
    )
    assert (final.executed, final.skipped) == (0, 2 * n_weak)


ENSEMBLE_SWEEP = {
    "name": "ens",
    "tasks": [{"name": "s", "dataset": "synthetic",
               "params": {"n": 200, "n_weak": 3, "task": "classification", "noise_dim": 30}}],
    "weak": ["weak_1", {"ensemble": ["weak_1", "weak_2", "weak_3"], "combine": "metric"}],
    "strong": ["strong"],
    "heads": ["ridge"],
    "seeds": [0],
    "run": {"n_bootstrap": 10},
}  # fmt: skip


@pytest.mark.ray
def test_ensemble_members_reach_the_run_on_both_executors(
    tmp_path: Path, ray_cluster: None
) -> None:
    """An ensemble's members travel to the worker as extra inputs (files on the local pool,
    keyword object references on Ray) and the run combines them; same numbers on both."""
    from w2sg.experiments.sweep import parse_sweep

    stored = {}
    for executor in ("local", "ray"):
        db = tmp_path / f"{executor}.db"
        summary = run_sweep(parse_sweep(ENSEMBLE_SWEEP), db, executor=executor, workers=2,
                            progress=False)  # fmt: skip
        assert (summary.executed, summary.failed) == (2, 0)
        with ResultStore(db) as store:
            stored[executor] = {r["weak"]: r for r in store.rows()}
    ens = stored["ray"]["ensemble[metric](weak_1+weak_2+weak_3)"]
    record = ens["metrics"]["ensemble"]
    assert record["members"] == ["weak_1", "weak_2", "weak_3"] and len(record["weights"]) == 3
    assert len(set(record["member_op_norm"])) == 3  # three representations, three op norms
    for weak, row in stored["local"].items():
        assert stored["ray"][weak]["metrics"]["w2s"] == row["metrics"]["w2s"]
        assert stored["ray"][weak]["theory"] == row["theory"]
    assert stored["local"][ens["weak"]]["metrics"]["ensemble"] == record
