"""Several weak supervisors at once: M weak models, combined into one set of weak labels.

Each member is a weak head trained on D̃ with true labels, exactly as the single weak model of
:func:`w2sg.pipeline.run_pipeline`; their outputs (probabilities, or values for regression) are
combined by a rule of :data:`COMBINE_RULES` and handed to the pipeline as a labeller, so the
student, the ceiling, every metric and the bounds are those of an ordinary run. The result records
the rule and the weights (``RunResult.metrics["ensemble"]``) and a theory block for the
combination (docs/theory.md, "Several weak supervisors"):

- ``average``: α_m = 1/M, the mean of the members' outputs (soft labels).
- ``metric``: label-free, α = softmax(−op_norm_m / τ) with op_norm_m = ‖P_s(I − P_{w_m})‖_op of
  member m on D̂ (δ̃ from D̃) and τ = ``combine_temperature`` (default 0.05: a member 0.1 worse in
  op norm gets e⁻² ≈ 0.14 of the weight).
- ``learned``: label-free, from the members' agreement on D̂ alone (learned ensemble weights as
  raven learns them, but without its joint training): each member's accuracy is estimated from
  the pairwise agreement rates (spectral meta-learner, Parisi et al. 2014) and turned into
  weighted-vote weights α_m ∝ log((C − 1) a_m / (1 − a_m)); regression: inverse error-variance
  weights from the members' covariances (:func:`agreement_weights`).
- ``learned_labelled``: α minimises the cross-entropy (regression: squared error) of Σ α_m f_m
  against the truth on ``combine_labels`` randomly chosen examples of D̂ whose labels are
  revealed (α on the simplex, SLSQP); the count and ids are recorded.
- ``vote``: majority vote of the members' predicted classes (ties split evenly), hard labels;
  regression: the median.
- ``soft_vote``: the class of largest mean probability, hard labels (scikit-learn's soft voting);
  classification only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize

from w2sg.config import COMBINE_RULES, RunConfig
from w2sg.data.splits import content_ids, make_splits, splits_from_names
from w2sg.errors import W2SGError

#: Rules that output Σ α_m f_m with fixed weights: the kernel part of the theory applies.
LINEAR_RULES: tuple[str, ...] = ("average", "metric", "learned", "learned_labelled")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def metric_weights(op_norms: np.ndarray, temperature: float) -> np.ndarray:
    """α = softmax(−op_norm / τ)."""
    if not temperature > 0:
        raise W2SGError(f"the combine temperature must be > 0; got {temperature}")
    return _softmax(-np.asarray(op_norms, dtype=float) / temperature)


def agreement_weights(outputs: list[np.ndarray], task: str) -> np.ndarray:
    """Weights from the members' agreement on unlabelled rows, no label used.

    Classification (the spectral meta-learner of Parisi et al., PNAS 2014, for symmetric
    independent errors): with a_m the accuracy of member m over C classes and
    b_m = (C a_m − 1)/(C − 1) its accuracy above chance, the pairwise agreement rates satisfy
    (C/(C − 1))(A_mk − 1/C) = b_m b_k for m ≠ k, a rank-one matrix off the diagonal; b is its
    least-squares rank-one fit (alternating updates; with two members b_1 = b_2 = √E_12). Then
    α_m ∝ max(log((C − 1) a_m / (1 − a_m)), 0), the optimal weighted-vote weights of independent
    symmetric classifiers (Nitzan & Paroush 1982); uniform if every weight is 0.

    Regression (independent unbiased errors f_m = y + ε_m): Cov(f_m, f_k) = Var(y) for m ≠ k, so
    Var(ε_m) = Var(f_m) − mean off-diagonal covariance, and α_m ∝ 1 / Var(ε_m) (inverse-variance
    weights; Var(ε_m) floored at 1e-3 × Var(f_m)).

    ``outputs``: per member, probabilities (n, C) or values (n,)."""
    m = len(outputs)
    stacked = np.stack(outputs)
    off = ~np.eye(m, dtype=bool)
    if task == "regression":
        cov = np.cov(stacked)
        signal = float(cov[off].mean())
        noise = np.maximum(np.diag(cov) - signal, 1e-3 * np.diag(cov))
        w = 1.0 / noise
        return w / w.sum()
    n_classes = stacked.shape[2]
    pred = stacked.argmax(axis=2)
    agree = np.array([[np.mean(pred[i] == pred[j]) for j in range(m)] for i in range(m)])
    excess = n_classes / (n_classes - 1) * (agree - 1.0 / n_classes)
    b = np.sqrt(np.clip(excess[off].reshape(m, m - 1).mean(axis=1), 0.0, 1.0))
    for _ in range(100):
        new = np.empty(m)
        for i in range(m):
            others = np.arange(m) != i
            den = float(np.sum(b[others] ** 2))
            new[i] = float(excess[i, others] @ b[others]) / den if den > 0 else 0.0
        new = np.clip(new, 0.0, 1.0 - 1e-6)
        if np.allclose(new, b, atol=1e-12):
            break
        b = new
    a = (1.0 + (n_classes - 1) * b) / n_classes
    w = np.maximum(np.log((n_classes - 1) * a / (1.0 - a)), 0.0)
    return w / w.sum() if w.sum() > 0 else np.full(m, 1.0 / m)


def labelled_weights(outputs: list[np.ndarray], truth: np.ndarray, task: str) -> np.ndarray:
    """α on the simplex minimising the cross-entropy (regression: squared error) of Σ α_m f_m
    against ``truth`` (class indices, values, or positive-class probabilities)."""
    stacked = np.stack(outputs)  # (M, n, C) or (M, n)

    def loss(v: np.ndarray) -> float:
        mix = np.tensordot(v, stacked, axes=1)
        if task == "regression":
            return float(np.mean((mix - truth) ** 2))
        p = np.clip(mix, 1e-12, 1.0)
        if task == "probability":
            return float(-np.mean(truth * np.log(p[:, 1]) + (1 - truth) * np.log(p[:, 0])))
        return float(-np.mean(np.log(p[np.arange(len(truth)), truth])))

    m = len(outputs)
    res = minimize(
        loss, np.full(m, 1.0 / m), method="SLSQP", bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda v: float(np.sum(v)) - 1.0}],
        options={"ftol": 1e-12, "maxiter": 500},
    )  # fmt: skip
    alpha = np.clip(res.x, 0.0, None)
    return alpha / alpha.sum()


def vote(outputs: list[np.ndarray], task: str, weights: np.ndarray | None = None) -> np.ndarray:
    """Majority vote (classification: one-hot of the plurality class, ties split evenly;
    regression: the median)."""
    stacked = np.stack(outputs)
    if task == "regression":
        return np.median(stacked, axis=0)
    n_classes = stacked.shape[2]
    counts = np.eye(n_classes)[stacked.argmax(axis=2)].sum(axis=0)  # (n, C)
    top = counts == counts.max(axis=1, keepdims=True)
    return top / top.sum(axis=1, keepdims=True)


def soft_vote(outputs: list[np.ndarray]) -> np.ndarray:
    """One-hot of the class with the largest mean probability."""
    mean = np.mean(np.stack(outputs), axis=0)
    return np.eye(mean.shape[1])[mean.argmax(axis=1)]


def run_ensemble(
    weak_reprs: list[np.ndarray],
    strong_repr: np.ndarray,
    labels: np.ndarray,
    config: RunConfig | None = None,
    *,
    names: list[str] | None = None,
    ids: np.ndarray | None = None,
    provenance: dict[str, Any] | None = None,
    outputs: list[np.ndarray] | None = None,
    op_norms: list[float] | None = None,
    given_splits: Any = None,
    learners: dict[str, Any] | None = None,
) -> Any:
    """A weak-to-strong run whose weak side is M ≥ 2 weak models combined by
    ``config.combine`` (see the module docstring); returns a :class:`w2sg.pipeline.RunResult`.

    The members are trained on D̃ like the single weak model of a run, the combined outputs label
    D̂, and the rest is :func:`w2sg.pipeline.run_pipeline` with those labels as a labeller.
    ``outputs`` (:func:`member_outputs` of the same inputs and config) and ``op_norms`` (the
    members' label-free op norms on D̂) may be given to share them between several rules.
    ``given_splits``: the split of each row (a data file's split column), as for
    :func:`~w2sg.pipeline.run_pipeline`; the members and the student use the same splits.
    ``learners``: ``{"strong": source}`` for a fine-tuned student and ceiling
    (``config.train`` = ``full`` or ``lora``); the members are always probes.
    ``metrics["ensemble"]``: ``rule``, ``members``, ``weights``, the members' own test metrics
    (``member_weak``) and label-free op norms, for regression each member's count of weak labels
    on D̂ out of range (``member_out_of_range``, :func:`w2sg.metrics.weak_label_range`; the run's
    ``weak_labels_out_of_range`` flag looks at the combined labels), and for ``learned_labelled``
    the labelled count and ids. ``theory`` (ridge heads, as for a single weak model): the exact
    measured part for the combined labels (:func:`~w2sg.theory.kernels.labeller_theory_block`)
    and, for the linear rules, the kernel predictions of P̄ = Σ α_m P_m
    (:func:`~w2sg.theory.kernels.combined_metrics`).
    """
    from w2sg.pipeline import prepare_labels

    config = config or RunConfig(combine="average")
    config.validate()
    if config.weak_train != "probe":
        raise W2SGError(
            "the members of an ensemble are probes on their representations; "
            "drop --weak-train (fine-tune the strong student with --train)"
        )
    rule = config.combine or "average"
    if rule not in COMBINE_RULES:
        raise W2SGError(f"unknown combine rule {rule!r}; use one of {', '.join(COMBINE_RULES)}")
    if len(weak_reprs) < 2:
        raise W2SGError("an ensemble needs at least 2 weak models; give several --weak")
    names = names or [f"weak_{i + 1}" for i in range(len(weak_reprs))]
    if len(names) != len(weak_reprs):
        raise W2SGError("give one name per weak model")
    if rule == "soft_vote" and config.task == "regression":
        raise W2SGError("soft_vote picks a class; for regression use average, vote (median), ...")
    labels = np.asarray(labels)
    strong = np.asarray(strong_repr, dtype=np.float64)
    weak = [np.asarray(w, dtype=np.float64) for w in weak_reprs]
    for name, w in zip(names, weak, strict=True):
        if w.ndim != 2 or len(w) != len(labels):
            raise W2SGError(
                f"weak model {name} has shape {w.shape}; it needs ({len(labels)}, d), one row per "
                "label"
            )
        if not np.isfinite(w).all():
            raise W2SGError(f"weak model {name} contains NaN or inf values; remove or impute them")
    lab = prepare_labels(labels, config.task)
    if ids is None:
        ids = content_ids(*weak, strong, lab.values)
    splits = _splits(lab, config, ids, given_splits)

    # The members, trained as the pipeline trains its weak model; outputs on every row (or given:
    # :func:`member_outputs` of the same members, labels, ids and config, shared between rules).
    if outputs is None:
        outputs = member_outputs(weak, labels, config, ids, given_splits=given_splits)
    record: dict[str, Any] = {"rule": rule, "members": names}
    if op_norms is not None:
        record["member_op_norm"] = [float(x) for x in op_norms]
    return _finish(
        weak, strong, labels, lab, ids, splits, outputs, record, config, provenance, given_splits,
        learners,
    )  # fmt: skip


def _splits(lab: Any, config: RunConfig, ids: np.ndarray, given_splits: Any = None) -> Any:
    """The splits of a run: drawn from ``ids`` as the pipeline draws them, or the given ones."""
    stratify = lab.values if config.task == "classification" else None
    if given_splits is not None:
        return splits_from_names(
            [str(x) for x in given_splits], ids, config.fractions, seed=config.seed,
            stratify=stratify,
        )  # fmt: skip
    return make_splits(ids, config.fractions, seed=config.seed, stratify=stratify)


def member_outputs(
    weak_reprs: list[np.ndarray],
    labels: np.ndarray,
    config: RunConfig,
    ids: np.ndarray,
    given_splits: Any = None,
) -> list[np.ndarray]:
    """Each weak model trained on D̃ (the split of ``ids`` and ``config``, or ``given_splits``)
    as the pipeline trains its weak model; its outputs on every row (probabilities, or values
    for regression)."""
    from w2sg.heads.learner import _fit_head
    from w2sg.pipeline import _proba_from_scores, is_score_head, prepare_labels

    lab = prepare_labels(np.asarray(labels), config.task)
    tr = _splits(lab, config, ids, given_splits)["weak_train"]
    outputs = []
    for w in weak_reprs:
        w = np.asarray(w, dtype=np.float64)
        fit = _fit_head(w[tr], lab.targets(tr), config, role="weak", seed=config.seed)
        out = fit(w)
        if is_score_head(config):
            out = _proba_from_scores(out)
        outputs.append(np.asarray(out, dtype=np.float64))
    return outputs


def _finish(
    weak: list[np.ndarray],
    strong: np.ndarray,
    labels: np.ndarray,
    lab: Any,
    ids: np.ndarray,
    splits: Any,
    outputs: list[np.ndarray],
    record: dict[str, Any],
    config: RunConfig,
    provenance: dict[str, Any] | None,
    given_splits: Any = None,
    learners: dict[str, Any] | None = None,
) -> Any:
    from w2sg.pipeline import run_pipeline

    rule = record["rule"]
    names = record["members"]
    tr, hat, te = splits["weak_train"], splits["w2s_train"], splits["test"]
    op_norms = None if "member_op_norm" not in record else np.array(record["member_op_norm"])
    if op_norms is None and (rule == "metric" or config.theory):
        from w2sg.theory.kernels import representation_metrics

        op_norms = np.array(
            [
                representation_metrics(
                    w[hat], strong[hat], weak_train=w[tr], beta_weak=config.weak_ridge,
                    beta_strong=config.strong_ridge, config=config.kernel,
                ).metrics["op_norm"]
                for w in weak
            ]
        )  # fmt: skip
        record["member_op_norm"] = op_norms.tolist()
    alpha: np.ndarray | None
    if rule == "average":
        alpha = np.full(len(weak), 1.0 / len(weak))
    elif rule == "metric":
        assert op_norms is not None
        alpha = metric_weights(op_norms, config.combine_temperature)
        record["temperature"] = config.combine_temperature
    elif rule == "learned":
        alpha = agreement_weights([o[hat] for o in outputs], config.task)
    elif rule == "learned_labelled":
        k = min(config.combine_labels, len(hat))
        if k < 2:
            raise W2SGError("--combine-labels must be at least 2 for learned_labelled")
        chosen = np.sort(np.random.default_rng(config.seed).choice(hat, size=k, replace=False))
        alpha = labelled_weights([o[chosen] for o in outputs], lab.values[chosen], config.task)
        record["n_labelled"] = int(k)
        record["labelled_ids"] = [str(i) for i in np.asarray(ids)[chosen]]
    else:
        alpha = None
    if alpha is not None:
        combined = np.tensordot(alpha, np.stack(outputs), axes=1)
        record["weights"] = alpha.tolist()
    elif rule == "vote":
        combined = vote(outputs, config.task)
        record["weights"] = None
    else:
        combined = soft_vote(outputs)
        record["weights"] = None

    from w2sg import metrics as M

    record["member_weak"] = []
    if config.task == "regression":  # each member's own weak labels on D̂ out of range (flags.py)
        ranges = [M.weak_label_range(out[hat], lab.values[tr]) for out in outputs]
        record["member_out_of_range"] = [None if r is None else r["n_out_of_range"] for r in ranges]
    for out in outputs:
        y_te = lab.values[te]
        if config.task == "regression":
            record["member_weak"].append({"mse": M.mse(y_te, out[te])})
        elif config.task == "probability":
            record["member_weak"].append(M.probability_metrics(y_te, out[te]))
        else:
            record["member_weak"].append({"accuracy": M.accuracy(y_te, out[te])})

    prov = {"weak_models": names, **(provenance or {})}
    result = run_pipeline(
        None, strong, labels, config, weak_predictions=combined, ids=ids, provenance=prov,
        given_splits=None if given_splits is None else [str(x) for x in given_splits],
        learners=learners,
    )  # fmt: skip
    result.notes = [
        note for note in result.notes if "labeller" not in note and "no theory block" not in note
    ]
    result.notes.append(
        f"weak side: {len(weak)} weak models combined by {rule!r} (metrics['ensemble'])"
    )
    result.metrics["ensemble"] = record
    if config.theory:
        result.theory = _ensemble_theory(weak, strong, lab, splits, combined, alpha, config, rule)
        if config.head != "ridge":
            result.notes.append(
                "the theory block describes ridge heads (β_s = --strong-ridge) on the strong "
                "representation and the combined weak labels, following [X]"
            )
    return result


def _theory_targets_of(combined: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """The combined outputs in the numeric target space of the theory block (values, ±1 for
    binary, one-hot space for several classes): affine in the probabilities, so a ridge student
    on the probabilities is exactly a ridge student on these targets."""
    if task == "regression":
        return combined
    if n_classes == 2:
        return 2.0 * combined[:, 1] - 1.0
    return combined


def _ensemble_theory(
    weak: list[np.ndarray],
    strong: np.ndarray,
    lab: Any,
    splits: Any,
    combined: np.ndarray,
    alpha: np.ndarray | None,
    config: RunConfig,
    rule: str,
) -> dict[str, Any]:
    from w2sg.theory.kernels import combined_metrics, labeller_theory_block

    tr, hat, te = splits["weak_train"], splits["w2s_train"], splits["test"]
    n_classes = lab.n_classes
    y_hat = lab.theory_targets(hat)
    out: dict[str, Any] = {"combine": rule}
    if alpha is not None:
        kernel = combined_metrics(
            [w[hat] for w in weak], strong[hat], alpha, weak_trains=[w[tr] for w in weak],
            y=y_hat, beta_weak=config.weak_ridge, beta_strong=config.strong_ridge,
            config=config.kernel,
        )  # fmt: skip
        members = kernel.pop("members")
        kernel.pop("weights")
        out.update(kernel)
        out["k_weak"] = [int(m["k_weak"]) for m in members]
        out["k_rule"] = config.kernel.rule
    measured = labeller_theory_block(
        strong_hat=strong[hat],
        strong_test=strong[te],
        weak_labels_hat=_theory_targets_of(combined[hat], lab.task, n_classes),
        y_hat=y_hat,
        y_test=lab.theory_targets(te),
        beta_strong=config.strong_ridge,
        config=config.kernel,
    )
    out.update(measured)
    if "predicted_gap" in out:
        gap = out["measured_gap"]
        out["gap_ratio"] = out["predicted_gap"] / gap if gap > 0 else float("nan")
    return out
