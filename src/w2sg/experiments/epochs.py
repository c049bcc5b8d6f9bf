"""Over-optimisation study: every section-5 quantity of the student after each epoch of a schedule.

THEORY.md section 5.1 says the student's loss lies within (1/γ_p)·mean TV(F_w, F_sw) of its
teacher's, so training longer on the imitation objective (d → 0) pulls the student onto its teacher
and removes any gain. :func:`epoch_study` makes that visible: it trains the weak model once, then
one Adam run of the softmax student on the weak labels, and records after each epoch of the
schedule

- the student's test cross-entropy, accuracy and 0-1 error, and the weak model's;
- d_fwd, d_rev, mean TV and disagreement between teacher and student on test (and d_fwd, d_rev on
  D̂, the imitation objective the student is optimising);
- binned ECE and smooth calibration error of the student;
- both sides of each bound: generalization (``tv``, ``pinsker_fwd``, ``pinsker_rev``), 0-1 error
  (disagreement) and smooth calibration (``mean_abs``, ``pinsker_fwd``, ``pinsker_rev``).

Multiclass calibration columns average the one-vs-rest entries over classes (an average of valid
two-sided bounds is a valid two-sided bound for the averaged smCE).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2sg import atomic
from w2sg import metrics as M
from w2sg.config import RunConfig
from w2sg.data.splits import content_ids, make_splits, splits_from_names
from w2sg.errors import W2SGError
from w2sg.heads.softmax import SoftmaxHead
from w2sg.pipeline import prepare_labels
from w2sg.theory.bounds import calibration_bound, disagreement_bound, generalization_bound

__all__ = [
    "DEFAULT_EPOCHS",
    "EpochStudy",
    "epoch_study",
    "epochs_title",
    "parse_epochs",
    "plot_epochs",
]

DEFAULT_EPOCHS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)

_GEN_FORMS = ("tv", "pinsker_fwd", "pinsker_rev")
_CAL_FORMS = ("mean_abs", "pinsker_fwd", "pinsker_rev")


def parse_epochs(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → (1, 2, 4): positive, strictly increasing integers."""
    try:
        epochs = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise W2SGError(
            f"--epochs takes comma-separated integers like 1,2,4,8, got {text!r}"
        ) from None
    _check_epochs(epochs)
    return epochs


def _check_epochs(epochs: Sequence[int]) -> None:
    if (
        not epochs
        or any(e < 1 for e in epochs)
        or any(b <= a for a, b in zip(epochs, epochs[1:], strict=False))
    ):
        raise W2SGError(
            f"the epoch schedule must be positive and strictly increasing, got {list(epochs)}"
        )


@dataclass
class EpochStudy:
    """Result of :func:`epoch_study`: one row per scheduled epoch, plus what produced it."""

    rows: list[dict[str, Any]]
    config: RunConfig
    epochs: tuple[int, ...]
    sizes: dict[str, int]
    notes: list[str] = field(default_factory=list)

    @property
    def table(self) -> list[dict[str, Any]]:
        """The rows (one dict per scheduled epoch; keys described in :func:`epoch_study`)."""
        return self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epochs": list(self.epochs),
            "sizes": dict(self.sizes),
            "notes": list(self.notes),
            "rows": self.rows,
        }

    def to_csv(self, path: str | Path) -> Path:
        """Write the table as CSV (one row per epoch, a header of the row keys)."""
        path = Path(path)
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(self.rows[0]))
        writer.writeheader()
        writer.writerows(self.rows)
        atomic.write_text(path, buffer.getvalue())
        return path

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        atomic.write_json(path, self.to_dict())
        return path

    def plot(self, path: str | Path) -> Path:
        """The over-optimisation figure of this study (:func:`plot_epochs`)."""
        col = {key: np.array([row[key] for row in self.rows], dtype=float) for key in self.rows[0]}
        return plot_epochs(path, col, epochs_title(self.config.loss, self.config.train))


def epochs_title(loss: str | None, train: str | None = "probe") -> str:
    """The title of the over-optimisation figure (``loss`` None: unknown)."""
    how = "Adam" if train in (None, "probe") else f"fine-tuned, {train}"
    detail = f"loss {loss}, {how}" if loss else how
    return f"Over-optimisation of the w2s student ({detail})"


