"""Ensemble study: does the metric-weighted ensemble of weak supervisors beat the single supervisor
the label-free metric picks, and the plain average? (docs/ensembles.md, "Study")

Text tasks (rotten_tomatoes, tweets, bbc_news, strategyqa): the 22 weak representations of the NLP
study (examples/nlp-study.yaml) on the same examples, strong mpnet-base, softmax heads (L2 0.001,
the library default; teacher and student are the logistic probes people train), the default k rule.
Molecular tasks (freesolv, solubility, qm9-gap, logp): the 15 weak representations of the
molecular study (examples/molecular/study.yaml), strong MiniMol, ridge regression heads
(β = 0.001) and the Gavish-Donoho k rule, as the molecular rank study
(examples/molecular/rank-study.yaml). Every member is trained once on D̃ and shared between the
rules (``member_outputs``); the members' label-free op norms on D̂ are computed once. Compared, by
the student's test accuracy (text) or test MSE (molecules):

- ``single_metric``: the one weak model with the smallest op norm (the choice `w2sg rank` makes);
- ``average``, ``metric`` (softmax(−op/τ), τ = 0.05), ``learned``, ``learned_labelled``
  (100 revealed labels), ``vote`` (regression: the median) and, for classification,
  ``soft_vote``, over all members.

Needs the studies' embedding caches (run their sweeps first). Writes one JSON line per (task, seed,
entry), rewritten atomically after each task and seed, and prints the means ± SE over seeds.

    PYTHONPATH=src python examples/ensemble_study.py --tasks rotten_tomatoes tweets --out ens.jsonl
    PYTHONPATH=src python examples/ensemble_study.py --tasks freesolv solubility --out mol.jsonl
    PYTHONPATH=src python examples/ensemble_study.py --table ens.jsonl mol.jsonl   # tables only

``--swap rdkit2d=rdkit2d-log`` replaces a member by another model (the molecular rerun with
log-scaled descriptors, docs/ensembles.md). Each row records its run's flag codes (``flags``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from w2sg.atomic import write_text
from w2sg.config import KernelConfig, RunConfig
from w2sg.data.datasets import load_dataset
from w2sg.data.splits import make_splits
from w2sg.experiments.ensemble import member_outputs, run_ensemble
from w2sg.experiments.rank import _layers_of_model, split_layer
from w2sg.pipeline import prepare_labels, run_pipeline
from w2sg.theory.kernels import representation_metrics

TEXT_WEAK = [
    "static-64", "wordllama", "spacy-md", "use-multilingual", "minilm-l3", "minilm-l6",
    *(f"minilm-l6@{i}" for i in range(6)), *(f"mpnet-base@{i}" for i in (2, 4, 6, 8, 10)),
    *(f"gemma-270m@{i}" for i in (3, 6, 9, 12, 15)),
]  # fmt: skip
MOL_WEAK = [
    *(f"smiles-lm/{m}" for m in ("l1-h32-s100", "l2-h64-s100", "l1-h32-s500", "l2-h64-s500",
                                 "l2-h32-s1000", "l1-h32-s2000", "l2-h64-s2000", "l3-h96-s300",
                                 "l4-h128-s300", "l4-h64-s600", "l3-h96-s600", "l4-h128-s600")),
    "maccs", "ecfp4", "rdkit2d",
]  # fmt: skip
#: Each family: its weak members, strong model and run configuration (that of its sweep study).
FAMILIES: dict[str, dict[str, Any]] = {
    "text": {
        "weak": TEXT_WEAK,
        "strong": "mpnet-base",
        # k rule named: docs/ensembles.md's text numbers were measured with variance 0.9, the
        # default until issue 14 (mp_edge now)
        "config": {"head": "softmax", "weak_ridge": 1e-3, "strong_ridge": 1e-3,
                   "kernel": KernelConfig(rule="variance", variance=0.9)},
        "rules": ("average", "metric", "learned", "learned_labelled", "vote", "soft_vote"),
    },
    "molecular": {
        "weak": MOL_WEAK,
        "strong": "minimol",
        "config": {"task": "regression", "head": "ridge", "weak_ridge": 1e-3,
                   "strong_ridge": 1e-3, "kernel": KernelConfig(rule="gavish_donoho")},
        "rules": ("average", "metric", "learned", "learned_labelled", "vote"),
    },
}  # fmt: skip
#: task name: (family, registered dataset, load_dataset keywords), as in the studies' configs.
TASKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "rotten_tomatoes": ("text", "rotten_tomatoes", {"limit": 2000}),
    "tweets": ("text", "tweets", {"limit": 2000}),
    "bbc_news": ("text", "bbc_news", {"limit": 1000, "max_words": 128}),
    "strategyqa": ("text", "strategyqa", {}),
    "freesolv": ("molecular", "freesolv", {}),
    "solubility": ("molecular", "solubility", {}),
    "qm9-gap": ("molecular", "qm9:gap", {"limit": 2000}),
    "logp": ("molecular", "logp", {"limit": 2000}),
}


def representations(
    task: str, weak: list[str] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    family, dataset, load = TASKS[task]
    data = load_dataset(dataset, **load)
    inputs = list(data.inputs)
    wanted: dict[str, list[Any]] = {}
    for name in [*(weak or FAMILIES[family]["weak"]), FAMILIES[family]["strong"]]:
        model, layer = split_layer(name)
        wanted.setdefault(model, []).append(layer)
    reps = {}
    for model, layers in wanted.items():
        for layer, arr in _layers_of_model(model, layers, inputs).items():
            reps[model if layer is None else f"{model}@{layer}"] = np.asarray(arr, np.float64)
    return reps, np.asarray(data.labels), np.asarray(data.ids)


def _score(result: dict[str, Any], model: str, task: str) -> float:
    return float(result[model]["mse" if task == "regression" else "accuracy"])


def study(task: str, seed: int, swap: dict[str, str] | None = None) -> list[dict[str, Any]]:
    family = FAMILIES[TASKS[task][0]]
    if swap:
        family = {**family, "weak": [swap.get(w, w) for w in family["weak"]]}
    names = family["weak"]
    reps, labels, ids = representations(task, names)
    strong = reps[family["strong"]]
    weak = [reps[w] for w in names]
    config = RunConfig(**family["config"], seed=seed, n_bootstrap=200, bounds=False)
    kind = config.task
    outputs = member_outputs(weak, labels, config, ids)
    lab = prepare_labels(labels, kind)
    stratify = lab.values if kind == "classification" else None
    splits = make_splits(ids, config.fractions, seed=seed, stratify=stratify)
    tr, hat, te = splits["weak_train"], splits["w2s_train"], splits["test"]
    ops = [
        representation_metrics(w[hat], strong[hat], weak_train=w[tr], beta_weak=config.weak_ridge,
                               beta_strong=config.strong_ridge,
                               config=config.kernel).metrics["op_norm"]
        for w in weak
    ]  # fmt: skip
    score = "mse" if kind == "regression" else "accuracy"
    rows = []
    pick = int(np.argmin(ops))
    single = run_pipeline(weak[pick], strong, labels, config, ids=ids).to_dict()
    rows.append({"task": task, "seed": seed, "entry": "single_metric", "score": score,
                 "members": [names[pick]], "weights": [1.0], "w2s": _score(single, "w2s", kind),
                 "weak": _score(single, "weak", kind),
                 "ceiling": _score(single, "ceiling", kind),
                 "flags": [f["code"] for f in single["flags"]]})  # fmt: skip
    for rule in family["rules"]:
        cfg = dataclasses.replace(config, combine=rule)
        rec = run_ensemble(weak, strong, labels, cfg, names=names, ids=ids, outputs=outputs,
                           op_norms=ops).to_dict()  # fmt: skip
        rows.append({"task": task, "seed": seed, "entry": rule, "score": score, "members": names,
                     "weights": rec["ensemble"]["weights"], "w2s": _score(rec, "w2s", kind),
                     "weak": _score(rec, "weak", kind), "ceiling": _score(rec, "ceiling", kind),
                     "theory": {k: rec["theory"].get(k) for k in ("op_norm", "predicted_gap",
                                                                   "measured_gap")},
                     "flags": [f["code"] for f in rec["flags"]]})  # fmt: skip
    y = lab.values[te]
    if kind == "regression":
        member_weak = [float(np.mean((o[te] - y) ** 2)) for o in outputs]
    else:
        member_weak = [float(np.mean(o[te].argmax(1) == y)) for o in outputs]
    for r in rows:
        r["member_op_norm"] = ops
        r["member_weak"] = member_weak
    return rows


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(se)


def table(rows: list[dict[str, Any]]) -> str:
    """Means ± SE over seeds per (task, entry); then, per task, the paired differences over
    seeds of ``metric`` against ``single_metric`` and ``average`` (same splits, same members)."""
    lines = [f"{'task':<16}{'entry':<18}{'score':>9}{'seeds':>6}{'weak':>18}{'w2s':>18}"
             f"{'ceiling':>18}"]  # fmt: skip
    keys = sorted({(r["task"], r["entry"]) for r in rows})
    for task, entry in keys:
        sel = [r for r in rows if r["task"] == task and r["entry"] == entry]
        cells = ["{:.4f}±{:.4f}".format(*_mean_se(np.array([r[k] for r in sel])))
                 for k in ("weak", "w2s", "ceiling")]  # fmt: skip
        score = sel[0].get("score", "accuracy")
        lines.append(
            f"{task:<16}{entry:<18}{score:>9}{len(sel):>6}" + "".join(f"{c:>18}" for c in cells)
        )
    lines.append("")
    lines.append(
        f"{'task':<16}{'difference (w2s, paired over seeds)':<40}{'mean':>9}{'SE':>9}  per seed"
    )
    for task in sorted({r["task"] for r in rows}):
        by = {(r["entry"], r["seed"]): r["w2s"] for r in rows if r["task"] == task}
        seeds = sorted({s for _, s in by})
        for a, b in (("metric", "single_metric"), ("metric", "average"),
                     ("learned_labelled", "single_metric")):  # fmt: skip
            d = np.array([by[(a, s)] - by[(b, s)] for s in seeds if (a, s) in by and (b, s) in by])
            if len(d):
                m, se = _mean_se(d)
                per = " ".join(f"{x:+.4f}" for x in d)
                lines.append(f"{task:<16}{a + ' - ' + b:<40}{m:>+9.4f}{se:>9.4f}  {per}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="ensemble-study.jsonl")
    parser.add_argument("--swap", nargs="+", default=[], metavar="OLD=NEW",
                        help="replace member OLD by model NEW, e.g. rdkit2d=rdkit2d-log")  # fmt: skip
    parser.add_argument("--table", nargs="+", metavar="JSONL",
                        help="only print the tables of these result files")  # fmt: skip
    args = parser.parse_args()
    if args.table:
        rows = [json.loads(line) for f in args.table for line in Path(f).read_text().splitlines()]
        print(table(rows))
        return
    swap = dict(pair.split("=", 1) for pair in args.swap)
    rows: list[dict[str, Any]] = []
    out = Path(args.out)
    with threadpool_limits(limits=1):  # many small fits: one BLAS thread is faster (README)
        for task in args.tasks:
            for seed in args.seeds:
                t = time.perf_counter()
                new = study(task, seed, swap)
                rows += new
                write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
                print(f"{task} seed {seed}: {time.perf_counter() - t:.0f} s", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
