"""The Python API: what ``import w2sg`` offers, and what the command line calls.

``w2sg run``, ``w2sg metric``, ``w2sg embed`` and ``w2sg sweep`` parse their arguments and call
:func:`run`, :func:`metric`, :func:`embed` and :func:`sweep` of this module, so a notebook and the
command line give the same numbers by construction::

    import w2sg
    result = w2sg.run(weak=W, strong=S, labels=y)             # arrays or file paths
    result = w2sg.run(dataset="rotten_tomatoes", weak="static-64", strong="minilm-l6", limit=4000)
    print(result.summary())          # the table `w2sg run` prints
    result.to_frame()                # tidy pandas: model × split × metric
    result.plot()                    # reliability diagrams and the PGR bar
    result.save("runs/mine")         # config.json, metrics.json, predictions.npz
    result.to_dict()                 # the JSON object of `w2sg run --json`

Options are the :class:`~w2sg.config.RunConfig` field names (``head="ridge"``,
``strong_ridge=0.0``, ``n_bootstrap=200``, …) or the command-line option of the same name with
``-`` as ``_`` (``bootstrap=200``, ``no_theory=True``, ``k_weak=16``, ``gavish_donoho=True``), so
any field a later change adds to RunConfig is an option here without further code.

Nothing heavy is imported until it is needed: ``import w2sg`` loads neither torch nor pandas nor
matplotlib.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from w2sg.config import (
    KERNEL_OPTIONS,
    MODELS,
    WEAK_FINETUNE_OPTIONS,
    FinetuneConfig,
    KernelConfig,
    RunConfig,
    default_head,
)
from w2sg.errors import W2SGError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from w2sg.experiments.executors import SweepSummary
    from w2sg.experiments.sweep import SweepConfig
    from w2sg.pipeline import RunResult

#: An input given as an array (anything ``numpy.asarray`` takes) or as a file path
#: (``.npy``, ``.npz`` or ``file.npz:KEY``, ``.parquet``, ``.csv``).
ArrayInput = np.ndarray | str | os.PathLike[str] | Sequence[Any]

__all__ = [
    "Embedding",
    "MetricResult",
    "Result",
    "embed",
    "load_result",
    "load_store",
    "metric",
    "run",
    "run_config",
    "sweep",
]

# Command-line spellings of RunConfig fields (``--bootstrap``) and the negated switches.
_ALIASES = {"bootstrap": "n_bootstrap"}
_NEGATED = {"no_theory": "theory", "no_bounds": "bounds"}
_KERNEL_OPTIONS = (*KERNEL_OPTIONS, "center", "no_center")
#: ``weak_lr``, ``weak_epochs``, …: the weak model's own fine-tuning settings (``weak_finetune``).
_WEAK_FT_OPTIONS = {f"weak_{name}": name for name in WEAK_FINETUNE_OPTIONS}


# --------------------------------------------------------------------------------------------
# Configuration


def run_config(
    config: RunConfig | Mapping[str, Any] | None = None,
    *,
    data_task: str | None = None,
    **options: Any,
) -> RunConfig:
    """A validated :class:`RunConfig` from ``config`` (a RunConfig or its ``to_dict()`` form;
    default ``RunConfig()``) with ``options`` applied.

    Without ``config``, ``task`` defaults to ``data_task`` (what the data says), else
    classification, and ``head`` to the task's :func:`~w2sg.config.default_head` (ridge for
    regression, softmax otherwise). An option given as ``None`` counts as not given.

    ``options`` are RunConfig field names (``head``, ``loss``, ``weak_ridge``, ``fractions`` as a
    sequence or ``"0.4,0.4,0.2"``, ``kernel`` as a KernelConfig or mapping, …), the command-line
    spellings ``bootstrap`` (= ``n_bootstrap``), ``no_theory``, ``no_bounds``, and the kernel
    options of :meth:`KernelConfig.from_options` (``k_weak``, ``k_strong``, ``variance``,
    ``noise_floor``, ``gavish_donoho``, ``mp_edge``, ``parallel_analysis``, ``hard``,
    ``gamma_weak``, ``gamma_strong``, ``center`` or ``no_center``; none: the default rule,
    ``mp_edge``). A RunConfig field that holds a sub-configuration (a dataclass) takes that
    dataclass or a mapping, and its fields are options by their own names where no RunConfig
    field has the name. Dashes in names are read as underscores. An unknown name is a
    :class:`~w2sg.errors.W2SGError` listing the known ones.

    The weak model's own fine-tuning settings (``weak_train`` = ``full``/``lora``): the options
    ``weak_lr``, ``weak_head_lr``, ``weak_epochs``, ``weak_batch_size``, ``weak_warmup``,
    ``weak_lora_rank``, ``weak_lora_alpha``, or ``weak_finetune`` (a FinetuneConfig or a mapping
    of its fields); what they leave unset is the student's (``finetune``), device and dtype
    always. Settings equal to the student's are stored as ``weak_finetune = None``.
    """
    if config is None:
        base = RunConfig()
    elif isinstance(config, RunConfig):
        base = config
    elif isinstance(config, Mapping):
        base = RunConfig.from_dict(dict(config))
    else:
        raise W2SGError(f"config must be a RunConfig or a mapping, got {type(config).__name__}")
    fields = {f.name for f in dataclasses.fields(base)}
    subs = _sub_configs(base)
    updates: dict[str, Any] = {}
    kernel: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    weak_ft: dict[str, Any] = {}
    unknown = []
    for raw_name, value in options.items():
        name = raw_name.replace("-", "_")
        owner = next((sub for sub, names in subs.items() if name in names), None)
        if name in _KERNEL_OPTIONS:
            kernel[name] = value
        elif name in _WEAK_FT_OPTIONS:
            if value is not None:
                weak_ft[_WEAK_FT_OPTIONS[name]] = value
        elif name in _NEGATED:
            if value:
                updates[_NEGATED[name]] = False
        elif _ALIASES.get(name, name) in fields:
            if value is not None:
                updates[_ALIASES.get(name, name)] = value
        elif owner is not None:
            if value is not None:
                nested.setdefault(owner, {})[name] = value
        else:
            unknown.append(raw_name)
    if unknown:
        known = (
            fields | set(_ALIASES) | set(_NEGATED) | set(_KERNEL_OPTIONS) | set(_WEAK_FT_OPTIONS)
        )
        known |= {name for names in subs.values() for name in names}
        raise W2SGError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the options are {', '.join(sorted(known))}"
        )
    if config is None:
        updates.setdefault("task", data_task or base.task)
        updates.setdefault("head", default_head(updates["task"]))
    if "fractions" in updates:
        updates["fractions"] = _fractions(updates["fractions"])
    # epochs, lr and batch_size set the fine-tuning when a model is fine-tuned, else Adam heads.
    modes = (updates.get("train", base.train), updates.get("weak_train", base.weak_train))
    if any(mode != "probe" for mode in modes):
        for name in ("epochs", "lr", "batch_size"):
            if name in updates:
                nested.setdefault("finetune", {})[name] = updates.pop(name)
    try:
        weak_given = updates.pop("weak_finetune", None)
        for name, value in list(updates.items()):  # a sub-config given as a mapping
            factory: Any = type(getattr(base, name))
            if isinstance(value, Mapping) and factory is KernelConfig:
                updates[name] = KernelConfig.from_mapping(dict(value))
            elif isinstance(value, Mapping) and hasattr(factory, "__dataclass_fields__"):
                updates[name] = factory(**dict(value))
        for owner, values in nested.items():  # a sub-config's fields given by name
            if owner in updates:
                raise W2SGError(f"give {owner}= or its options {sorted(values)}, not both")
            updates[owner] = dataclasses.replace(getattr(base, owner), **values)
        built = _kernel_from_options(kernel)
        if built is not None:
            if "kernel" in updates:
                raise W2SGError("give kernel= or the kernel options by name, not both")
            updates["kernel"] = built
        student = updates.get("finetune", base.finetune)
        updates["weak_finetune"] = _weak_finetune(base, student, weak_given, weak_ft)
        config_out = dataclasses.replace(base, **updates)
    except TypeError as exc:  # a sub-config mapping with a wrong key
        raise W2SGError(f"bad run configuration: {exc}") from None
    config_out.validate()
    if config_out.weak_finetune == config_out.finetune:  # one run, one hash
        config_out = dataclasses.replace(config_out, weak_finetune=None)
    return config_out


def _weak_finetune(
    base: RunConfig, student: FinetuneConfig, given: Any, options: dict[str, Any]
) -> FinetuneConfig | None:
    """The weak model's fine-tuning settings of :func:`run_config`: ``given`` (``weak_finetune=``,
    a FinetuneConfig, or a mapping whose missing fields are the student's) or ``options``
    (``weak_lr=``, … over the base config's weak settings, else the student's); ``None`` when
    neither sets any. Device and dtype are the student's unless ``given`` names them."""
    if given is not None and options:
        names = ", ".join(f"weak_{k}" for k in sorted(options))
        raise W2SGError(f"give weak_finetune= or its options {names}, not both")
    explicit = isinstance(given, FinetuneConfig) or (
        isinstance(given, Mapping) and ("device" in given or "dtype" in given)
    )
    if isinstance(given, FinetuneConfig):
        weak = given
    elif isinstance(given, Mapping):
        weak = dataclasses.replace(student, **dict(given))
    elif given is not None:
        raise W2SGError(
            f"weak_finetune takes a FinetuneConfig or a mapping, got {type(given).__name__}"
        )
    elif options:
        weak = dataclasses.replace(base.weak_finetune or student, **options)
    elif base.weak_finetune is not None:
        weak = base.weak_finetune
    else:
        return None
    if not explicit:
        weak = dataclasses.replace(weak, device=student.device, dtype=student.dtype)
    return weak


