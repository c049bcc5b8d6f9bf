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
        ({"kernel": KernelConfig(variance=1.5)}, "--variance"),
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
