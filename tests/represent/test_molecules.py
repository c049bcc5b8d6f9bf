"""Molecular featurizers against RDKit directly; invalid SMILES and non-finite values."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from helpers import needs
from w2sg.errors import W2SGError
from w2sg.represent import molecules

pytestmark = needs("rdkit")

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C1CCCCC1N", "O=C(O)c1ccccc1OC(C)=O"]


def test_ecfp4_counts_equal_the_rdkit_generator() -> None:
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    X = molecules.featurize("ecfp4", SMILES).X
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    for i, s in enumerate(SMILES):
        np.testing.assert_array_equal(X[i], gen.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(s)))
    assert X.dtype == np.float32


def test_maccs_bits_equal_rdkit() -> None:
    from rdkit import Chem
    from rdkit.Chem import MACCSkeys

    X = molecules.featurize("maccs", SMILES).X
    assert X.shape == (5, 167)
    on = set(np.flatnonzero(X[2]))
    assert on == set(MACCSkeys.GenMACCSKeys(Chem.MolFromSmiles(SMILES[2])).GetOnBits())


def test_rdkit2d_matches_descriptors_and_is_finite() -> None:
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    result = molecules.featurize("rdkit2d", SMILES)
    assert result.X.shape == (5, len(Descriptors.descList))
    assert np.isfinite(result.X).all()
    names = [n for n, _ in Descriptors.descList]
    j = names.index("MolWt")
    assert result.X[0, j] == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles("CCO")), rel=1e-6)


def test_rdkit2d_log_is_a_direct_transform_of_the_raw_descriptors() -> None:
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    raw = np.full((len(SMILES), len(Descriptors.descList)), np.nan)
    for i, s in enumerate(SMILES):
        mol = Chem.MolFromSmiles(s)
        for j, (_, fn) in enumerate(Descriptors.descList):
            with contextlib.suppress(Exception):  # a failed descriptor stays NaN
                raw[i, j] = float(fn(mol))
    with np.errstate(invalid="ignore"):
        expected = np.where(np.isfinite(raw), np.sign(raw) * np.log1p(np.abs(raw)), 0.0)
    result = molecules.featurize("rdkit2d-log", SMILES)
    assert result.X.dtype == np.float32 and result.n_nonfinite == 0
    np.testing.assert_allclose(result.X, expected.astype(np.float32), rtol=1e-6, atol=0)
    j = [n for n, _ in Descriptors.descList].index("Ipc")
    assert np.nanmax(raw[:, j]) > 100 and result.X[:, j].max() < np.log(np.nanmax(raw[:, j]) + 2)
    # Fit-free: a molecule's row does not depend on the other rows.
    np.testing.assert_array_equal(molecules.featurize("rdkit2d-log", SMILES[2:4]).X, result.X[2:4])


def test_signed_log1p_entrywise() -> None:
    x = np.array([[0.0, -3.0, 1e-9, np.nan], [np.inf, -np.inf, 1e300, 2.0]])
    out = molecules.signed_log1p(x)
    assert out[0, 0] == 0.0 and out[0, 1] == pytest.approx(-np.log(4.0))
    assert out[0, 2] == pytest.approx(1e-9, rel=1e-6)
    assert out[0, 3] == out[1, 0] == out[1, 1] == 0.0
    assert out[1, 2] == pytest.approx(300 * np.log(10.0)) and out[1, 3] == pytest.approx(np.log(3))


def test_invalid_smiles_are_reported_with_rows_never_dropped() -> None:
    with pytest.raises(W2SGError) as info:
        molecules.featurize("maccs", ["CCO", "C1CC", "xyz", "CCN"])
    assert "2 invalid SMILES (rows 1, 2)" in str(info.value)
    assert molecules.invalid_smiles(["CCO", "", "C(("]) == [1, 2]


def test_nonfinite_values_are_replaced_by_column_medians_and_counted() -> None:
    X = np.array([[1.0, np.nan], [3.0, 2.0], [np.inf, 4.0], [5.0, 1e300]])
    repaired, n_bad = molecules.repair_nonfinite(X)
    assert n_bad == 3
    assert repaired.dtype == np.float32 and np.isfinite(repaired).all()
    np.testing.assert_allclose(repaired[:, 0], [1.0, 3.0, 3.0, 5.0])
    np.testing.assert_allclose(repaired[:, 1], [3.0, 2.0, 4.0, 3.0])


def test_all_nonfinite_column_becomes_zero() -> None:
    repaired, n_bad = molecules.repair_nonfinite(np.array([[np.nan], [np.nan]]))
    assert n_bad == 2 and (repaired == 0).all()


def test_unknown_featurizer() -> None:
    with pytest.raises(W2SGError, match="unknown molecular featurizer"):
        molecules.featurize("nope", SMILES)


@needs("mordredcommunity")
def test_mordred_descriptors_are_finite() -> None:
    with pytest.warns(RuntimeWarning, match="non-finite descriptor values"):
        result = molecules.featurize("mordred", SMILES[:2])
    assert result.X.shape == (2, 1613)
    assert np.isfinite(result.X).all()
    assert result.n_nonfinite > 0  # mordred reports missing values for small molecules
