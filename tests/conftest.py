"""Fixtures of every test: no test reads or writes the user's w2sg cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def w2sg_cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache folder of this test session (one per xdist worker), shared by its tests."""
    return tmp_path_factory.mktemp("w2sg-cache")


@pytest.fixture(autouse=True)
def _isolated_w2sg_cache(monkeypatch: pytest.MonkeyPatch, w2sg_cache_root: Path) -> None:
    """``W2SG_CACHE_DIR`` points into the session's temporary folder for every test, so the
    embedding cache, weight hashes, assembled models and fine-tuning checkpoints of a test run
    never land in (or come from) ``~/.cache/w2sg``. Subprocesses, local-pool and Ray workers
    inherit it. A test that needs an empty cache of its own sets ``W2SG_CACHE_DIR`` again."""
    monkeypatch.setenv("W2SG_CACHE_DIR", str(w2sg_cache_root))
