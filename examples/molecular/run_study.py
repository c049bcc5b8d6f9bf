"""The molecular study without the sweep runner: the downstream ladder and the prediction study.

    python examples/molecular/run_study.py ladder --out runs/molecular
    python examples/molecular/run_study.py study  --out runs/molecular [--strong minimol]
    python examples/molecular/run_study.py tables --out runs/molecular   (markdown for the docs)

``ladder``: ridge-probe test error (RMSE, MAE) of every representation on ``freesolv`` and
``qm9:gap`` (2,000 molecules): the pretrained SMILES transformers (mean-pooled last layer), the
fingerprint ladder (maccs, ecfp4, rdkit2d) and MiniMol when installed. Five seeded 80/20 splits;
the ridge penalty is picked by 5-fold cross-validation on the training part.

``study``: for each task (freesolv, solubility, qm9:gap, logp) and seed, one
:func:`w2sg.pipeline.run_pipeline` run per weak representation against the fixed strong one, then
:func:`w2sg.experiments.studies.correlation_table` (Spearman, Kendall, Pearson with bootstrap CIs)
between op_norm / fro_sq_over_n / predicted_gap and the weak-to-strong test MSE. This is what
``examples/molecular/study.yaml`` runs through ``w2sg sweep`` once the registry finds the
pretrained models by name.

Every representation is scaled per column over the dataset (label-free): constant columns are
dropped, each column is centred by its median and divided by 1.4826 · MAD (its standard deviation
where the MAD is 0, as for sparse fingerprint bits), clipped to ±5 (RDKit descriptors of a few
odd molecules are astronomically large and would otherwise make one molecule the first principal
component), and the whole matrix is divided by sqrt(d), so that a 32-d transformer and 2,048-d
ECFP4 have comparable total variance and a ridge penalty means the same for both. Embeddings
come from the w2sg cache.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.config import KernelConfig, RunConfig
from w2sg.data.datasets import load_dataset
from w2sg.errors import W2SGError
from w2sg.experiments.studies import correlation_table, format_table
from w2sg.heads.ridge import RidgeDecomposition
from w2sg.pipeline import run_pipeline
from w2sg.represent import embed
from w2sg.represent.models import resolve_model
from w2sg.represent.smiles_lm import embed_smiles, read_pretrain_record, trained_models

FINGERPRINTS = ("maccs", "ecfp4", "rdkit2d")
LADDER_TASKS = {"freesolv": None, "qm9:gap": 2000}
STUDY_TASKS = {"freesolv": None, "solubility": None, "qm9:gap": 2000, "logp": 2000}
BETAS = np.logspace(-6, 0, 13)


def _available(name: str) -> bool:
    try:
        resolve_model(name, allow_hub=False)
    except W2SGError:
        return False
    return True


def representations(root: Path | None, with_minimol: bool = True) -> dict[str, Any]:
    """Name → how to embed: SMILES transformers (smallest compute first), fingerprints, MiniMol."""
    models = trained_models(root)
    if not models:
        raise W2SGError("no pretrained SMILES models; run w2sg pretrain-smiles first")

    def compute(folder: Path) -> float:
        record = read_pretrain_record(folder) or {}
        return float(record.get("parameters", 0)) * float(record["settings"]["steps"])

    reps: dict[str, Any] = {
        name: folder for name, folder in sorted(models.items(), key=lambda kv: compute(kv[1]))
    }
    reps.update({fp: fp for fp in FINGERPRINTS})
    if with_minimol and _available("minimol"):
        reps["minimol"] = "minimol"
    return reps


def features(how: Any, smiles: list[str]) -> np.ndarray:
    """The normalised representation (see the module docstring)."""
    raw = embed_smiles(how, smiles) if isinstance(how, Path) else embed(how, smiles, progress=False)
    X = np.asarray(raw, dtype=np.float64)
    X = np.where(np.isfinite(X), X, 0.0)
    std = X.std(axis=0)
    keep = std > 1e-8 * max(1.0, float(std.max()))
    X, std = X[:, keep], std[keep]
    median = np.median(X, axis=0)
    scale = 1.4826 * np.median(np.abs(X - median), axis=0)
    scale = np.where(scale > 1e-8 * std, scale, std)  # sparse bits and counts: MAD is 0
    Z = np.clip((X - median) / scale, -5.0, 5.0)
    Z -= Z.mean(axis=0)
    return Z / np.sqrt(Z.shape[1])


def _cv_beta(H: np.ndarray, y: np.ndarray, seed: int) -> float:
    folds = np.random.default_rng(seed).permutation(len(y)) % 5
    errors = np.zeros(len(BETAS))
    for f in range(5):
        train, val = folds != f, folds == f
        dec = RidgeDecomposition(H[train])
        for i, beta in enumerate(BETAS):
            theta, intercept = dec.solve(y[train], float(beta))
            errors[i] += float(np.mean((H[val] @ theta + intercept - y[val]) ** 2))
    return float(BETAS[int(np.argmin(errors))])


def probe_errors(H: np.ndarray, y: np.ndarray, n_splits: int = 5) -> dict[str, float]:
    """Mean ± sd test RMSE and MAE of a CV-tuned ridge probe over seeded 80/20 splits."""
    rmse, mae = [], []
    for seed in range(n_splits):
        order = np.random.default_rng(seed).permutation(len(y))
        cut = int(0.8 * len(y))
        train, test = order[:cut], order[cut:]
        beta = _cv_beta(H[train], y[train], seed)
        theta, intercept = RidgeDecomposition(H[train]).solve(y[train], beta)
        residual = H[test] @ theta + intercept - y[test]
        rmse.append(float(np.sqrt(np.mean(residual**2))))
        mae.append(float(np.mean(np.abs(residual))))
    return {
        "rmse": float(np.mean(rmse)),
        "rmse_sd": float(np.std(rmse)),
        "mae": float(np.mean(mae)),
        "mae_sd": float(np.std(mae)),
    }


def ladder(args: argparse.Namespace) -> dict[str, Any]:
    reps = representations(args.models)
    out: dict[str, Any] = {}
    for task, limit in LADDER_TASKS.items():
        data = load_dataset(task, limit=limit, seed=0)
        y = np.asarray(data.labels, dtype=np.float64)
        rows = []
        for name, how in reps.items():
            start = time.perf_counter()
            H = features(how, list(data.inputs))
            row = {"representation": name, "dim": int(H.shape[1]), **probe_errors(H, y)}
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            print(f"{task:9s} {name:26s} d={row['dim']:5d} RMSE {row['rmse']:.3f} "
                  f"MAE {row['mae']:.3f} ({row['seconds']:.0f} s)", flush=True)  # fmt: skip
        out[task] = {"n": len(y), "rows": rows}
    return out


def study(args: argparse.Namespace) -> dict[str, Any]:
    reps = representations(args.models)
    strong_name = args.strong or ("minimol" if "minimol" in reps else list(reps)[-1])
    if strong_name not in reps:
        raise W2SGError(f"strong representation {strong_name!r} is not available")
    weak_names = [n for n in reps if n != strong_name]
    run = {
        "task": "regression", "head": "ridge", "weak_ridge": args.weak_ridge,
        "strong_ridge": args.strong_ridge, "n_bootstrap": 200, "bounds": False,
    }  # fmt: skip
    rows: list[dict[str, Any]] = []
    for task, limit in STUDY_TASKS.items():
        data = load_dataset(task, limit=limit, seed=0)
        y = np.asarray(data.labels, dtype=np.float64)
        smiles = list(data.inputs)
        strong = features(reps[strong_name], smiles)
        weak = {name: features(reps[name], smiles) for name in weak_names}
        for seed in args.seeds:
            config = RunConfig(**run, seed=seed, kernel=KernelConfig(rule="variance", variance=0.9))
            for name in weak_names:
                result = run_pipeline(weak[name], strong, y, config)
                rows.append({
                    "status": "done", "task": task, "strong": strong_name, "weak": name,
                    "head": "ridge",
                    "config": {"run": config.to_dict(), "dataset": {"name": task, "limit": limit,
                                                                    "seed": seed}},
                    "metrics": result.metrics, "theory": result.theory,
                })  # fmt: skip
            print(f"{task} seed {seed}: {len(weak_names)} runs", flush=True)
    table = correlation_table(rows, n_boot=1000, seed=0)
    print(format_table(table))
    return {"strong": strong_name, "weak": weak_names, "rows": rows, "table": table}


def tables(args: argparse.Namespace) -> dict[str, Any]:
    """Markdown tables of the pretraining records, the ladder and the study (for the docs)."""
    lines = ["| model | layers | hidden | steps | parameters | MLM loss (train, last 10%) | "
             "MLM loss (held out) | seconds |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, folder in trained_models(args.models).items():
        r = read_pretrain_record(folder) or {}
        st = r["settings"]
        lines.append(
            f"| {name} | {st['layers']} | {st['hidden']} | {st['steps']} | {r['parameters']:,} | "
            f"{r['final_loss']:.3f} | {r['val_loss']:.3f} | {r['seconds']:.0f} |"
        )
    ladder_file = args.out / "ladder.json"
    if ladder_file.is_file():
        ladder_data = json.loads(ladder_file.read_text())
        tasks = list(ladder_data)
        lines += ["", "| representation | dim | " + " | ".join(
            f"{t} RMSE | {t} MAE" for t in tasks) + " |",
            "|---|---|" + "---|---|" * len(tasks)]  # fmt: skip
        by_rep: dict[str, list[str]] = {}
        dims: dict[str, int] = {}
        for t in tasks:
            for row in ladder_data[t]["rows"]:
                dims[row["representation"]] = row["dim"]
                by_rep.setdefault(row["representation"], []).append(
                    f"{row['rmse']:.3f} ± {row['rmse_sd']:.3f} | {row['mae']:.3f}"
                )
        for rep, cells in by_rep.items():
            lines.append(f"| {rep} | {dims[rep]} | " + " | ".join(cells) + " |")
    study_file = args.out / "study.json"
    if study_file.is_file():
        study_data = json.loads(study_file.read_text())
        lines += ["", "| task | metric | n_weak | Spearman | Kendall | Pearson |",
                  "|---|---|---|---|---|---|"]  # fmt: skip

        def cell(c: dict[str, Any]) -> str:
            return f"{c['value']:+.2f} [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}]"

        for row in study_data["table"]:
            lines.append(
                f"| {row['task']} | {row['metric']} | {row['n_weak']} | {cell(row['spearman'])} "
                f"| {cell(row['kendall'])} | {cell(row['pearson'])} |"
            )
    print("\n".join(lines))
    return {"markdown": "\n".join(lines)}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("ladder", "study", "tables"))
    parser.add_argument("--out", type=Path, default=Path("runs/molecular"))
    parser.add_argument("--models", type=Path, default=None, help="pretrained models folder")
    parser.add_argument("--strong", default=None, help="strong representation (default minimol)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weak-ridge", type=float, default=1e-3)
    parser.add_argument("--strong-ridge", type=float, default=1e-3)
    args = parser.parse_args(argv)
    try:
        result = {"ladder": ladder, "study": study, "tables": tables}[args.what](args)
    except W2SGError as exc:
        print(f"run_study: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.what}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    os.replace(tmp, target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
