"""Shared fixtures of the representation tests: an isolated cache, offline hub, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("w2sg-cache")


@pytest.fixture(autouse=True)
def _offline_isolated(monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    """No test may reach the hub or the user's cache folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("W2SG_CACHE_DIR", str(session_cache))
    monkeypatch.delenv("W2SG_MODEL_DIR", raising=False)


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama decoder with a word-level tokenizer, saved locally."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    folder = tmp_path_factory.mktemp("tiny-llama")
    words = [
        "the",
        "a",
        "movie",
        "film",
        "was",
        "good",
        "bad",
        "great",
        "awful",
        "plot",
        "actor",
        "story",
        "long",
        "short",
        "very",
        "not",
    ]
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", model_max_length=64
    )
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    transformers.LlamaModel(config).save_pretrained(folder)
    return folder
