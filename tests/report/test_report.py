"""``w2sg report``: the page for a run folder and for a results store; every figure exists and
decodes; headless Chromium renders the page (not blank, no broken image)."""

from __future__ import annotations

import html.parser
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.errors import W2SGError
from w2sg.experiments.store import ResultStore
from w2sg.report import OPTIONAL_SECTIONS, SECTIONS, bound_checks, build_report
from w2sg.report import plots as report_plots

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
     if p and os.path.exists(p)),
    None,
)  # fmt: skip


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.h2: list[str] = []
        self._in_h2 = False
        self.attrs_seen: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs_seen.append(dict(attrs))
        if tag == "img":
            self.images.append(str(dict(attrs)["src"]))
        self._in_h2 = tag == "h2"

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.h2.append(data)
            self._in_h2 = False


def parse(page: str) -> _Page:
    p = _Page()
    p.feed(page)
    return p


def check_images_decode(out: Path, page: _Page) -> None:
    assert page.images
    for src in page.images:
        path = out / src
        assert path.is_file(), src
        with Image.open(path) as im:
            im.load()
            assert im.size[0] > 200 and im.size[1] > 150
            arr = np.asarray(im.convert("L"))
        assert (arr < 250).mean() > 0.01, f"{src} looks blank"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder as ``w2sg run --out`` and ``w2sg epochs --out`` write it."""
    from w2sg.data.synthetic import default_synthetic
    from w2sg.experiments.epochs import epoch_study
    from w2sg.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("run")
    data = default_synthetic(240, task="classification", n_weak=2, noise_dim=30, seed=1)
    weak, strong = data.representations["weak_2"], data.representations["strong"]
    config = RunConfig(head="softmax", n_bootstrap=50)
    run_pipeline(weak, strong, data.labels, config).save(folder)
    study_config = RunConfig(optimizer="adam", epochs=8, theory=False)
    study = epoch_study(weak, strong, data.labels, study_config, epochs=(1, 2, 4, 8))
    study.to_csv(folder / "epochs.csv")
    (folder / "epochs_config.json").write_text(json.dumps(study_config.to_dict()))
    study.plot(folder / "study-epochs.png")  # what `w2sg epochs --out` draws
    return folder


def test_run_dir_report(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    index = build_report(run_dir, out)
    assert index == out / "index.html"
    page = parse(index.read_text())
    assert page.h2 == list(SECTIONS)
    check_images_decode(out, page)
    assert {"pgr.png", "reliability.png", "bounds.png", "epochs.png", "gap.png"} <= set(page.images)
    # the over-optimization figure is the drawing of `w2sg epochs`, pixel for pixel
    with Image.open(out / "epochs.png") as a, Image.open(run_dir / "study-epochs.png") as b:
        assert a.size == b.size
        assert np.array_equal(np.asarray(a), np.asarray(b))
    text = index.read_text()
    assert "7 checks over 1 run: 7 apply, 0 of them violated" in text
    assert "<td>baseline</td>" in text and "majority-class rate" in text
    assert "flags: none" in text or "<th>flag</th>" in text


def test_run_dir_without_predictions_or_epochs(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(run_dir / "metrics.json", folder)
    index = build_report(folder, tmp_path / "out")
    text = index.read_text()
    assert "no predictions.npz in this folder" in text
    assert "no epochs.csv in this folder" in text
    page = parse(text)
    assert page.h2 == list(SECTIONS)
    check_images_decode(tmp_path / "out", page)


def _row(h: str, task: str, weak: str, seed: int, op: float, status: str = "done") -> dict:
    acc = 0.95 - op / 2
    two = {
        "measured": 0.4,
        "weak": 0.42,
        "lower": 0.3,
        "upper": 0.54,
        "radius": 0.12,
        "holds": True,
    }
    return {
        "config_hash": h,
        "status": status,
        "task": task,
        "weak": weak,
        "strong": "strong",
        "head": "ridge",
        "seed": seed,
        "seconds": 0.5,
        "config": {"run": {"task": "classification", "seed": seed}, "dataset": {"seed": seed}},
        "metrics": {
            "weak": {"accuracy": acc - 0.1},
            "w2s": {"accuracy": acc},
            "ceiling": {"accuracy": acc + 0.05 if seed == 0 else acc - 0.15},
            "pgr": {"value": 0.5 - op / 4, "ci_low": 0.2, "ci_high": 0.7, "reason": None},
            "flags": [] if seed == 0 else [{"code": "weak_beats_ceiling", "reason": "no gap"}],
            "reliability": {
                m: {
                    "count": [0.0] * 5 + [4.0, 6.0, 5.0, 3.0, 2.0, 0.0],
                    "confidence": [0.0] * 5 + [2.2, 3.9, 3.7, 2.5, 1.9, 0.0],
                    "correct": [0.0] * 5 + [2.0, 4.0 - shift, 3.0, 3.0, 2.0, 0.0],
                }
                for m, shift in (("weak", 1.0), ("w2s", 0.0), ("ceiling", 0.0))
            },
        },
        "theory": {
            "op_norm": op,
            "fro_sq_over_n": op**2,
            "predicted_gap": op / 5,
            "measured_gap": op / 4.5,
        },  # fmt: skip
        "bounds": {
            "generalization": {"tv": two, "pinsker_fwd": {**two, "radius": 0.5}, "holds": True},
            "disagreement": {**two, "measured": 0.1, "weak": 0.2, "radius": 0.05, "holds": False},
            "misfit_sq": {
                "train": {"err_weak": 0.5, "err_w2s": 0.3, "misfit": 0.2, "holds": True},
                "test": {
                    "err_weak": 0.5,
                    "err_w2s": 0.4,
                    "misfit": 0.2,
                    "holds": False,
                    "applies": False,
                    "reason": "out of sample",
                },
            },  # fmt: skip
        },
        "error": None if status == "done" else "ValueError: boom\nTraceback ...",
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    db = tmp_path / "runs.db"
    with ResultStore(db) as s:
        i = 0
        for task in ("alpha", "beta"):
            for w, op in (("w1", 0.1), ("w2", 0.3), ("w3", 0.5), ("w4", 0.7)):
                for seed in (0, 1):
                    i += 1
                    s.record(_row(f"h{i}", task, w, seed, op + 0.01 * seed))
        s.record(_row("bad", "alpha", "w5", 0, 0.9, status="failed"))
    return db


def sections_with(*optional: str) -> list[str]:
    """The page's headings: SECTIONS with the given optional sections in their places."""
    out = []
    for title in SECTIONS:
        out.append(title)
        follow = title
        while True:
            nxt = [n for n, after in OPTIONAL_SECTIONS.items() if after == follow]
            if not nxt:
                break
            follow = nxt[0]
            if follow in optional:
                out.append(follow)
    return out


