"""Small SMILES transformers pretrained here by masked-language modelling: a family of weak models.

No SMILES transformer ships in a PyPI wheel, so the molecular study grows its own: BERT encoders
(``transformers.BertForMaskedLM``) of 1-4 layers and width 32-128, trained for 100-2,000 steps
on unlabelled QM9 SMILES (property columns are never read). A family is a YAML/JSON file
(``examples/molecular/family.yaml``)::

    name: qm9-smiles
    data: {limit_smiles: 20000, max_length: 48, val_smiles: 1000, seed: 0}
    train: {batch_size: 64, lr: 0.001, mask_prob: 0.15, threads: 1, seed: 0}
    models:
      - {layers: 1, hidden: 32, steps: 100}            # name defaults to l1-h32-s100
      - {name: big, layers: 4, hidden: 128, steps: 2000, lr: 0.0005}

Each model is saved as a standard Hugging Face folder ``<out>/<name>`` (``config.json``,
``model.safetensors``: the ``BertModel`` encoder without the MLM head, ``tokenizer.json`` +
``tokenizer_config.json``) that ``AutoModel.from_pretrained`` and ``AutoTokenizer`` load, plus
``pretrain.json`` (the full settings, their hash, the loss curve, the held-out MLM loss and the
time) and ``w2sg-model.json`` (the registry entry: ``smiles-lm/<name>``, kind ``smiles``,
backend ``transformers``, mean pooling). A folder is written under a temporary name and renamed
when complete, so an interrupted run leaves no half model, and a model whose folder exists with
the same settings is skipped (resumable). Training is seeded and deterministic on CPU (float32).

The tokenizer is a ``tokenizers`` WordLevel model on the standard SMILES regex (Schwaller et al.
2019): one token per atom (bracket atoms whole), bond, branch and ring closure. Its vocabulary is a
fixed base of the organic subset, aromatic atoms, bonds and ring digits, plus every bracket atom
seen in the training SMILES, so that atoms absent from QM9 (Cl, Br, S, P, I) still get their own
(untrained) token instead of ``[UNK]``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from w2sg import atomic
from w2sg.errors import W2SGError

if TYPE_CHECKING:
    from w2sg.represent.models import ModelSpec

#: The SMILES tokenization regex of Schwaller et al. (Molecular Transformer, 2019).
SMILES_REGEX = (
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|\/|:|~|@|\?|>|\*|\$"
    r"|\%[0-9]{2}|[0-9])"
)
SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BASE_TOKENS: tuple[str, ...] = (
    *("B", "Br", "C", "Cl", "N", "O", "S", "P", "F", "I"),
    *("b", "c", "n", "o", "s", "p"),
    *("(", ")", ".", "=", "#", "-", "+", "\\", "/", ":", "~", "@", "?", ">", "*", "$"),
    *(str(d) for d in range(10)),
    *(f"%{d}" for d in range(10, 100)),
)
#: Positions the saved models accept; pretraining uses ``max_length`` (<= this) of them.
MAX_POSITIONS = 128
FAMILY_KEYS = ("name", "data", "train", "models")
PRETRAIN_FILE = "pretrain.json"
REGISTRY_FILE = "w2sg-model.json"
NAME_PREFIX = "smiles-lm/"


@dataclass(frozen=True)
class DataSettings:
    """Which SMILES to pretrain on: ``limit_smiles`` QM9 SMILES (seeded shuffle) for training,
    the next ``val_smiles`` for the held-out MLM loss; sequences cut to ``max_length`` tokens."""

    limit_smiles: int = 20000
    val_smiles: int = 1000
    max_length: int = 48
    seed: int = 0


@dataclass(frozen=True)
class SmilesLMConfig:
    """One family member: architecture, optimisation and the data it sees."""

    name: str
    layers: int
    hidden: int
    steps: int
    heads: int = 0  # 0: hidden // 32 (at least 2)
    batch_size: int = 64
    lr: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    dropout: float = 0.1
    seed: int = 0
    threads: int = 1
    data: DataSettings = field(default_factory=DataSettings)

    @property
    def n_heads(self) -> int:
        return self.heads or max(2, self.hidden // 32)

    @property
    def model_name(self) -> str:
        """The registry name, ``smiles-lm/<name>``."""
        return NAME_PREFIX + self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def settings_hash(self) -> str:
        """SHA-256 of everything that determines the weights (``threads`` does not)."""
        settings = {k: v for k, v in self.to_dict().items() if k != "threads"}
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def validate(self) -> None:
        where = f"model {self.name!r}"
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise W2SGError(f"{where}: name must be a plain folder name, e.g. l2-h64-s500")
        checks = (
            (self.layers >= 1, "layers must be >= 1"),
            (self.hidden >= 4, "hidden must be >= 4"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.hidden % self.n_heads == 0, f"hidden {self.hidden} must divide by heads"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (0 <= self.warmup < 1, "warmup must be a fraction in [0, 1)"),
            (0 < self.mask_prob < 1, "mask_prob must be in (0, 1)"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (self.threads >= 1, "threads must be >= 1"),
            (self.data.limit_smiles >= 2, "data.limit_smiles must be >= 2"),
            (self.data.val_smiles >= 0, "data.val_smiles must be >= 0"),
            (4 <= self.data.max_length <= MAX_POSITIONS, f"max_length in 4..{MAX_POSITIONS}"),
        )
        for ok, message in checks:
            if not ok:
                raise W2SGError(f"{where}: {message}; fix it in the family file")


@dataclass(frozen=True)
class Family:
    """A parsed family file: its name and its members (in file order)."""

    name: str
    models: tuple[SmilesLMConfig, ...]


@dataclass(frozen=True)
class PretrainResult:
    """What one ``pretrain`` call produced (or found already done)."""

    name: str
    folder: Path
    layers: int
    hidden: int
    steps: int
    parameters: int
    final_loss: float
    val_loss: float | None
    seconds: float
    skipped: bool

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["folder"] = str(self.folder)
        return out


# -- family files -----------------------------------------------------------------------------


def _check_keys(data: dict[str, Any], known: Sequence[str], where: str) -> None:
    unknown = [k for k in data if k not in known]
    if unknown:
        raise W2SGError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(known)}")


def parse_family(data: Any, source: str = "<family>") -> Family:
    """Validate a family given as a mapping (the parsed YAML/JSON)."""
    if not isinstance(data, dict):
        raise W2SGError(f"{source}: must be a mapping with keys {', '.join(FAMILY_KEYS)}")
    _check_keys(data, FAMILY_KEYS, source)
    data_keys = [f.name for f in fields(DataSettings)]
    train_keys = [f.name for f in fields(SmilesLMConfig) if f.name not in ("name", "data")]
    data_raw = data.get("data") or {}
    train_raw = data.get("train") or {}
    if not isinstance(data_raw, dict) or not isinstance(train_raw, dict):
        raise W2SGError(f"{source}: data and train must be mappings, e.g. train: {{lr: 0.001}}")
    _check_keys(data_raw, data_keys, f"{source}: data")
    _check_keys(train_raw, train_keys, f"{source}: train")
    models_raw = data.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise W2SGError(f"{source}: models must be a non-empty list of {{layers, hidden, steps}}")
    settings = DataSettings(**data_raw)
    models: list[SmilesLMConfig] = []
    for i, entry in enumerate(models_raw):
        where = f"{source}: models[{i}]"
        if not isinstance(entry, dict):
            raise W2SGError(
                f"{where}: must be a mapping like {{layers: 2, hidden: 64, steps: 500}}"
            )
        _check_keys(entry, ["name", *train_keys], where)
        merged = {**train_raw, **entry}
        missing = [k for k in ("layers", "hidden", "steps") if k not in merged]
        if missing:
            raise W2SGError(f"{where}: missing {', '.join(missing)}")
        merged.setdefault("name", f"l{merged['layers']}-h{merged['hidden']}-s{merged['steps']}")
        try:
            config = SmilesLMConfig(**merged, data=settings)
        except TypeError as exc:
            raise W2SGError(f"{where}: invalid settings ({exc})") from None
        config.validate()
        models.append(config)
    names = [m.name for m in models]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise W2SGError(f"{source}: model name {n!r} is used twice; give each its own name")
    return Family(str(data.get("name", Path(source).stem)), tuple(models))


def load_family(path: str | os.PathLike[str]) -> Family:
    """Read and validate a family file (``.yaml``, ``.yml`` or ``.json``)."""
    p = Path(path)
    if not p.is_file():
        raise W2SGError(f"family file {p} not found; pass e.g. examples/molecular/family.yaml")
    from w2sg.data.io import read_text

    text = read_text(p, "family file")
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise W2SGError(f"family file {p}: invalid JSON ({exc}); fix the syntax") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise W2SGError(f"family file {p}: invalid YAML{at}; fix the syntax") from None
    return parse_family(data, source=str(p))


# -- data -------------------------------------------------------------------------------------


def default_root() -> Path:
    """``$W2SG_CACHE_DIR/smiles-lm`` (default ``~/.cache/w2sg/smiles-lm``)."""
    from w2sg.represent.cache import cache_dir

    return cache_dir() / "smiles-lm"


def qm9_smiles() -> list[str]:
    """Every QM9 SMILES of ``qm9pack`` in file order (only the SMILES column is read)."""
    import pandas as pd

    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise W2SGError("QM9 SMILES need qm9pack: pip install --no-deps qm9pack")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    paths = [folder / f"qm9_part{i}.csv" for i in (1, 2, 3)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise W2SGError(f"{missing[0]} is missing; reinstall: pip install --no-deps qm9pack")
    frames = [pd.read_csv(p, usecols=["SMILES"]) for p in paths]
    return pd.concat(frames, ignore_index=True)["SMILES"].dropna().astype(str).tolist()


def split_smiles(smiles: Sequence[str], settings: DataSettings) -> tuple[list[str], list[str]]:
    """A seeded shuffle of ``smiles``: (``limit_smiles`` for training, ``val_smiles`` held out)."""
    order = np.random.default_rng(settings.seed).permutation(len(smiles))
    n_train = min(settings.limit_smiles, len(smiles))
    n_val = min(settings.val_smiles, len(smiles) - n_train)
    train = [smiles[i] for i in order[:n_train]]
    val = [smiles[i] for i in order[n_train : n_train + n_val]]
    return train, val


# -- tokenizer --------------------------------------------------------------------------------


def smiles_tokens(smiles: str) -> list[str]:
    """``smiles`` split by :data:`SMILES_REGEX` (characters it does not match are dropped)."""
    import re

    return re.findall(SMILES_REGEX, smiles)


def build_tokenizer(smiles: Sequence[str], max_length: int = MAX_POSITIONS) -> Any:
    """A ``PreTrainedTokenizerFast``: WordLevel over the SMILES regex, ``[CLS] x [SEP]``.

    The vocabulary is the special tokens, :data:`BASE_TOKENS`, then the other tokens of
    ``smiles`` in sorted order (so the same corpus always gives the same ids).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    seen: set[str] = set()
    for s in smiles:
        seen.update(smiles_tokens(s))
    vocab_list = [*SPECIAL_TOKENS, *BASE_TOKENS]
    vocab_list += sorted(seen - set(vocab_list))
    vocab = {tok: i for i, tok in enumerate(vocab_list)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(SMILES_REGEX), behavior="isolated")
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def _encode(tokenizer: Any, smiles: Sequence[str], max_length: int) -> Any:
    """Padded ``(n, max_length)`` id tensor and ``(n, max_length)`` attention mask."""
    import torch

    encoded = tokenizer(list(smiles), truncation=True, max_length=max_length, padding=False)
    ids = torch.full((len(smiles), max_length), tokenizer.pad_token_id, dtype=torch.long)
    for row, seq in enumerate(encoded["input_ids"]):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return ids, (ids != tokenizer.pad_token_id).long()


