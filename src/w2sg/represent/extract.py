"""Representations from registered models: ``embed(model, inputs) -> (n, d)`` float32, cached.

Transformer models run through ``transformers`` (``AutoModel`` on the resolved folder, also GGUF):
inputs are tokenized once, sorted by token count so batches carry little padding, run under
``torch.inference_mode`` with as many threads as cores (on CUDA in bfloat16 when present), and
pooled in float32:

- ``mean``: average of token states over the attention mask, ``Σ_t m_t h_t / Σ_t m_t``;
- ``cls``: the first token's state;
- ``last``: the state at the last position whose attention mask is 1 (decoders; right padding, so
  pad tokens never shift positions and no pad-token id is consulted);
- ``max``: elementwise maximum over unmasked tokens.

``layer`` indexes ``output_hidden_states`` (0 = embedding output, ``-1`` = last block, ``"all"``
stacks every one into ``(L + 1, n, d)``). With ``pooling=None`` at the last layer, a
sentence-transformers folder uses its own pooling and normalization (``modules.json``), so the
output equals ``SentenceTransformer.encode``. Static, ONNX, spaCy and molecular models run through
their own packages and have no layers to pick.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from w2sg.errors import W2SGError
from w2sg.progress import progress_bar
from w2sg.represent.cache import EmbeddingCache, cache_key, hash_inputs
from w2sg.represent.models import (
    ModelSpec,
    ResolvedModel,
    materialize,
    model_identity,
    resolve_model,
)

POOLINGS: tuple[str, ...] = ("mean", "cls", "last", "max")
Layer = int | str

# Below this many inputs no progress bar is drawn (the work takes a moment at most).
_PROGRESS_MIN = 256


#: The user's opt-in to run code shipped with a model (``trust_remote_code`` in transformers).
#: ``w2sg --trust-remote-code`` sets it; sweep workers and a local Ray cluster inherit it.
TRUST_REMOTE_CODE_ENV = "W2SG_TRUST_REMOTE_CODE"


@contextlib.contextmanager
def quiet_transformers() -> Any:
    """Loading or saving a local checkpoint without transformers' per-tensor progress bar and
    without the FutureWarning peft triggers by reading transformers' deprecated
    ``is_gradient_checkpointing``: neither tells a user anything. Hub downloads keep their own
    progress bars (huggingface_hub's, not switched off here). The bar setting is restored."""
    import warnings

    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
            )
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def trust_remote_code() -> bool:
    """Whether the user asked to run code from model repositories (never the default)."""
    return os.environ.get(TRUST_REMOTE_CODE_ENV) == "1"


def n_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _progress(total: int, desc: str, enabled: bool, unit: str) -> Any:
    return progress_bar(total, desc, unit, enabled=enabled and total >= _PROGRESS_MIN)


class Encoder(Protocol):
    """A loaded model. ``encode`` returns ``(n, d)`` or, for ``layer="all"``, ``(L + 1, n, d)``."""

    n_layers: int | None

    def encode(
        self,
        inputs: Sequence[str],
        *,
        layer: Layer,
        pooling: str | None,
        batch_size: int,
        step: Callable[[int], None],
    ) -> np.ndarray: ...


# --------------------------------------------------------------------------------------------
# Pooling (pure functions on torch tensors).


def pool(hidden: Any, mask: Any, pooling: str) -> Any:
    """Pool token states ``hidden`` (b, t, d) with attention ``mask`` (b, t) into (b, d)."""
    import torch

    hidden = hidden.float()
    m = mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "last":
        t = mask.shape[1]
        last = t - 1 - torch.flip(mask.long(), dims=[1]).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if pooling == "max":
        return hidden.masked_fill(m == 0, float("-inf")).max(dim=1).values
    raise W2SGError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")


def _layer_index(layer: Layer, n_layers: int) -> int | None:
    """``None`` for "all", else the non-negative index into the ``n_layers + 1`` hidden states."""
    if layer == "all":
        return None
    if isinstance(layer, str):
        try:
            layer = int(layer)
        except ValueError:
            raise W2SGError(f"layer must be an integer or 'all', got {layer!r}") from None
    if not -(n_layers + 1) <= layer <= n_layers:
        raise W2SGError(
            f"layer {layer} is out of range: this model has hidden states 0..{n_layers} "
            f"(or -1..-{n_layers + 1} from the end)"
        )
    return layer % (n_layers + 1)


def _sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


