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

import contextlib
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from w2sg.errors import W2SGError
from w2sg.heads.losses import (
    LossFn,
    StepState,
    get_loss,
    logconf,
    logconf_targets,
    needs_steps,
    xent,
)

__all__ = ["OPTIMIZERS", "SoftmaxHead", "sklearn_C"]

OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")

# Row sums of soft targets may be off by float32 rounding; anything further is a user error.
_ROW_SUM_ATOL = 1e-5

EpochCallback = Callable[[int, "SoftmaxHead"], Any]

# scikit-learn's settings for its lbfgs solver: relative objective change and line-search steps.
_FTOL = 64 * float(np.finfo(np.float64).eps)
_MAXLS = 50
# Full-batch logconf: most fixed-point rounds after the xent warm start (each a warm-started solve).
_LOGCONF_MAX_ROUNDS = 50
# Binary xent: H is read in blocks of rows of about this size (see _Objective._binary_xent).
_BLOCK_BYTES = 2**22


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


def _as_float_matrix(
    x: ArrayLike, name: str, column_sums: list[NDArray[np.float64]] | None = None
) -> NDArray[np.float64]:
    """x as a float64 (n, columns) array (no copy if it is one), checked finite.

    With ``column_sums`` (a list), the check is a pass of column sums, appended to the list (NaN
    and ±inf propagate into them; only if a sum is not finite is every entry looked at): half the
    cost of ``isfinite`` over all entries, and the fit needs the sums for μ anyway.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise W2SGError(f"{name} must be a numeric array; could not convert it ({exc})") from None
    if arr.ndim != 2:
        raise W2SGError(f"{name} must be a 2-d array (n, columns); got shape {arr.shape}")
    if column_sums is not None:
        sums = arr.sum(axis=0)
        column_sums.append(sums)
        if np.isfinite(sums).all():
            return arr
    if not np.isfinite(arr).all():
        raise W2SGError(f"{name} contains NaN or infinite values; clean or impute them first")
    return arr


# threadpoolctl selections of (scipy's own BLAS, numpy's BLAS), each None where not found; set once.
_BLAS: list[tuple[Any, Any]] = []


def _blas_selections() -> tuple[Any, Any]:
    if not _BLAS:
        scipy_blas = numpy_blas = None
        try:
            import scipy
            from threadpoolctl import ThreadpoolController

            def under(path: str, module_file: str) -> bool:
                root = os.path.dirname(os.path.abspath(module_file))
                return path.startswith((root + os.sep, root + ".libs"))

            controller = ThreadpoolController()
            blas = [i["filepath"] for i in controller.info() if i["user_api"] == "blas"]
            in_numpy = [f for f in blas if under(f, np.__file__)]
            own = [f for f in blas if under(f, scipy.__file__) and f not in in_numpy]
            scipy_blas = controller.select(filepath=own) if own else None
            numpy_blas = controller.select(filepath=in_numpy) if in_numpy else None
        except Exception:  # noqa: BLE001 - optional speed-ups; never fail a fit over them
            scipy_blas = numpy_blas = None
        _BLAS.append((scipy_blas, numpy_blas))
    return _BLAS[0]


def _scipy_blas_single_thread() -> contextlib.AbstractContextManager[Any]:
    """Run scipy's own BLAS (not numpy's) on one thread for the duration of the context.

    scipy's L-BFGS-B calls BLAS on vectors of the parameters' size and its m = 10 correction pairs
    only; threaded, each call pays a wake-up, which on a busy 2-core machine cost several ms per
    iteration (more than the objective). The products with the data go through numpy's BLAS and
    keep their threads. Only where scipy ships its own BLAS library (the PyPI wheels), located
    with threadpoolctl if it is installed; otherwise, or if numpy and scipy share one BLAS, this
    does nothing. The limit is process-wide while it lasts.
    """
    selection = _blas_selections()[0]
    if selection is None:
        return contextlib.nullcontext()
    return selection.limit(limits=1)


def _numpy_blas_single_threaded() -> bool:
    """Whether numpy's BLAS is known to run on one thread (False if unknown)."""
    selection = _blas_selections()[1]
    try:
        return selection is not None and all(i["num_threads"] == 1 for i in selection.info())
    except Exception:  # noqa: BLE001
        return False


