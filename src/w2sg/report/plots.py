"""The report's figures: matplotlib (Agg) PNGs, one function per figure.

Each function takes plain data, writes one PNG atomically and returns its path. None of them reads
files or the results store; :mod:`w2sg.report.build` gathers the data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.atomic import atomic_path

_DPI = 100


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _plt()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=_DPI, format="png")
    finally:
        plt.close(fig)
    return path


def _finite(*arrays: np.ndarray) -> np.ndarray:
    keep = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        keep &= np.isfinite(a)
    return keep


def metric_scatter(
    path: Path,
    title: str,
    weak: Sequence[str],
    metrics: dict[str, np.ndarray],
    error: np.ndarray,
    spearman: dict[str, float],
    error_label: str = "w2s test error",
) -> Path:
    """One panel per representation metric: metric (x) vs weak-to-strong error (y), one point per
    weak model, a least-squares trend line and Spearman's ρ in the panel title."""
    plt = _plt()
    names = list(metrics)
    fig, axes = plt.subplots(
        1, len(names), figsize=(4.4 * len(names), 3.8), constrained_layout=True, squeeze=False
    )
    for ax, name in zip(axes[0], names, strict=True):
        x, y = np.asarray(metrics[name], float), np.asarray(error, float)
        keep = _finite(x, y)
        ax.scatter(x[keep], y[keep], s=28, color="C0", zorder=3)
        if len(weak) <= 12:
            for xi, yi, label in zip(x[keep], y[keep], np.asarray(weak)[keep], strict=True):
                ax.annotate(str(label), (xi, yi), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")  # fmt: skip
        if keep.sum() >= 2 and np.ptp(x[keep]) > 0:
            slope, intercept = np.polyfit(x[keep], y[keep], 1)
            grid = np.linspace(x[keep].min(), x[keep].max(), 50)
            ax.plot(grid, slope * grid + intercept, "--", color="C3", label="trend")
        rho = spearman.get(name, math.nan)
        rho_text = "n/a" if rho is None or not math.isfinite(rho) else f"{rho:+.2f}"
        ax.set_title(f"{name}  (Spearman ρ = {rho_text})", fontsize=10)
        ax.set_xlabel(name)
        ax.set_ylabel(error_label)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def pgr_bars(
    path: Path,
    title: str,
    labels: Sequence[str],
    values: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    points: Sequence[Sequence[float]] | None = None,
) -> Path:
    """PGR per weak → strong pair with its bootstrap interval (NaN PGRs are drawn as 'n/a').

    ``points``: per bar, values drawn as dots over it (each seed's PGR), with a legend entry."""
    plt = _plt()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * n + 2.5), 4.0), constrained_layout=True)
    draw_pgr(ax, labels, values, ci_low, ci_high, points)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def draw_pgr(
    ax: Any,
    labels: Sequence[str],
    values: np.ndarray,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    points: Sequence[Sequence[float]] | None = None,
) -> None:
    """Draw PGR bars with their bootstrap intervals on ``ax`` (NaN PGRs as grey 'n/a' bars);
    ``points``: per bar, values drawn as dots over it (each seed's PGR), with a legend entry."""
    n = len(labels)
    v = np.asarray(values, float)
    lo, hi = np.asarray(ci_low, float), np.asarray(ci_high, float)
    pos = np.arange(n)
    shown = np.where(np.isfinite(v), v, 0.0)
    err = np.vstack([np.where(np.isfinite(lo), shown - lo, 0.0),
                     np.where(np.isfinite(hi), hi - shown, 0.0)])  # fmt: skip
    err = np.clip(err, 0.0, None)
    colors = ["C0" if np.isfinite(x) else "0.8" for x in v]
    ax.bar(pos, shown, color=colors, yerr=err, capsize=3)
    for p, x in zip(pos, v, strict=True):
        if not np.isfinite(x):
            ax.text(p, 0.0, "n/a", ha="center", va="bottom", fontsize=8)
    if points is not None:
        xs = [p for p, vals in zip(pos, points, strict=True) for _ in vals]
        ys = [float(y) for vals in points for y in vals]
        keep = np.isfinite(ys)
        ax.scatter(np.asarray(xs)[keep], np.asarray(ys)[keep], s=14, color="k", zorder=3,
                   label="one seed")  # fmt: skip
        ax.legend(fontsize=7)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xticks(pos)
    ax.set_xticklabels(labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center",
                       fontsize=8)  # fmt: skip
    ax.set_ylabel("PGR (test)")
    ax.grid(axis="y", alpha=0.3)


def reliability(
    path: Path,
    title: str,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    n_bins: int = 10,
) -> Path:
    """Reliability diagram: for each model, the mean top-label confidence (x) against the observed
    frequency of the predicted class (y) in equal-width bins; ``(proba, labels)`` with integer
    labels, or with a probability task's soft truth in [0, 1] (then the truth's probability of
    the predicted class)."""
    bins = {name: bins_of(proba, truth, n_bins) for name, (proba, truth) in curves.items()}
    return reliability_from_bins(path, title, bins)


