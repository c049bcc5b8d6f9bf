"""Reading user files (arrays, texts) with every failure turned into one :class:`W2SGError` line.

``load_array`` reads ``.npy``, ``.npz``, ``.parquet`` and ``.csv`` arrays; ``read_text`` reads a
UTF-8 text file (texts, sweep configs, family files). Both name the argument and the file, and say
what was wrong: missing, a folder, unreadable, truncated, not the format its name says, not UTF-8.
Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import lzma
import math
import os
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from w2sg.errors import W2SGError

#: What a damaged or foreign file raises inside numpy, zipfile, gzip, lzma, pandas or pyarrow.
CORRUPT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    tarfile.TarError,
    KeyError,
    IndexError,
    TypeError,
    OverflowError,
    MemoryError,
    RecursionError,
)


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (recorded in every result's provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def os_problem(exc: OSError) -> str:
    """What an ``OSError`` says about a path, in a few words (no errno, no traceback)."""
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not a file"
    if isinstance(exc, NotADirectoryError):
        return "has a file where a folder is expected on its path"
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = exc.strerror or str(exc) or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())[:300].lower()


def check_input_file(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a :class:`Path` if it is a readable file; else a :class:`W2SGError`."""
    p = Path(path)
    if not p.exists():
        raise W2SGError(f"{what}: file not found: {path}")
    if p.is_dir():
        raise W2SGError(f"{what}: {path} is a folder; give a file")
    try:
        with p.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise W2SGError(f"{what}: cannot read {path}: {os_problem(exc)}") from None
    return p


def read_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of a user file; missing, unreadable or not UTF-8 is a :class:`W2SGError`."""
    p = check_input_file(path, what)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise W2SGError(f"{what}: cannot read {path}: {os_problem(exc)}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise W2SGError(
            f"{what}: {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "re-save it as UTF-8"
        ) from None


def load_array(spec: str, what: str) -> np.ndarray:
    """Load one array for the argument ``what`` (e.g. ``--weak``).

    ``spec`` is a path to ``.npy``, ``.npz`` (the only array, or ``file.npz:key``), ``.parquet`` or
    ``.csv`` (all columns, numeric). Pickled object arrays are refused; a truncated, damaged or
    unreadable file, or a folder, is a :class:`W2SGError` naming it.
    """
    key = None
    path_text = spec
    if ".npz:" in spec:
        path_text, key = spec.rsplit(":", 1)
    path = check_input_file(path_text, what)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".parquet", ".csv"):
        raise W2SGError(
            f"{what}: unsupported file type {suffix!r}; use .npy, .npz, .parquet or .csv"
        )
    try:
        if suffix == ".npy":
            _check_npy_size(path, path_text, what)
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.keys())
                if key is None:
                    if len(names) != 1:
                        raise W2SGError(
                            f"{what}: {path_text} holds {len(names)} arrays {names}; "
                            f"name one as {path_text}:KEY"
                        )
                    key = names[0]
                if key not in names:
                    raise W2SGError(f"{what}: {path_text} has no array {key!r}; it has {names}")
                arr = z[key]
        else:
            import pandas as pd

            frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
            arr = frame.to_numpy()
    except W2SGError:
        raise
    except OSError as exc:
        raise W2SGError(f"{what}: cannot read {path_text}: {os_problem(exc)}") from None
    except CORRUPT_ERRORS as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise W2SGError(
            f"{what}: cannot read {path_text} as a numeric {suffix} array; it is truncated, "
            f"damaged or not that format ({first})"
        ) from None
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise W2SGError(f"{what}: {path_text} holds {arr.dtype} values; numeric values are needed")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise W2SGError(
            f"{what}: {path_text} contains {bad} NaN or inf values; remove or impute them"
        )
    return arr


def _check_npy_size(path: Path, shown: str, what: str) -> None:
    """Compare a ``.npy`` header's shape with the file's size, so that a truncated file is named as
    such (and a damaged header claiming terabytes is never allocated)."""
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return  # numpy reads (or refuses) the other versions itself
        offset = handle.tell()
    if dtype.hasobject:
        return  # refused by np.load(allow_pickle=False) with its own message
    need = math.prod(int(n) for n in shape) * dtype.itemsize
    have = path.stat().st_size - offset
    if have < need:
        raise W2SGError(
            f"{what}: {shown} is truncated: its header says {tuple(shape)} {dtype} "
            f"({need} bytes) but it holds {have}; write it again"
        )
