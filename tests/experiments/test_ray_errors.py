"""Ray failures (issue 12, item 4): a crashed worker is a failed row, an unreachable cluster one
line, and the workers' own output stays out of the terminal unless asked for (``verbose``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from sweep_fakes import fake_prepare, fake_run, make_specs

from w2sg.cli import main
from w2sg.experiments.executors import run_sweep
from w2sg.experiments.store import ResultStore

_TESTS = Path(__file__).resolve().parents[1]


@pytest.mark.ray
def test_crashed_ray_worker_is_a_failed_row_and_workers_stay_quiet(tmp_path, monkeypatch, capfd):
    pytest.importorskip("ray", reason="ray is not installed: pip install ray")
    paths = [str(_TESTS / "experiments"), str(_TESTS.parent / "src"), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    db = tmp_path / "runs.db"
    specs = [
        s.__class__(**{**s.__dict__, "params": {**s.params, "say": "w2sg-fake-worker-output"}})
        for s in make_specs(["ok", "crash"], [0])
    ]
    summary = run_sweep(
        specs, db, executor="ray", workers=2, progress=False, run_fn=fake_run,
        prepare_fn=fake_prepare,
    )  # fmt: skip
    assert (summary.executed, summary.failed) == (2, 1)
    with ResultStore(db, read_only=True) as store:
        rows = {r["weak"]: r for r in store.rows()}
    assert rows["ok"]["status"] == "done"
    assert rows["crash"]["status"] == "failed"
    assert rows["crash"]["error"].startswith("the Ray worker running this run died (")
    out, err = capfd.readouterr()
    assert "w2sg-fake-worker-output" not in out + err


def test_unreachable_cluster_is_one_line(tmp_path, capsys):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sweep = _TESTS.parent / "examples" / "sweep-synthetic.yaml"
    argv = ["sweep", str(sweep), "--store", str(tmp_path / "r.db"), "--executor", "ray"]
    assert main([*argv, "--ray-address", f"127.0.0.1:{port}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"w2sg: error: cannot reach a Ray cluster at 127.0.0.1:{port} (")
    assert err.count("\n") == 1
