"""Data files as researchers bring them: CSV, TSV, JSONL, JSON and Parquet with named columns.

:func:`load_file` reads a table with pandas / pyarrow (never line by line, so texts with newlines,
quotes, commas and any Unicode arrive intact) and returns a
:class:`~w2sg.data.datasets.Dataset`. Which columns hold what is a :class:`Columns`:

- ``text``: one column, or several (e.g. question and answer) joined by ``template`` — a Python
  format string over the column names; the default joins them with a blank line,
  ``"{question}\\n\\n{answer}"``;
- ``smiles``: the column of SMILES strings, for molecules (instead of ``text``);
- ``label``: the ground truth; ``id``: optional example ids (default: content hashes of the
  inputs); ``split``: optional per-row split names (use the file's own splits instead of drawing
  them, see :data:`SPLIT_ALIASES`).

Labels: strings and booleans are classes, numbered by a recorded deterministic mapping (sorted,
or ``label_order``); integers with few distinct values are classes too (the mapping numbers them in
sorted order); other numbers are regression targets. Every row is accounted for: a row left out
(an empty text or label, an invalid SMILES) is counted in ``Dataset.notes`` with its row number.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.data.datasets import Dataset, truncate_words
from w2sg.data.splits import SPLIT_NAMES, text_ids
from w2sg.errors import W2SGError

# A split column's values, and the pipeline split each stands for. ``train`` rows are divided
# between weak_train and w2s_train (seeded, stratified, in the ratio of the first two fractions).
SPLIT_ALIASES: dict[str, str] = {
    **{name: name for name in SPLIT_NAMES},
    "train": "train",
    "training": "train",
    "validation": "val",
    "valid": "val",
    "dev": "val",
    "eval": "val",
    "testing": "test",
}

SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst", ".zip")

DEFAULT_PAIR_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Columns:
    """Which columns of a table hold the inputs, labels, ids and splits (see the module doc).

    ``task`` forces the task (``classification``, ``regression``, ``probability``); ``None``
    infers it from the labels.
    """

    text: tuple[str, ...] = ()
    label: str | None = None
    id: str | None = None
    split: str | None = None
    smiles: str | None = None
    label_order: tuple[str, ...] | None = None
    template: str | None = None
    task: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that are set (so adding a field keeps existing identities)."""
        out: dict[str, Any] = {}
        for key in ("text", "label", "id", "split", "smiles", "label_order", "template", "task"):
            value = getattr(self, key)
            if value:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Columns:
        data = dict(data)
        text = data.pop("text", ())
        order = data.pop("label_order", None)
        return cls(
            text=(text,) if isinstance(text, str) else tuple(text or ()),
            label_order=tuple(str(v) for v in order) if order else None,
            **data,
        )


