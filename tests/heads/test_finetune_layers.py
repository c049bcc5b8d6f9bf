"""Layer-truncated fine-tuning: ``NAME@L`` fine-tunes the embeddings and first L blocks, on tiny
transformers built here from a config (no download)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from finetune_fixtures import (
    finetune_env,  # noqa: F401  (autouse: one thread, own cache)
    tiny_bert,
    tiny_texts,
)

from w2sg.config import FinetuneConfig, RunConfig
from w2sg.errors import W2SGError
from w2sg.heads.finetune import FinetuneSource, check_finetunable, kept_blocks, truncate_blocks
from w2sg.pipeline import run_pipeline

pytest.importorskip("peft", reason="peft is not installed: pip install -e .[finetune]")

HEAD = 33 * 2  # (hidden 32 + bias) · 2 classes


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tiny4") / "bert", layers=4)


def _fresh_params(folder: Path, layers: int) -> int:
    """Parameters of a freshly built ``layers``-block model with the folder's config."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder)
    config.num_hidden_layers = layers
    return sum(p.numel() for p in AutoModel.from_config(config).parameters())


def _fit(source: FinetuneSource, epochs: int = 2, **kw: Any) -> Any:
    texts = source.inputs
    y = tiny_texts(len(texts))[1]
    config = RunConfig(finetune=FinetuneConfig(epochs=epochs, batch_size=8, lr=1e-3))
    learner = source.learner("weak", config, seed=0)
    targets = np.eye(2)[y]
    rows, val = np.arange(0, 60), np.arange(60, 80)
    return learner.fit(rows, targets[rows], val=(val, targets[val]), **kw)


def test_parameter_counts_are_those_of_the_smaller_model(model: Path) -> None:
    texts, _ = tiny_texts(80)
    full = _fit(FinetuneSource(f"{model}@2", texts, "full"), epochs=1).info()
    assert full["blocks"] == 2 and full["model"] == f"{model}@2"
    assert full["total_params"] == _fresh_params(model, 2) + HEAD
    assert full["trainable_params"] == full["total_params"]
    assert full["total_params"] < _fresh_params(model, 4)  # blocks 3 and 4 are gone
    lora = _fit(FinetuneSource(f"{model}@2", texts, "lora"), epochs=1).info()
    rank, hidden, inter = 8, 32, 64  # r·(in + out) for q, k, v, attention-out, intermediate, out
    adapters = 2 * (4 * rank * (2 * hidden) + 2 * rank * (hidden + inter))
    assert lora["trainable_params"] == adapters + HEAD
    assert lora["total_params"] == _fresh_params(model, 2) + adapters + HEAD
    whole = _fit(FinetuneSource(f"{model}@4", texts, "full"), epochs=1).info()
    assert whole["blocks"] is None and whole["total_params"] == _fresh_params(model, 4) + HEAD


def test_truncated_features_before_training_are_the_probe_representation(model: Path) -> None:
    """Before any step, the truncated model's pooled state is what the probe of ``@2`` reads."""
    from w2sg.represent.extract import embed

    texts, _ = tiny_texts(30)
    source = FinetuneSource(f"{model}@2", texts, "full")
    learner = source.learner("weak", RunConfig(), seed=0)
    learner.tokens_, learner.lengths_ = source.backbone.tokens(texts, learner.max_length)
    learner._build(2)
    ours = learner.represent(np.arange(len(texts)))
    probe = embed(str(model), texts, layer=2, cache=False)
    np.testing.assert_allclose(ours, probe, atol=1e-5)
    last = embed(str(model), texts, layer=4, cache=False)
    assert not np.allclose(ours, last, atol=1e-3)


