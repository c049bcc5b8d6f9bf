"""Generalization, calibration and misfit bounds of THEORY.md section 5 (following [Y] and [C]).

Pure functions: arrays in, JSON-able dicts out. Each two-sided bound is reported as

    {measured, weak, lower, upper, radius, holds, slack}

with ``measured`` the student's value, ``weak`` the teacher's, ``lower = weak − radius`` and
``upper = weak + radius``; ``holds`` says lower ≤ measured ≤ upper up to a tolerance of 1e-12 times
max(1, |lower|, |upper|) (float rounding), and ``slack = min(measured − lower, upper − measured)``
(negative when the bound fails).

Clipping (THEORY.md section 5, parameter ``eps``): probabilities are clipped to [ε, 1] and each row
is renormalised, exactly as :func:`w2sg.metrics.mean_kl` does, and *every* quantity of a bound — the
measured losses, γ_p, TV, d_fwd, d_rev, the smooth calibration errors — is computed from those
clipped rows, so the bounds hold exactly for what is reported. d_fwd and d_rev are those of
:func:`w2sg.metrics.d_fwd` / :func:`w2sg.metrics.d_rev`, evaluated in a form that stays accurate
when the two models nearly agree (see ``_divergence``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from w2sg.errors import W2SGError
from w2sg.metrics import (
    accuracy,
    clip_count,
    disagreement,
    ece,
    mean_kl,
    smooth_calibration_error,
    smooth_calibration_error_ovr,
)
from w2sg.metrics import misfit_sq as _mean_sq_diff
from w2sg.metrics.agreement import check_eps, clip_rows

__all__ = [
    "bounds_block",
    "calibration_bound",
    "disagreement_bound",
    "generalization_bound",
    "misfit_kl",
    "misfit_sq",
]

#: Relative tolerance of every ``holds`` flag (float rounding only; the bounds are exact).
TOL = 1e-12

_ECE_NOTE = "binned ECE is not continuous in the predictor; no bound is claimed"


# -- helpers ------------------------------------------------------------------------------------
def _proba(p: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise W2SGError(
            f"{name} must be an (n, C) probability array with C >= 2 (binary: C = 2), "
            f"got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise W2SGError(f"{name} contains NaN or inf; check the model's predictions")
    return arr


def _pair(weak: ArrayLike, student: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    w = _proba(weak, "weak_proba")
    s = _proba(student, "student_proba")
    if w.shape != s.shape:
        raise W2SGError(
            f"weak_proba has shape {w.shape} but student_proba has {s.shape}; pass probabilities "
            "of the same examples and classes"
        )
    return w, s


def _others(x: np.ndarray) -> np.ndarray:
    """Σ_{k≠j} x_k for every column j, as prefix + suffix sums (no S − x_j cancellation)."""
    zero = np.zeros((x.shape[0], 1))
    before = np.concatenate([zero, np.cumsum(x[:, :-1], axis=1)], axis=1)
    after = np.concatenate([np.cumsum(x[:, :0:-1], axis=1)[:, ::-1], zero], axis=1)
    return np.asarray(before + after)


def _clipped_difference(p: np.ndarray, q: np.ndarray, eps: float) -> np.ndarray:
    """p̂ − q̂ of the clipped, renormalised rows, accurate relative to the difference itself.

    With c = clip(p, ε, 1), S = Σ_k c_k (likewise d, T for q), Δ = c − d and sums over the other
    columns c̄_j = Σ_{k≠j} c_k, Δ̄_j = Σ_{k≠j} Δ_k:

        p̂_j − q̂_j = c_j/S − d_j/T = (Δ_j c̄_j − c_j Δ̄_j) / (S T).

    Subtracting the rounded rows instead (``clip_rows(p) − clip_rows(q)``) loses every difference
    below the spacing of the large entries (2.2e-16 near 1): on a saturated row clipped at ε = 1e-8,
    the change of the clipped entry (~1e-17) survives but its counterpart near 1 rounds to 0, so
    ½ Σ |p̂ − q̂| came out half the true TV and the TV bound (radius TV/γ_p) failed by 1.3e-10.
    Δ is exact whenever p ≈ q (Sterbenz) and no term above cancels against a probability, so the
    error is about 1e-16 relative to |Δ| · c̄ (1 − p̂_j would lose 1e-16 / c̄_j instead).
    """
    c, d = np.clip(p, eps, 1.0), np.clip(q, eps, 1.0)
    delta = c - d
    scale = c.sum(axis=1, keepdims=True) * d.sum(axis=1, keepdims=True)
    return np.asarray((delta * _others(c) - c * _others(delta)) / scale)


def _one_plus_x_log(x: np.ndarray) -> np.ndarray:
    """f(x) = (1 + x) log(1 + x) − x ≥ 0, accurate relative to f for every x > −1.

    Near 0 the two terms cancel to x²/2 (relative rounding 1e-16/|x|), so |x| < 1e-2 takes the
    series f(x) = Σ_{k≥2} (−x)^k / (k (k − 1)), truncated after k = 12 (error < 1e-19 · f).
    """
    out = (1.0 + x) * np.log1p(x) - x
    small = np.abs(x) < 1e-2
    if small.any():
        xs = x[small]
        series = np.zeros_like(xs)
        for k in range(12, 1, -1):  # Horner from the smallest term
            series += (-xs) ** k / (k * (k - 1))
        out[small] = series
    return np.maximum(out, 0.0)


def _divergence(q_hat: np.ndarray, diff: np.ndarray) -> float:
    """L(P, Q) = mean_x Σ_c [p_c log(p_c / q_c) − p_c + q_c] on clipped, renormalised rows.

    Equal to :func:`w2sg.metrics.mean_kl` (Σ_c (p_c − q_c) = 0 per row), but every term is
    non-negative: with ``diff`` = p − q from :func:`_clipped_difference` and x = diff / q, the term
    is q · f(x), f(x) = (1 + x) log(1 + x) − x (:func:`_one_plus_x_log`), so the result is accurate
    relative to its size when P ≈ Q. The naive Σ p log(p/q) has an absolute rounding error of
    about 1e-16, which the Pinsker radius sqrt(d/2) would amplify to 1e-8 — far above the bounds'
    tolerance.
    """
    terms = q_hat * _one_plus_x_log(diff / q_hat)
    return float(np.mean(terms.sum(axis=1)))


def _truth_table(truth: ArrayLike, n: int, n_classes: int, name: str = "truth") -> np.ndarray:
    """Truth as (n, C) rows: one-hot for integer labels (n,), as given for probabilities (n, C)."""
    t = np.asarray(truth)
    if t.ndim == 1:
        if t.shape[0] != n:
            raise W2SGError(f"{name} has {t.shape[0]} rows but the predictions have {n}")
        if t.dtype.kind == "f" and not np.all(t == np.round(t)):
            raise W2SGError(
                f"{name} (n,) must hold integer class labels; pass probabilities as (n, C)"
            )
        labels = t.astype(np.int64)
        if labels.min() < 0 or labels.max() >= n_classes:
            raise W2SGError(f"{name} labels must be in 0..{n_classes - 1}")
        return np.eye(n_classes)[labels]
    if t.ndim == 2 and t.shape == (n, n_classes):
        table = np.asarray(t, dtype=np.float64)
        if not np.isfinite(table).all() or table.min() < 0.0:
            raise W2SGError(f"{name} probabilities must be finite and non-negative")
        return table
    raise W2SGError(
        f"{name} must be labels (n,) or probabilities (n, C) = ({n}, {n_classes}), got {t.shape}"
    )


def _two_sided(measured: float, weak: float, radius: float) -> dict[str, Any]:
    lower, upper = weak - radius, weak + radius
    tol = TOL * max(1.0, abs(lower), abs(upper))
    return {
        "measured": float(measured),
        "weak": float(weak),
        "lower": float(lower),
        "upper": float(upper),
        "radius": float(radius),
        "holds": bool(lower - tol <= measured <= upper + tol),
        "slack": float(min(measured - lower, upper - measured)),
    }


# -- section 5.1 --------------------------------------------------------------------------------
def generalization_bound(
    truth: ArrayLike,
    weak_proba: ArrayLike,
    student_proba: ArrayLike,
    *,
    eps: float = 1e-6,
    gamma_p: float | None = None,
) -> dict[str, Any]:
    """Two-sided bound on the student's loss L(F*, F_sw) around the teacher's (THEORY §5.1).

    With L(P, Q) = mean_x KL(P(x) ‖ Q(x)) (the cross-entropy for one-hot truth, up to the clipping
    of the truth's zeros) and γ_p ≤ every clipped probability of F_w and F_sw:

        |L(F*, F_sw) − L(F*, F_w)| ≤ (1/γ_p) · mean_x TV(F_w(x), F_sw(x))     (``tv``)
                                   ≤ (1/γ_p) · sqrt(d / 2),  d ∈ {d_fwd, d_rev} (``pinsker_*``)

    because L(F*,F_sw) − L(F*,F_w) = mean_x Σ_j F*_j log(F_w,j / F_sw,j), |log a − log b| ≤
    |a − b| / min(a, b), every |F_w,j − F_sw,j| ≤ TV, Pinsker TV ≤ sqrt(KL/2) (both directions) and
    Jensen. ``truth``: labels (n,) or probabilities (n, C). ``gamma_p``: None measures it (the
    smallest clipped probability of either model); a given floor must not exceed that minimum.

    Returns ``{measured, weak, gamma_p, gamma_p_source, eps, clipped: {weak, student}, tv_mean,
    d_fwd, d_rev, tv: {...}, pinsker_fwd: {...}, pinsker_rev: {...}, holds}``.
    """
    check_eps(eps)
    w, s = _pair(weak_proba, student_proba)
    table = _truth_table(truth, *w.shape)
    w_hat, s_hat = clip_rows(w, eps), clip_rows(s, eps)
    measured_min = float(min(w_hat.min(), s_hat.min()))
    if gamma_p is None:
        gamma, source = measured_min, "measured"
    else:
        if not 0.0 < gamma_p <= measured_min:
            raise W2SGError(
                f"gamma_p={gamma_p:g} must be in (0, {measured_min:g}], the smallest clipped "
                "probability of the two models; lower it or leave it unset to measure it"
            )
        gamma, source = float(gamma_p), "given"
    loss_student = mean_kl(table, s, eps)
    loss_weak = mean_kl(table, w, eps)
    diff = _clipped_difference(w, s, eps)
    tv = float(np.mean(0.5 * np.abs(diff).sum(axis=1)))
    fwd, rev = _divergence(s_hat, diff), _divergence(w_hat, -diff)
    forms = {
        "tv": _two_sided(loss_student, loss_weak, tv / gamma),
        "pinsker_fwd": _two_sided(loss_student, loss_weak, np.sqrt(fwd / 2) / gamma),
        "pinsker_rev": _two_sided(loss_student, loss_weak, np.sqrt(rev / 2) / gamma),
    }
    return {
        "measured": float(loss_student),
        "weak": float(loss_weak),
        "gamma_p": gamma,
        "gamma_p_source": source,
        "eps": float(eps),
        "clipped": {"weak": clip_count(w, eps), "student": clip_count(s, eps)},
        "tv_mean": float(tv),
        "d_fwd": float(fwd),
        "d_rev": float(rev),
        **forms,
        "holds": all(f["holds"] for f in forms.values()),
    }


def disagreement_bound(
    truth_labels: ArrayLike, weak_proba: ArrayLike, student_proba: ArrayLike
) -> dict[str, Any]:
    """0-1 error bound: |Err(F_sw) − Err(F_w)| ≤ P(argmax F_sw ≠ argmax F_w) (THEORY §5.1).

    Per example |1[ŷ_sw ≠ y] − 1[ŷ_w ≠ y]| ≤ 1[ŷ_sw ≠ ŷ_w]; average. Ties go to the lowest class
    index. Returns ``{measured, weak, lower, upper, radius, holds, slack}`` (radius = disagreement).
    """
    w, s = _pair(weak_proba, student_proba)
    labels = np.asarray(truth_labels)
    err_student = 1.0 - accuracy(labels, s)
    err_weak = 1.0 - accuracy(labels, w)
    return _two_sided(err_student, err_weak, disagreement(w, s))


# -- section 5.2 --------------------------------------------------------------------------------
def calibration_bound(
    truth: ArrayLike, weak_proba: ArrayLike, student_proba: ArrayLike, *, eps: float = 1e-6
) -> dict[str, Any]:
    """Smooth-calibration bound |smCE(F_sw) − smCE(F_w)| ≤ 2·mean|F_sw − F_w| ≤ sqrt(2 d) (§5.2).

    smCE(f) = sup { mean_x w(f(x)) (y − f(x)) : w 1-Lipschitz, |w| ≤ 1 } (exact LP,
    :func:`w2sg.metrics.smooth_calibration_error`). Split E[w(f)(y−f)] − E[w(g)(y−g)] =
    E[(w(f)−w(g))(y−f)] + E[w(g)(g−f)], each at most E|f − g|; then |f_c − g_c| ≤ TV ≤ sqrt(KL/2)
    (Pinsker, either direction) and Jensen. Forms: ``mean_abs`` (radius 2·mean|F_sw − F_w|),
    ``pinsker_fwd`` / ``pinsker_rev`` (radius sqrt(2 d) with d = d_fwd / d_rev).

    Binary (C = 2): one entry, the positive class. Multiclass: one-vs-rest, one entry per class.
    ``truth``: labels (n,) or probabilities (n, C) (y may be a probability; the proof only needs
    y ∈ [0, 1]). Predictions are clipped and renormalised at ``eps`` first (module docstring), so
    smCE is that of the clipped predictor (within about C·ε of the unclipped one).
    Binned ECE (of the same clipped rows) of both models is reported under ``ece``; no bound is
    claimed for it.
    """
    check_eps(eps)
    w, s = _pair(weak_proba, student_proba)
    table = _truth_table(truth, *w.shape)
    w_hat, s_hat = clip_rows(w, eps), clip_rows(s, eps)
    diff = _clipped_difference(w, s, eps)
    fwd, rev = _divergence(s_hat, diff), _divergence(w_hat, -diff)
    if w.shape[1] == 2:
        classes = [1]
        sm_w = [smooth_calibration_error(table[:, 1], w_hat[:, 1])]
        sm_s = [smooth_calibration_error(table[:, 1], s_hat[:, 1])]
    else:
        classes = list(range(w.shape[1]))
        sm_w = smooth_calibration_error_ovr(table, w_hat)
        sm_s = smooth_calibration_error_ovr(table, s_hat)
    per_class = []
    for k, c in enumerate(classes):
        mean_abs = float(np.mean(np.abs(s_hat[:, c] - w_hat[:, c])))
        forms = {
            "mean_abs": _two_sided(sm_s[k], sm_w[k], 2.0 * mean_abs),
            "pinsker_fwd": _two_sided(sm_s[k], sm_w[k], float(np.sqrt(2.0 * fwd))),
            "pinsker_rev": _two_sided(sm_s[k], sm_w[k], float(np.sqrt(2.0 * rev))),
        }
        per_class.append(
            {
                "class": c,
                "measured": float(sm_s[k]),
                "weak": float(sm_w[k]),
                **forms,
                "holds": all(f["holds"] for f in forms.values()),
            }
        )
    return {
        "mode": "binary" if w.shape[1] == 2 else "one_vs_rest",
        "eps": float(eps),
        "d_fwd": float(fwd),
        "d_rev": float(rev),
        "per_class": per_class,
        "holds": all(entry["holds"] for entry in per_class),
        "ece": {"weak": ece(table, w_hat), "student": ece(table, s_hat), "note": _ECE_NOTE},
    }


# -- sections 5.3 and 5.4 -----------------------------------------------------------------------
#: Relative residual under which the ceiling is taken to reproduce the truth on D̂ (realizable).
REALIZABLE_TOL = 1e-6

OUT_OF_SAMPLE = (
    "out of sample: the inequality is guaranteed only on D̂ (w2s_train), where the student was "
    "fitted; on test it is a measurement, and a failure is not a violation"
)


def _misfit_entry(
    err_weak: float,
    err_w2s: float,
    misfit: float,
    applies: bool | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    slack = err_weak - misfit - err_w2s
    tol = TOL * max(1.0, abs(err_weak), abs(misfit))
    return {
        "err_weak": float(err_weak),
        "err_w2s": float(err_w2s),
        "misfit": float(misfit),
        "holds": bool(slack >= -tol),
        "slack": float(slack),
        "applies": applies,
        "reason": reason,
    }


def misfit_premise(
    split: str, residual: float | None, scale: float = 1.0, *, loss: str = "squared"
) -> tuple[bool | None, str | None]:
    """Whether the misfit inequality is guaranteed for one entry, and why not.

    The inequality (THEORY §5.3-5.4) holds on the sample where the student was fitted when the
    student is the projection of the weak labels onto a convex class that contains the truth F*.
    ``split`` ``test``: never guaranteed (out of sample). ``train``: guaranteed iff the truth is
    realizable, judged by the ceiling — the same head fitted to F* on D̂ — reproducing it:
    ``residual`` = its training loss against F* (mean squared error, or mean KL for ``loss`` =
    ``"kl"``) ≤ :data:`REALIZABLE_TOL` · max(1, ``scale``). ``residual`` None: not checked.
    Returns ``(applies, reason)``; ``reason`` is None when the premise holds.
    """
    if split != "train":
        return False, OUT_OF_SAMPLE
    if residual is None or not np.isfinite(residual):
        return None, "premise not checked: no ceiling fit on D̂ was given"
    if residual <= REALIZABLE_TOL * max(1.0, scale):
        return True, None
    what = "mean KL(F* ‖ F_ceiling)" if loss == "kl" else "mean (F* − F_ceiling)²"
    return False, (
        f"premise not met: the truth is not in the head's class on D̂ (the ceiling, fitted to it, "
        f"leaves {what} = {residual:.3g}); the inequality assumes a realizable convex class "
        "(THEORY §5.3), so a failure is not a violation"
    )


def misfit_sq(
    truth: ArrayLike,
    weak_pred: ArrayLike,
    student_pred: ArrayLike,
    *,
    split: str | None = None,
    ceiling_pred: ArrayLike | None = None,
) -> dict[str, Any]:
    """Squared-loss misfit inequality of THEORY §5.3 ([C]).

        err_w2s = mean (F* − F_sw)²  ≤  err_weak − misfit = mean (F* − F_w)² − mean (F_sw − F_w)².

    Exact on the training sample when F_sw is the least-squares projection of F_w onto a convex
    class containing F* (equality for an unconstrained linear class); on other samples it is a
    measurement. Arrays (n,) or (n, C) (squared differences summed over columns).
    ``slack`` = err_weak − misfit − err_w2s; ``holds`` = slack ≥ −1e-12·max(1, err_weak, misfit).
    With ``split`` (``train``/``test``), ``applies`` and ``reason`` say whether the inequality is
    guaranteed there (:func:`misfit_premise`; ``ceiling_pred``: the ceiling's outputs on the same
    rows, fitted to ``truth``); without it both are None.
    """
    t = np.asarray(truth, dtype=np.float64)
    applies: bool | None = None
    reason: str | None = None
    if split is not None:
        residual = None if ceiling_pred is None else _mean_sq_diff(t, ceiling_pred)
        applies, reason = misfit_premise(split, residual, float(np.mean(t**2)))
    return _misfit_entry(
        _mean_sq_diff(t, weak_pred),
        _mean_sq_diff(t, student_pred),
        _mean_sq_diff(student_pred, weak_pred),
        applies,
        reason,
    )


def misfit_kl(
    truth_proba: ArrayLike,
    weak_proba: ArrayLike,
    student_proba: ArrayLike,
    eps: float = 1e-6,
    *,
    split: str | None = None,
    ceiling_proba: ArrayLike | None = None,
) -> dict[str, Any]:
    """KL misfit inequality of THEORY §5.4 ([Y] extending [C]).

        err_w2s = L(F*, F_sw)  ≤  err_weak − misfit = L(F*, F_w) − L(F_sw, F_w).

    Exact on the training sample when F_sw = argmin over a convex class of L(F, F_w) (reverse KL,
    e.g. :class:`w2sg.heads.convex.ConvexKLHead`) and F* is in the class: first-order optimality
    gives Σ (F* − F_sw) log(F_sw / F_w) ≥ 0, and that sum is the slack. A sigmoid/softmax head or
    forward-KL training carries no such guarantee. ``truth_proba``: labels (n,) or (n, C).
    Clipping at ``eps`` as in :func:`w2sg.metrics.mean_kl`. ``split``/``ceiling_proba``: as in
    :func:`misfit_sq`, with the ceiling's mean KL(F* ‖ F_ceiling) as the realizability residual;
    one-hot truth never is in the class (its probabilities lie in [ε, 1 − ε]).
    """
    check_eps(eps)
    w, s = _pair(weak_proba, student_proba)
    table = _truth_table(truth_proba, w.shape[0], w.shape[1], "truth_proba")
    applies: bool | None = None
    reason: str | None = None
    if split is not None:
        one_hot = bool(np.all((table == 0.0) | (table == 1.0)))
        if split == "train" and one_hot:
            applies, reason = (
                False,
                (
                    "premise not met: one-hot truth is outside the convex class (probabilities "
                    "in [ε, 1 − ε]), so the inequality is not guaranteed even on D̂; a failure is "
                    "not a violation"
                ),
            )
        else:
            residual = None if ceiling_proba is None else mean_kl(table, ceiling_proba, eps)
            applies, reason = misfit_premise(split, residual, loss="kl")
    return _misfit_entry(
        mean_kl(table, w, eps), mean_kl(table, s, eps), mean_kl(s, w, eps), applies, reason
    )


# -- the block the pipeline stores --------------------------------------------------------------
def _as_table(x: ArrayLike, name: str) -> np.ndarray:
    """(n, C) predictions; a (n,) positive-class probability becomes (n, 2)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return np.column_stack([1.0 - arr, arr])
    return _proba(arr, name)


def _sq_values(x: ArrayLike) -> np.ndarray:
    """Values of the squared-loss check: (n,) as given, column 1 of (n, 2), all columns else."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 2:
        return arr[:, 1]
    return arr


def bounds_block(
    *,
    task: str,
    head: str,
    loss: str,
    truth_hat: ArrayLike,
    truth_test: ArrayLike,
    weak_hat: ArrayLike,
    weak_test: ArrayLike,
    w2s_hat: ArrayLike,
    w2s_test: ArrayLike,
    eps: float = 1e-6,
    gamma_p: float | None = None,
    ceiling_hat: ArrayLike | None = None,
    ceiling_test: ArrayLike | None = None,
) -> dict[str, Any]:
    """All section-5 checks of one run, as a JSON-able dict (stored in ``RunResult.bounds``).

    Inputs: truth, weak and w2s predictions on D̂ (``*_hat``, the w2s training sample) and on the
    test split. ``classification``: truth = labels (n,), predictions (n, C). ``probability``:
    truth = positive-class probability (n,) or (n, 2), predictions (n, 2) (or (n,) positive class).
    ``regression``: truth and predictions (n,); only the squared misfit applies.

    Keys: ``generalization``, ``calibration`` and ``disagreement`` (on test; the probability task
    scores 0-1 error against the most likely true class); ``misfit_kl`` when ``head ==
    "convex_kl"`` and ``misfit_sq`` when ``head in ("ridge", "least_squares")`` (each
    ``{train, test}``: exact on D̂ when the truth is in the head's class, a measurement on test;
    a failure is reported with holds=False, never hidden); ``notes``. For ``misfit_sq`` pass the
    head's raw outputs (before any clipping into a probability): the inequality is exact for the
    values the head was fitted to. Classification: (n, C) outputs of a head fitted to one-hot
    targets (column 1 when C = 2), or (n,) outputs of a binary head fitted to ±1 targets.
    ``ceiling_hat``/``ceiling_test``: the ceiling's outputs (same form as the student's); with
    them each misfit entry says whether its premise holds (``applies``, ``reason``:
    :func:`misfit_premise`); without them the test side is still marked out of sample.
    """
    notes: list[str] = []
    block: dict[str, Any] = {}
    if task == "regression":
        notes.append(
            "regression: the generalization, disagreement and calibration bounds need "
            "probabilities; only the squared misfit applies"
        )
    elif task in ("classification", "probability"):
        weak_t = _as_table(weak_test, "weak_test")
        w2s_t = _as_table(w2s_test, "w2s_test")
        truth_t: np.ndarray = (
            _as_table(truth_test, "truth_test")
            if task == "probability"
            else _truth_table(truth_test, weak_t.shape[0], weak_t.shape[1], "truth_test")
        )
        labels_t = np.argmax(truth_t, axis=1)
        block["generalization"] = generalization_bound(
            truth_t, weak_t, w2s_t, eps=eps, gamma_p=gamma_p
        )
        block["calibration"] = calibration_bound(truth_t, weak_t, w2s_t, eps=eps)
        block["disagreement"] = disagreement_bound(labels_t, weak_t, w2s_t)
        if task == "probability":
            notes.append("probability task: 0-1 error is scored against the most likely true class")
    else:
        raise W2SGError(f"unknown task {task!r}; use classification, regression or probability")

    if head == "convex_kl":
        if task == "regression":
            raise W2SGError(
                "head 'convex_kl' predicts probabilities; use --head ridge for regression"
            )
        sides = {}
        for split, truth, weak, w2s, ceiling in (
            ("train", truth_hat, weak_hat, w2s_hat, ceiling_hat),
            ("test", truth_test, weak_test, w2s_test, ceiling_test),
        ):
            w_tab, s_tab = _as_table(weak, "weak"), _as_table(w2s, "w2s")
            t_tab = (
                _as_table(truth, "truth")
                if task == "probability"
                else _truth_table(truth, *w_tab.shape)
            )
            c_tab = None if ceiling is None else _as_table(ceiling, "ceiling")
            sides[split] = misfit_kl(t_tab, w_tab, s_tab, eps, split=split, ceiling_proba=c_tab)
        block["misfit_kl"] = sides
        if task == "classification":
            notes.append(
                "misfit_kl: one-hot truth is outside the convex class (probabilities in "
                "[ε, 1 − ε]), so the inequality is not guaranteed even on D̂"
            )
    elif head in ("ridge", "least_squares"):
        sides = {}
        for split, truth, weak, w2s, ceiling in (
            ("train", truth_hat, weak_hat, w2s_hat, ceiling_hat),
            ("test", truth_test, weak_test, w2s_test, ceiling_test),
        ):
            w_vals, s_vals = _sq_values(weak), _sq_values(w2s)
            c_vals = None if ceiling is None else _sq_values(ceiling)
            n_cols = np.asarray(weak).shape[1] if np.ndim(weak) == 2 else 2
            if task == "classification":
                t_vals = _sq_values(_truth_table(truth, len(w_vals), n_cols))
                if np.ndim(weak) == 1:
                    t_vals = 2.0 * t_vals - 1.0  # a binary head fitted to ±1 targets
            else:
                t_vals = _sq_values(np.asarray(truth, dtype=np.float64))
            sides[split] = misfit_sq(t_vals, w_vals, s_vals, split=split, ceiling_pred=c_vals)
        block["misfit_sq"] = sides
    elif head == "softmax":
        notes.append(
            "head 'softmax': a sigmoid/softmax of a linear head is not a convex class, so no "
            "misfit guarantee (THEORY §5.3-5.4) applies; use --head convex_kl for the exact KL "
            "misfit check"
        )
        if loss == "xent":
            notes.append(
                "loss 'xent' trains forward KL (teacher first): forward-KL training carries no KL "
                "misfit guarantee; d_fwd and d_rev are both reported"
            )
    else:
        raise W2SGError(
            f"unknown head {head!r}; use one of ridge, softmax, convex_kl, least_squares"
        )
    block["notes"] = notes
    return block