def _sub_configs(config: RunConfig) -> dict[str, set[str]]:
    """RunConfig fields that hold a dataclass (a sub-configuration, other than ``kernel``,
    whose options are the ones of :meth:`KernelConfig.from_options`) → the names of its fields
    that are options of their own (not also a RunConfig field, which takes the name)."""
    top = {f.name for f in dataclasses.fields(config)}
    out: dict[str, set[str]] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        # kernel has options of its own; weak_finetune is read by _weak_finetune
        if f.name not in ("kernel", "weak_finetune") and dataclasses.is_dataclass(value):
            out[f.name] = {g.name for g in dataclasses.fields(value)} - top
    return out


def _fractions(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        value = value.split(",")
    try:
        return tuple(float(f) for f in value)
    except (TypeError, ValueError):
        raise W2SGError(
            f"fractions takes numbers like (0.4, 0.4, 0.2) or '0.4,0.4,0.2', got {value!r}"
        ) from None


# --------------------------------------------------------------------------------------------
# Inputs: array files or arrays, a data file with columns, or a registered / hub dataset


@dataclass
class RunInputs:
    """What a run (or ``w2sg epochs``) works on: representations, labels and what the data says
    about itself. ``dataset`` is the loaded :class:`~w2sg.data.datasets.Dataset` with a data
    file or a named dataset (``None`` with arrays); ``given_splits`` its own split per row."""

    weak: np.ndarray | None
    strong: np.ndarray
    labels: np.ndarray
    weak_predictions: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    ids: np.ndarray | None = None
    dataset: Any = None
    given_splits: tuple[str, ...] | None = None


#: The column options of a data file (``--text-column`` …), the same names in the API.
COLUMN_OPTIONS: tuple[str, ...] = (
    "text_column",
    "label_column",
    "id_column",
    "split_column",
    "smiles_column",
    "label_order",
    "text_template",
)


def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def _array(value: ArrayInput, what: str) -> tuple[np.ndarray, dict[str, Any]]:
    """An array from an array-like or a file path, and its provenance entry (path and file
    SHA-256, or for an in-memory array its shape, dtype and the SHA-256 of its bytes)."""
    if isinstance(value, str | os.PathLike):
        from w2sg.data.io import file_sha256, load_array

        text = os.fspath(value)
        arr = load_array(text, what)
        return arr, {"path": text, "sha256": file_sha256(text.split(".npz:")[0])}
    arr = np.asarray(value)
    if arr.dtype == object:  # e.g. a pandas column of class names, or of numbers with None
        if all(isinstance(v, str) for v in arr.ravel()):
            arr = arr.astype(str)
        else:
            try:
                arr = arr.astype(float)
            except (TypeError, ValueError):
                raise W2SGError(
                    f"{what}: mixed values (numbers, text, None) cannot be used; pass numbers "
                    "or class names"
                ) from None
    digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    return arr, {"array": {"shape": list(arr.shape), "dtype": str(arr.dtype)}, "sha256": digest}


def load_data(
    data: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    *,
    text_column: str | Sequence[str] | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    split_column: str | None = None,
    smiles_column: str | None = None,
    label_order: str | Sequence[str] | None = None,
    text_template: str | None = None,
    task: str | None = None,
    limit: int | None = None,
    data_seed: int = 0,
    max_words: int | None = None,
) -> Any:
    """The :class:`~w2sg.data.datasets.Dataset` of a data file (``data``: CSV, TSV, JSONL, JSON,
    Parquet, with the column options; docs/datasets.md) or of a named ``dataset`` (registered,
    or a hub dataset, which also takes the column options), else ``None``. Nothing is embedded.

    ``text_column`` is one column or several (a list or ``"question,answer"``) joined by
    ``text_template``; ``label_order`` names the classes in class order (``"neg,pos"``; default:
    sorted); ``limit`` keeps a seeded random subset (``data_seed``); ``max_words`` cuts texts.
    """
    column_values = {
        "text_column": text_column,
        "label_column": label_column,
        "id_column": id_column,
        "split_column": split_column,
        "smiles_column": smiles_column,
        "label_order": label_order,
        "text_template": text_template,
    }
    given = [f"--{k.replace('_', '-')}" for k, v in column_values.items() if v]
    if data and dataset:
        raise W2SGError("give --data FILE or --dataset NAME, not both")
    if not data and not dataset:
        if given:
            raise W2SGError(f"{given[0]} names a column of --data FILE (or --dataset hf:...)")
        return None
    select: dict[str, Any] = {"limit": limit, "seed": data_seed, "max_words": max_words}
    from w2sg.data.files import Columns, parse_column_list

    columns = Columns(
        text=parse_column_list(text_column),
        label=label_column,
        id=id_column,
        split=split_column,
        smiles=smiles_column,
        label_order=parse_column_list(label_order) if label_order else None,
        template=text_template,
        task=task,
    )
    if data:
        from w2sg.data.files import load_file

        return load_file(os.fspath(data), columns, **select)
    from w2sg.data.datasets import load_dataset

    return load_dataset(str(dataset), **select, columns=columns if given else None)


def describe_data(dataset: Any) -> list[str]:
    """Lines that say what was read: rows used, left out, and the label mapping."""
    prov = dataset.provenance
    lines = []
    if "n_rows" in prov:
        lines.append(
            f"data: {dataset.name}: {prov['n_rows']} rows read, {prov['n_used']} used "
            f"({dataset.kind}, task {dataset.task})"
        )
    else:
        lines.append(f"data: {dataset.name}: {len(dataset)} examples ({dataset.task})")
    lines += [f"  {note}" for note in dataset.notes]
    if dataset.classes:
        how = "as given by --label-order" if prov.get("label_order") == "given" else "sorted"
        if "hub" in prov and "columns" not in prov:
            how = f"as registered, following {prov.get('reference')}"
        mapping = ", ".join(f"{c!r} → {i}" for i, c in enumerate(dataset.classes))
        lines.append(f"  labels: {mapping} ({how})")
    if prov.get("template"):
        lines.append(f"  text template: {prov['template']!r}")
    if dataset.splits:
        counts = {s: dataset.splits.count(s) for s in dict.fromkeys(dataset.splits)}
        lines.append(
            "  splits given by the data: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    return lines


def _split_model(spec: str) -> tuple[str, int | str]:
    if "@" in spec:
        name, layer = spec.rsplit("@", 1)
        return name, (int(layer) if layer.lstrip("-").isdigit() else layer)
    return spec, -1


def embed_dataset(dataset: Any, model: str, what: str, pooling: str | None = None) -> np.ndarray:
    """The representation of every input of ``dataset`` by ``model`` (``NAME`` or
    ``NAME@LAYER``) with ``pooling`` (default: the model's own), through the embedding cache
    (keyed by the inputs' content)."""
    try:
        from w2sg.represent.extract import embed as extract
        from w2sg.represent.models import get_spec
    except ImportError as exc:
        raise W2SGError(
            f"{what} with a dataset needs the representation extras ({exc.name} is missing); "
            "run `make demo` or `pip install -e .[text]`"
        ) from None
    name, layer = _split_model(model)
    spec = get_spec(name)
    if spec.kind != dataset.kind:
        raise W2SGError(
            f"{what}: model {name!r} reads {spec.kind} but {dataset.name} holds {dataset.kind}; "
            f"pick a {dataset.kind} model (w2sg models)"
        )
    return np.array(extract(name, dataset.inputs, layer=layer, pooling=pooling), dtype=np.float32)


def data_provenance(
    dataset: Any, *, limit: int | None = None, data_seed: int = 0, max_words: int | None = None
) -> dict[str, Any]:
    """The provenance of a loaded dataset: its source, columns, label mapping and notes."""
    prov: dict[str, Any] = {
        "dataset": dataset.name,
        "data": {**dataset.provenance, "notes": list(dataset.notes)},
        "limit": limit,
        "data_seed": data_seed,
        "max_words": max_words,
        "n_examples": len(dataset),
    }
    if dataset.classes and "label_mapping" not in prov["data"]:
        prov["data"]["label_mapping"] = {c: i for i, c in enumerate(dataset.classes)}
    return prov


def load_inputs(
    weak: ArrayInput | None = None,
    strong: ArrayInput | None = None,
    labels: ArrayInput | None = None,
    *,
    weak_predictions: ArrayInput | None = None,
    loaded: Any = None,
    limit: int | None = None,
    data_seed: int = 0,
    max_words: int | None = None,
    pooling: str | None = None,
) -> RunInputs:
    """The inputs of a run: a ``loaded`` dataset (:func:`load_data`) embedded by the models
    ``weak`` and ``strong`` (``NAME`` or ``NAME@LAYER``, token ``pooling`` by default the
    model's own), or arrays / array files ``weak`` (or ``weak_predictions``), ``strong`` and
    ``labels``."""
    if loaded is not None:
        return _dataset_inputs(
            loaded, weak, strong, labels, weak_predictions, limit, data_seed, max_words, pooling
        )
    if pooling is not None:
        raise W2SGError("--pooling applies to model names with --data/--dataset, not to arrays")
    if strong is None or labels is None or (weak is None and weak_predictions is None):
        raise W2SGError(
            "give --weak W.npy (or --weak-predictions P.npy), --strong S.npy and --labels y.npy, "
            "or --data FILE / --dataset NAME with model names"
        )
    given = {
        "weak": weak,
        "strong": strong,
        "labels": labels,
        "weak_predictions": weak_predictions,
    }
    arrays: dict[str, np.ndarray | None] = {}
    inputs: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            arrays[name] = None
            continue
        arrays[name], inputs[name] = _array(value, f"--{name.replace('_', '-')}")
    strong_arr, labels_arr = arrays["strong"], arrays["labels"]
    assert strong_arr is not None and labels_arr is not None
    return RunInputs(
        weak=arrays["weak"],
        strong=strong_arr,
        labels=labels_arr,
        weak_predictions=arrays["weak_predictions"],
        provenance={"inputs": inputs},
    )


def _dataset_inputs(
    dataset: Any,
    weak: Any,
    strong: Any,
    labels: Any,
    weak_predictions: Any,
    limit: int | None,
    data_seed: int,
    max_words: int | None,
    pooling: str | None = None,
) -> RunInputs:
    if labels is not None:
        raise W2SGError(
            "with --data or --dataset the labels come from the data; drop --labels "
            "(a data file names its label column with --label-column)"
        )
    if weak_predictions is not None:
        raise W2SGError("--weak-predictions is for array inputs; with --data give --weak MODEL")
    if not isinstance(weak, str) or not isinstance(strong, str):
        raise W2SGError(
            "--data and --dataset need --weak MODEL and --strong MODEL (see `w2sg models`)"
        )
    weak_arr = embed_dataset(dataset, weak, "--weak", pooling)
    strong_arr = embed_dataset(dataset, strong, "--strong", pooling)
    from w2sg.represent.models import model_fingerprint

    names = [_split_model(m)[0] for m in (weak, strong)]
    prov = data_provenance(dataset, limit=limit, data_seed=data_seed, max_words=max_words)
    prov.update(
        models={name: model_fingerprint(name) for name in names},
        weak_model=weak,
        strong_model=strong,
    )
    if pooling is not None:
        prov["pooling"] = pooling
    return RunInputs(
        weak_arr, strong_arr, dataset.labels, None, prov, ids=np.asarray(dataset.ids),
        dataset=dataset, given_splits=dataset.splits or None,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# One run


def run(
    weak: ArrayInput | Embedding | None = None,
    strong: ArrayInput | Embedding | None = None,
    labels: ArrayInput | None = None,
    *,
    weak_predictions: ArrayInput | None = None,
    data: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    text_column: str | Sequence[str] | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    split_column: str | None = None,
    smiles_column: str | None = None,
    label_order: str | Sequence[str] | None = None,
    text_template: str | None = None,
    limit: int | None = None,
    data_seed: int = 0,
    max_words: int | None = None,
    pooling: str | None = None,
    ids: ArrayInput | None = None,
    config: RunConfig | Mapping[str, Any] | None = None,
    echo: Callable[[str], Any] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Result:
    """Train the weak model, label w2s_train with it, train the w2s student and the strong
    ceiling, and score all three: the run of ``w2sg run``.

    Args:
        weak: the weak representation ``(n, d_w)``, as an array, a file or an
            :class:`Embedding`; with ``data`` or ``dataset``, a model name (``NAME`` or
            ``NAME@LAYER``, see ``w2sg models``).
        strong: the strong representation ``(n, d_s)`` (array, file, Embedding) or a model name.
        labels: ground truth per row (class labels, also as strings, regression values or
            positive-class probabilities), as an array or a file. Not with ``data``/``dataset``;
            with :class:`Embedding` inputs of a dataset, their labels by default.
        weak_predictions: instead of ``weak``, a labeller's predictions for every row.
        data: a data file (CSV, TSV, JSONL, JSON, Parquet) of texts or SMILES with labels, read
            with the column options ``text_column`` (one, or several joined by
            ``text_template``), ``label_column``, ``id_column``, ``split_column`` (the file's own
            splits), ``smiles_column`` and ``label_order`` (docs/datasets.md).
        dataset: a registered or hub dataset (``w2sg datasets``; it also takes the column
            options); ``weak``/``strong`` are then model names.
        limit: with ``data``/``dataset``, a seeded random subset of this many examples.
        data_seed: the seed of that subset (default 0, as in sweeps).
        max_words: with texts, cut each text to its first N words.
        pooling: with model names, the token pooling of both models (``mean``, ``cls``,
            ``last``, ``max``; default: each model's own).
        ids: content ids per row, which decide the splits (default: the ids of
            :class:`Embedding` inputs, which hash the texts, so that ``run(weak=embed(M1, D),
            strong=embed(M2, D))`` is the run of ``dataset=D``; else hashes of the rows).
        config: a base :class:`RunConfig` (or its dict form) that ``options`` update.
        echo: called with each line that describes the data read (rows used, label mapping),
            before the extraction; ``print`` shows them. Default: silent.
        checkpoint_dir: with ``train``/``weak_train`` = ``full`` or ``lora``, where the epoch
            checkpoints go (a killed run resumes from them; docs/finetune.md). Default: none.
        **options: RunConfig fields and command-line options by name, e.g. ``task="regression"``,
            ``head="ridge"``, ``strong_ridge=0.0``, ``bootstrap=200``, ``k_weak=16``
            (see :func:`run_config`). ``task`` defaults to what the data says, ``head`` to the
            task's default (ridge for regression, else softmax).

    Several weak models (``weak=[W1, W2, W3]``: files, 2-D arrays, embeddings or model names;
    ``w2sg run --weak A B C``) are each trained as the weak model and their outputs combined into
    one set of weak labels by ``combine`` (``average``, ``metric``, ``learned``,
    ``learned_labelled``, ``vote``, ``soft_vote``; default average; docs/ensembles.md); the
    result records the rule and the weights under ``ensemble``.

    Returns:
        a :class:`Result`; ``result.to_dict()`` is the ``w2sg run --json`` object.
    """
    members = _weak_members(weak)
    if members is not None and len(members) == 1:
        weak, members = members[0], None
    loaded = load_data(
        data,
        dataset,
        text_column=text_column,
        label_column=label_column,
        id_column=id_column,
        split_column=split_column,
        smiles_column=smiles_column,
        label_order=label_order,
        text_template=text_template,
        task=options.get("task"),
        limit=limit,
        data_seed=data_seed,
        max_words=max_words,
    )
    data_task = loaded.task if loaded is not None else None
    given_splits: tuple[str, ...] | None = None
    embedded = [x for x in (weak, strong) if isinstance(x, Embedding)]
    if embedded and loaded is None:
        if len(embedded) == 2 and embedded[0].ids != embedded[1].ids:
            raise W2SGError(
                "weak and strong are embeddings of different rows; embed the same inputs "
                "(same dataset, limit and seed) with both models"
            )
        if ids is None:  # the inputs' content ids decide the splits, as with --dataset
            ids = np.asarray(embedded[0].ids)
        if labels is None:
            labels = embedded[0].labels
            data_task = embedded[0].meta.get("task")
            given_splits = tuple(embedded[0].meta.get("splits") or ()) or None
    if options.get("weak_train") is None:
        options["weak_train"] = default_weak_train(weak, options.get("train"), loaded)
    cfg = run_config(config, data_task=data_task, **options)
    check_finetune(cfg, weak, strong, loaded)
    if loaded is not None and echo is not None:  # what was read, before the extraction
        for line in describe_data(loaded):
            echo(line)
    if members is not None:
        return _run_several(members, strong, labels, cfg, loaded, ids, limit, data_seed, max_words,
                            checkpoint_dir)  # fmt: skip
    if cfg.combine is not None:
        raise W2SGError("--combine needs several weak models: --weak A B [C ...]")
    inputs = load_inputs(
        weak.array if isinstance(weak, Embedding) else weak,
        strong.array if isinstance(strong, Embedding) else strong,
        labels,
        weak_predictions=weak_predictions,
        loaded=loaded,
        limit=limit,
        data_seed=data_seed,
        max_words=max_words,
        pooling=pooling,
    )
    from w2sg.pipeline import run_pipeline

    result = run_pipeline(
        inputs.weak,
        inputs.strong,
        inputs.labels,
        cfg,
        weak_predictions=inputs.weak_predictions,
        ids=inputs.ids if ids is None else np.asarray(ids),
        provenance=inputs.provenance,
        given_splits=inputs.given_splits or given_splits,
        learners=finetune_learners(cfg, weak, strong, loaded, checkpoint_dir),
    )
    return Result.from_run(result)


def _weak_members(weak: Any) -> list[Any] | None:
    """The weak models of ``weak`` when it lists several (names, files, 2-D arrays, embeddings),
    else ``None`` (one weak input, which may itself be a nested list of rows)."""
    if not isinstance(weak, list | tuple) or not weak:
        return None

    def one(x: Any) -> bool:
        return isinstance(x, str | os.PathLike | Embedding) or (
            isinstance(x, np.ndarray) and x.ndim == 2
        )

    return list(weak) if all(one(x) for x in weak) else None


def _run_several(
    members: list[Any],
    strong: Any,
    labels: Any,
    cfg: RunConfig,
    loaded: Any,
    ids: Any,
    limit: int | None,
    data_seed: int,
    max_words: int | None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> Result:
    """:func:`run` with several weak models: :func:`w2sg.experiments.ensemble.run_ensemble`
    (with ``train`` = ``full``/``lora``, a fine-tuned strong student; the members are probes)."""
    from w2sg.experiments.ensemble import run_ensemble

    names = [
        str(m) if isinstance(m, str | os.PathLike) else f"weak_{i + 1}"
        for i, m in enumerate(members)
    ]
    if len(set(names)) != len(names):
        raise W2SGError("a weak model is given twice; give each weak model once")
    reprs, member_inputs = [], []
    models: dict[str, Any] = {}
    inputs = None
    for m in members:
        inputs = load_inputs(
            m.array if isinstance(m, Embedding) else m,
            strong.array if isinstance(strong, Embedding) else strong,
            labels, loaded=loaded, limit=limit, data_seed=data_seed, max_words=max_words,
        )  # fmt: skip
        assert inputs.weak is not None
        reprs.append(inputs.weak)
        prov = inputs.provenance
        member_inputs.append(prov.get("inputs", {}).get("weak") or prov.get("weak_model"))
        models.update(prov.get("models") or {})
    assert inputs is not None
    provenance = dict(inputs.provenance)
    provenance.pop("weak_model", None)
    if models:
        provenance["models"] = models
    if "inputs" in provenance:
        provenance["inputs"] = {k: v for k, v in provenance["inputs"].items() if k != "weak"}
    provenance["weak_inputs"] = member_inputs
    result = run_ensemble(
        reprs, inputs.strong, inputs.labels, cfg, names=names,
        ids=inputs.ids if ids is None else np.asarray(ids), provenance=provenance,
        given_splits=inputs.given_splits or None,
        learners=finetune_learners(cfg, None, strong, loaded, checkpoint_dir),
    )  # fmt: skip
    return Result.from_run(result)


def default_weak_train(weak: Any, train: str | None, loaded: Any) -> str:
    """``weak_train``'s default: ``train``'s mode when the weak model is a fine-tunable
    transformers checkpoint named with a dataset, else ``probe``."""
    if train in (None, "probe") or loaded is None or not isinstance(weak, str):
        return "probe"
    from w2sg.heads.finetune import finetunable

    return str(train) if finetunable(_split_model(weak)[0]) else "probe"


def _finetuned_sides(config: RunConfig, weak: Any, strong: Any) -> list[tuple[str, str, Any]]:
    return [
        (side, mode, model)
        for side, mode, model in (
            ("weak", config.weak_train, weak),
            ("strong", config.train, strong),
        )
        if mode != "probe"
    ]


def check_finetune(config: RunConfig, weak: Any, strong: Any, loaded: Any) -> None:
    """Refuse fine-tuning that cannot run, in one line, before anything is embedded or trained:
    array inputs, a model that is not a transformers checkpoint, a layer suffix that leaves no
    block (``@0``), a model that reads the other kind of input (texts for a SMILES model). A
    layer suffix ``NAME@L`` fine-tunes the embeddings and first L blocks."""
    from w2sg.heads.finetune import check_finetunable

    for side, mode, model in _finetuned_sides(config, weak, strong):
        flag = "--train" if side == "strong" else "--weak-train"
        if loaded is None or not isinstance(model, str):
            raise W2SGError(
                f"{flag} {mode} fine-tunes on the inputs themselves: give --dataset NAME or "
                "--data FILE with model names (representation arrays cannot be fine-tuned)"
            )
        check_finetunable(model, mode, loaded.kind)


def finetune_learners(
    config: RunConfig,
    weak: Any,
    strong: Any,
    loaded: Any,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The fine-tuning learner sources of ``config`` by side, each checked against its model
    (token limit) before training starts; empty when every model is a probe."""
    from w2sg.heads.finetune import FinetuneSource

    learners: dict[str, Any] = {}
    for side, mode, model in _finetuned_sides(config, weak, strong):
        source = FinetuneSource(
            model, loaded.inputs, mode, kind=loaded.kind, checkpoint_dir=checkpoint_dir
        )
        source.check(config.finetune_for(side))
        learners[side] = source
    return learners


@dataclass
class Result:
    """The outcome of one run: its record (the ``w2sg run --json`` object) and its prediction
    arrays (``predictions.npz``: ``<model>_<split>_proba|pred``, ``<split>_labels``,
    ``<split>_ids``).

    Build one with :func:`run`, or read a run folder with :func:`load_result`.
    """

    record: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_run(cls, result: RunResult) -> Result:
        """The :class:`Result` of a pipeline :class:`~w2sg.pipeline.RunResult`."""
        return cls(result.to_dict(), result.prediction_arrays())

    # -- the record ----------------------------------------------------------------------------

    @property
    def task(self) -> str:
        """``classification``, ``regression`` or ``probability``."""
        return str(self.record["task"])

    @property
    def config(self) -> RunConfig:
        """The run's :class:`RunConfig`."""
        return RunConfig.from_dict(self.record["config"])

    @property
    def n(self) -> dict[str, int]:
        """Split sizes."""
        return dict(self.record["n"])

    @property
    def pgr(self) -> dict[str, Any]:
        """``{metric, value, ci_low, ci_high, reason}``: PGR on test with its bootstrap CI."""
        return dict(self.record["pgr"])

    @property
    def theory(self) -> dict[str, Any] | None:
        """The representation-kernel block (THEORY §2-4), or ``None``."""
        return self.record.get("theory")

    @property
    def bounds(self) -> dict[str, Any] | None:
        """The bounds block (THEORY §5), or ``None``."""
        return self.record.get("bounds")

    @property
    def notes(self) -> list[str]:
        """The run's notes (what was assumed or left out)."""
        return list(self.record.get("notes") or [])

    @property
    def flags(self) -> list[Any]:
        """The run's flags (codes with reasons), where the record carries them; else ``[]``."""
        return list(self.record.get("flags") or [])

    def __getitem__(self, key: str) -> Any:
        return self.record[key]

    def to_dict(self) -> dict[str, Any]:
        """The record: the JSON object ``w2sg run --json`` prints (a copy)."""
        return json.loads(json.dumps(self.record))

    def summary(self) -> str:
        """The table ``w2sg run`` prints: the three models, PGR, theory and bounds highlights."""
        from w2sg.report.summary import format_summary

        return format_summary(self.record)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        p = self.record.get("pgr", {})
        value = p.get("value")
        shown = "n/a" if value is None else f"{value:.3f}"
        return f"<w2sg.Result {self.task} n={self.n} PGR({p.get('metric')})={shown}>"

    # -- views ---------------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """Tidy metrics: one row per model × split × metric, with columns ``model`` (weak, w2s,
        ceiling), ``split`` (test, w2s_train), ``against`` (``truth``: the ground truth;
        ``weak``: the weak model's labels, for the students), ``metric`` and ``value``."""
        import pandas as pd

        rows = list(self._tidy_rows())
        return pd.DataFrame(rows, columns=["model", "split", "against", "metric", "value"])

    def _tidy_rows(self) -> Iterator[dict[str, Any]]:
        rec = self.record
        by_split = {"test": {m: rec.get(m) or {} for m in MODELS}}
        by_split["w2s_train"] = rec.get("w2s_train") or {}
        for split, models in by_split.items():
            for model in MODELS:
                for name, value in (models.get(model) or {}).items():
                    if _is_number(value):
                        yield _tidy(model, split, "truth", name, value)
        for split, models in (rec.get("vs_weak") or {}).items():
            for model, values in models.items():
                for name, value in values.items():
                    if _is_number(value):
                        yield _tidy(model, split, "weak", name, value)

    def plot(self) -> Figure:
        """A matplotlib figure: one test reliability diagram per model (weak, w2s, ceiling;
        predicted against true values for regression) and the PGR bar with its 95% interval.
        The axes are titled ``weak``, ``w2s``, ``ceiling`` and ``PGR``."""
        from matplotlib.figure import Figure

        from w2sg.report import plots

        fig = Figure(figsize=(14.0, 3.6), layout="constrained")
        axes = fig.subplots(1, 4)
        bins = self._reliability_bins()
        for i, (ax, model) in enumerate(zip(axes[:3], MODELS, strict=True)):
            if bins is not None:
                plots.draw_reliability(ax, {model: bins[model]}, color=i)
            else:
                self._draw_regression(ax, model, i)
            ax.set_title(model)
        p = self.pgr
        plots.draw_pgr(
            axes[3],
            [str(p.get("metric"))],
            np.array([_nan(p.get("value"))]),
            np.array([_nan(p.get("ci_low"))]),
            np.array([_nan(p.get("ci_high"))]),
        )
        axes[3].set_title("PGR")
        return fig

    def _reliability_bins(self) -> dict[str, dict[str, list[float]]] | None:
        if self.task == "regression":
            return None
        if self.record.get("reliability"):
            return dict(self.record["reliability"])
        from w2sg.report.plots import bins_of

        truth = self.arrays.get("test_labels")
        if truth is None or any(f"{m}_test_proba" not in self.arrays for m in MODELS):
            raise W2SGError("this result has no test predictions to draw reliability diagrams")
        return {m: bins_of(self.arrays[f"{m}_test_proba"], truth) for m in MODELS}

    def _draw_regression(self, ax: Any, model: str, color: int) -> None:
        truth = self.arrays.get("test_labels")
        pred = self.arrays.get(f"{model}_test_pred")
        if truth is None or pred is None:
            raise W2SGError("this result has no test predictions to draw")
        lo, hi = float(min(truth.min(), pred.min())), float(max(truth.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], ":", color="0.4")
        ax.scatter(truth, pred, s=6, alpha=0.5, color=f"C{color}")
        ax.set_xlabel("true value")
        ax.set_ylabel("predicted")
        ax.grid(alpha=0.3)

    # -- files ---------------------------------------------------------------------------------

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write the run folder of ``w2sg run --out``: ``config.json``, ``metrics.json`` and
        ``predictions.npz``, each atomically; :func:`load_result` reads it back."""
        from w2sg.pipeline import write_run_folder

        return write_run_folder(Path(out_dir), self.record, self.arrays)


def _tidy(model: str, split: str, against: str, metric_name: str, value: Any) -> dict[str, Any]:
    return {
        "model": model,
        "split": split,
        "against": against,
        "metric": metric_name,
        "value": _nan(value),
    }


def _is_number(value: Any) -> bool:
    """A metric value (a number, or ``None`` for an undefined one), not a nested entry."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def load_result(path: str | os.PathLike[str]) -> Result:
    """Read a run folder written by ``w2sg run --out`` or :meth:`Result.save`."""
    folder = Path(path)
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file():
        raise W2SGError(f"{folder} is not a run folder (no metrics.json); pass a `w2sg run --out`")
    try:
        record = json.loads(metrics_file.read_text())
    except json.JSONDecodeError as exc:
        raise W2SGError(f"{metrics_file} is not valid JSON ({exc.msg}); re-run") from None
    arrays: dict[str, np.ndarray] = {}
    npz = folder / "predictions.npz"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    return Result(record, arrays)


# --------------------------------------------------------------------------------------------
# The representation metric


@dataclass
class MetricResult:
    """The representation-kernel quantities of ``w2sg metric``: ``metrics`` (the ``--json``
    object) and, with labels, the per-example ``scores`` [P_s(I − P_w)ŷ]_i."""

    metrics: dict[str, Any]
    scores: np.ndarray | None = None

    # Printed first, in this order; the remaining diagnostics follow.
    MAIN_KEYS = (
        "op_norm",
        "fro_sq_over_n",
        "k_weak",
        "k_strong",
        "predicted_gap",
        "predicted_weak_error",
    )

    def __getitem__(self, key: str) -> Any:
        return self.metrics[key]

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``w2sg metric --json`` prints (a copy)."""
        return dict(self.metrics)

    def summary(self) -> str:
        """The lines ``w2sg metric`` prints: how labels were encoded (if given), then one
        ``name  value`` per quantity."""
        m = {k: v for k, v in self.metrics.items() if k != "label_encoding"}
        keys = [k for k in self.MAIN_KEYS if k in m] + [k for k in m if k not in self.MAIN_KEYS]
        width = max(len(k) for k in keys)
        lines = [f"{key:<{width}}  {_format_value(m[key])}" for key in keys]
        if self.metrics.get("label_encoding") is not None:
            lines.insert(0, f"labels encoded: {self.metrics['label_encoding']}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value == "":
        return "-"
    return str(value)


def _matrix(value: ArrayInput, what: str) -> np.ndarray:
    arr, _ = _array(value, what)
    if arr.ndim != 2:
        where = f"{value} has" if _is_path(value) else "the array has"
        raise W2SGError(f"{what}: {where} shape {arr.shape}; a representation is (n, d)")
    return arr


def metric(
    weak: ArrayInput | Embedding | str | None = None,
    strong: ArrayInput | Embedding | str | None = None,
    labels: ArrayInput | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    text_column: str | Sequence[str] | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    split_column: str | None = None,
    smiles_column: str | None = None,
    label_order: str | Sequence[str] | None = None,
    text_template: str | None = None,
    limit: int | None = None,
    data_seed: int = 0,
    max_words: int | None = None,
    task: str | None = None,
    weak_train: ArrayInput | None = None,
    beta_weak: float = 0.0,
    beta_strong: float = 0.0,
    kernel: KernelConfig | Mapping[str, Any] | None = None,
    echo: Callable[[str], Any] | None = None,
    **kernel_options: Any,
) -> MetricResult:
    """The representation metric of [X] on D̂ (THEORY.md §3): ``w2sg metric``.

    Args:
        weak: weak representation on D̂ ``(n, d_w)`` (array, file or :class:`Embedding`); with
            ``data``/``dataset``, a model name (``NAME`` or ``NAME@LAYER``).
        strong: strong representation on D̂ ``(n, d_s)``, the same rows in the same order.
        labels: labels on D̂ (optional): class labels are encoded exactly as :func:`run`
            encodes them for its theory block (±1 when binary, one-hot otherwise),
            probabilities p as 2p − 1, regression values and ``(n, m)`` targets as given; the
            result's ``label_encoding`` says which. With them: the predicted gap
            G = ‖P_s(I − P_w)ŷ‖²/n and the per-example scores.
        data, dataset, text_column, …, max_words: a data file or named dataset as in
            :func:`run` (its labels are used).
        task: how to read the labels (default: what the data says, else inferred).
        weak_train: the weak representation on D̃, for δ̃_w (else δ_w is taken on D̂).
        beta_weak, beta_strong: β_w, β_s, the ridges of the weak and strong heads.
        kernel: a :class:`KernelConfig` (or mapping), or instead the kernel options by name:
            ``k_weak``/``k_strong``, ``variance``, ``noise_floor``, ``gavish_donoho``, ``mp_edge``,
            ``parallel_analysis``, ``hard``, ``gamma_weak``, ``gamma_strong``, ``center`` (or
            ``no_center``); none of them: the default rule, ``mp_edge`` (median σ̂).
        echo: called with each line that describes the data read (default: silent).

    Returns:
        a :class:`MetricResult`: ``op_norm`` ‖P_s(I − P_w)‖_op, ``fro_sq_over_n``, ``k_weak``,
        ``k_strong``, ``predicted_gap``, … (see :func:`w2sg.theory.kernels.representation_metrics`).
    """
    from w2sg.theory.kernels import representation_metrics

    config = _kernel_config(kernel, kernel_options)
    loaded = load_data(
        data,
        dataset,
        text_column=text_column,
        label_column=label_column,
        id_column=id_column,
        split_column=split_column,
        smiles_column=smiles_column,
        label_order=label_order,
        text_template=text_template,
        task=task,
        limit=limit,
        data_seed=data_seed,
        max_words=max_words,
    )
    raw_labels: np.ndarray | None = None
    data_task = None
    if loaded is not None:
        if labels is not None:
            raise W2SGError("--labels is for array files; --data FILE takes --label-column")
        if not isinstance(weak, str) or not isinstance(strong, str):
            raise W2SGError("--data and --dataset need --weak MODEL and --strong MODEL")
        if echo is not None:
            for line in describe_data(loaded):
                echo(line)
        weak_arr = embed_dataset(loaded, weak, "--weak").astype(np.float64)
        strong_arr = embed_dataset(loaded, strong, "--strong").astype(np.float64)
        raw_labels, data_task = loaded.labels, loaded.task
    else:
        if weak is None or strong is None:
            raise W2SGError("give --weak W.npy and --strong S.npy, or --data/--dataset with models")
        embedded = [x for x in (weak, strong) if isinstance(x, Embedding)]
        if embedded and labels is None:
            labels, data_task = embedded[0].labels, embedded[0].meta.get("task")
        weak_arr = _matrix(weak.array if isinstance(weak, Embedding) else weak, "--weak")
        strong_arr = _matrix(strong.array if isinstance(strong, Embedding) else strong, "--strong")
    if weak_arr.shape[0] != strong_arr.shape[0]:
        raise W2SGError(
            f"--weak has {weak_arr.shape[0]} rows and --strong {strong_arr.shape[0]}; "
            "both must hold the same examples (D̂) in the same order"
        )
    if labels is not None:
        raw_labels, _ = _array(labels, "--labels")
        if raw_labels.ndim not in (1, 2) or raw_labels.shape[0] != weak_arr.shape[0]:
            raise W2SGError(
                f"--labels has shape {raw_labels.shape}; it needs ({weak_arr.shape[0]},) or "
                f"({weak_arr.shape[0]}, m), one row per row of --weak"
            )
    y = None
    encoding = None
    if raw_labels is not None:
        y, encoding = encode_metric_labels(raw_labels, task or data_task)
    train = None if weak_train is None else _matrix(weak_train, "--weak-train")
    result = representation_metrics(
        weak_arr,
        strong_arr,
        weak_train=train,
        y=y,
        beta_weak=beta_weak,
        beta_strong=beta_strong,
        config=config,
    )
    metrics = dict(result.metrics)
    if encoding is not None:
        metrics["label_encoding"] = encoding
    return MetricResult(metrics, result.scores)


def encode_metric_labels(labels: np.ndarray, task: str | None) -> tuple[np.ndarray, str]:
    """Numeric targets of the kernel formulas, encoded exactly as ``w2sg run`` encodes them for
    its theory block (:meth:`w2sg.pipeline.Labels.theory_targets`), and a note saying how.

    Class labels (``task="classification"``, or by default integer labels with at most
    max(50, n/5) distinct values) become ±1 when binary (class 0 → −1, class 1 → +1, classes
    numbered in sorted order) and one-hot ``(n, C)`` otherwise; probabilities p become 2p − 1;
    regression values and ``(n, m)`` arrays are used as given.
    """
    from w2sg.pipeline import prepare_labels

    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] > 1:
        if task not in (None, "regression"):
            raise W2SGError(f"--task {task} needs one label per row, got shape {y.shape}")
        return y.astype(float), "as given ((n, m) targets)"
    flat = y.reshape(-1)
    if task is None:
        integral = flat.dtype.kind in "biu" or bool(np.all(flat == np.round(flat)))
        few = len(np.unique(flat)) <= max(50, len(flat) // 5)
        task = "classification" if integral and few and len(np.unique(flat)) >= 2 else "regression"
    lab = prepare_labels(flat, task)
    targets = lab.theory_targets(np.arange(len(flat)))
    if task == "classification" and lab.n_classes == 2:
        assert lab.classes is not None
        c0, c1 = (v.item() if hasattr(v, "item") else v for v in lab.classes)
        return targets, f"±1 as in w2sg run (class {c0!r} → −1, class {c1!r} → +1)"
    if task == "classification":
        return targets, f"one-hot over {lab.n_classes} classes, as in w2sg run"
    if task == "probability":
        return targets, "2p − 1 of the positive-class probability, as in w2sg run"
    return targets, "as given (regression values)"


def _kernel_from_options(options: Mapping[str, Any]) -> KernelConfig | None:
    """The :class:`KernelConfig` of the kernel options that are set (not ``None``, not
    ``False``, ``center`` not true), or ``None`` when every one holds its default."""
    opts = dict(options)
    center = bool(opts.pop("center", True)) and not opts.pop("no_center", False)
    given = {k: v for k, v in opts.items() if v is not None and v is not False}
    if center and not given:
        return None
    return KernelConfig.from_options(**given, center=center)


def _kernel_config(
    kernel: KernelConfig | Mapping[str, Any] | None, options: Mapping[str, Any]
) -> KernelConfig:
    options = {k.replace("-", "_"): v for k, v in options.items()}
    unknown = sorted(set(options) - set(_KERNEL_OPTIONS))
    if unknown:
        raise W2SGError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the kernel options are {', '.join(_KERNEL_OPTIONS)} (or kernel=KernelConfig(...))"
        )
    built = _kernel_from_options(options)
    if kernel is None:
        return built or KernelConfig()
    if built is not None:
        raise W2SGError("give kernel= or the kernel options by name, not both")
    config = kernel if isinstance(kernel, KernelConfig) else KernelConfig.from_mapping(dict(kernel))
    config.validate()
    return config


# --------------------------------------------------------------------------------------------
# Representations


@dataclass
class Embedding:
    """Representations from :func:`embed`: ``array`` float32 ``(n, d)`` (``(L + 1, n, d)`` for
    ``layer="all"``), the row ``ids`` (content hashes), the dataset's ``labels`` (``None`` for
    given texts), ``meta`` (what ``w2sg embed`` writes beside the array), dataset ``notes`` and
    the extraction time. Numpy functions and :func:`run` take it as its array."""

    array: np.ndarray
    ids: list[str]
    labels: np.ndarray | None
    meta: dict[str, Any]
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        arr = np.asarray(self.array)
        return arr if dtype is None else arr.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return tuple(self.array.shape)

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the array to ``path`` (``.npy``) and its ids, labels and settings to the
        ``.json`` beside it, as ``w2sg embed --out`` does; returns the ``.npy`` path."""
        from w2sg.atomic import save_npy, write_json

        out = Path(path)
        if out.suffix != ".npy":
            raise W2SGError(f"--out must end in .npy, got {out}")
        save_npy(out, np.asarray(self.array))
        meta = dict(self.meta, shape=list(self.array.shape), ids=self.ids)
        if self.labels is not None:
            meta["labels"] = self.labels.tolist()
        write_json(out.with_suffix(".json"), meta)
        return out


def embed(
    model: str,
    inputs: str | os.PathLike[str] | Sequence[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    text_column: str | Sequence[str] | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    split_column: str | None = None,
    smiles_column: str | None = None,
    label_order: str | Sequence[str] | None = None,
    text_template: str | None = None,
    labels: ArrayInput | None = None,
    kind: str | None = None,
    layer: int | str = -1,
    pooling: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_words: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
    cache: bool = True,
    progress: bool = True,
    echo: Callable[[str], Any] | None = None,
) -> Embedding:
    """Representations of a dataset, a data file or given inputs by ``model``: ``w2sg embed``.

    Args:
        model: a registered model (``w2sg models``), ``hf:<name-or-path>`` or a model folder.
        inputs: a registered or hub dataset's name (a ``str``, e.g. ``"rotten_tomatoes"``), a
            list of texts or SMILES, or a :class:`~pathlib.Path` (not a ``str``) to a UTF-8 file
            with one input per line (blank lines are skipped, with a warning).
        data: instead of ``inputs``, a data file (CSV, TSV, JSONL, JSON, Parquet) read with the
            column options ``text_column``, ``label_column``, … as in :func:`run`.
        labels: with given inputs, their labels (array or file), kept as ``Embedding.labels``
            when their count matches the inputs.
        kind: ``"text"`` or ``"smiles"`` for given inputs (default: what the model reads).
        layer: hidden-state index (0 = embeddings, -1 = last) or ``"all"``.
        pooling: ``mean``, ``cls``, ``last`` or ``max`` (default: the model's own).
        limit: a dataset: a seeded random subset of N rows (``seed``); given inputs: the first N.
        max_words: cut each text to its first N words first (the ids hash the cut texts).
        batch_size, device: extraction batch size and torch device (default: cuda if present).
        cache: read and write the embedding cache (``W2SG_CACHE_DIR``).
        progress: show a progress bar on stderr.
        echo: called with each line that describes the data read (default: silent).
    """
    from w2sg.data.datasets import read_lines, truncate_words
    from w2sg.data.splits import text_ids
    from w2sg.represent.extract import embed as extract
    from w2sg.represent.models import get_spec

    if limit is not None and limit < 1:
        raise W2SGError(f"--limit must be >= 1, got {limit}")
    if (inputs is None) == (data is None):
        raise W2SGError("give one source: a dataset name, texts, a file of lines, or data=FILE")
    spec = get_spec(model)
    meta: dict[str, Any] = {
        "model": model,
        "layer": str(layer),
        "pooling": pooling,
        "max_words": max_words,
    }
    label_values: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    columns = {
        "text_column": text_column,
        "label_column": label_column,
        "id_column": id_column,
        "split_column": split_column,
        "smiles_column": smiles_column,
        "label_order": label_order,
        "text_template": text_template,
    }
    if data is not None or isinstance(inputs, str):
        loaded = load_data(
            data,
            inputs if isinstance(inputs, str) else None,
            text_column=text_column,
            label_column=label_column,
            id_column=id_column,
            split_column=split_column,
            smiles_column=smiles_column,
            label_order=label_order,
            text_template=text_template,
            limit=limit,
            data_seed=seed,
            max_words=max_words,
        )
        if echo is not None:
            for line in describe_data(loaded):
                echo(line)
        texts, ids, source_kind = loaded.inputs, loaded.ids, loaded.kind
        label_values, notes = loaded.labels, tuple(loaded.notes)
        meta.update(dataset=loaded.name, task=loaded.task, classes=list(loaded.classes))
        if loaded.provenance:
            meta["data"] = loaded.provenance
        if loaded.splits:
            meta["splits"] = list(loaded.splits)
    else:
        given = [f"--{k.replace('_', '-')}" for k, v in columns.items() if v]
        if given:
            raise W2SGError(f"{given[0]} names a column of --data FILE (or --dataset hf:...)")
        source_kind = kind or spec.kind
        if isinstance(inputs, os.PathLike):
            labels_match = _check_lines(Path(inputs), labels)
            texts = read_lines(inputs)
            meta.update(source=os.fspath(inputs))
        else:
            assert inputs is not None
            texts = [str(t) for t in inputs]
            if not texts:
                raise W2SGError("no inputs to embed; pass at least one text or SMILES")
            labels_match = True
            if labels is not None and len(_array(labels, "--labels")[0]) != len(texts):
                raise W2SGError(
                    f"labels has {len(_array(labels, '--labels')[0])} rows for {len(texts)} "
                    "inputs; give one label per input"
                )
        if limit is not None:
            texts = texts[:limit]
        if max_words is not None:
            if max_words < 1 or source_kind != "text":
                raise W2SGError("--max-words takes N >= 1 and applies to texts, not SMILES")
            texts, _ = truncate_words(texts, max_words)
        ids = [str(i) for i in text_ids(texts)]
        if labels is not None and labels_match and limit is None:
            label_values = _array(labels, "--labels")[0]
    if spec.kind != source_kind:
        raise W2SGError(
            f"model {model!r} reads {spec.kind}, but the inputs are {source_kind}; pick a "
            f"{source_kind} model (w2sg models)"
        )
    start = time.perf_counter()
    X = extract(
        model,
        texts,
        layer=layer,
        pooling=pooling,
        batch_size=batch_size,
        device=device,
        cache=cache,
        progress=progress,
    )
    return Embedding(
        np.asarray(X), list(ids), label_values, meta, notes, time.perf_counter() - start
    )


def _check_lines(path: Path, labels: ArrayInput | None) -> bool:
    """Warn (on stderr) about what one-text-per-line files get wrong: blank lines (skipped, so
    later rows shift against labels kept elsewhere) and a line count that differs from the
    labels. Returns whether the labels (if any) match the texts."""
    import sys

    from w2sg.data.files import check_text_lines

    found = check_text_lines(path)
    if found.blank:
        lines = ", ".join(map(str, found.blank[:5])) + (" …" if len(found.blank) > 5 else "")
        print(
            f"w2sg: warning: {path} has {len(found.blank)} blank lines (line {lines}), skipped: "
            "rows after them shift; for texts with newlines use --data FILE --text-column COL",
            file=sys.stderr,
        )
    if labels is not None:
        n_labels = len(_array(labels, "--labels")[0])
        n_texts = found.n_lines - len(found.blank)
        if n_labels != n_texts:
            print(
                f"w2sg: warning: {path} has {n_texts} non-blank lines but --labels has "
                f"{n_labels} rows, so the labels are not copied; a text with a newline spans "
                "several lines: use --data FILE --text-column COL",
                file=sys.stderr,
            )
            return False
    return True


# --------------------------------------------------------------------------------------------
# Sweeps and the results store


def sweep(
    config: str | os.PathLike[str] | Mapping[str, Any] | SweepConfig,
    store: str | os.PathLike[str],
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    gpus_per_extraction: float | None = None,
    verbose: bool = False,
) -> SweepSummary:
    """Run every configuration of a sweep that ``store`` does not hold yet: ``w2sg sweep``.

    Args:
        config: a sweep YAML file, the same content as a mapping, or a parsed ``SweepConfig``
            (see docs/sweeps.md).
        store: the SQLite results store (created if missing); read it with :func:`load_store`.
        executor: ``local`` (process pool) or ``ray``.
        workers: parallel workers (default: the number of cores).
        ray_address: with ``ray``, a running cluster's address (``auto`` to find it).
        retry_failed: also re-run configurations recorded as failed.
        progress: a progress bar on stderr.
        gpus_per_extraction: with ``ray``, GPUs per neural extraction.
        verbose: with ``ray``, let the workers' own log lines through to the terminal.

    Returns:
        the counts ``total``, ``executed``, ``skipped``, ``failed`` and the ``seconds`` taken.
    """
    from w2sg.experiments.executors import run_sweep
    from w2sg.experiments.sweep import SweepConfig, load_sweep, parse_sweep

    if isinstance(config, SweepConfig):
        parsed = config
    elif isinstance(config, Mapping):
        parsed = parse_sweep(dict(config))
    else:
        parsed = load_sweep(Path(config))
    return run_sweep(
        parsed,
        Path(store),
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        retry_failed=retry_failed,
        progress=progress,
        gpus_per_extraction=gpus_per_extraction,
        verbose=verbose,
    )


#: The plain columns :func:`load_store` puts first.
STORE_COLUMNS: tuple[str, ...] = (
    "config_hash",
    "status",
    "task",
    "weak",
    "strong",
    "head",
    "seed",
    "seconds",
    "error",
)


def load_store(path: str | os.PathLike[str], *, status: str | None = "done") -> pd.DataFrame:
    """The runs of a results store as a DataFrame, one row per run.

    Columns: ``config_hash``, ``status``, ``task`` (the sweep's task name), ``weak``, ``strong``
    (representation labels such as ``minilm-l6@3``), ``head`` (e.g. ``softmax/xent``), ``seed``,
    ``seconds``, ``error``; then the nested numbers flattened with dotted names, as
    ``w2sg export`` writes them: ``metrics.w2s.accuracy``, ``metrics.pgr.value``,
    ``theory.op_norm``, ``bounds.…``, ``config.…``, ``versions.…`` (lists as JSON text).

    Args:
        path: the ``.db`` of a sweep.
        status: ``"done"`` (default), ``"failed"`` or ``None`` for every run.
    """
    import pandas as pd

    from w2sg.experiments.store import ResultStore, flat_rows

    with ResultStore(Path(path), read_only=True) as db:
        rows = db.rows(status)
    flat = flat_rows(rows)
    for plain, row in zip(flat, rows, strict=True):
        for col in ("task", "weak", "strong", "head", "seed"):
            plain[col] = row[col]
    frame = pd.DataFrame(flat)
    if frame.empty:
        return pd.DataFrame(columns=list(STORE_COLUMNS))
    rest = [c for c in frame.columns if c not in STORE_COLUMNS]
    return frame[[*STORE_COLUMNS, *rest]]