def mask_tokens(
    ids: Any, attention: Any, tokenizer: Any, mask_prob: float, generator: Any
) -> tuple[Any, Any]:
    """BERT masking: pick ``mask_prob`` of the non-special tokens; of those 80% → ``[MASK]``,
    10% → a random non-special token, 10% kept. Labels are -100 except at picked positions."""
    import torch

    n_special = len(SPECIAL_TOKENS)
    maskable = (attention == 1) & (ids >= n_special)
    picked = (torch.rand(ids.shape, generator=generator) < mask_prob) & maskable
    labels = torch.where(picked, ids, torch.full_like(ids, -100))
    roll = torch.rand(ids.shape, generator=generator)
    inputs = ids.clone()
    inputs[picked & (roll < 0.8)] = tokenizer.mask_token_id
    random_pos = picked & (roll >= 0.8) & (roll < 0.9)
    random_ids = torch.randint(n_special, len(tokenizer), ids.shape, generator=generator)
    inputs[random_pos] = random_ids[random_pos]
    return inputs, labels


# -- training ---------------------------------------------------------------------------------


def _bert_config(config: SmilesLMConfig, tokenizer: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden,
        num_hidden_layers=config.layers,
        num_attention_heads=config.n_heads,
        intermediate_size=4 * config.hidden,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=1,
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        pad_token_id=tokenizer.pad_token_id,
    )


