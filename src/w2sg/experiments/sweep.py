"""Sweep configurations: a YAML file naming tasks × weak models × strong models × heads × seeds.

A sweep expands into :class:`RunSpec` objects, one per unique run. Each has a stable
``config_hash``: the SHA-256 of the canonical JSON of its full description (dataset and its
parameters, the weak and strong representations, and ``RunConfig.to_dict()``), so the same run
always has the same hash and the results store can tell what is already done.

Example (``examples/sweep-synthetic.yaml`` is a complete one)::

    name: my-sweep
    tasks:
      - name: synth
        dataset: synthetic
        params: {n: 800}
      - dataset: rotten_tomatoes
        limit: 4000
    weak: [static-64, minilm-l6@3, {model: mpnet-base, layer: 6, pooling: mean}]
    strong: [mpnet-base]
    heads: [ridge, softmax/xent, {head: softmax, loss: logconf}]
    seeds: [0, 1]
    run: {weak_ridge: 0.01, strong_ridge: 0.0, kernel: {rule: variance, variance: 0.9}}

A model is ``name``, ``name@layer`` or a mapping ``{model, layer, pooling}``. A weak entry may be
a fine-tuned supervisor, ``{model: minilm-l6, layer: 2, train: full, lr: 0.00005, head_lr: 0.01}``
(``train`` full or lora and the fine-tuning keys of :class:`~w2sg.config.FinetuneConfig`, its own
settings, FinetuneConfig's defaults where not given, whatever the head entry; ``@L`` keeps the
embeddings and first L blocks): its runs have ``weak_train`` set, and it is labelled
``minilm-l6@2[full,...]`` next to the probed supervisors. A weak entry may also be an ensemble,
``{ensemble: [a, b, c], combine: metric}`` (``combine`` one rule or a list of rules of
:data:`~w2sg.config.COMBINE_RULES`, default ``average``; ``combine_temperature`` for ``metric``,
``combine_labels`` for ``learned_labelled``): one weak side per rule, the members combined into one
set of weak labels as ``w2sg run --weak a b c --combine RULE`` does. A head is a head name,
``head/loss``, or a mapping of :class:`~w2sg.config.RunConfig` fields. ``run`` holds the RunConfig
fields shared by every run (without ``kernel``: the default k rule, ``mp_edge``; a ``kernel``
mapping without ``rule`` that sets one rule's parameter, e.g. ``{variance: 0.99}``, gets that rule);
a task may set ``task`` (classification, regression, probability) and
its own ``weak``/``strong`` lists; a text dataset may set ``max_words`` (each text cut to its first
N words, for every model alike). The synthetic generator's data seed is the run's seed unless the
task sets ``seed``; a registered dataset is subsampled with ``seed`` (default 0) so that every run
of a sweep sees the same examples and shares cached representations.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from w2sg.config import COMBINE_RULES, FinetuneConfig, RunConfig, implied_rule
from w2sg.errors import W2SGError

SYNTHETIC = "synthetic"

_TOP_KEYS = ("name", "tasks", "weak", "strong", "heads", "seeds", "run")
_COLUMN_KEYS = ("text", "label", "id", "split", "smiles", "label_order", "template")
_TASK_KEYS = (
    "name", "dataset", "data", "params", "limit", "max_words", "seed", "task", "weak", "strong",
    *_COLUMN_KEYS,
)  # fmt: skip
FILE_DATASET = "file"
_MODEL_KEYS = ("model", "layer", "pooling")
#: What a weak entry may add to fine-tune the weak model itself: ``train`` and its settings.
_WEAK_TRAIN_KEYS = ("train", *(f.name for f in dataclasses.fields(FinetuneConfig)))
#: The combination settings of an ensemble entry (``weak: [{ensemble: [a, b], combine: metric}]``):
#: RunConfig fields that belong to the weak side, not to a head or to ``run``.
_COMBINE_KEYS = ("combine", "combine_temperature", "combine_labels")
_ENSEMBLE_KEYS = ("ensemble", *_COMBINE_KEYS)
_RUN_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in _COMBINE_KEYS)
#: Fine-tuning settings a head entry (or ``run``) may give flat, next to ``train: full|lora``:
#: they fill the entry's ``finetune`` block. ``epochs``, ``lr`` and ``batch_size`` go there too
#: when the entry fine-tunes (they set Adam heads otherwise).
_FINETUNE_KEYS = tuple(
    f.name for f in dataclasses.fields(FinetuneConfig) if f.name not in ("epochs", "lr")
)
_SHARED_KEYS = ("epochs", "lr", "batch_size")


def canonical_json(value: Any) -> str:
    """The canonical JSON text hashed into ``config_hash`` (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class ModelRef:
    """A representation: a model, optionally one of its layers and a pooling rule."""

    model: str
    layer: int | str | None = None
    pooling: str | None = None
    #: a weak entry fine-tuned itself: ``full`` or ``lora`` (``None``: trained as the run says)
    train: str | None = None
    #: its fine-tuning settings (FinetuneConfig fields, sorted by name; defaults elsewhere)
    finetune: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """``model`` or ``model@layer``: the model name that loads it (``minilm-l6@2``)."""
        return self.model if self.layer is None else f"{self.model}@{self.layer}"

    @property
    def label(self) -> str:
        """``model``, ``model@layer``, with ``:pooling`` appended when a pooling rule is set, and
        ``[full]`` / ``[full,lr=5e-05,...]`` for a fine-tuned weak entry."""
        text = self.name if self.pooling is None else f"{self.name}:{self.pooling}"
        if self.train is None:
            return text
        settings = "".join(f",{k}={v}" for k, v in self.finetune)
        return f"{text}[{self.train}{settings}]"

    def finetune_config(self) -> FinetuneConfig | None:
        """The fine-tuning settings of a fine-tuned weak entry (``None`` otherwise)."""
        return None if self.train is None else FinetuneConfig(**dict(self.finetune))

    def to_dict(self) -> dict[str, Any]:
        """What a run's description holds (``train`` and ``finetune`` only when set, so that
        probed models keep their hashes)."""
        out: dict[str, Any] = {"model": self.model, "layer": self.layer, "pooling": self.pooling}
        if self.train is not None:
            out["train"] = self.train
            out["finetune"] = dict(self.finetune)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRef:
        settings = tuple(sorted((data.get("finetune") or {}).items()))
        return cls(
            data["model"], data.get("layer"), data.get("pooling"), data.get("train"), settings
        )

    @property
    def models(self) -> tuple[ModelRef, ...]:
        """The representations this weak side reads: itself."""
        return (self,)


_DEFAULT_TEMPERATURE = RunConfig.combine_temperature
_DEFAULT_COMBINE_LABELS = RunConfig.combine_labels


@dataclass(frozen=True)
class EnsembleRef:
    """A weak side of M ≥ 2 weak models whose outputs are combined into one set of weak labels
    by ``combine`` (:mod:`w2sg.experiments.ensemble`, ``w2sg run --weak A B C --combine RULE``).

    ``temperature`` is τ of the ``metric`` rule, ``labels`` the revealed-label count of
    ``learned_labelled``; for the other rules they hold RunConfig's defaults (they do not change
    the run, so they do not change its hash). The rule and its settings are RunConfig fields of
    the run (``combine``, ``combine_temperature``, ``combine_labels``), hashed there; the weak
    side's description lists the members."""

    members: tuple[ModelRef, ...]
    combine: str = "average"
    temperature: float = _DEFAULT_TEMPERATURE
    labels: int = _DEFAULT_COMBINE_LABELS

    @property
    def label(self) -> str:
        """``ensemble[rule](a+b+c)``; ``ensemble[metric,t=0.1](…)`` with a τ other than the
        default, ``ensemble[learned_labelled,n=50](…)`` with another label count."""
        rule = self.combine
        if self.temperature != _DEFAULT_TEMPERATURE:
            rule += f",t={self.temperature:g}"
        if self.labels != _DEFAULT_COMBINE_LABELS:
            rule += f",n={self.labels}"
        return f"ensemble[{rule}](" + "+".join(m.label for m in self.members) + ")"

    @property
    def models(self) -> tuple[ModelRef, ...]:
        """The members, in order (the order of ``metrics.ensemble.members`` and ``weights``)."""
        return self.members

    def settings(self) -> dict[str, Any]:
        """The RunConfig fields of the combination."""
        return {
            "combine": self.combine,
            "combine_temperature": self.temperature,
            "combine_labels": self.labels,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"ensemble": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], config: RunConfig) -> EnsembleRef:
        return cls(
            tuple(ModelRef.from_dict(m) for m in data["ensemble"]),
            config.combine or "average",
            config.combine_temperature,
            config.combine_labels,
        )