def reliability_from_bins(path: Path, title: str, bins: dict[str, dict[str, list[float]]]) -> Path:
    """The reliability diagram of bin sums (:func:`w2sg.metrics.reliability_bins`: ``count``,
    ``confidence``, ``correct`` per bin; n_bins + 1 entries, the last for confidence 1), with the
    confidence histogram below."""
    plt = _plt()
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.2, 5.6), height_ratios=(3, 1), sharex=True, constrained_layout=True
    )
    draw_reliability(ax, bins, hist=hist)
    ax.set_title(title, fontsize=11)
    return _save(fig, path)


def draw_reliability(
    ax: Any, bins: dict[str, dict[str, list[float]]], *, hist: Any = None, color: int = 0
) -> None:
    """Draw the reliability curves of ``bins`` (model name → bin sums) on ``ax``: mean confidence
    (x) against observed frequency (y) per non-empty bin, with the diagonal; the confidence
    histogram on ``hist`` when given. ``color`` is the index of the first model's colour."""
    ax.plot([0, 1], [0, 1], ":", color="0.4", label="perfect calibration")
    for i, (name, b) in enumerate(bins.items(), start=color):
        counts = np.asarray(b["count"], float)
        used = counts > 0
        mean_conf = np.asarray(b["confidence"], float)[used] / counts[used]
        freq = np.asarray(b["correct"], float)[used] / counts[used]
        ax.plot(mean_conf, freq, "o-", color=f"C{i}", label=name, ms=4)
        if hist is not None:
            shown = counts[:-1].copy()
            shown[-1] += counts[-1]  # confidence exactly 1 drawn in the top bin
            edges = np.linspace(0.0, 1.0, len(shown) + 1)
            hist.stairs(shown, edges, color=f"C{i}", label=name)
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if hist is not None:
        hist.set_xlabel("predicted confidence")
        hist.set_ylabel("count")
    else:
        ax.set_xlabel("predicted confidence")


def bins_of(proba: np.ndarray, truth: np.ndarray, n_bins: int = 10) -> dict[str, list[float]]:
    """Bin sums of one model's predictions (:func:`w2sg.metrics.reliability_bins`): top-label
    confidence against correctness, which for a probability task's soft truth t is the truth's
    probability of the predicted class (the quantity its ECE uses)."""
    from w2sg.metrics import reliability_bins

    p = np.asarray(proba, float)
    t = np.asarray(truth)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if t.dtype.kind == "f" and not np.all(t == np.round(t)) and t.ndim == 1:
        t = np.column_stack([1.0 - t, t])  # soft binary truth as class probabilities
    elif t.ndim == 1:
        t = t.astype(int)
    return reliability_bins(t, p, n_bins)


