"""Training losses for classification students (THEORY.md section 6).

Every loss has the signature ``loss(logits, targets, state) -> scalar tensor``:

- ``logits``: ``(B, C)`` float tensor z, the student's pre-softmax outputs;
- ``targets``: ``(B, C)`` float tensor t of soft labels (rows on the probability simplex; hard
  labels are one-hot);
- ``state``: a :class:`StepState` saying how far the optimisation has progressed (only
  ``logconf`` uses it).

The value is the *mean* over the B rows; the head adds the L2 penalty. p = softmax(z) throughout.
Look a loss up by name with :func:`get_loss`; ``LOSSES`` is the registry.

Two kinds of entries. ``xent``, ``reverse_kl``, ``hard`` and ``logconf`` are plain functions.
``logconf_oai``, ``logconf_eai``, ``product``, ``window`` and ``entropy`` (the losses of
openai/weak-to-strong and EleutherAI/w2s, see ``docs/pipeline.md`` for the table) are
:class:`Loss` objects: callables with the same signature that also carry options (``get_loss(name,
**options)``), may keep state across calls (``logconf_eai``'s rolling buffer) and have a
:meth:`Loss.start` hook, called once per training run with all the training targets (it resets
the state). ``get_loss`` returns a fresh object for each of them, so two trainings never share
state. All five mix the student's own predictions into its targets and/or depend on the step, so
they are ``needs_steps``: a trainer must pass the true :class:`StepState` of each optimiser step.

Dtype rule of the reference-code losses: both references cast the logits to float32 before the
softmax; here p is computed in the logits' dtype promoted to at least float32 (float32 and bf16
logits behave as in the references, float64 logits keep float64). With float64 a probability
saturates (p₀ rounds to exactly 0 or 1) only at |z₁ − z₀| ≳ 37 instead of ≳ 17, which changes
the tie pattern of the quantile thresholds below and nothing else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from w2sg.errors import W2SGError

__all__ = [
    "LOSSES",
    "Entropy",
    "LogconfEAI",
    "LogconfOAI",
    "Loss",
    "LossFn",
    "Product",
    "StepState",
    "Window",
    "get_loss",
    "hard",
    "logconf",
    "logconf_alpha",
    "logconf_targets",
    "needs_steps",
    "reverse_kl",
    "xent",
]

#: Clip floor for targets before a logarithm (THEORY.md section 5, parameter ``eps``).
EPS = 1e-6


@dataclass(frozen=True)
class StepState:
    """Progress of the optimisation when a loss is evaluated.

    ``step`` counts the optimiser steps taken before this one (0-based) and ``total_steps`` is the
    number planned, so ``progress = step / total_steps`` runs from 0 towards 1. Mini-batch Adam
    passes the real counts; full-batch L-BFGS passes ``StepState(step=1, total_steps=1)``
    (progress 1, i.e. every warm-up finished) for its objective (``logconf`` is solved in stages
    by the head, see :func:`logconf`).

    ``batch_size`` is the number of examples per optimiser step (summed over the micro-batches of
    gradient accumulation), or None if the trainer does not say; ``logconf_eai`` sizes its
    rolling buffer with it (EleutherAI/w2s uses its configured batch size). With gradient
    accumulation every micro-batch of one step gets the same ``step``.
    """

    step: int = 1
    total_steps: int = 1
    batch_size: int | None = None

    @property
    def progress(self) -> float:
        """Fraction of the planned steps already taken, in [0, 1]."""
        return min(max(self.step / max(self.total_steps, 1), 0.0), 1.0)


LossFn = Callable[[Tensor, Tensor, StepState], Tensor]


def xent(logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
    """Soft-label cross-entropy.

    loss = mean_i [ −Σ_j t_ij log p_ij ] = mean_i [ KL(t_i ‖ p_i) + H(t_i) ],

    i.e. forward KL from the targets plus the targets' entropy, a constant in the student's
    parameters. Gradient with respect to the logits: (p − t) / B.
    """
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def reverse_kl(
    logits: Tensor, targets: Tensor, state: StepState | None = None, eps: float = EPS
) -> Tensor:
    """Reverse KL from the student to the targets.

    loss = mean_i Σ_j p_ij (log p_ij − log t̄_ij),  t̄ = clip(t, eps, 1),

    the objective under which THEORY.md section 5.4 holds (for a convex class). Targets are
    clipped so that a zero target gives a large finite penalty instead of infinity.
    Gradient with respect to the logits of row i: p_i ⊙ (a_i − ⟨p_i, a_i⟩) / B with
    a_i = log p_i − log t̄_i.
    """
    log_p = F.log_softmax(logits, dim=-1)
    log_t = torch.log(targets.clamp(min=eps, max=1.0))
    return (log_p.exp() * (log_p - log_t)).sum(dim=-1).mean()


def hard(logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
    """Cross-entropy on the hardened targets.

    loss = mean_i [ −log p_{i, k_i} ],  k_i = argmax_j t_ij (ties: the lowest index).
    """
    return F.cross_entropy(logits, targets.argmax(dim=-1))


def logconf_alpha(state: StepState, alpha_max: float = 0.75, warmup_frac: float = 0.2) -> float:
    """Mixing weight of :func:`logconf`: α = alpha_max · min(1, progress / warmup_frac)."""
    if warmup_frac <= 0:
        return alpha_max
    return alpha_max * min(1.0, state.progress / warmup_frac)


def _harden(logits: Tensor, targets: Tensor) -> Tensor:
    """ĥ(p) of :func:`logconf` as a float one-hot (B, C) tensor; see there for the definition."""
    batch, n_classes = logits.shape
    if n_classes == 2:
        # Order the rows by the student's confidence in the positive class, z_1 − z_0 (monotone
        # in p_1 and free of the ties a saturated softmax would add), then by the weak label t_1,
        # then by row index (stable sorts, the least significant key first).
        order = torch.argsort(-targets[:, 1], stable=True)
        order = order[torch.argsort(logits[order, 0] - logits[order, 1], stable=True)]
        positive_rate = float(targets[:, 1].mean().clamp(0.0, 1.0))
        # Rows below the positive_rate-quantile of p_0 (linear interpolation) when the p_0 are
        # distinct; the small slack absorbs rounding in the mean.
        k = max(math.ceil(positive_rate * (batch - 1) - 1e-9), 0)
        positive = torch.zeros(batch, dtype=logits.dtype)
        positive[order[:k]] = 1.0
        return torch.stack([1.0 - positive, positive], dim=-1)
    # Argmax of p; a tie between top classes goes to the larger weak label, then the lower index.
    top = logits == logits.max(dim=-1, keepdim=True).values
    key = torch.where(top, targets, torch.full_like(targets, -1.0))
    return F.one_hot(key.argmax(dim=-1), n_classes).to(logits.dtype)


def logconf_targets(
    logits: Tensor,
    targets: Tensor,
    state: StepState | None = None,
    alpha_max: float = 0.75,
    warmup_frac: float = 0.2,
) -> Tensor:
    """The mixed target u = (1 − α) · t + α · ĥ(p) of :func:`logconf`, without gradient."""
    alpha = logconf_alpha(state if state is not None else StepState(), alpha_max, warmup_frac)
    with torch.no_grad():
        if alpha == 0.0:
            return targets.detach().clone()
        hardened = _harden(logits.detach(), targets.detach())
        return (1.0 - alpha) * targets.detach() + alpha * hardened


def logconf(
    logits: Tensor,
    targets: Tensor,
    state: StepState | None = None,
    alpha_max: float = 0.75,
    warmup_frac: float = 0.2,
) -> Tensor:
    """Auxiliary confidence loss of Burns et al. (2023), "Weak-to-strong generalization".

    loss = mean_i [ −Σ_j u_ij log p_ij ],  u = (1 − α) · t + α · stopgrad(ĥ(p)),

    with α = alpha_max · min(1, progress / warmup_frac) (see :class:`StepState`) and ĥ(p) the
    student's own hardened predictions (:func:`logconf_targets` returns u):

    - binary (C = 2): with m = mean_i t_i1 the weak labels' positive rate in the batch, the
      k = ⌈m (B − 1)⌉ rows with the largest z_i1 − z_i0 (equivalently the smallest p_i0) get
      ĥ(p)_i = (0, 1), the others (1, 0). For distinct p_i0 these are exactly the rows with p_i0
      below the m-quantile of p_·0 (linear interpolation, as ``torch.quantile``), so about a
      fraction m of the batch is hardened to the positive class, matching the weak class balance.
      Ties (all rows tie at W = 0, where every prediction is the same) are broken by the weak
      label t_i1 (larger first), then by the row index, so the count k holds at ties too;
    - multiclass: ĥ(p)_i is the one-hot vector of argmax_j p_ij, ties broken by the larger weak
      label t_ij, then the lower class index.

    ĥ(p) carries no gradient; the gradient with respect to the logits is (p − u) / B.

    The head's full-batch L-BFGS does not minimise this loss directly (its value moves with ĥ, so
    it is not one fixed objective for a line search): it solves the warm-up's start (α = 0, i.e.
    ``xent``) and then iterates to a fixed point at α = alpha_max, see
    :class:`w2sg.heads.softmax.SoftmaxHead`.
    """
    mixed = logconf_targets(logits, targets, state, alpha_max, warmup_frac)
    return -(mixed * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


# ------------------------------------------------------------ losses of the reference codebases


def _probs(logits: Tensor) -> Tensor:
    """softmax(z) in z's dtype promoted to at least float32 (the dtype rule of the module doc)."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    return torch.softmax(logits.to(dtype), dim=-1)


