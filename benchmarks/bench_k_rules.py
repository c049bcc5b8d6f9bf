"""How well each k rule recovers a known k, and what that does to G and to rankings (issue 14).

The model of THEORY.md section 4 (:mod:`w2sg.data.synthetic`): a latent z ∈ R^r with energies e_j
drives the label y = Σ_j z_j + σε; the strong representation sees all r latent coordinates, six
weak ones see the first k_w of them (a ladder), and each adds a non-principal Gaussian block of
dimension D with row energy c. The true k of a representation is the number of latent coordinates
it sees. For every instance (one regime, one seed) the three splits D̃, D̂, T are drawn, every
representation is decomposed once, the measured side (ridge heads, PredGap, w2s test error) is
computed once per weak model, and every rule is evaluated on the same decompositions.

Recorded per rule: k chosen vs true k (strong and each weak model), G / measured gap, and the
Spearman correlation over the weak ladder of op_norm and of G with the measured w2s test error.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_k_rules.py grid     # the grid of regimes
    PYTHONPATH=src .venv/bin/python benchmarks/bench_k_rules.py issue    # issue 14's regime
    PYTHONPATH=src .venv/bin/python benchmarks/bench_k_rules.py timing   # metric time per rule

``--out FILE.json`` keeps every number; the summary tables are printed as markdown.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from w2sg.config import KernelConfig
from w2sg.data.synthetic import RepresentationSpec, SyntheticTask, make_synthetic
from w2sg.heads.ridge import RidgeDecomposition
from w2sg.theory import kernels as K

# (label, KernelConfig): candidates first, then the references that need the truth or σ.
RULES: tuple[tuple[str, KernelConfig], ...] = (
    ("variance 0.9", KernelConfig(rule="variance", variance=0.9)),
    ("noise_floor 10", KernelConfig(rule="noise_floor", noise_floor=10.0)),
    ("gavish_donoho", KernelConfig(rule="gavish_donoho")),
    ("mp_edge", KernelConfig(rule="mp_edge")),
    ("mp_edge iterative", KernelConfig(rule="mp_edge", sigma_estimate="iterative")),
    ("parallel_analysis", KernelConfig(rule="parallel_analysis")),
)
KNOWN_SIGMA = ("gavish_donoho σ known", "mp_edge σ known")
ORACLE = "true k"


@dataclass(frozen=True)
class Regime:
    """One cell of the grid. ``ratio`` = d_strong / n; weak noise blocks are 0.4× the strong one's
    (as 8,000 vs 20,000 in the issue). ``noise`` = c / Σ_j e_j (noise row energy over signal
    energy of the strong representation). ``spectrum``: ``flat`` (e_j = 1) or ``power``
    (e_j = (j + 1)^-1). ``aniso``: noise column variances ∝ (i + 1)^-1 (normalised to the same c)
    instead of equal."""

    ratio: float
    spectrum: str
    noise: float
    aniso: bool = False
    n: int = 120
    latent: int = 12
    weak_k: tuple[int, ...] = (2, 4, 5, 6, 7, 8)
    weak_scale: float = 0.4
    label_noise: float = 0.1

    def energies(self) -> np.ndarray:
        j = np.arange(self.latent, dtype=np.float64)
        return np.ones(self.latent) if self.spectrum == "flat" else 1.0 / (j + 1.0)

    def name(self) -> str:
        return f"d/n={self.ratio:g} {self.spectrum} c/signal={self.noise:g}" + (
            " aniso" if self.aniso else ""
        )


ISSUE = Regime(
    ratio=20024 / 360,
    spectrum="issue",
    noise=1.0,
    n=360,
    latent=24,
    weak_k=(4, 8, 10, 12, 14, 15),
)


def _specs(reg: Regime) -> tuple[dict[str, RepresentationSpec], dict[str, int]]:
    energy = float(reg.energies().sum()) if reg.spectrum != "issue" else 1.0
    c = reg.noise * energy
    if reg.spectrum == "issue":
        d_strong, d_weak = 20000, 8000
    else:
        d_strong = max(int(round(reg.ratio * reg.n)) - reg.latent, 4)
        d_weak = max(int(round(reg.weak_scale * reg.ratio * reg.n)), 4)
    specs = {
        "strong": RepresentationSpec(
            tuple(range(reg.latent)), noise_dim=d_strong, noise_energy=c, rotate=True
        )
    }
    truth = {"strong": reg.latent}
    for i, k in enumerate(reg.weak_k):
        specs[f"weak_{i}"] = RepresentationSpec(
            tuple(range(k)), noise_dim=max(d_weak - k, 4), noise_energy=c, rotate=True
        )
        truth[f"weak_{i}"] = k
    return specs, truth


def issue_energies(latent: int = 24) -> np.ndarray:
    """The issue's regime: c = 1 and principal energies e_j geometric from 0.02 to 0.0018, i.e.
    from 7× to 0.65× the noise eigenvalue c/n of the strong representation: every component is
    detectable (e_j > c/√(n d), Baik–Ben Arous–Péché) but many lie below Gavish–Donoho's
    threshold."""
    return np.geomspace(0.02, 0.0018, latent)


def _task(reg: Regime) -> SyntheticTask:
    e = issue_energies(reg.latent) if reg.spectrum == "issue" else reg.energies()
    return SyntheticTask(
        latent_dim=reg.latent,
        energies=tuple(float(x) for x in e),
        label_noise=reg.label_noise * float(np.sqrt(e.sum())),
    )


def _aniso(data: Any, specs: dict[str, RepresentationSpec]) -> None:
    for name, spec in specs.items():
        H = data.representations[name]
        # column variances ∝ 1/(i + 1) over the whole (rotated) representation, mean 1: the
        # noise is no longer isotropic (and the principal directions are bent accordingly)
        w = 1.0 / np.arange(1, spec.dim + 1)
        H *= np.sqrt(w / w.mean())


def _sigma(spec: RepresentationSpec, aniso: bool) -> float | None:
    return None if aniso else float(np.sqrt(spec.noise_energy / spec.noise_dim))


def evaluate(reg: Regime, seed: int, rules: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every rule on one instance: {rule: {k_strong, k_weak[], ratio[], op_norm[], G[],
    spearman_op, spearman_G}} plus the truth and the measured w2s errors."""
    specs, truth = _specs(reg)
    task = _task(reg)
    splits = [make_synthetic(reg.n, task, specs, seed=1000 * seed + i) for i in range(3)]
    if reg.aniso:
        for data in splits:
            _aniso(data, specs)
    tr, hat, te = splits
    weak_names = [name for name in specs if name != "strong"]
    strong_dec = RidgeDecomposition(hat.representations["strong"])
    decs = {
        w: (RidgeDecomposition(tr.representations[w]), RidgeDecomposition(hat.representations[w]))
        for w in weak_names
    }
    beta = 0.0
    measured: dict[str, dict[str, float]] = {}
    for w in weak_names:
        block = K.theory_block(
            weak_train=tr.representations[w],
            weak_hat=hat.representations[w],
            strong_hat=hat.representations["strong"],
            strong_test=te.representations["strong"],
            y_train=tr.labels,
            y_hat=hat.labels,
            y_test=te.labels,
            beta_weak=beta,
            beta_strong=beta,
            config=KernelConfig(rule="k", k_weak=truth[w], k_strong=truth["strong"]),
            decompositions={"weak_train": decs[w][0], "strong_hat": strong_dec},
        )
        measured[w] = {"measured_gap": block["measured_gap"], "w2s_error": block["w2s_error"]}
    configs: list[tuple[str, KernelConfig]] = [*RULES]
    configs.append((ORACLE, KernelConfig(rule="k")))
    if not reg.aniso:
        sig_w = {w: _sigma(specs[w], False) for w in weak_names}
        sig_s = _sigma(specs["strong"], False)
        configs.append(
            (KNOWN_SIGMA[0], KernelConfig(rule="gavish_donoho", noise_sigma_strong=sig_s))
        )
        configs.append((KNOWN_SIGMA[1], KernelConfig(rule="mp_edge", noise_sigma_strong=sig_s)))
    out: dict[str, Any] = {
        "regime": reg.name(),
        "seed": seed,
        "truth": truth,
        "w2s_error": [measured[w]["w2s_error"] for w in weak_names],
    }
    errors = np.array(out["w2s_error"])
    y_hat = np.asarray(hat.labels, dtype=np.float64)
    for label, cfg in configs:
        if rules is not None and label not in rules:
            continue
        t0 = time.perf_counter()
        k_strong = truth["strong"] if cfg.rule == "k" else None
        strong = K._principal(strong_dec, k_strong, cfg, cfg.noise_sigma_strong)
        row: dict[str, Any] = {
            "k_strong": strong.k,
            "k_weak": [],
            "ratio": [],
            "op_norm": [],
            "G": [],
        }
        for w in weak_names:
            sigma_w = sig_w[w] if label in KNOWN_SIGMA else None
            weak = K._principal(decs[w][1], truth[w] if cfg.rule == "k" else None, cfg, sigma_w)
            delta_train = K._weak_train_delta(decs[w][0], weak.k)
            m = K._metrics_from_decompositions(
                weak, strong, delta_train, y_hat, beta, beta, cfg
            ).metrics
            row["k_weak"].append(weak.k)
            row["op_norm"].append(float(m["op_norm"]))
            row["G"].append(float(m["predicted_gap"]))
            gap = measured[w]["measured_gap"]
            row["ratio"].append(float(m["predicted_gap"]) / gap if gap > 0 else float("nan"))
        row["spearman_op"] = _spearman(row["op_norm"], errors)
        row["spearman_G"] = _spearman(row["G"], errors)
        row["seconds"] = time.perf_counter() - t0
        out[label] = row
    return out


