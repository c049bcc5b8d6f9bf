"""The loss registry against brute-force numpy formulas and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2sg import config
from w2sg.errors import W2SGError
from w2sg.heads import LOSSES, get_loss
from w2sg.heads.losses import (
    EPS,
    Loss,
    StepState,
    logconf,
    logconf_alpha,
    logconf_targets,
    needs_steps,
)

SHAPES = [(7, 2), (6, 3), (9, 5)]


def _toy(batch: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(batch, n_classes))
    targets = rng.dirichlet(np.ones(n_classes), size=batch)
    return logits, targets


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _np_xent(z: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean(-(t * np.log(_softmax(z))).sum(axis=1)))


def _np_reverse_kl(z: np.ndarray, t: np.ndarray) -> float:
    p = _softmax(z)
    return float(np.mean((p * (np.log(p) - np.log(np.clip(t, EPS, 1.0)))).sum(axis=1)))


def _np_hard(z: np.ndarray, t: np.ndarray) -> float:
    p = _softmax(z)
    return float(np.mean(-np.log(p[np.arange(len(t)), t.argmax(axis=1)])))


def _np_hardened(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Brute force ĥ: binary, the ⌈m(B − 1)⌉ rows with the largest z_1 − z_0 (ties: larger t_1,
    then lower index) are positive; multiclass, argmax_j z_j (ties: larger t_j, then lower j)."""
    batch, n_classes = z.shape
    if n_classes == 2:
        k = int(np.ceil(t[:, 1].mean() * (batch - 1) - 1e-9))
        order = np.lexsort((np.arange(batch), -t[:, 1], z[:, 0] - z[:, 1]))  # last key primary
        positive = np.zeros(batch)
        positive[order[:k]] = 1.0
        return np.stack([1 - positive, positive], axis=1)
    out = np.zeros_like(z)
    for i in range(batch):
        top = np.flatnonzero(z[i] == z[i].max())
        out[i, top[np.argmax(t[i, top])]] = 1.0
    return out


def _np_quantile_hardened(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The quantile rule: positive iff p_0 is below the weak positive rate's quantile of p_0."""
    positive = (p[:, 0] < np.quantile(p[:, 0], t[:, 1].mean())).astype(float)
    return np.stack([1 - positive, positive], axis=1)


def _np_logconf(z: np.ndarray, t: np.ndarray, alpha: float, hardened: np.ndarray) -> float:
    mixed = (1 - alpha) * t + alpha * hardened
    return float(np.mean(-(mixed * np.log(_softmax(z))).sum(axis=1)))


def _finite_diff(f, z: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)) / (2 * h)
    return grad


def _autograd(
    name: str, z: np.ndarray, t: np.ndarray, state: StepState
) -> tuple[float, np.ndarray]:
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    value = get_loss(name)(zt, torch.tensor(t, dtype=torch.float64), state)
    value.backward()
    assert zt.grad is not None
    return float(value.detach()), zt.grad.numpy()


BRUTE = {"xent": _np_xent, "reverse_kl": _np_reverse_kl, "hard": _np_hard}


def test_registry_matches_config_names() -> None:
    assert set(LOSSES) == set(config.LOSSES)
    for name, fn in LOSSES.items():
        if isinstance(fn, Loss):  # a fresh copy with the same options, never the shared entry
            got = get_loss(name)
            assert got == fn and got is not fn and type(got) is type(fn)
            assert needs_steps(got) == (name in config.STEP_LOSSES)
        else:
            assert get_loss(name) is fn
            assert not needs_steps(fn) and name not in config.STEP_LOSSES
        assert fn.__doc__ and "loss" in fn.__doc__


def test_unknown_loss_lists_known_names() -> None:
    with pytest.raises(W2SGError, match="unknown loss 'mse'.*hard.*logconf.*reverse_kl.*xent"):
        get_loss("mse")


@pytest.mark.parametrize("name", sorted(BRUTE))
@pytest.mark.parametrize("shape", SHAPES)
def test_value_and_gradient_match_brute_force(name: str, shape: tuple[int, int]) -> None:
    z, t = _toy(*shape, seed=shape[0] * 10 + shape[1])
    value, grad = _autograd(name, z, t, StepState(3, 10))
    assert value == pytest.approx(BRUTE[name](z, t), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, _finite_diff(lambda zz: BRUTE[name](zz, t), z), atol=1e-8)


