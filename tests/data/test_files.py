"""Data files: every format, texts intact, label mappings, splits from the file, bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from w2sg.data.files import Columns, encode_labels, file_format, load_file
from w2sg.data.splits import splits_from_names, text_ids
from w2sg.errors import W2SGError

TEXTS = [
    'a "quoted" text, with commas',
    "two\nlines",
    "Unicode: ünïcødé — 日本語 😀",
    "tab\there; semicolon",
    "  leading and trailing spaces  ",
    "plain",
]
LABELS = ["pos", "neg", "pos", "neg", "neg", "pos"]


def _frame():
    return pd.DataFrame({"text": TEXTS, "label": LABELS, "q": [f"q{i}" for i in range(6)]})


def _write(frame, path):
    fmt = file_format(path)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "json":
        path.write_text(json.dumps(frame.to_dict(orient="records"), ensure_ascii=False))
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("name", ["d.csv", "d.tsv", "d.jsonl", "d.json", "d.parquet", "d.csv.gz"])
def test_every_format_keeps_texts_intact_and_maps_labels(tmp_path, name):
    path = _write(_frame(), tmp_path / name)
    ds = load_file(path, Columns(text=("text",), label="label"))
    assert ds.inputs == TEXTS  # newlines, quotes, commas, tabs, Unicode, spaces: byte for byte
    assert ds.classes == ("neg", "pos")
    assert ds.labels.tolist() == [1, 0, 1, 0, 0, 1]
    assert ds.ids == [str(i) for i in text_ids(TEXTS)]
    assert ds.provenance["label_mapping"] == {"neg": 0, "pos": 1}
    assert ds.provenance["n_rows"] == ds.provenance["n_used"] == 6
    assert ds.task == "classification" and ds.kind == "text"


def test_label_order_sets_the_mapping_and_checks_every_class(tmp_path):
    path = _write(_frame(), tmp_path / "d.csv")
    ds = load_file(path, Columns(text=("text",), label="label", label_order=("pos", "neg")))
    assert ds.classes == ("pos", "neg") and ds.labels.tolist() == [0, 1, 0, 1, 1, 0]
    with pytest.raises(W2SGError, match="label 'pos' is not in --label-order neg"):
        load_file(path, Columns(text=("text",), label="label", label_order=("neg",)))
    with pytest.raises(W2SGError, match="names 'maybe', which no row has"):
        load_file(path, Columns(text=("text",), label="label", label_order=("neg", "pos", "maybe")))


def test_booleans_integers_and_floats_choose_the_task():
    y, task, classes = encode_labels([True, False, True], None, None)
    assert (y.tolist(), task, classes) == ([1, 0, 1], "classification", ("False", "True"))
    y, task, classes = encode_labels([2, 1, 2, 1], None, None)
    assert (y.tolist(), task, classes) == ([1, 0, 1, 0], "classification", ("1", "2"))
    v = np.linspace(-3, 3, 100)
    y, task, classes = encode_labels(v, None, None)
    assert task == "regression" and classes == () and np.allclose(y, v)
    y, task, _ = encode_labels([0.2, 0.9], "probability", None)
    assert task == "probability" and y.tolist() == [0.2, 0.9]
    with pytest.raises(W2SGError, match="needs numeric labels, found 'pos'"):
        encode_labels(["pos", "neg"], "regression", None)


def test_two_text_columns_join_by_the_default_or_a_template(tmp_path):
    path = _write(_frame(), tmp_path / "d.parquet")
    ds = load_file(path, Columns(text=("q", "text"), label="label"))
    assert ds.inputs[1] == "q1\n\ntwo\nlines"
    ds = load_file(path, Columns(text=("q", "text"), label="label", template="Q: {q} A: {text}"))
    assert ds.inputs[0] == 'Q: q0 A: a "quoted" text, with commas'
    assert ds.provenance["template"] == "Q: {q} A: {text}"
    with pytest.raises(W2SGError, match="--text-template names"):
        load_file(path, Columns(text=("q", "text"), label="label", template="{nope}"))


def test_rows_left_out_are_counted_with_their_row_numbers(tmp_path):
    frame = _frame()
    frame.loc[1, "label"] = None
    frame.loc[4, "text"] = ""
    path = _write(frame, tmp_path / "d.csv")
    ds = load_file(path, Columns(text=("text",), label="label"))
    assert len(ds) == 4 and ds.rows == (0, 2, 3, 5)
    assert ds.provenance["n_rows"] == 6 and ds.provenance["n_used"] == 4
    assert any("1 rows with an empty input (row 5)" in n for n in ds.notes)
    assert any("1 rows with an empty label (row 2)" in n for n in ds.notes)


def test_id_column_keeps_strings_and_errors_name_the_column(tmp_path):
    frame = _frame().assign(uid=[f"00{i}" for i in range(6)])
    path = _write(frame, tmp_path / "d.csv")
    ds = load_file(path, Columns(text=("text",), label="label", id="uid"))
    assert ds.ids == [f"00{i}" for i in range(6)]
    with pytest.raises(W2SGError, match="has no column 'txt'; its columns are text, label"):
        load_file(path, Columns(text=("txt",), label="label"))
    with pytest.raises(W2SGError, match="--label-column"):
        load_file(path, Columns(text=("text",)))
    with pytest.raises(W2SGError, match="file not found"):
        load_file(tmp_path / "missing.csv", Columns(text=("text",), label="label"))
    (tmp_path / "d.txt").write_text("text,label\n")
    with pytest.raises(W2SGError, match="cannot tell the format"):
        load_file(tmp_path / "d.txt", Columns(text=("text",), label="label"))


def test_split_column_is_used_and_conflicting_copies_leave_training(tmp_path):
    texts = [f"text {i}" for i in range(40)] + ["text 0"]  # a copy of a train row in test
    split = ["train"] * 30 + ["validation"] * 4 + ["test"] * 7
    labels = ["a", "b"] * 20 + ["a"]
    path = _write(pd.DataFrame({"t": texts, "y": labels, "s": split}), tmp_path / "d.csv")
    ds = load_file(path, Columns(text=("t",), label="y", split="s"))
    assert len(ds) == 40 and ds.splits.count("train") == 29 and ds.splits.count("test") == 7
    assert any("also occurs in a later split" in n and "row 1" in n for n in ds.notes)
    splits = splits_from_names(
        ds.splits, np.array(ds.ids), (0.4, 0.4, 0.2), seed=0, stratify=ds.labels
    )
    names = np.array(ds.splits)
    assert set(names[splits["test"]]) == {"test"} and set(names[splits["val"]]) == {"val"}
    train = np.concatenate([splits["weak_train"], splits["w2s_train"]])
    assert sorted(train.tolist()) == np.flatnonzero(names == "train").tolist()
    assert abs(len(splits["weak_train"]) - len(splits["w2s_train"])) <= 1
    bad = _write(pd.DataFrame({"t": texts, "y": labels, "s": ["holdout"] * 41}), tmp_path / "b.csv")
    with pytest.raises(W2SGError, match="holds 'holdout'"):
        load_file(bad, Columns(text=("t",), label="y", split="s"))
    with pytest.raises(W2SGError, match="no test rows"):
        splits_from_names(["train"] * 10, np.arange(10).astype(str))


def test_smiles_column_drops_invalid_molecules_with_row_numbers(tmp_path):
    pytest.importorskip("rdkit")
    frame = pd.DataFrame(
        {"smi": ["CCO", "c1ccccc1", "not-a-smiles", "CC(=O)O"], "y": [0.5, 1.5, 2.5, 3.5]}
    )
    path = _write(frame, tmp_path / "m.csv")
    ds = load_file(path, Columns(smiles="smi", label="y", task="regression"))
    assert ds.kind == "smiles" and ds.inputs == ["CCO", "c1ccccc1", "CC(=O)O"]
    assert ds.labels.tolist() == [0.5, 1.5, 3.5]
    assert any("invalid SMILES (row 3)" in n for n in ds.notes)


def test_limit_is_a_seeded_subset(tmp_path):
    frame = pd.DataFrame({"t": [f"t{i}" for i in range(50)], "y": [i % 2 for i in range(50)]})
    path = _write(frame, tmp_path / "d.csv")
    a = load_file(path, Columns(text=("t",), label="y"), limit=10, seed=3)
    b = load_file(path, Columns(text=("t",), label="y"), limit=10, seed=3)
    assert a.inputs == b.inputs and len(a) == 10 and list(a.rows) == sorted(a.rows)


def test_a_spreadsheet_byte_order_mark_and_na_like_texts_are_read_as_written(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("text,label\nNA,pos\nnull,neg\n".encode("utf-8-sig"))
    ds = load_file(path, Columns(text=("text",), label="label"))
    assert ds.inputs == ["NA", "null"] and ds.classes == ("neg", "pos")
