"""Tiny transformers checkpoints built from a config (no download), laid out as the hub lays
out a model folder: ``config.json``, ``model.safetensors``, tokenizer files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WORDS = [f"w{i}" for i in range(40)]


@pytest.fixture(autouse=True)
def finetune_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Autouse in every module that imports it: one torch thread for the subprocesses the tests
    start (two test workers share two cores) and an embedding/token cache of the test's own."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))


def tiny_bert(folder: Path, seed: int = 0, layers: int = 2, max_positions: int = 64) -> Path:
    """A 2-layer BERT (hidden 32) with a WordPiece tokenizer over :data:`WORDS`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.model_max_length = max_positions
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_positions,
    )  # fmt: skip
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_texts(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Texts of 3-12 words whose label is whether w0..w19 outnumber w20..w39 (learnable)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        k = int(rng.integers(3, 13))
        idx = rng.integers(0, len(WORDS), size=k)
        texts.append(" ".join(WORDS[i] for i in idx))
        labels.append(int((idx < 20).sum() * 2 > k))
    return texts, np.asarray(labels)