def test_store_report(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["report", str(store), "--out", str(out), "--bootstrap", "50"]) == 0
    text = (out / "index.html").read_text()
    page = parse(text)
    # four single weak models per task: the rank figure; no ensemble or s2s rows: no such section
    assert page.h2 == sections_with("Rank vs realized error")
    assert sum(n.startswith("rank-") for n in page.images) == 2
    assert not any(n.startswith(("ensemble-", "rounds-")) for n in page.images)
    check_images_decode(out, page)
    names = set(page.images)
    assert sum(n.startswith("scatter-") for n in names) == 2
    assert sum(n.startswith("pgr-") for n in names) == 2
    assert sum(n.startswith("reliability-") for n in names) == 2  # one per task, runs pooled
    assert "all 8 runs pooled" in text
    assert "<th>median PGR</th>" in text and "<th>PGR of means</th>" in text
    # seed 1 of every pair has its weak model above the ceiling: excluded from the median
    assert "(n = 4), 4 excluded" in text  # seed 0: PGR 0.1 / 0.15 = 0.667 per pair
    assert "0.667 (n = 4)" in text
    assert "flags: 8 of 16 finished runs carry flags (weak_beats_ceiling×8)" in text
    # one folded per-weak table per group, four weak models each, largest error first
    assert text.count("<details><summary>per weak model: ") == 2
    first = text.split("<details><summary>per weak model: alpha")[1].split("</details>")[0]
    assert [first.index(f"<td>{w}</td>") for w in ("w4", "w3", "w2", "w1")] == sorted(
        first.index(f"<td>{w}</td>") for w in ("w4", "w3", "w2", "w1")
    )
    assert {"bounds.png", "gap.png"} <= names
    assert "ValueError: boom" in text and "Traceback" not in text
    assert "+1.00" in text  # perfect Spearman in the correlation table
    # 5 checks a run: 3 two-sided (disagreement violated), misfit train stored without its
    # premise (unchecked), misfit test out of sample (fails, not a violation)
    assert (
        "80 checks over 16 runs: 48 apply, 16 of them violated; 16 do not apply (premise not "
        "met, or out of sample), 16 of which do not hold (not a violation); 16 with an unchecked "
        "premise, 0 of which do not hold"
    ) in text
    assert "checks that do not apply, and why" in text


