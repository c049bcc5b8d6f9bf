"""The test suite never touches the user's cache folder (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from w2sg.represent.cache import EmbeddingCache, cache_dir


def test_every_test_gets_a_temporary_cache_folder(tmp_path_factory) -> None:
    base = tmp_path_factory.getbasetemp().resolve()
    user = (Path.home() / ".cache" / "w2sg").resolve()
    assert Path(os.environ["W2SG_CACHE_DIR"]).resolve().is_relative_to(base)
    assert cache_dir().resolve().is_relative_to(base) and cache_dir().resolve() != user
    assert EmbeddingCache().folder.resolve().is_relative_to(base)
    # a subprocess (the CLI, a local-pool or Ray worker) sees the same folder
    code = "from w2sg.represent.cache import cache_dir; print(cache_dir())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).resolve().is_relative_to(base)
