"""Every failure a user can cause is one line ``w2sg: error: …`` with exit status 2 (issue 12,
item 3): each case below was first reproduced as a traceback, then fixed."""

from __future__ import annotations

import builtins
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from w2sg.cli import main

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


@pytest.fixture()
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    np.save("W.npy", rng.normal(size=(120, 4)) + y[:, None])
    np.save("S.npy", rng.normal(size=(120, 6)) + 2 * y[:, None])
    np.save("y.npy", y)
    np.savez("W.npz", W=np.load("W.npy"))
    data = Path("W.npz").read_bytes()
    Path("trunc.npz").write_bytes(data[: len(data) // 2])
    data = Path("W.npy").read_bytes()
    Path("trunc.npy").write_bytes(data[: len(data) // 3])
    Path("d.npy").mkdir()
    Path("existing").write_text("x")
    Path("texts.txt").write_bytes(b"a good film\n\xff\xfe broken\n")
    Path("sweep.yaml").write_bytes(b"name: x\ntasks: [synthetic]\n# \xff\xfe\n")
    Path("family.yaml").write_bytes(b"name: f\n\xff: 1\n")
    return tmp_path


def one_error(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit 2 and exactly one stderr line ``w2sg: error: …``; return it."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("w2sg: error: ")
    assert "Traceback" not in err
    return lines[0]


RUN = ["run", "--strong", "S.npy", "--labels", "y.npy", "--no-theory", "--no-bounds"]
RUN_OK = ["run", "--weak", "W.npy", "--strong", "S.npy", "--labels", "y.npy"]
RUN_OK += ["--no-theory", "--no-bounds", "--bootstrap", "10"]


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        ([*RUN, "--weak", "trunc.npz"], "--weak: cannot read trunc.npz .* truncated, damaged"),
        ([*RUN, "--weak", "trunc.npy"], "--weak: trunc.npy is truncated: its header says"),
        ([*RUN, "--weak", "d.npy"], "--weak: d.npy is a folder; give a file"),
        ([*RUN_OK, "--seed", "-1"], "run: argument --seed: must be in 0"),
        ([*RUN_OK, "--out", "existing"], "--out existing is an existing file; give a folder"),
        (["demo", "--out", "existing"], "--out existing is an existing file"),
        (
            [
                "epochs",
                "--weak",
                "W.npy",
                "--strong",
                "S.npy",
                "--labels",
                "y.npy",
                "--out",
                "existing",
            ],
            "--out existing is an existing file",
        ),  # fmt: skip
        (["report", "existing", "--out", "existing"], "--out existing is an existing file"),
        (
            ["pretrain-smiles", "--family", "family.yaml", "--out", "existing"],
            "--out existing is an existing file",
        ),
        (["demo", "--seed", "-1"], "demo: argument --seed"),
        (
            [
                "metric",
                "--weak",
                "W.npy",
                "--strong",
                "S.npy",
                "--labels",
                "y.npy",
                "--scores",
                "scores",
            ],
            "--scores must end in .npy",
        ),  # fmt: skip
        (
            ["embed", "--model", "static-64", "--texts", "texts.txt", "--out", "e.npy"],
            r"--texts: texts.txt is not UTF-8 text \(byte 0xff on line 2\)",
        ),
        (["sweep", "sweep.yaml", "--store", "s.db"], "sweep config: sweep.yaml is not UTF-8"),
        (
            ["pretrain-smiles", "--family", "family.yaml", "--out", "models"],
            "family file: family.yaml is not UTF-8",
        ),
        (
            [
                "embed",
                "--model",
                "minilm-l6",
                "--texts",
                "texts.txt",
                "--out",
                "e.npy",
                "--device",
                "tpu9",
            ],
            "unknown device 'tpu9'",
        ),  # fmt: skip
        (["export", "x.db", "--out", "d.npy"], "--out must end in .parquet or .csv"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_is_one_line(files, capsys, argv, pattern):
    import re

    line = one_error(capsys, argv)
    assert re.search(pattern, line), line


def test_export_out_onto_a_folder(files, capsys):
    Path("runs.csv").mkdir()
    assert "--out runs.csv is a folder" in one_error(
        capsys, ["export", "x.db", "--out", "runs.csv"]
    )


def test_cuda_on_a_cpu_build(files, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU, so --device cuda is valid here")
    line = one_error(
        capsys,
        ["embed", "--model", "minilm-l6", "--texts", "texts.txt", "--out", "e.npy",
         "--device", "cuda"],
    )  # fmt: skip
    assert "device 'cuda'" in line and "--device cpu" in line
    assert not Path("e.npy").exists()


def test_hf_folders_without_weights_or_with_a_bad_config(files, capsys):
    Path("texts.txt").write_text("a good film\nbad\n")
    Path("noweights").mkdir()
    Path("noweights/config.json").write_text('{"model_type": "bert"}')
    Path("badconfig").mkdir()
    Path("badconfig/config.json").write_text("{not json")
    Path("badconfig/model.safetensors").write_bytes(b"")
    Path("empty").mkdir()
    cases = {
        "hf:noweights": "has no weights",
        "noweights": "has no weights",
        "hf:badconfig": "is not a readable JSON config",
        "empty": "has no config.json",
    }
    for model, pattern in cases.items():
        argv = ["embed", "--model", model, "--texts", "texts.txt", "--out", "e.npy", "--no-cache"]
        assert pattern in one_error(capsys, argv), model


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: chmod 0o555 as a normal user; as root (which ignores
    modes) /sys, where even root cannot create files."""
    if not ROOT:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys")
    try:
        probe = folder / "w2sg-probe"
        probe.touch()
    except OSError:
        return folder
    probe.unlink()
    pytest.skip("no unwritable folder here: running as root and /sys is writable")


@pytest.mark.parametrize("command", ["run", "demo", "epochs", "report", "pretrain-smiles"])
def test_read_only_out_folder_is_refused_before_the_work(files, capsys, command):
    out = str(unwritable_folder(files) / "out")
    argv = {
        "run": [*RUN_OK, "--out", out],
        "demo": ["demo", "--out", out],
        "epochs": ["epochs", "--weak", "W.npy", "--strong", "S.npy", "--labels", "y.npy",
                   "--out", out],
        "report": ["report", "existing", "--out", out],
        "pretrain-smiles": ["pretrain-smiles", "--family", "family.yaml", "--out", out],
    }[command]  # fmt: skip
    assert "cannot write in" in one_error(capsys, argv)


def test_metric_scores_unwritable_and_the_name_it_prints(files, capsys):
    base = ["metric", "--weak", "W.npy", "--strong", "S.npy", "--labels", "y.npy"]
    bad = str(unwritable_folder(files) / "s.npy")
    assert "--scores" in one_error(capsys, [*base, "--scores", bad])
    assert main([*base, "--scores", "sub/scores.npy"]) == 0
    out = capsys.readouterr().out
    assert "wrote per-example scores to sub/scores.npy" in out
    assert np.load("sub/scores.npy").shape == (120,)


@pytest.fixture()
def unreadable(monkeypatch):
    """Make a file unreadable: chmod 000 as a normal user; as root (which ignores modes), every
    open of it raises PermissionError, as it would for a user."""

    def make(path: Path) -> None:
        if not ROOT:
            path.chmod(0)
            return
        target = str(path.resolve())
        real_open = builtins.open

        def guarded(file, *args, **kwargs):
            if isinstance(file, str | os.PathLike) and os.path.abspath(file) == target:
                raise PermissionError(13, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded)
        monkeypatch.setattr(io, "open", guarded)

    return make


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("W.npy", RUN_OK),
        ("texts.txt", ["embed", "--model", "static-64", "--texts", "texts.txt", "--out", "e.npy"]),
        ("sweep.yaml", ["sweep", "sweep.yaml", "--store", "s.db"]),
    ],
)
def test_unreadable_input(files, capsys, unreadable, name, argv):
    unreadable(files / name)
    line = one_error(capsys, argv)
    assert name in line and "permission denied" in line


def test_debug_prints_the_traceback(files, capsys):
    assert main(["--debug", *RUN, "--weak", "d.npy"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("--weak: d.npy is a folder; give a file")


def test_internal_errors_are_one_line_with_status_1(files, capsys, monkeypatch):
    import w2sg.pipeline

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(w2sg.pipeline, "run_pipeline", broken)
    assert main(RUN_OK) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("w2sg: error: internal error (ZeroDivisionError: boom)")
    assert "\n" not in err and "--debug" in err


def test_a_real_process_prints_one_line(files):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "w2sg", *RUN, "--weak", "trunc.npz"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("w2sg: error: --weak:")
