"""Training losses for classification students (THEORY.md section 6).

Every loss has the signature ``loss(logits, targets, state) -> scalar tensor``:

- ``logits``: ``(B, C)`` float tensor z, the student's pre-softmax outputs;
- ``targets``: ``(B, C)`` float tensor t of soft labels (rows on the probability simplex; hard
  labels are one-hot);
- ``state``: a :class:`StepState` saying how far the optimisation has progressed (only
  ``logconf`` uses it).

The value is the *mean* over the B rows; the head adds the L2 penalty. p = softmax(z) throughout.
Look a loss up by name with :func:`get_loss`; ``LOSSES`` is the registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from w2sg.errors import W2SGError

__all__ = [
    "LOSSES",
    "LossFn",
    "StepState",
    "get_loss",
    "hard",
    "logconf",
    "logconf_alpha",
    "logconf_targets",
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
    """

    step: int = 1
    total_steps: int = 1

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


LOSSES: dict[str, LossFn] = {
    "xent": xent,
    "reverse_kl": reverse_kl,
    "hard": hard,
    "logconf": logconf,
}


def get_loss(name: str) -> LossFn:
    """The registered loss called ``name``; raises :class:`W2SGError` for an unknown name."""
    try:
        return LOSSES[name]
    except KeyError:
        known = ", ".join(sorted(LOSSES))
        raise W2SGError(f"unknown loss {name!r}; use one of {known}") from None
