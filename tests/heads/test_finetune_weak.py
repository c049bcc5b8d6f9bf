"""The weak model's own fine-tuning settings (``weak_finetune``; ``--weak-lr``, ``weak_lr=``, …)
beside the student's, on tiny transformers built here from a config (no download)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from finetune_fixtures import (
    finetune_env,  # noqa: F401  (autouse: one thread, own cache)
    tiny_bert,
    tiny_texts,
)

from w2sg.config import WEAK_FINETUNE_OPTIONS, FinetuneConfig, RunConfig
from w2sg.errors import W2SGError
from w2sg.heads.finetune import FinetuneSource
from w2sg.pipeline import run_pipeline

pytest.importorskip("peft", reason="peft is not installed: pip install -e .[finetune]")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tinyweak") / "bert", layers=2)


def _arrays(n: int = 120) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    texts, y = tiny_texts(n)
    rng = np.random.default_rng(0)
    return texts, y, rng.normal(size=(n, 4)), rng.normal(size=(n, 6)) + y[:, None]


_BASE: dict[str, Any] = {
    "fractions": (0.3, 0.3, 0.2, 0.2), "n_bootstrap": 20, "theory": False, "bounds": False,
}  # fmt: skip


def test_the_weak_learner_trains_with_its_own_settings_and_the_student_with_its(
    model: Path,
) -> None:
    """weak: 1 epoch at lr 3e-4 (head 2e-2); student and ceiling: 2 epochs at lr 1e-3. The weak
    model's numbers are those of a run whose only settings are the weak ones."""
    texts, y, weak, strong = _arrays()
    student = FinetuneConfig(epochs=2, batch_size=8, lr=1e-3, select="last")
    own = dataclasses.replace(student, epochs=1, lr=3e-4, head_lr=2e-2)
    config = RunConfig(
        **_BASE, train="full", weak_train="full", finetune=student, weak_finetune=own
    )

    def sources(*sides: str) -> dict[str, Any]:
        return {side: FinetuneSource(str(model), texts, "full") for side in sides}

    res = run_pipeline(weak, strong, y, config, learners=sources("weak", "strong"))
    w, s, c = (res.train[m] for m in ("weak", "w2s", "ceiling"))
    assert (w["epochs_run"], len(res.curve["weak"]), w["lr"], w["head_lr"]) == (1, 1, 3e-4, 2e-2)
    assert w["epochs"] == 1 and w["batch_size"] == 8
    for m, entry in (("w2s", s), ("ceiling", c)):
        assert (entry["epochs_run"], len(res.curve[m]), entry["lr"]) == (2, 2, 1e-3)
        assert (entry["epochs"], entry["head_lr"]) == (2, student.head_lr)
    assert res.to_dict()["config"]["weak_finetune"]["lr"] == 3e-4
    # The weak model alone, with its settings as the run's only ones: the same weak numbers.
    alone = RunConfig(**_BASE, weak_train="full", finetune=own)
    ref = run_pipeline(weak, strong, y, alone, learners=sources("weak"))
    a, b = res.to_dict()["weak"], ref.to_dict()["weak"]
    for key in ("accuracy", "cross_entropy"):
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9)
    assert ref.train["weak"]["lr"] == 3e-4 and ref.train["weak"]["epochs_run"] == 1


def test_without_weak_settings_the_weak_learner_takes_the_students(model: Path) -> None:
    texts, y, weak, strong = _arrays()
    student = FinetuneConfig(epochs=2, batch_size=8, lr=1e-3, head_lr=2e-2, select="last")
    config = RunConfig(**_BASE, train="lora", weak_train="full", finetune=student)
    learners = {
        "weak": FinetuneSource(str(model), texts, "full"),
        "strong": FinetuneSource(str(model), texts, "lora"),
    }
    res = run_pipeline(weak, strong, y, config, learners=learners)
    w, s = res.train["weak"], res.train["w2s"]
    assert (w["epochs_run"], w["lr"], w["head_lr"]) == (2, 1e-3, 2e-2) == (
        s["epochs_run"], s["lr"], s["head_lr"],
    )  # fmt: skip
    assert (s["lora_rank"], s["lora_alpha"]) == (8, 16) and "lora_rank" not in w


def _csv(tmp_path: Path) -> Path:
    import pandas as pd

    texts, y = tiny_texts(120)
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": texts, "label": y}).to_csv(path, index=False)
    return path


