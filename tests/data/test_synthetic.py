"""Synthetic generator (THEORY.md section 4): shapes, seeds, noise energy, labels follow z."""

from __future__ import annotations

import numpy as np
import pytest

from w2sg.data.synthetic import (
    RepresentationSpec,
    SyntheticTask,
    default_specs,
    default_synthetic,
    make_synthetic,
)
from w2sg.errors import W2SGError

SPECS = {
    "a": RepresentationSpec(
        coords=(0, 1, 2), scales=(1.0, 2.0, 0.5), noise_dim=400, noise_energy=3.0
    ),
    "b": RepresentationSpec(coords=(1,), noise_dim=300, noise_energy=0.5, rotate=True),
}


def test_shapes_and_dims() -> None:
    data = make_synthetic(50, SyntheticTask(latent_dim=4), SPECS, seed=1)
    assert data.representations["a"].shape == (50, 403)
    assert data.representations["b"].shape == (50, 301) == (50, SPECS["b"].dim)
    assert data.latent.shape == (50, 4)
    assert data.labels.shape == (50,)
    assert data.probabilities is None


def test_seeded_and_maps_shared_across_seeds() -> None:
    task = SyntheticTask(latent_dim=4)
    a = make_synthetic(30, task, SPECS, seed=3)
    b = make_synthetic(30, task, SPECS, seed=3)
    c = make_synthetic(30, task, SPECS, seed=4)
    for name in SPECS:
        np.testing.assert_array_equal(a.representations[name], b.representations[name])
        assert not np.allclose(a.representations[name], c.representations[name])
    np.testing.assert_array_equal(a.labels, b.labels)
    # Adding a representation leaves the others and the labels unchanged.
    more = make_synthetic(30, task, {**SPECS, "x": RepresentationSpec(coords=(3,))}, seed=3)
    np.testing.assert_array_equal(more.representations["a"], a.representations["a"])
    np.testing.assert_array_equal(more.labels, a.labels)


def test_unrotated_principal_part_and_noise_energy() -> None:
    n = 4000
    data = make_synthetic(n, SyntheticTask(latent_dim=4, decay=0.5), SPECS, seed=0)
    H = data.representations["a"]
    np.testing.assert_allclose(H[:, :3], data.latent[:, [0, 1, 2]] * [1.0, 2.0, 0.5])
    row_energy = np.sum(H[:, 3:] ** 2, axis=1)
    # ‖noise row‖² is c · χ²_D / D: mean c, relative spread sqrt(2 / D).
    assert row_energy.mean() == pytest.approx(3.0, rel=0.01)
    assert row_energy.std() / 3.0 == pytest.approx(np.sqrt(2 / 400), rel=0.1)
    # Latent energies e_j = decay^j.
    np.testing.assert_allclose(data.latent.var(axis=0), 0.5 ** np.arange(4), rtol=0.08)


def test_rotated_representation_structure() -> None:
    n = 3000
    data = make_synthetic(n, SyntheticTask(latent_dim=4), SPECS, seed=0)
    H = data.representations["b"]
    z1 = data.latent[:, 1]
    # The principal direction q is recovered by regressing H on z1; the rest is orthogonal noise.
    q = (z1 @ H) / (z1 @ z1)
    assert np.linalg.norm(q) == pytest.approx(1.0, rel=0.05)
    residual = H - np.outer(z1, q)
    assert np.mean(np.sum(residual**2, axis=1)) == pytest.approx(0.5, rel=0.05)
    # Rotation is a property of the representation, not of the sample seed.
    other = make_synthetic(n, SyntheticTask(latent_dim=4), SPECS, seed=9)
    z1o = other.latent[:, 1]
    q2 = (z1o @ other.representations["b"]) / (z1o @ z1o)
    assert abs(q @ q2) / (np.linalg.norm(q) * np.linalg.norm(q2)) > 0.9


def test_regression_labels_follow_latent() -> None:
    task = SyntheticTask(latent_dim=3, weights=(1.0, -2.0, 0.5), label_noise=0.2)
    data = make_synthetic(5000, task, {}, seed=0)
    coef, *_ = np.linalg.lstsq(data.latent, data.labels, rcond=None)
    np.testing.assert_allclose(coef, [1.0, -2.0, 0.5], atol=0.02)
    resid = data.labels - data.latent @ coef
    assert resid.std() == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_classification_labels_and_flip_rate(n_classes: int) -> None:
    task = SyntheticTask(latent_dim=3, task="classification", n_classes=n_classes, label_noise=0.15)
    data = make_synthetic(20000, task, {}, seed=0)
    assert data.labels.dtype.kind == "i"
    assert set(np.unique(data.labels)) == set(range(n_classes))
    W = task.label_weights()
    rule = (data.latent.sum(1) > 0).astype(int) if n_classes == 2 else np.argmax(data.latent @ W, 1)
    assert np.mean(data.labels != rule) == pytest.approx(0.15, abs=0.01)
    assert data.probabilities is not None
    np.testing.assert_allclose(data.probabilities.sum(1), 1.0)
    np.testing.assert_allclose(data.probabilities[np.arange(20000), rule], 0.85)


def test_probability_task() -> None:
    task = SyntheticTask(latent_dim=2, task="probability", label_noise=0.0)
    data = make_synthetic(100, task, {}, seed=0)
    np.testing.assert_allclose(data.labels, 1 / (1 + np.exp(-data.latent.sum(1))))
    assert data.probabilities is not None
    np.testing.assert_allclose(data.probabilities[:, 1], data.labels)


def test_default_preset() -> None:
    specs = default_specs(latent_dim=6, n_weak=4, noise_dim=50)
    assert specs["strong"].coords == tuple(range(6))
    assert [len(specs[f"weak_{i}"].coords) for i in range(1, 5)] == [5, 4, 3, 2]
    data = default_synthetic(40, latent_dim=6, n_weak=4, noise_dim=50, seed=2)
    assert set(data.representations) == {"strong", "weak_1", "weak_2", "weak_3", "weak_4"}
    assert data.representations["weak_4"].shape == (40, 52)


@pytest.mark.parametrize(
    "task,specs",
    [
        (SyntheticTask(latent_dim=2), {"x": RepresentationSpec(coords=(2,))}),
        (SyntheticTask(latent_dim=2), {"x": RepresentationSpec(coords=(0,), scales=(1.0, 2.0))}),
        (SyntheticTask(latent_dim=2, energies=(1.0,)), {}),
        (SyntheticTask(task="ranking"), {}),
    ],
)
def test_bad_knobs_raise(task: SyntheticTask, specs: dict[str, RepresentationSpec]) -> None:
    with pytest.raises(W2SGError):
        make_synthetic(10, task, specs)