def _sum_zero_basis(n_classes: int) -> NDArray[np.float64]:
    """(C, C − 1) orthonormal basis of {v : Σ_j v_j = 0}: Helmert's columns
    (1, …, 1, −k, 0, …, 0)/√(k(k + 1)) with k ones, k = 1..C − 1."""
    basis = np.zeros((n_classes, n_classes - 1))
    for k in range(1, n_classes):
        basis[:k, k - 1] = 1.0
        basis[k, k - 1] = -float(k)
        basis[:, k - 1] /= math.sqrt(k * (k + 1))
    return basis


class _Objective:
    """J(θ) and ∇J(θ) in numpy float64 on a flat parameter vector θ, for fixed (H, μ, targets).

    With x = [H − μ, 1], (n, p) and p = d + 1, the logits are x[W; b]. x is never formed (that
    would copy H): the products are H·W + (b − μᵀW) and xᵀG = [HᵀG − μ 1ᵀG; 1ᵀG], the same
    parameters and iterates as for the centred features, one pass over H each.

    A loss that depends on z only through softmax(z) is unchanged when a common vector is added to
    all columns of [W; b], while the penalty is smallest when the columns of W sum to zero; so the
    minimiser lies in that subspace, and ``reduced=True`` (L-BFGS) optimises over it only:

    - binary: θ ∈ R^p and the logit difference is δ = z_1 − z_0 = k·xθ with the logits
      z = (−δ/2, δ/2), i.e. [W; b] = (k/2)·[−θ, θ]: one matrix-vector product each way instead of
      two, and ‖W‖_F² = (k²/2)‖θ_w‖². ``reduced`` uses k = 1 (θ is scikit-learn's (w, b)), else
      k = 2 (θ = [W; b]_{:,1}, so Adam's steps are those of a two-column W);
    - multiclass: θ is (p, C − 1) flattened in C order and [W; b] = θPᵀ with P the (C, C − 1)
      orthonormal Helmert basis of the vectors summing to zero, an isometry (‖W‖_F = ‖θ_w‖_F), so
      the products with x have C − 1 columns instead of C (20% less of the main cost at C = 5).
      Without ``reduced`` (Adam, whose steps depend on the coordinates) P = I and θ = [W; b].

    ``xent`` uses closed forms: binary L = mean_i[(t_i0 + t_i1)·softplus(δ_i) − t_i1·δ_i] with
    ∂L/∂δ_i = ((t_i0 + t_i1)·σ(δ_i) − t_i1)/n, multiclass L = mean_i[(Σ_j t_ij)·lse(z_i) − t_iᵀz_i]
    with ∂L/∂z = (P·Σ_j t_ij − T)/n (the familiar (p − t)/n for rows on the simplex). Other losses
    get value and ∂L/∂z from torch autograd on the (n, C) logits only. Either way ∇J = xᵀ G plus
    the penalty's gradient, the products through numpy's BLAS into preallocated buffers (on the
    AMD benchmark machine 1.5-3× faster than torch's MKL matrix-vector kernels).
    """

    def __init__(
        self,
        h: NDArray[np.float64],
        mean: NDArray[np.float64] | None,
        targets: NDArray[np.float64],
        loss_fn: LossFn,
        l2: float,
        reduced: bool,
        state: StepState,
    ) -> None:
        n, d = h.shape
        p = d + 1
        self.h = h
        self.ht = h.T
        self.mean = mean
        self.n_classes = targets.shape[1]
        self.binary = self.n_classes == 2
        self.k = 1.0 if reduced else 2.0
        self.basis = _sum_zero_basis(self.n_classes) if reduced and not self.binary else None
        self.n_free = self.n_classes if self.basis is None else self.n_classes - 1
        self.l2 = l2
        self.loss_fn = loss_fn
        self.state = state
        self.closed_form = loss_fn is xent
        if self.binary:
            self.size = p
            self.penalty = l2 * self.k * self.k / 2.0  # ∇ of the penalty: penalty·θ_w
            self.lin = np.empty(n)
            self.buf_a = np.empty(n)
            self.buf_b = np.empty(n)
            # Rows of H per block; one block unless numpy's BLAS runs on one thread: threaded,
            # every product pays a wake-up (a 2-thread fit at d = 768 took 6× longer in blocks).
            self.block = n
            if _numpy_blas_single_threaded():
                self.block = max(64, _BLOCK_BYTES // (8 * max(d, 1)))
            self.acc = np.empty(d)
            self.part = np.empty(d)
        else:
            self.size = p * self.n_free
            self.penalty = l2
            self.lin = np.empty((n, self.n_free))
            self.z = self.lin if self.basis is None else np.empty((n, self.n_classes))
            self.buf_a = np.empty((n, self.n_classes))
            self.buf_c = self.buf_a if self.basis is None else np.empty((n, self.n_free))
            self.buf_b = np.empty((n, 1))
        self.n_weights = self.size - (1 if self.binary else self.n_free)
        self.grad = np.empty(self.size)
        self.set_targets(targets)

    def set_targets(self, targets: NDArray[np.float64]) -> None:
        self.targets = np.ascontiguousarray(targets, dtype=np.float64)
        self.targets_torch = torch.from_numpy(self.targets)
        if self.binary:
            self.t1 = np.ascontiguousarray(self.targets[:, 1])
            self.tsum = self.targets.sum(axis=1)
        else:
            self.tsum = self.targets.sum(axis=1, keepdims=True)

    def params(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """[W; b], (p, C), at θ (a new array)."""
        if self.binary:
            half = (0.5 * self.k) * theta
            return np.stack([-half, half], axis=1)
        theta_m = theta.reshape(-1, self.n_free)
        return theta_m.copy() if self.basis is None else theta_m @ self.basis.T

    def logits(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        """(n, C) logits z at θ (a new array)."""
        params = self.params(theta)
        return self._affine(self.h @ params[:-1], params[:-1], params[-1])

    def _affine(
        self, hw: NDArray[np.float64], w: NDArray[np.float64], b: NDArray[np.float64] | float
    ) -> NDArray[np.float64]:
        """(H − μ)w + b given hw = Hw, in place."""
        hw += b if self.mean is None else b - self.mean @ w
        return hw

    def _backward(self, g: NDArray[np.float64], out: NDArray[np.float64]) -> None:
        """out = xᵀg = [Hᵀg − μ 1ᵀg; 1ᵀg] for g of shape (n,) or (n, c), out (p,) or (p, c)."""
        np.dot(self.ht, g, out=out[:-1])
        out[-1] = g.sum(axis=0)
        if self.mean is not None:
            out[:-1] -= np.multiply.outer(self.mean, out[-1])

    def _binary_xent(self, theta: NDArray[np.float64], grad: NDArray[np.float64]) -> float:
        """Binary ``xent``: returns J's loss part and writes its gradient into ``grad``.

        One pass over H from memory: for each block of rows (about 4 MiB, ``_BLOCK_BYTES``, so it
        is still in cache for the second product), δ_b = k(H_b w + b − μᵀw),
        g_b = (t_0 + t_1)σ(δ_b) − t_1 and Σ_b H_bᵀ g_b. Two whole matrix-vector products read an
        H larger than the cache twice: at n = 4000, d = 768 (25 MB) a fit took 57 ms instead of
        48 ms (1 MiB blocks: 47 ms, but 11.5 instead of 11.0 ms at d = 384).
        """
        n, d = self.h.shape
        w = theta[:-1]
        offset = float(theta[-1]) - (0.0 if self.mean is None else float(self.mean @ w))
        delta, g, acc, part = self.lin, self.buf_a, self.acc, self.part
        acc.fill(0.0)
        for start in range(0, n, self.block):
            stop = start + self.block
            h_b, delta_b, g_b = self.h[start:stop], delta[start:stop], g[start:stop]
            np.dot(h_b, w, out=delta_b)
            delta_b += offset
            if self.k != 1.0:
                delta_b *= self.k
            expit(delta_b, out=g_b)
            g_b *= self.tsum[start:stop]
            g_b -= self.t1[start:stop]
            np.dot(h_b.T, g_b, out=part)
            acc += part
        scale = self.k / n
        np.multiply(acc, scale, out=grad[:-1])
        grad[-1] = scale * float(g.sum())
        if self.mean is not None:
            grad[:-1] -= grad[-1] * self.mean
        # L = mean_i[(t_i0 + t_i1)·softplus(δ_i) − t_i1·δ_i], softplus(δ) = −log σ(−δ).
        sp = self.buf_b
        np.negative(delta, out=sp)
        log_expit(sp, out=sp)
        return -(float(np.dot(self.tsum, sp)) + float(np.dot(self.t1, delta))) / n

    def __call__(self, theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        n = self.h.shape[0]
        grad = self.grad
        if self.binary and self.closed_form:
            value = self._binary_xent(theta, grad)
        elif self.binary:
            delta = self.lin
            np.dot(self.h, theta[:-1], out=delta)
            self._affine(delta, theta[:-1], float(theta[-1]))
            if self.k != 1.0:
                delta *= self.k
            g = self.buf_a
            half = torch.from_numpy(0.5 * delta)
            logits = torch.stack([-half, half], dim=1).requires_grad_(True)
            loss = self.loss_fn(logits, self.targets_torch, self.state)
            (g_logits,) = torch.autograd.grad(loss, logits)
            value = float(loss.detach())
            gz = g_logits.numpy()
            np.subtract(gz[:, 1], gz[:, 0], out=g)
            g *= 0.5 * self.k
            self._backward(g, grad)
        else:
            c = self.n_free
            z = self.z
            theta_m = theta.reshape(-1, c)
            np.dot(self.h, theta_m[:-1], out=self.lin)
            self._affine(self.lin, theta_m[:-1], theta_m[-1])
            if self.basis is not None:
                np.dot(self.lin, self.basis.T, out=z)
            G = self.buf_a
            if self.closed_form:
                zmax = z.max(axis=1, keepdims=True)
                np.subtract(z, zmax, out=G)
                np.exp(G, out=G)
                s = self.buf_b
                np.sum(G, axis=1, keepdims=True, out=s)
                G /= s
                np.log(s, out=s)
                s += zmax  # log-sum-exp of each row
                value = (float(np.vdot(self.tsum, s)) - float(np.vdot(self.targets, z))) / n
                G *= self.tsum
                G -= self.targets
                G *= 1.0 / n
            else:
                logits = torch.from_numpy(z).requires_grad_(True)
                loss = self.loss_fn(logits, self.targets_torch, self.state)
                (g_logits,) = torch.autograd.grad(loss, logits)
                value = float(loss.detach())
                G[...] = g_logits.numpy()
            if self.basis is not None:
                np.dot(G, self.basis, out=self.buf_c)
            self._backward(self.buf_c, grad.reshape(-1, c))
        weights = theta[: self.n_weights]  # θ without the intercept entries (the last row)
        grad[: self.n_weights] += self.penalty * weights
        value += 0.5 * self.penalty * float(np.dot(weights, weights))
        # The optimiser may keep the gradient it is handed; the buffer is reused on the next call.
        return value, grad.copy()


class SoftmaxHead:
    """Linear softmax head on frozen features, trained on soft labels (THEORY.md section 6).

    Parameters (stored as given, checked in :meth:`fit`):

    - ``loss``: a name in :data:`w2sg.heads.losses.LOSSES` or a function with the same signature
      that depends on the logits only through softmax(z) (binary fits rely on it);
    - ``l2``: the penalty (l2/2)‖W‖_F² added to the mean loss (intercept not penalised);
    - ``optimizer``: ``"lbfgs"`` — full-batch L-BFGS-B (``scipy.optimize.minimize``, float64,
      the objective and its gradient in numpy), with scikit-learn's stopping rules for its lbfgs
      solver: stop when the largest absolute gradient entry is at most ``tol`` (``gtol``), when the
      objective changes by at most 64 machine epsilons relative to max(|J|, 1) (``ftol``), or after
      ``max_iter`` iterations (then a ``RuntimeWarning``); at most 50 line-search steps.
      The gradient is with respect to the optimised vector (see :class:`_Objective`): for C = 2
      scikit-learn's (w, b) = (W_{:,1} − W_{:,0}, b_1 − b_0), so ``tol`` means what it means for
      ``LogisticRegression(solver="lbfgs")``; for C ≥ 3 the coordinates of [W; b] in an
      orthonormal basis of the matrices with rows summing to zero (where the minimiser lies), the
      same Euclidean gradient norm as for [W; b] itself. The objective is the mean loss, as for
      scikit-learn, whose iterates these are (same iteration counts in the benchmark); scipy's
      curvature test is relative, so the summed-loss scaling torch's L-BFGS needed is not.
      scipy's own BLAS (used by L-BFGS-B for its small vectors) runs on one thread meanwhile
      (:func:`_scipy_blas_single_thread`); the products with H keep numpy's threads.
      Deterministic.
      ``"adam"`` — mini-batch Adam (float64) for ``epochs`` epochs of batches of ``batch_size``,
      learning rate ``lr``, the batch order drawn from a ``torch.Generator`` seeded with ``seed``;
    - ``center``: subtract the training column mean μ from the features (also at prediction).

    Learned state: ``coef_`` (d, C) = W, ``intercept_`` (C,) = b, ``mean_`` (d,) = μ,
    ``n_iter_`` (L-BFGS iterations, summed over the stages of a ``logconf`` fit, or Adam epochs
    completed).

    ``logconf`` (Burns et al.'s auxiliary confidence loss, :func:`w2sg.heads.losses.logconf`)
    mixes the weak labels with the student's own hardened predictions, u = (1 − α)t + α ĥ(p), with
    α warmed up from 0 to alpha_max over the first 20% of the Adam steps. Under Adam every step
    sees the current ĥ. Full-batch L-BFGS cannot minimise it as one objective: its value and
    gradient move with ĥ, and from W = 0, where every prediction is the same, ĥ is degenerate (the
    quantile rule used to harden every row to one class, and α = alpha_max from the start then
    pulled the fit into constant predictions). So ``lbfgs`` mirrors the warm-up instead:

    1. solve the warm-up's start, α = 0, i.e. ``xent`` on the weak labels, from W = 0;
    2. at α = alpha_max, alternate u ← (1 − α)t + α ĥ(p(W)) and W ← argmin of ``xent`` on the
       fixed targets u (warm-started from the previous W; each a smooth convex problem, solved
       with the tolerances above), until ĥ no longer changes, at most 50 rounds, and within the
       ``max_iter`` iterations in total. The result is a fixed point of the Adam update's
       condition: the gradient of ``xent`` on u(W) is zero at W itself. If ĥ still changes after
       the last round, a ``RuntimeWarning`` says so.

    The losses of the reference codebases (``logconf_oai``, ``logconf_eai``, ``product``,
    ``window``, ``entropy``; :mod:`w2sg.heads.losses`) need steps: under ``adam`` a step is one
    mini-batch update, ``StepState(step, epochs·⌈n/batch_size⌉, batch_size)`` with ``step``
    counting the updates already made (0-based), so their warm-ups run over the whole schedule
    (openai's fraction) or its first updates (EleutherAI's ``warmup_steps``), and the loss's
    ``start`` hook is called with all the targets before the first update. Full-batch ``lbfgs``
    has no steps and would minimise a moving objective: it refuses them with a ``W2SGError``.

    Per-epoch callbacks: ``fit(..., epoch_callback=f)`` calls ``f(epoch, head)`` with ``coef_`` and
    ``intercept_`` set to the current parameters. Only ``adam`` gives one call per epoch
    (epoch = 1..epochs); ``lbfgs`` solves one full-batch problem and calls ``f(1, head)`` once, at
    the end.

    Results are bit-identical for the same inputs, parameters, ``seed`` and thread counts (torch
    and numpy BLAS).
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
        if self.optimizer == "lbfgs" and needs_steps(loss_fn):
            raise W2SGError(
                f"loss {getattr(loss_fn, 'name', loss_fn)!r} depends on the training step and the "
                "student's own predictions, which full-batch L-BFGS does not have; use "
                "optimizer 'adam' (--optimizer adam)"
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
        sums: list[NDArray[np.float64]] = []
        h = _as_float_matrix(H, "H", column_sums=sums)
        n, d = h.shape
        if n < 2:
            raise W2SGError(f"H needs at least 2 rows to fit a head; got {n}")
        t = self._check_targets(targets, n)

        # μ = the column means (np.mean's own computation: pairwise sums divided by n).
        self.mean_ = sums[0] / n if self.center else np.zeros(d)
        mean = self.mean_ if self.center else None

        if self.optimizer == "lbfgs":
            self._fit_lbfgs(h, mean, t, loss_fn)
            if epoch_callback is not None:
                epoch_callback(1, self)
        else:
            self._fit_adam(h, mean, t, loss_fn, epoch_callback)
        return self

    def _store(self, objective: _Objective, theta: NDArray[np.float64]) -> None:
        params = objective.params(theta)
        self.coef_ = params[:-1].copy()
        self.intercept_ = params[-1].copy()

    def _lbfgs(
        self, objective: _Objective, theta: NDArray[np.float64], max_iter: int
    ) -> tuple[NDArray[np.float64], int]:
        """Run L-BFGS-B from θ for at most ``max_iter`` iterations; (θ*, iterations)."""
        with _scipy_blas_single_thread():
            result = minimize(
                objective,
                theta,
                method="L-BFGS-B",
                jac=True,
                options={"maxiter": max_iter, "gtol": self.tol, "ftol": _FTOL, "maxls": _MAXLS},
            )
        return np.asarray(result.x, dtype=np.float64), int(result.nit)

    def _warn_max_iter(self) -> None:
        warnings.warn(
            f"L-BFGS stopped at max_iter={self.max_iter} before reaching tol={self.tol:g}; "
            "raise max_iter or tol",
            RuntimeWarning,
            stacklevel=4,
        )

    def _fit_lbfgs(
        self,
        h: NDArray[np.float64],
        mean: NDArray[np.float64] | None,
        t: NDArray[np.float64],
        loss_fn: LossFn,
    ) -> None:
        full = StepState(step=1, total_steps=1)
        if loss_fn is not logconf:
            objective = _Objective(h, mean, t, loss_fn, self.l2, True, full)
            theta, self.n_iter_ = self._lbfgs(objective, np.zeros(objective.size), self.max_iter)
            self._store(objective, theta)
            if self.n_iter_ >= self.max_iter:
                self._warn_max_iter()
            return

        # logconf: the warm-up's start (α = 0, plain xent), then fixed-point rounds at alpha_max.
        objective = _Objective(h, mean, t, xent, self.l2, True, full)
        theta, used = self._lbfgs(objective, np.zeros(objective.size), self.max_iter)
        targets_t = torch.from_numpy(t)
        previous: NDArray[np.float64] | None = None
        settled = False
        for _ in range(_LOGCONF_MAX_ROUNDS):
            if used >= self.max_iter:
                break
            logits = torch.from_numpy(objective.logits(theta))
            mixed = logconf_targets(logits, targets_t, full).numpy()
            if previous is not None and np.array_equal(mixed, previous):
                settled = True
                break
            objective.set_targets(mixed)
            theta, its = self._lbfgs(objective, theta, self.max_iter - used)
            used += its
            previous = mixed
        self.n_iter_ = used
        self._store(objective, theta)
        if used >= self.max_iter:
            self._warn_max_iter()
        elif not settled:
            warnings.warn(
                f"logconf: the hardened labels still changed after {_LOGCONF_MAX_ROUNDS} "
                "fixed-point rounds; the result is the last round's solution",
                RuntimeWarning,
                stacklevel=3,
            )

    def _fit_adam(
        self,
        h: NDArray[np.float64],
        mean: NDArray[np.float64] | None,
        t: NDArray[np.float64],
        loss_fn: LossFn,
        epoch_callback: EpochCallback | None,
    ) -> None:
        n, d = h.shape
        p = d + 1
        n_classes = t.shape[1]
        # Binary: θ = [W; b]_{:,1} with [W; b] = [−θ, θ]; multiclass θ = [W; b] (see _Objective).
        theta = torch.zeros(p if n_classes == 2 else p * n_classes, dtype=torch.float64)
        theta_np = theta.numpy()  # shares memory: Adam updates it in place
        opt = torch.optim.Adam([theta], lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed)
        total_steps = self.epochs * math.ceil(n / self.batch_size)
        batch_size = min(self.batch_size, n)
        begin = getattr(loss_fn, "start", None)
        if begin is not None:
            begin(torch.from_numpy(t))
        step = 0
        for epoch in range(1, self.epochs + 1):
            order = torch.randperm(n, generator=generator).numpy()
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                objective = _Objective(
                    h[idx],
                    mean,
                    t[idx],
                    loss_fn,
                    self.l2,
                    False,
                    StepState(step, total_steps, batch_size),
                )
                _, grad = objective(theta_np)
                theta.grad = torch.from_numpy(grad)
                opt.step()
                step += 1
            self._store(objective, theta_np)
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