@pytest.mark.parametrize("name", sorted(BRUTE))
def test_gradcheck(name: str) -> None:
    z, t = _toy(5, 3, seed=1)
    zt = torch.tensor(z, requires_grad=True)
    tt = torch.tensor(t)
    assert torch.autograd.gradcheck(lambda a: get_loss(name)(a, tt, StepState()), (zt,))


@pytest.mark.parametrize("shape", SHAPES)
def test_closed_form_gradients(shape: tuple[int, int]) -> None:
    z, t = _toy(*shape, seed=7)
    p = _softmax(z)
    batch = shape[0]
    _, g_xent = _autograd("xent", z, t, StepState())
    np.testing.assert_allclose(g_xent, (p - t) / batch, atol=1e-14)
    a = np.log(p) - np.log(t)
    _, g_rkl = _autograd("reverse_kl", z, t, StepState())
    expected = p * (a - (p * a).sum(axis=1, keepdims=True)) / batch
    np.testing.assert_allclose(g_rkl, expected, atol=1e-13)


@pytest.mark.parametrize("shape", SHAPES)
def test_xent_is_forward_kl_plus_entropy(shape: tuple[int, int]) -> None:
    z, t = _toy(*shape, seed=3)
    p = _softmax(z)
    kl = (t * (np.log(t) - np.log(p))).sum(axis=1)
    entropy = -(t * np.log(t)).sum(axis=1)
    value, _ = _autograd("xent", z, t, StepState())
    assert value == pytest.approx(float(np.mean(kl + entropy)), rel=1e-12)


def test_reverse_kl_zero_for_matching_targets_and_finite_for_zero_targets() -> None:
    z, _ = _toy(6, 3, seed=4)
    value, _ = _autograd("reverse_kl", z, _softmax(z), StepState())
    assert abs(value) < 1e-12
    one_hot = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    value, grad = _autograd("reverse_kl", z, one_hot, StepState())
    assert np.isfinite(value) and np.isfinite(grad).all()
    assert value > 1.0  # log(1/eps) = 13.8 weighted by the mass on zero targets


def test_hard_ignores_soft_mass() -> None:
    z, t = _toy(8, 4, seed=5)
    one_hot = np.eye(4)[t.argmax(axis=1)]
    assert _autograd("hard", z, t, StepState())[0] == pytest.approx(
        _autograd("xent", z, one_hot, StepState())[0], rel=1e-13
    )


def test_logconf_alpha_schedule() -> None:
    assert logconf_alpha(StepState(0, 100)) == 0.0
    assert logconf_alpha(StepState(10, 100)) == pytest.approx(0.75 / 2)
    assert logconf_alpha(StepState(20, 100)) == pytest.approx(0.75)
    assert logconf_alpha(StepState(99, 100)) == pytest.approx(0.75)
    assert logconf_alpha(StepState(1, 1)) == pytest.approx(0.75)  # full-batch L-BFGS
    assert logconf_alpha(StepState(5, 100), alpha_max=0.5, warmup_frac=0.1) == pytest.approx(0.25)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("step", [0, 7, 50])
def test_logconf_matches_brute_force(shape: tuple[int, int], step: int) -> None:
    z, t = _toy(*shape, seed=shape[0] + step)
    state = StepState(step, 50)
    alpha = logconf_alpha(state)
    hardened = _np_hardened(z, t)
    value, grad = _autograd("logconf", z, t, state)
    assert value == pytest.approx(_np_logconf(z, t, alpha, hardened), rel=1e-12)
    # ĥ(p) is detached: the gradient is that of cross-entropy on the fixed mixed target.
    fd = _finite_diff(lambda zz: _np_logconf(zz, t, alpha, hardened), z)
    np.testing.assert_allclose(grad, fd, atol=1e-8)
    mixed = (1 - alpha) * t + alpha * hardened
    np.testing.assert_allclose(grad, (_softmax(z) - mixed) / shape[0], atol=1e-14)