def _lr_factor(step: int, total: int, warmup: float) -> float:
    """Linear warm-up over ``warmup · total`` steps, then linear decay to 0."""
    n_warm = max(1, int(round(warmup * total)))
    if step < n_warm:
        return (step + 1) / n_warm
    return max(0.0, (total - step) / max(1, total - n_warm))


def _mlm_loss(
    model: Any, ids: Any, attention: Any, tokenizer: Any, config: SmilesLMConfig
) -> float:
    """Mean MLM loss of ``model`` over ``ids`` with a fixed masking (seed 12345), in eval mode."""
    import torch

    generator = torch.Generator().manual_seed(12345)
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids), 256):
            batch, mask = ids[start : start + 256], attention[start : start + 256]
            inputs, labels = mask_tokens(batch, mask, tokenizer, config.mask_prob, generator)
            n = int((labels != -100).sum())
            if n == 0:
                continue
            out = model(input_ids=inputs, attention_mask=mask, labels=labels)
            total += float(out.loss) * n
            count += n
    model.train()
    return total / count if count else float("nan")


def pretrain(
    config: SmilesLMConfig,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    smiles: Sequence[str] | None = None,
    step_callback: Callable[[int, float], None] | None = None,
    force: bool = False,
) -> PretrainResult:
    """Pretrain one family member and save it to ``out_dir/<name>`` (skip if already there).

    ``smiles`` is the corpus to draw from (default: every QM9 SMILES); the training and held-out
    sets are a seeded split of it (:func:`split_smiles`). ``step_callback(step, loss)`` is called
    after every optimisation step. An existing folder with the same settings hash is returned as
    ``skipped``; one with other settings raises unless ``force`` (then it is replaced).
    """
    import torch
    from transformers import BertForMaskedLM

    config.validate()
    root = Path(out_dir).expanduser() if out_dir is not None else default_root()
    final = root / config.name
    digest = config.settings_hash()
    done = read_pretrain_record(final)
    replace = force
    if done is not None and not force:
        if done.get("settings_hash") != digest:
            raise W2SGError(
                f"{final} holds a model {config.name!r} trained with other settings; "
                "delete the folder, rename the model or pass --force"
            )
        problem = verify_pretrained(final, done)
        if problem is None:
            return _result_from_record(final, done, skipped=True)
        print(f"w2sg: note: {final} is damaged ({problem}); training it again", file=sys.stderr)
        replace = True

    corpus = qm9_smiles() if smiles is None else list(smiles)
    train, val = split_smiles(corpus, config.data)
    if not train:
        raise W2SGError("no SMILES to pretrain on; pass a non-empty corpus")

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        torch.manual_seed(config.seed)
        tokenizer = build_tokenizer(train)
        train_ids, train_mask = _encode(tokenizer, train, config.data.max_length)
        val_ids, val_mask = _encode(tokenizer, val, config.data.max_length)
        model = BertForMaskedLM(_bert_config(config, tokenizer)).float()
        model.train()
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: _lr_factor(s, config.steps, config.warmup)
        )
        generator = torch.Generator().manual_seed(config.seed)
        losses: list[float] = []
        order = torch.randperm(len(train_ids), generator=generator)
        cursor = 0
        start = time.perf_counter()
        for step in range(config.steps):
            if cursor + config.batch_size > len(order):
                order = torch.randperm(len(train_ids), generator=generator)
                cursor = 0
            index = order[cursor : cursor + config.batch_size]
            cursor += config.batch_size
            batch, mask = train_ids[index], train_mask[index]
            longest = int(mask.sum(1).max())
            batch, mask = batch[:, :longest], mask[:, :longest]
            inputs, labels = mask_tokens(batch, mask, tokenizer, config.mask_prob, generator)
            loss = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise W2SGError(
                    f"model {config.name!r}: MLM loss became {value} at step {step}; lower lr"
                )
            losses.append(value)
            if step_callback is not None:
                step_callback(step, value)
        seconds = time.perf_counter() - start
        val_loss = _mlm_loss(model, val_ids, val_mask, tokenizer, config) if val else None
    finally:
        torch.set_num_threads(previous_threads)

    tail = max(1, len(losses) // 10)
    record = {
        "name": config.name,
        "model_name": config.model_name,
        "settings": config.to_dict(),
        "settings_hash": digest,
        "parameters": int(sum(p.numel() for p in model.bert.parameters())),
        "vocab_size": len(tokenizer),
        "n_train_smiles": len(train),
        "n_val_smiles": len(val),
        "loss_curve": losses,
        "final_loss": float(np.mean(losses[-tail:])),
        "val_loss": val_loss,
        "seconds": seconds,
        "torch": torch.__version__,
    }
    _save(encoder_of(model, config.seed), tokenizer, config, record, final, force=replace)
    return _result_from_record(final, record, skipped=False)


def encoder_of(mlm: Any, seed: int = 0) -> Any:
    """The ``BertModel`` inside a ``BertForMaskedLM``, with a (seeded, unused) pooler, so that
    ``AutoModel.from_pretrained`` loads the saved folder with no missing or unexpected weights.
    The MLM head is not kept: the folder is a representation, not a language model."""
    import torch
    from transformers import BertModel

    torch.manual_seed(seed)
    encoder = BertModel(mlm.config, add_pooling_layer=True)
    missing, unexpected = encoder.load_state_dict(mlm.bert.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("pooler.") for k in missing)
    return encoder.eval()


def _save(
    model: Any, tokenizer: Any, config: SmilesLMConfig, record: dict[str, Any], final: Path,
    *, force: bool,
) -> None:  # fmt: skip
    """Write the HF folder under a temporary name, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{config.name}-", dir=final.parent))
    from w2sg.represent.extract import quiet_transformers

    with quiet_transformers():
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            record = {**record, "files": _file_hashes(tmp)}
            (tmp / PRETRAIN_FILE).write_text(json.dumps(record, indent=1) + "\n")
            entry = {
                "name": config.model_name,
                "kind": "smiles",
                "backend": "transformers",
                "dim": config.hidden,
                "layers": config.layers,
                "pooling": "mean",
                "description": (
                    f"SMILES BERT pretrained here by MLM on QM9: {config.layers} layers, "
                    f"hidden {config.hidden}, {config.steps} steps"
                ),
            }
            (tmp / REGISTRY_FILE).write_text(json.dumps(entry, indent=1) + "\n")
            if force and final.exists():
                shutil.rmtree(final)
            atomic.make_shareable(tmp)
            os.replace(tmp, final)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if read_pretrain_record(final) is None:
                raise W2SGError(f"could not save {final} ({exc}); check the folder") from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _file_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a saved model folder, by name (kept in ``pretrain.json``)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def verify_pretrained(folder: Path, record: dict[str, Any]) -> str | None:
    """Why a finished model folder cannot be used as it is, or ``None``: every file listed in its
    record must be there with the SHA-256 recorded when it was saved. Folders saved before the
    hashes were recorded are checked for a parseable ``config.json`` and a ``model.safetensors``
    whose header parses."""
    files = record.get("files")
    if isinstance(files, dict) and files:
        for name, expected in files.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
                return f"{name} differs from the file saved after training"
        return None
    try:
        json.loads((folder / "config.json").read_text(encoding="utf-8"))
        with (folder / "model.safetensors").open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            json.loads(handle.read(size).decode("utf-8"))
    except (OSError, ValueError) as exc:
        return f"config.json or model.safetensors cannot be read ({type(exc).__name__})"
    return None


def read_pretrain_record(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``pretrain.json`` of a finished model folder, or ``None`` when there is none."""
    path = Path(folder) / PRETRAIN_FILE
    if not path.is_file() or not (Path(folder) / "model.safetensors").is_file():
        return None
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except ValueError:
        return None
    return record


def _result_from_record(folder: Path, record: dict[str, Any], *, skipped: bool) -> PretrainResult:
    settings = record["settings"]
    return PretrainResult(
        name=record["name"],
        folder=folder,
        layers=int(settings["layers"]),
        hidden=int(settings["hidden"]),
        steps=int(settings["steps"]),
        parameters=int(record["parameters"]),
        final_loss=float(record["final_loss"]),
        val_loss=None if record.get("val_loss") is None else float(record["val_loss"]),
        seconds=float(record["seconds"]),
        skipped=skipped,
    )


def pretrain_family(
    family: Family,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    limit_smiles: int | None = None,
    on_model: Callable[[SmilesLMConfig], Callable[[int, float], None] | None] | None = None,
    force: bool = False,
) -> list[PretrainResult]:
    """Pretrain every member of ``family`` in order (finished ones are skipped).

    ``limit_smiles`` overrides the family's ``data.limit_smiles`` (it changes the settings hash).
    ``on_model(config)`` may return a per-step callback for progress display.
    """
    members = [
        replace(m, data=replace(m.data, limit_smiles=limit_smiles)) if limit_smiles else m
        for m in family.models
    ]
    root = Path(out_dir).expanduser() if out_dir is not None else default_root()
    corpus: list[str] | None = None
    results = []
    for member in members:
        if corpus is None and (force or read_pretrain_record(root / member.name) is None):
            corpus = qm9_smiles()
        callback = on_model(member) if on_model is not None else None
        results.append(pretrain(member, root, smiles=corpus, step_callback=callback, force=force))
    return results


# -- registry ---------------------------------------------------------------------------------


def trained_models(root: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """``{"smiles-lm/<name>": folder}`` for every finished model under ``root``."""
    base = Path(root).expanduser() if root is not None else default_root()
    if not base.is_dir():
        return {}
    found = {}
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not (entry / REGISTRY_FILE).is_file():
            continue
        if read_pretrain_record(entry) is not None:
            found[NAME_PREFIX + entry.name] = entry
    return found


def model_spec(folder: str | os.PathLike[str]) -> ModelSpec:
    """The :class:`~w2sg.represent.models.ModelSpec` of a trained model folder.

    ``hub`` is the folder itself: :func:`~w2sg.represent.models.resolve_model` loads an
    unregistered spec whose ``hub`` is an existing folder from that folder (source ``local``).
    """
    from w2sg.represent.models import ModelSpec

    entry = json.loads((Path(folder) / REGISTRY_FILE).read_text())
    return ModelSpec(
        entry["name"], entry["kind"], entry["backend"], int(entry["dim"]), entry["description"],
        needs=("transformers",), hub=str(Path(folder).resolve()), layers=int(entry["layers"]),
        pooling=entry["pooling"], install="w2sg pretrain-smiles --family FAMILY",
    )  # fmt: skip


def discovered_spec(name: str, root: str | os.PathLike[str] | None = None) -> ModelSpec | None:
    """The spec of ``smiles-lm/<name>`` when that model is trained under ``root``, else ``None``.

    The hook for the model registry: ``get_spec`` can return this for an unregistered
    ``smiles-lm/...`` name, so every process (sweep workers included) finds the trained models by
    name without registering them first.
    """
    if not name.startswith(NAME_PREFIX):
        return None
    base = Path(root).expanduser() if root is not None else default_root()
    folder = base / name[len(NAME_PREFIX) :]
    if "/" in name[len(NAME_PREFIX) :] or read_pretrain_record(folder) is None:
        return None
    if not (folder / REGISTRY_FILE).is_file():
        return None
    return model_spec(folder)


def embed_smiles(
    folder: str | os.PathLike[str],
    smiles: Sequence[str],
    *,
    layer: int | str = -1,
    pooling: str | None = "mean",
    batch_size: int = 64,
    cache: bool = True,
) -> np.ndarray:
    """Mean-pooled representations ``(n, hidden)`` of ``smiles`` by the model in ``folder``.

    Goes through :func:`w2sg.represent.embed` with the folder as the model (so results are cached
    by the weights' hash).
    """
    from w2sg.represent import embed

    if read_pretrain_record(folder) is None:
        raise W2SGError(f"{folder} holds no trained SMILES model; run w2sg pretrain-smiles")
    return embed(
        str(Path(folder).resolve()), list(smiles), layer=layer, pooling=pooling,
        batch_size=batch_size, cache=cache, progress=False,
    )  # fmt: skip
