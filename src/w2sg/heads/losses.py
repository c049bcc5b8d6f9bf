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
    "reverse_kl",
    "xent",
    "xent_value_and_grad",
]

#: Clip floor for targets before a logarithm (THEORY.md section 5, parameter ``eps``).
EPS = 1e-6


@dataclass(frozen=True)
class StepState:
    """Progress of the optimisation when a loss is evaluated.

    ``step`` counts the optimiser steps taken before this one (0-based) and ``total_steps`` is the
    number planned, so ``progress = step / total_steps`` runs from 0 towards 1. Mini-batch Adam
    passes the real counts; full-batch L-BFGS optimises one fixed objective and passes
    ``StepState(step=1, total_steps=1)`` (progress 1, i.e. every warm-up finished).
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


def xent_value_and_grad(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`xent` and its gradient in closed form: (mean_i −Σ_j t_ij log p_ij, (p − t) / B).

    Exact when the target rows sum to 1 (the general gradient is (p·Σ_j t_j − t) / B).
    """
    log_p = F.log_softmax(logits, dim=-1)
    value = -(targets * log_p).sum(dim=-1).mean()
    return value, (log_p.exp() - targets) / logits.shape[0]


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


def logconf(
    logits: Tensor,
    targets: Tensor,
    state: StepState | None = None,
    alpha_max: float = 0.75,
    warmup_frac: float = 0.2,
) -> Tensor:
    """Auxiliary confidence loss of Burns et al. (2023), "Weak-to-strong generalization".

    loss = mean_i [ −Σ_j u_ij log p_ij ],  u = (1 − α) · t + α · stopgrad(ĥ(p)),

    with α = alpha_max · min(1, progress / warmup_frac) (see :class:`StepState`; full-batch
    L-BFGS has progress 1, so α = alpha_max) and ĥ(p) the student's own hardened predictions:

    - binary (C = 2): with m = mean_i t_i1 the weak labels' positive rate in the batch and
      q the m-quantile of p_·0 (linear interpolation, ``torch.quantile``), ĥ(p)_i = (0, 1) if
      p_i0 < q else (1, 0). So about a fraction m of the batch is hardened to the positive class
      (the rows the student is most confident are positive), matching the weak class balance;
    - multiclass: ĥ(p)_i is the one-hot vector of argmax_j p_ij.

    ĥ(p) carries no gradient; the gradient with respect to the logits is (p − u) / B.
    """
    alpha = logconf_alpha(state if state is not None else StepState(), alpha_max, warmup_frac)
    with torch.no_grad():
        probs = torch.softmax(logits, dim=-1)
        if logits.shape[-1] == 2:
            positive_rate = targets[:, 1].mean().clamp(0.0, 1.0)
            threshold = torch.quantile(probs[:, 0], positive_rate)
            positive = (probs[:, 0] < threshold).to(logits.dtype)
            hardened = torch.stack([1.0 - positive, positive], dim=-1)
        else:
            hardened = F.one_hot(probs.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
    mixed = (1.0 - alpha) * targets + alpha * hardened
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
