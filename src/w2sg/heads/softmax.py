"""Softmax (sigmoid for two classes) linear head trained on soft labels.

The head predicts p(x) = softmax(Wᵀ(h(x) − μ) + b) with W ∈ R^{d×C}, b ∈ R^C and μ the column mean
of the training features (``center=True``; μ = 0 otherwise). Fitting minimises

    J(W, b) = (1/n) Σ_i loss(z_i, t_i) + (l2/2) ‖W‖_F²,   z_i = Wᵀ(h_i − μ) + b,

with ``loss`` one of the registered losses of :mod:`w2sg.heads.losses` (``xent`` by default) and
the intercept not penalised. Binary tasks use C = 2: p_1 = σ(z_1 − z_0), a sigmoid of the logit
difference.

Relation to scikit-learn. ``LogisticRegression(C=c)`` minimises c·Σ_i logloss_i + ½‖w‖², the same
minimiser as (1/n)Σ_i logloss_i + (1/(2cn))‖w‖² (unpenalised intercept). For one-hot targets and
``loss="xent"``:

- multiclass (C ≥ 3): scikit-learn's multinomial model uses a full W ∈ R^{d×C}, so
  c = 1 / (n · l2) gives the same predicted probabilities;
- binary (C = 2): scikit-learn fits one vector w for σ(wᵀh + b). Only v = W_{:,1} − W_{:,0} enters
  the loss, and for a given v the penalty ‖W_{:,0}‖² + ‖W_{:,1}‖² is smallest at
  W_{:,1} = −W_{:,0} = v/2, where it equals ‖v‖²/2. So J = (1/n)Σ logloss(v) + (l2/4)‖v‖², and
  c = 2 / (n · l2) with w = v = W_{:,1} − W_{:,0}.

:func:`sklearn_C` returns this c.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from w2sg.errors import W2SGError
from w2sg.heads.losses import LossFn, StepState, get_loss, xent, xent_value_and_grad

__all__ = ["OPTIMIZERS", "SoftmaxHead", "sklearn_C"]

OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")

# Row sums of soft targets may be off by float32 rounding; anything further is a user error.
_ROW_SUM_ATOL = 1e-5

EpochCallback = Callable[[int, "SoftmaxHead"], Any]


def sklearn_C(l2: float, n: int, n_classes: int) -> float:
    """scikit-learn ``LogisticRegression`` C with the same minimiser as ``SoftmaxHead(l2=l2)``.

    c = 2 / (n · l2) for two classes (scikit-learn's single weight vector w = W_{:,1} − W_{:,0})
    and c = 1 / (n · l2) for three or more (multinomial with a full W); see the module docstring.
    """
    if l2 <= 0 or n < 1 or n_classes < 2:
        raise W2SGError(
            f"sklearn_C needs l2 > 0, n >= 1 and n_classes >= 2; got {l2}, {n}, {n_classes}"
        )
    return (2.0 if n_classes == 2 else 1.0) / (n * l2)


def _as_float_matrix(x: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise W2SGError(f"{name} must be a numeric array; could not convert it ({exc})") from None
    if arr.ndim != 2:
        raise W2SGError(f"{name} must be a 2-d array (n, columns); got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise W2SGError(f"{name} contains NaN or infinite values; clean or impute them first")
    return arr


class SoftmaxHead:
    """Linear softmax head on frozen features, trained on soft labels (THEORY.md section 6).

    Parameters (stored as given, checked in :meth:`fit`):

    - ``loss``: a name in :data:`w2sg.heads.losses.LOSSES` or a function with the same signature;
    - ``l2``: the penalty (l2/2)‖W‖_F² added to the mean loss (intercept not penalised);
    - ``optimizer``: ``"lbfgs"`` — full-batch ``torch.optim.LBFGS`` with strong-Wolfe line search
      in float64, run until the largest absolute gradient entry is at most ``tol``, the objective
      changes by less than 64 machine epsilons, or ``max_iter`` iterations; deterministic.
      ``"adam"`` — mini-batch Adam (float64) for ``epochs`` epochs of batches of ``batch_size``,
      learning rate ``lr``, the batch order drawn from a ``torch.Generator`` seeded with ``seed``;
    - ``center``: subtract the training column mean μ from the features (also at prediction).

    Learned state: ``coef_`` (d, C) = W, ``intercept_`` (C,) = b, ``mean_`` (d,) = μ,
    ``n_iter_`` (L-BFGS iterations, or Adam epochs completed).

    Per-epoch callbacks: ``fit(..., epoch_callback=f)`` calls ``f(epoch, head)`` with ``coef_`` and
    ``intercept_`` set to the current parameters. Only ``adam`` gives one call per epoch
    (epoch = 1..epochs); ``lbfgs`` solves one full-batch problem and calls ``f(1, head)`` once, at
    the end. The ``logconf`` loss warms its mixing weight up over the Adam steps; under L-BFGS it
    uses its final weight throughout (see :class:`w2sg.heads.losses.StepState`).

    Results are bit-identical for the same inputs, parameters, ``seed`` and torch thread count.
    """

    coef_: NDArray[np.float64]
    intercept_: NDArray[np.float64]
    mean_: NDArray[np.float64]
    n_iter_: int

    def __init__(
        self,
        loss: str | LossFn = "xent",
        l2: float = 1e-2,
        optimizer: str = "lbfgs",
        epochs: int = 50,
        lr: float = 1e-2,
        batch_size: int = 256,
        max_iter: int = 500,
        tol: float = 1e-9,
        seed: int = 0,
        center: bool = True,
    ) -> None:
        self.loss = loss
        self.l2 = l2
        self.optimizer = optimizer
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed
        self.center = center

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> LossFn:
        loss_fn = get_loss(self.loss) if isinstance(self.loss, str) else self.loss
        if not callable(loss_fn):
            raise W2SGError(f"loss must be a registered name or a function; got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise W2SGError(
                f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise W2SGError(f"l2 must be a finite number >= 0; got {self.l2}")
        if not (math.isfinite(self.tol) and self.tol > 0):
            raise W2SGError(f"tol must be > 0; got {self.tol}")
        if self.optimizer == "lbfgs" and self.max_iter < 1:
            raise W2SGError(f"max_iter must be >= 1; got {self.max_iter}")
        if self.optimizer == "adam":
            if self.epochs < 1:
                raise W2SGError(f"epochs must be >= 1; got {self.epochs}")
            if self.batch_size < 1:
                raise W2SGError(f"batch_size must be >= 1; got {self.batch_size}")
            if not (math.isfinite(self.lr) and self.lr > 0):
                raise W2SGError(f"lr must be > 0; got {self.lr}")
        return loss_fn

    @staticmethod
    def _check_targets(targets: ArrayLike, n: int) -> NDArray[np.float64]:
        t = _as_float_matrix(targets, "targets")
        if t.shape[0] != n:
            raise W2SGError(
                f"targets has {t.shape[0]} rows but H has {n}; pass one row per example"
            )
        if t.shape[1] < 2:
            raise W2SGError(
                f"targets must be (n, C) probabilities with C >= 2 columns; got shape {t.shape}"
            )
        if (t < 0).any():
            raise W2SGError("targets contains negative entries; pass probabilities in [0, 1]")
        worst = float(np.abs(t.sum(axis=1) - 1.0).max())
        if worst > _ROW_SUM_ATOL:
            raise W2SGError(
                f"targets rows must sum to 1 (largest deviation {worst:.3g}); pass probabilities, "
                "e.g. one-hot rows for hard labels"
            )
        return t

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        H: ArrayLike,
        targets: ArrayLike,
        epoch_callback: EpochCallback | None = None,
    ) -> SoftmaxHead:
        """Minimise J(W, b) = (1/n) Σ_i loss(z_i, t_i) + (l2/2)‖W‖_F² and store W, b, μ.

        ``H`` is (n, d) float features, ``targets`` (n, C) soft labels (rows on the simplex, C ≥ 2).
        ``epoch_callback(epoch, head)`` is called after every Adam epoch, or once after L-BFGS.
        """
        loss_fn = self._check_params()
        h = _as_float_matrix(H, "H")
        n, d = h.shape
        if n < 2:
            raise W2SGError(f"H needs at least 2 rows to fit a head; got {n}")
        t = self._check_targets(targets, n)
        n_classes = t.shape[1]

        self.mean_ = h.mean(axis=0) if self.center else np.zeros(d)
        # Centred features with a column of ones: one product gives the logits, intercept included.
        x = np.empty((n, d + 1))
        np.subtract(h, self.mean_, out=x[:, :d])
        x[:, d] = 1.0
        y = torch.from_numpy(t)
        shape = (d + 1,) if n_classes == 2 else (d + 1, n_classes)
        theta = torch.zeros(shape, dtype=torch.float64)

        if self.optimizer == "lbfgs":
            self._fit_lbfgs(x, y, theta, loss_fn)
            if epoch_callback is not None:
                epoch_callback(1, self)
        else:
            self._fit_adam(x, y, theta, loss_fn, epoch_callback)
        return self

    def _objective_and_grad(
        self,
        x: NDArray[np.float64],
        y: torch.Tensor,
        theta: torch.Tensor,
        loss_fn: LossFn,
        state: StepState,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """J(θ) and its gradient; x = [H − μ, 1] and θ = [W; b] (binary: θ = a, see below).

        Multiclass: z = xθ and ∂J/∂θ = xᵀ ∂L/∂z + l2·[W; 0]. Binary: the parameters are
        θ = [W; b]_{:,1} =: a with [W; b] = [−a, a] (a softmax loss sees only z_1 − z_0, and the
        penalty is smallest for antisymmetric columns, so the minimiser has this form), so
        z = (−xa, xa), ‖W‖_F² = 2‖a_{:-1}‖² and ∂J/∂a = xᵀ(∂L/∂z_1 − ∂L/∂z_0) + 2·l2·[a_{:-1}; 0]:
        matrix-vector products, half the work of a two-column W.

        Autograd runs through the loss on the (B, C) logits only; ``xent`` uses its closed form
        (p − t)/B instead, a third of the time of a binary fit. The two products with x, most of
        the rest, go through numpy's BLAS: on the same buffers it was 1.5-3× faster than torch's
        MKL matrix-vector kernels on the AMD benchmark machine.
        """
        theta_np = theta.numpy()
        if theta.ndim == 1:
            half = torch.from_numpy(x @ theta_np)
            logits = torch.stack([-half, half], dim=1)
        else:
            logits = torch.from_numpy(x @ theta_np)
        if loss_fn is xent:
            loss, grad_logits = xent_value_and_grad(logits, y)
        else:
            logits.requires_grad_(True)
            loss = loss_fn(logits, y, state)
            (grad_logits,) = torch.autograd.grad(loss, logits)
        with torch.no_grad():
            g = grad_logits.numpy()
            if theta.ndim == 1:
                grad = torch.from_numpy(x.T @ (g[:, 1] - g[:, 0]))
                penalty = 2.0 * self.l2
            else:
                grad = torch.from_numpy(x.T @ g)
                penalty = self.l2
            weights = theta[:-1]
            grad[:-1] += penalty * weights
            value = loss.detach() + 0.5 * penalty * (weights * weights).sum()
        return value, grad

    def _store(self, theta: torch.Tensor) -> None:
        params = theta.detach().numpy()
        if params.ndim == 1:
            params = np.stack([-params, params], axis=1)
        self.coef_ = params[:-1].copy()
        self.intercept_ = params[-1].copy()

    def _fit_lbfgs(
        self, x: NDArray[np.float64], y: torch.Tensor, theta: torch.Tensor, loss_fn: LossFn
    ) -> None:
        # torch's L-BFGS drops curvature pairs with the absolute test yᵀs > 1e-10, which discards
        # every pair near the optimum of a mean loss and slows the last digits badly. Minimising
        # n·J (the summed loss, as scikit-learn's solver sees it) keeps them; the tolerances are
        # scaled to match, so ``tol`` still bounds the gradient of J itself.
        scale = float(x.shape[0])
        opt = torch.optim.LBFGS(
            [theta],
            lr=1.0,
            max_iter=self.max_iter,
            max_eval=2 * self.max_iter,
            tolerance_grad=self.tol * scale,
            tolerance_change=64 * float(np.finfo(np.float64).eps) * scale,
            history_size=10,
            line_search_fn="strong_wolfe",
        )
        state = StepState(step=1, total_steps=1)

        def closure() -> torch.Tensor:
            value, grad = self._objective_and_grad(x, y, theta, loss_fn, state)
            theta.grad = grad.mul_(scale)
            return value * scale

        opt.step(closure)
        self.n_iter_ = int(opt.state[theta].get("n_iter", 0))
        self._store(theta)
        if self.n_iter_ >= self.max_iter:
            warnings.warn(
                f"L-BFGS stopped at max_iter={self.max_iter} before reaching tol={self.tol:g}; "
                "raise max_iter or tol",
                RuntimeWarning,
                stacklevel=3,
            )

    def _fit_adam(
        self,
        x: NDArray[np.float64],
        y: torch.Tensor,
        theta: torch.Tensor,
        loss_fn: LossFn,
        epoch_callback: EpochCallback | None,
    ) -> None:
        n = x.shape[0]
        opt = torch.optim.Adam([theta], lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        total_steps = self.epochs * math.ceil(n / self.batch_size)
        step = 0
        for epoch in range(1, self.epochs + 1):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                _, theta.grad = self._objective_and_grad(
                    x[idx.numpy()], y[idx], theta, loss_fn, StepState(step, total_steps)
                )
                opt.step()
                step += 1
            self._store(theta)
            self.n_iter_ = epoch
            if epoch_callback is not None:
                epoch_callback(epoch, self)

    # ------------------------------------------------------------------ prediction
    def _check_fitted_input(self, H: ArrayLike) -> NDArray[np.float64]:
        if not hasattr(self, "coef_"):
            raise W2SGError("this SoftmaxHead is not fitted yet; call fit(H, targets) first")
        h = _as_float_matrix(H, "H")
        if h.shape[1] != self.coef_.shape[0]:
            raise W2SGError(
                f"H has {h.shape[1]} features but the head was fitted on {self.coef_.shape[0]}; "
                "use the same representation"
            )
        return h

    def decision_function(self, H: ArrayLike) -> NDArray[np.float64]:
        """Logits z = (H − μ) W + b, shape (n, C), float64."""
        h = self._check_fitted_input(H)
        return np.asarray((h - self.mean_) @ self.coef_ + self.intercept_, dtype=np.float64)

    def predict_proba(self, H: ArrayLike) -> NDArray[np.float64]:
        """Probabilities p = softmax(z) row-wise, shape (n, C), float64; column 1 is positive."""
        z = self.decision_function(H)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)

    def predict(self, H: ArrayLike) -> NDArray[np.int64]:
        """Predicted class indices argmax_j p_j, shape (n,)."""
        return np.asarray(self.decision_function(H).argmax(axis=1), dtype=np.int64)
