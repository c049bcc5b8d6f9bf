"""SoftmaxHead against scikit-learn, first-order optimality, determinism and input checks."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from w2sg.errors import W2SGError
from w2sg.heads import SoftmaxHead
from w2sg.heads.softmax import sklearn_C


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    # Tiny fits: thread start-up and contention on a shared machine cost more than they save.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def _data(n: int, d: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    H = rng.normal(size=(n, d)) + rng.normal(size=d)  # off-centre columns
    w = rng.normal(scale=2.0 / np.sqrt(d), size=(d, n_classes))
    z = H @ w
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    y[:n_classes] = np.arange(n_classes)  # every class present
    return H, y


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sklearn(H: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, tol=1e-10, max_iter=10000).fit(H, y)


@pytest.mark.parametrize(
    ("n", "d", "n_classes", "l2"),
    [
        (300, 10, 2, 1e-2),
        (200, 30, 2, 1e-3),
        (60, 150, 2, 1e-2),  # d > n
        (300, 12, 3, 1e-2),
        (200, 25, 5, 1e-3),
        (50, 120, 4, 1e-2),  # d > n
    ],
)
def test_matches_sklearn_logistic_regression(n: int, d: int, n_classes: int, l2: float) -> None:
    H, y = _data(n, d, n_classes, seed=n + d)
    H_test, _ = _data(100, d, n_classes, seed=1)
    head = SoftmaxHead(l2=l2).fit(H, np.eye(n_classes)[y])
    ref = _sklearn(H, y, sklearn_C(l2, n, n_classes))
    assert np.abs(head.predict_proba(H_test) - ref.predict_proba(H_test)).max() < 1e-4
    assert np.abs(head.predict_proba(H) - ref.predict_proba(H)).max() < 1e-4

    # The parameter mapping of the module docstring, not only the predictions. Logits are looser:
    # both solvers stop with gradients near 1e-8, and d > n is ill-conditioned.
    logits = head.decision_function(H_test)
    if n_classes == 2:
        np.testing.assert_allclose(head.coef_[:, 1] - head.coef_[:, 0], ref.coef_[0], atol=1e-3)
        np.testing.assert_allclose(
            logits[:, 1] - logits[:, 0], ref.decision_function(H_test), atol=1e-3
        )
    else:
        np.testing.assert_allclose(head.coef_, ref.coef_.T, atol=1e-3)
        ours = logits - logits.mean(axis=1, keepdims=True)
        theirs = ref.decision_function(H_test)
        np.testing.assert_allclose(ours, theirs - theirs.mean(axis=1, keepdims=True), atol=1e-3)


def test_binary_mapping_is_not_the_multiclass_one() -> None:
    # Guards the factor 2: with c = 1/(n·l2) the binary fits differ visibly.
    n, d, l2 = 300, 10, 1e-2
    H, y = _data(n, d, 2, seed=3)
    head = SoftmaxHead(l2=l2).fit(H, np.eye(2)[y])
    wrong = _sklearn(H, y, 1.0 / (n * l2))
    assert np.abs(head.predict_proba(H) - wrong.predict_proba(H)).max() > 1e-3


def test_sklearn_C_rejects_bad_arguments() -> None:
    with pytest.raises(W2SGError, match="l2 > 0"):
        sklearn_C(0.0, 10, 2)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_soft_targets_first_order_optimality(n_classes: int) -> None:
    """At the optimum of mean xent + (l2/2)‖W‖²: Hcᵀ(P − T)/n + l2·W = 0 and Σ_i (P − T) = 0.

    L-BFGS stops when J changes by < 64 machine epsilons, which leaves gradients near 1e-8.
    """
    n, d, l2 = 200, 15, 1e-2
    H, _ = _data(n, d, n_classes, seed=5)
    T = np.random.default_rng(6).dirichlet(np.ones(n_classes), size=n)
    head = SoftmaxHead(l2=l2, tol=1e-10).fit(H, T)
    Hc = H - H.mean(axis=0)
    np.testing.assert_allclose(head.mean_, H.mean(axis=0))
    P = _softmax(Hc @ head.coef_ + head.intercept_)
    np.testing.assert_allclose(head.predict_proba(H), P, atol=1e-14)
    assert np.abs(Hc.T @ (P - T) / n + l2 * head.coef_).max() < 1e-6
    assert np.abs((P - T).mean(axis=0)).max() < 1e-6


def test_reverse_kl_first_order_optimality() -> None:
    """∂/∂z of Σ_j p_j(log p_j − log t_j) is p ⊙ (a − ⟨p, a⟩), a = log p − log t."""
    n, d, l2 = 150, 8, 1e-2
    H, _ = _data(n, d, 3, seed=8)
    T = np.random.default_rng(9).dirichlet(np.ones(3) * 2, size=n)
    head = SoftmaxHead(loss="reverse_kl", l2=l2, tol=1e-10).fit(H, T)
    Hc = H - H.mean(axis=0)
    P = head.predict_proba(H)
    a = np.log(P) - np.log(T)
    G = P * (a - (P * a).sum(axis=1, keepdims=True))
    assert np.abs(Hc.T @ G / n + l2 * head.coef_).max() < 1e-6
    assert np.abs(G.mean(axis=0)).max() < 1e-6


def test_hard_loss_equals_xent_on_argmax_targets() -> None:
    H, _ = _data(120, 6, 3, seed=10)
    T = np.random.default_rng(11).dirichlet(np.ones(3), size=120)
    hard = SoftmaxHead(loss="hard").fit(H, T)
    onehot = SoftmaxHead(loss="xent").fit(H, np.eye(3)[T.argmax(axis=1)])
    np.testing.assert_allclose(hard.coef_, onehot.coef_, atol=1e-7)


def test_center_does_not_change_predictions() -> None:
    H, y = _data(200, 10, 3, seed=12)
    T = np.eye(3)[y]
    centred = SoftmaxHead(center=True).fit(H, T)
    raw = SoftmaxHead(center=False).fit(H, T)
    assert not raw.mean_.any()
    np.testing.assert_allclose(centred.predict_proba(H), raw.predict_proba(H), atol=1e-6)


@pytest.mark.parametrize("loss", ["xent", "reverse_kl", "hard", "logconf"])
@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_deterministic_fits(loss: str, optimizer: str) -> None:
    H, y = _data(150, 8, 2, seed=13)
    T = np.eye(2)[y] * 0.8 + 0.1
    kwargs: dict[str, Any] = {"loss": loss, "optimizer": optimizer, "epochs": 3, "batch_size": 32}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # logconf may stop at max_iter
        a = SoftmaxHead(**kwargs).fit(H, T)
        b = SoftmaxHead(**kwargs).fit(H, T)
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    P = a.predict_proba(H)
    assert P.shape == (150, 2) and P.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    assert a.n_iter_ >= 1


def test_adam_seed_changes_batch_order() -> None:
    H, y = _data(150, 8, 2, seed=14)
    T = np.eye(2)[y]
    a = SoftmaxHead(optimizer="adam", epochs=2, batch_size=16, seed=0).fit(H, T)
    b = SoftmaxHead(optimizer="adam", epochs=2, batch_size=16, seed=1).fit(H, T)
    assert not np.array_equal(a.coef_, b.coef_)


def test_adam_epoch_callback_and_convergence() -> None:
    H, y = _data(256, 6, 3, seed=15)
    T = np.eye(3)[y]
    seen: list[tuple[int, np.ndarray]] = []

    def record(epoch: int, head: SoftmaxHead) -> None:
        seen.append((epoch, head.predict_proba(H)))

    epochs = 60
    head = SoftmaxHead(optimizer="adam", epochs=epochs, lr=0.05, batch_size=64)
    assert head.fit(H, T, epoch_callback=record) is head
    assert [e for e, _ in seen] == list(range(1, epochs + 1))
    assert head.n_iter_ == epochs
    assert not np.array_equal(seen[0][1], seen[1][1])  # the head reports its current state
    np.testing.assert_array_equal(seen[-1][1], head.predict_proba(H))
    exact = SoftmaxHead().fit(H, T).predict_proba(H)
    assert np.abs(seen[0][1] - exact).max() > 0.3
    assert np.abs(head.predict_proba(H) - exact).max() < 0.06  # mini-batch noise floor


def test_full_batch_adam_reaches_the_lbfgs_optimum() -> None:
    H, y = _data(256, 6, 3, seed=15)
    T = np.eye(3)[y]
    adam = SoftmaxHead(optimizer="adam", epochs=400, lr=0.05, batch_size=256).fit(H, T)
    exact = SoftmaxHead().fit(H, T)
    assert np.abs(adam.predict_proba(H) - exact.predict_proba(H)).max() < 5e-3


def test_lbfgs_epoch_callback_called_once_at_the_end() -> None:
    H, y = _data(100, 5, 2, seed=16)
    calls: list[int] = []
    head = SoftmaxHead().fit(H, np.eye(2)[y], epoch_callback=lambda e, h: calls.append(e))
    assert calls == [1]
    assert head.n_iter_ >= 1


def test_max_iter_warns() -> None:
    H, y = _data(200, 20, 2, seed=17)
    with pytest.warns(RuntimeWarning, match="max_iter=2"):
        SoftmaxHead(max_iter=2).fit(H, np.eye(2)[y])


_H, _Y = _data(20, 3, 2, seed=18)
_T = np.eye(2)[_Y]


@pytest.mark.parametrize(
    ("H", "targets", "kwargs", "match"),
    [
        (_H[:, 0], _T, {}, "H must be a 2-d array"),
        (np.where(np.eye(20, 3) > 0, np.nan, _H), _T, {}, "H contains NaN"),
        ([["a", "b", "c"]] * 20, _T, {}, "H must be a numeric array"),
        (_H[:1], _T[:1], {}, "at least 2 rows"),
        (_H, _T[:-1], {}, "targets has 19 rows but H has 20"),
        (_H, _T[:, :1], {}, "C >= 2"),
        (_H, _Y, {}, "targets must be a 2-d array"),
        (_H, _T * 2, {}, "rows must sum to 1"),
        (_H, _T * 2 - 0.5, {}, "negative"),
        (_H, np.where(_T > 0, np.inf, 0.0), {}, "targets contains NaN or infinite"),
        (_H, _T, {"loss": "mse"}, "unknown loss 'mse'"),
        (_H, _T, {"optimizer": "sgd"}, "unknown optimizer 'sgd'"),
        (_H, _T, {"l2": -1.0}, "l2 must be"),
        (_H, _T, {"tol": 0.0}, "tol must be"),
        (_H, _T, {"max_iter": 0}, "max_iter must be"),
        (_H, _T, {"optimizer": "adam", "epochs": 0}, "epochs must be"),
        (_H, _T, {"optimizer": "adam", "batch_size": 0}, "batch_size must be"),
        (_H, _T, {"optimizer": "adam", "lr": -1.0}, "lr must be"),
    ],
)
def test_bad_fit_inputs_raise(H: object, targets: object, kwargs: dict, match: str) -> None:
    with pytest.raises(W2SGError, match=match):
        SoftmaxHead(**kwargs).fit(H, targets)  # type: ignore[arg-type]


def test_bad_predict_inputs_raise() -> None:
    with pytest.raises(W2SGError, match="not fitted"):
        SoftmaxHead().predict_proba(_H)
    head = SoftmaxHead().fit(_H, _T)
    with pytest.raises(W2SGError, match="H has 2 features but the head was fitted on 3"):
        head.predict_proba(_H[:, :2])
    np.testing.assert_array_equal(head.predict(_H), head.predict_proba(_H).argmax(axis=1))


def _weak_to_strong_case(
    n: int = 800, d: int = 40, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit-norm Gaussian features, 58/42 classes from a linear truth, and soft weak labels from a
    noisy linear teacher: (H, y_true, weak targets (n, 2))."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    H = rng.normal(size=(n, d))
    score = H @ w / np.linalg.norm(w)
    threshold = np.quantile(score, 0.42)
    y = (score > threshold).astype(int)
    H /= np.linalg.norm(H, axis=1, keepdims=True)
    weak = 1.5 * (score - threshold) + rng.normal(scale=1.5, size=n)
    p = 1.0 / (1.0 + np.exp(-weak))
    return H, y, np.stack([1 - p, p], axis=1)


def test_logconf_lbfgs_does_not_collapse() -> None:
    # Starting L-BFGS at α = alpha_max from W = 0 used to end in constant predictions (AUROC 0.5).
    from sklearn.metrics import roc_auc_score

    H, y, T = _weak_to_strong_case()
    auroc = {}
    for loss in ("xent", "logconf"):
        for optimizer in ("lbfgs", "adam"):
            head = SoftmaxHead(
                loss=loss, l2=1e-3, optimizer=optimizer, epochs=30, lr=1e-2, batch_size=32
            ).fit(H, T)
            p = head.predict_proba(H)[:, 1]
            assert p.std() > 0.05
            auroc[loss, optimizer] = roc_auc_score(y, p)
    assert auroc["xent", "lbfgs"] > 0.85
    for optimizer in ("lbfgs", "adam"):
        assert auroc["logconf", optimizer] > 0.8
        assert auroc["logconf", optimizer] > auroc["xent", "lbfgs"] - 0.06


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logconf_lbfgs_is_a_fixed_point(n_classes: int) -> None:
    """At the result, W minimises xent on u = (1 − α)t + α ĥ(p(W)): the Adam update's rest point."""
    from w2sg.heads.losses import logconf_targets

    if n_classes == 2:
        H, _, T = _weak_to_strong_case(n=400, d=20, seed=1)
    else:
        H, _ = _data(300, 10, 3, seed=19)
        T = np.random.default_rng(20).dirichlet(np.ones(3), size=300)
    l2 = 1e-2
    head = SoftmaxHead(loss="logconf", l2=l2, tol=1e-10).fit(H, T)
    logits = head.decision_function(H)
    U = logconf_targets(torch.tensor(logits), torch.tensor(T), alpha_max=0.75).numpy()
    assert not np.allclose(U, T)  # the hardened part is active
    Hc = H - H.mean(axis=0)
    P = head.predict_proba(H)
    assert np.abs(Hc.T @ (P - U) / len(H) + l2 * head.coef_).max() < 1e-6
    assert np.abs((P - U).mean(axis=0)).max() < 1e-6
    assert head.n_iter_ > 1


