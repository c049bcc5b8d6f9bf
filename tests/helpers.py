"""Skip markers shared by the tests (on the path through pyproject's pythonpath = ["tests"])."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parent
_EXPERIMENTS = _TESTS / "experiments"
_SRC = _TESTS.parent / "src"

FULL = os.environ.get("W2SG_FULL") == "1"
_skip_unless_full = pytest.mark.skipif(
    not FULL, reason="needs the w2sg[full] assets; set W2SG_FULL=1"
)


def full(test: Any) -> Any:
    """Mark a test ``full`` (selected by ``make full``, i.e. ``pytest -m full``) and skip it,
    with its reason printed, unless ``W2SG_FULL=1``."""
    return pytest.mark.full(_skip_unless_full(test))


def installed(dist: str) -> bool:
    try:
        importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def needs(*dists: str) -> pytest.MarkDecorator:
    missing = [d for d in dists if not installed(d)]
    return pytest.mark.skipif(
        bool(missing), reason=f"needs {', '.join(missing)} (scripts/install_assets.sh base)"
    )


@contextlib.contextmanager
def local_ray(**init: Any) -> Iterator[None]:
    """A local Ray cluster (``ray.init(**init)``) whose workers can import the test stand-ins:
    they inherit the driver's environment, so ``PYTHONPATH`` gets the experiments tests and
    ``src`` for the cluster's lifetime. Skips the test when Ray is not installed."""
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install ray")
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(_EXPERIMENTS), str(_SRC), saved or ""])
    ray.init(include_dashboard=False, logging_level=logging.ERROR, **init)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def weight_hashes(model: str) -> dict[str, str]:
    """SHA-256 of each weight file of ``model`` by its path in the model folder, computed here
    with hashlib (the reference for the hashes w2sg records)."""
    import hashlib

    from w2sg.represent.models import resolve_model, weight_files

    resolved = resolve_model(model)
    root = resolved.path if resolved.path.is_dir() else resolved.path.parent
    files = weight_files(resolved)
    assert files, f"{model} has no weight files"
    return {
        str(p.relative_to(root)) if p.is_relative_to(root) else p.name: hashlib.sha256(
            p.read_bytes()
        ).hexdigest()
        for p in files
    }