def test_cli_flags_and_api_options_give_the_same_run(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``w2sg run --weak M@1 --weak-train full --train lora --weak-lr … --weak-epochs 1`` and
    ``w2sg.run(…, weak_lr=…, weak_epochs=1)`` (and ``weak_finetune={…}``) are one run: same
    config, same hash, same numbers; flags not given (head lr, batch size) are the student's."""
    import w2sg
    from w2sg.cli import main

    data = _csv(tmp_path)
    common = {
        "data": str(data), "text_column": "text", "label_column": "label",
        "weak": f"{model}@1", "strong": str(model), "train": "lora", "weak_train": "full",
        "epochs": 2, "lr": 1e-3, "head_lr": 2e-2, "batch_size": 8,
        "fractions": "0.3,0.3,0.2,0.2", "bootstrap": 20, "no_theory": True, "no_bounds": True,
    }  # fmt: skip
    argv = ["run", "--json"]
    for key, value in common.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    argv += ["--weak-lr", "3e-4", "--weak-epochs", "1"]
    assert main(argv) == 0
    cli = json.loads(capsys.readouterr().out)
    api = w2sg.run(**common, weak_lr=3e-4, weak_epochs=1).to_dict()
    mapping = w2sg.run(**common, weak_finetune={"lr": 3e-4, "epochs": 1}).to_dict()
    for other in (api, mapping):
        assert other["config"] == cli["config"]
        for m in ("weak", "w2s", "ceiling"):
            assert other[m]["accuracy"] == cli[m]["accuracy"]
            assert other[m]["cross_entropy"] == pytest.approx(cli[m]["cross_entropy"], rel=1e-6)
    ft, weak_ft = cli["config"]["finetune"], cli["config"]["weak_finetune"]
    assert (weak_ft["lr"], weak_ft["epochs"]) == (3e-4, 1)
    assert {k: v for k, v in weak_ft.items() if k not in ("lr", "epochs")} == {
        k: v for k, v in ft.items() if k not in ("lr", "epochs")
    }  # every other setting is the student's
    w, s = cli["train"]["weak"], cli["train"]["w2s"]
    assert (w["mode"], w["lr"], w["epochs"], w["epochs_run"], w["head_lr"]) == (
        "full", 3e-4, 1, 1, 2e-2,
    )  # fmt: skip
    assert (s["mode"], s["lr"], s["epochs"], s["epochs_run"]) == ("lora", 1e-3, 2, 2)
    assert RunConfig.from_dict(cli["config"]).hash() == RunConfig.from_dict(api["config"]).hash()


def test_every_weak_option_is_a_cli_flag_and_an_api_option() -> None:
    from w2sg.api import run_config
    from w2sg.cli import build_parser

    parser = build_parser()
    sub = next(
        a for a in parser._actions if hasattr(a, "choices") and a.choices and "run" in a.choices
    )
    dests = {a.dest for a in sub.choices["run"]._actions}
    student = FinetuneConfig(epochs=5, lr=1e-3, head_lr=2e-2, batch_size=4, warmup=0.2,
                             lora_rank=4, lora_alpha=8, device="cpu")  # fmt: skip
    for name in WEAK_FINETUNE_OPTIONS:
        assert f"weak_{name}" in dests
        value = getattr(student, name) * 2
        config = run_config(
            train="lora", weak_train="lora", finetune=student, **{f"weak_{name}": value}
        )
        assert config.weak_finetune is not None
        assert getattr(config.weak_finetune, name) == value
        rest = dataclasses.replace(config.weak_finetune, **{name: getattr(student, name)})
        assert rest == student  # the flags not given (device too) are the student's


def test_weak_settings_without_a_fine_tuned_weak_model_are_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from w2sg.api import run_config
    from w2sg.cli import main

    with pytest.raises(W2SGError, match="add --weak-train full\\|lora"):
        run_config(train="lora", weak_lr=1e-4)
    with pytest.raises(W2SGError, match="need a fine-tuned weak model"):
        RunConfig(train="lora", weak_finetune=FinetuneConfig(lr=1e-4)).validate()
    code = main(["run", "--weak", "W.npy", "--strong", "S.npy", "--labels", "y.npy",
                 "--weak-epochs", "2"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("w2sg: error: ") and "--weak-train full|lora" in err
    assert len(err.strip().splitlines()) == 1


def test_a_sweep_head_sets_weak_finetune_and_a_weak_entrys_own_settings_win(model: Path) -> None:
    """A head entry's ``weak_finetune`` (fields not given: the head's student settings) reaches
    the run's config; a source with its own settings (a sweep's fine-tuned weak entry) trains
    with those, whatever ``weak_finetune`` says."""
    from w2sg.experiments.sweep import parse_sweep

    head = {"head": "softmax", "train": "lora", "lr": 1e-3, "head_lr": 2e-2,
            "weak_train": "full", "weak_finetune": {"lr": 5e-5, "epochs": 1}}  # fmt: skip
    sweep = parse_sweep({"tasks": [{"dataset": "rotten_tomatoes", "limit": 100}],
                         "weak": ["minilm-l6@2"], "strong": ["minilm-l6"], "heads": [head],
                         "seeds": [0]})  # fmt: skip
    (spec,) = sweep.expand()
    weak_ft = spec.config.weak_finetune
    assert weak_ft is not None and (weak_ft.lr, weak_ft.epochs, weak_ft.head_lr) == (5e-5, 1, 2e-2)
    assert "weak_lr=5e-05" in spec.head_label and "weak_epochs=1" in spec.head_label
    texts, y, weak, strong = _arrays()
    own = FinetuneConfig(epochs=1, batch_size=8, lr=7e-4, head_lr=3e-2)
    config = RunConfig(**_BASE, weak_train="full",
                       weak_finetune=FinetuneConfig(epochs=2, batch_size=8, lr=1e-5))  # fmt: skip
    source = FinetuneSource(str(model), texts, "full", finetune=own)
    info = run_pipeline(weak, strong, y, config, learners={"weak": source}).train["weak"]
    assert (info["lr"], info["head_lr"], info["epochs"], info["epochs_run"]) == (7e-4, 3e-2, 1, 1)