def test_truncating_a_decoder_drops_its_final_norm() -> None:
    """Llama-style: the full model's hidden state after block 2 precedes the final norm."""
    import torch
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    whole = LlamaModel(config).eval()
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        states = whole(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        cut = LlamaModel(config).eval()
        cut.load_state_dict(whole.state_dict())
        truncate_blocks(cut, 2)
        out = cut(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(out, states[2])
    assert len(cut.layers) == 2 and cut.config.num_hidden_layers == 2


def test_same_seed_is_identical_and_a_resume_ends_with_the_uninterrupted_numbers(
    model: Path, tmp_path: Path
) -> None:
    texts, _ = tiny_texts(80)

    def source(folder: Path | None) -> FinetuneSource:
        return FinetuneSource(f"{model}@1", texts, "full", checkpoint_dir=folder)

    rows = np.arange(60, 80)
    a = _fit(source(None), epochs=3)
    b = _fit(source(None), epochs=3)
    np.testing.assert_array_equal(a.predict(rows), b.predict(rows))

    class Stop(Exception):
        pass

    def stop(epoch: int, _learner: Any) -> dict[str, Any]:
        if epoch == 2:  # raised before epoch 2 is checkpointed: epoch 1 is on disk
            raise Stop
        return {}

    with pytest.raises(Stop):
        _fit(source(tmp_path / "ckpt"), epochs=3, on_epoch=stop)
    resumed = _fit(source(tmp_path / "ckpt"), epochs=3)
    np.testing.assert_array_equal(resumed.predict(rows), a.predict(rows))
    assert resumed.curve_ == a.curve_ and resumed.best_epoch_ == a.best_epoch_
    # a checkpoint of @1 is never taken for the whole model's, or another cut's
    keys = {
        _fit(FinetuneSource(name, texts, "full"), epochs=1)._checkpoint_key(
            np.arange(3), np.eye(2)[[0, 1, 0]], None
        )
        for name in (str(model), f"{model}@1", f"{model}@2")
    }
    assert len(keys) == 3


def test_a_truncated_weak_model_with_its_own_settings_in_the_pipeline(model: Path) -> None:
    texts, y = tiny_texts(120)
    rng = np.random.default_rng(0)
    weak, strong = rng.normal(size=(120, 4)), rng.normal(size=(120, 6)) + y[:, None]
    own = FinetuneConfig(epochs=1, batch_size=8, lr=3e-4, head_lr=2e-2)
    config = RunConfig(
        weak_train="full", fractions=(0.3, 0.3, 0.2, 0.2), n_bootstrap=20, theory=False
    )
    source = FinetuneSource(f"{model}@1", texts, "full", finetune=own)
    res = run_pipeline(weak, strong, y, config, learners={"weak": source})
    info = res.train["weak"]
    assert (info["mode"], info["blocks"], info["lr"], info["head_lr"]) == ("full", 1, 3e-4, 2e-2)
    assert info["epochs_run"] == 1 and info["total_params"] == _fresh_params(model, 1) + HEAD
    assert res.train["w2s"]["mode"] == "probe"


def test_layers_that_cannot_be_fine_tuned_are_one_line_errors(model: Path) -> None:
    with pytest.raises(W2SGError, match="@0 is the embedding output"):
        check_finetunable(f"{model}@0", "full")
    with pytest.raises(W2SGError, match="not at a named layer"):
        check_finetunable(f"{model}@pooler", "lora")
    with pytest.raises(W2SGError, match="out of range; this model has blocks 1..4"):
        FinetuneSource(f"{model}@5", ["w1"], "full").check(FinetuneConfig())
    with pytest.raises(W2SGError, match="embedding output"):
        kept_blocks(-5, 4, "m")
    assert [kept_blocks(x, 4, "m") for x in (None, 1, 3, 4, -1, -2)] == [None, 1, 3, None, None, 3]


def _sweep(weak: list[Any], **extra: Any) -> Any:
    from w2sg.experiments.sweep import parse_sweep

    return parse_sweep(
        {
            "tasks": [{"dataset": "rotten_tomatoes", "limit": 100}],
            "weak": weak,
            "strong": ["minilm-l6"],
            "heads": ["softmax/xent", {"head": "softmax", "train": "lora", "lr": 1e-3}],
            "seeds": [0],
            **extra,
        }
    )


def test_a_sweep_weak_entry_is_fine_tuned_with_its_own_settings() -> None:
    from w2sg.experiments.sweep import RunSpec

    tuned = {"model": "minilm-l6", "layer": 2, "train": "full", "lr": 5e-5, "epochs": 2}
    plain = {s.head_label: s for s in _sweep(["minilm-l6@2"]).expand()}
    specs = _sweep(["minilm-l6@2", tuned]).expand()
    assert len(specs) == 4
    probed = [s for s in specs if s.weak.train is None]
    assert {s.config_hash for s in probed} == {s.config_hash for s in plain.values()}
    for spec in (s for s in specs if s.weak.train is not None):
        assert spec.weak.label == "minilm-l6@2[full,epochs=2,lr=5e-05]"
        assert spec.weak.name == "minilm-l6@2" and spec.config.weak_train == "full"
        own = spec.weak.finetune_config()
        assert own is not None and (own.lr, own.epochs, own.head_lr) == (5e-5, 2, 1e-3)
        assert spec.description()["weak"]["train"] == "full"
        again = RunSpec.from_dict(spec.to_dict())
        assert again.weak == spec.weak and again.config_hash == spec.config_hash
        # the student keeps the head entry's mode and settings
        assert spec.config.train == plain[spec.head_label].config.train
        assert spec.config.finetune == plain[spec.head_label].config.finetune


@pytest.mark.parametrize(
    ("weak", "strong", "pattern"),
    [
        ([{"model": "minilm-l6", "layer": 2, "lr": 5e-5}], None, "add train: full"),
        ([{"model": "minilm-l6", "train": "probe"}], None, "must be full or lora"),
        ([{"model": "minilm-l6", "train": "full", "lora_rank": 0}], None, "--lora-rank"),
        ([{"model": "minilm-l6", "train": "full", "bogus": 1}], None, "unknown key 'bogus'"),
        (["static-64"], [{"model": "minilm-l6", "train": "full"}], "set per head entry"),
    ],
)  # fmt: skip
def test_bad_fine_tuned_weak_entries_are_refused(
    weak: list[Any], strong: list[Any] | None, pattern: str
) -> None:
    with pytest.raises(W2SGError, match=pattern):
        _sweep(weak, **({"strong": strong} if strong else {}))


def test_study_groups_fine_tuned_supervisors_with_the_probed_ones() -> None:
    """A fine-tuned weak entry (its label says so) sits in the group of the probed supervisors of
    the same student (head entry); other head entries stay apart."""
    from w2sg.experiments.studies import _group_key

    tuned = {"model": "minilm-l6", "layer": 2, "train": "full", "lr": 5e-5}
    keys: dict[tuple[str, bool], Any] = {}
    for spec in _sweep(["minilm-l6@2", "static-64", tuned]).expand():
        row = {"task": spec.task_name, "strong": spec.strong.label, "config": spec.to_dict()}
        keys.setdefault((spec.head_label, spec.weak.train is None), set()).add(_group_key(row))
    assert all(len(v) == 1 for v in keys.values())
    heads = {head for head, _ in keys}
    assert len(heads) == 2
    for head in heads:
        assert keys[(head, True)] == keys[(head, False)]
    a, b = sorted(heads)
    assert keys[(a, True)] != keys[(b, True)]


def test_a_sweep_fine_tunes_a_truncated_weak_entry_end_to_end(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data-file sweep: the weak entry ``{model: M, layer: 1, train: full, ...}`` is the
    1-block model fine-tuned with its own settings; the probe of ``M@1`` runs beside it; a second
    sweep finds both done."""
    import json

    import pandas as pd

    from w2sg.cli import main
    from w2sg.experiments.store import ResultStore

    texts, y = tiny_texts(120)
    pd.DataFrame({"text": texts, "label": y}).to_csv(tmp_path / "d.csv", index=False)
    tuned = (
        f"{{model: '{model}', layer: 1, train: full, epochs: 1, lr: 0.001, head_lr: 0.02, "
        "batch_size: 8}"
    )
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        "tasks:\n  - {data: d.csv, text: text, label: label}\n"
        f"weak: ['{model}@1', {tuned}]\nstrong: ['{model}']\nheads: [softmax]\nseeds: [0]\n"
        "run: {n_bootstrap: 20, theory: false}\n"
    )
    db = tmp_path / "runs.db"
    args = ["sweep", str(cfg), "--store", str(db), "--json", "--workers", "1", "--no-progress"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["total"], summary["executed"], summary["failed"]) == (2, 2, 0), summary
    with ResultStore(db) as store:
        rows = {str(r["weak"]): r for r in store.rows("done")}
    probe = rows[f"{model}@1"]
    weak = rows[f"{model}@1[full,batch_size=8,epochs=1,head_lr=0.02,lr=0.001]"]
    info = weak["metrics"]["train"]["weak"]
    assert "weak_train" not in probe["config"]["run"]  # the probe's run is as before
    assert (probe["metrics"].get("train") or {}).get("weak", {}).get("mode", "probe") == "probe"
    assert (info["mode"], info["blocks"], info["lr"], info["head_lr"]) == ("full", 1, 1e-3, 2e-2)
    assert info["total_params"] == _fresh_params(model, 1) + HEAD
    assert weak["config"]["run"]["weak_train"] == "full"
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["executed"], again["skipped"]) == (0, 2), again
