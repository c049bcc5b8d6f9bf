"""Our extraction vs ``SentenceTransformer.encode`` on the same model, texts and threads.

    PYTHONPATH=src python benchmarks/bench_extract.py [--n 2000] [--repeats 3] [--batch-size 32]

Both sides load the model first (not timed), then encode the same Rotten Tomatoes snippets with the
same batch size and torch thread count; the best of ``--repeats`` alternating runs is kept. Prints
the throughput ratio (sentence-transformers time / ours, target >= 1.0) in wall-clock and in
process CPU time (steadier on a shared machine), the smallest row cosine (target >= 0.999) and the
cold-miss and warm-hit times of the embedding cache, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads for both sides (default: all cores)"
    )
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    from w2sg.data.datasets import load_dataset
    from w2sg.represent.extract import embed, load_encoder, n_cores
    from w2sg.represent.models import materialize, resolve_model

    texts = load_dataset("rotten_tomatoes", limit=args.n, seed=0).inputs
    threads = args.threads or n_cores()
    torch.set_num_threads(threads)
    folder = materialize(resolve_model(args.model)).location
    reference_model = SentenceTransformer(folder, device="cpu")
    load_encoder(args.model)  # load ours too, untimed (it sets threads = cores)
    torch.set_num_threads(threads)

    def ours() -> np.ndarray:
        return np.asarray(
            embed(args.model, texts, batch_size=args.batch_size, cache=False, progress=False)
        )

    def reference() -> np.ndarray:
        return np.asarray(reference_model.encode(texts, batch_size=args.batch_size))

    ours(), reference()  # warm-up (first-call allocations, thread pools)
    times: dict[str, list[float]] = {"ours": [], "sentence_transformers": []}
    cpu: dict[str, list[float]] = {"ours": [], "sentence_transformers": []}
    results: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in (("ours", ours), ("sentence_transformers", reference)):
            start, start_cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

    a, b = results["ours"], results["sentence_transformers"]
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["W2SG_CACHE_DIR"] = tmp
        start = time.perf_counter()
        embed(args.model, texts, batch_size=args.batch_size, progress=False)
        miss = time.perf_counter() - start
        start = time.perf_counter()
        embed(args.model, texts, batch_size=args.batch_size, progress=False)
        hit = time.perf_counter() - start

    best_ours, best_ref = min(times["ours"]), min(times["sentence_transformers"])
    report = {
        "model": args.model,
        "texts": len(texts),
        "batch_size": args.batch_size,
        "threads": threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {os.cpu_count()} CPUs, torch {torch.__version__}",
        "ours_s": round(best_ours, 3),
        "sentence_transformers_s": round(best_ref, 3),
        "ratio": round(best_ref / best_ours, 3),
        "ours_cpu_s": round(min(cpu["ours"]), 3),
        "sentence_transformers_cpu_s": round(min(cpu["sentence_transformers"]), 3),
        "cpu_ratio": round(min(cpu["sentence_transformers"]) / min(cpu["ours"]), 3),
        "ours_texts_per_s": round(len(texts) / best_ours, 1),
        "min_cosine": float(np.round(cos.min(), 6)),
        "cache_miss_s": round(miss, 3),
        "cache_hit_s": round(hit, 4),
        "all_times": {k: [round(t, 3) for t in v] for k, v in times.items()},
        "all_cpu_times": {k: [round(t, 3) for t in v] for k, v in cpu.items()},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
