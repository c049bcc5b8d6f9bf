"""Loading user arrays (``.npy``, ``.npz``, ``.parquet``, ``.csv``) with checks at the boundary."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from w2sg.errors import W2SGError


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (recorded in every result's provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_array(spec: str, what: str) -> np.ndarray:
    """Load one array for the argument ``what`` (e.g. ``--weak``).

    ``spec`` is a path to ``.npy``, ``.npz`` (the only array, or ``file.npz:key``), ``.parquet`` or
    ``.csv`` (all columns, numeric). Pickled object arrays are refused.
    """
    key = None
    path_text = spec
    if ".npz:" in spec:
        path_text, key = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.exists():
        raise W2SGError(f"{what}: file not found: {path_text}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
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
        elif suffix in (".parquet", ".csv"):
            import pandas as pd

            frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
            arr = frame.to_numpy()
        else:
            raise W2SGError(
                f"{what}: unsupported file type {suffix!r}; use .npy, .npz, .parquet or .csv"
            )
    except ValueError as exc:
        raise W2SGError(f"{what}: cannot read {path_text} as a numeric array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise W2SGError(f"{what}: {path_text} holds {arr.dtype} values; numeric values are needed")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise W2SGError(
            f"{what}: {path_text} contains {bad} NaN or inf values; remove or impute them"
        )
    return arr