def bounds_vs_measured(path: Path, title: str, checks: list[dict[str, Any]]) -> Path:
    """Left: two-sided bounds, the bound on |L(student) − L(weak)| (x) against the measured
    |difference| (y), log-log. Right: misfit inequalities, err_weak − misfit (x) against err_w2s
    (y). A check holds on or below the diagonal. Checks that apply: filled circles, violations red
    crosses; checks that do not apply (premise not met, out of sample, or unchecked): hollow
    circles whatever their outcome. Each marker kind drawn has a legend entry."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    families = sorted({c["family"] for c in checks if c["kind"] == "two_sided"})
    ax = axes[0]
    tiny = 1e-8
    pts_all = []
    for i, fam in enumerate(families):
        sel = [c for c in checks if c["kind"] == "two_sided" and c["family"] == fam]
        x = np.array([max(c["bound"], tiny) for c in sel])
        y = np.array([max(c["measured"], tiny) for c in sel])
        pts_all.append(np.r_[x, y])
        _check_markers(ax, x, y, sel, f"C{i}", fam)
    if pts_all:
        allv = np.concatenate(pts_all)
        lim = (allv.min() / 2, allv.max() * 2)
        ax.plot(lim, lim, "k:", lw=1, label="bound = measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no two-sided bounds", ha="center", va="center")
    ax.set_xlabel("bound on |student − weak|")
    ax.set_ylabel("measured |student − weak|")
    ax.set_title("generalization, calibration, disagreement", fontsize=10)
    ax.grid(alpha=0.3)

    ax = axes[1]
    sel = [c for c in checks if c["kind"] == "misfit"]
    if sel:
        for i, split in enumerate(sorted({c["split"] for c in sel})):
            part = [c for c in sel if c["split"] == split]
            x = np.array([c["bound"] for c in part])
            y = np.array([c["measured"] for c in part])
            _check_markers(ax, x, y, part, f"C{i}", f"misfit ({split})")
        vals = np.array([[c["bound"], c["measured"]] for c in sel]).ravel()
        lim = (min(0.0, vals.min()), vals.max() * 1.1 + 1e-12)
        ax.plot(lim, lim, "k:", lw=1, label="bound = measured")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no misfit inequality\n(ridge, least_squares, convex_kl heads)",
                ha="center", va="center")  # fmt: skip
    ax.set_xlabel("err_weak − misfit")
    ax.set_ylabel("err_w2s")
    ax.set_title("misfit (gain ≥ misfit)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _check_markers(
    ax: Any, x: np.ndarray, y: np.ndarray, checks: list[dict[str, Any]], color: str, label: str
) -> None:
    """Filled circles (apply, hold), red crosses (apply, violated), hollow circles (do not
    apply); one legend entry per kind drawn, the last two shared across families."""
    applies = np.array([c.get("applies", True) is True for c in checks], dtype=bool)
    ok = np.array([bool(c["holds"]) for c in checks], dtype=bool)
    drawn = {h.get_label() for h in ax.collections}
    if (applies & ok).any():
        ax.scatter(x[applies & ok], y[applies & ok], s=22, color=color, label=label, alpha=0.8)
    bad = applies & ~ok
    if bad.any():
        name = "violated (applies, does not hold)"
        ax.scatter(x[bad], y[bad], s=40, color="red", marker="x",
                   label=name if name not in drawn else "_nolegend_")  # fmt: skip
    if (~applies).any():
        name = f"{label}: does not apply"
        ax.scatter(x[~applies], y[~applies], s=26, facecolors="none", edgecolors=color,
                   label=name if name not in drawn else "_nolegend_")  # fmt: skip


def gap_scatter(
    path: Path,
    title: str,
    predicted: np.ndarray,
    measured: np.ndarray,
    groups: Sequence[str],
) -> Path:
    """Predicted gap G (x) against the measured PredGap (y), coloured by group, with y = x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.6), constrained_layout=True)
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    keep = _finite(p, m)
    g = np.asarray(groups)
    for i, name in enumerate(sorted(set(g[keep]))):
        sel = keep & (g == name)
        ax.scatter(p[sel], m[sel], s=22, color=f"C{i % 10}", label=name, alpha=0.85)
    if keep.any():
        hi = float(max(p[keep].max(), m[keep].max())) * 1.05 + 1e-12
        ax.plot([0, hi], [0, hi], "k:", lw=1, label="measured = predicted")
        ax.set_xlim(0, hi)
        ax.set_ylim(0, hi)
        if len(set(g[keep])) <= 12:
            ax.legend(fontsize=7)
    ax.set_xlabel("predicted gap G = ‖P_s(I − P_w)ŷ‖²/n̂")
    ax.set_ylabel("measured gap mean (f_w2s − f_sc)² on test")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def gap_bars(path: Path, title: str, values: dict[str, float]) -> Path:
    """Bars of the theory block's gap quantities of one run."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.8), constrained_layout=True)
    names = list(values)
    v = np.array([values[k] for k in names], float)
    ax.bar(range(len(names)), np.where(np.isfinite(v), v, 0.0), color=[f"C{i}" for i in
           range(len(names))])  # fmt: skip
    for i, x in enumerate(v):
        ax.text(i, x if np.isfinite(x) else 0.0, "n/a" if not np.isfinite(x) else f"{x:.4g}",
                ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def epoch_curves(path: Path, title: str, columns: dict[str, np.ndarray]) -> Path:
    """The over-optimisation figure from the columns of ``epochs.csv``: the same drawing as
    ``w2sg epochs``' ``epochs.png`` (:func:`w2sg.experiments.epochs.plot_epochs`)."""
    from w2sg.experiments.epochs import plot_epochs

    return plot_epochs(path, columns, title)


