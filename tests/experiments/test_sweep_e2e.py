"""End to end with the real pipeline: ``w2sg sweep`` → ``study`` → ``export`` → ``report``.

A tiny synthetic sweep (3 weak representations, 2 heads). The ``convex_kl`` head is binary and
the task has 3 classes, so those runs fail inside the pipeline: the failures are recorded and the
other runs finish.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from w2sg.cli import main
from w2sg.experiments.store import ResultStore
from w2sg.experiments.sweep import load_sweep

CONFIG = """
name: tiny
tasks:
  - name: tri
    dataset: synthetic
    params: {n: 300, task: classification, n_classes: 3, n_weak: 3, noise_dim: 200,
             label_noise: 0.05}
weak: [weak_1, weak_2, weak_3]
strong: [strong]
heads: [ridge, {head: convex_kl}]
seeds: [0]
run:
  strong_ridge: 0.0
  n_bootstrap: 50
  kernel: {rule: noise_floor}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("e2e")
    cfg = folder / "tiny.yaml"
    cfg.write_text(CONFIG)
    db = folder / "runs.db"
    # the sweep runs here, once per module, so every test below finds the store whatever the
    # order or the worker the tests are given
    args = ["sweep", str(cfg), "--store", str(db), "--json", "--workers", "2", "--no-progress"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(args)
    return cfg, db, {"args": args, "code": code, "out": printed.getvalue()}


def test_sweep_cli_json_and_failed_entries(
    swept: tuple[Path, Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, db, first = swept
    args = first["args"]
    assert first["code"] == 0
    out = json.loads(first["out"])
    assert set(out) == {"total", "executed", "skipped", "failed", "seconds"}
    assert (out["total"], out["executed"], out["skipped"], out["failed"]) == (6, 6, 0, 3)
    with ResultStore(db) as store:
        rows = store.rows()
    failed = [r for r in rows if r["status"] == "failed"]
    assert {r["head"] for r in failed} == {"convex_kl"}
    assert all("convex_kl is binary" in r["error"] for r in failed)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 3
    specs = {s.config_hash: s for s in load_sweep(cfg).expand()}
    for r in done:
        assert r["config"] == json.loads(json.dumps(specs[r["config_hash"]].to_dict()))
        assert r["metrics"]["w2s"]["accuracy"] > 0.4
        assert r["theory"]["op_norm"] > 0 and r["theory"]["predicted_gap"] >= 0
        assert r["bounds"] is not None

    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["executed"], again["skipped"]) == (0, 6)


def test_study_cli_matches_scipy(
    swept: tuple[Path, Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = swept
    assert main(["study", str(db), "--json", "--bootstrap", "200"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in table} == {"op_norm", "fro_sq_over_n", "predicted_gap"}
    with ResultStore(db) as store:
        done = store.rows("done")
    done.sort(key=lambda r: r["weak"])
    err = np.array([1 - r["metrics"]["w2s"]["accuracy"] for r in done])
    for row in table:
        assert row["n_weak"] == 3
        x = np.array([r["theory"][row["metric"]] for r in done])
        expected = stats.kendalltau(x, err).statistic
        if np.isfinite(expected):
            assert row["kendall"]["value"] == pytest.approx(expected)
    assert main(["study", str(db)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split()[:4] == ["task", "strong", "head", "metric"]
    assert main(["study", str(db), "--by-weak", "--json"]) == 0
    by_weak = json.loads(capsys.readouterr().out)
    assert sorted(r["weak"] for r in by_weak) == sorted({r["weak"] for r in done})
    for row in by_weak:
        runs = [r for r in done if r["weak"] == row["weak"]]
        assert row["op_norm"] == pytest.approx(np.mean([r["theory"]["op_norm"] for r in runs]))
        w2s = np.mean([r["metrics"]["w2s"]["accuracy"] for r in runs])
        assert row["w2s_score"] == pytest.approx(w2s)
    assert main(["study", str(db), "--by-weak"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:4] == ["task", "strong", "head", "weak"]


def test_export_cli(swept: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, db, _ = swept
    out = tmp_path / "runs.csv"
    assert main(["export", str(db), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 6
    assert {"config_hash", "status", "metrics.w2s.accuracy", "theory.op_norm"} <= set(frame)
    assert main(["export", str(db), "--out", str(tmp_path / "x.json")]) == 2


def test_report_cli_from_store(swept: tuple[Path, Path, dict], tmp_path: Path) -> None:
    _, db, _ = swept
    out = tmp_path / "report"
    assert main(["report", str(db), "--out", str(out), "--bootstrap", "50"]) == 0
    page = (out / "index.html").read_text()
    assert "Representation metrics vs weak-to-strong error" in page
    assert "convex_kl is binary" in page  # the failed runs are listed
    assert list(out.glob("scatter-*.png")) and (out / "gap.png").exists()


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("tasks: [{dataset: synthetic}]\nweak: [weak_1]\nstrong: [strong]\nheds: []\n")
    assert main(["sweep", str(cfg), "--store", str(tmp_path / "r.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("w2sg: error: ") and "unknown key 'heds'" in err
    assert len(err.splitlines()) == 1
    assert main(["study", str(tmp_path / "missing.db")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_dry_run_lists_runs(
    swept: tuple[Path, Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _, _ = swept
    db = tmp_path / "never.db"
    assert main(["sweep", str(cfg), "--store", str(db), "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == 6 and len(out["runs"]) == 6
    assert {r["config_hash"] for r in out["runs"]} == {
        s.config_hash for s in load_sweep(cfg).expand()
    }
    assert not db.exists()