def _spearman(x: list[float], y: np.ndarray) -> float:
    if np.ptp(x) == 0:
        return 0.0
    return float(spearmanr(x, y).statistic)


def within2(k: float, truth: int) -> bool:
    return truth / 2 <= k <= 2 * truth


def cell_summary(instances: list[dict[str, Any]], label: str) -> dict[str, Any]:
    """Medians over seeds, then the criterion's counts (docs/kernels.md)."""
    truth = instances[0]["truth"]
    wk = [truth[w] for w in truth if w != "strong"]
    k_s = float(np.median([i[label]["k_strong"] for i in instances]))
    k_w = np.median([i[label]["k_weak"] for i in instances], axis=0)
    ratio = np.median([i[label]["ratio"] for i in instances], axis=0)
    return {
        "k_strong": k_s,
        "k_weak": k_w.tolist(),
        "ratio": ratio.tolist(),
        "strong_ok": within2(k_s, truth["strong"]),
        "weak_ok": int(sum(within2(k, t) for k, t in zip(k_w, wk, strict=True))),
        "ratio_ok": int(np.sum(np.abs(ratio - 1) <= 0.3)),
        "spearman_op": float(np.mean([i[label]["spearman_op"] for i in instances])),
        "spearman_G": float(np.mean([i[label]["spearman_G"] for i in instances])),
    }