def rank_bars(path: Path, ranking: dict[str, Any]) -> Path:
    """Horizontal bars of a ranking (``RankResult.to_dict()``): the ranking metric per candidate,
    best at the top, with each candidate's k's."""
    plt = _plt()
    rows = ranking["candidates"]
    by = ranking["by"]
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.32 * len(rows)), constrained_layout=True)
    names = [r["name"] for r in rows][::-1]
    v = np.array([float(r[by]) for r in rows][::-1])
    ax.barh(range(len(rows)), v, color="C0")
    for i, r in enumerate(rows[::-1]):
        ax.text(v[i], i, f" {v[i]:.3f}  k_w {r['k_weak']} k_s {r['k_strong']}", va="center",
                fontsize=7)  # fmt: skip
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlim(0, float(np.nanmax(v)) * 1.35 if len(v) and np.nanmax(v) > 0 else 1.0)
    fixed_role = "weak" if ranking["role"] == "strong" else "strong"
    ax.set_xlabel(f"{by} (smaller is better)")
    ax.set_title(f"{ranking['role']} candidates for {fixed_role} = {ranking['fixed']}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def rank_vs_error(
    path: Path,
    points: dict[str, Any],
    spearman: float | None = None,
    ensembles: dict[str, Any] | None = None,
) -> Path:
    """A rank study's figure (:func:`w2sg.experiments.studies.rank_points`): the ranker's value
    per weak model against the student's realised error (± one SE), the top-ranked model and the
    best one marked; ``spearman`` (of ranker and error over the weak models) in the title.
    ``ensembles``: ensemble weak sides of the same group (``weak``, ``value``, ``error``), drawn
    as diamonds; they are not candidates of the ranking."""
    plt = _plt()
    x = np.array(points["value"], float)
    y = np.array(points["error"], float)
    se = np.nan_to_num(np.array(points["se"], float))
    keep = _finite(x, y)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    ax.errorbar(x[keep], y[keep], yerr=se[keep], fmt="o", color="C0", ms=4, alpha=0.8,
                label="weak models (± SE over seeds)")  # fmt: skip
    if keep.any():
        idx = np.flatnonzero(keep)
        top = idx[np.argmin(x[idx])]
        best = idx[np.argmin(y[idx])]
        ax.scatter([x[top]], [y[top]], s=140, facecolors="none", edgecolors="C3", linewidths=2,
                   label=f"top-ranked: {points['weak'][top]}")  # fmt: skip
        ax.scatter([x[best]], [y[best]], marker="*", s=160, color="C2",
                   label=f"best: {points['weak'][best]}")  # fmt: skip
        for i in idx:
            ax.annotate(points["weak"][i], (x[i], y[i]), fontsize=6, alpha=0.7,
                        xytext=(3, 2), textcoords="offset points")  # fmt: skip
    if ensembles is not None:
        ex = np.array(ensembles["value"], float)
        ey = np.array(ensembles["error"], float)
        ek = _finite(ex, ey)
        if ek.any():
            ax.scatter(ex[ek], ey[ek], marker="D", s=30, color="C1", zorder=3,
                       label="ensembles (not ranked)")  # fmt: skip
            for xi, yi, name in zip(ex[ek], ey[ek], np.asarray(ensembles["weak"])[ek], strict=True):
                ax.annotate(str(name).split("](")[0] + "]", (xi, yi), fontsize=6, color="C1",
                            xytext=(3, -8), textcoords="offset points")  # fmt: skip
    ax.set_xlabel(f"{points['ranker']} (label-free rank: smaller first)")
    ax.set_ylabel("student's realised test error")
    title = points["title"]
    if spearman is not None:
        rho = f"{spearman:+.2f}" if math.isfinite(spearman) else "n/a"
        title += f"\nSpearman ρ({points['ranker']}, realised error) = {rho}"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def s2s_rounds(
    path: Path,
    title: str,
    curves: Mapping[str, Sequence[float]],
    score: str,
    references: dict[str, float] | None = None,
) -> Path:
    """Strong-to-strong rounds: the headline test score of the w2s student (round 0) and of each
    later round, one line per weak side; ``references`` (e.g. the ceiling) as dotted lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9.0, 4.2), constrained_layout=True)
    for i, (name, values) in enumerate(curves.items()):
        v = np.asarray(values, float)
        ax.plot(np.arange(len(v)), v, "o-", color=f"C{i % 10}", ms=4, label=name)
    for j, (name, value) in enumerate((references or {}).items()):
        if math.isfinite(value):
            ax.axhline(value, ls=":", color=f"{0.2 + 0.3 * j:.1f}", lw=1, label=name)
    n = max((len(v) for v in curves.values()), default=1)
    ax.set_xticks(range(n))
    ax.set_xticklabels(["w2s (0)", *(str(r) for r in range(1, n))])
    ax.set_xlabel("strong-to-strong round")
    ax.set_ylabel(f"test {score}")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, path)


def ensemble_weights(path: Path, title: str, weights: dict[str, dict[str, float]]) -> Path:
    """Grouped bars of the weights several combination rules gave the same weak models
    (``{rule: {member: weight}}``)."""
    plt = _plt()
    rules = list(weights)
    members = sorted({m for w in weights.values() for m in w})
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(members) * len(rules) / 2), 4.0),
                           constrained_layout=True)  # fmt: skip
    width = 0.8 / max(len(rules), 1)
    for j, rule in enumerate(rules):
        v = [weights[rule].get(m, 0.0) for m in members]
        ax.bar(np.arange(len(members)) + j * width, v, width, label=rule, color=f"C{j}")
    ax.set_xticks(np.arange(len(members)) + 0.4 - width / 2)
    ax.set_xticklabels(members, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("weight")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