@pytest.mark.parametrize("n_classes", [2, 4])
def test_autograd_path_matches_closed_form(n_classes: int) -> None:
    # A loss that is not the registered xent object goes through autograd on the logits.
    from w2sg.heads.losses import xent

    H, _ = _data(200, 12, n_classes, seed=21)
    T = np.random.default_rng(22).dirichlet(np.ones(n_classes), size=200)
    closed = SoftmaxHead(l2=1e-2).fit(H, T)
    auto = SoftmaxHead(loss=lambda z, t, s: xent(z, t, s), l2=1e-2).fit(H, T)
    np.testing.assert_allclose(auto.coef_, closed.coef_, atol=1e-7)
    np.testing.assert_allclose(auto.intercept_, closed.intercept_, atol=1e-7)


@pytest.mark.parametrize("n_classes", [3, 5])
def test_multiclass_solution_has_sum_zero_columns(n_classes: int) -> None:
    # L-BFGS optimises over the sum-zero subspace (where the minimiser lies); Adam over all of W.
    H, y = _data(150, 8, n_classes, seed=23)
    head = SoftmaxHead(l2=1e-2).fit(H, np.eye(n_classes)[y])
    np.testing.assert_allclose(head.coef_.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(head.intercept_.sum(), 0.0, atol=1e-12)


def test_fit_restores_blas_thread_counts() -> None:
    # L-BFGS-B runs scipy's own BLAS on one thread during the fit, and only then.
    from threadpoolctl import threadpool_info

    H, y = _data(100, 5, 3, seed=24)
    with threadpool_limits(2):
        before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
        SoftmaxHead().fit(H, np.eye(3)[y])
        assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before
