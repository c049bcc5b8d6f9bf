"""Pretraining small SMILES transformers: save, reload, embed, resume (a tiny member, seconds)."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from w2sg.errors import W2SGError  # noqa: E402
from w2sg.represent import smiles_lm  # noqa: E402
from w2sg.represent.smiles_lm import (  # noqa: E402
    DataSettings,
    SmilesLMConfig,
    parse_family,
    pretrain,
    smiles_tokens,
)

_FRAGMENTS = ("C", "CC", "O", "N", "C(=O)", "c1ccccc1", "C#N", "F", "OC", "[NH3+]")


def _corpus(n: int = 200) -> list[str]:
    combos = itertools.product(_FRAGMENTS, repeat=3)
    return ["".join(parts) for parts in itertools.islice(combos, n)]


def _tiny(name: str = "tiny", steps: int = 5) -> SmilesLMConfig:
    return SmilesLMConfig(
        name=name, layers=1, hidden=16, steps=steps, batch_size=16,
        data=DataSettings(limit_smiles=180, val_smiles=20, max_length=32),
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> smiles_lm.PretrainResult:
    root = tmp_path_factory.mktemp("smiles-lm")
    return pretrain(_tiny(), root, smiles=_corpus())


def test_tokenizer_splits_atoms_bonds_and_rings() -> None:
    assert smiles_tokens("CC(=O)Cl[NH3+]c1ccccc1%10") == [
        "C", "C", "(", "=", "O", ")", "Cl", "[NH3+]", "c", "1", "c", "c", "c", "c", "c", "1", "%10",
    ]  # fmt: skip
    tokenizer = smiles_lm.build_tokenizer(["C[NH3+]"])
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("BrCCl")["input_ids"])
    assert tokens == ["[CLS]", "Br", "C", "Cl", "[SEP]"]  # not in the corpus, still not [UNK]


def test_tiny_member_saves_a_standard_hf_folder(trained: smiles_lm.PretrainResult) -> None:
    folder = trained.folder
    for name in ("config.json", "model.safetensors", "tokenizer.json", "pretrain.json"):
        assert (folder / name).is_file(), name
    assert not trained.skipped
    record = json.loads((folder / "pretrain.json").read_text())
    assert len(record["loss_curve"]) == 5
    assert np.isfinite(record["final_loss"]) and np.isfinite(record["val_loss"])
    assert record["n_train_smiles"] == 180 and record["n_val_smiles"] == 20
    assert not any(p.name.startswith(".") for p in folder.parent.iterdir())  # no temp folder left


def test_reloads_with_automodel_and_embeds_deterministically(
    trained: smiles_lm.PretrainResult,
) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(trained.folder)
    tokenizer = AutoTokenizer.from_pretrained(trained.folder)
    assert model.config.num_hidden_layers == 1 and model.config.hidden_size == 16
    batch = tokenizer(["CCO", "c1ccccc1O"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[0] == 2 and hidden.shape[2] == 16

    smiles = ["CCO", "c1ccccc1O", "CC(=O)N", "ClCCBr"]
    first = smiles_lm.embed_smiles(trained.folder, smiles, cache=False)
    second = smiles_lm.embed_smiles(trained.folder, smiles, cache=False)
    assert first.shape == (4, 16) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)


def test_training_is_deterministic(tmp_path: Path, trained: smiles_lm.PretrainResult) -> None:
    again = pretrain(_tiny(), tmp_path, smiles=_corpus())
    assert again.final_loss == trained.final_loss
    a = (trained.folder / "model.safetensors").read_bytes()
    b = (again.folder / "model.safetensors").read_bytes()
    assert a == b


def test_resume_skips_a_finished_model(trained: smiles_lm.PretrainResult) -> None:
    before = (trained.folder / "model.safetensors").stat().st_mtime_ns
    again = pretrain(_tiny(), trained.folder.parent, smiles=_corpus())
    assert again.skipped and again.final_loss == trained.final_loss
    assert (trained.folder / "model.safetensors").stat().st_mtime_ns == before
    with pytest.raises(W2SGError, match="other settings"):
        pretrain(_tiny(steps=6), trained.folder.parent, smiles=_corpus())


def test_discovered_spec_is_a_smiles_transformer(trained: smiles_lm.PretrainResult) -> None:
    from w2sg.represent import models

    root = trained.folder.parent
    assert smiles_lm.trained_models(root) == {"smiles-lm/tiny": trained.folder}
    spec = smiles_lm.discovered_spec("smiles-lm/tiny", root)
    assert spec is not None
    assert (spec.kind, spec.backend, spec.dim, spec.layers, spec.pooling) == (
        "smiles", "transformers", 16, 1, "mean",
    )  # fmt: skip
    assert smiles_lm.discovered_spec("smiles-lm/absent", root) is None
    assert smiles_lm.discovered_spec("tiny", root) is None
    resolved = models.resolve_model(str(trained.folder))  # the folder itself loads locally
    assert (resolved.source, resolved.backend) == ("local", "transformers")


def test_family_file_validation() -> None:
    family = parse_family(
        {
            "name": "f",
            "train": {"lr": 0.002},
            "models": [
                {"layers": 1, "hidden": 32, "steps": 10},
                {"name": "x", "layers": 2, "hidden": 64, "steps": 20},
            ],
        }
    )
    assert [m.name for m in family.models] == ["l1-h32-s10", "x"]
    assert family.models[1].lr == 0.002
    with pytest.raises(W2SGError, match="unknown key 'layer'"):
        parse_family({"models": [{"layer": 1, "hidden": 32, "steps": 10}]})
    with pytest.raises(W2SGError, match="missing steps"):
        parse_family({"models": [{"layers": 1, "hidden": 32}]})
    with pytest.raises(W2SGError, match="divide"):
        parse_family({"models": [{"layers": 1, "hidden": 33, "steps": 1, "heads": 2}]})


def test_cli_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from w2sg.cli import pretrain as cli

    corpus = _corpus()
    family = tmp_path / "family.json"
    family.write_text(json.dumps({"models": [{"layers": 1, "hidden": 16, "steps": 2}]}))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["pretrain-smiles", "--family", str(family), "--out", str(tmp_path / "m"),
         "--limit-smiles", "150", "--json", "--no-progress"]
    )  # fmt: skip
    monkeypatch.setattr(smiles_lm, "qm9_smiles", lambda: corpus)
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["models"][0]["name"] == "l1-h16-s2" and out["models"][0]["steps"] == 2


@pytest.mark.parametrize("damage", ["weights", "config", "legacy"])
def test_a_damaged_finished_model_is_trained_again(
    tmp_path: Path, trained: smiles_lm.PretrainResult, capsys: pytest.CaptureFixture[str], damage
) -> None:
    """pretrain-smiles verifies a finished model (the SHA-256 of each file, recorded at save)
    before it skips it; a damaged one is trained again, with a note."""
    import shutil

    folder = tmp_path / trained.folder.name
    shutil.copytree(trained.folder, folder)
    record = json.loads((folder / "pretrain.json").read_text())
    assert set(record["files"]) >= {"model.safetensors", "config.json"}
    if damage == "weights":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[:-100])
    elif damage == "config":
        (folder / "config.json").write_text("{}")
    else:  # a folder saved before the hashes were recorded, with an empty weights file
        del record["files"]
        (folder / "pretrain.json").write_text(json.dumps(record))
        (folder / "model.safetensors").write_bytes(b"")
    again = pretrain(_tiny(), tmp_path, smiles=_corpus())
    assert not again.skipped
    assert "is damaged" in capsys.readouterr().err
    original = (trained.folder / "model.safetensors").read_bytes()
    assert (folder / "model.safetensors").read_bytes() == original
    assert pretrain(_tiny(), tmp_path, smiles=_corpus()).skipped
