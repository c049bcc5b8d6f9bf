"""Fine-tuned transformers as learners: ``full`` (every weight) and ``lora`` (low-rank adapters).

The student is the set-up of the field (openai/weak-to-strong, EleutherAI/w2s): the transformer's
token states, pooled by the model's registered pooling over the attention mask (``mean``: Σ_t m_t
h_t / Σ_t m_t, ``cls``: h_0, ``last``: the last unmasked position; a sentence-transformers folder's
own pooling wins), into a linear head z = W h + b initialised at W = 0, b = 0 (so every model starts
from the uniform prediction). Outputs: p = softmax(z) for classification and probability tasks
(trained with the loss registry of :mod:`w2sg.heads.losses` on soft targets), for regression
ŷ = μ + σ z, trained by the mean squared error of z against the standardized targets (y − μ) / σ,
μ and σ the mean and standard deviation of the training targets (σ = 1 when they are constant): a
zero-initialised head then starts at the mean instead of at 0, which for targets far from 0
(FreeSolv's hydration energies, around −4 kcal/mol with sd 3.8) a few dozen steps never reach.

Training: AdamW (two groups: the transformer at ``lr``, the head at ``head_lr``), the rate rising
linearly over the first ``warmup`` fraction of optimiser steps and then decaying linearly or by a
cosine to 0 (:func:`lr_factor`); ``grad_accum`` micro-batches per step; gradients clipped to norm
``max_grad_norm``; dynamic padding with length-bucketed batches (:func:`bucketed_batches`);
bfloat16 autocast on CUDA and float32 on CPU; optional gradient checkpointing for ``full``.
``lora`` wraps the transformer with ``peft`` adapters of rank r and scale α/r on the modules of
:data:`LORA_TARGETS` (chosen by the architecture); the head is always trained.

Model selection without ground truth: with a validation split, the epoch of lowest validation loss
(soft-label cross-entropy, or MSE for regression, against the validation targets the pipeline
gives: the weak model's labels for the w2s student) is kept. Each finished epoch is checkpointed
(safetensors + JSON, written atomically) in ``checkpoint_dir``; the same fit started again resumes
after the last finished epoch and ends with the numbers of an uninterrupted run (the batch order
of epoch e is drawn from seed and e alone, and the RNG state is saved with the weights). A loss
with state across steps (``logconf_eai``'s rolling buffer) restarts it empty on resume, so only
its first batches after a resume can differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import resource
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from w2sg import atomic
from w2sg.config import FinetuneConfig, RunConfig
from w2sg.errors import W2SGError
from w2sg.heads.learner import EpochHook

__all__ = [
    "LORA_TARGETS",
    "FinetuneLearner",
    "FinetuneSource",
    "bucketed_batches",
    "check_finetunable",
    "finetunable",
    "kept_blocks",
    "lr_factor",
    "truncate_blocks",
]

#: LoRA target modules by ``config.model_type``: a regular expression over module names (matched
#: whole by peft) or a list of name suffixes. BERT-style encoders: the attention projections and
#: every dense layer inside the blocks (not the unused pooler); MPNet: q/k/v/o and the dense
#: layers; Gemma/Llama-style decoders: q/k/v/o and the MLP projections. Other architectures get
#: peft's ``all-linear``.
LORA_TARGETS: dict[str, str | list[str]] = {
    "bert": r".*\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)",
    "roberta": r".*\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)",
    "mpnet": r".*\.layer\.\d+\.(attention\.attn\.(q|k|v|o)|intermediate\.dense|output\.dense)",
    **{
        arch: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        for arch in ("gemma", "gemma2", "gemma3", "gemma3_text", "llama", "mistral", "qwen2")
    },
}


# --------------------------------------------------------------------------------------------
# Pure helpers


def lr_factor(step: int, total: int, warmup: float, schedule: str) -> float:
    """Multiplier of the peak learning rate at optimiser step ``step`` (0-based) of ``total``.

    With w = ⌈warmup · total⌉ warm-up steps: (step + 1) / w while step < w, then with
    q = (step − w) / max(total − w, 1): ``linear`` 1 − q, ``cosine`` ½(1 + cos πq),
    ``constant`` 1.
    """
    w = math.ceil(warmup * total)
    if step < w:
        return (step + 1) / w
    q = min((step - w) / max(total - w, 1), 1.0)
    if schedule == "linear":
        return 1.0 - q
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * q))
    return 1.0


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, seed: int, bucket: int = 64
) -> list[np.ndarray]:
    """Positions ``0..n-1`` in shuffled batches of similar length (dynamic padding stays short).

    The positions are shuffled, cut into chunks of ``bucket · batch_size``, each chunk sorted by
    length and cut into batches, and the batches shuffled: every position appears once, and the
    order depends on ``seed`` alone.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    chunk = bucket * batch_size
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def finetunable(model: str) -> bool:
    """Whether ``model`` is a ``transformers`` checkpoint (registered, ``hf:``, folder, SMILES),
    optionally with a layer suffix (``minilm-l6@2``: its first 2 blocks)."""
    from w2sg.represent.models import get_spec, split_layer_name

    try:
        return get_spec(split_layer_name(model)[0]).backend == "transformers"
    except W2SGError:
        return False