def plot_epochs(path: str | Path, col: dict[str, np.ndarray], title: str) -> Path:
    """Four panels against epochs (log x): 0-1 error, loss L(F*, ·), the generalization bound's
    radii next to the measured gap and the divergences (log y), and smooth calibration error.
    Bound sides are dashed; the weak model is grey. ``col``: the columns of ``epochs.csv`` (the
    keys of :func:`epoch_study`'s rows); a missing column is left out of its panel. The one
    drawing of ``w2sg epochs`` (``epochs.png``) and of the report's over-optimization section.
    Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = col["epoch"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)

    def line(ax: Any, key: str, *args: Any, **kw: Any) -> None:
        if key in col:
            ax.plot(x, col[key], *args, **kw)

    ax = axes[0, 0]
    line(ax, "w2s_error", "o-", label="w2s error")
    line(ax, "weak_error", "-", color="grey", label="weak error")
    line(ax, "disagreement", "s-", label="disagreement")
    line(ax, "err_lower", "--", color="C3", label="bound: weak ± disagreement")
    line(ax, "err_upper", "--", color="C3")
    ax.set_ylabel("0-1 error (test)")
    ax.set_ylim(bottom=0)

    ax = axes[0, 1]
    line(ax, "gen_measured", "o-", label="w2s L(F*, F_sw)")
    line(ax, "gen_weak", "-", color="grey", label="weak L(F*, F_w)")
    line(ax, "gen_tv_lower", "--", color="C3", label="bound: weak ± TV/γ_p")
    line(ax, "gen_tv_upper", "--", color="C3")
    if {"gen_measured", "gen_weak"} <= set(col):
        values = np.r_[col["gen_measured"], col["gen_weak"]]
        pad = 0.5 * float(np.ptp(values)) + 0.05 * float(np.max(np.abs(values)))
        ax.set_ylim(float(values.min()) - pad, float(values.max()) + pad)
        if "gen_tv_upper" in col:
            radius = col["gen_tv_upper"] - col["gen_weak"]
            if float(radius.min()) > pad + float(np.ptp(values)):
                ax.text(
                    0.02,
                    0.03,
                    f"TV bound radius ≥ {float(radius.min()):.3g}: its sides lie outside the axes",
                    transform=ax.transAxes,
                    fontsize=8,
                )
    ax.set_ylabel("L(F*, ·) = cross-entropy (test)")

    ax = axes[1, 0]
    if {"gen_measured", "gen_weak"} <= set(col):
        gap = np.abs(col["gen_measured"] - col["gen_weak"])
        ax.plot(x, gap, "o-", color="k", label="|L(F*,F_sw) − L(F*,F_w)|")
        for form, style in zip(_GEN_FORMS, ("--", ":", "-."), strict=True):
            if f"gen_{form}_upper" in col:
                ax.plot(x, col[f"gen_{form}_upper"] - col["gen_weak"], style,
                        label=f"radius {form}")  # fmt: skip
    line(ax, "d_fwd", "^-", color="C4", label="d_fwd (test)")
    line(ax, "d_rev", "v-", color="C5", label="d_rev (test)")
    line(ax, "d_fwd_train", "^:", color="C4", label="d_fwd (w2s_train)")
    ax.set_yscale("log")
    ax.set_ylabel("generalization gap, bound radii, divergences")

    ax = axes[1, 1]
    line(ax, "smooth_ce", "o-", label="w2s smCE")
    line(ax, "weak_smooth_ce", "-", color="grey", label="weak smCE")
    line(ax, "ece", "x-", label="w2s ECE (no bound)")
    line(ax, "cal_mean_abs_lower", "--", color="C3", label="bound: weak ± 2 mean|Δ|")
    line(ax, "cal_mean_abs_upper", "--", color="C3")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("calibration error (test)")

    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("epochs of the w2s student")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    path = Path(path)
    try:
        with atomic.atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return path


def _row(
    epoch: int,
    truth: np.ndarray,
    labels: np.ndarray,
    weak: np.ndarray,
    student: np.ndarray,
    weak_hat: np.ndarray,
    student_hat: np.ndarray,
    eps: float,
) -> dict[str, Any]:
    gen = generalization_bound(truth, weak, student, eps=eps)
    err = disagreement_bound(labels, weak, student)
    cal = calibration_bound(truth, weak, student, eps=eps)
    row: dict[str, Any] = {
        "epoch": epoch,
        "w2s_ce": M.cross_entropy(truth, student, eps),
        "w2s_accuracy": M.accuracy(labels, student),
        "w2s_error": err["measured"],
        "weak_ce": M.cross_entropy(truth, weak, eps),
        "weak_error": err["weak"],
        "disagreement": err["radius"],
        "tv": gen["tv_mean"],
        "d_fwd": gen["d_fwd"],
        "d_rev": gen["d_rev"],
        "d_fwd_train": M.d_fwd(weak_hat, student_hat, eps),
        "d_rev_train": M.d_rev(weak_hat, student_hat, eps),
        "ece": cal["ece"]["student"],
        "weak_ece": cal["ece"]["weak"],
        "gamma_p": gen["gamma_p"],
        "gen_measured": gen["measured"],
        "gen_weak": gen["weak"],
    }
    for form in _GEN_FORMS:
        row[f"gen_{form}_lower"] = gen[form]["lower"]
        row[f"gen_{form}_upper"] = gen[form]["upper"]
    row["gen_holds"] = gen["holds"]
    row["err_lower"] = err["lower"]
    row["err_upper"] = err["upper"]
    row["err_holds"] = err["holds"]
    per_class = cal["per_class"]
    row["smooth_ce"] = float(np.mean([c["measured"] for c in per_class]))
    row["weak_smooth_ce"] = float(np.mean([c["weak"] for c in per_class]))
    for form in _CAL_FORMS:
        row[f"cal_{form}_lower"] = float(np.mean([c[form]["lower"] for c in per_class]))
        row[f"cal_{form}_upper"] = float(np.mean([c[form]["upper"] for c in per_class]))
    row["cal_holds"] = cal["holds"]
    return row


def epoch_study(
    weak_repr: np.ndarray,
    strong_repr: np.ndarray,
    labels: np.ndarray,
    config: RunConfig,
    epochs: Sequence[int] = DEFAULT_EPOCHS,
    *,
    ids: np.ndarray | None = None,
    given_splits: Sequence[str] | None = None,
    student: Any = None,
) -> EpochStudy:
    """Train weak → weak labels on D̂ → Adam student, recording section-5 quantities per epoch.

    Splits and labels as in :func:`w2sg.pipeline.run_pipeline` (same ids, fractions and seed, so
    the same rows; ``ids`` default to content hashes of the representation rows and the label;
    ``given_splits`` as there: a data file's own split of each row).
    The weak model is a :class:`~w2sg.heads.softmax.SoftmaxHead` (L-BFGS, ``xent``, l2 =
    ``config.weak_ridge``) on weak_train with true labels; its soft predictions on w2s_train
    are the student's targets. The student is a SoftmaxHead with ``config.loss``, l2 =
    ``config.strong_ridge``, Adam with ``config.lr`` and ``config.batch_size``, trained for
    max(epochs) epochs; after each epoch in ``epochs`` the test quantities listed in the module
    docstring are recorded (``config.eps`` clips probabilities). Tasks: classification and
    probability.

    Row keys: ``epoch``, ``w2s_ce``, ``w2s_accuracy``, ``w2s_error``, ``weak_ce``, ``weak_error``,
    ``disagreement``, ``tv``, ``d_fwd``, ``d_rev``, ``d_fwd_train``, ``d_rev_train``, ``ece``,
    ``weak_ece``, ``gamma_p``, ``gen_measured``, ``gen_weak``, ``gen_{tv,pinsker_fwd,pinsker_rev}_
    {lower,upper}``, ``gen_holds``, ``err_lower``, ``err_upper``, ``err_holds``, ``smooth_ce``,
    ``weak_smooth_ce``, ``cal_{mean_abs,pinsker_fwd,pinsker_rev}_{lower,upper}``, ``cal_holds``.

    ``student``: a learner source (:class:`~w2sg.heads.finetune.FinetuneSource`) to fine-tune the
    strong model itself instead of training a head on ``strong_repr``: the real over-optimisation
    experiment of Yao et al. It trains for max(epochs) epochs of ``config.finetune`` (the last
    epoch is kept; no early selection) and the rows are recorded after the scheduled epochs.
    """
    config.validate()
    epochs = tuple(int(e) for e in epochs)
    _check_epochs(epochs)
    if config.task not in ("classification", "probability"):
        raise W2SGError(
            f"the epoch study trains a softmax student and needs probabilities; --task "
            f"{config.task} is not supported (use classification or probability)"
        )
    if config.head != "softmax" and student is None:
        raise W2SGError(
            f"the epoch study trains a softmax student with Adam; got head {config.head!r} "
            "(use head='softmax')"
        )
    weak = np.asarray(weak_repr, dtype=np.float64)
    strong = np.asarray(strong_repr, dtype=np.float64)
    labels = np.asarray(labels)
    for name, arr in (("--weak", weak), ("--strong", strong)):
        if arr.ndim != 2 or len(arr) != len(labels):
            raise W2SGError(
                f"{name} must be a 2-D array with one row per label ({len(labels)} rows), "
                f"got shape {arr.shape}"
            )
    lab = prepare_labels(labels, config.task)
    if ids is None:
        ids = content_ids(weak, strong, lab.values)
    elif len(ids) != len(labels):
        raise W2SGError(f"ids has {len(ids)} rows but there are {len(labels)} labels")
    stratify = lab.values if config.task == "classification" else None
    if given_splits is not None:
        splits = splits_from_names(
            given_splits, ids, config.fractions, seed=config.seed, stratify=stratify
        )
    else:
        splits = make_splits(ids, config.fractions, seed=config.seed, stratify=stratify)
    tr, hat, te = splits["weak_train"], splits["w2s_train"], splits["test"]
    for name, idx in (("weak_train", tr), ("w2s_train", hat), ("test", te)):
        if len(idx) < 2:
            raise W2SGError(
                f"split {name} has {len(idx)} examples; give more rows or change --fractions"
            )

    weak_head = SoftmaxHead(
        loss="xent",
        l2=config.weak_ridge,
        optimizer="lbfgs",
        max_iter=config.max_iter,
        seed=config.seed,
    ).fit(weak[tr], lab.targets(tr))
    weak_hat = weak_head.predict_proba(weak[hat])
    weak_test = weak_head.predict_proba(weak[te])
    truth_test = lab.targets(te)
    labels_test = np.argmax(truth_test, axis=1)
    schedule = set(epochs)
    rows: list[dict[str, Any]] = []

    def record(
        epoch: int, predict: Callable[[np.ndarray], np.ndarray], test: Any, hat: Any
    ) -> None:
        """One row of the study after ``epoch`` (scheduled epochs only); ``predict`` maps the
        student's inputs ``test``/``hat`` (representation rows or row indices) to probabilities."""
        if epoch in schedule:
            rows.append(
                _row(epoch, truth_test, labels_test, weak_test, predict(test), weak_hat,
                     predict(hat), config.eps)
            )  # fmt: skip

    notes = []
    if student is None:
        SoftmaxHead(
            loss=config.loss,
            l2=config.strong_ridge,
            optimizer="adam",
            epochs=max(epochs),
            lr=config.lr,
            batch_size=config.batch_size,
            seed=config.seed + 1,
        ).fit(
            strong[hat],
            weak_hat,
            epoch_callback=lambda e, head: record(e, head.predict_proba, strong[te], strong[hat]),
        )
    else:
        from dataclasses import replace

        ft = replace(config.finetune, epochs=max(epochs), select="last", patience=None)
        learner = student.learner("w2s", replace(config, finetune=ft), config.seed + 1)

        learner.fit(hat, weak_hat, on_epoch=lambda e, fitted: record(e, fitted.predict, te, hat))
        notes.append(
            f"student: {student.model} fine-tuned ({student.mode}), "
            f"{learner.info()['trainable_params']:,} trainable parameters"
        )
    if config.task == "probability":
        notes.append("probability task: 0-1 error is scored against the most likely true class")
    return EpochStudy(
        rows=rows,
        config=config,
        epochs=epochs,
        sizes={name: int(len(idx)) for name, idx in splits.indices.items()},
        notes=notes,
    )
