"""Ranking many weak supervisors at once vs one ``w2sg metric`` per candidate (see README.md).

Synthetic case (default): n = 2,000 examples, one strong representation (d = 768) and 20 weak
candidates with the widths of the NLP study's representations (64 … 1,024), float32 ``.npy``
files as the embedding cache stores them. Every weak candidate sees a different share of an
8-dimensional latent that the strong one sees whole.

- ``rank``: ``w2sg.rank(S.npy, [W1.npy … W20.npy])`` in one process (strong side factorised once);
- ``separate``: 20 × ``representation_metrics(load(Wi), load(S))`` in the same process, which is
  what 20 ``w2sg metric`` calls compute (the strong side factorised 20 times);
- ``cli``: the command ``w2sg rank --strong S.npy --weak W1.npy … --json`` vs 20 ``w2sg metric
  --weak Wi.npy --strong S.npy --json`` commands (Python start-up included, as a user sees it);
- ``scaling``: ``rank`` with 5, 10, 20 candidates (linear in the number of candidates);
- ``*_1thread``: ``separate`` and ``rank(..., workers=1)`` with BLAS on one thread, which
  isolates the gain of factorising the strong side once from that of running candidates side by
  side (``rank`` decomposes candidates in parallel, one BLAS thread each).

Every ranking is checked to equal the order of the separate calls.

``--dataset rotten_tomatoes --limit 2000``: the same comparison on real cached representations,
the 22 weak models of examples/nlp-study.yaml for mpnet-base (run the study first so that the
cache holds them).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_rank.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from w2sg.data.io import load_array
from w2sg.experiments.rank import rank
from w2sg.theory.kernels import representation_metrics

N = 2000
D_STRONG = 768
WIDTHS = (64, 300, 384, 384, 384, 512, 768, 768, 768, 768, 768, 1024, 640, 640, 640, 300, 384,
          384, 768, 1024)  # fmt: skip
NLP_WEAK = [
    "static-64", "wordllama", "spacy-md", "use-multilingual", "minilm-l3", "minilm-l6",
    *(f"minilm-l6@{i}" for i in range(6)), *(f"mpnet-base@{i}" for i in (2, 4, 6, 8, 10)),
    *(f"gemma-270m@{i}" for i in (3, 6, 9, 12, 15)),
]  # fmt: skip


def make_files(folder: Path, n: int = N, seed: int = 0) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(seed)
    latent = 8
    z = rng.normal(size=(n, latent)) * np.sqrt(4.0 * 0.8 ** np.arange(latent))

    def rep(coords: np.ndarray, d: int) -> np.ndarray:
        mix = rng.normal(size=(len(coords), d)) / np.sqrt(d)
        noise = rng.normal(size=(n, d)) / np.sqrt(d)
        return (z[:, coords] @ mix * 8 + noise).astype(np.float32)

    strong = folder / "S.npy"
    np.save(strong, rep(np.arange(latent), D_STRONG))
    weak = []
    for i, d in enumerate(WIDTHS):
        coords = rng.choice(latent, size=1 + i % latent, replace=False)
        path = folder / f"W{i + 1:02d}.npy"
        np.save(path, rep(np.sort(coords), d))
        weak.append(path)
    return strong, weak


def timed(fn: Any, repeats: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def separate_in_process(strong: Any, weak: list[Any], load: Any) -> list[str]:
    ops = {}
    for w in weak:
        ops[str(w)] = representation_metrics(load(w), load(strong)).metrics["op_norm"]
    return sorted(ops, key=lambda k: ops[k])


def cli(argv: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "w2sg", *argv], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def synthetic(repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        strong, weak = make_files(Path(tmp))
        load = lambda p: load_array(str(p), "bench")  # noqa: E731
        t_rank, ranked = timed(lambda: rank(strong, weak), repeats)
        t_sep, order = timed(lambda: separate_in_process(strong, weak, load), repeats)
        assert ranked.order == order, "rank and separate metric calls disagree"
        with threadpool_limits(limits=1):
            t_sep1, order1 = timed(lambda: separate_in_process(strong, weak, load), repeats)
            t_rank_seq, _ = timed(lambda: rank(strong, weak, workers=1), repeats)
        assert order1 == order
        scaling = {m: timed(lambda m=m: rank(strong, weak[:m]), repeats)[0] for m in (5, 10, 20)}
        t = time.perf_counter()
        cli_rank = cli(["rank", "--strong", str(strong), "--weak", *map(str, weak), "--json"])
        t_cli_rank = time.perf_counter() - t
        t = time.perf_counter()
        cli_ops = {
            str(w): cli(["metric", "--weak", str(w), "--strong", str(strong), "--json"])["op_norm"]
            for w in weak
        }
        t_cli_sep = time.perf_counter() - t
        assert [c["name"] for c in cli_rank["candidates"]] == sorted(cli_ops, key=cli_ops.get)
    return {
        "case": "synthetic", "n": N, "d_strong": D_STRONG, "candidates": len(weak),
        "rank_s": t_rank, "separate_s": t_sep, "ratio": t_sep / t_rank,
        "separate_1thread_s": t_sep1, "rank_1thread_s": t_rank_seq,
        "ratio_1thread": t_sep1 / t_rank_seq,
        "cli_rank_s": t_cli_rank, "cli_separate_s": t_cli_sep, "cli_ratio": t_cli_sep / t_cli_rank,
        "scaling_s": scaling, "same_order": True,
    }  # fmt: skip


def real(dataset: str, limit: int, repeats: int) -> dict[str, Any]:
    """The NLP study's 22 weak models for mpnet-base from the embedding cache."""
    from w2sg.data.datasets import load_dataset
    from w2sg.experiments.rank import _layers_of_model, split_layer

    texts = list(load_dataset(dataset, limit=limit).inputs)

    def load_all() -> dict[str, np.ndarray]:
        wanted: dict[str, list[Any]] = {}
        for name in [*NLP_WEAK, "mpnet-base"]:
            model, layer = split_layer(name)
            wanted.setdefault(model, []).append(layer)
        reps = {}
        for model, layers in wanted.items():
            for layer, arr in _layers_of_model(model, layers, texts).items():
                reps[model if layer is None else f"{model}@{layer}"] = arr
        return reps

    load_all()  # fill the cache if needed; timings below are cache hits
    t_rank, ranked = timed(
        lambda: rank("mpnet-base", NLP_WEAK, dataset=dataset, limit=limit), repeats
    )

    def separate() -> list[str]:
        reps = load_all()
        ops = {
            w: representation_metrics(reps[w], reps["mpnet-base"]).metrics["op_norm"]
            for w in NLP_WEAK
        }
        return sorted(ops, key=lambda k: ops[k])

    t_sep, order = timed(separate, repeats)
    assert ranked.order == order, "rank and separate metric calls disagree"
    return {
        "case": f"{dataset} (limit {limit}): 22 NLP-study weak models, strong mpnet-base",
        "n": ranked.n, "candidates": len(NLP_WEAK), "rank_s": t_rank, "separate_s": t_sep,
        "ratio": t_sep / t_rank, "seconds": ranked.seconds, "same_order": True,
        "top5": ranked.order[:5],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many (default 3)")
    parser.add_argument("--dataset", help="also rank the NLP study's cached weak models on this")
    parser.add_argument("--limit", type=int, default=2000)
    args = parser.parse_args()
    results = [synthetic(args.repeats)]
    if args.dataset:
        results.append(real(args.dataset, args.limit, args.repeats))
    for r in results:
        print(json.dumps(r))
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
