"""The demo: the main job on embedded defaults.

By default a real task: Rotten Tomatoes sentiment (4,000 snippets), weak = the 64-d static token
model ``static-64``, strong = ``minilm-l6`` (all-MiniLM-L6-v2), softmax heads, soft weak labels.
Both encoders ship inside PyPI packages, so the demo runs offline; embeddings are cached, so a
second run skips extraction. ``synthetic=True`` runs the synthetic model of THEORY.md section 4
instead.
"""

from __future__ import annotations

import numpy as np

from w2sg.config import KernelConfig, RunConfig
from w2sg.pipeline import RunResult, run_pipeline

DEMO_DATASET = "rotten_tomatoes"
DEMO_WEAK = "static-64"
DEMO_STRONG = "minilm-l6"
DEMO_LIMIT = 4000


def run_demo(seed: int = 0, synthetic: bool = False) -> tuple[RunResult, str]:
    """Run the demo; return the result and a one-line title describing it."""
    if synthetic:
        return _synthetic_demo(seed)
    from w2sg.data.datasets import load_dataset
    from w2sg.represent import representations_for

    data = load_dataset(DEMO_DATASET, limit=DEMO_LIMIT, seed=0)
    ids, weak = representations_for(DEMO_DATASET, DEMO_WEAK, limit=DEMO_LIMIT, seed=0)
    _, strong = representations_for(DEMO_DATASET, DEMO_STRONG, limit=DEMO_LIMIT, seed=0)
    config = RunConfig(task="classification", head="softmax", loss="xent", seed=seed)
    provenance = {"dataset": DEMO_DATASET, "weak_model": DEMO_WEAK, "strong_model": DEMO_STRONG}
    result = run_pipeline(
        weak, strong, data.labels, config, ids=np.asarray(ids), provenance=provenance
    )
    title = (
        f"w2sg demo: {DEMO_DATASET} ({len(ids)} snippets), weak = {DEMO_WEAK} "
        f"(d={weak.shape[1]}), strong = {DEMO_STRONG} (d={strong.shape[1]}), softmax heads, "
        "soft weak labels"
    )
    return result, title


def _synthetic_demo(seed: int) -> tuple[RunResult, str]:
    from w2sg.data.synthetic import default_synthetic

    data = default_synthetic(n=2000, task="classification", seed=seed)
    config = RunConfig(
        task="classification",
        head="softmax",
        seed=seed,
        kernel=KernelConfig(rule="k", k_weak=8, k_strong=8),
    )
    weak, strong = data.representations["weak_3"], data.representations["strong"]
    result = run_pipeline(weak, strong, data.labels, config, provenance={"dataset": "synthetic"})
    title = (
        "w2sg demo (synthetic, THEORY.md §4): weak = weak_3 sees 5 of 8 latent coordinates, "
        f"strong sees all 8; both with a {weak.shape[1] - 5}-d isotropic noise block"
    )
    return result, title
