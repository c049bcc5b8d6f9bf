"""Stand-ins for the data preparation and the pipeline, importable by worker processes.

They let the executor and store tests run in well under a second per run, and fail or sleep on
demand: a weak model named ``bad`` raises inside the run, a dataset parameter ``sleep`` makes each
run sleep that many seconds, a weak model named ``broken-input`` fails while its inputs are
prepared.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from w2sg.experiments.runner import DataUnit
from w2sg.experiments.sweep import RunSpec

N = 40


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def fake_prepare(unit: DataUnit, names: list[str]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for name in names:
        if "broken-input" in name:
            raise RuntimeError("cannot load broken-input")
        rng = _rng(unit.key, name)
        if name == "labels":
            out.append(rng.integers(0, 2, N))
        elif name == "ids":
            out.append(np.array([f"id{i}" for i in range(N)]))
        else:
            out.append(rng.normal(size=(N, 3)))
    return out


def fake_run(
    spec: RunSpec, weak: np.ndarray, strong: np.ndarray, labels: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    if spec.weak.model == "bad":
        raise ValueError("this weak model always fails")
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
