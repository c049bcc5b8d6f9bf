"""Ensemble study: does the metric-weighted ensemble of weak supervisors beat the single supervisor
the label-free metric picks, and the plain average? (docs/ensembles.md, "Study")

For each task and seed: the 22 weak representations of the NLP study (examples/nlp-study.yaml) on
the same examples, strong mpnet-base, softmax heads (L2 0.001, the library default; teacher and
student are the logistic probes people train). Every member is trained once on D̃ and shared
between the rules (``member_outputs``); the members' label-free op norms on D̂ are computed once.
Compared, by the student's test accuracy:

- ``single_metric``: the one weak model with the smallest op norm (the choice `w2sg rank` makes);
- ``average``, ``metric`` (softmax(−op/τ), τ = 0.05), ``learned``, ``learned_labelled``
  (100 revealed labels), ``vote``, ``soft_vote`` over all 22.

Needs the NLP study's embedding cache (run the study first). Writes one JSON line per (task, seed,
entry), rewritten atomically after each task and seed, and prints the means ± SE over seeds.

    PYTHONPATH=src python examples/ensemble_study.py --tasks rotten_tomatoes tweets --out ens.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from w2sg.atomic import write_text
from w2sg.config import RunConfig
from w2sg.data.datasets import load_dataset
from w2sg.experiments.ensemble import member_outputs, run_ensemble
from w2sg.experiments.rank import _layers_of_model, split_layer
from w2sg.pipeline import run_pipeline
from w2sg.theory.kernels import representation_metrics

WEAK = [
    "static-64", "wordllama", "spacy-md", "use-multilingual", "minilm-l3", "minilm-l6",
    *(f"minilm-l6@{i}" for i in range(6)), *(f"mpnet-base@{i}" for i in (2, 4, 6, 8, 10)),
    *(f"gemma-270m@{i}" for i in (3, 6, 9, 12, 15)),
]  # fmt: skip
TASKS = {
    "rotten_tomatoes": {"limit": 2000},
    "tweets": {"limit": 2000},
    "bbc_news": {"limit": 1000, "max_words": 128},
    "strategyqa": {},
}
RULES = ("average", "metric", "learned", "learned_labelled", "vote", "soft_vote")


def representations(task: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    data = load_dataset(task, **TASKS[task])
    texts = list(data.inputs)
    wanted: dict[str, list[Any]] = {}
    for name in [*WEAK, "mpnet-base"]:
        model, layer = split_layer(name)
        wanted.setdefault(model, []).append(layer)
    reps = {}
    for model, layers in wanted.items():
        for layer, arr in _layers_of_model(model, layers, texts).items():
            reps[model if layer is None else f"{model}@{layer}"] = np.asarray(arr, np.float64)
    return reps, np.asarray(data.labels), np.asarray(data.ids)


def study(task: str, seed: int) -> list[dict[str, Any]]:
    reps, labels, ids = representations(task)
    strong = reps["mpnet-base"]
    weak = [reps[w] for w in WEAK]
    config = RunConfig(head="softmax", weak_ridge=1e-3, strong_ridge=1e-3, seed=seed,
                       n_bootstrap=200, bounds=False)  # fmt: skip
    outputs = member_outputs(weak, labels, config, ids)
    from w2sg.data.splits import make_splits
    from w2sg.pipeline import prepare_labels

    lab = prepare_labels(labels, config.task)
    splits = make_splits(ids, config.fractions, seed=seed, stratify=lab.values)
    tr, hat = splits["weak_train"], splits["w2s_train"]
    ops = [
        representation_metrics(w[hat], strong[hat], weak_train=w[tr], beta_weak=1e-3,
                               beta_strong=1e-3, config=config.kernel).metrics["op_norm"]
        for w in weak
    ]  # fmt: skip
    rows = []
    pick = int(np.argmin(ops))
    single = run_pipeline(weak[pick], strong, labels, config, ids=ids).to_dict()
    rows.append(
        {
            "task": task,
            "seed": seed,
            "entry": "single_metric",
            "members": [WEAK[pick]],
            "weights": [1.0],
            "w2s": single["w2s"]["accuracy"],
            "weak": single["weak"]["accuracy"],
            "ceiling": single["ceiling"]["accuracy"],
        }
    )
    for rule in RULES:
        cfg = RunConfig(**{**config.to_dict(), "kernel": config.kernel, "combine": rule})
        rec = run_ensemble(weak, strong, labels, cfg, names=WEAK, ids=ids, outputs=outputs,
                           op_norms=ops).to_dict()  # fmt: skip
        rows.append({"task": task, "seed": seed, "entry": rule, "members": WEAK,
                     "weights": rec["ensemble"]["weights"], "w2s": rec["w2s"]["accuracy"],
                     "weak": rec["weak"]["accuracy"], "ceiling": rec["ceiling"]["accuracy"],
                     "theory": {k: rec["theory"].get(k) for k in ("op_norm", "predicted_gap",
                                                                   "measured_gap")}})  # fmt: skip
    for r in rows:
        r["member_op_norm"] = ops
        r["member_weak"] = [
            float(np.mean(o[splits["test"]].argmax(1) == lab.values[splits["test"]]))
            for o in outputs
        ]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'task':<16}{'entry':<18}{'seeds':>6}{'weak acc':>16}{'w2s acc':>16}"]
    keys = sorted({(r["task"], r["entry"]) for r in rows}, key=lambda k: (k[0], k[1]))
    for task, entry in keys:
        sel = [r for r in rows if r["task"] == task and r["entry"] == entry]

        def ms(key: str, sel: list[dict[str, Any]] = sel) -> str:
            v = np.array([r[key] for r in sel])
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            return f"{v.mean():.4f}±{se:.4f}"

        lines.append(f"{task:<16}{entry:<18}{len(sel):>6}{ms('weak'):>16}{ms('w2s'):>16}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="ensemble-study.jsonl")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    with threadpool_limits(limits=1):  # many small fits: one BLAS thread is faster (README)
        for task in args.tasks:
            for seed in args.seeds:
                t = time.perf_counter()
                new = study(task, seed)
                rows += new
                write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
                print(f"{task} seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
