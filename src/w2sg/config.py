"""Typed, serialisable configuration of one weak-to-strong run.

A run is fully described by its :class:`RunConfig`: the same config (and the same input arrays)
gives the same numbers. ``RunConfig.to_dict()`` is what every result file records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from w2sg.errors import W2SGError

Task = Literal["classification", "regression", "probability"]
Head = Literal["ridge", "softmax", "convex_kl", "least_squares"]

TASKS: tuple[str, ...] = ("classification", "regression", "probability")
HEADS: tuple[str, ...] = ("ridge", "softmax", "convex_kl", "least_squares")
LOSSES: tuple[str, ...] = (
    "xent",
    "reverse_kl",
    "hard",
    "logconf",
    "logconf_oai",
    "logconf_eai",
    "product",
    "window",
    "entropy",
)
# Losses that need the steps of a mini-batch optimiser (w2sg.heads.losses.needs_steps).
STEP_LOSSES: tuple[str, ...] = ("logconf_oai", "logconf_eai", "product", "window", "entropy")
OPTIMIZERS: tuple[str, ...] = ("lbfgs", "adam")
# How several weak models are combined into one set of weak labels (w2sg.experiments.ensemble).
COMBINE_RULES: tuple[str, ...] = (
    "average",
    "metric",
    "learned",
    "learned_labelled",
    "vote",
    "soft_vote",
)
K_RULES: tuple[str, ...] = (
    "k",
    "variance",
    "noise_floor",
    "gavish_donoho",
    "mp_edge",
    "parallel_analysis",
)
SIGMA_ESTIMATES: tuple[str, ...] = ("median", "iterative")
#: How a model learns: a head on its frozen representation, or the transformer fine-tuned.
TRAIN_MODES: tuple[str, ...] = ("probe", "full", "lora")
SCHEDULES: tuple[str, ...] = ("linear", "cosine", "constant")
#: The FinetuneConfig fields the weak model may set apart from the student's: the options
#: ``weak_<field>`` of :func:`w2sg.run` and the flags ``--weak-<field>`` of ``w2sg run`` fill
#: ``RunConfig.weak_finetune``. ``device``/``dtype`` are shared by both models.
WEAK_FINETUNE_OPTIONS: tuple[str, ...] = (
    "lr",
    "head_lr",
    "epochs",
    "batch_size",
    "warmup",
    "lora_rank",
    "lora_alpha",
)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16")

# The names used everywhere (code, CLI, result fields, docs).
MODELS: tuple[str, ...] = ("weak", "w2s", "ceiling")
SPLITS: tuple[str, ...] = ("weak_train", "w2s_train", "test", "val")

# RunConfig fields added after results were first stored. While such a field holds its default it
# is left out of the config's identity (hash, sweep description), so every stored run keeps its
# hash; a new field is appended here.
ADDED_FIELDS: tuple[str, ...] = (
    "s2s_iters",
    "clean",
    "clean_k",
    "clean_l2",
    "clean_keep",
    "combine",
    "combine_temperature",
    "combine_labels",
    "train",
    "weak_train",
    "finetune",
    "weak_finetune",
)
# KernelConfig fields added after results were first stored: left out of a run's identity while at
# their default, like ADDED_FIELDS.
KERNEL_ADDED_FIELDS: tuple[str, ...] = (
    "noise_sigma_weak",
    "noise_sigma_strong",
    "sigma_estimate",
    "pa_quantile",
    "pa_permutations",
    "pa_seed",
)
#: Weak-label cleaning before the student trains: ``none`` and the five rules of
#: :func:`w2sg.heads.relabel.clean_labels` (which imports this list).
CLEAN_METHODS: tuple[str, ...] = (
    "none",
    "knn_relabel",
    "knn_filter",
    "probe_relabel",
    "probe_filter",
    "confidence",
)


def default_head(task: str) -> str:
    """The head a task gets when none is named: ridge for regression (a closed form on numeric
    targets), softmax for classification and probability."""
    return "ridge" if task == "regression" else "softmax"


#: The keyword options of :meth:`KernelConfig.from_options` that pick a k rule or set γ; they are
#: also the ``argparse`` destinations of the kernel flags (``w2sg run``, ``w2sg metric``) and the
#: Python API's kernel keywords (which add ``center`` and its negation ``no_center``).
KERNEL_OPTIONS: tuple[str, ...] = (
    "k_weak",
    "k_strong",
    "variance",
    "noise_floor",
    "gavish_donoho",
    "mp_edge",
    "parallel_analysis",
    "sigma_estimate",
    "noise_sigma_weak",
    "noise_sigma_strong",
    "hard",
    "gamma_weak",
    "gamma_strong",
)


#: The KernelConfig fields that only one k rule reads: a kernel mapping that sets one of them but
#: no ``rule`` gets that rule (:meth:`KernelConfig.from_mapping`).
_RULE_OF_PARAMETER: dict[str, str] = {
    "variance": "variance",
    "noise_floor": "noise_floor",
    "k_weak": "k",
    "k_strong": "k",
    "pa_quantile": "parallel_analysis",
    "pa_permutations": "parallel_analysis",
    "pa_seed": "parallel_analysis",
    "sigma_estimate": "mp_edge",
}


def implied_rule(kernel: dict[str, Any]) -> str | None:
    """The k rule of a kernel mapping: its ``rule``, else the rule whose parameter it sets
    (``{variance: 0.99}`` → ``"variance"``, see ``_RULE_OF_PARAMETER``), else ``None`` (the
    default rule). Parameters of two rules without a ``rule`` are a :class:`W2SGError`."""
    if "rule" in kernel:
        return str(kernel["rule"])
    implied = sorted({rule for key, rule in _RULE_OF_PARAMETER.items() if key in kernel})
    if len(implied) > 1:
        raise W2SGError(
            f"the kernel settings {sorted(k for k in kernel if k in _RULE_OF_PARAMETER)} "
            f"belong to different k rules ({', '.join(implied)}); add rule: <one of them>"
        )
    return implied[0] if implied else None


@dataclass(frozen=True)
class KernelConfig:
    """How the principal kernels of THEORY.md section 3 are built.

    ``rule`` picks k: ``"k"`` uses ``k_weak``/``k_strong``; ``"variance"`` the smallest k whose
    eigenvalues explain at least ``variance`` of the trace; ``"noise_floor"`` the components whose
    eigenvalue exceeds the mean of the remaining ones by the factor ``noise_floor``;
    ``"gavish_donoho"`` the singular values above the optimal hard threshold for a low-rank signal
    in white noise of unknown level (Gavish & Donoho 2014), ω(β)·median(s), without a parameter.
    ``"mp_edge"`` the singular values above the Marchenko–Pastur bulk edge σ̂(√n' + √d') (σ̂ by
    ``sigma_estimate``: ``"median"`` or ``"iterative"``); ``"parallel_analysis"`` Horn's rule
    against ``pa_permutations`` column permutations (seed ``pa_seed``) at the ``pa_quantile``.
    ``noise_sigma_weak``/``noise_sigma_strong``: a known noise level per entry for
    ``gavish_donoho`` and ``mp_edge`` (``None``: estimated). See
    :func:`w2sg.theory.kernels.principal_decomposition`.
    ``hard=True`` sets γ = 0 (orthogonal projections). ``gamma_weak``/``gamma_strong`` override
    γ = β + δ.

    The default rule is ``"mp_edge"`` with σ̂ from the median singular value (issue 14, criterion
    v2 of docs/kernels.md); it was ``"variance"`` τ = 0.9 before. A stored config always names its
    rule, so runs made under the old default keep their hash and are never taken for new-default
    runs (:meth:`RunConfig.identity`).
    """

    rule: str = "mp_edge"
    k_weak: int | None = None
    k_strong: int | None = None
    variance: float = 0.90
    noise_floor: float = 10.0
    hard: bool = False
    gamma_weak: float | None = None
    gamma_strong: float | None = None
    center: bool = True
    noise_sigma_weak: float | None = None
    noise_sigma_strong: float | None = None
    sigma_estimate: str = "median"
    pa_quantile: float = 0.95
    pa_permutations: int = 5
    pa_seed: int = 0

    def validate(self) -> None:
        if self.rule not in K_RULES:
            raise W2SGError(f"unknown k rule {self.rule!r}; use one of {', '.join(K_RULES)}")
        if self.rule == "k" and (self.k_weak is None or self.k_strong is None):
            raise W2SGError("the 'k' rule needs both --k-weak and --k-strong")
        if self.rule == "variance" and not 0.0 < self.variance <= 1.0:
            raise W2SGError(f"--variance must be in (0, 1], got {self.variance}")
        if self.rule == "noise_floor" and self.noise_floor <= 1.0:
            raise W2SGError(f"--noise-floor must be > 1, got {self.noise_floor}")
        if self.sigma_estimate not in SIGMA_ESTIMATES:
            raise W2SGError(
                f"unknown sigma_estimate {self.sigma_estimate!r}; use one of "
                f"{', '.join(SIGMA_ESTIMATES)}"
            )
        for name in ("noise_sigma_weak", "noise_sigma_strong"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise W2SGError(f"{name} must be a finite number > 0, got {value}")
        if not 0.0 < self.pa_quantile < 1.0:
            raise W2SGError(f"pa_quantile must be in (0, 1), got {self.pa_quantile}")
        if self.pa_permutations < 1:
            raise W2SGError(f"pa_permutations must be >= 1, got {self.pa_permutations}")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> KernelConfig:
        """A kernel configuration from a mapping of its fields (a sweep YAML's ``kernel:``, a stored
        config, the Python API's ``kernel={...}``). A mapping without ``rule`` that sets the
        parameter of one rule (``variance``, ``noise_floor``, ``k_weak``/``k_strong``,
        ``sigma_estimate``, the ``pa_*`` fields) gets that rule (:func:`implied_rule`), as the flag
        of the same name does: ``{variance: 0.99}`` keeps meaning the variance rule whatever the
        default is, and keeps its run hash."""
        data = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise W2SGError(f"unknown kernel keys {unknown}; known keys are {sorted(known)}")
        rule = implied_rule(data)
        if rule is not None:
            data["rule"] = rule
        return cls(**data)

    @classmethod
    def from_options(
        cls,
        *,
        k_weak: int | None = None,
        k_strong: int | None = None,
        variance: float | None = None,
        noise_floor: float | None = None,
        gavish_donoho: bool = False,
        mp_edge: bool = False,
        parallel_analysis: bool = False,
        sigma_estimate: str | None = None,
        noise_sigma_weak: float | None = None,
        noise_sigma_strong: float | None = None,
        hard: bool = False,
        gamma_weak: float | None = None,
        gamma_strong: float | None = None,
        center: bool = True,
    ) -> KernelConfig:
        """The kernel configuration of the command-line flags of the same names (``w2sg run`` and
        ``w2sg metric``) and of the Python API's keyword options: one k rule (``k_weak`` and
        ``k_strong``, ``variance``, ``noise_floor``, ``gavish_donoho``, ``mp_edge`` or
        ``parallel_analysis``; default: the class default's rule), and either ``hard`` or
        explicit γ's; ``sigma_estimate`` goes with ``mp_edge``, ``noise_sigma_weak``/``_strong``
        with ``mp_edge`` or ``gavish_donoho``."""
        given = [
            name
            for name, used in (
                ("--k-weak/--k-strong", k_weak is not None or k_strong is not None),
                ("--variance", variance is not None),
                ("--noise-floor", noise_floor is not None),
                ("--gavish-donoho", bool(gavish_donoho)),
                ("--mp-edge", bool(mp_edge)),
                ("--parallel-analysis", bool(parallel_analysis)),
            )
            if used
        ]
        if len(given) > 1:
            raise W2SGError(f"choose one k rule, not {' and '.join(given)}")
        if hard and (gamma_weak is not None or gamma_strong is not None):
            raise W2SGError("--hard sets γ = 0; drop --gamma-weak/--gamma-strong or --hard")
        rule = {
            "--k-weak/--k-strong": "k",
            "--noise-floor": "noise_floor",
            "--gavish-donoho": "gavish_donoho",
            "--mp-edge": "mp_edge",
            "--parallel-analysis": "parallel_analysis",
            "--variance": "variance",
        }.get(given[0] if given else "", cls().rule)
        default = cls()
        if (noise_sigma_weak is not None or noise_sigma_strong is not None) and rule not in (
            "mp_edge",
            "gavish_donoho",
        ):
            raise W2SGError(
                "--noise-sigma-weak/--noise-sigma-strong go with --mp-edge or --gavish-donoho"
            )
        if sigma_estimate is not None and rule != "mp_edge":
            raise W2SGError("--sigma-estimate goes with --mp-edge")
        config = cls(
            rule=rule,
            k_weak=k_weak,
            k_strong=k_strong,
            variance=variance if variance is not None else default.variance,
            noise_floor=noise_floor if noise_floor is not None else default.noise_floor,
            hard=bool(hard),
            gamma_weak=gamma_weak,
            gamma_strong=gamma_strong,
            center=bool(center),
            noise_sigma_weak=noise_sigma_weak,
            noise_sigma_strong=noise_sigma_strong,
            sigma_estimate=sigma_estimate or default.sigma_estimate,
        )
        config.validate()
        return config


@dataclass(frozen=True)
class FinetuneConfig:
    """How a transformer is fine-tuned (``--train full|lora``, see :mod:`w2sg.heads.finetune`).

    ``lr`` is the peak learning rate of the transformer's trainable weights (``None``: 2e-5 for
    ``full``, 2e-4 for ``lora``); ``head_lr`` that of the zero-initialised linear head. The rate
    rises linearly over the first ``warmup`` fraction of optimiser steps, then decays to 0 by
    ``schedule``. One optimiser step sees ``batch_size × grad_accum`` examples; gradients are
    clipped to norm ``max_grad_norm``. ``max_length`` cuts token sequences (``None``: the model's
    own limit). ``select``: ``best`` keeps the epoch of lowest validation loss (weak-labelled for
    the w2s student; needs a val split), ``last`` the final epoch; ``patience`` stops after that
    many epochs without improvement. ``device``/``dtype`` ``auto``: CUDA in bfloat16 autocast
    when present, else CPU in float32.
    """

    epochs: int = 3
    lr: float | None = None
    head_lr: float = 1e-3
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int | None = None
    warmup: float = 0.1
    schedule: str = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    gradient_checkpointing: bool = False
    select: str = "best"
    patience: int | None = None
    device: str = "auto"
    dtype: str = "auto"

    def peak_lr(self, mode: str) -> float:
        """The transformer's peak learning rate in ``mode`` (``lr`` or the mode's default)."""
        if self.lr is not None:
            return self.lr
        return 2e-4 if mode == "lora" else 2e-5

    def validate(self, flag: Callable[[str], str] | None = None) -> None:
        """Refuse settings out of range in one line; ``flag(field)`` names a field's option in
        the message (default: ``--epochs`` for ``epochs``; the weak model's ``--weak-epochs``)."""
        f = flag or (lambda name: "--" + name.replace("_", "-"))
        checks = (
            (self.epochs >= 1, f"{f('epochs')} must be >= 1, got {self.epochs}"),
            (self.lr is None or self.lr > 0, f"{f('lr')} must be > 0, got {self.lr}"),
            (self.head_lr > 0, f"{f('head_lr')} must be > 0, got {self.head_lr}"),
            (self.batch_size >= 1, f"{f('batch_size')} must be >= 1, got {self.batch_size}"),
            (self.grad_accum >= 1, f"{f('grad_accum')} must be >= 1, got {self.grad_accum}"),
            (
                self.max_length is None or self.max_length >= 2,
                f"{f('max_length')} must be >= 2 tokens, got {self.max_length}",
            ),
            (0.0 <= self.warmup < 1.0, f"{f('warmup')} is a fraction in [0, 1), got {self.warmup}"),
            (self.schedule in SCHEDULES, f"{f('schedule')} must be one of {', '.join(SCHEDULES)}"),
            (self.weight_decay >= 0, f"{f('weight_decay')} must be >= 0"),
            (self.max_grad_norm > 0, f"{f('max_grad_norm')} must be > 0"),
            (self.lora_rank >= 1, f"{f('lora_rank')} must be >= 1, got {self.lora_rank}"),
            (self.lora_alpha > 0, f"{f('lora_alpha')} must be > 0, got {self.lora_alpha}"),
            (
                0.0 <= self.lora_dropout < 1.0,
                f"{f('lora_dropout')} must be in [0, 1), got {self.lora_dropout}",
            ),
            (
                self.select in ("best", "last"),
                f"{f('select')} must be best or last, not {self.select!r}",
            ),
            (self.patience is None or self.patience >= 1, f"{f('patience')} must be >= 1"),
            (self.device in DEVICES, f"{f('device')} must be one of {', '.join(DEVICES)}"),
            (self.dtype in DTYPES, f"{f('dtype')} must be one of {', '.join(DTYPES)}"),
        )
        for ok, message in checks:
            if not ok:
                raise W2SGError(message)


def _weak_flag(name: str) -> str:
    """The option that sets the weak model's fine-tuning field ``name`` (in error messages)."""
    if name in WEAK_FINETUNE_OPTIONS:
        return "--weak-" + name.replace("_", "-")
    return f"weak_finetune's {name}"


@dataclass(frozen=True)
class RunConfig:
    """One weak → weak-to-strong → ceiling run on frozen representations.

    Heads: ``ridge`` (closed form; classification uses ±1 / one-hot targets), ``softmax`` (a
    softmax/sigmoid linear head trained with ``loss`` by ``optimizer``), ``convex_kl`` (affine
    probability head trained by reverse KL, binary only) and ``least_squares`` (linear least
    squares, optionally in the ball ‖θ‖ ≤ ``radius``). The weak model is trained on true labels
    (see ``pipeline._fit_head``); ``weak_ridge``/``strong_ridge`` are the L2 penalties β_w, β_s.

    ``clean`` relabels or filters the weak labels of D̂ before the student trains (``clean_k``
    neighbours, ``clean_l2`` probe penalty, ``clean_keep`` kept fraction; see
    :mod:`w2sg.heads.relabel`); ``s2s_iters`` adds strong-to-strong rounds, each student trained on
    the previous one's predictions on D̂ (``rounds`` of the result).

    ``train``/``weak_train`` say how the strong and the weak model learn (``probe``, ``full``,
    ``lora``); ``finetune`` holds the fine-tuning settings, and ``weak_finetune`` the weak
    model's own where they differ (``None``: the same as ``finetune``; see :meth:`finetune_for`).
    ``device``/``dtype`` are shared by both.
    """

    task: str = "classification"
    head: str = "softmax"
    loss: str = "xent"
    weak_ridge: float = 1e-3
    strong_ridge: float = 1e-3
    fractions: tuple[float, ...] = (0.4, 0.4, 0.2)
    seed: int = 0
    optimizer: str = "lbfgs"
    epochs: int = 50
    lr: float = 1e-2
    batch_size: int = 256
    max_iter: int = 500
    radius: float | None = None
    eps: float = 1e-6
    n_bootstrap: int = 1000
    kernel: KernelConfig = field(default_factory=KernelConfig)
    theory: bool = True
    bounds: bool = True
    s2s_iters: int = 0
    clean: str = "none"
    clean_k: int = 20
    clean_l2: float = 1e-3
    clean_keep: float | None = None
    combine: str | None = None
    combine_temperature: float = 0.05
    combine_labels: int = 100
    train: str = "probe"
    weak_train: str = "probe"
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    weak_finetune: FinetuneConfig | None = None

    def finetune_for(self, role: str) -> FinetuneConfig:
        """The fine-tuning settings of ``role``: ``weak_finetune`` for the weak model where set,
        else ``finetune`` (the w2s student, the ceiling, and a weak model without its own)."""
        if role == "weak" and self.weak_finetune is not None:
            return self.weak_finetune
        return self.finetune

    def validate(self) -> None:
        if self.task not in TASKS:
            raise W2SGError(f"unknown task {self.task!r}; use one of {', '.join(TASKS)}")
        if self.head not in HEADS:
            raise W2SGError(f"unknown head {self.head!r}; use one of {', '.join(HEADS)}")
        if self.loss not in LOSSES:
            raise W2SGError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise W2SGError(
                f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        probe_student = self.train == "probe"  # a fine-tuned student always takes steps
        if (
            probe_student
            and self.head == "softmax"
            and self.loss in STEP_LOSSES
            and self.optimizer == "lbfgs"
        ):
            raise W2SGError(
                f"loss {self.loss!r} depends on the training step and the student's own "
                "predictions; full-batch L-BFGS has no steps: add --optimizer adam"
            )
        if self.task == "regression" and self.head in ("softmax", "convex_kl"):
            raise W2SGError(
                f"head {self.head!r} predicts probabilities; for --task regression use --head ridge"
            )
        if self.weak_ridge < 0 or self.strong_ridge < 0:
            raise W2SGError("--weak-ridge and --strong-ridge must be >= 0")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise W2SGError(f"--seed must be an integer in 0 … {2**32 - 1}, got {self.seed!r}")
        if len(self.fractions) not in (3, 4) or any(f <= 0 for f in self.fractions):
            raise W2SGError(
                "--fractions takes 3 or 4 positive numbers: weak_train,w2s_train,test[,val]"
            )
        if abs(sum(self.fractions) - 1.0) > 1e-6:
            raise W2SGError(f"--fractions must sum to 1, got {sum(self.fractions):g}")
        if self.s2s_iters < 0:
            raise W2SGError(f"--s2s-iters must be >= 0; got {self.s2s_iters}")
        if self.clean not in CLEAN_METHODS:
            raise W2SGError(
                f"unknown cleaning {self.clean!r}; use one of {', '.join(CLEAN_METHODS)}"
            )
        if self.clean != "none" and self.task == "regression":
            raise W2SGError(
                f"--clean {self.clean} cleans class labels; it does not apply to --task regression"
            )
        if self.clean_k < 1:
            raise W2SGError(f"--clean-k must be >= 1; got {self.clean_k}")
        if not self.clean_l2 >= 0:
            raise W2SGError(f"--clean-l2 must be >= 0; got {self.clean_l2}")
        if self.clean_keep is not None and not 0.0 < self.clean_keep <= 1.0:
            raise W2SGError(f"--clean-keep must be in (0, 1]; got {self.clean_keep}")
        if self.combine is not None and self.combine not in COMBINE_RULES:
            raise W2SGError(
                f"unknown combine rule {self.combine!r}; use one of {', '.join(COMBINE_RULES)}"
            )
        if not self.combine_temperature > 0:
            raise W2SGError(f"--combine-temperature must be > 0, got {self.combine_temperature}")
        if self.combine_labels < 2:
            raise W2SGError(f"--combine-labels must be >= 2, got {self.combine_labels}")
        for flag, mode in (("--train", self.train), ("--weak-train", self.weak_train)):
            if mode not in TRAIN_MODES:
                raise W2SGError(f"{flag} must be one of {', '.join(TRAIN_MODES)}, got {mode!r}")
        self.kernel.validate()
        self.finetune.validate()
        if self.weak_finetune is not None:
            if self.weak_train == "probe":
                raise W2SGError(
                    "the weak fine-tuning settings (--weak-lr, --weak-epochs, ..., weak_finetune) "
                    "need a fine-tuned weak model: add --weak-train full|lora, or drop them"
                )
            shared = [
                name
                for name in ("device", "dtype")
                if getattr(self.weak_finetune, name) != getattr(self.finetune, name)
            ]
            if shared:
                raise W2SGError(
                    f"both models fine-tune with one {'/'.join(shared)}: drop "
                    f"{' and '.join(shared)} from weak_finetune (--device/--dtype set both)"
                )
            self.weak_finetune.validate(_weak_flag)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """:meth:`to_dict` less the fields of ``ADDED_FIELDS`` that hold their default: what
        :meth:`hash` and the sweep store hash, unchanged for configs written before those fields."""
        out = self.to_dict()
        defaults = {f.name: f for f in dataclasses.fields(self)}
        for name in ADDED_FIELDS:
            f = defaults[name]
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            if dataclasses.is_dataclass(default) and not isinstance(default, type):
                default = dataclasses.asdict(default)
            if out[name] == default:
                del out[name]
        kernel_default = KernelConfig()
        for name in KERNEL_ADDED_FIELDS if "kernel" in out else ():
            if out["kernel"][name] == getattr(kernel_default, name):
                del out["kernel"][name]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        data = dict(data)
        kernel = KernelConfig.from_mapping(data.pop("kernel", {}))
        if isinstance(data.get("finetune"), dict):
            data["finetune"] = FinetuneConfig(**data["finetune"])
        if isinstance(data.get("weak_finetune"), dict):  # fields not given: the student's
            data["weak_finetune"] = dataclasses.replace(
                data.get("finetune") or FinetuneConfig(), **data["weak_finetune"]
            )
        if "fractions" in data:
            data["fractions"] = tuple(float(f) for f in data["fractions"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise W2SGError(f"unknown run config keys {unknown}; known keys are {sorted(known)}")
        return cls(kernel=kernel, **data)

    def hash(self) -> str:
        """SHA-256 of the canonical JSON form: the identity of a run configuration."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
