"""The learner interface shared by heads on frozen representations and fine-tuned transformers.

A *source* knows what a row is (a representation matrix, or texts / SMILES with a tokenizer)
and builds a fresh :class:`Learner` per model of the pipeline (``weak``, ``w2s``, ``ceiling``). A
learner is fitted on row indices and soft targets and predicts for row indices:

- ``fit(rows, targets, *, val=None, on_epoch=None)``: ``targets`` are ``(n, C)`` probabilities
  (classification, probability tasks) or ``(n,)`` values (regression); ``val`` an optional
  ``(rows, targets)`` pair for model selection; ``on_epoch(epoch, learner)`` is called after each
  epoch of an iterative learner (never by closed-form heads);
- ``predict(rows)``: ``(n, C)`` probabilities, ``(n,)`` values, or raw scores ``(n, C)`` when
  ``outputs_scores`` (least-squares heads on one-hot targets, see :func:`is_score_head`);
- ``info()``: the ``train`` entry of the result (mode, parameter counts, epochs, selection; for
  fine-tuned models also time, throughput and peak memory; a head's entry holds no timings, so
  that a probe run's record stays the same number for number on every rerun).

The pipeline never asks how a learner learns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from w2sg.config import RunConfig

__all__ = ["HeadLearner", "HeadSource", "Learner", "LearnerSource", "is_score_head"]

#: Called after each epoch with (epoch, learner); may return numbers to add to the curve point.
EpochHook = Callable[[int, Any], dict[str, Any] | None]


class Learner(Protocol):
    """One trainable model of the pipeline; see the module docstring."""

    outputs_scores: bool

    def fit(
        self,
        rows: np.ndarray,
        targets: np.ndarray,
        *,
        val: tuple[np.ndarray, np.ndarray] | None = None,
        on_epoch: EpochHook | None = None,
    ) -> Learner: ...

    def predict(self, rows: np.ndarray) -> np.ndarray: ...

    def info(self) -> dict[str, Any]: ...


class LearnerSource(Protocol):
    """What the pipeline asks of a model's inputs: a fresh learner for a role."""

    mode: str

    def learner(self, role: str, config: RunConfig, seed: int, **shared: Any) -> Learner: ...


def is_score_head(config: RunConfig) -> bool:
    """Least-squares heads on one-hot targets: their raw outputs are scores, not probabilities.

    Their students learn from the weak model's raw scores (the head is linear in its labels, the
    setting of THEORY.md §2 and §5.3); the pipeline turns scores into probabilities for metrics.
    """
    return config.task != "regression" and config.head in ("ridge", "least_squares")


class HeadLearner:
    """A head of ``config.head`` on the frozen representation ``H`` (rows index ``H``).

    ``role`` in {weak, w2s, ceiling} picks the penalty (β_w for the weak model, β_s otherwise) and
    the loss (the configured loss for the w2s student, ``xent`` for the models trained on truth).
    ``decomposition``: a ridge head's :class:`~w2sg.heads.ridge.RidgeDecomposition` of ``H[rows]``,
    shared with the other heads on those rows and the theory block (ignored by other heads).
    """

    def __init__(
        self, H: np.ndarray, config: RunConfig, role: str, seed: int, decomposition: Any = None
    ) -> None:
        self.H = H
        self.config = config
        self.role = role
        self.seed = seed
        self.decomposition = decomposition
        self.outputs_scores = is_score_head(config)

    def fit(
        self,
        rows: np.ndarray,
        targets: np.ndarray,
        *,
        val: tuple[np.ndarray, np.ndarray] | None = None,
        on_epoch: EpochHook | None = None,
    ) -> HeadLearner:
        self.predict_fn_ = _fit_head(
            self.H[rows], targets, self.config, role=self.role, seed=self.seed,
            decomposition=self.decomposition,
        )  # fmt: skip
        n_out = 1 if targets.ndim == 1 else targets.shape[1]
        self.n_params_ = (self.H.shape[1] + 1) * n_out
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_fn_(self.H[rows]))

    def info(self) -> dict[str, Any]:
        return {
            "mode": "probe",
            "head": self.config.head,
            "trainable_params": self.n_params_,
            "total_params": self.n_params_,
            "epochs_run": None,
            "best_epoch": None,
            "selected_by": "none (one fit on the frozen representation)",
            "device": "cpu",
            "dtype": "float64",
        }


class HeadSource:
    """Heads on one frozen representation matrix ``(n, d)``."""

    mode = "probe"

    def __init__(self, H: np.ndarray) -> None:
        self.H = H

    def learner(
        self, role: str, config: RunConfig, seed: int, decomposition: Any = None, **_: Any
    ) -> HeadLearner:
        return HeadLearner(self.H, config, role, seed, decomposition)


def _fit_head(
    H: np.ndarray,
    targets: np.ndarray,
    config: RunConfig,
    *,
    role: str,
    seed: int,
    decomposition: Any = None,
) -> Any:
    """Fit the head family of ``config`` for ``role``; return its predict function.

    The predictor maps a representation matrix to the head's own outputs: probabilities ``(n, C)``
    for the probability heads, predictions ``(n,)`` for regression, and raw scores ``(n, C)`` for
    least-squares heads on one-hot targets (see :func:`is_score_head`).
    """
    beta = config.weak_ridge if role == "weak" else config.strong_ridge
    task = config.task
    if config.head == "ridge" or (task == "regression" and config.head == "least_squares"):
        if config.head == "least_squares":
            from w2sg.heads.convex import LeastSquaresHead

            head: Any = LeastSquaresHead(radius=config.radius).fit(H, targets)
        else:
            from w2sg.heads.ridge import RidgeHead

            head = RidgeHead(beta=beta).fit(H, targets, decomposition=decomposition)
        return head.predict
    if config.head == "least_squares":
        from w2sg.heads.convex import LeastSquaresHead

        return LeastSquaresHead(radius=config.radius).fit(H, targets).predict
    if config.head == "convex_kl" and role != "weak":
        from w2sg.heads.convex import ConvexKLHead

        head = ConvexKLHead().fit(H, targets[:, 1])
        return head.predict_proba
    from w2sg.heads.softmax import SoftmaxHead

    # The weak model and the ceiling learn from ground truth by cross-entropy; only the w2s student
    # uses the configured loss on the weak labels.
    loss = config.loss if role == "w2s" else "xent"
    soft = SoftmaxHead(
        loss=loss,
        l2=beta,
        optimizer=config.optimizer,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        max_iter=config.max_iter,
        seed=seed,
    ).fit(H, targets)
    return soft.predict_proba
