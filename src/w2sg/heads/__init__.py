"""Heads trained on frozen representations.

``softmax``: :class:`SoftmaxHead` with the loss registry of :mod:`w2sg.heads.losses`.
"""

from w2sg.heads.losses import LOSSES, get_loss
from w2sg.heads.softmax import SoftmaxHead

__all__ = ["LOSSES", "SoftmaxHead", "get_loss"]
