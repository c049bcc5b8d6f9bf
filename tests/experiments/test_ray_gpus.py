"""Ray places extractions by neural models on GPUs, and nothing else.

A real local Ray cluster that declares one GPU (Ray schedules by declared resources, so no device
is needed): the prepare stand-in reports ``ray.get_gpu_ids()`` of the task that ran it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sweep_fakes import gpu_probe_prepare, gpu_probe_run

from helpers import local_ray
from w2sg.config import RunConfig
from w2sg.errors import W2SGError
from w2sg.experiments.executors import run_sweep
from w2sg.experiments.runner import DataUnit, uses_gpu
from w2sg.experiments.store import ResultStore
from w2sg.experiments.sweep import ModelRef, RunSpec


def test_only_transformers_extractions_use_a_gpu() -> None:
    def unit(model: str | None, kind: str = "repr") -> DataUnit:
        ref = None if model is None else ModelRef(model)
        return DataUnit(kind, "rotten_tomatoes", model=ref)

    assert uses_gpu(unit("mpnet-base")) and uses_gpu(unit("gemma-270m"))
    assert uses_gpu(unit("minilm-l6"))  # the transformers backend (minilm-l3 is ONNX)
    for cpu in ("static-64", "minilm-l3", "use-multilingual", "maccs", "no-such-model"):
        assert not uses_gpu(unit(cpu))
    assert not uses_gpu(unit(None, "labels"))


def _specs() -> list[RunSpec]:
    return [
        RunSpec(
            task_name="rt",
            dataset="rotten_tomatoes",
            params={},
            limit=40,
            data_seed=0,
            weak=weak,
            strong=ModelRef("minilm-l6"),
            config=RunConfig(seed=0),
            head_label="ridge",
        )
        for weak in (ModelRef("static-64"), ModelRef("minilm-l6", 3))
    ]


@pytest.fixture(scope="module")
def ray_with_a_gpu() -> Iterator[None]:
    with local_ray(num_cpus=2, num_gpus=1):  # a declared GPU: Ray schedules by resources
        yield


@pytest.mark.ray
def test_ray_gives_neural_extractions_a_gpu(ray_with_a_gpu: None, tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    kwargs: dict[str, Any] = {"executor": "ray", "progress": False}
    kwargs.update(prepare_fn=gpu_probe_prepare, run_fn=gpu_probe_run)
    summary = run_sweep(_specs(), db, **kwargs)
    assert (summary.executed, summary.failed) == (2, 0)
    with ResultStore(db) as store:
        gpus = {r["weak"]: r["metrics"]["gpus"] for r in store.rows("done")}
    assert gpus == {
        "static-64": {"weak": 0.0, "strong": 1.0},
        "minilm-l6@3": {"weak": 1.0, "strong": 1.0},
    }
    # asked not to, Ray extracts on CPUs; asked for more GPUs than the cluster has: one line
    db2 = tmp_path / "cpu.db"
    run_sweep(_specs(), db2, gpus_per_extraction=0, **kwargs)
    with ResultStore(db2) as store:
        assert {r["metrics"]["gpus"]["strong"] for r in store.rows("done")} == {0.0}
    with pytest.raises(W2SGError, match="the largest Ray node has 1 GPUs"):
        run_sweep(_specs(), tmp_path / "x.db", gpus_per_extraction=2, **kwargs)


def test_gpu_option_is_for_ray(tmp_path: Path) -> None:
    with pytest.raises(W2SGError, match="is for --executor ray"):
        run_sweep(_specs(), tmp_path / "runs.db", gpus_per_extraction=1)
    for bad in (-1, 1.5, float("nan")):
        with pytest.raises(W2SGError, match="a fraction in \\[0, 1\\] or a whole number"):
            run_sweep(_specs(), tmp_path / "runs.db", executor="ray", gpus_per_extraction=bad)
    assert not (tmp_path / "runs.db").exists()