def grid() -> list[Regime]:
    cells = [
        Regime(ratio, spectrum, noise)
        for ratio, spectrum, noise in itertools.product(
            (0.1, 1.0, 10.0, 100.0), ("flat", "power"), (0.1, 1.0, 10.0, 100.0)
        )
    ]
    cells += [
        Regime(ratio, spectrum, noise, aniso=True)
        for ratio, spectrum, noise in itertools.product(
            (10.0, 100.0), ("flat", "power"), (1.0, 10.0)
        )
    ]
    return cells


def _labels() -> list[str]:
    return [label for label, _ in RULES] + [ORACLE, *KNOWN_SIGMA]


def run_grid(seeds: int, out: str | None) -> None:
    results: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for reg in grid():
        inst = [evaluate(reg, s) for s in range(seeds)]
        results.append({"regime": reg.name(), "instances": inst})
        print(f"{reg.name()}  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if out:
        with open(out, "w") as fh:
            json.dump(results, fh)
    summarize(results)


def summarize(results: list[dict[str, Any]]) -> None:
    labels = _labels()
    valid = []
    for cell in results:
        oracle = cell_summary(cell["instances"], ORACLE)
        if oracle["ratio_ok"] >= 5:
            valid.append(cell)
    print(
        "valid cells (true k keeps G/measured within 30% on ≥ 5/6 weak): "
        f"{len(valid)} of {len(results)}\n"
    )
    print(
        "| rule | cells passed (of valid) | k within 2× (strong; weak ≥5/6) "
        "| G/measured within 30% (≥5/6 weak) | mean Spearman op_norm | mean Spearman G "
        "| median G/measured |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in labels:
        rows = [cell_summary(c["instances"], label) for c in valid if label in c["instances"][0]]
        if not rows:
            continue
        k_ok = [r["strong_ok"] and r["weak_ok"] >= 5 for r in rows]
        g_ok = [r["ratio_ok"] >= 5 for r in rows]
        passed = sum(a and b for a, b in zip(k_ok, g_ok, strict=True))
        allrows = [
            cell_summary(c["instances"], label) for c in results if label in c["instances"][0]
        ]
        print(
            f"| {label} | {passed}/{len(rows)} | {sum(k_ok)}/{len(rows)} | {sum(g_ok)}/{len(rows)} "
            f"| {np.mean([r['spearman_op'] for r in allrows]):+.2f} "
            f"| {np.mean([r['spearman_G'] for r in allrows]):+.2f} "
            f"| {np.median([np.median(r['ratio']) for r in rows]):.2f} |"
        )
    print(
        "\nper cell (k_strong / median k_weak / cells' median G/measured, valid cells marked *):\n"
    )
    print("| cell | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for cell in results:
        mark = "*" if cell in valid else ""
        parts = []
        for label in labels:
            if label not in cell["instances"][0]:
                parts.append("–")
                continue
            r = cell_summary(cell["instances"], label)
            parts.append(
                f"{r['k_strong']:g} / {np.median(r['k_weak']):g} / {np.median(r['ratio']):.2f}"
            )
        print(f"| {cell['regime']}{mark} | " + " | ".join(parts) + " |")


def run_issue(seeds: int, reg: Regime = ISSUE) -> None:
    print(f"{reg.name()}: truth strong {reg.latent}, weak {list(reg.weak_k)}\n")
    print("| rule | seed | k_strong | k_weak | G / measured | Spearman op_norm | Spearman G |")
    print("|---|---|---|---|---|---|---|")
    insts = [evaluate(reg, s) for s in range(seeds)]
    for label in _labels():
        for inst in insts:
            if label not in inst:
                continue
            r = inst[label]
            print(
                f"| {label} | {inst['seed']} | {r['k_strong']} | "
                f"{', '.join(map(str, r['k_weak']))} "
                f"| {min(r['ratio']):.2f}–{max(r['ratio']):.2f} | {r['spearman_op']:+.2f} "
                f"| {r['spearman_G']:+.2f} |"
            )


def run_timing(repeats: int = 5) -> None:
    """Wall time of representation_metrics per rule on the issue's regime (one D̂ sample), against
    the fixed-k rule."""
    specs, truth = _specs(ISSUE)
    data = make_synthetic(ISSUE.n, _task(ISSUE), specs, seed=7)
    weak, strong = data.representations["weak_2"], data.representations["strong"]
    configs = [(ORACLE, KernelConfig(rule="k", k_weak=truth["weak_2"], k_strong=truth["strong"]))]
    configs += list(RULES)
    base = None
    print(f"| rule | seconds (median of {repeats}) | × fixed k |")
    print("|---|---|---|")
    for label, cfg in configs:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            K.representation_metrics(weak, strong, y=data.labels, config=cfg)
            times.append(time.perf_counter() - t0)
        t = float(np.median(times))
        base = base or t
        print(f"| {label} | {t:.3f} | {t / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("grid", "issue", "timing"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.what == "grid":
        run_grid(args.seeds, args.out)
    elif args.what == "issue":
        run_issue(args.seeds)
    else:
        run_timing()


if __name__ == "__main__":
    main()
