"""Over-optimisation study: per-epoch rows match independently trained models; files; CLI."""

import csv
import json

import numpy as np
import pytest

from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.data.splits import content_ids, make_splits
from w2sg.errors import W2SGError
from w2sg.experiments.epochs import epoch_study, parse_epochs
from w2sg.heads.softmax import SoftmaxHead
from w2sg.metrics import accuracy, cross_entropy, d_fwd


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    weak = np.column_stack([z[:, 0] + 0.8 * rng.normal(size=n), rng.normal(size=(n, 2))])
    strong = np.column_stack([z, 0.2 * rng.normal(size=(n, 5))])
    y = (z @ np.array([1.0, 0.7, -0.5]) > 0).astype(int)
    return weak, strong, y


CONFIG = RunConfig(optimizer="adam", lr=0.05, batch_size=32, weak_ridge=1e-2, strong_ridge=1e-3)


@pytest.fixture(scope="module")
def study():
    weak, strong, y = _data()
    return epoch_study(weak, strong, y, CONFIG, epochs=(1, 2, 4))


def test_rows_follow_the_schedule_and_every_bound_holds(study):
    assert [row["epoch"] for row in study.table] == [1, 2, 4]
    assert study.sizes == {"weak_train": 120, "w2s_train": 120, "test": 60}
    for row in study.table:
        assert row["gen_holds"] and row["err_holds"] and row["cal_holds"]
        assert row["gen_tv_lower"] <= row["gen_measured"] <= row["gen_tv_upper"]
        assert row["err_lower"] <= row["w2s_error"] <= row["err_upper"]
        assert row["w2s_error"] == pytest.approx(1 - row["w2s_accuracy"])
    # The weak model does not change across epochs.
    assert len({row["weak_ce"] for row in study.table}) == 1


def test_rows_match_independently_trained_models(study):
    """Epoch 2 of the study = a student trained for exactly 2 epochs on the same weak labels."""
    weak, strong, y = _data()
    ids = content_ids(weak, strong, y)
    splits = make_splits(ids, CONFIG.fractions, seed=CONFIG.seed, stratify=y)
    tr, hat, te = splits["weak_train"], splits["w2s_train"], splits["test"]
    teacher = SoftmaxHead(l2=CONFIG.weak_ridge, optimizer="lbfgs", seed=CONFIG.seed)
    teacher.fit(weak[tr], np.eye(2)[y[tr]])
    q_hat, q_test = teacher.predict_proba(weak[hat]), teacher.predict_proba(weak[te])
    student = SoftmaxHead(
        l2=CONFIG.strong_ridge,
        optimizer="adam",
        epochs=2,
        lr=CONFIG.lr,
        batch_size=CONFIG.batch_size,
        seed=CONFIG.seed + 1,
    ).fit(strong[hat], q_hat)
    p_test = student.predict_proba(strong[te])
    row = study.table[1]
    assert row["w2s_ce"] == pytest.approx(cross_entropy(y[te], p_test), abs=1e-10)
    assert row["w2s_accuracy"] == pytest.approx(accuracy(y[te], p_test))
    assert row["weak_ce"] == pytest.approx(cross_entropy(y[te], q_test), abs=1e-10)
    assert row["d_fwd"] == pytest.approx(d_fwd(q_test, p_test), abs=1e-12)
    assert row["d_fwd_train"] == pytest.approx(
        d_fwd(q_hat, student.predict_proba(strong[hat])), abs=1e-12
    )


def test_csv_json_and_plot(study, tmp_path):
    study.to_csv(tmp_path / "e.csv")
    with open(tmp_path / "e.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 4]
    assert float(rows[2]["d_rev"]) == pytest.approx(study.table[2]["d_rev"])
    study.to_json(tmp_path / "e.json")
    record = json.loads((tmp_path / "e.json").read_text())
    assert record["config"]["loss"] == "xent" and len(record["rows"]) == 3
    study.plot(tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_errors():
    weak, strong, y = _data(60)
    with pytest.raises(W2SGError, match="regression"):
        epoch_study(weak, strong, y * 1.5, RunConfig(task="regression", head="ridge"))
    with pytest.raises(W2SGError, match="increasing"):
        epoch_study(weak, strong, y, CONFIG, epochs=(4, 2))
    with pytest.raises(W2SGError, match="softmax"):
        epoch_study(weak, strong, y, RunConfig(head="convex_kl"), epochs=(1,))
    with pytest.raises(W2SGError, match="rows"):
        epoch_study(weak[:-1], strong, y, CONFIG, epochs=(1,))
    with pytest.raises(W2SGError, match="integers"):
        parse_epochs("1,two")
    assert parse_epochs("1,3,9") == (1, 3, 9)


def _files(tmp_path):
    weak, strong, y = _data(200, seed=1)
    for name, arr in (("w", weak), ("s", strong), ("y", y)):
        np.save(tmp_path / f"{name}.npy", arr)
    return ["--weak", str(tmp_path / "w.npy"), "--strong", str(tmp_path / "s.npy"),
            "--labels", str(tmp_path / "y.npy")]  # fmt: skip


def test_cli_epochs_writes_files(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["epochs", *_files(tmp_path), "--epochs", "1,3", "--lr", "0.05", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "every bound held at every epoch: True" in text
    for name in ("epochs.csv", "epochs.json", "epochs.png", "epochs_config.json"):
        assert (out / name).stat().st_size > 0
    config = json.loads((out / "epochs_config.json").read_text())
    assert config["optimizer"] == "adam" and config["epochs"] == 3
    assert main([*args[:-2], "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [row["epoch"] for row in record["rows"]] == [1, 3]


def test_cli_epochs_user_errors(tmp_path, capsys):
    files = _files(tmp_path)
    assert main(["epochs", *files, "--epochs", "3,1"]) == 2
    assert "increasing" in capsys.readouterr().err
    assert main(["epochs", *files, "--weak-predictions", str(tmp_path / "s.npy")]) == 2
    assert "--weak-predictions" in capsys.readouterr().err
    assert main(["epochs", "--strong", files[3], "--labels", files[5]]) == 2