def check_finetunable(model: str, mode: str, kind: str | None = None) -> None:
    """One-line :class:`W2SGError` unless ``model`` can be fine-tuned in ``mode`` on ``kind``.

    ``model`` may carry the registry's layer suffix: ``NAME@L`` fine-tunes the smaller
    transformer made of the embeddings and the first L blocks (see :func:`truncate_blocks`);
    ``@0`` (the embeddings alone) and layer names are refused here, a layer beyond the model's
    blocks when its config is read (:meth:`FinetuneSource.check`)."""
    from w2sg.represent.models import get_spec, split_layer_name

    name, layer = split_layer_name(model)
    spec = get_spec(name)
    if spec.backend != "transformers":
        raise W2SGError(
            f"--train {mode} needs a transformers checkpoint; {model!r} is a {spec.backend} model "
            "(fine-tune e.g. minilm-l6, mpnet-base, gemma-270m, smiles-lm/<name>, hf:<name>, "
            "or train it as a probe)"
        )
    if kind is not None and spec.kind != kind:
        raise W2SGError(
            f"model {model!r} reads {spec.kind} but the inputs are {kind}; pick a {kind} model"
        )
    if layer is not None and not isinstance(layer, int):
        raise W2SGError(
            f"fine-tuning {model!r} ({mode}): a fine-tuned model is cut at a block number "
            f"(@1, @2, ...), not at a named layer {layer!r}"
        )
    if layer == 0:
        raise W2SGError(
            f"fine-tuning {model!r} ({mode}): @0 is the embedding output, with no transformer "
            "block to fine-tune; use @1 or more (or train @0 as a probe)"
        )


def kept_blocks(layer: int | None, n_blocks: int, model: str) -> int | None:
    """The number of blocks a fine-tuned ``model@layer`` keeps, ``None`` for all of them.

    ``layer`` indexes the hidden states as the probes do (0 = embeddings, ``n_blocks`` = the last
    block, −1 = the last, −k = ``n_blocks`` + 1 − k); the smaller transformer keeps blocks
    1..index. Out of range or 0 → one-line :class:`W2SGError`."""
    if layer is None:
        return None
    if not -(n_blocks + 1) <= layer <= n_blocks:
        raise W2SGError(
            f"{model}: layer {layer} is out of range; this model has blocks 1..{n_blocks} "
            f"(or -1..-{n_blocks} from the end)"
        )
    index = layer % (n_blocks + 1)
    if index == 0:
        raise W2SGError(
            f"{model}: @{layer} is the embedding output, with no transformer block to fine-tune; "
            "use @1 or more"
        )
    return None if index == n_blocks else index


#: Final normalisations applied after the last block (decoders: Llama/Gemma ``norm``, GPT-2
#: ``ln_f``, OPT ``final_layer_norm``). The probe of ``NAME@L`` below the last block reads the
#: hidden state before any of them, so a truncated model drops them.
_FINAL_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


