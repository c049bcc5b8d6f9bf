"""Seeded synthetic tasks with the structure of THEORY.md section 4 (following [X]).

A latent vector z ∈ R^r with independent coordinates z_j ~ N(0, e_j) (anisotropic energies e_j)
drives the labels through u = zᵀw:

- ``regression``: y = u + σ ε, ε ~ N(0, 1) (σ = ``label_noise``);
- ``classification`` with C = 2: y = 1[u > 0]; with C > 2: y = argmax_c zᵀW_c (W fixed by the task
  seed); then each label is replaced with probability ρ = ``label_noise`` by a uniformly drawn
  *other* class. ``probabilities`` holds the resulting P(y | z): 1 − ρ on the rule's class and
  ρ / (C − 1) elsewhere;
- ``probability``: the truth is p = sigmoid(u + σ ε) ∈ (0, 1); ``probabilities`` is [1 − p, p].

A representation (a :class:`RepresentationSpec`) sees some latent coordinates with some scales:
its principal part is z_A diag(a) (A = ``coords``, a = ``scales``), and it adds a non-principal
isotropic Gaussian block of dimension D = ``noise_dim`` whose rows have squared norm ≈
c = ``noise_energy`` (each entry N(0, c / D)). Its dimension is |A| + D. Without rotation the
features are [z_A diag(a), noise]; with ``rotate=True`` the principal part is embedded along |A|
random orthonormal directions of R^{|A|+D} and the noise fills the orthogonal complement (the same
distribution as a random rotation of the unrotated features, at O(n d |A|) cost).

The maps (class weights, rotations) depend only on the task and the representation's name, never on
the sample seed, so samples drawn with different seeds (e.g. D̃, D̂ and T) share the same
representations.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from w2sg.config import TASKS
from w2sg.errors import W2SGError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SyntheticTask:
    """The latent model and the labelling rule.

    ``energies`` are the variances e_j of the latent coordinates (length r = ``latent_dim``;
    ``None`` means e_j = ``decay``^j, j = 0..r−1). ``weights`` w (length r) define u = zᵀw
    (``None`` means all ones). ``label_noise`` is σ (regression, probability) or the flip
    probability ρ (classification). ``seed`` fixes the class weights of multiclass tasks and the
    rotations of representations.
    """

    latent_dim: int = 8
    task: str = "regression"
    n_classes: int = 2
    energies: tuple[float, ...] | None = None
    decay: float = 0.8
    weights: tuple[float, ...] | None = None
    label_noise: float = 0.1
    seed: int = 0

    def validate(self) -> None:
        if self.latent_dim < 1:
            raise W2SGError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.task not in TASKS:
            raise W2SGError(f"unknown task {self.task!r}; use one of {', '.join(TASKS)}")
        if self.task == "classification" and self.n_classes < 2:
            raise W2SGError(f"n_classes must be >= 2, got {self.n_classes}")
        for name, vec in (("energies", self.energies), ("weights", self.weights)):
            if vec is not None and len(vec) != self.latent_dim:
                raise W2SGError(
                    f"{name} has {len(vec)} entries but latent_dim is {self.latent_dim}; "
                    "give one per latent coordinate"
                )
        if self.energies is not None and any(e <= 0 for e in self.energies):
            raise W2SGError("energies must all be > 0")
        if not 0.0 < self.decay <= 1.0:
            raise W2SGError(f"decay must be in (0, 1], got {self.decay}")
        if self.label_noise < 0:
            raise W2SGError(f"label_noise must be >= 0, got {self.label_noise}")
        if self.task == "classification" and self.label_noise > 1:
            raise W2SGError(
                f"the flip probability label_noise must be <= 1, got {self.label_noise}"
            )

    def latent_energies(self) -> FloatArray:
        """e_j, the variance of each latent coordinate."""
        if self.energies is not None:
            return np.asarray(self.energies, dtype=np.float64)
        return self.decay ** np.arange(self.latent_dim, dtype=np.float64)

    def label_weights(self) -> FloatArray:
        """w for u = zᵀw, or for C > 2 classes the (r, C) matrix W of class scores zᵀW_c."""
        if self.task == "classification" and self.n_classes > 2:
            rng = np.random.default_rng([self.seed, 0x5EED])
            return rng.normal(size=(self.latent_dim, self.n_classes))
        if self.weights is not None:
            return np.asarray(self.weights, dtype=np.float64)
        return np.ones(self.latent_dim)


@dataclass(frozen=True)
class RepresentationSpec:
    """One representation: which latent coordinates it sees, how strongly, and its noise block.

    ``coords`` are latent indices A; ``scales`` a (one number or one per coordinate), so the
    principal eigenvalues of its covariance are e_j a_j²; ``noise_dim`` D and ``noise_energy`` c
    (rows of the noise block have E‖·‖² = c, so the non-principal energy is δ ≈ c / n in the
    kernel of n samples); ``rotate`` embeds the principal part along random directions.
    """

    coords: tuple[int, ...]
    scales: float | tuple[float, ...] = 1.0
    noise_dim: int = 1000
    noise_energy: float = 1.0
    rotate: bool = False

    @property
    def dim(self) -> int:
        """Feature dimension |A| + D."""
        return len(self.coords) + self.noise_dim

    def scale_vector(self) -> FloatArray:
        if isinstance(self.scales, int | float):
            return np.full(len(self.coords), float(self.scales))
        return np.asarray(self.scales, dtype=np.float64)

    def validate(self, name: str, latent_dim: int) -> None:
        if len(self.coords) == 0 and self.noise_dim == 0:
            raise W2SGError(f"representation {name!r} has no coordinates and no noise block")
        if any(not 0 <= c < latent_dim for c in self.coords) or len(set(self.coords)) != len(
            self.coords
        ):
            raise W2SGError(
                f"representation {name!r}: coords {self.coords} must be distinct indices in "
                f"0..{latent_dim - 1}"
            )
        if not isinstance(self.scales, int | float) and len(self.scales) != len(self.coords):
            raise W2SGError(
                f"representation {name!r}: {len(self.scales)} scales for {len(self.coords)} "
                "coords; give one number or one per coordinate"
            )
        if self.noise_dim < 0 or self.noise_energy < 0:
            raise W2SGError(f"representation {name!r}: noise_dim and noise_energy must be >= 0")
        if self.noise_dim == 0 and self.noise_energy > 0:
            raise W2SGError(
                f"representation {name!r}: noise_energy > 0 needs noise_dim >= 1 (or set it to 0)"
            )


@dataclass
class SyntheticData:
    """A drawn sample: ``representations[name]`` (n, |A| + D), ``labels``, ``latent`` (n, r),
    ``probabilities`` ((n, C) for classification and probability tasks, else ``None``) and the
    noiseless signal u = zᵀw (``signal``; (n, C) scores for multiclass)."""

    representations: dict[str, FloatArray]
    labels: NDArray[np.float64] | NDArray[np.int64]
    latent: FloatArray
    probabilities: FloatArray | None
    signal: FloatArray
    specs: dict[str, RepresentationSpec] = field(default_factory=dict)


def _name_seed(name: str) -> int:
    return zlib.crc32(name.encode())


def _representation(
    z: FloatArray,
    spec: RepresentationSpec,
    name: str,
    task: SyntheticTask,
    rng: np.random.Generator,
) -> FloatArray:
    n = z.shape[0]
    k, D = len(spec.coords), spec.noise_dim
    principal = z[:, list(spec.coords)] * spec.scale_vector()
    noise_std = np.sqrt(spec.noise_energy / D) if D else 0.0
    if not spec.rotate:
        out = np.empty((n, k + D))
        out[:, :k] = principal
        out[:, k:] = rng.normal(scale=noise_std, size=(n, D))
        return out
    # Q: k random orthonormal directions of R^{k+D}, fixed by the task seed and the name.
    qrng = np.random.default_rng([task.seed, _name_seed(name)])
    Q, _ = np.linalg.qr(qrng.normal(size=(k + D, k)))
    noise = rng.normal(scale=noise_std, size=(n, k + D))
    noise -= (noise @ Q) @ Q.T  # isotropic in the D-dimensional complement of span(Q)
    return noise + principal @ Q.T


def make_synthetic(
    n: int,
    task: SyntheticTask,
    specs: dict[str, RepresentationSpec],
    seed: int = 0,
) -> SyntheticData:
    """Draw ``n`` examples: latent z, labels (see the module docstring) and every representation.

    The latent, the labels and each representation's noise use independent streams derived from
    ``seed``, so adding a representation does not change the others.
    """
    if n < 1:
        raise W2SGError(f"n must be >= 1, got {n}")
    task.validate()
    for name, spec in specs.items():
        spec.validate(name, task.latent_dim)
    rng_latent = np.random.default_rng([seed, 1])
    rng_label = np.random.default_rng([seed, 2])
    z = rng_latent.normal(size=(n, task.latent_dim)) * np.sqrt(task.latent_energies())
    weights = task.label_weights()
    signal = z @ weights
    probabilities: FloatArray | None = None
    labels: NDArray[np.float64] | NDArray[np.int64]
    if task.task == "regression":
        labels = signal + task.label_noise * rng_label.normal(size=n)
    elif task.task == "probability":
        p = 1.0 / (1.0 + np.exp(-(signal + task.label_noise * rng_label.normal(size=n))))
        labels = p
        probabilities = np.stack([1.0 - p, p], axis=1)
    else:
        C = task.n_classes
        rule = (signal > 0).astype(np.int64) if C == 2 else np.argmax(signal, axis=1)
        flip = rng_label.random(n) < task.label_noise
        shift = rng_label.integers(1, C, size=n)  # a uniformly drawn other class
        labels = np.where(flip, (rule + shift) % C, rule).astype(np.int64)
        probabilities = np.full((n, C), task.label_noise / (C - 1))
        probabilities[np.arange(n), rule] = 1.0 - task.label_noise
    representations = {
        name: _representation(
            z, spec, name, task, np.random.default_rng([seed, 3, _name_seed(name)])
        )
        for name, spec in specs.items()
    }
    return SyntheticData(
        representations=representations,
        labels=labels,
        latent=z,
        probabilities=probabilities,
        signal=signal,
        specs=dict(specs),
    )


def default_specs(
    latent_dim: int = 8,
    n_weak: int = 5,
    noise_dim: int = 2000,
    noise_energy: float = 1.0,
) -> dict[str, RepresentationSpec]:
    """The demo's representations: ``strong`` sees every latent coordinate; ``weak_1`` …
    ``weak_{n_weak}`` see ever fewer of them (weak_i drops the last i coordinates, keeping at least
    one) and see the ones they keep at decreasing scale (0.9^i), all with the same noise block.
    """
    if n_weak < 1:
        raise W2SGError(f"n_weak must be >= 1, got {n_weak}")
    specs = {
        "strong": RepresentationSpec(
            coords=tuple(range(latent_dim)), noise_dim=noise_dim, noise_energy=noise_energy
        )
    }
    for i in range(1, n_weak + 1):
        keep = max(latent_dim - i, 1)
        specs[f"weak_{i}"] = RepresentationSpec(
            coords=tuple(range(keep)),
            scales=0.9**i,
            noise_dim=noise_dim,
            noise_energy=noise_energy,
            rotate=True,
        )
    return specs


def default_synthetic(
    n: int = 3000,
    *,
    task: str = "regression",
    n_classes: int = 2,
    latent_dim: int = 8,
    n_weak: int = 5,
    noise_dim: int = 2000,
    noise_energy: float = 1.0,
    label_noise: float = 0.1,
    seed: int = 0,
) -> SyntheticData:
    """The demo preset: :class:`SyntheticTask` with these knobs and :func:`default_specs`."""
    synthetic_task = SyntheticTask(
        latent_dim=latent_dim, task=task, n_classes=n_classes, label_noise=label_noise
    )
    specs = default_specs(latent_dim, n_weak, noise_dim, noise_energy)
    return make_synthetic(n, synthetic_task, specs, seed=seed)
