"""Skip markers shared by the representation tests."""

from __future__ import annotations

import importlib.metadata
import os

import pytest

FULL = os.environ.get("W2SG_FULL") == "1"
full = pytest.mark.skipif(not FULL, reason="needs the w2sg[full] assets; set W2SG_FULL=1")


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