MEMBERS = ("w1", "w2", "w3")
ENSEMBLE_WEIGHTS = {  # rule → weights per seed (votes have none)
    "metric": [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]],
    "learned": [[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]],
    "vote": [None, None],
}


def _ensemble_row(h: str, task: str, rule: str, seed: int) -> dict:
    row = _row(h, task, f"ensemble[{rule}](w1+w2+w3)", seed, 0.05 + 0.1 * len(rule) / 6)
    row["config"] = {
        "run": {"task": "classification", "seed": seed, "combine": rule},
        "dataset": {"seed": seed},
        "weak": {"ensemble": [{"model": m, "layer": None, "pooling": None} for m in MEMBERS]},
    }
    row["metrics"]["ensemble"] = {"rule": rule, "members": list(MEMBERS),
                                  "weights": ENSEMBLE_WEIGHTS[rule][seed]}  # fmt: skip
    if rule == "vote":
        del row["theory"]["op_norm"]  # a vote has no kernel part
    return row


def _s2s_row(h: str, task: str, weak: str, seed: int, op: float) -> dict:
    row = _row(h, task, weak, seed, op)
    row["head"] = "ridge[s2s_iters=2]"
    row["config"]["run"]["s2s_iters"] = 2
    acc = row["metrics"]["w2s"]["accuracy"]
    row["metrics"]["rounds"] = [
        {"round": 1, "test": {"accuracy": acc + 0.01 * (1 + seed)}},
        {"round": 2, "test": {"accuracy": acc - 0.02 * seed}},
    ]
    return row


@pytest.fixture
def rich_store(store: Path) -> Path:
    """The store plus ensemble rows (metric, learned, vote over w1..w3) on task alpha and a
    second head with two strong-to-strong rounds on task beta."""
    with ResultStore(store) as s:
        for rule in ENSEMBLE_WEIGHTS:
            for seed in (0, 1):
                s.record(_ensemble_row(f"e-{rule}-{seed}", "alpha", rule, seed))
        for w, op in (("w1", 0.1), ("w2", 0.3), ("w3", 0.5)):
            for seed in (0, 1):
                s.record(_s2s_row(f"s-{w}-{seed}", "beta", w, seed, op + 0.01 * seed))
    return store


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[tuple, dict]]:
    """Record the arguments of a plotting function (and still draw)."""
    calls: list[tuple[tuple, dict]] = []
    real = getattr(report_plots, name)

    def spy(*args: object, **kwargs: object) -> Path:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(report_plots, name, spy)
    return calls


