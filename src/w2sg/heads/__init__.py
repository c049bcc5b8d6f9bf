"""Heads trained on frozen representations.

- ``ridge``: :class:`RidgeHead` and :class:`RidgeDecomposition` (closed form, one SVD reused).
- ``softmax``: :class:`SoftmaxHead` with the loss registry of :mod:`w2sg.heads.losses`.
- ``convex``: :class:`LeastSquaresHead` (optional norm ball) and :class:`ConvexKLHead`.
- ``learner``: the :class:`Learner` interface the pipeline trains through, and the head learners.
- ``finetune``: fine-tuned transformers (``full``, ``lora``) behind the same interface.

Submodules are imported on first use, so that ``w2sg.heads.ridge`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RidgeHead": "ridge",
    "RidgeDecomposition": "ridge",
    "SoftmaxHead": "softmax",
    "LOSSES": "losses",
    "get_loss": "losses",
    "LeastSquaresHead": "convex",
    "ConvexKLHead": "convex",
    "Learner": "learner",
    "HeadLearner": "learner",
    "HeadSource": "learner",
    "FinetuneLearner": "finetune",
    "FinetuneSource": "finetune",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"w2sg.heads.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'w2sg.heads' has no attribute {name!r}")
