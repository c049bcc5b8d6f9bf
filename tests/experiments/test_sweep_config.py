"""Sweep YAML: validation with one-line errors that name the key, expansion and stable hashes."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from w2sg.config import RunConfig
from w2sg.errors import W2SGError
from w2sg.experiments.sweep import ModelRef, RunSpec, load_sweep, parse_sweep

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE: dict[str, Any] = {
    "name": "t",
    "tasks": [
        {
            "name": "s",
            "dataset": "synthetic",
            "params": {"n": 200, "n_weak": 3, "task": "classification"},
        }
    ],
    "weak": ["weak_1", "weak_2", "weak_3"],
    "strong": ["strong"],
    "heads": ["ridge", "softmax/xent"],
    "seeds": [0, 1],
    "run": {"strong_ridge": 0.0, "kernel": {"rule": "noise_floor"}},
}


def sweep_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_expansion_counts_and_unique_hashes() -> None:
    specs = parse_sweep(BASE).expand()
    assert len(specs) == 1 * 3 * 1 * 2 * 2
    assert len({s.config_hash for s in specs}) == len(specs)
    heads = {s.head_label for s in specs}
    assert heads == {"ridge", "softmax/xent"}
    # the synthetic preset fixes the task; the data seed follows the run seed
    assert {s.config.task for s in specs} == {"classification"}
    assert all(s.data_seed == s.config.seed for s in specs)
    assert all(
        s.config.strong_ridge == 0.0 and s.config.kernel.rule == "noise_floor" for s in specs
    )


def test_config_hash_is_sha256_of_canonical_description() -> None:
    spec = parse_sweep(BASE).expand()[0]
    text = json.dumps(spec.description(), sort_keys=True, separators=(",", ":"))
    assert spec.config_hash == hashlib.sha256(text.encode()).hexdigest()
    assert spec.description()["run"] == spec.config.identity()


def test_hashes_are_stable_across_key_order_and_parsing() -> None:
    a = {s.config_hash for s in parse_sweep(BASE).expand()}
    reordered = dict(reversed(list(copy.deepcopy(BASE).items())))
    reordered["run"] = {"kernel": {"rule": "noise_floor"}, "strong_ridge": 0.0}
    b = {s.config_hash for s in parse_sweep(reordered).expand()}
    assert a == b
    # a changed RunConfig field is a different run
    c = {s.config_hash for s in parse_sweep(sweep_with(run={"strong_ridge": 0.5})).expand()}
    assert not a & c


def test_spec_round_trips_through_its_dict() -> None:
    for spec in parse_sweep(BASE).expand():
        back = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert back == spec
        assert back.config_hash == spec.config_hash


def test_max_words_is_part_of_the_run_only_when_set() -> None:
    """Cutting texts changes the inputs, so it changes the hash; runs that do not cut keep the
    description (and the hash) they had before the key existed."""
    spec = parse_sweep(BASE).expand()[0]
    assert "max_words" not in spec.description()["dataset"]
    cut = RunSpec.from_dict({**spec.to_dict(), "dataset": {**spec.description()["dataset"]}})
    assert cut.max_words is None and cut.config_hash == spec.config_hash
    import dataclasses

    cut = dataclasses.replace(spec, max_words=64)
    assert cut.description()["dataset"]["max_words"] == 64
    assert cut.config_hash != spec.config_hash
    back = RunSpec.from_dict(json.loads(json.dumps(cut.to_dict())))
    assert back == cut and back.config_hash == cut.config_hash


def test_heads_with_their_own_kernel_are_labelled_apart() -> None:
    heads = ["ridge", {"head": "ridge", "kernel": {"rule": "variance", "variance": 0.99}}]
    specs = parse_sweep(sweep_with(heads=heads)).expand()
    labels = {s.head_label for s in specs}
    assert labels == {"ridge", "ridge[rule=variance,variance=0.99]"}
    tuned = [s for s in specs if s.head_label != "ridge"]
    assert {s.config.kernel.variance for s in tuned} == {0.99}
    assert {s.config.kernel.rule for s in tuned} == {"variance"}
    other = {"head": "softmax", "loss": "xent", "weak_ridge": 0.001, "kernel": {"rule": "k"}}
    other["kernel"] = {"rule": "k", "k_weak": 2, "k_strong": 3}
    (label,) = {s.head_label for s in parse_sweep(sweep_with(heads=[other])).expand()}
    assert label == "softmax/xent[k_strong=3,k_weak=2,rule=k,weak_ridge=0.001]"


def test_a_sweep_without_a_kernel_runs_the_default_rule_and_a_rules_parameter_picks_its_rule() -> (
    None
):
    """No ``kernel`` key: mp_edge (the default since issue 14), hashed apart from the runs the old
    default made (which name rule variance); ``kernel: {variance: 0.99}`` without ``rule`` is the
    variance rule, with the hash of ``{rule: variance, variance: 0.99}``."""
    plain = parse_sweep(sweep_with(heads=["ridge"], run={"strong_ridge": 0.0})).expand()
    assert {s.config.kernel.rule for s in plain} == {"mp_edge"}
    old = parse_sweep(
        sweep_with(heads=["ridge"], run={"kernel": {"rule": "variance", "variance": 0.9}})
    ).expand()
    assert not {s.config_hash for s in plain} & {s.config_hash for s in old}
    implied = parse_sweep(sweep_with(heads=[{"head": "ridge", "kernel": {"variance": 0.99}}]))
    named = parse_sweep(
        sweep_with(heads=[{"head": "ridge", "kernel": {"rule": "variance", "variance": 0.99}}])
    )
    assert {s.config.kernel.rule for s in implied.expand()} == {"variance"}
    assert [s.config_hash for s in implied.expand()] == [s.config_hash for s in named.expand()]
    # the sweep's run kernel (rule noise_floor here) does not override the rule a head implies
    assert BASE["run"]["kernel"]["rule"] == "noise_floor"
    iterative = sweep_with(heads=[{"head": "ridge", "kernel": {"sigma_estimate": "iterative"}}])
    assert {s.config.kernel.rule for s in parse_sweep(iterative).expand()} == {"mp_edge"}
    mixed = sweep_with(heads=[{"head": "ridge", "kernel": {"variance": 0.9, "noise_floor": 5}}])
    with pytest.raises(W2SGError, match=r"heads\[0\].*different k rules"):
        parse_sweep(mixed).expand()


def test_duplicate_combinations_run_once() -> None:
    data = sweep_with(heads=["ridge", {"head": "ridge"}])
    specs = parse_sweep(data).expand()
    assert len(specs) == 3 * 2


def test_model_syntax() -> None:
    data = sweep_with(
        tasks=[
            {
                "dataset": "synthetic",
                "params": {
                    "n": 100,
                    "latent": {"latent_dim": 3, "task": "classification"},
                    "representations": {
                        "a@1": {"coords": [0], "noise_dim": 5},
                        "big": {"coords": [0, 1, 2], "noise_dim": 5},
                    },
                },
            }
        ],
        weak=["a@1"],
        strong=[{"model": "big"}],
    )
    spec = parse_sweep(data).expand()[0]
    assert spec.weak == ModelRef("a", 1)
    assert spec.weak.label == "a@1"
    assert spec.config.task == "classification"
    assert ModelRef("m", 3, "cls").label == "m@3:cls"


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"taks": []}, "top level: unknown key 'taks'; did you mean 'tasks'?"),
        ({"tasks": []}, "tasks: must be a non-empty list"),
        ({"seeds": [0, 0]}, "seeds: lists a seed twice"),
        ({"seeds": ["a"]}, "seeds: must be a non-empty list of non-negative integers"),
        ({"weak": ["weak_9"]}, "tasks[0].weak[0]: the synthetic generator has no representation"),
        ({"weak": ["weak_1", "weak_1"]}, "weak[1]: 'weak_1' is listed twice"),
        ({"weak": [{"layer": 2}]}, "weak[0].model: is required"),
        ({"heads": [{"head": "nope"}]}, "tasks[0] × heads[0]: unknown head 'nope'"),
        ({"heads": [{"lossy": "xent"}]}, "heads[0]: unknown key 'lossy'; did you mean 'loss'?"),
        ({"heads": [{"seed": 1}]}, "heads[0].seed: seeds are listed at the top level"),
        ({"run": {"seed": 3}}, "run.seed: seeds are listed at the top level"),
        ({"run": {"strong_ridge": -1.0}}, "--weak-ridge and --strong-ridge must be >= 0"),
        ({"run": {"kernel": 3}}, "run.kernel: must be a mapping"),
        ({"strong": None}, "tasks[0].strong: no strong model"),
    ],
)
def test_errors_name_the_key(changes: dict[str, Any], needle: str) -> None:
    with pytest.raises(W2SGError) as info:
        parse_sweep(sweep_with(**changes), source="cfg.yaml")
    message = str(info.value)
    assert message.startswith("cfg.yaml: ")
    assert needle in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("task", "needle"),
    [
        ({"dataset": "synthetic", "params": {"bogus": 1}}, "unknown synthetic parameter 'bogus'"),
        ({"dataset": "synthetic", "params": {"n_weak": 0}}, "n_weak must be >= 1"),
        ({"dataset": "synthetic", "task": "probability"}, "disagrees with the generator"),
        ({"dataset": "no_such_data"}, "tasks[0].dataset: unknown dataset 'no_such_data'"),
        ({"dataset": "synthetic", "limit": 1}, "tasks[0].limit: must be an integer >= 2"),
        ({"params": {}}, "tasks[0].dataset: is required"),
        ({"dataset": "rotten_tomatoes", "params": {"n": 3}}, "params: is for the synthetic"),
        ({"dataset": "synthetic", "max_words": 5}, "max_words: is for text datasets"),
        ({"dataset": "rotten_tomatoes", "max_words": 0}, "max_words: must be an integer >= 1"),
        ({"dataset": "rotten_tomatoes", "max_words": True}, "max_words: must be an integer"),
        ({"dataset": "freesolv", "max_words": 5}, "max_words: is for text datasets"),
    ],
)
def test_task_errors(task: dict[str, Any], needle: str) -> None:
    with pytest.raises(W2SGError) as info:
        parse_sweep(sweep_with(tasks=[task]), source="cfg.yaml")
    assert needle in str(info.value)


def test_dataset_models_are_checked_against_the_registries() -> None:
    data = sweep_with(tasks=[{"dataset": "rotten_tomatoes", "limit": 50}])
    with pytest.raises(W2SGError, match=r"weak\[0\]: unknown model 'weak_1'"):
        parse_sweep(data)
    data["weak"], data["strong"] = ["maccs"], ["minilm-l6"]
    with pytest.raises(W2SGError, match="maccs reads smiles but rotten_tomatoes holds text"):
        parse_sweep(data)
    data["weak"] = ["minilm-l6@9"]
    with pytest.raises(W2SGError, match="minilm-l6 has layers 0..6"):
        parse_sweep(data)
    data["weak"] = ["static-64@2"]
    with pytest.raises(W2SGError, match="static-64 has no layers to pick"):
        parse_sweep(data)
    data["weak"] = ["static-64", "minilm-l6@3"]
    specs = parse_sweep(data).expand()
    assert {s.config.task for s in specs} == {"classification"}
    assert all(s.data_seed == 0 for s in specs)  # datasets keep one subsample across seeds


def test_load_sweep_file_errors(tmp_path: Path) -> None:
    with pytest.raises(W2SGError, match="not found"):
        load_sweep(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [\n")
    with pytest.raises(W2SGError, match="invalid YAML at line"):
        load_sweep(bad)


@pytest.mark.parametrize(
    "name",
    [
        "sweep-synthetic.yaml",
        "nlp-study.yaml",
        "nlp-study-rotten-tomatoes.yaml",
        "k-rules-nlp.yaml",
        "nlp-study-softmax.yaml",
    ],
)
def test_shipped_examples_parse(name: str) -> None:
    sweep = load_sweep(EXAMPLES / name)
    specs = sweep.expand()
    assert specs
    assert all(isinstance(s.config, RunConfig) for s in specs)
    if name == "nlp-study.yaml":
        weak = {s.weak.label for s in specs}
        assert len(weak) >= 20
        tasks = {s.task_name for s in specs}
        assert tasks >= {"rotten_tomatoes", "tweets", "bbc_news", "strategyqa"}
        assert {s.strong.label for s in specs} == {"mpnet-base"}
        assert "mpnet-base" not in weak


def test_k_rule_configs_extend_their_studies() -> None:
    """Run into the study's store, a k-rule sweep executes only its new kernel settings: its
    default-kernel runs are exactly the study's runs (same hashes)."""
    study = {s.config_hash for s in load_sweep(EXAMPLES / "nlp-study.yaml").expand()}
    rules = load_sweep(EXAMPLES / "k-rules-nlp.yaml").expand()
    assert {s.config_hash for s in rules if s.head_label == "ridge"} == study
    assert len(rules) == 7 * len(study)
    assert {s.config.kernel.rule for s in rules} == {
        "variance", "noise_floor", "gavish_donoho", "mp_edge", "parallel_analysis",
    }  # fmt: skip


def test_molecular_study_config_names_the_missing_smiles_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty cache: the SMILES transformers of the study are not trained, and the error says how.
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path))
    with pytest.raises(W2SGError, match="w2sg pretrain-smiles --family"):
        load_sweep(EXAMPLES / "molecular" / "study.yaml").expand()