# --------------------------------------------------------------------------------------------
# transformers (encoders, decoders, sentence-transformers folders, GGUF).


def _sentence_transformers_head(folder: Path) -> tuple[str | None, bool, int | None, bool]:
    """(own pooling, normalize, max_seq_length, lowercase) of a sentence-transformers folder."""
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return None, False, None, False
    modules = json.loads(modules_file.read_text())
    pooling: str | None = None
    normalize = False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Pooling":
            cfg = json.loads((folder / module["path"] / "config.json").read_text())
            modes = {
                "mean": cfg.get("pooling_mode_mean_tokens"),
                "cls": cfg.get("pooling_mode_cls_token"),
                "max": cfg.get("pooling_mode_max_tokens"),
                "last": cfg.get("pooling_mode_lasttoken"),
            }
            chosen = [name for name, on in modes.items() if on]
            if len(chosen) != 1:
                raise W2SGError(
                    f"{folder} combines poolings {chosen}; pass --pooling to pick one of them"
                )
            pooling = chosen[0]
        elif kind == "Normalize":
            normalize = True
        elif kind != "Transformer":
            raise W2SGError(
                f"{folder} has a sentence-transformers {kind} module that w2sg does not run; "
                "pass --pooling mean (or cls/last) to use the token states"
            )
    max_len: int | None = None
    lowercase = False
    config_file = folder / "sentence_bert_config.json"
    if config_file.exists():
        st_config = json.loads(config_file.read_text())
        max_len = st_config.get("max_seq_length")
        lowercase = bool(st_config.get("do_lower_case", False))
    return pooling, normalize, max_len, lowercase


_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.pt", "*.pth", "*.h5", "*.msgpack",
                    "*.ckpt", "*.safetensors.index.json", "*.bin.index.json")  # fmt: skip


