import pytest

from w2sg.config import KernelConfig, RunConfig
from w2sg.errors import W2SGError


def test_round_trip_and_hash_identify_a_config():
    c = RunConfig(
        task="regression",
        head="ridge",
        fractions=(0.3, 0.3, 0.2, 0.2),
        seed=4,
        kernel=KernelConfig(rule="k", k_weak=3, k_strong=5),
    )
    back = RunConfig.from_dict(c.to_dict())
    assert back == c and back.hash() == c.hash()
    assert RunConfig(seed=5).hash() != RunConfig(seed=6).hash()


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"task": "ranking"}, "unknown task"),
        ({"loss": "mse"}, "unknown loss"),
        ({"head": "mlp"}, "unknown head"),
        ({"task": "regression", "head": "softmax"}, "--head ridge"),
        ({"fractions": (0.5, 0.5, 0.5)}, "sum to 1"),
        ({"fractions": (1.0,)}, "3 or 4"),
        ({"weak_ridge": -1.0}, ">= 0"),
        ({"kernel": KernelConfig(rule="k", k_weak=2)}, "--k-strong"),
        ({"kernel": KernelConfig(rule="variance", variance=1.5)}, "--variance"),
    ],
)
def test_invalid_configs_name_the_problem(kwargs, pattern):
    with pytest.raises(W2SGError, match=pattern):
        RunConfig(**kwargs).validate()


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(W2SGError, match="unknown run config keys"):
        RunConfig.from_dict({"tsk": "regression"})


def test_added_fields_at_default_leave_the_hash_unchanged(monkeypatch) -> None:
    import hashlib
    import json

    import w2sg.config as C

    base = C.RunConfig()
    defaults = {k: v for k, v in base.to_dict().items() if k not in C.ADDED_FIELDS}
    # kernel fields added later (C.KERNEL_ADDED_FIELDS) leave the identity at their default too
    for name in C.KERNEL_ADDED_FIELDS:
        del defaults["kernel"][name]
    full = json.dumps(defaults, sort_keys=True, separators=(",", ":"))
    assert base.hash() == hashlib.sha256(full.encode()).hexdigest()
    monkeypatch.setattr(C, "ADDED_FIELDS", ("n_bootstrap", "kernel"))
    reduced = {k: v for k, v in base.to_dict().items() if k not in ("n_bootstrap", "kernel")}
    text = json.dumps(reduced, sort_keys=True, separators=(",", ":"))
    assert base.hash() == hashlib.sha256(text.encode()).hexdigest()
    changed = C.RunConfig(n_bootstrap=7)
    assert "n_bootstrap" in changed.identity() and changed.hash() != base.hash()
    assert "kernel" in C.RunConfig(kernel=C.KernelConfig(rule="k", k_weak=1, k_strong=1)).identity()


# RunConfig(kernel=KernelConfig(rule="variance", variance=0.9)).hash(), computed by the code of
# commit c975aec (before the default k rule changed): the hash every stored run of the old default
# (and every explicit variance-0.9 run) carries.
OLD_DEFAULT_HASH = "56df8836b5c6ba805812250e422d57ee40a736c605d10bb535e074ee284b05b6"


def test_the_default_k_rule_change_keeps_explicit_hashes_and_separates_old_runs() -> None:
    """The default k rule became mp_edge (issue 14). A run that names the variance rule keeps its
    hash; a run stored under the old default (its config names rule variance, as every stored
    config does) is not the same config as a new-default run, so a sweep re-runs it instead of
    taking the old result for the new rule."""
    explicit = RunConfig(kernel=KernelConfig(rule="variance", variance=0.9))
    assert explicit.hash() == OLD_DEFAULT_HASH
    new_default = RunConfig()
    assert new_default.kernel.rule == "mp_edge" and new_default.kernel.sigma_estimate == "median"
    assert new_default.hash() != OLD_DEFAULT_HASH
    stored = explicit.to_dict()  # what a store holds for a run of the old default
    assert stored["kernel"]["rule"] == "variance"
    reread = RunConfig.from_dict(stored)
    assert reread.kernel.rule == "variance" and reread.hash() == OLD_DEFAULT_HASH
    assert new_default.identity()["kernel"]["rule"] == "mp_edge"


