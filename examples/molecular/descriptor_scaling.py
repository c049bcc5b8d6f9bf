"""Raw vs log-scaled RDKit descriptors as the weak model for MiniMol (docs/molecular-study.md,
"Scaled descriptors"): `rdkit2d` (raw Descriptors.descList, Ipc up to 1e9) against `rdkit2d-log`
(sign(x)·log1p(|x|), no fitted statistics), with the molecular rank study's settings
(examples/molecular/rank-study.yaml: ridge heads β = 0.001, Gavish-Donoho k, splits 0.4/0.4/0.2,
seeds 0-2, 200 bootstrap resamples, no bounds).

Per task, weak model and seed: the weak, w2s and ceiling test MSE, the label-free op norm and k_w
of the theory block, two ranks of the centred weak matrix X on weak_train: numpy's
``matrix_rank`` (singular values above σ_max · max(n, d) · eps) and the stable rank
‖X‖_F² / ‖X‖_op² (how many directions carry the variance: 1 when one column dominates), and the
number of weak labels on
D̂ out of range (the ``weak_labels_out_of_range`` flag, docs/pipeline.md). Then means ± SE over
seeds.

    PYTHONPATH=src python examples/molecular/descriptor_scaling.py --tasks freesolv solubility
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from w2sg.config import KernelConfig, RunConfig
from w2sg.data.datasets import load_dataset
from w2sg.pipeline import run_pipeline
from w2sg.represent.extract import embed

#: task name: (registered dataset, load_dataset keywords), as in the rank study's config.
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "freesolv": ("freesolv", {}),
    "solubility": ("solubility", {}),
    "qm9-gap": ("qm9:gap", {"limit": 2000}),
    "logp": ("logp", {"limit": 2000}),
}
WEAK = ("rdkit2d", "rdkit2d-log")


def rows_of(task: str, seeds: list[int]) -> list[dict[str, Any]]:
    dataset, load = TASKS[task]
    data = load_dataset(dataset, **load)
    inputs, labels, ids = list(data.inputs), np.asarray(data.labels), np.asarray(data.ids)
    strong = np.asarray(embed("minimol", inputs, progress=False), np.float64)
    out = []
    for weak_name in WEAK:
        weak = np.asarray(embed(weak_name, inputs, progress=False), np.float64)
        for seed in seeds:
            config = RunConfig(task="regression", head="ridge", weak_ridge=1e-3,
                               strong_ridge=1e-3, kernel=KernelConfig(rule="gavish_donoho"),
                               seed=seed, n_bootstrap=200, bounds=False)  # fmt: skip
            res = run_pipeline(weak, strong, labels, config, ids=ids)
            rec = res.to_dict()
            tr = res.splits["weak_train"]
            centred = weak[tr] - weak[tr].mean(axis=0)
            out.append({
                "task": task, "weak": weak_name, "seed": seed,
                "weak_mse": rec["weak"]["mse"], "w2s_mse": rec["w2s"]["mse"],
                "ceiling_mse": rec["ceiling"]["mse"], "op_norm": rec["theory"]["op_norm"],
                "k_weak": rec["theory"]["k_weak"],
                "rank": int(np.linalg.matrix_rank(centred)),
                "stable_rank": float(np.sum(centred**2) / np.linalg.norm(centred, 2) ** 2),
                "out_of_range": rec["weak_label_range"]["n_out_of_range"],
                "flags": [f["code"] for f in rec["flags"]],
            })  # fmt: skip
    return out


def _ms(values: list[float]) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.3f}±{v.std(ddof=1) / np.sqrt(len(v)):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["freesolv", "solubility"], choices=TASKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", action="store_true", help="one JSON line per run")
    args = parser.parse_args()
    with threadpool_limits(limits=1):
        rows = [r for task in args.tasks for r in rows_of(task, args.seeds)]
    if args.json:
        print("\n".join(json.dumps(r) for r in rows))
        return
    print(f"{'task':<12}{'weak':<13}{'seed':>5}{'weak mse':>10}{'w2s mse':>10}{'ceiling':>9}"
          f"{'op_norm':>9}{'k_w':>5}{'rank':>6}{'stable':>8}{'out':>5}")  # fmt: skip
    for r in rows:
        print(f"{r['task']:<12}{r['weak']:<13}{r['seed']:>5}{r['weak_mse']:>10.3f}"
              f"{r['w2s_mse']:>10.3f}{r['ceiling_mse']:>9.3f}{r['op_norm']:>9.4f}"
              f"{r['k_weak']:>5}{r['rank']:>6}{r['stable_rank']:>8.2f}"
              f"{r['out_of_range']:>5}")  # fmt: skip
    print()
    print(f"{'task':<12}{'weak':<13}{'weak mse':>16}{'w2s mse':>18}{'op_norm':>14}  k_w / rank")
    for task in args.tasks:
        for weak in WEAK:
            sel = [r for r in rows if r["task"] == task and r["weak"] == weak]
            ks = "/".join(str(r["k_weak"]) for r in sel)
            ranks = "/".join(str(r["rank"]) for r in sel)
            print(f"{task:<12}{weak:<13}{_ms([r['weak_mse'] for r in sel]):>16}"
                  f"{_ms([r['w2s_mse'] for r in sel]):>18}{_ms([r['op_norm'] for r in sel]):>14}"
                  f"  {ks} / {ranks}")  # fmt: skip


if __name__ == "__main__":
    main()