def truncate_blocks(model: Any, keep: int) -> Any:
    """Cut a loaded transformers ``model`` to its embeddings and first ``keep`` blocks, in place.

    The block list is the one ``ModuleList`` of length ``num_hidden_layers`` (BERT/MPNet
    ``encoder.layer``, Llama/Gemma ``layers``); the blocks after ``keep`` are removed (their
    parameters leave the model, so its parameter count is that of a ``keep``-block model), the
    config says ``keep`` layers (and keeps the first ``keep`` of ``layer_types``), and a final
    normalisation after the blocks (:data:`_FINAL_NORMS`) becomes the identity, so the last
    hidden state is the ``keep``-th hidden state of the whole model, the representation the
    probe of ``NAME@keep`` reads (``output_hidden_states[keep]``)."""
    import torch

    config: Any = model.config
    text: Any = getattr(config, "text_config", None) or config
    n = int(getattr(text, "num_hidden_layers", 0) or 0)
    lists = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.ModuleList) and len(m) == n and n > 0
    ]
    if len(lists) != 1:
        raise W2SGError(
            f"cannot find the block list of this {type(model).__name__} to keep {keep} of its "
            "layers; fine-tune the whole model (drop the @ suffix)"
        )
    path, blocks = lists[0]
    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, attr, torch.nn.ModuleList(list(blocks)[:keep]))
    text.num_hidden_layers = keep
    if isinstance(getattr(text, "layer_types", None), list):
        text.layer_types = text.layer_types[:keep]
    if keep < n:
        for name in _FINAL_NORMS:
            for owner in (model, getattr(model, "model", None)):
                if owner is not None and isinstance(getattr(owner, name, None), torch.nn.Module):
                    setattr(owner, name, torch.nn.Identity())
    return model


def _device_dtype(config: FinetuneConfig) -> tuple[Any, Any]:
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise W2SGError("--device cuda but no CUDA device is visible; use --device cpu or auto")
    cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    if config.dtype == "bfloat16" or (config.dtype == "auto" and cuda):
        return device, torch.bfloat16
    return device, torch.float32


# --------------------------------------------------------------------------------------------
# Loading a checkpoint and tokenizing (once per source, cached by content hash)


