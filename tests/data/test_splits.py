import numpy as np
import pytest

from w2sg.data.splits import content_ids, make_splits, text_ids


@pytest.mark.parametrize("n", [10, 101, 1000])
@pytest.mark.parametrize("fractions", [(0.4, 0.4, 0.2), (0.3, 0.3, 0.2, 0.2), (0.5, 0.25, 0.25)])
def test_splits_partition_rows_and_sizes_follow_fractions(n, fractions):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3))
    ids = content_ids(X)
    s = make_splits(ids, fractions, seed=1)
    all_idx = np.concatenate(list(s.indices.values()))
    assert sorted(all_idx.tolist()) == list(range(n))
    for (name, idx), f in zip(s.indices.items(), fractions, strict=True):
        assert abs(len(idx) - f * n) <= 1, name


def test_stratified_keeps_class_proportions_in_every_split():
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=3000, p=[0.6, 0.3, 0.1])
    ids = content_ids(rng.normal(size=(3000, 2)), y)
    s = make_splits(ids, (0.4, 0.4, 0.2), seed=3, stratify=y)
    for name, idx in s.indices.items():
        for c in range(3):
            frac_c = (y[idx] == c).mean()
            assert abs(frac_c - (y == c).mean()) < 2.0 / len(idx) + 1e-9, (name, c)


def test_duplicate_rows_never_straddle_splits():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(50, 4))
    X = np.concatenate([base, base[:20], base[:5]])  # duplicated content
    ids = content_ids(X)
    s = make_splits(ids, (0.4, 0.4, 0.2), seed=0)
    seen = {}
    for name, idx in s.indices.items():
        for i in ids[idx]:
            assert seen.setdefault(i, name) == name


def test_split_is_seeded_and_independent_of_row_order():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3))
    ids = content_ids(X)
    a = make_splits(ids, seed=7)
    b = make_splits(ids, seed=7)
    c = make_splits(ids, seed=8)
    perm = rng.permutation(200)
    d = make_splits(ids[perm], seed=7)
    for name in a.indices:
        assert np.array_equal(a[name], b[name])
        assert set(ids[a[name]]) == set(ids[perm][d[name]])
    assert any(not np.array_equal(a[k], c[k]) for k in a.indices)


def test_content_ids_are_dtype_independent_and_distinguish_rows():
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert np.array_equal(content_ids(X), content_ids(X.astype(np.float64)))
    assert len(set(content_ids(X))) == 4
    assert len(set(text_ids(["a", "b", "a"]))) == 2
