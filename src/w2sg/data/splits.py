"""Seeded, stratified, leak-free splits into weak_train (D̃), w2s_train (D̂), test and val.

Every example has a content-hash id. Splits are assigned per *distinct id*, so two rows with the
same content always land in the same split: overlapping splits are impossible by construction, and
:func:`make_splits` checks it again before returning. The assignment depends only on the set of
ids, their labels, the fractions and the seed, not on the order of the rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from w2sg.errors import W2SGError

SPLIT_NAMES: tuple[str, ...] = ("weak_train", "w2s_train", "test", "val")


def content_ids(*arrays: np.ndarray) -> np.ndarray:
    """Per-row SHA-256 (hex, first 16 bytes) of the bytes of each row of every array.

    Rows of all arrays must align. Arrays are hashed in float64 / int64 canonical form so that the
    id does not depend on the dtype the user saved.
    """
    n = len(arrays[0])
    canon = []
    for a in arrays:
        a = np.asarray(a)
        kind = np.float64 if a.dtype.kind == "f" else a.dtype
        canon.append(np.ascontiguousarray(a.astype(kind, copy=False)).reshape(n, -1))
    ids = np.empty(n, dtype=object)
    for i in range(n):
        h = hashlib.sha256()
        for a in canon:
            h.update(a[i].tobytes())
        ids[i] = h.hexdigest()[:32]
    return ids.astype(str)


def text_ids(texts: Sequence[str]) -> np.ndarray:
    """Content-hash ids of texts (or SMILES): SHA-256 of the UTF-8 bytes, first 16 bytes in hex."""
    return np.array([hashlib.sha256(t.encode("utf-8")).hexdigest()[:32] for t in texts], dtype=str)


@dataclass(frozen=True)
class Splits:
    """Row indices of each split (sorted), and the ids they were drawn from."""

    indices: dict[str, np.ndarray]
    ids: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {name: int(len(idx)) for name, idx in self.indices.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self.indices[name]

    def __contains__(self, name: object) -> bool:
        return name in self.indices


def _allocate(count: int, fractions: np.ndarray) -> np.ndarray:
    """Largest-remainder allocation of ``count`` items to parts with the given fractions."""
    raw = fractions * count
    base = np.floor(raw).astype(int)
    rest = count - int(base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return base


def make_splits(
    ids: np.ndarray,
    fractions: Sequence[float] = (0.4, 0.4, 0.2),
    seed: int = 0,
    stratify: np.ndarray | None = None,
) -> Splits:
    """Split rows into weak_train, w2s_train, test (and val when four fractions are given).

    Distinct ids are sorted, then shuffled with ``numpy.random.default_rng(seed)``; with
    ``stratify`` (class labels) every split keeps each class's share to within one example. Split
    sizes follow the fractions by largest remainder over the distinct ids.
    """
    ids = np.asarray(ids).astype(str)
    frac = np.asarray(fractions, dtype=float)
    names = SPLIT_NAMES[: len(frac)]
    uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rng = np.random.default_rng(seed)
    group_split = np.empty(len(uniq), dtype=int)
    if stratify is not None:
        strata = np.asarray(stratify)[first]
        keys = np.unique(strata)
    else:
        strata = np.zeros(len(uniq), dtype=int)
        keys = np.array([0])
    # Each group gets a key in [0, 1): its rank within its class (randomly permuted) over the class
    # size, so that cutting the key order at the global fractions gives exact overall sizes and
    # keeps every class's share in every split to within one example.
    key = np.empty(len(uniq))
    for k in keys:
        members = np.flatnonzero(strata == k)
        members = members[rng.permutation(len(members))]
        key[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.random(len(uniq)), key))
    counts = _allocate(len(uniq), frac)
    group_split[order] = np.repeat(np.arange(len(frac)), counts)
    row_split = group_split[inverse]
    indices = {name: np.flatnonzero(row_split == j) for j, name in enumerate(names)}
    seen: dict[str, str] = {}
    for name, idx in indices.items():
        for i in np.unique(ids[idx]):
            if i in seen:
                raise W2SGError(f"example {i} is in both {seen[i]} and {name}; this is a bug")
            seen[i] = name
    return Splits(indices=indices, ids=ids)


def splits_from_names(
    names: Sequence[str],
    ids: np.ndarray,
    fractions: Sequence[float] = (0.4, 0.4, 0.2),
    seed: int = 0,
    stratify: np.ndarray | None = None,
) -> Splits:
    """Splits given per row (a data file's split column) instead of drawn.

    ``names`` holds ``weak_train``, ``w2s_train``, ``test``, ``val`` or ``train``; ``train`` rows
    are divided between weak_train and w2s_train by :func:`make_splits` (same seed, stratified) in
    the ratio of the first two ``fractions``. The other fractions are not used: the file decides.
    """
    ids = np.asarray(ids).astype(str)
    split_of = np.asarray(names, dtype=object)
    if len(split_of) != len(ids):
        raise W2SGError(f"{len(split_of)} split names for {len(ids)} rows; one per row is needed")
    unknown = sorted(set(split_of) - {*SPLIT_NAMES, "train"})
    if unknown:
        raise W2SGError(f"unknown split name {unknown[0]!r}; use {', '.join(SPLIT_NAMES)} or train")
    train = np.flatnonzero(split_of == "train")
    if len(train):
        part = np.asarray(fractions[:2], dtype=float)
        inner = make_splits(
            ids[train],
            part / part.sum(),
            seed=seed,
            stratify=None if stratify is None else np.asarray(stratify)[train],
        )
        split_of = split_of.copy()
        for name in ("weak_train", "w2s_train"):
            split_of[train[inner[name]]] = name
    indices = {name: np.flatnonzero(split_of == name) for name in SPLIT_NAMES}
    for name in ("weak_train", "w2s_train", "test"):
        if len(indices[name]) == 0:
            raise W2SGError(
                f"the split column gives no {name} rows; it needs test rows and training rows "
                "(train, or weak_train and w2s_train)"
            )
    if len(indices["val"]) == 0:
        del indices["val"]
    seen: dict[str, str] = {}
    for name, idx in indices.items():
        for i in np.unique(ids[idx]):
            if i in seen:
                raise W2SGError(
                    f"example {i} is in both {seen[i]} and {name} of the split column; "
                    "give each id (and each distinct input) one split"
                )
            seen[i] = name
    return Splits(indices=indices, ids=ids)
