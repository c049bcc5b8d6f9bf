"""Skip markers shared by the tests (on the path through pyproject's pythonpath = ["tests"])."""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

import pytest

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