def test_report_figures_of_ensembles_rounds_and_ranks(
    rich_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scipy import stats

    ranks = _spy(monkeypatch, "rank_vs_error")
    weights = _spy(monkeypatch, "ensemble_weights")
    rounds = _spy(monkeypatch, "s2s_rounds")
    out = tmp_path / "report"
    text = build_report(rich_store, out, n_boot=20).read_text()
    page = parse(text)
    assert page.h2 == sections_with(*OPTIONAL_SECTIONS)
    check_images_decode(out, page)
    names = set(page.images)
    assert sum(n.startswith("rank-") for n in names) == 3  # alpha, beta, beta with rounds
    assert sum(n.startswith("ensemble-") for n in names) == 1
    assert sum(n.startswith("rounds-") for n in names) == 1
    with ResultStore(rich_store, read_only=True) as s:
        rows = s.rows("done")

    # (a) per group: the single weak models' mean op_norm and error, Spearman as scipy's
    assert len(ranks) == 3
    for args, _ in ranks:
        points, rho, ensembles = args[1], args[2], args[3]
        head = points["head"]
        group = [r for r in rows if r["task"] == points["task"] and r["head"] == head]
        singles = sorted({r["weak"] for r in group if "weak" not in r["config"]})
        assert points["weak"] == singles
        op = [np.mean([r["theory"]["op_norm"] for r in group if r["weak"] == w]) for w in singles]
        err = [np.mean([1 - r["metrics"]["w2s"]["accuracy"] for r in group if r["weak"] == w])
               for w in singles]  # fmt: skip
        assert points["value"] == pytest.approx(op) and points["error"] == pytest.approx(err)
        assert rho == pytest.approx(stats.spearmanr(op, err).statistic)
        if points["task"] == "alpha" and head == "ridge":
            assert ensembles["weak"] == sorted(f"ensemble[{r}](w1+w2+w3)" for r in
                                               ENSEMBLE_WEIGHTS)  # fmt: skip
            assert np.isnan(ensembles["value"][ensembles["weak"].index(
                "ensemble[vote](w1+w2+w3)")])  # fmt: skip
        else:
            assert ensembles is None
    assert "top-ranked (op_norm)" in text and "the plotted values (means over seeds)" in text

    # (b) the weight of each member per rule, mean over seeds; the vote has none
    ((args, _),) = weights
    plotted = args[2]
    assert set(plotted) == {"metric", "learned"}
    for rule in plotted:
        mean = np.mean(np.array(ENSEMBLE_WEIGHTS[rule], float), axis=0)
        assert [plotted[rule][m] for m in MEMBERS] == pytest.approx(mean.tolist())
    assert "vote combine by voting, without weights" in text
    # the mix against its members, paired by seed: metric vs the op_norm pick (w1)
    ens = {r["seed"]: 1 - r["metrics"]["w2s"]["accuracy"] for r in rows
           if r["weak"] == "ensemble[metric](w1+w2+w3)"}  # fmt: skip
    w1 = {r["seed"]: 1 - r["metrics"]["w2s"]["accuracy"] for r in rows
          if r["weak"] == "w1" and r["head"] == "ridge" and r["task"] == "alpha"}  # fmt: skip
    diffs = [ens[k] - w1[k] for k in (0, 1)]
    assert "does the mix beat its members?" in text
    assert f"{np.mean(diffs):+.4f} ± {np.std(diffs, ddof=1) / np.sqrt(2):.4f} (n = 2)" in text

    # (c) the w2s student (round 0) and each round's test accuracy, mean over seeds
    ((args, _),) = rounds
    curves, score = args[2], args[3]
    assert score == "accuracy" and set(curves) == {"w1", "w2", "w3"}
    for w, curve in curves.items():
        runs = [r for r in rows if r["weak"] == w and r["head"] == "ridge[s2s_iters=2]"]
        expected = [np.mean([r["metrics"]["w2s"]["accuracy"] for r in runs])] + [
            np.mean([r["metrics"]["rounds"][k]["test"]["accuracy"] for r in runs]) for k in range(2)
        ]
        assert curve == pytest.approx(expected)
    assert args[4]["ceiling (mean)"] == pytest.approx(np.mean(
        [r["metrics"]["ceiling"]["accuracy"] for r in rows if r["head"] == "ridge[s2s_iters=2]"]
    ))  # fmt: skip


def test_run_dir_report_of_an_ensemble_with_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of `w2sg run --weak A B C --combine metric --s2s-iters 2 --out`."""
    import w2sg
    from w2sg.data.synthetic import default_synthetic

    data = default_synthetic(240, task="classification", n_weak=3, noise_dim=30, seed=1)
    result = w2sg.run(weak=[data.representations[f"weak_{i}"] for i in (1, 2, 3)],
                      strong=data.representations["strong"], labels=data.labels,
                      combine="metric", s2s_iters=2, n_bootstrap=20)  # fmt: skip
    result.save(tmp_path / "run")
    weights = _spy(monkeypatch, "ensemble_weights")
    rounds = _spy(monkeypatch, "s2s_rounds")
    out = tmp_path / "report"
    page = parse(build_report(tmp_path / "run", out).read_text())
    assert page.h2 == sections_with("Ensemble weights", "Strong-to-strong rounds")
    check_images_decode(out, page)
    assert {"ensemble.png", "rounds.png"} <= set(page.images)
    ens = result.record["ensemble"]
    ((args, _),) = weights
    assert args[2] == {"metric": dict(zip(ens["members"], ens["weights"], strict=True))}
    ((args, _),) = rounds
    assert args[2]["student"] == pytest.approx(
        [result.record["w2s"]["accuracy"]]
        + [r["test"]["accuracy"] for r in result.record["rounds"]]
    )


def test_optional_figures_absent_without_their_rows(tmp_path: Path) -> None:
    """One weak model per group, no ensembles, no rounds: the page has exactly SECTIONS."""
    db = tmp_path / "one.db"
    with ResultStore(db) as s:
        for i, task in enumerate(("alpha", "beta")):
            for seed in (0, 1):
                s.record(_row(f"h{i}{seed}", task, "w1", seed, 0.2))
    page = parse(build_report(db, tmp_path / "out", n_boot=20).read_text())
    assert page.h2 == list(SECTIONS)
    assert not any(n.startswith(("rank-", "ensemble-", "rounds-")) for n in page.images)


def test_bound_checks() -> None:
    checks = bound_checks(_row("h", "t", "w", 0, 0.2)["bounds"])
    by_name = {c["name"]: c for c in checks}
    assert set(by_name) == {"generalization.tv", "generalization.pinsker_fwd", "disagreement",
                            "misfit_sq.train", "misfit_sq.test"}  # fmt: skip
    assert by_name["disagreement"]["applies"] is True
    assert by_name["misfit_sq.test"]["applies"] is False
    assert by_name["misfit_sq.test"]["reason"] == "out of sample"
    assert by_name["misfit_sq.train"]["applies"] is None  # stored before premises were recorded
    assert by_name["generalization.tv"]["measured"] == pytest.approx(0.02)
    assert by_name["generalization.tv"]["bound"] == pytest.approx(0.12)
    assert by_name["misfit_sq.train"]["bound"] == pytest.approx(0.3)
    assert not by_name["disagreement"]["holds"]
    assert bound_checks(None) == []


def test_report_errors(tmp_path: Path) -> None:
    with pytest.raises(W2SGError, match="does not exist"):
        build_report(tmp_path / "missing", tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(W2SGError, match="neither metrics.json nor epochs.csv"):
        build_report(empty, tmp_path / "out")
    text = tmp_path / "x.txt"
    text.write_text("hello")
    with pytest.raises(W2SGError, match="neither a run folder nor an SQLite results store"):
        build_report(text, tmp_path / "out")
    db = tmp_path / "empty.db"
    ResultStore(db).close()
    with pytest.raises(W2SGError, match="holds no runs"):
        build_report(db, tmp_path / "out")


# -- headless Chromium -----------------------------------------------------------------------

_CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  let broken = 0;
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) { img.setAttribute('data-broken', '1'); broken++; }
  }
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken', String(broken));
});
</script></body>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.browser
def test_page_renders_in_headless_chromium(rich_store: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    out = tmp_path / "report"
    build_report(rich_store, out, n_boot=50)
    # A copy of the page with a load-time check of every image, read back through --dump-dom.
    page = (out / "index.html").read_text()
    (out / "check.html").write_text(page.replace("</body>", _CHECK_SCRIPT))
    dom = _chromium(
        ["--virtual-time-budget=10000", "--dump-dom", (out / "check.html").as_uri()],
        tmp_path / "profile-dom",
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = parse(dom.stdout)
    body = next(a for a in parsed.attrs_seen if "data-images" in a)
    assert int(body["data-images"] or 0) == len(parse(page).images) > 0
    assert body["data-broken"] == "0", "broken images: " + json.dumps(
        [a.get("src") for a in parsed.attrs_seen if a.get("data-broken") == "1"]
    )
    assert parsed.h2 == sections_with(*OPTIONAL_SECTIONS)
    assert {src.split("-")[0] for src in parse(page).images} >= {"rank", "ensemble", "rounds"}

    shot = tmp_path / "shot.png"
    res = _chromium(
        ["--window-size=1280,2400", "--hide-scrollbars", f"--screenshot={shot}",
         (out / "index.html").as_uri()],
        tmp_path / "profile-shot",
    )  # fmt: skip
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB")).astype(int)
    nonwhite = (arr.sum(axis=2) < 3 * 245).mean()
    colored = (np.ptp(arr, axis=2) > 40).mean()  # the figures' coloured markers and lines
    assert nonwhite > 0.02, f"the screenshot is blank ({nonwhite:.4f} non-white)"
    assert colored > 0.001
    keep = os.environ.get("W2SG_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