def _soft_xent(logits: Tensor, target: Tensor) -> Tensor:
    """mean_i −Σ_j target_ij log softmax(z)_ij, in the dtype of :func:`_probs`."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    log_p = F.log_softmax(logits.to(dtype), dim=-1)
    return -(target.to(dtype) * log_p).sum(dim=-1).mean()


def _binary(name: str, targets: Tensor) -> None:
    if targets.ndim != 2 or targets.shape[1] != 2:
        raise W2SGError(
            f"loss {name!r} is defined for two classes (as in its reference code); got targets "
            f"of shape {tuple(targets.shape)}; use 'logconf' or 'xent' for more classes"
        )


def _warm_up_fraction_oai(progress: float, warmup_frac: float) -> float:
    """openai/weak-to-strong's schedule factor: 1 if progress > warmup_frac else progress."""
    return 1.0 if progress > warmup_frac else progress


@dataclass
class Loss:
    """A registered loss with options and possibly state; an instance is a :data:`LossFn`.

    Subclasses are dataclasses whose fields are the options (``get_loss(name, **options)``
    replaces them) and implement :meth:`__call__`. :meth:`start` is called by a trainer once per
    training run, before the first step, with the run's (n, C) training targets: it clears any
    state and computes data-dependent options. Calling the loss without :meth:`start` is allowed
    (state starts empty) except where an option needs the data (``window``'s ``"midweak"``).
    """

    #: whether the value depends on the step or on the student's own predictions (then a trainer
    #: must pass each step's real :class:`StepState`; full-batch L-BFGS refuses the loss).
    needs_steps = True

    def __call__(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        raise NotImplementedError

    def start(self, targets: Tensor) -> None:
        """Reset the state before a training run on ``targets`` (n, C)."""

    def configured(self, **options: Any) -> Loss:
        """A fresh copy with ``options`` replacing the defaults (W2SGError for unknown ones)."""
        names = {f.name for f in dataclasses.fields(self) if f.init}
        unknown = sorted(set(options) - names)
        if unknown:
            raise W2SGError(
                f"loss {self.name!r} has no option(s) {unknown}; its options are {sorted(names)}"
            )
        out = dataclasses.replace(self, **options)
        out.validate()
        return out

    @property
    def name(self) -> str:
        """The registry name (of the nearest registered class, for subclasses)."""
        for cls in type(self).__mro__:
            if cls in _NAMES:
                return _NAMES[cls]
        return type(self).__name__

    def validate(self) -> None:
        """Check the options (W2SGError naming the bad one)."""


@dataclass
class LogconfOAI(Loss):
    """Auxiliary confidence loss exactly as openai/weak-to-strong publishes it
    (``weak_to_strong/loss.py``, ``logconf_loss_fn``; Burns et al. 2023). Binary only.

    With f = progress (= step / total_steps, :class:`StepState`; openai passes
    ``step_frac = step / nsteps`` with the 0-based step), m = mean_i t_i1 (the weak labels'
    class-1 mean over the batch) and p = softmax(z):

    - coefficient c = aux · (1 if f > warmup_frac else f): during the warm-up c rises as aux·f to
      aux·warmup_frac and then jumps to aux (an open pull request there calls the jump a bug; it is
      reproduced as published; ``logconf`` is our linear ramp);
    - threshold τ = torch.quantile(p_·0, m) over the batch (linear interpolation between order
      statistics, m clamped to [0, 1] against rounding);
    - hardened prediction ĥ_i = (1, 0) if p_i0 ≥ τ else (0, 1);
    - loss = mean_i −Σ_j u_ij log p_ij with u = (1 − c)·t + c·stopgrad(ĥ).

    Ties and saturation follow the reference rule p_i0 ≥ τ → class 0: every row whose p_i0
    equals the threshold is hardened to class 0. At a zero-initialised head (every p_i0 = 1/2)
    the whole batch is hardened to class 0, and rows whose p_i0 saturated to exactly 0 or 1 tie
    with each other, so the number of class-1 rows can fall below m·B. Defaults: aux = 0.5,
    warmup_frac = 0.1.
    """

    aux: float = 0.5
    warmup_frac: float = 0.1

    def validate(self) -> None:
        if not 0.0 <= self.aux <= 1.0:
            raise W2SGError(f"logconf_oai: aux must be in [0, 1]; got {self.aux}")
        if not 0.0 <= self.warmup_frac <= 1.0:
            raise W2SGError(f"logconf_oai: warmup_frac must be in [0, 1]; got {self.warmup_frac}")

    def coefficient(self, state: StepState | None) -> float:
        """c = aux · (1 if progress > warmup_frac else progress)."""
        progress = (state if state is not None else StepState()).progress
        return self.aux * _warm_up_fraction_oai(progress, self.warmup_frac)

    def targets(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        """The mixed target u (no gradient)."""
        _binary("logconf_oai", targets)
        with torch.no_grad():
            p = _probs(logits.detach())
            t = targets.detach().to(p.dtype)
            level = t[:, 1].mean().clamp(0.0, 1.0)
            threshold = torch.quantile(p[:, 0], level)
            class0 = (p[:, 0] >= threshold).to(p.dtype)
            hardened = torch.stack([class0, 1.0 - class0], dim=-1)
            c = self.coefficient(state)
            return t * (1.0 - c) + hardened * c

    def __call__(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        return _soft_xent(logits, self.targets(logits, targets, state))


@dataclass
class LogconfEAI(Loss):
    """Log-confidence loss as EleutherAI/w2s trains it (``w2s/loss.py``, ``log_confidence_loss``
    with ``harden=True``, called by ``CustomLossTrainer`` in ``w2s/sft.py``). Binary only.

    With y_i = t_i1 (the weak class-1 probability), s = ``state.step`` (optimiser steps taken
    before this one, Hugging Face's ``global_step``) and p = softmax(z):

    - ``balance_batch``: ℓ_i = log(y_i + 1e-7) − log(1 − y_i + 1e-7), y_i ← σ(ℓ_i − mean ℓ) and the
      prior π = 1/2; otherwise π = mean_i y_i (π = 1/2 for a batch of one row);
    - coefficient c = aux · min(1, s / warmup_steps) (c = aux when warmup_steps = 0): a linear
      warm-up in steps;
    - rolling buffer: this batch's p_·0 are appended to the buffer of earlier batches' p_·0
      (detached), which keeps its last ``buffer_size`` entries; threshold τ = torch.quantile of
      the buffer at level π. ``buffer_size`` None means ``state.batch_size`` when the trainer
      gives it, else this call's row count (EleutherAI passes its configured batch size, so with
      one micro-batch per step the buffer is the current batch, and with gradient accumulation it
      also holds the step's earlier micro-batches);
    - hardened ĥ_i = (1, 0) if p_i0 ≥ τ else (0, 1); ties and saturated rows go to class 0 as in
      ``logconf_oai``;
    - loss = mean_i −Σ_j u_ij log p_ij, u = (1 − c)·(1 − y_i, y_i) + c·stopgrad(ĥ_i).

    Defaults are EleutherAI's ``LogConfidenceLossConfig``: aux (``logconf_weight``) 0.5,
    ``logconf_warmup_steps`` 100, ``balance_batch`` False. :meth:`start` empties the buffer.
    """

    aux: float = 0.5
    warmup_steps: int = 100
    balance_batch: bool = False
    buffer_size: int | None = None
    harden = True
    buffer: list[Tensor] = field(default_factory=list, init=False, repr=False, compare=False)

    def validate(self) -> None:
        if not 0.0 <= self.aux <= 1.0:
            raise W2SGError(f"{self.name}: aux must be in [0, 1]; got {self.aux}")
        if self.warmup_steps < 0:
            raise W2SGError(f"{self.name}: warmup_steps must be >= 0; got {self.warmup_steps}")
        if self.buffer_size is not None and self.buffer_size < 1:
            raise W2SGError(f"{self.name}: buffer_size must be >= 1; got {self.buffer_size}")

    def start(self, targets: Tensor) -> None:
        self.buffer = []

    def coefficient(self, state: StepState | None) -> float:
        """c = aux · min(1, step / warmup_steps)."""
        step = (state if state is not None else StepState()).step
        if self.warmup_steps <= 0:
            return self.aux
        return self.aux * min(1.0, step / self.warmup_steps)

    def targets(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        """The mixed target u (no gradient); appends this batch to the buffer."""
        _binary(self.name, targets)
        with torch.no_grad():
            p = _probs(logits.detach())
            y = targets.detach()[:, 1].to(p.dtype)
            if self.balance_batch:
                log_odds = torch.log(y + 1e-7) - torch.log(1 - y + 1e-7)
                y = torch.sigmoid(log_odds - log_odds.mean())
                prior = torch.tensor(0.5, dtype=p.dtype)
            else:
                prior = y.mean() if y.shape[0] > 1 else torch.tensor(0.5, dtype=p.dtype)
            size = self.buffer_size
            if size is None:
                size = state.batch_size if state is not None and state.batch_size else len(y)
            self.buffer = (self.buffer + list(p[:, 0]))[-size:]
            if self.harden:
                threshold = torch.quantile(torch.stack(self.buffer), prior.clamp(0.0, 1.0))
                class0 = (p[:, 0] >= threshold).to(p.dtype)
                own = torch.stack([class0, 1.0 - class0], dim=-1)
            else:
                own = p
            c = self.coefficient(state)
            return torch.stack([1.0 - y, y], dim=-1) * (1.0 - c) + own * c

    def __call__(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        return _soft_xent(logits, self.targets(logits, targets, state))


@dataclass
class Entropy(LogconfEAI):
    """EleutherAI/w2s's ``entropy`` loss: :class:`LogconfEAI` without hardening
    (``log_confidence_loss(..., harden=False)``): the student's own soft prediction is mixed in,

        loss = mean_i −Σ_j u_ij log p_ij,  u = (1 − c)·(1 − y_i, y_i) + c·stopgrad(p_i),

    with the same coefficient c = aux · min(1, step / warmup_steps) and the same optional
    ``balance_batch``. Minimising it lowers the student's entropy (the c·H(p)-like term), hence
    the name. No threshold, so no tie rule; binary only as in the reference.
    """

    harden = False


@dataclass
class Product(Loss):
    """openai/weak-to-strong's ``product_loss_fn``: cross-entropy to the normalised product of the
    student's and the weak model's distributions,

        u_ij = p_ij^β · t_ij^α / Σ_k p_ik^β · t_ik^α  (detached),  loss = mean_i −Σ_j u_ij log p_ij,

    α = β = 1 by default (α weighs the weak model, β the student). The reference's ``warmup_frac``
    argument is unused there and is left out. Any number of classes.

    Saturation rule: u is computed in log space, softmax_j(β log p_ij + α log t_ij) with 0·log 0 =
    0 (so t^0 = 1 as in ``torch.pow``), equal to the reference wherever its denominator is
    positive. Where it is zero (the student puts all its mass, to floating-point precision, on
    classes the weak label rules out: the reference divides 0 by 0 and its loss is NaN), the row's
    target falls back to the weak label t_i.
    """

    alpha: float = 1.0
    beta: float = 1.0

    def validate(self) -> None:
        if not (self.alpha >= 0 and self.beta >= 0):
            raise W2SGError(f"product: alpha and beta must be >= 0; got {self.alpha}, {self.beta}")

    def targets(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        """The product target u (no gradient)."""
        with torch.no_grad():
            dtype = torch.promote_types(logits.dtype, torch.float32)
            log_p = F.log_softmax(logits.detach().to(dtype), dim=-1)
            t = targets.detach().to(dtype)
            log_t = torch.log(t)
            score = torch.zeros_like(log_p)
            if self.beta != 0:
                score = score + self.beta * log_p
            if self.alpha != 0:
                score = score + self.alpha * log_t
            empty = torch.isneginf(score).all(dim=-1, keepdim=True)
            u = torch.softmax(torch.where(empty, torch.zeros_like(score), score), dim=-1)
            return torch.where(empty, t, u)

    def __call__(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        return _soft_xent(logits, self.targets(logits, targets, state))


@dataclass
class Window(Loss):
    """EleutherAI/w2s's ``confidence_window_loss``: cross-entropy only on the rows where the
    student is still uncertain,

        loss = (1/B) Σ_{i : max_j p_ij < 1/2 + r} −Σ_j t_ij log p_ij,

    summed over the kept rows and divided by the whole batch size B (0 when no row is kept).
    Strict inequality: a row with max_j p_ij exactly 1/2 + r (or saturated at 1) is dropped. The
    mask carries no gradient. ``radius`` r = 0.15 by default; ``"midweak"`` sets r to the median
    of |t_i1 − 1/2| over the training targets, as torch's ``median`` (the lower of the two middle
    values for an even count), computed by :meth:`start`. The reference is binary; the same
    formula is applied to any number of classes.
    """

    radius: float | str = 0.15
    radius_: float | None = field(default=None, init=False, repr=False, compare=False)

    def validate(self) -> None:
        if isinstance(self.radius, str):
            if self.radius != "midweak":
                raise W2SGError(
                    f"window: radius must be a number or 'midweak'; got {self.radius!r}"
                )
        elif not self.radius >= 0:
            raise W2SGError(f"window: radius must be >= 0; got {self.radius}")

    def start(self, targets: Tensor) -> None:
        if self.radius == "midweak":
            _binary("window", targets)
            self.radius_ = float((targets[:, 1] - 0.5).abs().median())

    def __call__(self, logits: Tensor, targets: Tensor, state: StepState | None = None) -> Tensor:
        if isinstance(self.radius, str):
            if self.radius_ is None:
                raise W2SGError(
                    "window: radius 'midweak' needs the training targets; call start(targets) first"
                )
            radius = self.radius_
        else:
            radius = float(self.radius)
        dtype = torch.promote_types(logits.dtype, torch.float32)
        log_p = F.log_softmax(logits.to(dtype), dim=-1)
        with torch.no_grad():
            keep = log_p.exp().max(dim=-1).values < 0.5 + radius
        rows = -(targets.to(dtype) * log_p).sum(dim=-1)
        return torch.where(keep, rows, torch.zeros_like(rows)).sum() / logits.shape[0]


LOSSES: dict[str, LossFn] = {
    "xent": xent,
    "reverse_kl": reverse_kl,
    "hard": hard,
    "logconf": logconf,
    "logconf_oai": LogconfOAI(),
    "logconf_eai": LogconfEAI(),
    "product": Product(),
    "window": Window(),
    "entropy": Entropy(),
}

_NAMES: dict[type, str] = {type(v): k for k, v in LOSSES.items() if isinstance(v, Loss)}


def get_loss(name: str, **options: Any) -> LossFn:
    """The registered loss called ``name``; raises :class:`W2SGError` for an unknown name.

    Plain-function losses are returned as they are (and take no options). :class:`Loss` entries
    are returned as a fresh copy with ``options`` applied (e.g. ``get_loss("logconf_eai",
    warmup_steps=50, balance_batch=True)``), so state is never shared between trainings.
    """
    try:
        entry = LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(LOSSES))
        raise W2SGError(f"unknown loss {name!r}; use one of {known}") from None
    if isinstance(entry, Loss):
        return entry.configured(**options)
    if options:
        raise W2SGError(f"loss {name!r} takes no options; got {sorted(options)}")
    return entry


def needs_steps(loss: LossFn) -> bool:
    """Whether ``loss`` depends on the step or the student's own predictions (a :class:`Loss`
    flagged so); such a loss needs a trainer with steps (Adam, fine-tuning), not full-batch
    L-BFGS. ``logconf`` is the exception the softmax head solves in stages."""
    return bool(getattr(loss, "needs_steps", False))
