"""``w2sg report`` prints what the page covers, its figures, then the page's path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from w2sg.cli import main
from w2sg.experiments.store import ResultStore

SWEEP = """\
name: tiny
tasks:
  - {name: reg, dataset: synthetic, params: {n: 200, task: regression, n_weak: 2, noise_dim: 20}}
  - {name: cls, dataset: synthetic, params: {n: 200, task: classification, n_weak: 2,
     noise_dim: 20}}
weak: [weak_1, weak_2]
strong: [strong]
heads: [ridge]
seeds: [0]
run: {n_bootstrap: 20}
"""


def _printed(capsys, *argv: str) -> list[str]:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


def test_store_report_summary(tmp_path: Path, capsys) -> None:
    config, db, out = tmp_path / "s.yaml", tmp_path / "s.db", tmp_path / "rep"
    config.write_text(SWEEP)
    main(["sweep", str(config), "--store", str(db), "--workers", "1", "--no-progress"])
    with ResultStore(db) as store:
        failed = {
            "config_hash": "x",
            "status": "failed",
            "task": "zeta",
            "weak": "w",
            "strong": "strong",
            "head": "ridge",
            "seed": 0,
            "error": "boom",
            "config": {},
        }
        store.record(failed)
    lines = _printed(capsys, "report", str(db), "--out", str(out), "--bootstrap", "20")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert lines == [
        f"report: 5 runs (4 done, 1 failed) over 3 tasks (cls, reg, zeta) from {db}",
        f"figures: {len(pngs)} PNG files written beside the page",
        str(out / "index.html"),
    ]
    assert pngs and all(f'src="{name}"' in (out / "index.html").read_text() for name in pngs)


def test_run_folder_report_summary(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    for name, d in (("W", 4), ("S", 8)):
        np.save(tmp_path / f"{name}.npy", rng.normal(size=(300, d)) + y[:, None])
    np.save(tmp_path / "y.npy", y)
    run = tmp_path / "run"
    files = [str(tmp_path / f) for f in ("W.npy", "S.npy", "y.npy")]
    args = ["--weak", files[0], "--strong", files[1], "--labels", files[2]]
    _printed(capsys, "run", *args, "--bootstrap", "20", "--out", str(run))
    out = tmp_path / "rep"
    lines = _printed(capsys, "report", str(run), "--out", str(out))
    assert lines[0] == f"report: 1 run (classification) from run folder {run}"
    assert lines[1] == f"figures: {len(list(out.glob('*.png')))} PNG files written beside the page"
    assert lines[2:] == [str(out / "index.html")]
