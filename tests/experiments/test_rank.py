"""``w2sg.experiments.rank`` and ``w2sg rank``: label-free ranking of candidate supervisors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from w2sg.cli import main
from w2sg.config import KernelConfig
from w2sg.errors import W2SGError
from w2sg.experiments.rank import rank, split_layer
from w2sg.heads import ridge
from w2sg.theory import kernels
from w2sg.theory.kernels import metrics_against_many, representation_metrics


def _reps(n: int = 200, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """A strong representation of a 6-d latent and weak ones seeing 1..5 of its coordinates."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 6)) * np.linspace(2.0, 0.8, 6)
    strong = np.hstack([z, 0.3 * rng.normal(size=(n, 40))])
    weak = []
    for r in (1, 2, 3, 4, 5):
        mix = np.linalg.qr(rng.normal(size=(r, r)))[0]  # a rotation keeps each coordinate's scale
        weak.append(np.hstack([z[:, :r] @ mix, 0.3 * rng.normal(size=(n, 15 + r))]))
    y = z @ np.ones(6) + 0.1 * rng.normal(size=n)
    return strong, weak, y


@pytest.mark.parametrize("config", [KernelConfig(), KernelConfig(rule="gavish_donoho", hard=True)])
def test_many_equals_pairwise(config: KernelConfig) -> None:
    strong, weak, y = _reps()
    got = dict(
        metrics_against_many(
            strong, [(str(i), w) for i, w in enumerate(weak)], y=y, beta_weak=0.01,
            beta_strong=0.02, config=config,
        )
    )  # fmt: skip
    for i, w in enumerate(weak):
        ref = representation_metrics(
            w, strong, y=y, beta_weak=0.01, beta_strong=0.02, config=config
        ).metrics
        assert got[str(i)].keys() == ref.keys()
        for key, value in ref.items():
            if isinstance(value, float):
                assert got[str(i)][key] == pytest.approx(value, rel=1e-10, abs=1e-13), key
            else:
                assert got[str(i)][key] == value


def test_transpose_equals_pairwise() -> None:
    strong, weak, _ = _reps(seed=1)
    fixed_weak = weak[1]
    candidates = [("s", strong), ("w4", weak[3]), ("w5", weak[4])]
    got = dict(metrics_against_many(fixed_weak, candidates, fixed_role="weak"))
    for name, s in candidates:
        ref = representation_metrics(fixed_weak, s).metrics
        assert got[name]["op_norm"] == pytest.approx(ref["op_norm"], rel=1e-10)
        assert got[name]["fro_sq_over_n"] == pytest.approx(ref["fro_sq_over_n"], rel=1e-10)
        assert got[name]["k_strong"] == ref["k_strong"]


