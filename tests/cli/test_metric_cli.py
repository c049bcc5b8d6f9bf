"""``w2sg metric`` through ``w2sg.cli.main`` with arrays in a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from w2sg.cli import main
from w2sg.config import KernelConfig
from w2sg.theory.kernels import representation_metrics


@pytest.fixture
def arrays(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    n = 80
    z = rng.normal(size=(n + 60, 3)) * [2.0, 1.0, 0.5]
    y = z @ [1.0, 1.0, 1.0] + 0.1 * rng.normal(size=len(z))
    weak = np.hstack([z[:, :1], rng.normal(size=(len(z), 20)) * 0.3])
    strong = np.hstack([z, rng.normal(size=(len(z), 30)) * 0.3]).astype(np.float32)
    paths = {
        "weak": weak[:n],
        "strong": strong[:n],
        "labels": y[:n],
        "weak_train": weak[n:],
    }
    out = {}
    for name, arr in paths.items():
        out[name] = tmp_path / f"{name}.npy"
        np.save(out[name], arr)
    return out


def _args(a: dict[str, Path], *extra: str) -> list[str]:
    return ["metric", "--weak", str(a["weak"]), "--strong", str(a["strong"]), *extra]


def test_json_output_matches_library(
    arrays: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _args(
        arrays,
        "--labels",
        str(arrays["labels"]),
        "--weak-train",
        str(arrays["weak_train"]),
        "--k-weak",
        "1",
        "--k-strong",
        "3",
        "--beta-weak",
        "0.01",
        "--json",
    )
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed.pop("label_encoding") == "as given (regression values)"
    ref = representation_metrics(
        np.load(arrays["weak"]),
        np.load(arrays["strong"]),
        weak_train=np.load(arrays["weak_train"]),
        y=np.load(arrays["labels"]),
        beta_weak=0.01,
        config=KernelConfig(rule="k", k_weak=1, k_strong=3),
    ).metrics
    assert printed.keys() == ref.keys()
    for key, value in ref.items():
        expected = pytest.approx(value, rel=1e-12) if isinstance(value, float) else value
        assert printed[key] == expected, key
    assert printed["k_weak"] == 1 and printed["k_strong"] == 3


def test_table_output_and_scores(
    arrays: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = tmp_path / "scores.npy"
    argv = _args(arrays, "--labels", str(arrays["labels"]), "--hard", "--variance", "0.8")
    assert main([*argv, "--scores", str(scores)]) == 0
    out = capsys.readouterr().out
    rows = dict(line.split(None, 1) for line in out.splitlines() if line and " " in line)
    for key in ("op_norm", "fro_sq_over_n", "k_weak", "k_strong", "predicted_gap"):
        assert key in rows
    ref = representation_metrics(
        np.load(arrays["weak"]),
        np.load(arrays["strong"]),
        y=np.load(arrays["labels"]),
        config=KernelConfig(rule="variance", variance=0.8, hard=True),
    )
    assert float(rows["op_norm"]) == pytest.approx(ref.metrics["op_norm"], rel=1e-5)
    assert float(rows["predicted_gap"]) == pytest.approx(ref.metrics["predicted_gap"], rel=1e-5)
    np.testing.assert_allclose(np.load(scores), ref.scores, rtol=1e-12)


def test_label_free_output(arrays: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_args(arrays, "--noise-floor", "5", "--json")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "predicted_gap" not in printed and printed["k_rule"] == "noise_floor"
    assert 0.0 <= printed["op_norm"] <= 1.0
    assert main([*_args(arrays, "--gavish-donoho", "--json")]) == 0
    gd = json.loads(capsys.readouterr().out)
    assert gd["k_rule"] == "gavish_donoho" and gd["k_weak"] >= 1
    for flag, rule in (("--mp-edge", "mp_edge"), ("--parallel-analysis", "parallel_analysis")):
        assert main([*_args(arrays, flag, "--json")]) == 0
        out = json.loads(capsys.readouterr().out)
        ref = representation_metrics(
            np.load(arrays["weak"]), np.load(arrays["strong"]), config=KernelConfig(rule=rule)
        ).metrics
        assert (out["k_rule"], out["k_weak"], out["k_strong"]) == (
            rule,
            ref["k_weak"],
            ref["k_strong"],
        )
        assert out["k_flag"] == ref["k_flag"] and out["detectable_weak"] == ref["detectable_weak"]
    assert main([*_args(arrays, "--mp-edge", "--sigma-estimate", "iterative", "--json")]) == 0
    assert json.loads(capsys.readouterr().out)["k_rule"] == "mp_edge"
    # no rule flag: the default rule, mp_edge with σ̂ from the median (issue 14), the same numbers
    assert main([*_args(arrays, "--mp-edge", "--json")]) == 0
    named = json.loads(capsys.readouterr().out)
    assert main([*_args(arrays, "--json")]) == 0
    assert json.loads(capsys.readouterr().out) == named
    # and a known noise level goes with the default rule without naming it
    assert main([*_args(arrays, "--noise-sigma-weak", "0.1", "--json")]) == 0
    assert json.loads(capsys.readouterr().out)["k_rule"] == "mp_edge"


@pytest.mark.parametrize(
    "mutate,extra,message",
    [
        ("missing", [], "not found"),
        ("nan", [], "NaN"),
        ("rows", [], "rows"),
        (None, ["--k-weak", "1", "--k-strong", "2", "--variance", "0.9"], "one k rule"),
        (None, ["--noise-floor", "5", "--gavish-donoho"], "one k rule"),
        (None, ["--mp-edge", "--parallel-analysis"], "one k rule"),
        (None, ["--variance", "0.9", "--noise-sigma-weak", "0.1"], "--mp-edge or --gavish-donoho"),
        (None, ["--gavish-donoho", "--sigma-estimate", "iterative"], "goes with --mp-edge"),
        (None, ["--hard", "--gamma-weak", "0.1"], "--hard"),
        (None, ["--k-weak", "1"], "k-strong"),
        (None, ["--scores", "x.npy"], "--labels"),
        (None, ["--k-weak", "500", "--k-strong", "2"], "rank"),
        ("labels", [], "--labels"),
    ],
)
def test_bad_input_is_one_line_error(
    arrays: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: str | None,
    extra: list[str],
    message: str,
) -> None:
    argv = _args(arrays, *extra)
    if mutate == "missing":
        argv[2] = str(tmp_path / "nope.npy")
    elif mutate == "nan":
        bad = np.load(arrays["weak"])
        bad[2, 3] = np.nan
        np.save(tmp_path / "bad.npy", bad)
        argv[2] = str(tmp_path / "bad.npy")
    elif mutate == "rows":
        np.save(tmp_path / "short.npy", np.load(arrays["weak"])[:-3])
        argv[2] = str(tmp_path / "short.npy")
    elif mutate == "labels":
        np.save(tmp_path / "y.npy", np.zeros(7))
        argv += ["--labels", str(tmp_path / "y.npy")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("w2sg: error:") and message in err
    assert len(err.strip().splitlines()) == 1


def test_binary_labels_are_encoded_as_run_encodes_them(
    arrays: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y = (np.load(arrays["labels"]) > 0).astype(int)
    np.save(tmp_path / "y01.npy", y)
    assert main(_args(arrays, "--labels", str(tmp_path / "y01.npy"), "--json")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["label_encoding"].startswith("±1")
    ref = representation_metrics(
        np.load(arrays["weak"]), np.load(arrays["strong"]), y=2.0 * y - 1.0
    ).metrics
    assert printed["predicted_gap"] == pytest.approx(ref["predicted_gap"], rel=1e-12)
    from w2sg.pipeline import prepare_labels

    expected = prepare_labels(y, "classification").theory_targets(np.arange(len(y)))
    assert np.array_equal(expected, 2.0 * y - 1.0)  # the same encoding as w2sg run's theory block
    assert main(_args(arrays, "--labels", str(tmp_path / "y01.npy"))) == 0
    assert "labels encoded: ±1 as in w2sg run (class 0 → −1, class 1 → +1)" in (
        capsys.readouterr().out
    )