class _Backbone:
    """The loaded pieces of a transformers model: folder, tokenizer, pooling, length limit.

    ``model`` may carry a layer suffix (``minilm-l6@2``): :meth:`load` then gives the smaller
    transformer of the embeddings and the first ``blocks`` blocks, pooled by the model's
    registered pooling (``spec.pooling``, as the probe of an intermediate layer), not by a
    sentence-transformers folder's own head, which belongs to the last layer."""

    def __init__(self, model: str) -> None:
        from transformers import AutoTokenizer

        from w2sg.represent.extract import _hub_folder, _sentence_transformers_head
        from w2sg.represent.models import (
            materialize,
            model_identity,
            resolve_model,
            split_layer_name,
        )

        name, layer = split_layer_name(model)
        resolved = materialize(resolve_model(name))
        self.spec = resolved.spec
        folder = _hub_folder(resolved.location) if resolved.source == "hub" else resolved.path
        self.kwargs: dict[str, Any] = {}
        ggufs = sorted(p.name for p in folder.glob("*.gguf")) if folder.is_dir() else []
        if folder.is_file() and folder.suffix == ".gguf":
            folder, ggufs = folder.parent, [folder.name]
        if ggufs:
            self.kwargs["gguf_file"] = (
                self.spec.gguf_file if self.spec.gguf_file in ggufs else ggufs[0]
            )
        self.folder = folder
        self.identity = model_identity(resolved)
        self.tokenizer = AutoTokenizer.from_pretrained(folder, **self.kwargs)
        own, _normalize, st_max, self.lowercase = _sentence_transformers_head(folder)
        config = json.loads((folder / "config.json").read_text()) if not ggufs else {}
        text_config = config.get("text_config") or config
        n_blocks = text_config.get("num_hidden_layers") or self.spec.layers
        #: the blocks kept (``None``: all of them, the whole model)
        self.blocks: int | None = None
        if layer is not None:
            if not isinstance(layer, int) or n_blocks is None:
                raise W2SGError(f"{model}: cannot tell how many blocks the model has to cut it")
            self.blocks = kept_blocks(layer, int(n_blocks), model)
        self.pooling = (
            own or self.spec.pooling or "mean"
            if self.blocks is None
            else self.spec.pooling or "mean"
        )
        limits = [
            int(v)
            for v in (
                st_max,
                config.get("max_position_embeddings"),
                getattr(self.tokenizer, "model_max_length", None),
            )
            if v and int(v) < 10**8
        ]
        self.max_length = min(limits) if limits else 512
        self._tokens: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}

    def load(self, dtype: Any) -> Any:
        from transformers import AutoModel

        from w2sg.represent.extract import quiet_transformers, trust_remote_code

        with quiet_transformers():
            model = AutoModel.from_pretrained(
                self.folder, dtype=dtype, trust_remote_code=trust_remote_code(), **self.kwargs
            )
        return model if self.blocks is None else truncate_blocks(model, self.blocks)

    def tokens(self, inputs: Sequence[str], max_length: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Token ids per input (no padding) and their lengths, cached by content hash."""
        if max_length in self._tokens:
            return self._tokens[max_length]
        from w2sg.represent.cache import EmbeddingCache, hash_inputs

        texts = [t.lower() for t in inputs] if self.lowercase else list(inputs)
        key = hashlib.sha256(
            f"tokens|{self.identity}|{max_length}|{hash_inputs(texts)}".encode()
        ).hexdigest()
        cache = EmbeddingCache()
        flat, offsets = cache.get(key + "-ids"), cache.get(key + "-offsets")
        if flat is None or offsets is None:
            encoded = self.tokenizer(texts, truncation=True, max_length=max_length, padding=False)
            ids = [np.asarray(x, dtype=np.int64) for x in encoded["input_ids"]]
            offsets = np.cumsum([0] + [len(x) for x in ids]).astype(np.int64)
            flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            meta = {"model": self.spec.name, "tokens_of": len(texts), "max_length": max_length}
            cache.put(key + "-ids", flat, meta)
            cache.put(key + "-offsets", offsets, meta)
        flat, offsets = np.asarray(flat), np.asarray(offsets)
        pieces = [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        result = (pieces, np.diff(offsets))
        self._tokens[max_length] = result
        return result


class FinetuneSource:
    """Inputs (texts or SMILES) of every row and the transformers ``model`` to fine-tune.

    ``model`` is a transformers model name, optionally with a layer suffix (``minilm-l6@2``:
    the smaller transformer of its embeddings and first 2 blocks). ``mode`` is ``full`` or
    ``lora``. ``checkpoint_dir``: where each learner keeps its epoch checkpoints (one sub-folder
    per role); ``None`` keeps none. ``finetune``: this model's own fine-tuning settings (a sweep's
    fine-tuned weak entry); ``None`` uses the run's, ``config.finetune_for(role)``
    (``weak_finetune`` for the weak model where set, else ``finetune``).
    """

    def __init__(
        self,
        model: str,
        inputs: Sequence[str],
        mode: str,
        *,
        kind: str | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        finetune: FinetuneConfig | None = None,
    ) -> None:
        if mode not in ("full", "lora"):
            raise W2SGError(f"fine-tuning mode must be full or lora, got {mode!r}")
        check_finetunable(model, mode, kind)
        self.model = model
        self.inputs = list(inputs)
        self.mode = mode
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.finetune = finetune
        self._backbone: _Backbone | None = None

    @property
    def backbone(self) -> _Backbone:
        if self._backbone is None:
            self._backbone = _Backbone(self.model)
        return self._backbone

    def check(self, config: FinetuneConfig) -> int:
        """Check ``config`` (or this source's own settings) against the model before any
        training, its layer suffix included; return the max length used."""
        config = self.finetune or config
        limit = self.backbone.max_length
        if config.max_length is not None and config.max_length > limit:
            raise W2SGError(
                f"--max-length {config.max_length} is beyond {self.model}'s limit of {limit} "
                "tokens; use at most that"
            )
        return config.max_length or limit

    def learner(self, role: str, config: RunConfig, seed: int, **_: Any) -> FinetuneLearner:
        folder = None if self.checkpoint_dir is None else self.checkpoint_dir / role
        loss = config.loss if role == "w2s" else "xent"
        return FinetuneLearner(
            self, config, role=role, loss=loss, seed=seed, checkpoint_dir=folder,
            finetune=self.finetune,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# The learner


def _student_module(backbone: Any, hidden: int, n_out: int, pooling: str) -> Any:
    import torch

    from w2sg.represent.extract import pool

    class Student(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone
            self.head = torch.nn.Linear(hidden, n_out)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        def features(self, ids: Any, mask: Any) -> Any:
            out = self.backbone(input_ids=ids, attention_mask=mask)
            return pool(out.last_hidden_state, mask, pooling)

        def forward(self, ids: Any, mask: Any) -> Any:
            return self.head(self.features(ids, mask).to(self.head.weight.dtype))

    return Student()


def _hidden_size(config: Any) -> int:
    text = getattr(config, "text_config", None) or config
    return int(text.hidden_size)


class FinetuneLearner:
    """A transformer fine-tuned on rows of its source; see the module docstring."""

    outputs_scores = False

    def __init__(
        self,
        source: FinetuneSource,
        config: RunConfig,
        *,
        role: str,
        loss: str,
        seed: int,
        checkpoint_dir: Path | None = None,
        finetune: FinetuneConfig | None = None,
    ) -> None:
        self.source = source
        self.config = config
        self.ft = finetune or config.finetune_for(role)
        self.mode = source.mode
        self.role = role
        self.loss_name = loss
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.regression = config.task == "regression"
        self.max_length = source.check(self.ft)

    # -- building

    def _build(self, n_out: int) -> None:
        import torch

        from w2sg.represent.extract import n_cores

        # OMP_NUM_THREADS, when set, wins: on a busy machine one thread per process is far faster
        # than threads spinning against each other.
        threads = os.environ.get("OMP_NUM_THREADS", "").strip()
        torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0 else n_cores())
        self.device_, self.dtype_ = _device_dtype(self.ft)
        torch.manual_seed(self.seed)
        backbone = self.source.backbone.load(torch.float32)
        hidden = _hidden_size(backbone.config)
        if self.mode == "lora":
            from peft import LoraConfig, get_peft_model

            model_type = str(getattr(backbone.config, "model_type", ""))
            lora = LoraConfig(
                r=self.ft.lora_rank,
                lora_alpha=self.ft.lora_alpha,
                lora_dropout=self.ft.lora_dropout,
                target_modules=LORA_TARGETS.get(model_type, "all-linear"),
                bias="none",
            )
            from w2sg.represent.extract import quiet_transformers

            with quiet_transformers():
                backbone = get_peft_model(backbone, lora)
        elif self.ft.gradient_checkpointing:
            backbone.gradient_checkpointing_enable()
        self.model_ = _student_module(backbone, hidden, n_out, self.source.backbone.pooling)
        self.model_.to(self.device_)
        self.trainable_ = [(n, p) for n, p in self.model_.named_parameters() if p.requires_grad]

    # -- batches

    def _batch(self, positions: np.ndarray, rows: np.ndarray) -> tuple[Any, Any]:
        import torch

        pieces = [self.tokens_[rows[i]] for i in positions]
        longest = max(len(p) for p in pieces)
        pad = self.source.backbone.tokenizer.pad_token_id or 0
        ids = torch.full((len(pieces), longest), int(pad), dtype=torch.long)
        mask = torch.zeros((len(pieces), longest), dtype=torch.long)
        for r, p in enumerate(pieces):
            ids[r, : len(p)] = torch.from_numpy(np.array(p, dtype=np.int64))
            mask[r, : len(p)] = 1
        return ids.to(self.device_), mask.to(self.device_)

    def _autocast(self) -> Any:
        import torch

        if self.dtype_ == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device_.type, dtype=self.dtype_)

    def _loss(self, logits: Any, targets: Any, step: int, total: int) -> Any:
        import torch.nn.functional as F

        from w2sg.heads.losses import StepState

        if self.regression:
            return F.mse_loss(logits[:, 0], targets)
        per_step = self.ft.batch_size * self.ft.grad_accum
        return self.loss_fn_(logits, targets, StepState(step, total, batch_size=per_step))

    def _val_loss(self, rows: np.ndarray, targets: np.ndarray) -> float:
        out = self.predict(rows)
        if self.regression:
            return float(np.mean((out - targets) ** 2))
        return float(-np.mean(np.sum(targets * np.log(np.clip(out, 1e-12, 1.0)), axis=1)))

    # -- fitting

    def fit(
        self,
        rows: np.ndarray,
        targets: np.ndarray,
        *,
        val: tuple[np.ndarray, np.ndarray] | None = None,
        on_epoch: EpochHook | None = None,
    ) -> FinetuneLearner:
        import torch

        rows = np.asarray(rows)
        targets = np.asarray(targets, dtype=np.float64)
        n_out = 1 if self.regression else targets.shape[1]
        self.tokens_, self.lengths_ = self.source.backbone.tokens(
            self.source.inputs, self.max_length
        )
        self._build(n_out)
        ft = self.ft
        lengths = np.asarray(self.lengths_)[rows]
        micro = math.ceil(len(rows) / ft.batch_size)
        per_epoch = math.ceil(micro / ft.grad_accum)
        total = per_epoch * ft.epochs
        backbone_params = [p for n, p in self.trainable_ if not n.startswith("head.")]
        head_params = [p for n, p in self.trainable_ if n.startswith("head.")]
        groups = [
            {"params": backbone_params, "lr": ft.peak_lr(self.mode)},
            {"params": head_params, "lr": ft.head_lr},
        ]
        # The fused AdamW kernel (CPU and CUDA), as Trainer's default `adamw_torch_fused`: one
        # pass over all parameters instead of a Python loop per tensor (~5% of a full step here).
        opt = torch.optim.AdamW(
            [g for g in groups if g["params"]], weight_decay=ft.weight_decay, fused=True
        )
        peaks = [g["lr"] for g in opt.param_groups]
        train_targets = targets[:, 0] if self.regression and targets.ndim == 2 else targets
        self.y_mean_, self.y_scale_ = 0.0, 1.0
        if self.regression:  # standardized targets: the zero-initialised head starts at the mean
            sd = float(np.std(train_targets))
            self.y_mean_ = float(np.mean(train_targets))
            self.y_scale_ = sd if sd > 0 else 1.0
            train_targets = (train_targets - self.y_mean_) / self.y_scale_
        t_targets = torch.as_tensor(train_targets, dtype=torch.float32)
        if not self.regression:
            from w2sg.heads.losses import get_loss

            self.loss_fn_ = get_loss(self.loss_name)
            start_loss = getattr(self.loss_fn_, "start", None)
            if start_loss is not None:  # stateful losses reset (and size themselves) per run
                start_loss(t_targets)
        select = "best" if (ft.select == "best" and val is not None) else "last"
        state: dict[str, Any] = {
            "epoch": 0, "step": 0, "best_epoch": None, "best_loss": None, "stale": 0,
        }  # fmt: skip
        self.curve_: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        key = self._checkpoint_key(rows, targets, val)
        # One folder per learner key: identical learners (the same ceiling for every weak
        # supervisor of a sweep) share theirs, a changed setting or target starts afresh.
        self.ckpt_ = None if self.checkpoint_dir is None else self.checkpoint_dir / key[:24]
        resumed = self._resume(key, opt)
        if resumed is not None:
            state, self.curve_, best = resumed
        else:
            torch.manual_seed(self.seed + 7919)
        train_seconds, seen = 0.0, 0
        start_all = time.perf_counter()
        if self.device_.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device_)
        while state["epoch"] < ft.epochs:
            epoch = int(state["epoch"])
            if ft.patience is not None and state["stale"] >= ft.patience:
                break
            t0 = time.perf_counter()
            self.model_.train()
            batches = bucketed_batches(lengths, ft.batch_size, self.seed * 100_003 + epoch)
            opt.zero_grad(set_to_none=True)
            step = int(state["step"])
            for i, batch in enumerate(batches):
                ids, mask = self._batch(batch, rows)
                group_start = (i // ft.grad_accum) * ft.grad_accum
                group_size = min(ft.grad_accum, len(batches) - group_start)
                with self._autocast():
                    logits = self.model_(ids, mask)
                loss = (
                    self._loss(logits.float(), t_targets[batch].to(self.device_), step, total)
                    / group_size
                )
                loss.backward()
                seen += len(batch)
                if i - group_start == group_size - 1:
                    torch.nn.utils.clip_grad_norm_(
                        [p for _, p in self.trainable_], ft.max_grad_norm
                    )
                    factor = lr_factor(step, total, ft.warmup, ft.schedule)
                    for g, peak in zip(opt.param_groups, peaks, strict=True):
                        g["lr"] = peak * factor
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    step += 1
            train_seconds += time.perf_counter() - t0
            state["epoch"], state["step"] = epoch + 1, step
            point: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_loss": float(loss.item()) * group_size,
            }
            if val is not None:
                vloss = self._val_loss(val[0], val[1])
                point["val_loss"] = vloss
                if state["best_loss"] is None or vloss < state["best_loss"]:
                    state["best_loss"], state["best_epoch"], state["stale"] = vloss, epoch + 1, 0
                    if select == "best":
                        best = self._trainable_state()
                else:
                    state["stale"] = int(state["stale"]) + 1
            if on_epoch is not None:
                point.update(on_epoch(epoch + 1, self) or {})
            self.curve_.append(point)
            self._save_checkpoint(key, opt, state, best)
        if select == "best" and best is not None:
            self._load_trainable(best)
            self.best_epoch_ = state["best_epoch"]
            self.selected_by_ = (
                "weak-labelled val loss" if self.role == "w2s" else "true-labelled val loss"
            )
        else:
            self.best_epoch_ = int(state["epoch"])
            self.selected_by_ = "last epoch" + ("" if val is not None else " (no val split)")
        self.epochs_run_ = int(state["epoch"])
        self.seconds_ = time.perf_counter() - start_all
        self.examples_per_s_ = seen / train_seconds if train_seconds > 0 else None
        if self.device_.type == "cuda":
            self.peak_memory_mb_ = torch.cuda.max_memory_allocated(self.device_) / 2**20
        else:  # the process's peak resident set (Linux reports KiB)
            self.peak_memory_mb_ = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return self

    # -- predicting

    def _forward_all(self, rows: np.ndarray, features: bool) -> np.ndarray:
        import torch

        rows = np.asarray(rows)
        lengths = np.asarray(self.lengths_)[rows]
        order = np.argsort(-lengths, kind="stable")
        out: np.ndarray | None = None
        self.model_.eval()
        size = max(self.ft.batch_size, 32)
        with torch.inference_mode():
            for start in range(0, len(order), size):
                batch = order[start : start + size]
                ids, mask = self._batch(batch, rows)
                with self._autocast():
                    y = self.model_.features(ids, mask) if features else self.model_(ids, mask)
                block = y.float().cpu().numpy().astype(np.float64)
                if out is None:
                    out = np.empty((len(rows), block.shape[1]), dtype=np.float64)
                out[batch] = block
        assert out is not None
        return out

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Probabilities ``(n, C)`` (softmax of the head), or values ``(n,)`` for regression."""
        z = self._forward_all(rows, features=False)
        if self.regression:
            return self.y_mean_ + self.y_scale_ * z[:, 0]
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def represent(self, rows: np.ndarray) -> np.ndarray:
        """The fine-tuned model's pooled representation of ``rows`` ``(n, d)``: the head's input."""
        return self._forward_all(rows, features=True)

    def info(self) -> dict[str, Any]:
        import torch

        total = sum(p.numel() for p in self.model_.parameters())
        trainable = sum(p.numel() for _, p in self.trainable_)
        return {
            "mode": self.mode,
            "model": self.source.model,
            "trainable_params": int(trainable),
            "total_params": int(total),
            "epochs_run": self.epochs_run_,
            "best_epoch": self.best_epoch_,
            "selected_by": self.selected_by_,
            "seconds": self.seconds_,
            "examples_per_s": self.examples_per_s_,
            "peak_memory_mb": self.peak_memory_mb_,
            "device": str(self.device_),
            "dtype": "bfloat16" if self.dtype_ == torch.bfloat16 else "float32",
            "lr": self.ft.peak_lr(self.mode),
            "head_lr": self.ft.head_lr,
            "epochs": self.ft.epochs,
            "batch_size": self.ft.batch_size,
            "warmup": self.ft.warmup,
            **(
                {"lora_rank": self.ft.lora_rank, "lora_alpha": self.ft.lora_alpha}
                if self.mode == "lora"
                else {}
            ),
            "max_length": self.max_length,
            "pooling": self.source.backbone.pooling,
            "blocks": self.source.backbone.blocks,
            "loss": "mse" if self.regression else self.loss_name,
            "curve": self.curve_,
        }

    # -- checkpoints (safetensors for tensors, JSON for the rest; nothing pickled)

    def _trainable_state(self) -> dict[str, Any]:
        return {n: p.detach().to("cpu", copy=True).contiguous() for n, p in self.trainable_}

    def _load_trainable(self, tensors: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            for n, p in self.trainable_:
                p.copy_(tensors[n].to(p.device))

    def _checkpoint_key(
        self, rows: np.ndarray, targets: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None
    ) -> str:
        digest = hashlib.sha256()
        what = {
            "model": self.source.backbone.identity,
            "mode": self.mode,
            "finetune": asdict(self.ft),
            "task": self.config.task,
            "loss": self.loss_name,
            "seed": self.seed,
            "max_length": self.max_length,
        }
        if self.regression:  # checkpoints of unstandardized regression runs are not resumed
            what["targets"] = "standardized"
        if self.source.backbone.blocks is not None:  # a layer-truncated model is another model
            what["blocks"] = self.source.backbone.blocks
        digest.update(json.dumps(what, sort_keys=True).encode())
        for arr in (rows, targets, *(val or ())):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()

    def _save_checkpoint(
        self, key: str, opt: Any, state: dict[str, Any], best: dict[str, Any] | None
    ) -> None:
        if self.ckpt_ is None:
            return
        import torch
        from safetensors.torch import save_file

        folder = self.ckpt_
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"param.{n}": t for n, t in self._trainable_state().items()}
        index = {id(p): i for i, (_, p) in enumerate(self.trainable_)}
        steps: dict[str, float] = {}
        for p, s in opt.state.items():
            i = index[id(p)]
            for name, value in s.items():
                if name == "step":
                    steps[str(i)] = float(value)
                else:
                    tensors[f"opt.{i}.{name}"] = value.detach().to("cpu").contiguous()
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device_.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device_)
        if best is not None:
            tensors.update({f"best.{n}": t for n, t in best.items()})
        with atomic.atomic_path(folder / "state.safetensors", ".safetensors") as tmp:
            save_file(tensors, str(tmp))
        record = {"key": key, "state": state, "curve": self.curve_, "adam_steps": steps}
        atomic.write_json(folder / "state.json", record)

    def _resume(
        self, key: str, opt: Any
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None] | None:
        if self.ckpt_ is None:
            return None
        meta, weights = (
            self.ckpt_ / "state.json",
            self.ckpt_ / "state.safetensors",
        )
        if not meta.exists() or not weights.exists():
            return None
        import torch
        from safetensors.torch import load_file

        try:
            record = json.loads(meta.read_text())
            if record.get("key") != key:
                return None  # another configuration or other data: start afresh
            tensors = load_file(str(weights))
        except (OSError, ValueError):
            return None
        self._load_trainable({n: tensors[f"param.{n}"] for n, _ in self.trainable_})
        for i, (_, p) in enumerate(self.trainable_):
            names = {k.split(".", 2)[2] for k in tensors if k.startswith(f"opt.{i}.")}
            if not names:
                continue
            s = {name: tensors[f"opt.{i}.{name}"].to(p.device) for name in names}
            # fused AdamW keeps its step count as a float32 tensor on the parameter's device
            s["step"] = torch.tensor(
                float(record["adam_steps"][str(i)]), dtype=torch.float32, device=p.device
            )
            opt.state[p] = s
        torch.set_rng_state(tensors["rng.cpu"])
        if self.device_.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device_)
        best = None
        if any(k.startswith("best.") for k in tensors):
            best = {n: tensors[f"best.{n}"] for n, _ in self.trainable_}
        return record["state"], list(record["curve"]), best