def test_logconf_binary_hardening_matches_weak_balance() -> None:
    # p_1 increasing along the batch; a quarter of the weak labels positive.
    z = np.stack([np.zeros(8), np.linspace(-3, 3, 8)], axis=1)
    t = np.eye(2)[[1, 1, 0, 0, 0, 0, 0, 0]]
    zt = torch.tensor(z, requires_grad=True)
    with_aux = logconf(zt, torch.tensor(t), StepState(1, 1), alpha_max=1.0).detach()
    # α = 1: the target is the hardened prediction alone, the two most confident positives.
    hardened = np.eye(2)[[0, 0, 0, 0, 0, 0, 1, 1]]
    assert float(with_aux) == pytest.approx(_np_xent(z, hardened), rel=1e-12)
    assert float(with_aux) == pytest.approx(_np_logconf(z, t, 1.0, _np_hardened(z, t)))


@pytest.mark.parametrize("batch", [7, 8, 20, 33])
@pytest.mark.parametrize("seed", range(5))
def test_logconf_binary_hardening_is_the_quantile_rule_without_ties(batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(batch, 2))
    t = rng.dirichlet(np.ones(2), size=batch)
    u = logconf_targets(torch.tensor(z), torch.tensor(t), StepState(1, 1), alpha_max=1.0)
    np.testing.assert_array_equal(u.numpy(), _np_quantile_hardened(_softmax(z), t))
    np.testing.assert_array_equal(u.numpy(), _np_hardened(z, t))


def test_logconf_binary_ties_keep_the_weak_balance() -> None:
    # At W = 0 every row ties; the quantile rule hardened all of them to class 0. Now the count
    # ⌈m(B − 1)⌉ holds, the tied rows ordered by the weak label, then the row index.
    z = np.zeros((10, 2))
    t1 = np.array([0.9, 0.2, 0.7, 0.7, 0.1, 0.6, 0.3, 0.4, 0.8, 0.3])  # m = 0.5: k = 5 positives
    t = np.stack([1 - t1, t1], axis=1)
    u = logconf_targets(torch.tensor(z), torch.tensor(t), StepState(1, 1), alpha_max=1.0)
    assert u[:, 1].tolist() == [1, 0, 1, 1, 0, 1, 0, 0, 1, 0]
    assert (_np_quantile_hardened(_softmax(z), t)[:, 1] == 0).all()  # the old degenerate rule
    # Partial ties: the student's order comes first, the weak labels only break its ties.
    z[:3, 1] = [-1.0, 2.0, 2.0]
    u = logconf_targets(torch.tensor(z), torch.tensor(t), StepState(1, 1), alpha_max=1.0)
    assert u[:, 1].tolist() == [0, 1, 1, 1, 0, 1, 0, 0, 1, 0]
    np.testing.assert_array_equal(u.numpy(), _np_hardened(z, t))
    # Equal weak labels too: the lower row index wins.
    flat = torch.full((4, 2), 0.5, dtype=torch.float64)
    u = logconf_targets(torch.zeros(4, 2, dtype=torch.float64), flat, alpha_max=1.0)
    assert u[:, 1].tolist() == [1, 1, 0, 0]  # k = ⌈0.5 · 3⌉ = 2


def test_logconf_multiclass_ties_go_to_the_weak_label() -> None:
    z = np.array([[0.0, 0.0, 0.0], [1.0, 3.0, 3.0], [2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    t = np.array([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3], [0.1, 0.8, 0.1], [0.4, 0.2, 0.4]])
    u = logconf_targets(torch.tensor(z), torch.tensor(t), StepState(1, 1), alpha_max=1.0)
    np.testing.assert_array_equal(u.numpy(), np.eye(3)[[2, 2, 0, 0]])
    np.testing.assert_array_equal(u.numpy(), _np_hardened(z, t))


def test_logconf_targets_mix_and_warm_up() -> None:
    z, t = _toy(9, 2, seed=21)
    zt, tt = torch.tensor(z), torch.tensor(t)
    np.testing.assert_array_equal(logconf_targets(zt, tt, StepState(0, 10)).numpy(), t)
    u = logconf_targets(zt, tt, StepState(1, 10)).numpy()
    alpha = logconf_alpha(StepState(1, 10))
    np.testing.assert_allclose(u, (1 - alpha) * t + alpha * _np_hardened(z, t), atol=1e-15)
    np.testing.assert_allclose(u.sum(axis=1), 1.0, atol=1e-12)