@pytest.mark.parametrize(
    ("mapping", "rule"),
    [
        ({}, "mp_edge"),
        ({"hard": True}, "mp_edge"),
        ({"sigma_estimate": "iterative"}, "mp_edge"),
        ({"variance": 0.99}, "variance"),
        ({"noise_floor": 5.0}, "noise_floor"),
        ({"k_weak": 3, "k_strong": 6}, "k"),
        ({"pa_permutations": 9}, "parallel_analysis"),
        ({"rule": "gavish_donoho", "variance": 0.5}, "gavish_donoho"),
    ],
)
def test_a_kernel_mapping_without_a_rule_gets_the_rule_of_its_parameter(
    mapping: dict, rule: str
) -> None:
    """A sweep's ``kernel: {variance: 0.99}`` meant the variance rule under the old default and
    still does (the flag --variance 0.99 picks it too), with the hash of the explicit form; a
    mapping naming no rule's parameter gets the default rule."""
    config = RunConfig.from_dict({"kernel": mapping})
    assert config.kernel.rule == rule
    explicit = RunConfig.from_dict({"kernel": {"rule": rule, **mapping}})
    assert config.hash() == explicit.hash()


def test_a_kernel_mapping_with_two_rules_parameters_and_no_rule_is_refused() -> None:
    with pytest.raises(W2SGError, match="different k rules.*add rule"):
        RunConfig.from_dict({"kernel": {"variance": 0.9, "noise_floor": 5.0}})
    with pytest.raises(W2SGError, match="unknown kernel keys"):
        RunConfig.from_dict({"kernel": {"tau": 0.9}})


# Hashes computed by the code of commit 61838d0, before RunConfig had weak_finetune: the default
# config, and a LoRA student taught by a fully fine-tuned weak model with the run's one setting.
PRE_WEAK_FINETUNE_HASHES = {
    "default": "e8acad176282d2b8276dfbe895fe387fa217855d02be89729349ee1cb13a587a",
    "finetuned": "a04b09e6c2e0f0a13d7596b01566f8cde6bae45d9b8bfee366d4db206fed6530",
}


def _finetuned(**extra: object) -> RunConfig:
    from w2sg.config import FinetuneConfig

    student = FinetuneConfig(epochs=2, lr=1e-3, head_lr=2e-2, batch_size=8, device="cpu")
    return RunConfig(train="lora", weak_train="full", finetune=student, **extra)  # type: ignore[arg-type]


def test_weak_finetune_unset_keeps_every_stored_hash_and_set_round_trips() -> None:
    import dataclasses

    from w2sg.api import run_config
    from w2sg.config import ADDED_FIELDS

    assert "weak_finetune" in ADDED_FIELDS
    assert RunConfig().hash() == PRE_WEAK_FINETUNE_HASHES["default"]
    plain = _finetuned()
    assert plain.hash() == PRE_WEAK_FINETUNE_HASHES["finetuned"]
    assert "weak_finetune" not in plain.identity()
    # flags that repeat the student's values are the same run
    assert run_config(plain, weak_lr=1e-3, weak_epochs=2).hash() == plain.hash()
    own = dataclasses.replace(plain.finetune, lr=5e-5, head_lr=1e-2)
    tuned = _finetuned(weak_finetune=own)
    tuned.validate()
    assert tuned.hash() != plain.hash() and tuned.identity()["weak_finetune"]["lr"] == 5e-5
    back = RunConfig.from_dict(tuned.to_dict())
    assert back == tuned and back.hash() == tuned.hash()
    assert back.finetune_for("weak") == own and back.finetune_for("w2s") == plain.finetune
    assert plain.finetune_for("weak") == plain.finetune
    # a partial mapping (a sweep's run: or head) takes the student's value where it says nothing
    partial = RunConfig.from_dict(
        {**plain.to_dict(), "weak_finetune": {"lr": 5e-5, "head_lr": 1e-2}}
    )
    assert partial == tuned
    assert run_config(plain, weak_finetune={"lr": 5e-5, "head_lr": 1e-2}) == tuned
    assert run_config(plain, weak_lr=5e-5, weak_head_lr=1e-2) == tuned
    assert run_config(tuned.to_dict()) == tuned


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        (
            {"weak_train": "probe", "weak_lr": 1e-4},
            "need a fine-tuned weak model: add --weak-train",
        ),
        ({"weak_epochs": 0}, "--weak-epochs must be >= 1"),
        ({"weak_finetune": {"grad_accum": 0}}, "weak_finetune's grad_accum must be >= 1"),
        ({"weak_finetune": {"device": "cuda"}}, "both models fine-tune with one device"),
        ({"weak_finetune": {"lr": 1e-4}, "weak_lr": 1e-4}, "not both"),
        ({"weak_finetune": {"learning_rate": 1e-4}}, "unexpected keyword"),
    ],
)
def test_bad_weak_fine_tuning_settings_are_one_line_errors(options: dict, pattern: str) -> None:
    from w2sg.api import run_config

    with pytest.raises(W2SGError, match=pattern) as info:
        run_config(_finetuned(), **options)
    assert "\n" not in str(info.value)
