"""Fine-tuned learners (full and LoRA) on tiny transformers built here from a config."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from finetune_fixtures import (
    finetune_env,  # noqa: F401  (autouse: one thread, own cache)
    tiny_bert,
    tiny_texts,
)

from helpers import full
from w2sg.config import FinetuneConfig, RunConfig
from w2sg.errors import W2SGError
from w2sg.heads.finetune import FinetuneSource, bucketed_batches, check_finetunable, lr_factor
from w2sg.pipeline import run_pipeline

pytest.importorskip("peft", reason="peft is not installed: pip install -e .[finetune]")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tiny") / "bert")


def _data(n: int = 120) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    texts, y = tiny_texts(n)
    rng = np.random.default_rng(0)
    weak = rng.normal(size=(n, 4)) + 0.7 * y[:, None]
    strong = rng.normal(size=(n, 6)) + y[:, None]
    return texts, y, weak, strong


def _run(model: Path, mode: str, ckpt: Path | None = None, **ft: object):
    texts, y, weak, strong = _data()
    config = RunConfig(
        train=mode,
        fractions=(0.3, 0.3, 0.2, 0.2),
        finetune=FinetuneConfig(**{"epochs": 2, "batch_size": 8, **ft}),  # type: ignore[arg-type]
    )
    source = FinetuneSource(str(model), texts, mode, checkpoint_dir=ckpt)
    return run_pipeline(weak, strong, y, config, learners={"strong": source})


def _lora_params(rank: int, hidden: int = 32, inter: int = 64, layers: int = 2) -> int:
    # q, k, v, attention-output (h→h), intermediate (h→i), output (i→h): r·(in + out) each.
    per_layer = 4 * rank * (2 * hidden) + 2 * rank * (hidden + inter)
    return layers * per_layer


def test_lora_trains_adapters_and_head_only(model: Path) -> None:
    res = _run(model, "lora", lora_rank=4)
    info = res.train["w2s"]
    head = 33 * 2  # (hidden + 1) · classes, always trained
    assert info["mode"] == "lora"
    assert info["trainable_params"] == _lora_params(4) + head
    from transformers import AutoModel

    backbone = sum(p.numel() for p in AutoModel.from_pretrained(model).parameters())
    assert info["total_params"] == backbone + _lora_params(4) + head
    assert info["selected_by"] == "weak-labelled val loss"
    assert res.train["ceiling"]["selected_by"] == "true-labelled val loss"
    assert res.train["weak"]["mode"] == "probe"
    assert [p["epoch"] for p in res.curve["w2s"]] == [1, 2]
    assert "bounds" in res.curve["w2s"][0] and "val_loss" in res.curve["ceiling"][0]
    proba = res.predictions["w2s"]["test"]
    assert proba.shape[1] == 2 and np.allclose(proba.sum(axis=1), 1.0)
    assert res.theory_finetuned is not None and res.theory is not None
    assert res.theory_finetuned["op_norm"] != res.theory["op_norm"]
    record = res.to_dict()
    assert record["train"]["w2s"]["mode"] == "lora" and "curve" in record


def test_loading_and_lora_wrapping_say_nothing_useless(
    model: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """No "Loading weights" bar and no FutureWarning from peft reading transformers' deprecated
    ``is_gradient_checkpointing`` (both appeared in every `w2sg run --train lora` before);
    other warnings are untouched and the progress-bar setting is restored afterwards."""
    import warnings

    from transformers.utils import logging as hf_logging

    from w2sg.represent.extract import quiet_transformers

    assert hf_logging.is_progress_bar_enabled()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _run(model, "lora", lora_rank=4, epochs=1)
        with quiet_transformers():
            warnings.warn("kept", UserWarning, stacklevel=1)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "is_gradient_checkpointing" in m], messages
    assert "kept" in messages
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()


def test_full_trains_every_weight_and_same_seed_gives_identical_numbers(model: Path) -> None:
    a = _run(model, "full")
    b = _run(model, "full")
    assert a.train["w2s"]["trainable_params"] == a.train["w2s"]["total_params"]
    for m in ("w2s", "ceiling"):
        np.testing.assert_array_equal(a.predictions[m]["test"], b.predictions[m]["test"])
    # as JSON (an undefined PGR has NaN interval ends, which never compare equal as floats)
    assert a.to_dict()["pgr"] == b.to_dict()["pgr"]
    # the head starts at zero, so an untrained model predicts the uniform distribution; training
    # moved it
    assert not np.allclose(a.predictions["ceiling"]["test"], 0.5)


def test_lr_factor_warmup_then_decay() -> None:
    total, warm = 10, 0.2  # 2 warm-up steps
    assert [lr_factor(s, total, warm, "linear") for s in range(3)] == [0.5, 1.0, 1.0]
    assert lr_factor(6, total, warm, "linear") == pytest.approx(1 - 4 / 8)
    assert lr_factor(6, total, warm, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_factor(9, total, 0.0, "constant") == 1.0


def test_bucketed_batches_cover_every_row_once_and_depend_on_the_seed() -> None:
    lengths = np.random.default_rng(1).integers(1, 50, size=203)
    batches = bucketed_batches(lengths, 8, seed=3, bucket=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(203))
    assert max(len(b) for b in batches) == 8
    # within a bucket, batches are sorted by length: the spread inside a batch is small
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 2
    again = bucketed_batches(lengths, 8, seed=3, bucket=4)
    assert all(np.array_equal(x, y) for x, y in zip(batches, again, strict=True))
    other = bucketed_batches(lengths, 8, seed=4, bucket=4)
    assert not all(np.array_equal(x, y) for x, y in zip(batches, other, strict=False))


def test_bad_inputs_fail_before_training(model: Path) -> None:
    with pytest.raises(W2SGError, match="needs a transformers checkpoint"):
        check_finetunable("static-64", "lora")
    with pytest.raises(W2SGError, match="reads text but the inputs are smiles"):
        check_finetunable(str(model), "full", kind="smiles")
    source = FinetuneSource(str(model), ["w1 w2"], "lora")
    with pytest.raises(W2SGError, match="beyond .* limit of 64"):
        source.check(FinetuneConfig(max_length=65))
    with pytest.raises(W2SGError, match="--lora-rank must be >= 1"):
        RunConfig(train="lora", finetune=FinetuneConfig(lora_rank=0)).validate()
    texts, y, weak, strong = _data()
    with pytest.raises(W2SGError, match="needs its inputs"):
        run_pipeline(weak, strong, y, RunConfig(train="lora"))


@full
def test_minilm_l6_lora_end_to_end() -> None:
    from w2sg.data.datasets import load_dataset

    data = load_dataset("rotten_tomatoes", limit=120)
    rng = np.random.default_rng(0)
    weak = rng.normal(size=(120, 4)) + np.asarray(data.labels)[:, None]
    strong = rng.normal(size=(120, 4))
    config = RunConfig(train="lora", finetune=FinetuneConfig(epochs=1, batch_size=16))
    source = FinetuneSource("minilm-l6", data.inputs, "lora", kind="text")
    res = run_pipeline(weak, strong, data.labels, config, learners={"strong": source})
    info = res.train["w2s"]
    assert info["trainable_params"] < 0.05 * info["total_params"]
    assert info["pooling"] == "mean"


_KILLED_RUN = """
import sys
sys.path[:0] = {paths!r}
from test_finetune import _run
from pathlib import Path
from typing import Any
_run(Path({model!r}), "lora", Path({ckpt!r}), epochs=4)
"""


def test_kill_9_then_rerun_resumes_to_the_numbers_of_an_uninterrupted_run(
    model: Path, tmp_path: Path
) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    whole = _run(model, "lora", tmp_path / "whole", epochs=4)
    ckpt = tmp_path / "killed"
    here = str(Path(__file__).parent)
    script = _KILLED_RUN.format(
        paths=[here, str(Path(here).parent)], model=str(model), ckpt=str(ckpt)
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ))
    deadline = time.monotonic() + 240
    epoch = 0
    while time.monotonic() < deadline and proc.poll() is None:
        states = list((ckpt / "w2s").glob("*/state.json"))
        if states:
            epoch = json.loads(states[0].read_text())["state"]["epoch"]
            if epoch >= 1:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 1 <= epoch < 4, f"the run was not interrupted mid-training (epoch {epoch})"
    resumed = _run(model, "lora", ckpt, epochs=4)
    for m in ("w2s", "ceiling"):
        np.testing.assert_array_equal(resumed.predictions[m]["test"], whole.predictions[m]["test"])
        assert resumed.curve[m] == whole.curve[m]
    assert resumed.train["w2s"]["best_epoch"] == whole.train["w2s"]["best_epoch"]


def test_tokens_are_cached_by_content(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from w2sg.heads import finetune

    texts = ["w1 w2 w3", "w4 w5"]
    first = finetune._Backbone(str(model)).tokens(texts, 16)
    fresh = finetune._Backbone(str(model))
    monkeypatch.setattr(fresh, "tokenizer", None)  # a second tokenization would fail
    again = fresh.tokens(texts, 16)
    assert [list(x) for x in again[0]] == [list(x) for x in first[0]]
    assert list(first[1]) == [5, 4]  # [CLS] w w w [SEP], [CLS] w w [SEP]


def test_sweep_head_entries_take_the_fine_tuning_keys() -> None:
    from w2sg.experiments.executors import run_resources
    from w2sg.experiments.sweep import parse_sweep

    sweep = parse_sweep(
        {
            "tasks": [{"dataset": "rotten_tomatoes", "limit": 100}],
            "weak": ["static-64"],
            "strong": ["minilm-l6"],
            "heads": [
                "softmax",
                {"train": "lora", "epochs": 2, "lr": 3e-4, "lora_rank": 4, "device": "cuda"},
            ],
            "seeds": [0],
        }
    )
    probe, lora = sweep.expand()
    assert probe.config.train == "probe" and probe.config.finetune == FinetuneConfig()
    ft = lora.config.finetune
    assert (lora.config.train, ft.epochs, ft.lr, ft.lora_rank) == ("lora", 2, 3e-4, 4)
    assert lora.config.epochs == RunConfig().epochs  # Adam heads keep theirs
    assert run_resources(lora) == {"num_gpus": 1} and run_resources(probe) == {}
    assert probe.config_hash != lora.config_hash


def test_epoch_study_with_a_fine_tuned_student(model: Path, tmp_path: Path) -> None:
    from w2sg.experiments.epochs import epoch_study

    texts, y, weak, strong = _data()
    config = RunConfig(
        train="lora", optimizer="adam", theory=False,
        finetune=FinetuneConfig(batch_size=8, select="best"),
    )  # fmt: skip
    source = FinetuneSource(str(model), texts, "lora")
    study = epoch_study(weak, strong, y, config, epochs=(1, 3), student=source)
    assert [row["epoch"] for row in study.rows] == [1, 3]
    assert study.rows[0]["w2s_error"] != study.rows[1]["w2s_error"] or (
        study.rows[0]["d_fwd"] != study.rows[1]["d_fwd"]
    )
    assert any("fine-tuned (lora)" in note for note in study.notes)
    assert study.plot(tmp_path / "epochs.png").stat().st_size > 0


def test_regression_trains_on_standardized_targets(model: Path) -> None:
    """A regression head starts at zero on the standardized scale, i.e. at the training mean: with
    targets far from 0 and rates too small to move anything, every prediction is that mean (in the
    targets' units), and the validation loss is the MSE of that constant against the truth."""
    texts, y, _weak, _strong = _data()
    values = 250.0 + 40.0 * y + np.random.default_rng(2).normal(size=len(y))
    config = RunConfig(
        task="regression",
        train="full",
        finetune=FinetuneConfig(epochs=1, batch_size=8, lr=1e-9, head_lr=1e-9, select="last"),
    )
    source = FinetuneSource(str(model), texts, "full")
    learner = source.learner("ceiling", config, seed=0)
    rows, val = np.arange(0, 80), np.arange(80, 120)
    learner.fit(rows, values[rows], val=(val, values[val]))
    pred = learner.predict(val)
    np.testing.assert_allclose(pred, np.mean(values[rows]), atol=1e-3)
    expected_val = float(np.mean((np.mean(values[rows]) - values[val]) ** 2))
    assert learner.info()["curve"][0]["val_loss"] == pytest.approx(expected_val, rel=1e-4)


def test_an_ensemble_teaches_a_fine_tuned_student(model: Path) -> None:
    """`w2sg run --weak A B --train full`: the members are probes, the student and the ceiling
    fine-tune; with identical members the run is the single weak model's run."""
    from w2sg.data.splits import content_ids
    from w2sg.experiments.ensemble import run_ensemble

    texts, y, weak, strong = _data()
    ids = content_ids(strong, y)
    base: dict[str, Any] = {
        "train": "full", "fractions": (0.3, 0.3, 0.2, 0.2), "n_bootstrap": 20, "theory": False,
        "finetune": FinetuneConfig(epochs=1, batch_size=8),
    }  # fmt: skip

    def learner() -> dict[str, Any]:
        return {"strong": FinetuneSource(str(model), texts, "full")}

    single = run_pipeline(weak, strong, y, RunConfig(**base), ids=ids, learners=learner())
    ens = run_ensemble([weak, weak], strong, y, RunConfig(**base, combine="average"), ids=ids,
                       learners=learner())  # fmt: skip
    a, b = ens.to_dict(), single.to_dict()
    assert a["train"]["w2s"]["mode"] == "full" == b["train"]["w2s"]["mode"]
    for m in ("weak", "w2s", "ceiling"):
        assert a[m]["accuracy"] == pytest.approx(b[m]["accuracy"], abs=1e-12)
        assert a[m]["cross_entropy"] == pytest.approx(b[m]["cross_entropy"], rel=1e-5)
    with pytest.raises(W2SGError, match="members of an ensemble are probes"):
        run_ensemble([weak, weak], strong, y, RunConfig(weak_train="full", combine="average"))