def test_fixed_side_factorised_once(monkeypatch: pytest.MonkeyPatch) -> None:
    strong, weak, _ = _reps()
    calls: list[tuple[int, int]] = []
    real = ridge.RidgeDecomposition

    class Counting(real):  # type: ignore[misc,valid-type]
        def __init__(self, H, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(np.shape(H))
            super().__init__(H, *args, **kwargs)

    monkeypatch.setattr(kernels, "RidgeDecomposition", Counting)
    result = rank(strong, weak)
    assert len(calls) == 1 + len(weak)
    assert calls.count(strong.shape) == 1
    assert len(result.candidates) == len(weak)


def test_rank_orders_by_metric_and_gap() -> None:
    strong, weak, y = _reps(n=400)
    by_op = rank(strong, weak)
    ops = [c["op_norm"] for c in by_op.candidates]
    assert ops == sorted(ops)
    assert [c["rank"] for c in by_op.candidates] == [1, 2, 3, 4, 5]
    named = {f"w{i + 1}": w for i, w in enumerate(weak)}
    config = KernelConfig(rule="gavish_donoho")
    by_gap = rank(strong, named, labels=y, by="predicted_gap", config=config)
    gaps = [c["predicted_gap"] for c in by_gap.candidates]
    assert gaps == sorted(gaps)
    # Each weak model sees one more latent coordinate than the last: G falls monotonically.
    assert by_gap.order == ["w5", "w4", "w3", "w2", "w1"]


def test_gap_labels_encoded_as_in_runs() -> None:
    strong, weak, y = _reps()
    cls = (y > 0).astype(int)
    got = rank(strong, weak[:2], labels=cls)
    ref = representation_metrics(weak[0], strong, y=2.0 * cls - 1.0).metrics
    first = next(c for c in got.candidates if c["name"] == "weak_1")
    assert first["predicted_gap"] == pytest.approx(ref["predicted_gap"], rel=1e-10)


def test_rank_errors(tmp_path: Path) -> None:
    strong, weak, _ = _reps()
    with pytest.raises(W2SGError, match="fix one side"):
        rank([strong, weak[0]], weak[1:])
    with pytest.raises(W2SGError, match="same examples"):
        rank(strong, [weak[0][:50]])
    with pytest.raises(W2SGError, match="needs labels"):
        rank(strong, weak, by="predicted_gap")
    with pytest.raises(W2SGError, match="is a model"):
        rank(strong, ["minilm-l6"])
    with pytest.raises(W2SGError, match="given twice"):
        rank(strong, ["x.npy", "x.npy"])


def test_split_layer() -> None:
    assert split_layer("minilm-l6@3") == ("minilm-l6", 3)
    assert split_layer("mpnet-base") == ("mpnet-base", None)
    assert split_layer("gemma@-1") == ("gemma", -1)
    assert split_layer("/data/user@host/model") == ("/data/user@host/model", None)


def test_layers_of_one_model_from_one_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two inner layers of a transformer come from one all-layer pass; a model's own output and a
    model without layers are extracted as themselves."""
    calls: list[tuple[str, object]] = []
    rng = np.random.default_rng(0)
    texts = [f"text {i}" for i in range(60)]
    stacked = rng.normal(size=(7, 60, 12)).astype(np.float32)

    def fake_embed(model: str, inputs: list[str], *, layer: object = -1, **_: object) -> np.ndarray:
        assert list(inputs) == texts
        calls.append((model, layer))
        if layer == "all":
            return stacked
        return rng.normal(size=(60, 9)).astype(np.float32)

    import w2sg.represent.extract as extract

    monkeypatch.setattr(extract, "embed", fake_embed)
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n")
    result = rank("minilm-l6", ["minilm-l6@2", "minilm-l6@4", "static-64"], texts=path)
    assert sorted(calls, key=str) == sorted(
        [("minilm-l6", "all"), ("minilm-l6", -1), ("static-64", -1)], key=str
    )
    assert {c["name"]: c["d"] for c in result.candidates} == {
        "minilm-l6@2": 12, "minilm-l6@4": 12, "static-64": 9,
    }  # fmt: skip


def test_single_layer_is_asked_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One inner layer is asked of ``embed`` on its own, not as an all-layer pass: ``embed``
    slices it from a cached all-layer pass itself (tests/represent/test_extract.py)."""
    stacked = np.random.default_rng(1).normal(size=(7, 30, 8)).astype(np.float32)

    import w2sg.represent.extract as extract

    asked: list[object] = []

    def one_layer(model: str, inputs: list[str], *, layer: object = -1, **_: object) -> np.ndarray:
        asked.append(layer)
        assert isinstance(layer, int), "an all-layer pass for a single layer"
        return stacked[layer]

    monkeypatch.setattr(extract, "embed", one_layer)
    path = tmp_path / "t.txt"
    path.write_text("".join(f"t{i}\n" for i in range(30)))
    strong = np.random.default_rng(2).normal(size=(30, 10))
    result = rank(strong, ["minilm-l6@3"], texts=path)
    assert asked == [3]
    ref = representation_metrics(stacked[3], strong).metrics
    assert result.candidates[0]["op_norm"] == pytest.approx(ref["op_norm"], rel=1e-10)


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    strong, weak, y = _reps(n=150, seed=3)
    out = {"S": tmp_path / "S.npy", "y": tmp_path / "y.npy"}
    np.save(out["S"], strong.astype(np.float32))
    np.save(out["y"], y)
    for i, w in enumerate(weak[:4], 1):
        out[f"W{i}"] = tmp_path / f"W{i}.npy"
        np.save(out[f"W{i}"], w)
    return out


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_order_identical_to_separate_metric_calls(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    weak = [str(files[f"W{i}"]) for i in (1, 2, 3, 4)]
    ranked = _json(capsys, ["rank", "--strong", str(files["S"]), "--weak", *weak, "--json"])
    separate = {
        w: _json(capsys, ["metric", "--weak", w, "--strong", str(files["S"]), "--json"])
        for w in weak
    }
    expected = sorted(weak, key=lambda w: separate[w]["op_norm"])
    assert [c["name"] for c in ranked["candidates"]] == expected
    assert len({separate[w]["op_norm"] for w in weak}) == len(weak)  # no ties decide the test
    for c in ranked["candidates"]:
        ref = separate[c["name"]]
        for key in ("op_norm", "fro_sq_over_n", "k_weak", "k_strong"):
            assert c[key] == pytest.approx(ref[key], rel=1e-12)


def test_cli_labels_table_plot_and_transpose(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plot = tmp_path / "rank.png"
    weak = [str(files[f"W{i}"]) for i in (1, 2, 3)]
    argv = ["rank", "--strong", str(files["S"]), "--weak", *weak, "--labels", str(files["y"])]
    assert main([*argv, "--by", "predicted_gap", "--gavish-donoho", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "predicted_gap" in out and "by predicted_gap" in out and "gavish_donoho" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ref = _json(
        capsys,
        ["metric", "--weak", weak[0], "--strong", str(files["S"]), "--labels", str(files["y"]),
         "--json"],
    )  # fmt: skip
    ranked = _json(capsys, [*argv, "--task", "regression", "--json"])
    first = next(c for c in ranked["candidates"] if c["name"] == weak[0])
    assert first["predicted_gap"] == pytest.approx(ref["predicted_gap"], rel=1e-10)
    transpose = _json(
        capsys, ["rank", "--weak", weak[0], "--strong", str(files["S"]), weak[2], "--json"]
    )
    assert transpose["role"] == "strong" and transpose["fixed"] == weak[0]
    pair = _json(capsys, ["metric", "--weak", weak[0], "--strong", weak[2], "--json"])
    got = next(c for c in transpose["candidates"] if c["name"] == weak[2])
    assert got["op_norm"] == pytest.approx(pair["op_norm"], rel=1e-10)


def test_cli_errors(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    s, w1, w2 = str(files["S"]), str(files["W1"]), str(files["W2"])
    assert main(["rank", "--strong", s, w1, "--weak", w1, w2]) == 2
    assert "fix one side" in capsys.readouterr().err
    assert main(["rank", "--strong", s, "--weak", w1, "--with-labels"]) == 2
    assert "--with-labels" in capsys.readouterr().err
    assert main(["rank", "--strong", s, "--weak", "missing.npy"]) == 2
    assert "not found" in capsys.readouterr().err