def parse_column_list(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"question,answer"`` or ``["question", "answer"]`` → ``("question", "answer")``."""
    if text is None:
        return ()
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",")] if "," in text else [text]
    else:
        parts = [str(p) for p in text]
    return tuple(p for p in parts if p)


def file_format(path: str | Path) -> str:
    """The table format of ``path`` from its suffix (a compression suffix may follow)."""
    name = Path(path).name.lower()
    for comp in _COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
            break
    for suffix, fmt in SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    known = ", ".join(sorted(SUFFIXES))
    raise W2SGError(f"--data: cannot tell the format of {path}; name it with one of {known}")


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> Any:
    """The file as a pandas DataFrame, text-like columns read as strings (not numbers).

    ``columns`` read as strings (ids, texts, SMILES and split names keep leading zeros and never
    become floats); the others are left to pandas' type inference.
    """
    import pandas as pd

    from w2sg.data.io import CORRUPT_ERRORS, check_input_file, os_problem

    p = check_input_file(path, "--data")
    fmt = file_format(p)
    as_str = {c: str for c in columns or ()}
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(
                p, sep="\t" if fmt == "tsv" else ",", dtype=as_str, keep_default_na=False,
                na_values=[""], encoding="utf-8-sig",  # -sig: a spreadsheet's byte-order mark
            )  # fmt: skip
        if fmt == "jsonl":
            return pd.read_json(p, lines=True, dtype=as_str or None, encoding="utf-8")
        if fmt == "json":
            return pd.read_json(p, dtype=as_str or None, encoding="utf-8")
        return pd.read_parquet(p)
    except UnicodeDecodeError as exc:
        raise W2SGError(
            f"--data: {path} is not UTF-8 ({exc.reason}); re-save it as UTF-8"
        ) from None
    except OSError as exc:  # also a damaged .gz (BadGzipFile) and pyarrow's I/O errors
        raise W2SGError(f"--data: cannot read {path}: {os_problem(exc)}") from None
    except CORRUPT_ERRORS as exc:  # pandas' ParserError is a ValueError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise W2SGError(f"--data: cannot read {path} as {fmt}: {first}") from None


def load_file(
    path: str | Path,
    columns: Columns,
    *,
    limit: int | None = None,
    seed: int = 0,
    max_words: int | None = None,
) -> Dataset:
    """Read data file ``path`` into a :class:`Dataset` with the column roles of ``columns``.

    ``Dataset.provenance`` records the file's SHA-256, the columns and the label mapping, so the
    results store tells a changed file apart; the embedding cache keys on the inputs' content.
    """
    from w2sg.data.io import file_sha256

    wanted = [*columns.text, columns.smiles, columns.id, columns.split]
    frame = read_table(path, [c for c in wanted if c])
    source = {"path": str(path), "sha256": file_sha256(path)}
    return frame_to_dataset(
        frame, columns, name=Path(path).name, source=source, limit=limit, seed=seed,
        max_words=max_words, what="--data",
    )  # fmt: skip


def _template(columns: Columns) -> str:
    if columns.template:
        fields = {f for _, f, _, _ in string.Formatter().parse(columns.template) if f is not None}
        unknown = sorted(f for f in fields if f not in columns.text)
        if unknown or not fields:
            raise W2SGError(
                f"--text-template names {unknown or 'no column'}; its fields must be text "
                f"columns ({', '.join(columns.text)}), e.g. 'Q: {{{columns.text[0]}}} A: ...'"
            )
        return columns.template
    return DEFAULT_PAIR_SEPARATOR.join(f"{{{c}}}" for c in columns.text)


def _rows_text(rows: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(r) + 1) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def frame_to_dataset(
    frame: Any,
    columns: Columns,
    *,
    name: str,
    source: dict[str, Any] | None = None,
    limit: int | None = None,
    seed: int = 0,
    max_words: int | None = None,
    what: str = "--data",
) -> Dataset:
    """A DataFrame with named columns → :class:`Dataset` (the shared core of files and hub data).

    Row numbers in notes count data rows from 1 (the header is not a row).
    """
    if bool(columns.text) == bool(columns.smiles):
        raise W2SGError(
            f"{what}: name the inputs with --text-column COL (or two: COL1,COL2) or "
            "--smiles-column COL, one of the two"
        )
    if columns.label is None:
        raise W2SGError(f"{what}: name the labels with --label-column COL")
    if len(columns.text) > 1 and columns.template is None and len(set(columns.text)) < 2:
        raise W2SGError(f"{what}: --text-column lists a column twice")
    needed = [*columns.text, columns.smiles, columns.label, columns.id, columns.split]
    missing = [c for c in needed if c and c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns[:20]))
        raise W2SGError(f"{what}: {name} has no column {missing[0]!r}; its columns are {have}")
    if limit is not None and limit < 1:
        raise W2SGError(f"--limit must be >= 1, got {limit}")
    n_rows = len(frame)
    if n_rows == 0:
        raise W2SGError(f"{what}: {name} holds no rows")
    notes: list[str] = []
    kind = "smiles" if columns.smiles else "text"

    # Inputs: one column, or several joined by the template. Missing cells are empty.
    if columns.smiles:
        inputs = [_cell(v) for v in frame[columns.smiles]]
    elif len(columns.text) == 1 and columns.template is None:
        inputs = [_cell(v) for v in frame[columns.text[0]]]
    else:
        template = _template(columns)
        cells = {c: [_cell(v) for v in frame[c]] for c in columns.text}
        inputs = [template.format(**{c: cells[c][i] for c in columns.text}) for i in range(n_rows)]
    if max_words is not None:
        if max_words < 1 or kind != "text":
            raise W2SGError("--max-words takes N >= 1 and applies to texts, not SMILES")
        inputs, n_cut = truncate_words(inputs, max_words)
        notes.append(f"cut {n_cut} of {n_rows} texts to their first {max_words} words")

    raw_labels = frame[columns.label]
    label_missing = raw_labels.isna().to_numpy() | np.array(
        [isinstance(v, str) and not v.strip() for v in raw_labels], dtype=bool
    )
    input_missing = np.array([not s.strip() for s in inputs], dtype=bool)
    keep = ~(label_missing | input_missing)
    for mask, why in ((input_missing, "an empty input"), (label_missing & ~input_missing,
                                                         "an empty label")):  # fmt: skip
        if mask.any():
            notes.append(
                f"left out {int(mask.sum())} rows with {why} ({_rows_text(np.flatnonzero(mask))})"
            )
    rows = np.flatnonzero(keep)
    if limit is not None and limit < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))
        notes.append(f"kept a seeded random subset of {limit} rows (seed {seed})")
    if len(rows) == 0:
        raise W2SGError(f"{what}: {name} has no row with both an input and a label")

    if kind == "smiles":
        from w2sg.represent.molecules import invalid_smiles

        bad = invalid_smiles([inputs[r] for r in rows])
        if bad:
            notes.append(f"left out {len(bad)} invalid SMILES ({_rows_text(rows[bad])})")
            rows = np.delete(rows, bad)

    labels, task, classes = encode_labels(
        raw_labels.iloc[rows], columns.task, columns.label_order, what=what
    )
    kept_inputs = [inputs[r] for r in rows]
    if columns.id:
        ids = [_cell(v) for v in frame[columns.id].iloc[rows]]
        if any(not i for i in ids):
            raise W2SGError(f"{what}: the id column {columns.id!r} has empty cells; fill them")
    else:
        ids = [str(i) for i in text_ids(kept_inputs)]
    splits: tuple[str, ...] = ()
    if columns.split:
        splits, dropped = _resolve_splits(
            [_cell(v) for v in frame[columns.split].iloc[rows]], ids, columns.split, what
        )
        if len(dropped):
            notes.append(
                f"left out {len(dropped)} rows whose content or id also occurs in a later split "
                f"(test > val > w2s_train > train > weak_train; {_rows_text(rows[dropped])})"
            )
            keep_idx = np.setdiff1d(np.arange(len(rows)), dropped)
            rows, labels = rows[keep_idx], labels[keep_idx]
            kept_inputs = [kept_inputs[i] for i in keep_idx]
            ids = [ids[i] for i in keep_idx]
            splits = tuple(splits[i] for i in keep_idx)

    mapping = {c: i for i, c in enumerate(classes)}
    provenance: dict[str, Any] = {
        **(source or {}),
        "columns": columns.to_dict(),
        "n_rows": n_rows,
        "n_used": len(rows),
        "task": task,
    }
    if mapping:
        provenance["label_mapping"] = mapping
        provenance["label_order"] = "given" if columns.label_order else "sorted"
    if kind == "text" and (len(columns.text) > 1 or columns.template):
        provenance["template"] = _template(columns)
    return Dataset(
        name=name,
        ids=ids,
        inputs=kept_inputs,
        labels=labels,
        task=task,
        kind=kind,
        classes=classes,
        notes=tuple(notes),
        splits=splits,
        rows=tuple(int(r) for r in rows),
        provenance=provenance,
    )


def _cell(value: Any) -> str:
    """A table cell as text: missing → ``""``; everything else as written."""
    if value is None:
        return ""
    if isinstance(value, float) and np.isnan(value):
        return ""
    return value if isinstance(value, str) else str(value)


def encode_labels(
    values: Any,
    task: str | None,
    label_order: Sequence[str] | None,
    *,
    what: str = "--data",
) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """Labels of a column → ``(labels, task, classes)``.

    Classes (strings, booleans, or integers with at most ``max(50, n/5)`` distinct values, or any
    labels with ``task="classification"``) are numbered by ``label_order`` when given, else in
    sorted order (numbers numerically); ``classes[i]`` is the name of class ``i``. Other numbers
    are regression targets (``task="regression"``) or positive-class probabilities
    (``task="probability"``).
    """
    import pandas as pd

    series = pd.Series(list(values))
    numeric = pd.to_numeric(series, errors="coerce")
    is_bool = series.map(lambda v: isinstance(v, bool | np.bool_)).all()
    all_numeric = bool(numeric.notna().all()) and not is_bool
    if task is None:
        if label_order or not all_numeric:
            task = "classification"
        else:
            v = numeric.to_numpy(dtype=float)
            integral = bool(np.all(v == np.round(v)))
            n_distinct = len(np.unique(v))
            few = n_distinct <= max(50, len(v) // 5)
            task = "classification" if integral and few else "regression"
    if task in ("regression", "probability"):
        if label_order:
            raise W2SGError(f"--label-order names classes; --task {task} has numeric labels")
        if not all_numeric:
            bad = series[numeric.isna()].iloc[0]
            raise W2SGError(
                f"{what}: --task {task} needs numeric labels, found {bad!r}; "
                "use --task classification for class names"
            )
        return numeric.to_numpy(dtype=np.float64), task, ()
    if task != "classification":
        raise W2SGError(f"unknown task {task!r}; use classification, regression or probability")

    if all_numeric:
        v = numeric.to_numpy(dtype=float)
        if not np.all(v == np.round(v)):
            raise W2SGError(
                f"{what}: the labels are non-integer numbers; use --task regression or "
                "--task probability"
            )
        names = [str(int(x)) for x in v]
        natural = [str(int(x)) for x in np.unique(v)]
    else:
        names = [str(v) for v in series]
        natural = sorted(set(names))
    if label_order:
        order = [str(c) for c in label_order]
        if len(set(order)) != len(order):
            raise W2SGError(f"--label-order lists a class twice: {','.join(order)}")
        unknown = sorted(set(names) - set(order))
        if unknown:
            raise W2SGError(
                f"{what}: label {unknown[0]!r} is not in --label-order {','.join(order)}; "
                f"list every class (found {', '.join(natural)})"
            )
        absent = [c for c in order if c not in set(names)]
        if absent:
            raise W2SGError(
                f"--label-order names {absent[0]!r}, which no row has (found {', '.join(natural)})"
            )
        classes = tuple(order)
    else:
        classes = tuple(natural)
    if len(classes) < 2:
        raise W2SGError(f"{what}: the labels hold a single class {classes}; at least 2 are needed")
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[n] for n in names], dtype=np.int64), task, classes


_PRIORITY = ("test", "val", "w2s_train", "train", "weak_train")


def _resolve_splits(
    values: list[str], ids: list[str], column: str, what: str
) -> tuple[tuple[str, ...], np.ndarray]:
    """Split names per row (aliases resolved) and the rows to drop so that no id is in two splits
    (the copy in the split earliest in :data:`_PRIORITY` is kept: test before training)."""
    names: list[str] = []
    for v in values:
        key = v.strip().lower()
        if key not in SPLIT_ALIASES:
            accepted = ", ".join(sorted(SPLIT_ALIASES))
            raise W2SGError(f"{what}: the split column {column!r} holds {v!r}; use {accepted}")
        names.append(SPLIT_ALIASES[key])
    best: dict[str, int] = {}
    for i, name in zip(ids, names, strict=True):
        rank = _PRIORITY.index(name)
        best[i] = min(best.get(i, rank), rank)
    dropped = np.array(
        [r for r, (i, name) in enumerate(zip(ids, names, strict=True))
         if _PRIORITY.index(name) != best[i]], dtype=int,
    )  # fmt: skip
    return tuple(names), dropped


@dataclass
class TextLinesCheck:
    """What :func:`check_text_lines` found in a one-text-per-line file."""

    n_lines: int
    blank: list[int] = field(default_factory=list)


def check_text_lines(path: str | Path, what: str = "--texts") -> TextLinesCheck:
    """Count the lines of a ``--texts`` file and find its blank lines (1-based line numbers)."""
    from w2sg.data.io import read_text

    lines = read_text(path, what).splitlines()
    return TextLinesCheck(len(lines), [i + 1 for i, line in enumerate(lines) if not line.strip()])
