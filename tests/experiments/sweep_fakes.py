"""Stand-ins for the data preparation and the pipeline, importable by worker processes.

They let the executor and store tests run in well under a second per run, and fail or sleep on
demand: a weak model named ``bad`` raises inside the run, a dataset parameter ``sleep`` makes each
run sleep that many seconds, a task named ``broken`` fails while its inputs are prepared, and a
``log`` parameter names a folder where every preparation leaves one file.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.experiments.runner import DataUnit
from w2sg.experiments.sweep import RunSpec

N = 40
#: Environment variables the fake run reports back, to check what workers see.
WORKER_ENV_KEYS = ("OMP_NUM_THREADS", "HF_HUB_DISABLE_PROGRESS_BARS")


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def fake_prepare(unit: DataUnit, names: list[str]) -> list[np.ndarray]:
    if unit.params.get("task") == "broken":
        raise RuntimeError("cannot load this task")
    log = unit.params.get("log")
    if log:  # one file per call, to count how often each unit is prepared
        Path(log, f"{unit.key}-{os.getpid()}-{time.time_ns()}").touch()
    out: list[np.ndarray] = []
    for name in names:
        rng = _rng(unit.key, name)
        if name == "labels":
            out.append(rng.integers(0, 2, N))
        elif name == "ids":
            out.append(np.array([f"id{i}" for i in range(N)]))
        elif name == "splits":  # no splits of its own: the pipeline draws them
            out.append(np.array([], dtype=str))
        else:
            out.append(rng.normal(size=(N, 3)))
    return out


#: Connections a worker keeps open (a weak model named ``lock`` takes the store's write lock).
_HELD: list[Any] = []


def fake_run(
    spec: RunSpec, weak: np.ndarray, strong: np.ndarray, labels: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    if spec.weak.model == "bad":
        raise ValueError("this weak model always fails")
    if spec.params.get("say"):
        print(spec.params["say"], flush=True)  # a worker's own output
    if spec.weak.model == "crash":
        os._exit(3)  # a worker process that dies mid-run
    if spec.weak.model == "lock":  # another process takes the store's write lock and keeps it
        import sqlite3

        conn = sqlite3.connect(spec.params["store"], isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        _HELD.append(conn)
    time.sleep(float(spec.params.get("sleep", 0.0)))
    rng = _rng(spec.config_hash)
    err = float(rng.uniform(0.1, 0.4))
    op = err + float(rng.normal(0, 0.02))
    return {
        "metrics": {
            "weak": {"accuracy": 1 - err - 0.05},
            "w2s": {"accuracy": 1 - err},
            "ceiling": {"accuracy": 0.95},
            "pgr": {"value": 0.5, "ci_low": 0.3, "ci_high": 0.7, "reason": None},
            "worker_env": {k: os.environ.get(k) for k in WORKER_ENV_KEYS},
        },
        "theory": {
            "op_norm": op,
            "fro_sq_over_n": op**2,
            "predicted_gap": op / 3,
            "measured_gap": op / 3.2,
            "rows": float(weak.sum() * 0 + len(labels)),
        },
        "bounds": None,
    }


def make_specs(
    weak: list[str],
    seeds: list[int],
    sleep: float = 0.0,
    tasks: tuple[str, ...] = ("t1",),
    log: str | None = None,
) -> list[RunSpec]:
    """Runs of a synthetic-looking sweep for the fakes (never validated against the generator)."""
    from w2sg.config import RunConfig
    from w2sg.experiments.sweep import ModelRef

    params: dict[str, Any] = {"sleep": sleep} if sleep else {}
    if log:
        params["log"] = log
    return [
        RunSpec(
            task_name=task,
            dataset="synthetic",
            params={**params, "task": task},
            limit=None,
            data_seed=seed,
            weak=ModelRef(w),
            strong=ModelRef("strong"),
            config=RunConfig(seed=seed, n_bootstrap=10),
            head_label="softmax/xent",
        )
        for task in tasks
        for w in weak
        for seed in seeds
    ]


def sweep_main(db: str, n_weak: int, sleep: float) -> None:
    """Entry point of the kill test's subprocess: a slow local sweep over 2 workers."""
    from w2sg.experiments.executors import run_sweep

    specs = make_specs([f"w{i}" for i in range(n_weak)], [0, 1], sleep=sleep)
    run_sweep(specs, db, workers=2, run_fn=fake_run, prepare_fn=fake_prepare, progress=False)


if __name__ == "__main__":
    import sys

    sweep_main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))


def gpu_probe_prepare(unit: DataUnit, names: list[str]) -> list[np.ndarray]:
    """Like :func:`fake_prepare`, but every representation holds the number of GPUs Ray
    assigned to the task that prepared it."""
    import ray

    n_gpus = float(len(ray.get_gpu_ids()))
    return [
        np.full((N, 3), n_gpus) if name.startswith("X") else array
        for name, array in zip(names, fake_prepare(unit, names), strict=True)
    ]


def gpu_probe_run(
    spec: RunSpec, weak: np.ndarray, strong: np.ndarray, labels: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    """Reports the GPUs behind each input (see :func:`gpu_probe_prepare`)."""
    return {"metrics": {"gpus": {"weak": float(weak[0, 0]), "strong": float(strong[0, 0])}}}
