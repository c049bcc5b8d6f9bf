"""What a sweep worker does: prepare shared inputs once, run one configuration, return JSON.

This module is the one place where the experiments layer meets the rest of the library: the
synthetic generator and the dataset / representation registries (to prepare inputs) and
:func:`w2sg.pipeline.run_pipeline` (to run). Executors only move :class:`DataUnit` arrays and run
records around.

Inputs are prepared per :class:`DataUnit`: one synthetic draw per (generator parameters, seed),
one representation per (dataset, limit, model, layer, pooling), one label vector per (dataset,
limit). Many runs share a unit; each unit is prepared once per sweep and handed to the runs that
need it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from w2sg.errors import W2SGError
from w2sg.experiments.sweep import (
    SYNTHETIC,
    EnsembleRef,
    ModelRef,
    RunSpec,
    TaskSpec,
    canonical_json,
)

#: ``run_fn(spec, weak, strong, labels, ids[, given_splits=...]) -> {"metrics": ..., ...}``;
#: ``given_splits`` is passed only when the dataset has its own splits.
RunFn = Callable[[RunSpec, np.ndarray, np.ndarray, np.ndarray, np.ndarray], dict[str, Any]]

#: ``prepare_fn(unit, names) -> arrays``: compute the named arrays of a :class:`DataUnit`.
PrepareFn = Callable[["DataUnit", list[str]], list[np.ndarray]]

#: The inputs of one run, by role.
ROLES: tuple[str, ...] = ("weak", "strong", "labels", "ids")


def member_roles(spec: RunSpec) -> list[str]:
    """The input roles of the weak side's representations: ``weak`` for a single weak model;
    ``weak``, ``weak_member_1``, … ``weak_member_{M-1}`` for the M members of an ensemble (in
    order)."""
    return ["weak", *(f"weak_member_{j}" for j in range(1, len(spec.weak.models)))]


@dataclass(frozen=True)
class DataUnit:
    """A set of arrays prepared once and shared by every run that needs them.

    ``kind`` is ``synthetic`` (one generator draw: labels, ids and every representation),
    ``labels`` (a dataset's labels and ids) or ``repr`` (one representation of a dataset).
    """

    kind: str
    dataset: str
    params: dict[str, Any] = field(default_factory=dict)
    limit: int | None = None
    seed: int = 0
    model: ModelRef | None = None
    max_words: int | None = None
    data: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "dataset": self.dataset,
            "params": self.params,
            "limit": self.limit,
            "seed": self.seed,
            "model": None if self.model is None else self.model.to_dict(),
        }
        if self.max_words is not None:
            out["max_words"] = self.max_words
        if self.data is not None:
            out["data"] = self.data
        return out

    @property
    def key(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()[:24]

    @property
    def label(self) -> str:
        """What the sweep's bar shows while the unit is prepared: ``repr minilm-l6 on
        rotten_tomatoes``, ``labels rotten_tomatoes``, ``synthetic regression n=800 seed 0``."""
        if self.kind == SYNTHETIC:  # dataset is "synthetic" too: name the draw instead
            task, n = self.params.get("task"), self.params.get("n")
            return " ".join(
                ["synthetic", *([str(task)] if task else []), *([f"n={n}"] if n else []),
                 f"seed {self.seed}"]
            )  # fmt: skip
        what = self.dataset if self.model is None else f"{self.model.label} on {self.dataset}"
        return f"{self.kind} {what}"


def inputs_of(spec: RunSpec) -> dict[str, tuple[DataUnit, str]]:
    """The unit and array name that hold each input (``weak``, ``strong``, ``labels``, ``ids``)."""
    roles = member_roles(spec)
    if spec.dataset == SYNTHETIC:
        unit = DataUnit(SYNTHETIC, SYNTHETIC, spec.params, None, spec.data_seed)
        members = {
            role: (unit, f"repr:{ref.label}")
            for role, ref in zip(roles, spec.weak.models, strict=True)
        }
        return {
            **members,
            "strong": (unit, f"repr:{spec.strong.label}"),
            "labels": (unit, "labels"),
            "ids": (unit, "ids"),
        }
    labels = DataUnit(
        "labels", spec.dataset, limit=spec.limit, seed=spec.data_seed, max_words=spec.max_words,
        data=spec.data,
    )  # fmt: skip

    def rep(ref: ModelRef) -> tuple[DataUnit, str]:
        # One unit per (dataset, model, pooling); its layers are arrays of the unit, so a model
        # whose several layers are used runs once over the dataset (see _prepare_dataset).
        model = ModelRef(ref.model, None, ref.pooling)
        unit = DataUnit(
            "repr",
            spec.dataset,
            limit=spec.limit,
            seed=spec.data_seed,
            model=model,
            max_words=spec.max_words,
            data=spec.data,
        )
        return unit, "X" if ref.layer is None else f"X@{ref.layer}"

    return {
        **{role: rep(ref) for role, ref in zip(roles, spec.weak.models, strict=True)},
        "strong": rep(spec.strong),
        "labels": (labels, "labels"),
        "ids": (labels, "ids"),
        "splits": (labels, "splits"),
    }


def plan_units(specs: list[RunSpec]) -> dict[str, tuple[DataUnit, list[str]]]:
    """Every unit the runs need, with the array names needed from it (sorted), by unit key."""
    plan: dict[str, tuple[DataUnit, set[str]]] = {}
    for spec in specs:
        for unit, name in inputs_of(spec).values():
            plan.setdefault(unit.key, (unit, set()))[1].add(name)
    return {key: (unit, sorted(names)) for key, (unit, names) in plan.items()}


# -- preparing inputs -----------------------------------------------------------------------


def prepare(unit: DataUnit, names: list[str]) -> list[np.ndarray]:
    """Compute the arrays ``names`` of ``unit`` (in that order)."""
    arrays = _prepare_synthetic(unit) if unit.kind == SYNTHETIC else _prepare_dataset(unit, names)
    missing = [n for n in names if n not in arrays]
    if missing:
        raise W2SGError(f"{unit.label} has no {', '.join(missing)}; check the sweep's model names")
    return [np.asarray(arrays[n]) for n in names]


_PRESET_KEYS = (
    "n",
    "task",
    "n_classes",
    "latent_dim",
    "n_weak",
    "noise_dim",
    "noise_energy",
    "label_noise",
)


def synthetic_draw(params: dict[str, Any], seed: int) -> Any:
    """Draw the synthetic data of a sweep task (a :class:`~w2sg.data.synthetic.SyntheticData`).

    ``params`` is either the preset of :func:`~w2sg.data.synthetic.default_synthetic` (keys ``n``,
    ``task``, ``n_classes``, ``latent_dim``, ``n_weak``, ``noise_dim``, ``noise_energy``,
    ``label_noise``; representations ``strong``, ``weak_1`` … ``weak_{n_weak}``) or a custom model:
    ``n``, ``latent`` (fields of :class:`~w2sg.data.synthetic.SyntheticTask`) and
    ``representations`` (name → fields of :class:`~w2sg.data.synthetic.RepresentationSpec`).
    """
    from w2sg.data import synthetic as syn

    if "representations" in params or "latent" in params:
        n, latent, specs = _custom_synthetic(params)
        return syn.make_synthetic(n, latent, specs, seed=seed)
    unknown = sorted(set(params) - set(_PRESET_KEYS))
    if unknown:
        raise W2SGError(
            f"unknown synthetic parameter {unknown[0]!r}; use {', '.join(_PRESET_KEYS)} "
            "or n, latent and representations"
        )
    return syn.default_synthetic(**params, seed=seed)


def _custom_synthetic(params: dict[str, Any]) -> tuple[int, Any, dict[str, Any]]:
    from w2sg.data import synthetic as syn

    unknown = sorted(set(params) - {"n", "latent", "representations"})
    if unknown:
        raise W2SGError(
            f"unknown synthetic parameter {unknown[0]!r}; a custom model takes n, latent and "
            "representations"
        )
    reps = params.get("representations")
    if not isinstance(reps, dict) or not reps:
        raise W2SGError("representations must map names to {coords: [...], noise_dim: ...}")
    latent = dict(params.get("latent") or {})
    for key in ("energies", "weights"):
        if latent.get(key) is not None:
            latent[key] = tuple(latent[key])
    try:
        task = syn.SyntheticTask(**latent)
        specs = {}
        for name, fields in reps.items():
            fields = dict(fields or {})
            fields["coords"] = tuple(fields.get("coords", ()))
            if isinstance(fields.get("scales"), list):
                fields["scales"] = tuple(fields["scales"])
            specs[str(name)] = syn.RepresentationSpec(**fields)
    except TypeError as exc:
        raise W2SGError(f"invalid synthetic model ({exc}); check the field names") from exc
    return int(params.get("n", 3000)), task, specs


def synthetic_info(params: dict[str, Any]) -> tuple[list[str], str]:
    """The representation names and the task type of a synthetic task, without drawing data."""
    from w2sg.data import synthetic as syn

    if "representations" in params or "latent" in params:
        _, task, specs = _custom_synthetic(params)
        task.validate()
        for name, spec in specs.items():
            spec.validate(name, task.latent_dim)
        return list(specs), task.task
    unknown = sorted(set(params) - set(_PRESET_KEYS))
    if unknown:
        raise W2SGError(
            f"unknown synthetic parameter {unknown[0]!r}; use {', '.join(_PRESET_KEYS)} "
            "or n, latent and representations"
        )
    n_weak = int(params.get("n_weak", 5))
    syn.default_specs(int(params.get("latent_dim", 8)), n_weak)  # validates n_weak
    task_type = str(params.get("task", "regression"))
    syn.SyntheticTask(task=task_type, n_classes=int(params.get("n_classes", 2))).validate()
    return ["strong", *(f"weak_{i}" for i in range(1, n_weak + 1))], task_type


def _prepare_synthetic(unit: DataUnit) -> dict[str, np.ndarray]:
    from w2sg.data.splits import content_ids

    data = synthetic_draw(unit.params, unit.seed)
    arrays: dict[str, np.ndarray] = {"labels": np.asarray(data.labels)}
    reps = {name: np.asarray(x, dtype=np.float64) for name, x in data.representations.items()}
    for name, x in reps.items():
        arrays[f"repr:{name}"] = x
    # Ids depend on the draw only, so every weak model of a task sees the same splits.
    arrays["ids"] = content_ids(data.latent, arrays["labels"])
    return arrays


def uses_gpu(unit: DataUnit) -> bool:
    """Whether preparing ``unit`` runs a neural model that a GPU speeds up: a representation by a
    model of the ``transformers`` backend. Labels, synthetic draws, static tables, ONNX encoders
    and molecular featurizers run on CPUs."""
    if unit.kind != "repr" or unit.model is None:
        return False
    from w2sg.represent.models import get_spec

    try:
        return get_spec(unit.model.model).backend == "transformers"
    except W2SGError:
        return False


def _prepare_dataset(unit: DataUnit, names: list[str]) -> dict[str, np.ndarray]:
    """Labels and ids of a dataset, or the requested layers (``X``, ``X@<layer>``) of one model.

    Two or more intermediate layers of a transformer are extracted in one pass (``layer="all"``)
    and sliced; the default (``X``) and the last layer keep the model's own pooling.
    """
    if unit.kind == "labels":
        ds = load_unit_dataset(unit)
        return {
            "labels": np.asarray(ds.labels),
            "ids": np.asarray(ds.ids).astype(str),
            "splits": np.asarray(ds.splits, dtype=str),  # empty: the pipeline draws splits
        }
    from w2sg.represent import representations_for
    from w2sg.represent.models import get_spec

    assert unit.model is not None
    model, pooling = unit.model.model, unit.model.pooling
    n_layers = get_spec(model).layers

    loaded: list[Any] = []

    def extract(layer: int | str) -> np.ndarray:
        if unit.data is not None:  # a data file or an hf: dataset: its rows, embedded
            from w2sg.represent.extract import embed

            if not loaded:
                loaded.append(load_unit_dataset(unit))
            return np.asarray(embed(model, loaded[0].inputs, layer=layer, pooling=pooling,
                                    progress=False), dtype=np.float32)  # fmt: skip
        _, X = representations_for(
            unit.dataset,
            model,
            layer,
            pooling,
            unit.limit,
            seed=unit.seed,
            max_words=unit.max_words,
            progress=False,
        )
        return np.asarray(X)

    layers = {name: _layer_of(name) for name in names}
    inner = [
        name
        for name, layer in layers.items()
        if n_layers is not None and isinstance(layer, int) and layer % (n_layers + 1) < n_layers
    ]
    arrays: dict[str, np.ndarray] = {}
    if len(inner) >= 2:
        stacked = extract("all")
        for name in inner:
            layer = layers[name]
            assert isinstance(layer, int)
            arrays[name] = np.ascontiguousarray(stacked[layer])
    for name, layer in layers.items():
        if name not in arrays:
            arrays[name] = extract(-1 if layer is None else layer)
    return arrays


def load_unit_dataset(unit: DataUnit) -> Any:
    """The :class:`~w2sg.data.datasets.Dataset` of a unit: a registered dataset by name, an
    ``hf:`` dataset with its columns, or a data file (which must still have the SHA-256 it had
    when the sweep was planned)."""
    from w2sg.data.datasets import load_dataset

    select: dict[str, Any] = {"limit": unit.limit, "seed": unit.seed, "max_words": unit.max_words}
    if unit.data is None:
        return load_dataset(unit.dataset, **select)
    from w2sg.data.files import Columns, load_file

    columns = Columns.from_dict(unit.data["columns"])
    if "path" not in unit.data:
        return load_dataset(unit.dataset, **select, columns=columns)
    ds = load_file(unit.data["path"], columns, **select)
    if ds.provenance.get("sha256") != unit.data["sha256"]:
        raise W2SGError(
            f"{unit.data['path']} changed after the sweep was planned; run the sweep again"
        )
    return ds


def _layer_of(name: str) -> int | str | None:
    """``X`` → None, ``X@3`` → 3, ``X@name`` → ``"name"``."""
    _, at, text = name.partition("@")
    if not at:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def describe_task(task: TaskSpec) -> tuple[tuple[str, str] | None, str | None]:
    """Check a task entry: ``(problem, task_type)``.

    ``problem`` is ``(key, message)`` when the entry cannot run, else ``None``. ``task_type`` is the
    task (classification, regression, probability) the data defines, or ``None`` when the data does
    not fix it.
    """
    if task.dataset == SYNTHETIC:
        try:
            names, task_type = synthetic_info(task.params)
        except W2SGError as exc:
            return ("params", str(exc)), None
        for key, ref in model_entries(task):
            if ref.label not in names:
                message = (
                    f"the synthetic generator has no representation {ref.label!r}; "
                    f"use one of {', '.join(names)}"
                )
                return (key, message), task_type
        return None, task_type
    return _describe_dataset(task)


def model_entries(task: TaskSpec) -> list[tuple[str, ModelRef]]:
    """Every representation of a task with the config key that names it: ``weak[i]``,
    ``weak[i].ensemble[j]`` (a member of an ensemble entry), ``strong[i]``."""
    out: list[tuple[str, ModelRef]] = []
    for i, weak in enumerate(task.weak):
        if isinstance(weak, EnsembleRef):
            out += [(f"weak[{i}].ensemble[{j}]", m) for j, m in enumerate(weak.members)]
        else:
            out.append((f"weak[{i}]", weak))
    out += [(f"strong[{i}]", ref) for i, ref in enumerate(task.strong)]
    return out


def _check_models(task: TaskSpec) -> tuple[str, str] | None:
    from w2sg.represent.models import get_spec

    for key, ref in model_entries(task):
        try:
            spec = get_spec(ref.model)
        except W2SGError as exc:
            return key, str(exc)
        if ref.layer is not None and isinstance(ref.layer, int) and spec.layers is not None:
            if not -spec.layers - 1 <= ref.layer <= spec.layers:
                return (
                    key,
                    f"{ref.model} has layers 0..{spec.layers} (0 = embeddings); "
                    f"got layer {ref.layer}",
                )
        elif ref.layer is not None and spec.layers is None and spec.backend != "transformers":
            # A transformers model given as hf:NAME or a folder has layers that only its
            # config knows; as with `w2sg run` and `w2sg embed`, extraction checks the index.
            return key, f"{ref.model} has no layers to pick; drop @{ref.layer}"
    return None


def _describe_data_task(task: TaskSpec) -> tuple[tuple[str, str] | None, str | None]:
    """A data file (read now: its kind and task) or an ``hf:`` / registered hub dataset."""
    from w2sg.data.hub import HUB_REGISTRY
    from w2sg.represent.models import get_spec

    kind, task_type = "text", "classification" if task.dataset in HUB_REGISTRY else None
    if task.data is not None and "path" in task.data:
        from w2sg.data.files import Columns, load_file

        try:
            ds = load_file(task.data["path"], Columns.from_dict(task.data["columns"]),
                           limit=task.limit, max_words=task.max_words)  # fmt: skip
        except W2SGError as exc:
            return ("data", str(exc)), None
        kind, task_type = ds.kind, ds.task
    elif task.data is not None:
        kind = "smiles" if task.data["columns"].get("smiles") else "text"
        task_type = task.data["columns"].get("task")
    problem = _check_models(task)
    if problem is not None:
        return problem, None
    for key, ref in model_entries(task):
        model_kind = get_spec(ref.model).kind
        if model_kind != kind:
            return (
                key,
                f"{ref.model} reads {model_kind} but the data holds {kind}; "
                f"pick a {kind} model (w2sg models)",
            ), None
    return None, task_type


def _describe_dataset(task: TaskSpec) -> tuple[tuple[str, str] | None, str | None]:
    from w2sg.data.datasets import REGISTRY as DATASETS
    from w2sg.data.hub import HUB_REGISTRY
    from w2sg.represent.models import get_spec

    if task.data is not None or task.dataset in HUB_REGISTRY:
        return _describe_data_task(task)
    base, _, variant = task.dataset.partition(":")
    spec = DATASETS.get(base)
    if spec is None:
        known = ", ".join(["synthetic", *DATASETS, *HUB_REGISTRY])
        return ("dataset", f"unknown dataset {base!r}; use one of {known}"), None
    if task.max_words is not None and spec.kind != "text":
        return ("max_words", f"is for text datasets; {base} holds {spec.kind}"), None
    problem = _check_models(task)
    if problem is not None:
        return problem, None
    for key, ref in model_entries(task):
        kind = get_spec(ref.model).kind
        if kind != spec.kind:
            return (
                key,
                f"{ref.model} reads {kind} but {base} holds {spec.kind}; "
                f"pick a {spec.kind} model (w2sg models)",
            ), None
    chosen = variant or spec.default_variant
    task_type = spec.task_for_variant(chosen) if spec.task_for_variant else spec.task
    return None, task_type


# -- running --------------------------------------------------------------------------------


def pipeline_run(
    spec: RunSpec,
    weak: np.ndarray,
    strong: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    given_splits: np.ndarray | None = None,
    members: list[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Run :func:`w2sg.pipeline.run_pipeline` and split its record into the store's columns.
    ``given_splits``: the dataset's own split of each row (a data file's split column, a hub
    dataset's splits). ``members``: an ensemble's weak representations, in the order of
    ``spec.weak.members`` (then ``weak`` is the first): the run is
    :func:`w2sg.experiments.ensemble.run_ensemble`, as ``w2sg run --weak A B C --combine``."""
    provenance = {"weak": spec.weak.label, "strong": spec.strong.label, "task": spec.task_name}
    if members is not None:
        from w2sg.experiments.ensemble import run_ensemble

        result = run_ensemble(
            members, strong, labels, spec.config, names=[m.label for m in spec.weak.models],
            ids=ids, provenance=provenance, given_splits=given_splits,
            learners=finetune_learners(spec, ids),
        )  # fmt: skip
    else:
        from w2sg.pipeline import run_pipeline

        result = run_pipeline(
            weak,
            strong,
            labels,
            spec.config,
            learners=finetune_learners(spec, ids),
            ids=ids,
            given_splits=None if given_splits is None else [str(s) for s in given_splits],
            provenance=provenance,
        )
    record = result.to_dict()
    theory = record.pop("theory", None)
    bounds = record.pop("bounds", None)
    # Probe runs keep their stored records as before; fine-tuned runs add their training record.
    train = record.pop("train", None) or {}
    if any(entry.get("mode") in ("full", "lora") for entry in train.values()):
        record["train"] = train
    else:
        record.pop("curve", None)
    for key in ("config", "provenance"):
        record.pop(key, None)
    metrics = record.pop("metrics", None) or record
    return {"metrics": metrics, "theory": theory, "bounds": bounds}


def finetune_learners(spec: RunSpec, ids: np.ndarray) -> dict[str, Any]:
    """The fine-tuning learner sources of a run whose config trains ``full`` or ``lora``: the
    dataset's inputs (loaded in the worker; representations travel as arrays, texts do not) and
    the model. Epoch checkpoints go to ``$W2SG_CACHE_DIR/finetune/<role>/<learner key>``, so a
    killed sweep resumes its fine-tuning runs where they stopped, and a learner that several runs
    share (the ceiling of a dataset and seed, for every weak supervisor) is trained once."""
    config = spec.config
    if config.weak_train == "probe" and config.train == "probe":
        return {}
    if isinstance(spec.weak, EnsembleRef) and config.weak_train != "probe":
        raise W2SGError("the members of an ensemble are probes; use weak_train: probe")
    sides = [
        (side, mode, ref)
        for side, mode, ref in (
            ("weak", config.weak_train, spec.weak),
            ("strong", config.train, spec.strong),
        )
        if mode != "probe" and isinstance(ref, ModelRef)
    ]
    if spec.dataset == SYNTHETIC:
        raise W2SGError("synthetic data has no inputs to fine-tune on; use train: probe")
    from w2sg.heads.finetune import FinetuneSource
    from w2sg.represent.cache import cache_dir

    data = load_unit_dataset(inputs_of(spec)["labels"][0])
    if [str(i) for i in data.ids] != [str(i) for i in ids]:
        raise W2SGError(f"{spec.task_name}: the dataset changed since its inputs were prepared")
    folder = cache_dir() / "finetune"
    learners: dict[str, Any] = {}
    for side, mode, ref in sides:
        # ``NAME@L`` fine-tunes the embeddings and first L blocks; a fine-tuned weak entry
        # brings its own settings (``ref.finetune_config()``), others use the run's
        # (``weak_finetune`` for a weak model where set, see ``RunConfig.finetune_for``).
        source = FinetuneSource(
            ref.name, data.inputs, mode, kind=data.kind, checkpoint_dir=folder,
            finetune=ref.finetune_config() if side == "weak" else None,
        )  # fmt: skip
        source.check(config.finetune_for(side))
        learners[side] = source
    return learners


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _versions() -> dict[str, str]:
    """Versions of Python and the libraries that decide the numbers, without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    from w2sg import __version__

    out = {"w2sg": __version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "torch"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def model_fingerprints(spec: RunSpec) -> dict[str, Any]:
    """:func:`~w2sg.represent.models.model_fingerprint` of the run's weak and strong models
    (hashes are cached by path, size and mtime, so this reads no weights twice); a model that
    cannot be resolved or read here is recorded as ``{"unavailable": reason}``, not a failed run.
    On Ray this runs on the node of the run, which records what that node holds."""
    return {ref.model: _fingerprint(ref.model) for ref in (*spec.weak.models, spec.strong)}


def _fingerprint(model: str) -> dict[str, Any]:
    """One model's fingerprint; never raises."""
    from w2sg.represent.models import model_fingerprint

    try:
        return model_fingerprint(model)
    except Exception as exc:  # an unresolvable or unreadable model must not fail a finished run
        return {"unavailable": f"{type(exc).__name__}: {exc}".splitlines()[0]}


def base_record(spec: RunSpec) -> dict[str, Any]:
    """The store columns that every record of ``spec`` has, done or failed."""
    return {
        "config_hash": spec.config_hash,
        "task": spec.task_name,
        "weak": spec.weak.label,
        "strong": spec.strong.label,
        "head": spec.head_label,
        "seed": spec.config.seed,
        "config": spec.to_dict(),
    }


def failed_record(spec: RunSpec, error: str, started: str | None = None) -> dict[str, Any]:
    now = _now()
    return {
        **base_record(spec),
        "status": "failed",
        "started": started or now,
        "finished": now,
        "seconds": 0.0,
        "error": error,
    }


def describe_error(exc: BaseException) -> str:
    """One line for a user error; the exception and the last frames for anything else."""
    if isinstance(exc, W2SGError):
        return str(exc)
    tail = "".join(traceback.format_exception(exc)[-6:])
    return f"{type(exc).__name__}: {exc}\n{tail}"


def execute(spec_dict: dict[str, Any], inputs: dict[str, np.ndarray], run_fn: RunFn) -> dict:
    """Run one configuration on its inputs and return its store record (never raises)."""
    spec = RunSpec.from_dict(spec_dict)
    started = _now()
    t0 = time.perf_counter()
    try:
        check_aligned(inputs, spec)
        splits = inputs.get("splits")
        given: dict[str, Any] = (
            {"given_splits": splits} if splits is not None and len(splits) else {}
        )
        if spec.is_ensemble:
            given["members"] = [inputs[role] for role in member_roles(spec)]
        out = run_fn(spec, *(inputs[role] for role in ROLES), **given)
        versions: dict[str, Any] = dict(_versions())
        if spec.dataset != SYNTHETIC:
            versions["models"] = model_fingerprints(spec)
    except Exception as exc:  # a failed run is recorded, the sweep goes on
        rec = failed_record(spec, describe_error(exc), started)
        rec["seconds"] = time.perf_counter() - t0
        return rec
    return {
        **base_record(spec),
        "status": "done",
        "started": started,
        "finished": _now(),
        "seconds": time.perf_counter() - t0,
        "versions": versions,
        "metrics": out.get("metrics"),
        "theory": out.get("theory"),
        "bounds": out.get("bounds"),
        "error": None,
    }


def check_aligned(inputs: dict[str, np.ndarray], spec: RunSpec) -> None:
    """Rows of the weak and strong representations and the labels must be the same examples."""
    n = len(inputs["labels"])
    given = inputs.get("splits")
    roles = (
        ("weak", "strong", "ids", "splits")
        if given is not None and len(given)
        else ROLES[:2] + ("ids",)
    ) + tuple(member_roles(spec)[1:])
    for role in roles:
        if len(inputs[role]) != n:
            raise W2SGError(
                f"{spec.task_name}: {role} has {len(inputs[role])} rows but the labels have {n}; "
                "clear the representation cache for this dataset and re-run"
            )
