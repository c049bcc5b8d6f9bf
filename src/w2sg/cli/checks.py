"""Checks the commands run on their arguments before any work starts: output paths that can be
written, seeds in range, a device that exists. Each failure is one :class:`W2SGError` line."""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

from w2sg.errors import W2SGError

#: Seeds are 32-bit non-negative integers (numpy, torch and Ray all accept them).
MAX_SEED = 2**32 - 1


def seed(text: str) -> int:
    """An ``argparse`` type: an integer in ``0 … 2**32 − 1``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in 0 … {MAX_SEED}, got {value}")
    return value


def _writable_folder(folder: Path) -> str | None:
    """``None`` if a file can be created in the existing ``folder``, else why not."""
    try:
        fd, name = tempfile.mkstemp(prefix=".w2sg-probe-", dir=folder)
    except OSError as exc:
        from w2sg.data.io import os_problem

        return os_problem(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def _nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return probe


def check_out_dir(path: str | Path, what: str = "--out", writes: str = "") -> Path:
    """``path`` as a folder the command can write into (created later, by the command).

    An existing file, a file on the way, or a folder where files cannot be created is a
    :class:`W2SGError` that names ``what`` (the option) and, with ``writes``, what would go there.
    """
    p = Path(path).expanduser()
    into = f" (it writes {writes})" if writes else ""
    if p.exists() and not p.is_dir():
        raise W2SGError(f"{what} {path} is an existing file; give a folder{into}")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise W2SGError(f"{what} {path}: {base} is a file, so no folder can be made there")
    problem = _writable_folder(base)
    if problem is not None:
        raise W2SGError(f"{what} {path}: cannot write in {base} ({problem}); give another folder")
    return p


def check_out_file(path: str | Path, what: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` as a file the command can write (replaced atomically if it exists).

    A folder at ``path``, a wrong suffix, or a folder where files cannot be created is a
    :class:`W2SGError`.
    """
    p = Path(path).expanduser()
    if suffixes and p.suffix.lower() not in suffixes:
        raise W2SGError(f"{what} must end in {' or '.join(suffixes)}, got {path}")
    if p.is_dir():
        raise W2SGError(f"{what} {path} is a folder; give a file name")
    base = _nearest_existing(p.parent)
    if not base.is_dir():
        raise W2SGError(f"{what} {path}: {base} is a file, so no folder can be made there")
    problem = _writable_folder(base)
    if problem is not None:
        raise W2SGError(f"{what} {path}: cannot write in {base} ({problem}); give another path")
    return p