def _first(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _check_model_folder(folder: Path, name: str) -> None:
    """A local model folder needs a readable ``config.json`` that parses and a weight file."""
    if not folder.is_dir():
        return
    config = folder / "config.json"
    if not config.is_file() and not any(folder.glob("*.gguf")):
        raise W2SGError(
            f"model {name!r}: {folder} has no config.json; is it a Hugging Face model folder?"
        )
    if config.is_file():
        try:
            parsed = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise W2SGError(
                f"model {name!r}: {config} is not a readable JSON config ({_first(exc)})"
            ) from None
        if not isinstance(parsed, dict):
            raise W2SGError(f"model {name!r}: {config} is not a JSON object")
    if not any(next(folder.glob(pattern), None) for pattern in _WEIGHT_PATTERNS):
        raise W2SGError(
            f"model {name!r}: {folder} has no weights (model.safetensors, pytorch_model.bin or "
            "a .gguf); download the whole model folder"
        )


class TransformersEncoder:
    """Any ``transformers`` model folder (or GGUF file in one), run layer by layer."""

    def __init__(self, folder: Path, spec: ModelSpec, device: str | None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(n_cores())
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        kwargs: dict[str, Any] = {}
        ggufs = sorted(p.name for p in folder.glob("*.gguf")) if folder.is_dir() else []
        if folder.is_file() and folder.suffix == ".gguf":
            folder, ggufs = folder.parent, [folder.name]
        gguf = spec.gguf_file if spec.gguf_file in ggufs else (ggufs[0] if ggufs else None)
        if gguf:
            kwargs["gguf_file"] = gguf
        kwargs["trust_remote_code"] = trust_remote_code()
        _check_model_folder(folder, spec.name)
        try:
            with quiet_transformers():
                self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
                self.model = AutoModel.from_pretrained(folder, dtype=dtype, **kwargs)
        except ValueError as exc:
            if "trust_remote_code" in str(exc):
                raise W2SGError(
                    f"model {spec.name!r} runs code from its repository; if you trust it, pass "
                    f"--trust-remote-code (or set {TRUST_REMOTE_CODE_ENV}=1)"
                ) from None
            raise W2SGError(f"model {spec.name!r}: cannot load {folder}: {_first(exc)}") from None
        except (OSError, KeyError, TypeError) as exc:
            raise W2SGError(f"model {spec.name!r}: cannot load {folder}: {_first(exc)}") from None
        self.model = self.model.to(self.device)
        self.model.eval()
        config = self.model.config
        text_config = getattr(config, "text_config", None) or config
        self.n_layers: int | None = int(text_config.num_hidden_layers)
        head = _sentence_transformers_head(folder)
        self.own_pooling, self.normalize, st_max, self.lowercase = head
        limits = [
            int(v)
            for v in (
                st_max,
                getattr(text_config, "max_position_embeddings", None),
                getattr(self.tokenizer, "model_max_length", None),
            )
            if v and int(v) < 10**8
        ]
        self.max_length = min(limits) if limits else 512
        self.default_pooling = spec.pooling or "mean"

    def encode(
        self,
        inputs: Sequence[str],
        *,
        layer: Layer,
        pooling: str | None,
        batch_size: int,
        step: Callable[[int], None],
    ) -> np.ndarray:
        import torch

        assert self.n_layers is not None
        index = _layer_index(layer, self.n_layers)
        is_last = index == self.n_layers
        normalize = False
        if pooling is None:
            if is_last and self.own_pooling is not None:
                pooling, normalize = self.own_pooling, self.normalize
            else:
                pooling = self.default_pooling
        if pooling not in POOLINGS:
            raise W2SGError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")

        texts = [t.lower() for t in inputs] if self.lowercase else list(inputs)
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
        ids: list[list[int]] = encoded["input_ids"]
        n_states = self.n_layers + 1
        out_layers = n_states if index is None else 1
        width = None
        result: np.ndarray | None = None
        for batch in _sorted_batches([len(x) for x in ids], batch_size):
            longest = max(len(ids[i]) for i in batch)
            input_ids = torch.zeros((len(batch), longest), dtype=torch.long)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            input_ids, mask = input_ids.to(self.device), mask.to(self.device)
            with torch.inference_mode():
                output = self.model(
                    input_ids=input_ids, attention_mask=mask, output_hidden_states=not is_last
                )
                states = (
                    [output.last_hidden_state]
                    if is_last
                    else list(output.hidden_states)
                    if index is None
                    else [output.hidden_states[index]]
                )
                pooled = torch.stack([pool(h, mask, pooling) for h in states])
                if normalize:
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
            block = pooled.float().cpu().numpy()
            if result is None:
                width = block.shape[-1]
                result = np.empty((out_layers, len(ids), width), dtype=np.float32)
            result[:, batch] = block
            step(len(batch))
        assert result is not None
        return result if index is None else result[0]


# --------------------------------------------------------------------------------------------
# Backends without layers: static tables, ONNX, spaCy, molecular featurizers.


def _no_layers(name: str, layer: Layer, pooling: str | None, allowed: tuple[str, ...]) -> None:
    if layer not in (-1, "-1"):
        raise W2SGError(
            f"{name} has no layers to pick; use --layer -1 (or a transformers model such as "
            "minilm-l6 for intermediate layers)"
        )
    if pooling is not None and pooling not in allowed:
        raise W2SGError(f"{name} supports pooling {', '.join(allowed) or 'none'}, not {pooling!r}")


class _BatchedEncoder:
    """Run ``_encode_batch`` over batches of inputs; subclasses set ``name`` and ``allowed``."""

    n_layers: int | None = None
    name = ""
    allowed: tuple[str, ...] = ("mean",)
    min_batch = 512  # per-call overhead dominates small batches of these cheap models

    def _encode_batch(self, inputs: list[str]) -> np.ndarray:
        raise NotImplementedError

    def encode(
        self,
        inputs: Sequence[str],
        *,
        layer: Layer,
        pooling: str | None,
        batch_size: int,
        step: Callable[[int], None],
    ) -> np.ndarray:
        _no_layers(self.name, layer, pooling, self.allowed)
        blocks = []
        items = list(inputs)
        size = max(batch_size, self.min_batch)
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            blocks.append(np.asarray(self._encode_batch(chunk), dtype=np.float32))
            step(len(chunk))
        return np.concatenate(blocks, axis=0)


class StaticEncoder(_BatchedEncoder):
    """tokenlearn's static int8 token table: the mean of token vectors, L2-normalized."""

    name = "static-64"

    def __init__(self, folder: Path) -> None:
        from static_model import _static_model

        self._encode = _static_model.encode_batch
        self.folder = str(folder)

    def _encode_batch(self, inputs: list[str]) -> np.ndarray:
        return np.asarray(self._encode(self.folder, inputs, 512))


class WordLlamaEncoder(_BatchedEncoder):
    """WordLlama: token embeddings of Llama-2 distilled, average-pooled."""

    name = "wordllama"

    def __init__(self, weights: Path) -> None:
        from wordllama import WordLlama

        self.model = WordLlama.load(
            config="l2_supercat", dim=256, cache_dir=weights.parent.parent, disable_download=True
        )

    def _encode_batch(self, inputs: list[str]) -> np.ndarray:
        return np.asarray(self.model.embed(inputs))


def _onnx_session(path: Path, custom_ops: bool = False) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = n_cores()
    options.log_severity_level = 3
    if custom_ops:
        from onnxruntime_extensions import get_library_path

        options.register_custom_ops_library(get_library_path())
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class UseEncoder(_BatchedEncoder):
    """Universal Sentence Encoder multilingual (int8 ONNX with its tokenizer inside the graph)."""

    name = "use-multilingual"
    allowed = ()
    min_batch = 64

    def __init__(self, path: Path) -> None:
        self.session = _onnx_session(path, custom_ops=True)

    def _encode_batch(self, inputs: list[str]) -> np.ndarray:
        return self.session.run(["outputs"], {"inputs": np.asarray(inputs, dtype=object)})[0]


class SpacyEncoder(_BatchedEncoder):
    """spaCy word vectors averaged over the tokens (``Doc.vector``); tokenizer only."""

    name = "spacy-md"

    def __init__(self, folder: Path) -> None:
        import spacy

        pipes = ["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer", "ner"]
        self.nlp = spacy.load(folder, exclude=pipes)

    def _encode_batch(self, inputs: list[str]) -> np.ndarray:
        return np.stack([np.asarray(doc.vector) for doc in self.nlp.pipe(inputs)])


class OnnxMiniLMEncoder:
    """paraphrase-MiniLM-L3-v2 as ONNX: last-layer token states pooled here (no other layers)."""

    max_length = 128  # the model's sentence-transformers max_seq_length

    def __init__(self, path: Path, tokenizer_file: Path, n_layers: int | None) -> None:
        from tokenizers import Tokenizer

        self.session = _onnx_session(path)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self.n_layers = n_layers
        outputs = self.session.get_outputs()
        self.states_name = next(o.name for o in outputs if len(o.shape) == 3)

    def encode(
        self,
        inputs: Sequence[str],
        *,
        layer: Layer,
        pooling: str | None,
        batch_size: int,
        step: Callable[[int], None],
    ) -> np.ndarray:
        import torch

        if layer not in (-1, "-1", self.n_layers, str(self.n_layers)):
            raise W2SGError(
                "minilm-l3 (ONNX) exposes only its last layer; use minilm-l6 or "
                "hf:sentence-transformers/paraphrase-MiniLM-L3-v2 for other layers"
            )
        pooling = pooling or "mean"
        encodings = self.tokenizer.encode_batch(list(inputs))
        ids = [e.ids for e in encodings]
        result = np.empty((len(ids), 384), dtype=np.float32)
        for batch in _sorted_batches([len(x) for x in ids], batch_size):
            longest = max(len(ids[i]) for i in batch)
            input_ids = np.zeros((len(batch), longest), dtype=np.int64)
            mask = np.zeros((len(batch), longest), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feed = {"input_ids": input_ids, "attention_mask": mask}
            states = self.session.run([self.states_name], feed)[0]
            pooled = pool(torch.from_numpy(states), torch.from_numpy(mask), pooling)
            result[batch] = pooled.numpy()
            step(len(batch))
        return result


class MoleculeEncoder:
    """A molecular featurizer of :mod:`w2sg.represent.molecules`."""

    n_layers: int | None = None

    def __init__(self, name: str) -> None:
        self.name = name

    def encode(
        self,
        inputs: Sequence[str],
        *,
        layer: Layer,
        pooling: str | None,
        batch_size: int,
        step: Callable[[int], None],
    ) -> np.ndarray:
        from w2sg.represent.molecules import featurize

        _no_layers(self.name, layer, pooling, ())
        return featurize(self.name, inputs, chunk_size=max(batch_size, 64), on_chunk=step).X


def _hub_folder(repo: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo))
    except Exception as exc:  # network or auth failures all end the same way for the user
        raise W2SGError(f"could not download {repo} from the hub ({type(exc).__name__})") from exc


# Backend name -> loader(resolved model, device) -> Encoder.
#: Backends of :class:`MoleculeEncoder`: featurizers whose non-finite values are repaired with
#: column medians of the whole array (so they are never split into pieces).
FEATURIZER_BACKENDS: frozenset[str] = frozenset(
    {"maccs", "ecfp4", "rdkit2d", "rdkit2d-log", "mordred", "minimol"}
)

BACKENDS: dict[str, Callable[[ResolvedModel, str | None], Encoder]] = {
    "transformers": lambda r, device: TransformersEncoder(
        _hub_folder(r.location) if r.source == "hub" else r.path, r.spec, device
    ),
    "static": lambda r, device: StaticEncoder(r.path),
    "wordllama": lambda r, device: WordLlamaEncoder(r.path),
    "use-onnx": lambda r, device: UseEncoder(r.path),
    "spacy": lambda r, device: SpacyEncoder(r.path),
    "onnx-minilm": lambda r, device: OnnxMiniLMEncoder(r.path, r.extra_files[0], r.spec.layers),
}


def _featurizer(name: str) -> Callable[[ResolvedModel, str | None], Encoder]:
    return lambda r, device: MoleculeEncoder(name)


BACKENDS.update({name: _featurizer(name) for name in sorted(FEATURIZER_BACKENDS)})


def check_device(device: str | None) -> None:
    """Refuse a torch device that does not exist here (one line naming what does), before any
    model is loaded. ``None`` means cuda when present, else cpu."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise W2SGError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "has no CUDA support" if torch.version.cuda is None else "sees no GPU"
            raise W2SGError(
                f"device {device!r}: this torch {torch.__version__} {why}; use --device cpu"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise W2SGError(
                f"device {device!r}: there are {count} GPUs (cuda:0 … cuda:{count - 1})"
            )
        return
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise W2SGError(f"device {device!r}: no Apple MPS device here; use --device cpu")
        return
    raise W2SGError(f"device {device!r} is not supported; use cpu, cuda, cuda:N or mps")


@functools.lru_cache(maxsize=4)
def _load(resolved: ResolvedModel, device: str | None) -> Encoder:
    loader = BACKENDS.get(resolved.backend)
    if loader is None:
        raise W2SGError(
            f"model {resolved.spec.name!r} names an unknown backend {resolved.backend!r}"
        )
    return loader(materialize(resolved), device)


def load_encoder(
    model: str, *, device: str | None = None, local_path: str | None = None
) -> Encoder:
    """The loaded model behind ``model`` (kept in memory for the next call)."""
    return _load(resolve_model(model, local_path=local_path), device)


#: Inputs per piece of a long cached extraction: each piece is stored as it completes, so a killed
#: extraction resumes from its last finished piece instead of from the start.
PIECE_INPUTS = 4096


def embed(
    model: str,
    inputs: Sequence[str],
    *,
    layer: Layer = -1,
    pooling: str | None = None,
    batch_size: int = 32,
    device: str | None = None,
    cache: bool | EmbeddingCache = True,
    progress: bool = True,
    local_path: str | None = None,
) -> np.ndarray:
    """Representations of ``inputs`` (texts or SMILES) by ``model``: float32 ``(n, d)``.

    ``layer="all"`` gives ``(L + 1, n, d)``. ``pooling=None`` means the model's own pooling
    (sentence-transformers at the last layer) or the registry default. ``cache=True`` reads and
    writes the content-addressed cache (``$W2SG_CACHE_DIR``); a cached result comes back
    memory-mapped and read-only, and an extraction of more than :data:`PIECE_INPUTS` inputs by a
    model whose rows are independent (every backend but the molecular featurizers) is cached
    piece by piece, so that a killed one resumes. ``local_path`` overrides where the
    weights are read from.
    """
    if isinstance(inputs, str):
        raise W2SGError("inputs must be a list of strings, not one string")
    inputs = list(inputs)
    if not inputs:
        raise W2SGError("no inputs to embed; pass at least one text or SMILES")
    if pooling is not None and pooling not in POOLINGS:
        raise W2SGError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    if batch_size < 1:
        raise W2SGError(f"batch_size must be >= 1, got {batch_size}")
    check_device(device)
    if isinstance(layer, str) and layer != "all":
        try:
            layer = int(layer)
        except ValueError:
            raise W2SGError(f"layer must be an integer or 'all', got {layer!r}") from None

    resolved = resolve_model(model, local_path=local_path)
    store: EmbeddingCache | None
    store = cache if isinstance(cache, EmbeddingCache) else (EmbeddingCache() if cache else None)
    identity = model_identity(resolved) if store is not None else ""
    key = ""
    if store is not None:
        digest = hash_inputs(inputs)
        key = cache_key(identity, layer, pooling, digest)
        hit = store.get(key)
        if hit is None and isinstance(layer, int):
            hit = _sliced_from_all_layers(store, cache_key(identity, "all", pooling, digest), layer)
        if hit is not None:
            return hit

    loaded: list[Encoder] = []

    def encode(texts: list[str], step: Callable[[int], None]) -> np.ndarray:
        if not loaded:
            loaded.append(_load(resolved, device))
        out = loaded[0].encode(
            texts, layer=layer, pooling=pooling, batch_size=batch_size, step=step
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    meta = {
        "model": resolved.spec.name,
        "source": resolved.source,
        "location": resolved.location,
        "layer": layer,
        "pooling": pooling,
        "n_inputs": len(inputs),
    }
    unit = "mol" if resolved.spec.kind == "smiles" else "text"
    with _progress(len(inputs), resolved.spec.name, progress, unit) as bar:
        if store is None:
            return encode(inputs, bar.update)
        if len(inputs) <= PIECE_INPUTS or resolved.backend in FEATURIZER_BACKENDS:
            # Featurizers repair non-finite values with medians over the whole array, so their
            # rows are not independent of the rest: they run in one piece (and are fast).
            return store.put(key, encode(inputs, bar.update), meta)
        # A long extraction goes piece by piece, each cached as it completes: a killed run
        # resumes at the first missing piece. The pieces are removed once the whole is stored.
        pieces, piece_keys = [], []
        for start in range(0, len(inputs), PIECE_INPUTS):
            chunk = inputs[start : start + PIECE_INPUTS]
            piece_key = cache_key(identity + "|piece", layer, pooling, hash_inputs(chunk))
            piece = store.get(piece_key)
            if piece is None:
                piece_meta = {**meta, "n_inputs": len(chunk), "piece_of": key, "start": start}
                piece = store.put(piece_key, encode(chunk, bar.update), piece_meta)
            else:
                bar.update(len(chunk))
            pieces.append(np.asarray(piece))
            piece_keys.append(piece_key)
        X = np.concatenate(pieces, axis=pieces[0].ndim - 2)  # the rows axis, also for "all"
        del pieces, piece  # close the memory maps before their files go (Windows)
        result = store.put(key, X, meta)
    for piece_key in piece_keys:
        with contextlib.suppress(OSError):  # the whole is stored; a leftover piece is harmless
            store.delete(piece_key)
    return result


def _sliced_from_all_layers(store: EmbeddingCache, all_key: str, layer: int) -> np.ndarray | None:
    """Inner layer ``layer`` of a cached all-layer pass (same model, pooling and inputs), or None.

    A single inner layer is ``stacked[layer]`` of the ``(L + 1, n, d)`` pass, so when a sweep, a
    rank or an earlier ``layer="all"`` call has cached that pass no forward pass is needed. The
    last hidden state is not sliced: on its own it comes from ``last_hidden_state`` with the
    model's own pooling (sentence-transformers: theirs, normalised), which the pass does not use.
    """
    stacked = store.get(all_key)
    if stacked is None:
        return None
    n_states = stacked.shape[0]
    if not -n_states <= layer < n_states or layer % n_states == n_states - 1:
        return None
    return np.asarray(stacked[layer])


def representations_for(
    dataset: str,
    model: str,
    layer: Layer = -1,
    pooling: str | None = None,
    limit: int | None = None,
    *,
    seed: int = 0,
    max_words: int | None = None,
    progress: bool = True,
) -> tuple[list[str], np.ndarray]:
    """(content-hash ids, representations) of registered ``dataset`` by ``model`` (cached).

    ``limit``, ``seed`` and ``max_words`` select and cut the texts as in
    :func:`w2sg.data.datasets.load_dataset`. The model's kind (text or SMILES) must match the
    dataset's.
    """
    from w2sg.data.datasets import load_dataset
    from w2sg.represent.models import get_spec

    data = load_dataset(dataset, limit=limit, seed=seed, max_words=max_words)
    spec = get_spec(model)
    if spec.kind != data.kind:
        raise W2SGError(
            f"model {model!r} reads {spec.kind} but dataset {dataset!r} holds {data.kind}; "
            f"pick a {data.kind} model (w2sg models)"
        )
    X = embed(model, data.inputs, layer=layer, pooling=pooling, progress=progress)
    return list(data.ids), np.array(X, dtype=np.float32)