#: A weak side: one representation, or several combined.
WeakRef = ModelRef | EnsembleRef


def weak_ref_from_dict(data: dict[str, Any], config: RunConfig) -> WeakRef:
    """The weak side of a stored description (``{"model": …}`` or ``{"ensemble": [...]}``)."""
    if "ensemble" in data:
        return EnsembleRef.from_dict(data, config)
    return ModelRef.from_dict(data)


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a dataset (or synthetic task), a weak and a strong representation, a
    :class:`RunConfig`. ``task_name`` is the display name used to group results."""

    task_name: str
    dataset: str
    params: dict[str, Any]
    limit: int | None
    data_seed: int
    weak: WeakRef
    strong: ModelRef
    config: RunConfig
    head_label: str
    max_words: int | None = None
    data: dict[str, Any] | None = None

    @property
    def is_ensemble(self) -> bool:
        return isinstance(self.weak, EnsembleRef)

    def description(self) -> dict[str, Any]:
        """The full description of the run whose canonical JSON is hashed (``max_words`` and
        ``data`` only when set, so that runs without them keep their hashes). ``data`` holds a
        data file's SHA-256 and column roles (not its path: a moved file is the same data, an
        edited one is not), or a hub dataset's column roles."""
        dataset: dict[str, Any] = {
            "name": self.dataset,
            "params": self.params,
            "limit": self.limit,
            "seed": self.data_seed,
        }
        if self.max_words is not None:
            dataset["max_words"] = self.max_words
        if self.data is not None:
            dataset["data"] = {k: v for k, v in self.data.items() if k != "path"}
        return {
            "dataset": dataset,
            "weak": self.weak.to_dict(),
            "strong": self.strong.to_dict(),
            "run": self.config.identity(),
        }

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.description()).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """What the results store keeps in its ``config`` column."""
        out = self.description()
        out["task"] = self.task_name
        out["head"] = self.head_label
        out["config_hash"] = self.config_hash
        if self.data is not None and "path" in self.data:
            out["data_path"] = self.data["path"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        ds = data["dataset"]
        source = ds.get("data")
        if source is not None and data.get("data_path"):
            source = {**source, "path": data["data_path"]}
        config = RunConfig.from_dict(data["run"])
        return cls(
            task_name=data["task"],
            dataset=ds["name"],
            params=dict(ds.get("params") or {}),
            limit=ds.get("limit"),
            data_seed=int(ds["seed"]),
            weak=weak_ref_from_dict(data["weak"], config),
            strong=ModelRef.from_dict(data["strong"]),
            config=config,
            head_label=data["head"],
            max_words=ds.get("max_words"),
            data=source,
        )


@dataclass(frozen=True)
class TaskSpec:
    """One entry of ``tasks``: a dataset (or the synthetic generator) and its models."""

    name: str
    dataset: str
    params: dict[str, Any]
    limit: int | None
    seed: int | None
    task: str | None
    weak: tuple[WeakRef, ...]
    strong: tuple[ModelRef, ...]
    max_words: int | None = None
    data: dict[str, Any] | None = None


@dataclass
class SweepConfig:
    """A parsed, validated sweep. :meth:`expand` gives the unique runs."""

    name: str
    tasks: list[TaskSpec]
    heads: list[dict[str, Any]]
    seeds: list[int]
    run: dict[str, Any] = field(default_factory=dict)
    source: str = "<sweep>"

    def expand(self) -> list[RunSpec]:
        """Every combination task × strong × weak × head × seed, once, in a stable order."""
        specs: dict[str, RunSpec] = {}
        for t_i, task in enumerate(self.tasks):
            for h_i, head in enumerate(self.heads):
                for seed in self.seeds:
                    config = _run_config(self, task, head, seed, f"tasks[{t_i}] × heads[{h_i}]")
                    data_seed = _data_seed(task, seed)
                    for strong in task.strong:
                        for w_i, weak in enumerate(task.weak):
                            run = config
                            if isinstance(weak, EnsembleRef):
                                run = _ensemble_config(
                                    self, config, weak, f"tasks[{t_i}].weak[{w_i}] × heads[{h_i}]"
                                )
                            elif weak.train is not None:  # the weak entry is fine-tuned itself
                                run = dataclasses.replace(config, weak_train=weak.train)
                            spec = RunSpec(
                                task_name=task.name,
                                dataset=task.dataset,
                                params=task.params,
                                limit=task.limit,
                                data_seed=data_seed,
                                weak=weak,
                                strong=strong,
                                config=run,
                                head_label=_head_label(head),
                                max_words=task.max_words,
                                data=task.data,
                            )
                            specs.setdefault(spec.config_hash, spec)
        return list(specs.values())


def _ensemble_config(
    sweep: SweepConfig, config: RunConfig, weak: EnsembleRef, where: str
) -> RunConfig:
    """The RunConfig of an ensemble weak side: ``config`` with the combination's settings."""
    if config.weak_train != "probe":
        raise W2SGError(
            f"{sweep.source}: {where}: the members of an ensemble are probes on their "
            "representations; use weak_train: probe (train: full|lora fine-tunes the student)"
        )
    if weak.combine == "soft_vote" and config.task == "regression":
        raise W2SGError(
            f"{sweep.source}: {where}: soft_vote picks a class; for regression use average, "
            "metric, learned, learned_labelled or vote (the median)"
        )
    return dataclasses.replace(config, **weak.settings())


def _data_seed(task: TaskSpec, run_seed: int) -> int:
    if task.seed is not None:
        return task.seed
    return run_seed if task.dataset == SYNTHETIC else 0


def _head_label(head: dict[str, Any]) -> str:
    """``head``, ``head/loss``, with the entry's other settings appended in brackets
    (``ridge[rule=noise_floor]``, ``softmax/xent[weak_ridge=0.001]``; kernel settings by their
    own names, ``weak_finetune``'s as ``weak_lr=…``) so that study tables tell such entries
    apart."""
    name = str(head.get("head", RunConfig.head))
    if name == "softmax" or "loss" in head:
        name = f"{name}/{head.get('loss', RunConfig.loss)}"
    settings = {
        k: v for k, v in head.items() if k not in ("head", "loss", "kernel", "weak_finetune")
    }
    settings.update(head.get("kernel") or {})
    settings.update({f"weak_{k}": v for k, v in (head.get("weak_finetune") or {}).items()})
    if settings:
        name += "[" + ",".join(f"{k}={v}" for k, v in sorted(settings.items())) + "]"
    return name


def _run_config(
    sweep: SweepConfig, task: TaskSpec, head: dict[str, Any], seed: int, where: str
) -> RunConfig:
    merged: dict[str, Any] = {k: v for k, v in sweep.run.items() if k != "kernel"}
    if task.task is not None:
        merged["task"] = task.task
    merged.update({k: v for k, v in head.items() if k != "kernel"})
    finetune = dict(merged.pop("finetune", None) or {})
    for key in _FINETUNE_KEYS:
        if key in merged and key not in _RUN_KEYS:
            finetune[key] = merged.pop(key)
    if merged.get("train", "probe") != "probe" or merged.get("weak_train", "probe") != "probe":
        for key in _SHARED_KEYS:
            if key in merged:
                finetune[key] = merged.pop(key)
    if finetune:
        merged["finetune"] = finetune
    merged["seed"] = seed
    try:
        head_kernel = dict(head.get("kernel") or {})
        rule = implied_rule(head_kernel)  # a head's {variance: 0.99} is the variance rule
        if rule is not None:
            head_kernel["rule"] = rule
        merged["kernel"] = {**(sweep.run.get("kernel") or {}), **head_kernel}
        config = RunConfig.from_dict(merged)
        config.validate()
    except TypeError as exc:
        raise W2SGError(f"{sweep.source}: {where}: invalid run settings ({exc})") from exc
    except W2SGError as exc:
        raise W2SGError(f"{sweep.source}: {where}: {exc}") from exc
    return config


# -- parsing ----------------------------------------------------------------------------------


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise W2SGError(f"sweep config {p} not found; pass the path of a .yaml file")
    try:
        from w2sg.data.io import read_text

        data = yaml.safe_load(read_text(p, "sweep config"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise W2SGError(f"sweep config {p}: invalid YAML{at}; fix the syntax") from exc
    return parse_sweep(data, source=str(p))


def parse_sweep(data: Any, source: str = "<sweep>") -> SweepConfig:
    """Validate a sweep given as a mapping (the parsed YAML). Errors name the key and the fix."""

    def fail(where: str, problem: str) -> W2SGError:
        return W2SGError(f"{source}: {where}: {problem}")

    if not isinstance(data, dict):
        raise fail("top level", "must be a mapping with keys tasks, weak, strong, heads, seeds")
    _check_keys(data, _TOP_KEYS, "top level", fail)
    name = data.get("name", Path(source).stem)
    if not isinstance(name, str) or not name:
        raise fail("name", "must be a non-empty string")

    run = data.get("run") or {}
    if not isinstance(run, dict):
        raise fail("run", "must be a mapping of run settings, e.g. {strong_ridge: 0.0}")
    _check_combine_keys(run, "run", fail)
    _check_keys(
        run, tuple(k for k in (*_RUN_KEYS, *_FINETUNE_KEYS) if k != "seed"), "run", fail,
        hint_seed=True,
    )  # fmt: skip
    if "kernel" in run and not isinstance(run["kernel"], dict):
        raise fail("run.kernel", "must be a mapping, e.g. {rule: variance, variance: 0.9}")

    seeds = data.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise fail("seeds", "must be a non-empty list of non-negative integers, e.g. [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise fail("seeds", f"lists a seed twice ({seeds}); list each seed once")

    heads_raw = data.get("heads", [{}])
    if not isinstance(heads_raw, list) or not heads_raw:
        raise fail("heads", "must be a non-empty list, e.g. [ridge, softmax/xent]")
    heads = [_parse_head(h, f"heads[{i}]", fail) for i, h in enumerate(heads_raw)]

    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise fail("tasks", "must be a non-empty list of datasets, e.g. [{dataset: synthetic}]")
    default_weak = (
        _parse_models(data["weak"], "weak", fail, ensembles=True)
        if data.get("weak") is not None
        else None
    )
    default_strong = (
        _parse_models(data["strong"], "strong", fail) if data.get("strong") is not None else None
    )
    tasks = [
        _parse_task(t, f"tasks[{i}]", default_weak, default_strong, fail, source)
        for i, t in enumerate(tasks_raw)
    ]
    names = [t.name for t in tasks]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise fail(f"tasks[{i}].name", f"{n!r} is used twice; give each task its own name")

    sweep = SweepConfig(name=name, tasks=tasks, heads=heads, seeds=list(seeds), run=dict(run))
    sweep.source = source
    sweep.expand()  # validates every RunConfig combination
    return sweep


def _check_keys(
    data: dict[str, Any],
    known: tuple[str, ...],
    where: str,
    fail: Any,
    hint_seed: bool = False,
) -> None:
    for key in data:
        if key not in known:
            if hint_seed and key == "seed":
                raise fail(f"{where}.seed", "seeds are listed at the top level: seeds: [0, 1]")
            import difflib

            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise fail(where, f"unknown key {key!r}; {hint}")


def _parse_head(value: Any, where: str, fail: Any) -> dict[str, Any]:
    if isinstance(value, str):
        head, _, loss = value.partition("/")
        return {"head": head, "loss": loss} if loss else {"head": head}
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(where, "must be a head name, 'head/loss' or a mapping like {head: softmax}")
    allowed = tuple(k for k in (*_RUN_KEYS, *_FINETUNE_KEYS) if k not in ("seed", "task"))
    _check_combine_keys(value, where, fail)
    _check_keys(value, allowed, where, fail, hint_seed=True)
    return dict(value)


def _check_combine_keys(value: dict[str, Any], where: str, fail: Any) -> None:
    """``combine`` and its settings belong to an ensemble weak entry, not to a head or ``run``."""
    for key in _COMBINE_KEYS:
        if key in value:
            raise fail(
                f"{where}.{key}",
                "combination settings belong to an ensemble weak entry: "
                "weak: [{ensemble: [A, B, C], combine: metric}]",
            )


def _parse_model(value: Any, where: str, fail: Any, *, weak: bool = False) -> ModelRef:
    if isinstance(value, str):
        model, at, layer_text = value.partition("@")
        if not model or (at and not layer_text):
            raise fail(where, f"{value!r} is not 'model' or 'model@layer'")
        layer: int | str | None = None
        if at:
            layer = int(layer_text) if layer_text.lstrip("-").isdigit() else layer_text
        return ModelRef(model, layer)
    if isinstance(value, dict):
        if not weak and "train" in value:
            raise fail(
                f"{where}.train",
                "fine-tunes a weak entry; the strong model's training is set per head entry "
                "(heads: [{head: softmax, train: lora}])",
            )
        _check_keys(value, (*_MODEL_KEYS, *(_WEAK_TRAIN_KEYS if weak else ())), where, fail)
        name = value.get("model")
        if not isinstance(name, str) or not name:
            raise fail(f"{where}.model", "is required: the name of a registered model")
        layer = value.get("layer")
        if layer is not None and not isinstance(layer, int | str):
            raise fail(f"{where}.layer", "must be an integer layer index or a layer name")
        pooling = value.get("pooling")
        if pooling is not None and not isinstance(pooling, str):
            raise fail(f"{where}.pooling", "must be a pooling name such as mean or cls")
        settings = {k: v for k, v in value.items() if k in _WEAK_TRAIN_KEYS and k != "train"}
        train = value.get("train")
        if settings and train is None:
            first = sorted(settings)[0]
            raise fail(f"{where}.{first}", "fine-tunes the weak model; add train: full")
        if train is None:
            return ModelRef(name, layer, pooling)
        if train not in ("full", "lora"):
            raise fail(f"{where}.train", "must be full or lora (a probe is the plain entry)")
        try:
            FinetuneConfig(**settings).validate()
        except (TypeError, W2SGError) as exc:
            raise fail(where, f"invalid fine-tuning settings ({exc})") from None
        return ModelRef(name, layer, pooling, train, tuple(sorted(settings.items())))
    raise fail(where, "must be 'model', 'model@layer' or {model: ..., layer: ..., pooling: ...}")


def _parse_ensemble(value: dict[str, Any], where: str, fail: Any) -> list[EnsembleRef]:
    """``{ensemble: [a, b, ...], combine: RULE or [RULES], combine_temperature, combine_labels}``:
    one :class:`EnsembleRef` per rule."""
    _check_keys(value, _ENSEMBLE_KEYS, where, fail)
    raw = value.get("ensemble")
    if not isinstance(raw, list) or len(raw) < 2:
        raise fail(f"{where}.ensemble", "must list at least 2 weak models, e.g. [a, b, c]")
    members = tuple(_parse_model(v, f"{where}.ensemble[{i}]", fail) for i, v in enumerate(raw))
    for i, ref in enumerate(members):
        if isinstance(raw[i], dict) and "ensemble" in raw[i]:
            raise fail(f"{where}.ensemble[{i}]", "an ensemble cannot contain an ensemble")
        if members.index(ref) != i:
            raise fail(f"{where}.ensemble[{i}]", f"{ref.label!r} is listed twice; list it once")
    rules = value.get("combine", "average")
    rules = [rules] if isinstance(rules, str) else rules
    if not isinstance(rules, list) or not rules:
        raise fail(f"{where}.combine", "must be a rule or a list of rules, e.g. [average, metric]")
    for rule in rules:
        if rule not in COMBINE_RULES:
            raise fail(
                f"{where}.combine", f"unknown rule {rule!r}; use one of {', '.join(COMBINE_RULES)}"
            )
    if len(set(rules)) != len(rules):
        raise fail(f"{where}.combine", f"lists a rule twice ({rules}); list each rule once")
    temperature = value.get("combine_temperature", _DEFAULT_TEMPERATURE)
    if "combine_temperature" in value and "metric" not in rules:
        raise fail(f"{where}.combine_temperature", "is τ of the metric rule; add combine: metric")
    if (
        not isinstance(temperature, int | float)
        or isinstance(temperature, bool)
        or not temperature > 0
    ):
        raise fail(f"{where}.combine_temperature", "must be a number > 0, e.g. 0.05")
    labels = value.get("combine_labels", _DEFAULT_COMBINE_LABELS)
    if "combine_labels" in value and "learned_labelled" not in rules:
        raise fail(
            f"{where}.combine_labels", "is the label count of learned_labelled; add that rule"
        )
    if not isinstance(labels, int) or isinstance(labels, bool) or labels < 2:
        raise fail(f"{where}.combine_labels", "must be an integer >= 2 (labels revealed on D̂)")
    return [
        EnsembleRef(
            members,
            rule,
            float(temperature) if rule == "metric" else _DEFAULT_TEMPERATURE,
            labels if rule == "learned_labelled" else _DEFAULT_COMBINE_LABELS,
        )
        for rule in rules
    ]


def _parse_models(value: Any, where: str, fail: Any, *, ensembles: bool = False) -> tuple[Any, ...]:
    """A list of models (``ensembles``: weak entries, which may also be ensembles)."""
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise fail(where, "must be a non-empty list of models, e.g. [static-64, minilm-l6@3]")
    refs: list[Any] = []
    for i, v in enumerate(value):
        if isinstance(v, dict) and "ensemble" in v:
            if not ensembles:
                raise fail(f"{where}[{i}]", "an ensemble is a weak side; list it under weak")
            found: list[Any] = list(_parse_ensemble(v, f"{where}[{i}]", fail))
        else:
            found = [_parse_model(v, f"{where}[{i}]", fail, weak=ensembles)]
        for ref in found:
            if ref in refs:
                raise fail(f"{where}[{i}]", f"{ref.label!r} is listed twice; list it once")
            refs.append(ref)
    return tuple(refs)


def _parse_data(value: dict[str, Any], where: str, fail: Any, source: str) -> dict[str, Any] | None:
    """The ``data`` of a task: a data file's path, SHA-256 and column roles, or the column roles
    of an ``hf:`` dataset; ``None`` for registered datasets and the generator."""
    given = {k: value[k] for k in _COLUMN_KEYS if value.get(k) is not None}
    path = value.get("data")
    dataset = value.get("dataset")
    is_hf = isinstance(dataset, str) and dataset.startswith("hf:")
    if path is None and not is_hf:
        if given:
            key = next(iter(given))
            raise fail(
                f"{where}.{key}", "names a column of a data file (data: FILE) or hf: dataset"
            )
        return None
    from w2sg.data.files import Columns, parse_column_list

    for key in ("label", "id", "split", "smiles", "template"):
        if key in given and not isinstance(given[key], str):
            raise fail(f"{where}.{key}", "must be a column name (a string)")
    columns = Columns(
        text=parse_column_list(given.get("text")),
        label=given.get("label"),
        id=given.get("id"),
        split=given.get("split"),
        smiles=given.get("smiles"),
        label_order=parse_column_list(given["label_order"]) if "label_order" in given else None,
        template=given.get("template"),
        task=value.get("task"),
    )
    if not columns.label or bool(columns.text) == bool(columns.smiles):
        raise fail(where, "a data task needs label: COL and text: COL (or [COL1, COL2]) or smiles")
    out: dict[str, Any] = {"columns": columns.to_dict()}
    if path is not None:
        if not isinstance(path, str) or not path:
            raise fail(f"{where}.data", "must be the path of a data file")
        found = Path(path).expanduser()
        beside = Path(source).parent / found
        if not found.is_absolute() and not found.exists() and beside.exists():
            found = beside  # relative to the sweep file
        if not found.is_file():
            raise fail(f"{where}.data", f"file not found: {path}")
        from w2sg.data.io import file_sha256

        out.update(path=str(found.resolve()), sha256=file_sha256(found))
    return out


def _parse_task(
    value: Any,
    where: str,
    default_weak: tuple[WeakRef, ...] | None,
    default_strong: tuple[ModelRef, ...] | None,
    fail: Any,
    source: str = "<sweep>",
) -> TaskSpec:
    if isinstance(value, str):
        value = {"dataset": value}
    if not isinstance(value, dict):
        raise fail(where, "must be a dataset name or a mapping like {dataset: synthetic}")
    _check_keys(value, _TASK_KEYS, where, fail)
    data = _parse_data(value, where, fail, source)
    dataset = FILE_DATASET if value.get("data") is not None else value.get("dataset")
    if value.get("data") is not None and value.get("dataset") is not None:
        raise fail(where, "give data (a file) or dataset (a name), not both")
    if not isinstance(dataset, str) or not dataset:
        raise fail(
            f"{where}.dataset",
            "is required: 'synthetic', a registered dataset name, hf:owner/name, or data: FILE",
        )
    params = value.get("params") or {}
    if not isinstance(params, dict):
        raise fail(f"{where}.params", "must be a mapping of generator parameters, e.g. {n: 800}")
    if params and dataset != SYNTHETIC:
        raise fail(f"{where}.params", "is for the synthetic generator; use limit for datasets")
    limit = value.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 2):
        raise fail(f"{where}.limit", "must be an integer >= 2 (the number of examples to use)")
    max_words = value.get("max_words")
    if max_words is not None and (
        not isinstance(max_words, int) or isinstance(max_words, bool) or max_words < 1
    ):
        raise fail(f"{where}.max_words", "must be an integer >= 1 (words kept of each text)")
    if max_words is not None and dataset == SYNTHETIC:
        raise fail(f"{where}.max_words", "is for text datasets; the generator has no texts")
    seed = value.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise fail(f"{where}.seed", "must be a non-negative integer (the data seed)")
    task = value.get("task")
    if task is not None and task not in ("classification", "regression", "probability"):
        raise fail(f"{where}.task", "must be classification, regression or probability")
    weak = (
        _parse_models(value["weak"], f"{where}.weak", fail, ensembles=True)
        if value.get("weak") is not None
        else default_weak
    )
    strong = (
        _parse_models(value["strong"], f"{where}.strong", fail)
        if value.get("strong") is not None
        else default_strong
    )
    if weak is None:
        raise fail(f"{where}.weak", "no weak models: list them under weak (top level or task)")
    if strong is None:
        raise fail(f"{where}.strong", "no strong model: list it under strong (top level or task)")
    default_name = Path(str(value["data"])).stem if value.get("data") is not None else dataset
    name = value.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "must be a non-empty string")
    spec = TaskSpec(
        name=name,
        dataset=dataset,
        params=dict(params),
        limit=limit,
        seed=seed,
        task=task,
        weak=weak,
        strong=strong,
        max_words=max_words,
        data=data,
    )
    from w2sg.experiments.runner import describe_task

    problem, data_task = describe_task(spec)
    if problem is not None:
        key, message = problem
        raise fail(f"{where}.{key}", message)
    if data_task is not None and task is None:
        spec = dataclasses.replace(spec, task=data_task)
    elif data_task is not None and task != data_task and dataset == SYNTHETIC:
        raise fail(
            f"{where}.task",
            f"{task} disagrees with the generator's task {data_task}; set params.task instead",
        )
    return spec
