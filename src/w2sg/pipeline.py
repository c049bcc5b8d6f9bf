"""The three-model weak-to-strong pipeline on frozen representations.

One call, :func:`run_pipeline`, does the whole experiment of THEORY.md section 1:

1. split the rows into weak_train (D̃), w2s_train (D̂), test (and val);
2. train the **weak** model on D̃ with true labels (or take a *labeller*'s given predictions);
3. the weak model labels D̂ (soft probabilities, and their argmax as hard labels);
4. train the **w2s** student on the strong representation of D̂ with the weak labels;
5. train the strong **ceiling** on the strong representation of D̂ with true labels;
6. score all three on D̂ and test, against ground truth and (students) against the weak labels,
   with PGR and its paired-bootstrap interval, the constant baseline, the run's ``flags``, the
   representation-kernel ``theory`` block and the ``bounds`` block.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2sg import atomic
from w2sg import metrics as M
from w2sg.config import RunConfig
from w2sg.data.splits import Splits, content_ids, make_splits, splits_from_names
from w2sg.errors import W2SGError
from w2sg.heads.learner import HeadSource, LearnerSource, is_score_head

__all__ = ["MODELS", "Labels", "RunResult", "is_score_head", "prepare_labels", "run_pipeline"]

MODELS = ("weak", "w2s", "ceiling")


@dataclass
class Labels:
    """Ground truth in the form each part of the pipeline needs.

    ``values``: class indices (classification), floats (regression) or positive-class probabilities
    (probability). ``targets``: what heads regress or fit: one-hot / soft ``(n, C)`` for the
    probability-valued heads and ridge, floats for regression.
    """

    task: str
    values: np.ndarray
    classes: np.ndarray | None

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)

    def targets(self, idx: np.ndarray) -> np.ndarray:
        v = self.values[idx]
        if self.task == "regression":
            return v.astype(float)
        if self.task == "probability":
            return np.column_stack([1.0 - v, v])
        return np.eye(self.n_classes)[v]

    def theory_targets(self, idx: np.ndarray) -> np.ndarray:
        """Numeric targets of the ridge setting of [X]: values, ±1 (binary) or one-hot."""
        v = self.values[idx]
        if self.task == "regression":
            return v.astype(float)
        if self.task == "probability":
            return 2.0 * v - 1.0
        if self.n_classes == 2:
            return 2.0 * v - 1.0
        return np.eye(self.n_classes)[v]


def prepare_labels(labels: np.ndarray, task: str) -> Labels:
    """Check that ``labels`` fit ``task`` and encode them (class labels become ``0..C-1``)."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise W2SGError(
            f"labels must be one value per row, got an array of shape {y.shape}; "
            "pass class indices, regression targets or positive-class probabilities"
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise W2SGError("labels contain NaN or inf values; remove those rows")
    if task == "classification":
        if y.dtype.kind == "f" and not np.all(y == np.round(y)):
            raise W2SGError(
                "--task classification needs integer class labels, but the labels are "
                "non-integer floats; use --task regression or --task probability"
            )
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise W2SGError("classification labels hold a single class; at least 2 are needed")
        if len(classes) > max(50, len(y) // 5):
            raise W2SGError(
                f"--task classification got {len(classes)} distinct labels for {len(y)} rows; "
                "these look like regression targets: use --task regression"
            )
        return Labels(task, codes.astype(int), classes)
    if y.dtype.kind not in "biuf":
        raise W2SGError(f"--task {task} needs numeric labels, got {y.dtype}")
    if task == "probability":
        if y.min() < 0.0 or y.max() > 1.0:
            raise W2SGError(
                "--task probability needs labels in [0, 1] (the positive-class probability); "
                f"got values in [{y.min():g}, {y.max():g}]"
            )
        return Labels(task, y.astype(float), np.array([0, 1]))
    if task == "regression":
        return Labels(task, y.astype(float), None)
    raise W2SGError(f"unknown task {task!r}; use classification, regression or probability")


# --------------------------------------------------------------------------------------------
# Score heads: their raw outputs become probabilities for the metrics.


def _proba_from_scores(scores: np.ndarray) -> np.ndarray:
    """Probabilities from the raw outputs of a least-squares head on one-hot targets.

    Each row is clipped to [0, 1] and renormalised (uniform when all entries clip to 0).
    """
    p = np.clip(scores, 0.0, 1.0)
    s = p.sum(axis=1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[1])
    return np.where(s > 0, p / np.where(s > 0, s, 1.0), uniform)


# --------------------------------------------------------------------------------------------
# Result


@dataclass
class RunResult:
    """Everything one run produced. ``to_dict()`` is the JSON printed by ``w2sg run --json``.

    ``flags``: ``{code, reason[, model]}`` dicts of :func:`w2sg.metrics.run_flags`
    (docs/pipeline.md).
    """

    config: RunConfig
    splits: Splits
    labels: Labels
    predictions: dict[str, dict[str, np.ndarray]]
    metrics: dict[str, Any]
    theory: dict[str, Any] | None = None
    bounds: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    train: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    theory_finetuned: dict[str, Any] | None = None
    flags: list[dict[str, str]] = field(default_factory=list)

    @property
    def n(self) -> dict[str, int]:
        return self.splits.sizes()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": self.config.task, "n": self.n}
        out.update(self.metrics)
        out["flags"] = self.flags
        out["theory"] = self.theory
        if self.theory_finetuned is not None:
            out["theory_finetuned"] = self.theory_finetuned
        out["bounds"] = self.bounds
        out["train"] = self.train
        if self.curve:
            out["curve"] = self.curve
        out["notes"] = self.notes
        out["config"] = self.config.to_dict()
        out["provenance"] = self.provenance
        return _jsonable(out)

    def prediction_arrays(self) -> dict[str, np.ndarray]:
        """Arrays of ``predictions.npz``: ``<model>_<split>_proba|pred``, ``<split>_labels|ids``."""
        kind = "pred" if self.config.task == "regression" else "proba"
        arrays: dict[str, np.ndarray] = {}
        for model, by_split in self.predictions.items():
            for split, arr in by_split.items():
                arrays[f"{model}_{split}_{kind}"] = arr
        for split, idx in self.splits.indices.items():
            arrays[f"{split}_labels"] = self.labels.values[idx]
            arrays[f"{split}_ids"] = self.splits.ids[idx].astype("U32")
        return arrays

    def save(self, out_dir: str | Path) -> Path:
        """Write ``config.json``, ``metrics.json`` and ``predictions.npz`` atomically."""
        return write_run_folder(out_dir, self.to_dict(), self.prediction_arrays())


def write_run_folder(out_dir: str | Path, record: dict[str, Any], arrays: dict[str, Any]) -> Path:
    """The run folder of ``w2sg run --out``: ``config.json`` (config and provenance),
    ``metrics.json`` (the whole record) and ``predictions.npz`` (``arrays``), each atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {"config": record["config"], "provenance": record["provenance"]}
    atomic.write_json(out / "config.json", config)
    atomic.write_json(out / "metrics.json", record)
    atomic.save_npz(out / "predictions.npz", arrays)
    return out


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return f if np.isfinite(f) else None
    return obj


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that decide the numbers."""
    import scipy
    import torch

    from w2sg import __version__

    return {
        "w2sg": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }


# --------------------------------------------------------------------------------------------
# Metrics of one run


def _model_metrics(labels: Labels, idx: np.ndarray, out: np.ndarray, n_bins: int) -> dict:
    y = labels.values[idx]
    if labels.task == "regression":
        return M.regression_metrics(y, out)
    if labels.task == "probability":
        return M.probability_metrics(y, out)
    return M.classification_metrics(y, out, n_bins=n_bins)


def _vs_weak(task: str, weak: np.ndarray, student: np.ndarray, eps: float) -> dict[str, float]:
    """A student's metrics against the weak labels (its training targets), not the truth."""
    if task == "regression":
        return {"mse": M.mse(weak, student), "misfit": M.misfit_sq(weak, student)}
    return {
        "agreement": M.agreement(weak, student),
        "cross_entropy": M.cross_entropy(weak, student, eps=eps),
        "d_fwd": M.d_fwd(weak, student, eps=eps),
        "d_rev": M.d_rev(weak, student, eps=eps),
        "misfit": M.misfit_sq(weak, student),
    }


def _headline(labels: Labels, config: RunConfig) -> tuple[Callable[..., float], bool, str]:
    """The PGR metric of the task: (metric, higher is better, name)."""

    def kl_from_truth(truth: np.ndarray, proba: np.ndarray) -> float:
        return M.mean_kl(np.column_stack([1 - truth, truth]), proba, eps=config.eps)

    # accuracy and mse are passed as themselves: the bootstrap has fast paths for them.
    choice: dict[str, tuple[Callable[..., float], bool, str]] = {
        "classification": (M.accuracy, True, "accuracy"),
        "regression": (M.mse, False, "mse"),
        "probability": (kl_from_truth, False, "kl"),
    }
    return choice[labels.task]


def _pgr_dict(key: str, res: M.PGRResult) -> dict[str, Any]:
    return {
        "metric": key,
        "value": res.value,
        "ci_low": res.ci_low,
        "ci_high": res.ci_high,
        "reason": res.reason,
        "gap_se": res.gap_se,
        "n_boot_valid": res.n_boot_valid,
    }


def _pgr_block(
    labels: Labels, idx: np.ndarray, preds: dict[str, np.ndarray], config: RunConfig
) -> dict[str, Any]:
    """PGR on test of the headline metric alone for ``preds`` (weak, w2s, ceiling), with its
    paired-bootstrap interval (the strong-to-strong rounds)."""
    metric, higher, name = _headline(labels, config)
    res = M.pgr_bootstrap(
        metric, labels.values[idx], preds["weak"], preds["w2s"], preds["ceiling"],
        higher_is_better=higher, n_boot=config.n_bootstrap, seed=config.seed, name=name,
    )  # fmt: skip
    return _pgr_dict(name, res)


def _pgr_blocks(
    labels: Labels,
    idx: np.ndarray,
    preds: dict[str, np.ndarray],
    config: RunConfig,
    weak_labels_range: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """PGR on test of the headline metric (``pgr``) and, for classification, of AUROC
    (``pgr_auroc``), each with its paired-bootstrap interval; and the run's flags
    (:func:`w2sg.metrics.run_flags`). ``preds`` holds weak, w2s, ceiling and baseline outputs;
    ``weak_labels_range``: :func:`w2sg.metrics.weak_label_range` of the weak labels on D̂."""
    y = labels.values[idx]
    metric, higher, name = _headline(labels, config)
    models = ("weak", "w2s", "ceiling", "baseline")
    boot = M.bootstrap_scores(
        metric, y, [preds[m] for m in models], n_boot=config.n_bootstrap, seed=config.seed
    )
    scores = {m: metric(y, preds[m]) for m in models}
    point = M.pgr(scores["weak"], scores["w2s"], scores["ceiling"], higher, metric=name)
    results = {name: M.pgr_interval(point, boot[:3], higher_is_better=higher)}
    if labels.task == "classification":
        results["auroc"] = M.pgr_bootstrap(
            M.auroc, y, preds["weak"], preds["w2s"], preds["ceiling"], higher_is_better=True,
            n_boot=config.n_bootstrap, seed=config.seed, name="auroc",
        )  # fmt: skip
    flags = M.run_flags(
        task=labels.task,
        metric=name,
        higher_is_better=higher,
        scores=scores,
        pgr=results,
        ceiling_baseline_se=M.paired_se(boot[2], boot[3]),
        w2s_test=preds["w2s"],
        y_test=y,
        weak_labels_range=weak_labels_range,
    )
    blocks = {
        ("pgr" if key == name else f"pgr_{key}"): _pgr_dict(key, res)
        for key, res in results.items()
    }
    return blocks, [f.to_dict() for f in flags]


# --------------------------------------------------------------------------------------------
# The pipeline


def _check_inputs(
    weak_repr: np.ndarray | None,
    strong_repr: np.ndarray,
    labels: np.ndarray,
    weak_predictions: np.ndarray | None,
) -> None:
    n = len(labels)
    named = {"--strong": strong_repr, "--weak": weak_repr, "--weak-predictions": weak_predictions}
    for name, arr in named.items():
        if arr is None:
            continue
        if len(arr) != n:
            raise W2SGError(
                f"{name} has {len(arr)} rows but the labels have {n}; rows must be aligned"
            )
        if np.asarray(arr).dtype.kind == "f" and not np.isfinite(arr).all():
            raise W2SGError(f"{name} contains NaN or inf values; remove or impute them")
    for name, arr in (("--strong", strong_repr), ("--weak", weak_repr)):
        if arr is not None and np.asarray(arr).ndim != 2:
            raise W2SGError(f"{name} must be a 2-D array (rows × features), got shape {arr.shape}")
    if weak_repr is None and weak_predictions is None:
        raise W2SGError("give the weak model as a representation (--weak) or as predictions")


def _check_split(labels: Labels, splits: Splits, config: RunConfig) -> None:
    for name in ("weak_train", "w2s_train", "test"):
        idx = splits[name]
        if len(idx) < 2:
            raise W2SGError(
                f"split {name} has {len(idx)} examples; the heads need at least 2 — "
                "give more rows or change --fractions"
            )
        if labels.task == "classification" and name != "test":
            present = len(np.unique(labels.values[idx]))
            if present < 2:
                raise W2SGError(
                    f"split {name} holds only one class ({len(idx)} examples); the head cannot "
                    "learn from it — give more rows or change --fractions"
                )
    if config.head == "convex_kl" and labels.n_classes != 2:
        raise W2SGError("--head convex_kl is binary; use --head softmax for more than 2 classes")


def run_pipeline(
    weak_repr: np.ndarray | None,
    strong_repr: np.ndarray,
    labels: np.ndarray,
    config: RunConfig | None = None,
    *,
    weak_predictions: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    provenance: dict[str, Any] | None = None,
    given_splits: Sequence[str] | None = None,
    learners: dict[str, LearnerSource] | None = None,
) -> RunResult:
    """Train weak → weak labels on D̂ → w2s student, and the strong ceiling; score everything.

    Args:
        weak_repr: weak representation ``(n, d_w)`` of every row (``None`` with a labeller).
        strong_repr: strong representation ``(n, d_s)``.
        labels: ground truth per row (class labels, regression values or probabilities).
        config: the run configuration (defaults to ``RunConfig()``).
        weak_predictions: a *labeller*: the weak model's predictions for every row (``(n, C)``
            probabilities, or ``(n,)`` regression values / positive-class probabilities). Only the
            rows of w2s_train and test are used; no weak model is trained.
        ids: content-hash ids per row (default: hashes of the representation rows and label).
        provenance: extra provenance to record (input file hashes, model names, ...).
        given_splits: the split of each row (``weak_train``, ``w2s_train``, ``train``, ``test``,
            ``val``), e.g. a data file's split column, instead of drawn splits; ``train`` rows are
            divided between weak_train and w2s_train (:func:`~w2sg.data.splits.splits_from_names`).
        learners: where a model is not a head on its representation, its learner source by side
            (``weak``, ``strong``), e.g. a :class:`~w2sg.heads.finetune.FinetuneSource` for
            ``config.train``/``config.weak_train`` = ``full`` or ``lora``. The representations
            are still needed: they are the frozen representations of the ``theory`` block.
    """
    config = config or RunConfig()
    config.validate()
    labels = np.asarray(labels)
    _check_inputs(weak_repr, strong_repr, labels, weak_predictions)
    lab = prepare_labels(labels, config.task)
    if ids is None:
        parts = [a for a in (weak_repr, strong_repr) if a is not None]
        ids = content_ids(*parts, lab.values)
    stratify = lab.values if config.task == "classification" else None
    if given_splits is not None:
        splits = splits_from_names(
            given_splits, ids, config.fractions, seed=config.seed, stratify=stratify
        )
    else:
        splits = make_splits(ids, config.fractions, seed=config.seed, stratify=stratify)
    _check_split(lab, splits, config)
    notes: list[str] = []

    strong = np.asarray(strong_repr, dtype=np.float64)
    tr, hat, te = splits["weak_train"], splits["w2s_train"], splits["test"]
    eval_splits = {name: splits[name] for name in ("w2s_train", "test", "val") if name in splits}
    # 1-2. The weak model (trained on D̃ with truth) or the labeller's given predictions.
    weak = None if weak_repr is None else np.asarray(weak_repr, dtype=np.float64)
    sources = _sources(weak, strong, config, learners, weak_predictions is not None)
    val = splits.indices.get("val")
    # Ridge heads and the theory block factorise the same two matrices (weak on D̃, strong on D̂):
    # one decomposition each serves all of them.
    decs: dict[str, Any] = {}
    if config.head == "ridge" and config.theory and weak is not None and config.kernel.center:
        from w2sg.heads.ridge import RidgeDecomposition

        if weak_predictions is None and config.weak_train == "probe":
            decs["weak_train"] = RidgeDecomposition(weak[tr])
        if config.train == "probe":
            decs["strong_hat"] = RidgeDecomposition(strong[hat])
    raw: dict[str, dict[str, np.ndarray]] = {}
    fitted: dict[str, Any] = {}
    curve_hooks = _CurveHooks(lab, splits, config)
    if weak_predictions is not None:
        wp = _labeller_outputs(np.asarray(weak_predictions, dtype=float), lab)
        raw["weak"] = {name: wp[idx] for name, idx in eval_splits.items()}
        notes.append("weak model given as predictions (a labeller); no weak model was trained")
    else:
        learner = sources["weak"].learner(
            "weak", config, config.seed, decomposition=decs.get("weak_train")
        )
        learner.fit(
            tr,
            lab.targets(tr),
            val=None if val is None else (val, lab.targets(val)),
            on_epoch=curve_hooks.hook("weak"),
        )
        fitted["weak"] = learner
        raw["weak"] = {name: learner.predict(idx) for name, idx in eval_splits.items()}
        raw["weak"]["weak_train"] = learner.predict(tr)
    weak_scores = weak_predictions is None and fitted["weak"].outputs_scores
    weak_proba = {s: _proba_from_scores(a) if weak_scores else a for s, a in raw["weak"].items()}
    curve_hooks.weak = weak_proba

    # 3. Weak labels on D̂: the weak model's outputs (soft), or their argmax with loss 'hard'.
    # A score head learns from the weak model's raw scores, any other learner from probabilities.
    strong_scores = sources["strong"].mode == "probe" and is_score_head(config)
    teacher = raw["weak"] if strong_scores else weak_proba
    w2s_targets = teacher["w2s_train"]
    if config.task != "regression" and config.head != "softmax" and config.loss == "hard":
        w2s_targets = np.eye(w2s_targets.shape[1])[w2s_targets.argmax(axis=1)]

    # 3b. Optional cleaning of the weak labels in the strong representation (relabel / filter).
    w2s_rows, cleaning = hat, None
    if config.clean != "none":
        w2s_rows, w2s_targets, cleaning = _clean(config, strong, hat, w2s_targets)
        notes.append(cleaning.pop("text"))

    # 4-5. The w2s student on weak labels and the strong ceiling on the truth, same learner kind.
    # Model selection: the student sees only weak labels (also on val), the ceiling the truth.
    strong_dec = decs.get("strong_hat")
    val_targets = {
        "w2s": None if val is None else (val, teacher["val"]),
        "ceiling": None if val is None else (val, lab.targets(val)),
    }
    fit_rows = {"w2s": w2s_rows, "ceiling": hat}
    fit_targets = {"w2s": w2s_targets, "ceiling": lab.targets(hat)}
    for model, seed in (("w2s", config.seed + 1), ("ceiling", config.seed + 2)):
        dec = strong_dec if fit_rows[model] is hat else None
        learner = sources["strong"].learner(model, config, seed, decomposition=dec)
        learner.fit(
            fit_rows[model],
            fit_targets[model],
            val=val_targets[model],
            on_epoch=curve_hooks.hook(model),
        )
        fitted[model] = learner
        raw[model] = {name: learner.predict(idx) for name, idx in eval_splits.items()}
    # A labeller's predictions are probabilities already; score heads' own outputs are not.
    preds = {
        m: {
            s: _proba_from_scores(a) if m in fitted and fitted[m].outputs_scores else a
            for s, a in by_split.items()
        }
        for m, by_split in raw.items()
    }
    score_head = fitted["w2s"].outputs_scores
    train = {m: dict(fitted[m].info()) for m in fitted}
    if "weak" not in train:
        train["weak"] = {"mode": "labeller"}
    curve = {m: info.pop("curve") for m, info in train.items() if "curve" in info}

    # 6. Metrics.
    metrics: dict[str, Any] = {}
    for model in MODELS:
        metrics[model] = _model_metrics(lab, te, preds[model]["test"], n_bins=15)
    # The constant baseline (majority class / mean of the training labels) next to the models.
    baseline = M.baseline_predictions(lab.task, lab.values[np.r_[tr, hat]], len(te), lab.n_classes)
    metrics["baseline"] = _model_metrics(lab, te, baseline, n_bins=15)
    # Regression: weak labels on D̂ far outside the range of the true weak_train targets.
    label_range = None
    if lab.task == "regression":
        label_range = M.weak_label_range(raw["weak"]["w2s_train"], lab.values[tr])
    pgr_blocks, flags = _pgr_blocks(
        lab, te, {**{m: preds[m]["test"] for m in MODELS}, "baseline": baseline}, config,
        weak_labels_range=label_range,
    )  # fmt: skip
    metrics.update(pgr_blocks)
    if label_range is not None:
        metrics["weak_label_range"] = label_range
    metrics["vs_weak"] = {
        split: {
            m: _vs_weak(config.task, preds["weak"][split], preds[m][split], config.eps)
            for m in ("w2s", "ceiling")
        }
        for split in ("w2s_train", "test")
    }
    metrics["w2s_train"] = {
        m: _model_metrics(lab, hat, preds[m]["w2s_train"], n_bins=15) for m in MODELS
    }
    if lab.task == "classification":  # the data of a reliability diagram, poolable across runs
        metrics["reliability"] = {
            m: M.reliability_bins(lab.values[te], preds[m]["test"], n_bins=10) for m in MODELS
        }

    if cleaning is not None:
        metrics["cleaning"] = cleaning
    if config.s2s_iters:

        def fit_student(rows: np.ndarray, targets: np.ndarray, seed: int) -> Any:
            student = sources["strong"].learner("w2s", config, seed)
            return student.fit(rows, targets).predict

        metrics["rounds"] = _s2s_rounds(
            config, lab, splits, strong, fit_student,
            teacher=(w2s_rows, w2s_targets, raw["w2s"]),
            weak_labels=raw["weak"]["w2s_train"],
            test_proba={m: preds[m]["test"] for m in ("weak", "ceiling")},
            decomposition=strong_dec,
        )  # fmt: skip

    theory = None
    if config.theory and weak is not None:
        from w2sg.theory.kernels import theory_block

        theory = theory_block(
            weak_train=weak[tr],
            weak_hat=weak[hat],
            strong_hat=strong[hat],
            strong_test=strong[te],
            y_train=lab.theory_targets(tr),
            y_hat=lab.theory_targets(hat),
            y_test=lab.theory_targets(te),
            beta_weak=config.weak_ridge,
            beta_strong=config.strong_ridge,
            config=config.kernel,
            decompositions=decs,
        )
        if theory.get("k_flag"):
            notes.append(f"k rule {config.kernel.rule}: {theory['k_flag']}")
        if config.head != "ridge":
            notes.append(
                "the theory block describes ridge heads (β_w, β_s = --weak-ridge, --strong-ridge) "
                "on the same representations and numeric targets, following [X]"
            )
    elif config.theory:
        notes.append(
            "no theory block: the weak model was given as predictions, not a representation"
        )

    bounds = None
    if config.bounds and config.task != "regression":
        from w2sg.theory.bounds import bounds_block

        truth_hat = lab.targets(hat)
        truth_test = lab.targets(te)
        bounds = bounds_block(
            task=config.task,
            head=config.head,
            loss=config.loss,
            truth_hat=truth_hat,
            truth_test=truth_test,
            weak_hat=preds["weak"]["w2s_train"],
            weak_test=preds["weak"]["test"],
            w2s_hat=preds["w2s"]["w2s_train"],
            w2s_test=preds["w2s"]["test"],
            eps=config.eps,
            ceiling_hat=preds["ceiling"]["w2s_train"],
            ceiling_test=preds["ceiling"]["test"],
        )
        if score_head:
            # The squared misfit is exact for the values the heads were fitted to: raw scores.
            from w2sg.theory.bounds import misfit_sq

            bounds["misfit_sq"] = {
                part: misfit_sq(
                    lab.targets(idx),
                    raw["weak"][split],
                    raw["w2s"][split],
                    split=part,
                    ceiling_pred=raw["ceiling"][split],
                )  # fmt: skip
                for part, split, idx in (("train", "w2s_train", hat), ("test", "test", te))
            }
    elif config.bounds and config.head in ("ridge", "least_squares"):
        from w2sg.theory.bounds import misfit_sq

        bounds = {
            "misfit_sq": {
                part: misfit_sq(
                    lab.values[idx],
                    preds["weak"][split],
                    preds["w2s"][split],
                    split=part,
                    ceiling_pred=preds["ceiling"][split],
                )  # fmt: skip
                for part, split, idx in (("train", "w2s_train", hat), ("test", "test", te))
            }
        }

    theory_ft = None
    ceiling = fitted["ceiling"]
    if config.theory and weak is not None and hasattr(ceiling, "represent"):
        from w2sg.theory.kernels import theory_block

        # The same quantities on the fine-tuned ceiling's own final representations.
        theory_ft = theory_block(
            weak_train=weak[tr],
            weak_hat=weak[hat],
            strong_hat=ceiling.represent(hat),
            strong_test=ceiling.represent(te),
            y_train=lab.theory_targets(tr),
            y_hat=lab.theory_targets(hat),
            y_test=lab.theory_targets(te),
            beta_weak=config.weak_ridge,
            beta_strong=config.strong_ridge,
            config=config.kernel,
            decompositions={k: v for k, v in decs.items() if k == "weak_train"},
        )

    prov = {"versions": versions(), "config_hash": config.hash()}
    prov.update(provenance or {})
    return RunResult(
        config=config,
        splits=splits,
        labels=lab,
        predictions=preds,
        metrics=metrics,
        theory=theory,
        bounds=bounds,
        provenance=prov,
        notes=notes,
        train=train,
        curve=curve,
        theory_finetuned=theory_ft,
        flags=flags,
    )


def _clean(
    config: RunConfig, strong: np.ndarray, hat: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Relabel or filter the weak labels of D̂ (:func:`w2sg.heads.relabel.clean_labels`) in the
    strong representation; returns the student's rows (indices into the data), targets and the
    note (with a one-line ``text`` for the run's notes)."""
    from w2sg.heads.relabel import clean_labels

    labels = targets
    if is_score_head(config):  # cleaning works on probabilities; the student then learns them
        labels = _proba_from_scores(targets)
    done = clean_labels(
        config.clean, strong[hat], labels, k=config.clean_k, l2=config.clean_l2,
        keep=config.clean_keep,
    )  # fmt: skip
    note = dict(done.note)
    note["text"] = (
        f"weak labels cleaned by {config.clean} before the student trained: "
        f"{note['changed']} of {note['n_after']} kept labels changed class, "
        f"{note['dropped']} of {note['n_before']} rows dropped"
        + ("; the student learned probabilities, not scores" if labels is not targets else "")
    )
    return hat[done.rows], done.targets, note


def _numeric(targets: np.ndarray, task: str) -> np.ndarray:
    """A model's outputs as the numeric targets of the theory block: values (regression),
    t₁ − t₀ for two classes (±1 for one-hot rows), the (n, C) rows otherwise."""
    if task == "regression" or targets.ndim == 1:
        return targets
    return targets[:, 1] - targets[:, 0] if targets.shape[1] == 2 else targets


def _s2s_rounds(
    config: RunConfig,
    lab: Labels,
    splits: Splits,
    strong: np.ndarray,
    fit_student: Callable[[np.ndarray, np.ndarray, int], Callable[[np.ndarray], np.ndarray]],
    *,
    teacher: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]],
    weak_labels: np.ndarray,
    test_proba: dict[str, np.ndarray],
    decomposition: Any = None,
) -> list[dict[str, Any]]:
    """Strong-to-strong rounds r = 1..``config.s2s_iters`` (EleutherAI/w2s ``--s2s_iters``).

    Round r trains a fresh student (seed ``config.seed + 2 + r``) on all of D̂ with the previous
    student's outputs on D̂ as its labels (round 0 is the w2s student; ``teacher`` gives its
    training rows, targets and outputs per split), and records its test metrics, PGR against the
    same weak model and ceiling, agreement with its teacher, how many D̂ labels changed class
    from the previous round's labels (round 1: from the weak labels), and a ``theory`` block in
    which the teacher is the weak side: its representation is the strong one on its own training
    rows with its own training targets (for ridge heads that weak head *is* the teacher, so the
    block's ``w2s_error`` is this round's student's test error on the numeric targets).
    """
    hat, te = splits["w2s_train"], splits["test"]
    eval_splits = {name: splits[name] for name in ("w2s_train", "test", "val") if name in splits}
    score = is_score_head(config)

    def proba(a: np.ndarray) -> np.ndarray:
        return _proba_from_scores(a) if score else a

    shared = None
    if config.theory and config.kernel.center:
        from w2sg.heads.ridge import RidgeDecomposition

        shared = decomposition or RidgeDecomposition(strong[hat])
    rows, targets, outputs = teacher
    previous_labels = weak_labels
    rounds: list[dict[str, Any]] = []
    for r in range(1, config.s2s_iters + 1):
        labels = outputs["w2s_train"]
        predict = fit_student(hat, labels, config.seed + 2 + r)
        new = {name: predict(idx) for name, idx in eval_splits.items()}
        record: dict[str, Any] = {"round": r, "teacher": "w2s" if r == 1 else f"round {r - 1}"}
        if config.task == "regression":
            record["labels_changed"] = None
            record["mean_change"] = float(np.mean(np.abs(labels - previous_labels)))
        else:
            a, b = proba(labels), proba(previous_labels)
            record["labels_changed"] = int((a.argmax(axis=1) != b.argmax(axis=1)).sum())
            record["mean_change"] = float(np.mean(0.5 * np.abs(a - b).sum(axis=1)))
        record["test"] = _model_metrics(lab, te, proba(new["test"]), n_bins=15)
        record["pgr"] = _pgr_block(lab, te, {"w2s": proba(new["test"]), **test_proba}, config)
        record["vs_teacher"] = {
            "test": _vs_weak(config.task, proba(outputs["test"]), proba(new["test"]), config.eps)
        }
        record["theory"] = None
        if config.theory:
            from w2sg.theory.kernels import theory_block

            decs = {} if shared is None else {"strong_hat": shared}
            if shared is not None and rows is hat:
                decs["weak_train"] = shared
            record["theory"] = theory_block(
                weak_train=strong[rows],
                weak_hat=strong[hat],
                strong_hat=strong[hat],
                strong_test=strong[te],
                y_train=_numeric(targets, config.task),
                y_hat=lab.theory_targets(hat),
                y_test=lab.theory_targets(te),
                beta_weak=config.strong_ridge,
                beta_strong=config.strong_ridge,
                config=config.kernel,
                decompositions=decs,
            )
        rounds.append(record)
        rows, targets, outputs, previous_labels = hat, labels, new, labels
    return rounds


def _sources(
    weak: np.ndarray | None,
    strong: np.ndarray,
    config: RunConfig,
    learners: dict[str, LearnerSource] | None,
    labeller: bool,
) -> dict[str, LearnerSource]:
    """The learner source of each side, checked against the config's training modes."""
    given = dict(learners or {})
    unknown = sorted(set(given) - {"weak", "strong"})
    if unknown:
        raise W2SGError(f"learners are given per side, weak or strong; got {unknown}")
    sources: dict[str, LearnerSource] = {}
    for side, mode, repr_ in (("weak", config.weak_train, weak), ("strong", config.train, strong)):
        if side == "weak" and labeller:
            continue
        source = given.get(side)
        if source is None:
            if mode != "probe":
                flag = "--weak-train" if side == "weak" else "--train"
                raise W2SGError(
                    f"{flag} {mode} fine-tunes the {side} model, which needs its inputs: "
                    "run with --dataset and a transformers model name"
                )
            assert repr_ is not None
            source = HeadSource(repr_)
        if source.mode != mode:
            raise W2SGError(
                f"the {side} learner trains by {source.mode!r} but the config says {mode!r}"
            )
        sources[side] = source
    return sources


class _CurveHooks:
    """Per-epoch numbers of iterative learners: test metrics and, for the student, its agreement
    with the weak labels and the section-5 bounds at that epoch."""

    def __init__(self, lab: Labels, splits: Splits, config: RunConfig) -> None:
        self.lab, self.splits, self.config = lab, splits, config
        self.weak: dict[str, np.ndarray] | None = None

    def hook(self, model: str) -> Callable[[int, Any], dict[str, Any]]:
        def on_epoch(epoch: int, learner: Any) -> dict[str, Any]:
            te = self.splits["test"]
            out = learner.predict(te)
            if learner.outputs_scores:
                out = _proba_from_scores(out)
            point: dict[str, Any] = {"test": _model_metrics(self.lab, te, out, n_bins=15)}
            if model == "w2s" and self.weak is not None:
                point["vs_weak_test"] = _vs_weak(
                    self.config.task, self.weak["test"], out, self.config.eps
                )
                if self.config.bounds and self.config.task != "regression":
                    from w2sg.theory.bounds import bounds_block

                    hat = self.splits["w2s_train"]
                    b = bounds_block(
                        task=self.config.task,
                        head=self.config.head,
                        loss=self.config.loss,
                        truth_hat=self.lab.targets(hat),
                        truth_test=self.lab.targets(te),
                        weak_hat=self.weak["w2s_train"],
                        weak_test=self.weak["test"],
                        w2s_hat=learner.predict(hat),
                        w2s_test=out,
                        eps=self.config.eps,
                    )
                    point["bounds"] = {
                        k: b[k] for k in ("generalization", "disagreement") if k in b
                    }
            return point

        return on_epoch


def _labeller_outputs(wp: np.ndarray, lab: Labels) -> np.ndarray:
    """Bring a labeller's predictions into the pipeline's form (probabilities ``(n, C)``)."""
    if lab.task == "regression":
        if wp.ndim != 1:
            raise W2SGError("--weak-predictions for regression must be one value per row")
        return wp
    if wp.ndim == 1:
        if lab.n_classes != 2:
            raise W2SGError(
                f"--weak-predictions: one value per row fits binary tasks; this task has "
                f"{lab.n_classes} classes, give an (n, {lab.n_classes}) probability array"
            )
        wp = np.column_stack([1.0 - wp, wp])
    if wp.shape[1] != lab.n_classes:
        raise W2SGError(
            f"--weak-predictions has {wp.shape[1]} columns but the labels have "
            f"{lab.n_classes} classes"
        )
    if wp.min() < 0 or not np.allclose(wp.sum(axis=1), 1.0, atol=1e-4):
        raise W2SGError("--weak-predictions rows must be probabilities (non-negative, sum to 1)")
    return wp
