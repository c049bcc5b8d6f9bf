"""Agreement, KL (d_fwd, d_rev), TV and misfit against scipy and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import rel_entr
from scipy.stats import entropy
from sklearn.metrics import mean_squared_error

from w2sg.errors import W2SGError
from w2sg.metrics import (
    agreement,
    clip_count,
    d_fwd,
    d_rev,
    disagreement,
    mean_kl,
    mean_tv,
    misfit_sq,
)

SHAPES = [(n, c) for n in (7, 50, 333) for c in (2, 3, 5)]


def _pair(n: int, c: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(c), size=n), rng.dirichlet(np.full(c, 0.3), size=n)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_agreement_matches_loop(n: int, c: int) -> None:
    rng = np.random.default_rng(n * c)
    # Few distinct values so that argmax ties occur; ties go to the first maximum.
    a = rng.integers(0, 3, size=(n, c)).astype(float)
    b = rng.integers(0, 3, size=(n, c)).astype(float)
    first_max = [
        list(ra).index(max(ra)) == list(rb).index(max(rb)) for ra, rb in zip(a, b, strict=True)
    ]
    assert agreement(a, b) == pytest.approx(np.mean(first_max), abs=1e-15)
    assert disagreement(a, b) == pytest.approx(1 - np.mean(first_max), abs=1e-15)


@pytest.mark.parametrize(("n", "c"), SHAPES)
@pytest.mark.parametrize("eps", [1e-6, 1e-2])
def test_mean_kl_matches_scipy_entropy(n: int, c: int, eps: float) -> None:
    p, q = _pair(n, c, n + c)
    p[::4, 0] = 0.0  # zeros that clipping must handle
    q[1::5, -1] = 0.0
    # scipy.stats.entropy renormalises each row, as mean_kl does after clipping.
    expected = np.mean(
        [entropy(np.clip(pi, eps, 1), np.clip(qi, eps, 1)) for pi, qi in zip(p, q, strict=True)]
    )
    assert mean_kl(p, q, eps) == pytest.approx(expected, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_d_fwd_and_d_rev_directions_match_rel_entr(n: int, c: int) -> None:
    weak, student = _pair(n, c, 2 * n + c)
    student = 0.9 * student + 0.1 / c  # no entry below eps, so clipping does not act
    forward = rel_entr(weak, student).sum(axis=1).mean()  # KL(weak ‖ student)
    reverse = rel_entr(student, weak).sum(axis=1).mean()  # KL(student ‖ weak)
    assert abs(forward - reverse) > 1e-3  # the test can tell the directions apart
    assert d_fwd(weak, student) == pytest.approx(forward, rel=1e-8)
    assert d_rev(weak, student) == pytest.approx(reverse, rel=1e-8)


def test_mean_kl_is_zero_on_identical_inputs_and_positive_otherwise() -> None:
    p, q = _pair(40, 4, 0)
    assert mean_kl(p, p) == pytest.approx(0.0, abs=1e-15)
    assert mean_kl(p, q) > 0


@pytest.mark.parametrize("eps", [1e-6, 0.05])
def test_clip_count_matches_loop(eps: float) -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(4, 0.2), size=60)
    p[0, 0] = 1.0 + 1e-9
    expected = sum(1 for v in p.ravel() if v < eps or v > 1)
    assert clip_count(p, eps) == expected
    assert clip_count(p, eps) > 0


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_mean_tv_is_max_event_difference(n: int, c: int) -> None:
    p, q = _pair(n, c, 5 * n + c)
    events = [s for r in range(c + 1) for s in itertools.combinations(range(c), r)]
    expected = np.mean(
        [
            max(abs(sum(pi[list(e)]) - sum(qi[list(e)])) for e in events)
            for pi, qi in zip(p, q, strict=True)
        ]
    )
    assert mean_tv(p, q) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "c"), SHAPES)
def test_misfit_sq_matches_sklearn(n: int, c: int) -> None:
    rng = np.random.default_rng(n + 7 * c)
    a, b = rng.normal(size=(n, c)), rng.normal(size=(n, c))
    expected = mean_squared_error(a, b, multioutput="raw_values").sum()
    assert misfit_sq(a, b) == pytest.approx(expected, rel=1e-12)
    assert misfit_sq(a[:, 0], b[:, 0]) == pytest.approx(
        mean_squared_error(a[:, 0], b[:, 0]), rel=1e-12
    )


def test_agreement_module_validates_inputs() -> None:
    p, q = _pair(5, 3, 0)
    with pytest.raises(W2SGError):
        agreement(p, q[:4])
    with pytest.raises(W2SGError):
        mean_kl(p, q[:, :2])
    with pytest.raises(W2SGError):
        mean_kl(p, q, eps=0.0)
    with pytest.raises(W2SGError):
        misfit_sq(p, q[:, 0])
    with pytest.raises(W2SGError):
        mean_tv(p[:, 0], q[:, 0])
