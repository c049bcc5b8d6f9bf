"""The reference-codebase losses against transcriptions of the published code.

Each ``_ref_*`` below transcribes the reference function line by line (openai/weak-to-strong
``weak_to_strong/loss.py``; EleutherAI/w2s ``w2s/loss.py`` with the trainer state of
``w2s/sft.py``), in the reference's own conventions (EleutherAI passes the class-1 probability as
a vector; openai casts to float32), so that a disagreement points at our implementation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from w2sg.config import RunConfig
from w2sg.errors import W2SGError
from w2sg.heads.losses import (
    Entropy,
    LogconfEAI,
    LogconfOAI,
    Product,
    StepState,
    Window,
    get_loss,
    needs_steps,
)
from w2sg.heads.softmax import SoftmaxHead

# ------------------------------------------------------------------ transcriptions


def _ref_oai_logconf(logits, labels, step_frac, aux_coef=0.5, warmup_frac=0.1):
    logits = logits.float()
    labels = labels.float()
    coef = 1.0 if step_frac > warmup_frac else step_frac
    coef = coef * aux_coef
    preds = torch.softmax(logits, dim=-1)
    mean_weak = torch.mean(labels, dim=0)
    assert mean_weak.shape == (2,)
    threshold = torch.quantile(preds[:, 0], mean_weak[1])
    strong_preds = torch.cat(
        [(preds[:, 0] >= threshold)[:, None], (preds[:, 0] < threshold)[:, None]], dim=1
    )
    target = labels * (1 - coef) + strong_preds.detach() * coef
    return torch.nn.functional.cross_entropy(logits, target, reduction="none").mean()


def _ref_oai_product(logits, labels, alpha=1.0, beta=1.0):
    preds = torch.softmax(logits, dim=-1)
    target = torch.pow(preds, beta) * torch.pow(labels, alpha)
    target /= target.sum(dim=-1, keepdim=True)
    target = target.detach()
    return torch.nn.functional.cross_entropy(logits, target, reduction="none").mean()


def _ref_eai_logconf(
    logits, labels, step, warmup_steps, aux_coef, balance_batch, harden, buffer, buffer_size
):
    """EleutherAI's log_confidence_loss; ``buffer`` is the trainer's list, extended in place."""
    logits = logits.float()
    labels = labels.float()
    if balance_batch:
        logodds_labels = torch.log(labels + 1e-7) - torch.log(1 - labels + 1e-7)
        labels = torch.sigmoid(logodds_labels - logodds_labels.mean())
        prior = 0.5
    else:
        prior = labels.mean() if labels.shape[0] > 1 else 0.5
    coef = aux_coef * min(1.0, step / warmup_steps) if warmup_steps > 0 else aux_coef
    preds = torch.softmax(logits, dim=-1)
    buffer += list(preds[:, 0].detach())
    buffer = buffer[-buffer_size:]
    if harden:
        threshold = torch.quantile(torch.stack(buffer), prior)
        target_preds = torch.cat(
            [(preds[:, 0] >= threshold)[:, None], (preds[:, 0] < threshold)[:, None]], dim=1
        )
    else:
        target_preds = preds
    labels_binary = torch.stack([1.0 - labels, labels], dim=1)
    target = labels_binary * (1 - coef) + target_preds.detach() * coef
    return torch.nn.functional.cross_entropy(logits, target)


def _ref_eai_window(logits, labels, radius):
    logits = logits.float()
    labels = labels.float()
    preds = torch.softmax(logits, dim=-1)
    uncertain = preds.max(dim=-1).values < 0.5 + radius
    target = torch.stack([1.0 - labels, labels], dim=1)
    loss = torch.nn.functional.cross_entropy(logits[uncertain], target[uncertain], reduction="sum")
    return loss / logits.shape[0]


# ------------------------------------------------------------------ helpers


def _batch(batch: int, seed: int, scale: float = 2.0, hard: bool = False):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, 2, generator=g, dtype=torch.float64) * scale
    y = torch.rand(batch, generator=g, dtype=torch.float64)
    if hard:
        y = (y > 0.5).to(torch.float64)
    return z, torch.stack([1 - y, y], dim=1)


def _value_and_grad(fn, z: torch.Tensor):
    zz = z.detach().clone().requires_grad_(True)
    value = fn(zz)
    value.backward()
    return value.detach(), zz.grad


def _agree(ours, ref, z: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-7) -> None:
    v1, g1 = _value_and_grad(ours, z)
    v2, g2 = _value_and_grad(ref, z)
    assert torch.isfinite(v1)
    torch.testing.assert_close(v1.double(), v2.double(), rtol=rtol, atol=atol)
    torch.testing.assert_close(g1.double(), g2.double(), rtol=rtol, atol=atol)


# ------------------------------------------------------------------ openai


@pytest.mark.parametrize("batch", [2, 7, 32])
@pytest.mark.parametrize("step", [0, 3, 10, 11, 99])
@pytest.mark.parametrize("hard", [False, True])
def test_logconf_oai_matches_openai(batch: int, step: int, hard: bool) -> None:
    z, t = _batch(batch, seed=batch * 100 + step, hard=hard)
    state = StepState(step, 100)
    loss = get_loss("logconf_oai")
    # float32 logits: bit-for-bit the reference's arithmetic.
    z32, t32 = z.float(), t.float()
    _agree(lambda a: loss(a, t32, state), lambda a: _ref_oai_logconf(a, t32, step / 100), z32)
    # float64 logits: our dtype rule keeps float64; the reference run in float64 throughout.
    # (Its bool ĥ times the Python float c is a float32 tensor, torch's default dtype, so c·ĥ
    # carries float32 rounding there: agreement to about 1e-9, not 1e-15.)
    _agree(
        lambda a: loss(a, t, state),
        lambda a: _ref_oai_logconf_f64(a, t, step / 100),
        z,
        rtol=1e-8,
        atol=1e-8,
    )


def _ref_oai_logconf_f64(logits, labels, step_frac):
    """The same transcription without the float32 cast (for float64 inputs)."""
    coef = (1.0 if step_frac > 0.1 else step_frac) * 0.5
    preds = torch.softmax(logits, dim=-1)
    threshold = torch.quantile(preds[:, 0], labels.mean(dim=0)[1])
    strong = torch.cat(
        [(preds[:, 0] >= threshold)[:, None], (preds[:, 0] < threshold)[:, None]], dim=1
    )
    target = labels * (1 - coef) + strong.detach() * coef
    return torch.nn.functional.cross_entropy(logits, target, reduction="none").mean()


def test_logconf_oai_schedule_jumps_after_the_warm_up() -> None:
    loss = LogconfOAI()
    assert loss.coefficient(StepState(0, 100)) == 0.0
    assert loss.coefficient(StepState(5, 100)) == pytest.approx(0.025)
    assert loss.coefficient(StepState(10, 100)) == pytest.approx(0.05)  # f = warmup_frac: still f
    assert loss.coefficient(StepState(11, 100)) == 0.5
    assert LogconfOAI(aux=0.3, warmup_frac=0.0).coefficient(StepState(1, 100)) == 0.3


def test_logconf_oai_ties_go_to_class_0() -> None:
    """A zero-initialised head: every p_0 = 1/2 = the threshold, so every row hardens to class 0."""
    z = torch.zeros(6, 2, dtype=torch.float64)
    t = torch.tensor([[0.1, 0.9]] * 6, dtype=torch.float64)
    u = LogconfOAI().targets(z, t, StepState(50, 100))
    torch.testing.assert_close(u, 0.5 * t + 0.5 * torch.tensor([[1.0, 0.0]] * 6).double())
    # Rows saturated at p_0 = 0 tie with each other and with the threshold (the quantile at
    # m = 1/4 falls between two zeros): every row is hardened to class 0, none to class 1.
    z = torch.tensor([[0.0, 200.0], [0.0, 300.0], [0.0, -3.0], [0.0, 1.0]])
    t = torch.tensor([[0.0, 1.0]] + [[1.0, 0.0]] * 3)
    u = LogconfOAI(aux=1.0, warmup_frac=0.0).targets(z, t, StepState(1, 1))
    torch.testing.assert_close(u, torch.tensor([[1.0, 0.0]] * 4))
    ref = _ref_oai_logconf(z, t, 1.0, aux_coef=1.0, warmup_frac=0.0)
    torch.testing.assert_close(LogconfOAI(aux=1.0, warmup_frac=0.0)(z, t, StepState(1, 1)), ref)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 2.0), (0.0, 1.0), (1.0, 0.0)])
def test_product_matches_openai(n_classes: int, alpha: float, beta: float) -> None:
    g = torch.Generator().manual_seed(n_classes)
    z = torch.randn(9, n_classes, generator=g, dtype=torch.float64) * 2
    t = torch.softmax(torch.randn(9, n_classes, generator=g, dtype=torch.float64) * 2, dim=-1)
    loss = get_loss("product", alpha=alpha, beta=beta)
    _agree(
        lambda a: loss(a, t, StepState(1, 10)),
        lambda a: _ref_oai_product(a, t, alpha, beta),
        z,
        rtol=1e-10,
        atol=1e-10,
    )


def test_product_hard_labels_and_saturation() -> None:
    # A one-hot weak label with a zero entry: the reference's 0 · p is fine while Σ > 0.
    z = torch.tensor([[0.3, -0.2], [1.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    _agree(lambda a: Product()(a, t), lambda a: _ref_oai_product(a, t), z, 1e-10, 1e-10)
    # The student saturated against the weak label: the reference is 0/0 = NaN; ours falls back
    # to the weak label for that row only.
    z = torch.tensor([[0.0, 800.0], [0.2, 0.1]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0], [0.6, 0.4]], dtype=torch.float64)
    assert torch.isnan(_ref_oai_product(z, t))
    u = Product().targets(z, t)
    torch.testing.assert_close(u[0], t[0])
    p1 = torch.softmax(z[1], dim=-1) * t[1]
    torch.testing.assert_close(u[1], p1 / p1.sum())


# ------------------------------------------------------------------ EleutherAI


@pytest.mark.parametrize("balance_batch", [False, True])
@pytest.mark.parametrize("harden", [True, False])
@pytest.mark.parametrize("buffer_size", [None, 5, 20])
def test_logconf_eai_and_entropy_match_eleuther_over_a_run(
    balance_batch: bool, harden: bool, buffer_size: int | None
) -> None:
    """A run of batches (sizes 8, 8, 3, 1, 8) through one loss object and through the transcribed
    function with the trainer's buffer list: the rolling buffer carries across calls."""
    name = "logconf_eai" if harden else "entropy"
    ours = get_loss(name, warmup_steps=3, balance_batch=balance_batch, buffer_size=buffer_size)
    ours.start(torch.zeros(1, 2))
    trainer_buffer: list[torch.Tensor] = []
    for step, batch in enumerate([8, 8, 3, 1, 8]):
        z, t = _batch(batch, seed=step, hard=step == 2)
        z, t = z.float(), t.float()
        size = buffer_size if buffer_size is not None else 8
        state = StepState(step, 5, batch_size=8)
        # Both sides see the same buffer history: the reference extends the trainer's list once
        # per call, ours once per call, so compute the reference on a copy for the gradient pass.
        history = list(trainer_buffer)
        v1, g1 = _value_and_grad(lambda a, t=t, s=state: ours(a, t, s), z)
        v2, g2 = _value_and_grad(
            lambda a, t=t, step=step, h=history, size=size: _ref_eai_logconf(
                a, t[:, 1], step, 3, 0.5, balance_batch, harden, h, size
            ),
            z,
        )
        trainer_buffer = history
        torch.testing.assert_close(v1, v2, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(g1, g2, rtol=1e-6, atol=1e-7)
        assert len(ours.buffer) == min(len(trainer_buffer), size)


def test_logconf_eai_warm_up_is_linear_in_steps() -> None:
    loss = LogconfEAI(aux=0.4, warmup_steps=10)
    assert [loss.coefficient(StepState(s, 1000)) for s in (0, 5, 10, 50)] == pytest.approx(
        [0.0, 0.2, 0.4, 0.4]
    )
    assert LogconfEAI(warmup_steps=0).coefficient(StepState(0, 10)) == 0.5


def test_logconf_eai_state_is_not_shared_and_start_resets_it() -> None:
    a, b = get_loss("logconf_eai"), get_loss("logconf_eai")
    z, t = _batch(4, seed=0)
    a(z, t, StepState(0, 1))
    assert len(a.buffer) == 4 and b.buffer == []
    a.start(t)
    assert a.buffer == []
    assert len(LogconfEAI().buffer) == 0  # the registry's own entry was never called


@pytest.mark.parametrize("radius", [0.0, 0.15, 0.3, 0.6])
def test_window_matches_eleuther(radius: float) -> None:
    z, t = _batch(16, seed=3, scale=1.5)
    z, t = z.float(), t.float()
    loss = get_loss("window", radius=radius)
    _agree(lambda a: loss(a, t), lambda a: _ref_eai_window(a, t[:, 1], radius), z)


def test_window_midweak_and_boundary() -> None:
    z, t = _batch(10, seed=5)
    z, t = z.float(), t.float()
    loss = get_loss("window", radius="midweak")
    with pytest.raises(W2SGError, match="start"):
        loss(z, t)
    loss.start(t)
    r = float(torch.abs(t[:, 1] - 0.5).median())  # EleutherAI's radius: torch's lower median
    assert loss.radius_ == r
    _agree(lambda a: loss(a, t), lambda a: _ref_eai_window(a, t[:, 1], r), z)
    # max p exactly 1/2 + r is outside the window (strict <): 0.5 + 0.25 = 0.75 exactly.
    z = torch.tensor([[0.0, float(np.log(3.0))], [0.0, 0.0]])
    t = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    p = torch.softmax(z, dim=-1)
    radius = float(p[0].max()) - 0.5
    value = Window(radius=radius)(z, t)
    torch.testing.assert_close(value, -torch.log(p[1, 0]) / 2)
    assert Window(radius=0.0)(z, t) == 0.0  # nothing kept: 0


# ------------------------------------------------------------------ registry and heads


def test_options_and_refusals() -> None:
    assert get_loss("logconf_oai", aux=0.3).aux == 0.3
    with pytest.raises(W2SGError, match="no option.*warmup_steps"):
        get_loss("logconf_oai", warmup_steps=3)
    with pytest.raises(W2SGError, match="takes no options"):
        get_loss("xent", aux=1.0)
    with pytest.raises(W2SGError, match="aux must be in"):
        get_loss("logconf_eai", aux=2.0)
    with pytest.raises(W2SGError, match="radius"):
        get_loss("window", radius="wide")
    z = torch.zeros(4, 3)
    t = torch.full((4, 3), 1 / 3)
    for name in ("logconf_oai", "logconf_eai", "entropy"):
        with pytest.raises(W2SGError, match="two classes"):
            get_loss(name)(z, t, StepState())
    for name in ("product", "window"):  # any number of classes
        assert torch.isfinite(get_loss(name)(z, t, StepState()))
    assert all(needs_steps(get_loss(n)) for n in ("logconf_oai", "product", "window", "entropy"))
    assert isinstance(get_loss("entropy"), Entropy)


def _blobs(n: int = 400, d: int = 6, seed: int = 0, noise: float = 0.2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    H = rng.normal(size=(n, d)) + np.outer(2 * y - 1, np.r_[1.5, np.zeros(d - 1)])
    flip = rng.random(n) < noise
    weak = np.where(flip, 1 - y, y)
    T = np.eye(2)[weak] * 0.8 + 0.1
    return H, T, y


@pytest.mark.parametrize("loss", ["logconf_oai", "logconf_eai", "product", "window", "entropy"])
def test_softmax_head_trains_each_loss_with_adam_and_refuses_lbfgs(loss: str) -> None:
    H, T, y = _blobs()
    with pytest.raises(W2SGError, match="L-BFGS.*--optimizer adam"):
        SoftmaxHead(loss=loss).fit(H, T)
    head = SoftmaxHead(loss=loss, optimizer="adam", epochs=5, batch_size=64, lr=0.05).fit(H, T)
    acc = float((head.predict(H) == y).mean())
    assert acc > 0.85  # the weak labels are 80% right; the blobs are separable along axis 0


def test_softmax_head_passes_steps_and_starts_the_loss() -> None:
    seen: list[StepState] = []
    started: list[int] = []

    class Spy(LogconfEAI):
        def start(self, targets: torch.Tensor) -> None:
            started.append(targets.shape[0])
            super().start(targets)

        def __call__(self, logits, targets, state=None):
            seen.append(state)
            return super().__call__(logits, targets, state)

    H, T, _ = _blobs(n=100)
    SoftmaxHead(loss=Spy(), optimizer="adam", epochs=2, batch_size=32).fit(H, T)
    assert started == [100]
    assert [s.step for s in seen] == list(range(8))
    assert {(s.total_steps, s.batch_size) for s in seen} == {(8, 32)}


def test_run_config_refuses_step_losses_with_lbfgs() -> None:
    with pytest.raises(W2SGError, match="--optimizer adam"):
        RunConfig(loss="logconf_oai").validate()
    RunConfig(loss="logconf_oai", optimizer="adam").validate()
    RunConfig(loss="window", head="ridge").validate()  # other heads ignore the loss
