"""Label-free choice of supervisors: rank candidate weak models for one strong model (or candidate
strong models for one weak supervisor) by the representation metric of [X].

For each candidate, on the same examples (D̂: a registered dataset, a file of texts or SMILES, or
aligned arrays), :func:`w2sg.theory.kernels.metrics_against_many` computes the label-free
‖P_s(I − P_w)‖_op and ‖P_s(I − P_w)‖_F²/n (and, with labels, the predicted gap
G = ‖P_s(I − P_w)ŷ‖²/n), with the fixed side factorised once. Smaller is better for all three: a
weak supervisor whose principal space covers the strong model's leaves fewer of its errors for the
student to copy. Candidates are sorted by ``by`` (ties broken by the other label-free metric).

Candidates are arrays, array files (``.npy``, ``.npz[:key]``, ``.parquet``, ``.csv``) or models:
a registered name, ``NAME@LAYER``, ``hf:<name-or-folder>`` or a model folder. Several layers of
one model come from one forward pass (``layer="all"``, cached in the embedding cache and shared
with sweeps over the same inputs).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.config import KernelConfig
from w2sg.errors import W2SGError

RANK_BY: tuple[str, ...] = ("op_norm", "fro_sq_over_n", "predicted_gap")
_ARRAY_SUFFIXES = (".npy", ".npz", ".parquet", ".csv")

#: A candidate: an array, an array file or a model name.
Item = np.ndarray | str | Path


@dataclass
class RankResult:
    """A ranking. ``role``: what the candidates are (``weak`` or ``strong``); ``fixed``: the name
    of the other side; ``candidates``: one dict per candidate, best first, with ``rank``,
    ``name``, ``d`` and every key of :func:`w2sg.theory.kernels.representation_metrics`;
    ``seconds``: ``load`` (inputs and representations) and ``metric``."""

    role: str
    fixed: str
    by: str
    n: int
    candidates: list[dict[str, Any]]
    kernel: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "fixed": self.fixed,
            "by": self.by,
            "n": self.n,
            "inputs": self.inputs,
            "kernel": self.kernel,
            "candidates": self.candidates,
            "seconds": self.seconds,
        }

    @property
    def order(self) -> list[str]:
        """Candidate names, best first."""
        return [c["name"] for c in self.candidates]

    def table(self) -> str:
        """The ranking as an aligned text table."""
        cols = ["rank", "candidate", "op_norm", "fro_sq_over_n", "k_weak", "k_strong", "d"]
        if self.candidates and "predicted_gap" in self.candidates[0]:
            cols.insert(4, "predicted_gap")

        def cell(value: Any) -> str:
            return f"{value:.4f}" if isinstance(value, float) else str(value)

        rows = [[cell(c.get(col, c.get("name"))) for col in cols] for c in self.candidates]
        for row, c in zip(rows, self.candidates, strict=True):
            row[1] = c["name"]
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(cols)]
        lines = ["  ".join(h.ljust(w) if i == 1 else h.rjust(w) for i, (h, w) in
                           enumerate(zip(cols, widths, strict=True)))]  # fmt: skip
        for r in rows:
            lines.append(
                "  ".join(
                    v.ljust(w) if i == 1 else v.rjust(w)
                    for i, (v, w) in enumerate(zip(r, widths, strict=True))
                )  # fmt: skip
            )
        return "\n".join(lines)


def is_array_file(item: str) -> bool:
    """Whether a candidate string names an array file rather than a model."""
    path_text = item.rsplit(".npz:", 1)[0] + ".npz" if ".npz:" in item else item
    return Path(path_text).suffix.lower() in _ARRAY_SUFFIXES


def split_layer(spec: str) -> tuple[str, int | str | None]:
    """``NAME@3`` → ``("NAME", 3)``; ``NAME`` → ``("NAME", None)`` (the model's own output).

    Only a last ``@`` followed by no path separator splits, so folders with ``@`` stay whole."""
    name, at, layer = spec.rpartition("@")
    if not at or not name or not layer or "/" in layer:
        return spec, None
    return name, int(layer) if layer.lstrip("-").isdigit() else layer


@dataclass
class _Inputs:
    """The examples every model-named candidate is computed on."""

    texts: list[str] | None
    labels: np.ndarray | None
    task: str | None
    describe: dict[str, Any]


def _load_inputs(
    dataset: str | None,
    texts: str | Path | None,
    smiles: str | Path | None,
    inputs: Sequence[str] | None,
    *,
    limit: int | None,
    seed: int,
    max_words: int | None,
) -> _Inputs:
    given = [x for x in (dataset, texts, smiles, inputs) if x is not None]
    if len(given) > 1:
        raise W2SGError("give the examples once: a dataset, a texts file or a SMILES file")
    if dataset is not None:
        from w2sg.data.datasets import load_dataset

        data = load_dataset(dataset, limit=limit, seed=seed, max_words=max_words)
        return _Inputs(
            list(data.inputs),
            np.asarray(data.labels),
            data.task,
            {"dataset": data.name, "limit": limit, "data_seed": seed, "max_words": max_words},
        )
    if texts is not None or smiles is not None:
        from w2sg.data.datasets import read_lines, truncate_words

        path = texts if texts is not None else smiles
        assert path is not None
        lines = read_lines(path)
        if limit is not None:
            lines = lines[:limit]
        if max_words is not None:
            if texts is None:
                raise W2SGError("max_words cuts texts, not SMILES; drop it")
            lines, _ = truncate_words(lines, max_words)
        kind = "texts" if texts is not None else "smiles"
        return _Inputs(lines, None, None, {kind: str(path), "limit": limit})
    if inputs is not None:
        return _Inputs(list(inputs), None, None, {"inputs": len(inputs)})
    return _Inputs(None, None, None, {})


def _layers_of_model(
    model: str, layers: list[int | str | None], texts: list[str]
) -> dict[int | str | None, np.ndarray]:
    """The representations of ``texts`` at each requested layer of ``model``.

    As in sweeps (:func:`w2sg.experiments.runner._prepare_dataset`): two or more inner layers of a
    transformer come from one all-layer pass, sliced; a single inner layer is asked for alone
    (``embed`` slices it from that pass when the cache holds it); the model's own output
    (``None``) and its last layer keep the model's pooling.
    """
    from w2sg.represent.extract import embed
    from w2sg.represent.models import get_spec

    n_layers = get_spec(model).layers
    inner = [
        layer
        for layer in layers
        if n_layers is not None and isinstance(layer, int) and layer % (n_layers + 1) < n_layers
    ]
    out: dict[int | str | None, np.ndarray] = {}
    if len(inner) >= 2:
        stacked = embed(model, texts, layer="all", progress=False)
        for index in inner:
            assert isinstance(index, int)
            out[index] = np.asarray(stacked[index])
    for wanted in layers:
        if wanted not in out:
            out[wanted] = np.asarray(
                embed(model, texts, layer=-1 if wanted is None else wanted, progress=False)
            )
    return out


def _named(items: Sequence[Item] | Mapping[str, Item] | Item, role: str) -> list[tuple[str, Item]]:
    if isinstance(items, Mapping):
        return [(str(k), v) for k, v in items.items()]
    if isinstance(items, str | Path | np.ndarray):
        items = [items]
    out: list[tuple[str, Item]] = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            out.append((f"{role}_{i + 1}", item))
        else:
            out.append((str(item), item))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise W2SGError(f"{role} candidate {dup!r} is given twice; give each candidate once")
    return out


class _Loader:
    """Turns items into matrices: arrays as given, files read, models extracted on the inputs
    (every layer of one model asked for at once, see :func:`_layers_of_model`)."""

    def __init__(self, inputs: _Inputs, items: list[tuple[str, Item]]) -> None:
        self.inputs = inputs
        wanted: dict[str, list[int | str | None]] = {}
        for _, item in items:
            if isinstance(item, str) and not is_array_file(item):
                model, layer = split_layer(item)
                wanted.setdefault(model, []).append(layer)
        if wanted and inputs.texts is None:
            first = next(iter(wanted))
            raise W2SGError(
                f"{first!r} is a model: give the examples it reads (a dataset, a texts or SMILES "
                "file), or pass representation files (.npy)"
            )
        self.wanted = wanted
        self.done: dict[str, dict[int | str | None, np.ndarray]] = {}

    def load(self, name: str, item: Item, what: str) -> np.ndarray:
        if isinstance(item, np.ndarray):
            return item
        text = str(item)
        if isinstance(item, Path) or is_array_file(text):
            from w2sg.data.io import load_array

            arr = load_array(text, what)
            if arr.ndim != 2:
                raise W2SGError(f"{what}: {text} has shape {arr.shape}; a representation is (n, d)")
            return arr
        model, layer = split_layer(text)
        if model not in self.done:
            assert self.inputs.texts is not None
            self.done[model] = _layers_of_model(model, self.wanted[model], self.inputs.texts)
        return self.done[model][layer]


def _labels_for_gap(labels: Any, inputs: _Inputs, task: str | None, n: int) -> np.ndarray | None:
    """Numeric targets for G, encoded as the theory block of a run encodes them (values, ±1 for
    binary, one-hot for several classes)."""
    if labels is None or labels is False:
        return None
    if labels is True:
        if inputs.labels is None:
            raise W2SGError("labels=True uses a dataset's labels; give a dataset or a labels file")
        values, task = inputs.labels, task or inputs.task
    elif isinstance(labels, str | Path):
        from w2sg.data.io import load_array

        values = load_array(str(labels), "--labels")
    else:
        values = np.asarray(labels)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or len(values) != n:
        raise W2SGError(f"labels have shape {values.shape}; one label per example ({n}) is needed")
    if task is None:
        integral = values.dtype.kind in "biu" or bool(np.all(values == np.round(values)))
        task = "classification" if integral and len(np.unique(values)) <= 50 else "regression"
    from w2sg.pipeline import prepare_labels

    return np.asarray(prepare_labels(values, task).theory_targets(np.arange(n)), dtype=float)


def rank(
    strong: Sequence[Item] | Mapping[str, Item] | Item,
    weak: Sequence[Item] | Mapping[str, Item] | Item,
    *,
    dataset: str | None = None,
    texts: str | Path | None = None,
    smiles: str | Path | None = None,
    inputs: Sequence[str] | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_words: int | None = None,
    labels: Any = None,
    task: str | None = None,
    by: str = "op_norm",
    beta_weak: float = 0.0,
    beta_strong: float = 0.0,
    config: KernelConfig | None = None,
    workers: int | None = None,
) -> RankResult:
    """Rank candidate supervisors without labels (or candidate students, the transpose).

    One side is a single representation, the other any number of candidates: one ``strong`` and
    several ``weak`` ranks weak supervisors for that strong model; one ``weak`` and several
    ``strong`` ranks strong models for that weak supervisor. Items are arrays, array files or
    models (``NAME``, ``NAME@LAYER``, ``hf:...``, a folder), the models computed on ``dataset``
    (with ``limit``, ``seed``, ``max_words`` as in :func:`w2sg.data.datasets.load_dataset`),
    the lines of ``texts``/``smiles``, or ``inputs``. Every representation must hold the same
    examples in the same order.

    ``labels`` (optional): an array, a file, or ``True`` for the dataset's labels; then G (the
    predicted gap) is computed too, on targets encoded as in a run's theory block (``task``
    defaults to the dataset's, else classification for integer labels, regression otherwise).
    ``by``: ``op_norm`` (default), ``fro_sq_over_n`` or ``predicted_gap`` (needs labels);
    smaller is better. ``config``: the k rule and γ's (:class:`KernelConfig`; default
    ``mp_edge``, σ̂ from the median). ``workers``: candidates decomposed side by side, one BLAS
    thread each (default: every core; see :func:`~w2sg.theory.kernels.metrics_against_many`).
    """
    from w2sg.theory.kernels import metrics_against_many

    if by not in RANK_BY:
        raise W2SGError(f"unknown ranking metric {by!r}; use one of {', '.join(RANK_BY)}")
    if by == "predicted_gap" and labels is None:
        raise W2SGError("ranking by predicted_gap needs labels")
    config = config or KernelConfig()
    config.validate()
    t0 = time.perf_counter()
    strong_items, weak_items = _named(strong, "strong"), _named(weak, "weak")
    if not strong_items or not weak_items:
        raise W2SGError("give one strong and at least one weak representation (or the transpose)")
    if len(strong_items) > 1 and len(weak_items) > 1:
        raise W2SGError(
            f"got {len(strong_items)} strong and {len(weak_items)} weak representations; fix "
            "one side: one strong with several weak candidates, or one weak with several strong"
        )
    role = "strong" if len(strong_items) > 1 else "weak"
    fixed_name, fixed_item = (weak_items if role == "strong" else strong_items)[0]
    candidates = strong_items if role == "strong" else weak_items
    fixed_role = "weak" if role == "strong" else "strong"
    examples = _load_inputs(
        dataset, texts, smiles, inputs, limit=limit, seed=seed, max_words=max_words
    )
    loader = _Loader(examples, [(fixed_name, fixed_item), *candidates])
    fixed = loader.load(fixed_name, fixed_item, f"--{fixed_role}")
    n = fixed.shape[0]
    y = _labels_for_gap(labels, examples, task, n)
    t_load = time.perf_counter() - t0
    dims: dict[str, int] = {}
    load_seconds = [t_load]

    def stream() -> Iterator[tuple[str, np.ndarray]]:
        for name, item in candidates:
            t = time.perf_counter()
            arr = loader.load(name, item, f"--{role} {name}")
            load_seconds.append(time.perf_counter() - t)
            dims[name] = int(arr.shape[1])
            yield name, arr

    t1 = time.perf_counter()
    rows = []
    for name, metrics in metrics_against_many(
        fixed, stream(), fixed_role=fixed_role, y=y, beta_weak=beta_weak,
        beta_strong=beta_strong, config=config, workers=workers,
    ):  # fmt: skip
        rows.append({"name": name, "d": dims[name], **metrics})
    t_total = time.perf_counter() - t0
    tie = "fro_sq_over_n" if by != "fro_sq_over_n" else "op_norm"
    rows.sort(key=lambda r: (float(r[by]), float(r[tie])))
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    ordered = [{"rank": r.pop("rank"), **r} for r in rows]
    load = float(sum(load_seconds))
    return RankResult(
        role=role,
        fixed=fixed_name,
        by=by,
        n=n,
        candidates=ordered,
        kernel=dict(config.__dict__),
        seconds={
            "load": load,
            "metric": max(time.perf_counter() - t1 - (load - t_load), 0.0),
            "total": t_total,
        },
        inputs={**examples.describe, "fixed_d": int(fixed.shape[1]), "labels": y is not None},
    )
