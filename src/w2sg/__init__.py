"""w2sg: weak-to-strong generalization: pipeline, representation kernels, bounds, sweeps.

The Python API (``docs/python-api.md``) is the same code the command line runs::

    import w2sg
    result = w2sg.run(weak=W, strong=S, labels=y)     # = w2sg run --weak W.npy ...
    print(result.summary())

Its names are imported on first use, so ``import w2sg`` stays light (no torch, pandas or
matplotlib). A new public function is added to ``_LAZY``, ``__all__`` and the ``TYPE_CHECKING``
block below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from w2sg.errors import W2SGError

__version__ = "0.1.0"

# Public name -> the module that defines it (imported when the name is first used).
_LAZY: dict[str, str] = {
    "run": "w2sg.api",
    "metric": "w2sg.api",
    "embed": "w2sg.api",
    "sweep": "w2sg.api",
    "load_store": "w2sg.api",
    "load_result": "w2sg.api",
    "run_config": "w2sg.api",
    "Result": "w2sg.api",
    "MetricResult": "w2sg.api",
    "Embedding": "w2sg.api",
    "rank": "w2sg.experiments.rank",
    "RankResult": "w2sg.experiments.rank",
    "RunConfig": "w2sg.config",
    "KernelConfig": "w2sg.config",
}

__all__ = [
    "Embedding",
    "KernelConfig",
    "MetricResult",
    "RankResult",
    "Result",
    "RunConfig",
    "W2SGError",
    "__version__",
    "embed",
    "load_result",
    "load_store",
    "metric",
    "rank",
    "run",
    "run_config",
    "sweep",
]

if TYPE_CHECKING:
    from w2sg.api import (
        Embedding,
        MetricResult,
        Result,
        embed,
        load_result,
        load_store,
        metric,
        run,
        run_config,
        sweep,
    )
    from w2sg.config import KernelConfig, RunConfig
    from w2sg.experiments.rank import RankResult, rank


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'w2sg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
