"""Hugging Face hub datasets: the field's datasets by name, and
``hf:owner/name[:config][@revision]``.

A hub dataset is read from a folder in *hub layout*: Parquet files named
``<split>-NNNNN-of-NNNNN.parquet`` (as ``datasets`` writes them) under ``data/`` or ``<config>/``,
or ``<config>/<split>/NNNN.parquet`` (the hub's Parquet conversion). The folder of ``owner/name``
is ``<hub root>/owner/name`` (hub root: ``$W2SG_HUB_DIR``, else ``<w2sg cache>/hub``). When it is
missing, the dataset is downloaded once through ``datasets.load_dataset`` at its pinned revision
and written there in hub layout, with ``w2sg-source.json`` recording the hub id, config and the
resolved commit; later loads read the Parquet files and never touch the network. A copy made
elsewhere (``huggingface-cli download --repo-type dataset owner/name --local-dir DIR``) can be put
there by hand. Offline (``HF_HUB_OFFLINE=1``, or the hub unreachable within
:data:`PROBE_SECONDS`), a missing dataset fails at once with one line naming the hub id, the folder
and how to use a local copy.

The registered datasets (:data:`HUB_REGISTRY`) are declarative entries (hub id, config, splits,
reference) plus one small format function each, after openai/weak-to-strong
(``weak_to_strong/datasets.py``) and EleutherAI/w2s (``w2s/ds_registry.py``): a function turns one
source row into ``(text, label)`` with a seeded :class:`random.Random` (several of them show the
correct answer or a random distractor with probability ½), and every split is balanced to 50/50 by
undersampling the majority class, as EleutherAI/w2s does. docs/datasets.md shows each template
beside the reference's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import numpy as np

from w2sg.data.datasets import Dataset, truncate_words
from w2sg.data.splits import text_ids
from w2sg.errors import W2SGError

PROBE_SECONDS = 3.0
SOURCE_FILE = "w2sg-source.json"

Row = Mapping[str, Any]
Formatter = Callable[[Row, random.Random], "tuple[str, int] | None"]


@dataclass(frozen=True)
class HubDataset:
    """A registered hub dataset.

    ``splits`` maps w2sg's ``train``/``test`` to the hub's split names. ``n_test``: pool every hub
    split and draw a fixed test pool of that size (seed 0; EleutherAI/w2s's SciQ). ``revision``
    pins the commit (``None``: the commit of ``main`` at the first download, recorded in
    ``w2sg-source.json`` and in every result).
    """

    name: str
    hub: str
    format: Formatter
    reference: str
    config: str | None = None
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    revision: str | None = None
    n_test: int | None = None
    classes: tuple[str, str] = ("false", "true")
    description: str = ""


# --------------------------------------------------------------------------------------------
# Format functions: one source row → (text, label), or None to leave the row out.


def _answer_or_distractor(correct: str, wrong: list[str], rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    return (correct, 1) if label else (rng.choice(wrong), 0)


def fmt_amazon_polarity(ex: Row, rng: random.Random) -> tuple[str, int]:
    return f"{ex['title']} {ex['content']}", int(ex["label"])


def fmt_sciq(ex: Row, rng: random.Random) -> tuple[str, int]:
    wrong = [ex["distractor1"], ex["distractor2"], ex["distractor3"]]
    answer, label = _answer_or_distractor(ex["correct_answer"], wrong, rng)
    return f"Q: {ex['question']} A: {answer}", label


def fmt_sciq_with_support(ex: Row, rng: random.Random) -> tuple[str, int]:
    wrong = [ex["distractor1"], ex["distractor2"], ex["distractor3"]]
    answer, label = _answer_or_distractor(ex["correct_answer"], wrong, rng)
    text = (
        f'Name: Bob\n\nPassage 1:\n{ex["support"]}\n\nQ1: "{ex["question"]}" Is the answer '
        f'"{answer}"?'
    )
    return text, label


_TURN = "\n\nAssistant:"


def split_hh(chosen: str, rejected: str) -> tuple[str, str, str]:
    """``(prompt, chosen reply, rejected reply)``: the two dialogues share everything up to the
    last ``"\\n\\nAssistant:"`` of their common prefix; what follows is each reply."""
    n = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        n += 1
    cut = chosen.rfind(_TURN, 0, n + len(_TURN))
    cut = cut + len(_TURN) if cut >= 0 else n
    return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()


def fmt_anthropic_hh(ex: Row, rng: random.Random) -> tuple[str, int] | None:
    """Pairwise: the dialogue, both replies in a random order; label = reply A was chosen."""
    prompt, chosen, rejected = split_hh(ex["chosen"], ex["rejected"])
    if chosen == rejected:
        return None
    label = int(rng.random() < 0.5)
    a, b = (chosen, rejected) if label else (rejected, chosen)
    text = (
        f"{prompt.strip()}\n\nResponse A: {a}\n\nResponse B: {b}\n\n"
        "Q: Is response A better than response B?"
    )
    return text, label


def fmt_anthropic_hh_single(ex: Row, rng: random.Random) -> tuple[str, int]:
    """The reference form: one dialogue, the chosen or the rejected one (models sit at chance)."""
    label = int(rng.random() < 0.5)
    return (ex["chosen"] if label else ex["rejected"]), label


def fmt_cosmos_qa(ex: Row, rng: random.Random) -> tuple[str, int]:
    true_answer = ex[f"answer{ex['label']}"]
    # "None of the above" as the true answer is always shown as a wrong pair, as the reference.
    label = 0 if "None of the above choices ." in true_answer else int(rng.random() < 0.5)
    if label:
        answer = true_answer
    else:
        answer = rng.choice([ex[f"answer{i}"] for i in range(4) if ex[f"answer{i}"] != true_answer])
    return f"Context: {ex['context']}\nQuestion: {ex['question']}\nAnswer: {answer}", label


def fmt_boolq(ex: Row, rng: random.Random) -> tuple[str, int]:
    return f"Passage: {ex['passage']}\nQuestion: {ex['question']}", int(ex["answer"])


def fmt_anli(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = (
        f"Premise: {ex['premise']}\nHypothesis: {ex['hypothesis']}\n\n"
        "Does the premise entail the hypothesis?"
    )
    return text, int(ex["label"] == 0)


def fmt_sentence(ex: Row, rng: random.Random) -> tuple[str, int]:
    return str(ex["sentence"]), int(ex["label"])


def fmt_text(ex: Row, rng: random.Random) -> tuple[str, int]:
    return str(ex["text"]), int(ex["label"])


def fmt_dream(ex: Row, rng: random.Random) -> tuple[str, int]:
    wrong = [c for c in ex["choice"] if c != ex["answer"]]
    answer, label = _answer_or_distractor(ex["answer"], wrong, rng)
    dialogue = "\n".join(ex["dialogue"])
    return f"{dialogue}\n\nQ: {ex['question']} A: {answer}", label


def fmt_ethics_deontology(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = (
        f"Q: Is the following a morally valid excuse?\n\n{ex['scenario']}\n\n{ex['excuse']}\n\nA:"
    )
    return text, int(ex["label"])


def fmt_ethics_justice(ex: Row, rng: random.Random) -> tuple[str, int]:
    return f"Q: Does this statement exemplify justice?\n\n{ex['scenario']}\n\nA:", int(ex["label"])


def fmt_ethics_virtue(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = f"Q: Does this behavior match the adjective that follows?\n\n{ex['scenario']}\n\nA:"
    return text, int(ex["label"])


def fmt_ethics_utilitarianism(ex: Row, rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    choices = [ex["baseline"], ex["less_pleasant"]]
    rng.shuffle(choices)
    correct = choices.index(ex["baseline"])
    shown = correct if label else 1 - correct
    return f"Which is more pleasant?\n1) {choices[0]}\n2) {choices[1]} A: {shown + 1}", label


def fmt_mc_taco(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = f"{ex['sentence']}\n\nGiven the above, {ex['question']} Is the answer {ex['answer']}?"
    return text, int(ex["label"])


def fmt_hellaswag(ex: Row, rng: random.Random) -> tuple[str, int]:
    endings = list(ex["endings"])
    gold = int(ex["label"])
    answer, label = _answer_or_distractor(
        endings[gold], [e for i, e in enumerate(endings) if i != gold], rng
    )
    joined = "\n".join(endings)
    text = (
        f'Context:\n{ex["ctx"]}\n\nContinuations:\n\n{joined}\n\nQ: Is "{answer}" the best '
        "continuation?"
    )
    return text, label


def fmt_multirc(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = f'Passage:\n\n{ex["paragraph"]}\n\nQ: "{ex["question"]}" Is the answer "{ex["answer"]}"?'
    return text, int(ex["label"])


def fmt_openbookqa(ex: Row, rng: random.Random) -> tuple[str, int]:
    letters = list(ex["choices"]["label"])
    texts = list(ex["choices"]["text"])
    gold = letters.index(ex["answerKey"])
    # As the reference: the correct case shows the answer's letter, the wrong case a distractor's
    # text (a known quirk of EleutherAI/w2s, kept so that the numbers compare).
    answer, label = _answer_or_distractor(
        ex["answerKey"], [t for i, t in enumerate(texts) if i != gold], rng
    )
    joined = "\n".join(f"{a}) {t}" for a, t in zip(letters, texts, strict=True))
    return f"Q: {ex['question_stem']}\n\nChoices:\n{joined}\n\nAnswer: {answer}", label


def fmt_paws(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = (
        f"Sent 1: {ex['sentence1']}\nSent 2: {ex['sentence2']}\n\n"
        "Q: Are these sentences semantically equivalent?"
    )
    return text, int(ex["label"])


def fmt_piqa(ex: Row, rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    right, wrong = (ex["sol2"], ex["sol1"]) if int(ex["label"]) else (ex["sol1"], ex["sol2"])
    return f"Q: {ex['goal']} A: {right if label else wrong}", label


def fmt_quail(ex: Row, rng: random.Random) -> tuple[str, int]:
    answers = list(ex["answers"])
    gold = int(ex["correct_answer_id"])
    answer, label = _answer_or_distractor(
        answers[gold], [a for i, a in enumerate(answers) if i != gold], rng
    )
    text = f'Passage:\n\n{ex["context"]}\n\nQ: "{ex["question"]}" Is the answer "{answer}"?'
    return text, label


def fmt_quartz(ex: Row, rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    gold = list(ex["choices"]["label"]).index(ex["answerKey"])
    answer = ex["choices"]["text"][gold if label else 1 - gold]
    return f'Passage:\n{ex["para"]}\n\nQ: "{ex["question"]}" Is the answer "{answer}"?', label


def fmt_social_i_qa(ex: Row, rng: random.Random) -> tuple[str, int]:
    answers = [ex["answerA"], ex["answerB"], ex["answerC"]]
    gold = int(ex["label"]) - 1
    answer, label = _answer_or_distractor(
        answers[gold], [a for i, a in enumerate(answers) if i != gold], rng
    )
    text = (
        f'Context:\n{ex["context"]}\n\nQuestion: "{ex["question"]}"\n\nChoices:\n'
        f'{answers[0]}\n{answers[1]}\n{answers[2]}\n\nIs the answer "{answer}"?'
    )
    return text, label


def fmt_wic(ex: Row, rng: random.Random) -> tuple[str, int]:
    text = (
        f"Sentence 1:\n{ex['sentence1']}\n\nSentence 2:\n{ex['sentence2']}\n\n"
        f'Q: Does "{ex["word"]}" have the same meaning in the above sentences?'
    )
    return text, int(ex["label"])


# --------------------------------------------------------------------------------------------
# Registry.

_OAI = "openai/weak-to-strong, EleutherAI/w2s"
_EW = "EleutherAI/w2s"
_VAL = {"train": "train", "test": "validation"}

HUB_REGISTRY: dict[str, HubDataset] = {
    d.name: d
    for d in (
        HubDataset("amazon_polarity", "fancyzhx/amazon_polarity", fmt_amazon_polarity, _OAI,
                   classes=("negative", "positive"), description="Amazon review polarity"),
        HubDataset("sciq", "allenai/sciq", fmt_sciq, _OAI, n_test=3000,
                   revision="2c94ad3e1aafab77146f384e23536f97a4849815",
                   classes=("distractor", "correct"),
                   description="SciQ: question with its answer or a distractor"),
        HubDataset("sciq_with_support", "allenai/sciq", fmt_sciq_with_support, _EW, n_test=3000,
                   revision="2c94ad3e1aafab77146f384e23536f97a4849815",
                   classes=("distractor", "correct"),
                   description="SciQ with its support passage"),
        HubDataset("anthropic_hh", "Anthropic/hh-rlhf", fmt_anthropic_hh, _OAI,
                   classes=("B chosen", "A chosen"),
                   description="Anthropic HH, pairwise: is reply A the chosen one"),
        HubDataset("anthropic_hh_single", "Anthropic/hh-rlhf", fmt_anthropic_hh_single, _OAI,
                   classes=("rejected", "chosen"),
                   description="Anthropic HH as the references show it: one dialogue (chance)"),
        HubDataset("cosmos_qa", "allenai/cosmos_qa", fmt_cosmos_qa, _OAI, splits=_VAL,
                   classes=("wrong", "correct"), description="CosmosQA answer correctness"),
        HubDataset("boolq", "google/boolq", fmt_boolq, _OAI, splits=_VAL,
                   classes=("no", "yes"), description="BoolQ yes/no questions"),
        HubDataset("anli-r2", "facebook/anli", fmt_anli, _EW,
                   splits={"train": "train_r2", "test": "test_r2"},
                   classes=("not entailed", "entailed"), description="ANLI round 2 entailment"),
        HubDataset("cola", "nyu-mll/glue", fmt_sentence, _EW, config="cola", splits=_VAL,
                   classes=("unacceptable", "acceptable"), description="CoLA acceptability"),
        HubDataset("dream", "dataset-org/dream", fmt_dream, _EW,
                   classes=("wrong", "correct"), description="DREAM dialogue QA correctness"),
        HubDataset("ethics-deontology", "hendrycks/ethics", fmt_ethics_deontology, _EW,
                   config="deontology", description="ETHICS deontology: valid excuse"),
        HubDataset("ethics-justice", "hendrycks/ethics", fmt_ethics_justice, _EW,
                   config="justice", description="ETHICS justice"),
        HubDataset("ethics-virtue", "hendrycks/ethics", fmt_ethics_virtue, _EW,
                   config="virtue", description="ETHICS virtue"),
        HubDataset("ethics-utilitarianism", "hendrycks/ethics", fmt_ethics_utilitarianism, _EW,
                   config="utilitarianism", description="ETHICS utilitarianism: more pleasant"),
        HubDataset("mc_taco", "CogComp/mc_taco", fmt_mc_taco, _EW,
                   splits={"train": "test", "test": "validation"},
                   description="MC-TACO temporal QA (test split trains, as the reference)"),
        HubDataset("hellaswag", "Rowan/hellaswag", fmt_hellaswag, _EW, splits=_VAL,
                   description="HellaSwag: is this the best continuation"),
        HubDataset("multirc", "aps/super_glue", fmt_multirc, _EW, config="multirc", splits=_VAL,
                   description="MultiRC answer correctness"),
        HubDataset("openbookqa", "allenai/openbookqa", fmt_openbookqa, _EW, config="main",
                   description="OpenBookQA answer correctness"),
        HubDataset("paws", "google-research-datasets/paws", fmt_paws, _EW, config="labeled_final",
                   revision="161ece9501cf0a11f3e48bd356eaa82de46d6a09",
                   description="PAWS paraphrase identification"),
        HubDataset("piqa", "ybisk/piqa", fmt_piqa, _EW, splits=_VAL,
                   description="PIQA: is this solution right"),
        HubDataset("quail", "textmachinelab/quail", fmt_quail, _EW, splits=_VAL,
                   description="QuAIL reading comprehension correctness"),
        HubDataset("quartz", "allenai/quartz", fmt_quartz, _EW,
                   description="QuaRTz qualitative relations correctness"),
        HubDataset("social_i_qa", "allenai/social_i_qa", fmt_social_i_qa, _EW, splits=_VAL,
                   description="Social IQa answer correctness"),
        HubDataset("sst2", "stanfordnlp/sst2", fmt_sentence, _EW, splits=_VAL,
                   classes=("negative", "positive"), description="SST-2 sentiment"),
        HubDataset("wic", "aps/super_glue", fmt_wic, _EW, config="wic", splits=_VAL,
                   description="WiC: same meaning of a word in two sentences"),
        HubDataset("twitter-sentiment", "EleutherAI/twitter-sentiment", fmt_text, _EW,
                   classes=("negative", "positive"), description="Twitter sentiment"),
    )
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Where hub data lives, and getting it there.


def hub_root() -> Path:
    """``$W2SG_HUB_DIR``, else ``<w2sg cache>/hub``."""
    env = os.environ.get("W2SG_HUB_DIR")
    if env:
        return Path(env).expanduser()
    from w2sg.represent.cache import cache_dir

    return cache_dir() / "hub"


def hub_folder(hub: str) -> Path:
    """The hub-layout folder of ``owner/name`` (an absolute or ``./`` path is used as it is)."""
    if _is_local(hub):
        return Path(hub).expanduser()
    return hub_root() / hub


def _is_local(hub: str) -> bool:
    return hub.startswith(("/", "./", "../", "~")) or os.path.isdir(hub)


_SHARD = re.compile(r"^(?P<split>.+?)(-\d{5}-of-\d{5})?\.parquet$")


def find_split_files(folder: Path, config: str | None) -> dict[str, list[Path]]:
    """Parquet files of each split in a hub-layout ``folder`` (``config``'s subfolder if present).

    Accepted: ``<data|config>/<split>-00000-of-00001.parquet`` (as ``datasets`` writes them),
    ``<config>/<split>/0000.parquet`` (the hub's Parquet conversion) and ``<split>.parquet``.
    """
    base = folder
    if config and (folder / config).is_dir():
        base = folder / config
    elif (folder / "data").is_dir():
        base = folder / "data"
    found: dict[str, list[Path]] = {}
    for path in sorted(base.rglob("*.parquet")):
        rel = path.relative_to(base)
        if len(rel.parts) > 1 and re.fullmatch(r"\d+", path.stem):
            split = rel.parts[-2]  # <split>/0000.parquet
        else:
            match = _SHARD.match(path.name)
            if match is None:
                continue
            split = match.group("split")
        found.setdefault(split, []).append(path)
    return found


def probe_hub(
    hub: str, revision: str | None = None, timeout: float = PROBE_SECONDS
) -> tuple[str | None, str | None]:
    """``(commit, None)`` when the hub answers for dataset ``hub`` at ``revision`` (default
    ``main``), else ``(None, why)``. ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` count as offline
    without asking; otherwise one request to ``$HF_ENDPOINT/api/datasets/<hub>/revision/<rev>``
    runs in a daemon thread and gets ``timeout`` seconds in all, name lookup included, so that
    no network, a firewall that drops packets or a silent proxy all fail fast."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return None, f"{var}={os.environ[var]}"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    # the revision is one path segment: refs/convert/parquet travels as refs%2Fconvert%2Fparquet
    url = f"{endpoint}/api/datasets/{hub}/revision/{quote(revision or 'main', safe='')}"
    host = urlparse(endpoint).hostname or endpoint
    result: list[tuple[str | None, str | None]] = []

    def ask() -> None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                sha = json.loads(response.read().decode("utf-8")).get("sha")
            result.append((str(sha) if sha else revision or "main", None))
        except urllib.error.HTTPError as exc:
            result.append((None, f"{host} answered HTTP {exc.code} for {hub}"))
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            result.append((None, f"{host} unreachable: {reason}"))

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return None, f"{host} did not answer within {timeout:g} s"
    return result[0]


def parse_hf_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``owner/name[:config][@revision]`` → ``(hub id, config, revision)``; a local folder is
    taken whole (no config, no revision). The revision is a commit (full or a prefix of 7 or
    more hex digits), a tag or a branch, as the hub names them."""
    if _is_local(ref):
        return ref, None, None
    base, at, revision = ref.partition("@")
    if at and not revision.strip():
        raise W2SGError(f"hf:{ref} ends in @ with no revision; give a commit, tag or branch")
    hub, _, config = base.partition(":")
    return hub, config or None, revision.strip() or None


def _at_revision(recorded: Any, requested: Any, revision: str) -> bool:
    """Whether a copy whose ``w2sg-source.json`` records commit ``recorded`` (and the revision
    ``requested`` at its download) is the one pinned by ``revision``."""
    if requested == revision:
        return True
    commit = str(recorded or "").lower()
    return bool(re.fullmatch(r"[0-9a-f]{7,40}", revision.lower())) and commit.startswith(
        revision.lower()
    )


def _missing_message(
    hub: str, config: str | None, folder: Path, why: str, revision: str | None = None
) -> str:
    ref = hub + (f":{config}" if config else "") + (f"@{revision}" if revision else "")
    return (
        f"hub dataset {ref} is not in {folder} and cannot be downloaded ({why}); run once with "
        f"network, or copy it there in hub layout (huggingface-cli download --repo-type dataset "
        f"{hub} --local-dir {folder}), or export it to a file and use --data FILE --text-column "
        "COL --label-column COL"
    )


def fetch(
    hub: str, config: str | None = None, revision: str | None = None, *, strict: bool = False
) -> dict[str, Any]:
    """The splits of hub dataset ``hub`` as pandas DataFrames, and where they came from.

    Returns ``{"frames": {split: DataFrame}, "source": {...}}``. Reads the hub-layout folder
    :func:`hub_folder`; downloads into it first, at ``revision`` (default ``main``), when it
    holds nothing (see the module doc). A copy recorded at another revision than ``revision``
    is used with a note, or refused with ``strict`` (a revision the user pinned with ``@``).
    """
    folder = hub_folder(hub)
    files = find_split_files(folder, config) if folder.is_dir() else {}
    if not files and _is_local(hub):
        raise W2SGError(f"{folder} holds no Parquet files in hub layout (<split>-*.parquet)")
    if not files:
        sha, why = probe_hub(hub, revision)
        if sha is None:
            raise W2SGError(_missing_message(hub, config, folder, str(why), revision))
        _download(hub, config, sha, folder, requested=revision)
        files = find_split_files(folder, config)
    source: dict[str, Any] = {"hub": hub, "config": config, "folder": str(folder)}
    recorded = folder / SOURCE_FILE
    if recorded.is_file():
        info = json.loads(recorded.read_text(encoding="utf-8"))
        source["revision"] = info.get("revision")
        if revision and not _at_revision(info.get("revision"), info.get("requested"), revision):
            if strict:
                raise W2SGError(
                    f"hub dataset {hub} in {folder} is at revision {info.get('revision')}, not "
                    f"the pinned {revision}; move that folder away (or set W2SG_HUB_DIR to "
                    "another folder) to download the pinned one"
                )
            source["note"] = (
                f"the copy is at revision {info['revision']}, not the pinned {revision}"
            )
    else:
        source["revision"] = "local copy (revision not recorded)"
        if revision:
            source["note"] = f"pinned to {revision}, but the copy does not record its revision"
    if revision:
        source["pinned"] = revision
    import pandas as pd  # only now: the offline failure above stays fast

    frames = {
        split: pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
        for split, paths in files.items()
    }
    return {"frames": frames, "source": source}


def _download(
    hub: str, config: str | None, sha: str, folder: Path, *, requested: str | None = None
) -> None:
    """``datasets.load_dataset`` at commit ``sha``, written to ``folder`` in hub layout, with
    ``w2sg-source.json`` last (a copy exists once it does; it records the commit and the
    ``requested`` revision it resolved, a tag or branch)."""
    try:
        import datasets
    except ImportError as exc:
        raise W2SGError(
            f"downloading {hub} needs the hub extra ({exc.name} is missing): pip install -e .[hub]"
        ) from None
    from w2sg import atomic

    start = time.perf_counter()
    try:
        loaded = datasets.load_dataset(
            hub, config, revision=sha, cache_dir=str(hub_root() / ".hf-cache")
        )
    except Exception as exc:  # the hub's errors vary by version; one line names the dataset
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise W2SGError(f"downloading hub dataset {hub} failed: {first}") from None
    sub = folder / (config or "data")
    sub.mkdir(parents=True, exist_ok=True)
    for split, ds in loaded.items():
        target = sub / f"{split}-00000-of-00001.parquet"
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        ds.to_parquet(str(tmp))
        os.replace(tmp, target)
    atomic.write_text(
        folder / SOURCE_FILE,
        json.dumps(
            {"hub": hub, "config": config, "revision": sha, "requested": requested,
             "downloaded_in_s": round(time.perf_counter() - start, 1)},
            indent=1,
        ),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Loading.


def balance(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices (sorted) that undersample the majority class of binary ``labels`` to the minority
    count, seeded: the 50/50 balancing of EleutherAI/w2s."""
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) != 2:
        return np.arange(len(labels))
    minority = int(counts.min())
    rng = np.random.default_rng(seed)
    keep = [
        np.flatnonzero(labels == c)
        if count == minority
        else np.sort(rng.choice(np.flatnonzero(labels == c), size=minority, replace=False))
        for c, count in zip(classes, counts, strict=True)
    ]
    return np.sort(np.concatenate(keep))


def format_rows(spec: HubDataset, frame: Any, seed: int = 0) -> tuple[list[str], list[int], int]:
    """Apply ``spec.format`` to every row with one ``random.Random(seed)`` in row order; returns
    ``(texts, labels, n_left_out)`` (rows the format leaves out, or whose text is empty)."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    left = 0
    for row in frame.to_dict(orient="records"):
        out = spec.format(row, rng)
        if out is None or not out[0].strip():
            left += 1
            continue
        texts.append(out[0])
        labels.append(int(out[1]))
    return texts, labels, left


def load_hub_dataset(
    name: str, limit: int | None = None, seed: int = 0, *, max_words: int | None = None
) -> Dataset:
    """Registered hub dataset ``name`` in the reference format, balanced, with its own splits.

    Per w2sg split (``train``, ``test``): the hub split's rows are formatted
    (:func:`format_rows`, seed 0, so every run sees the same texts), exact duplicate texts are
    left out (first kept; a text in both splits stays in test), and the split is balanced to
    50/50 (:func:`balance`). ``limit`` then keeps a seeded random subset of the rows.
    """
    spec = HUB_REGISTRY[name]
    got = fetch(spec.hub, spec.config, spec.revision)
    import pandas as pd

    frames: dict[str, Any] = got["frames"]
    notes: list[str] = []
    if spec.n_test is not None:
        pool = pd.concat([frames[s] for s in sorted(frames)], ignore_index=True)
        order = np.random.default_rng(0).permutation(len(pool))
        n_test = min(spec.n_test, len(pool) // 2)
        parts = {"test": pool.iloc[order[:n_test]], "train": pool.iloc[order[n_test:]]}
        notes.append(f"all hub splits pooled; a fixed test pool of {n_test} (seed 0)")
    else:
        missing = [h for h in spec.splits.values() if h not in frames]
        if missing:
            have = ", ".join(sorted(frames)) or "none"
            raise W2SGError(
                f"{spec.hub} copy in {got['source']['folder']} has no split {missing[0]!r} "
                f"(it has {have}); replace it with a full copy"
            )
        parts = {ours: frames[theirs] for ours, theirs in spec.splits.items()}
    inputs: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    seen_test: set[str] = set()
    for split in ("test", "train"):
        texts, ys, left = format_rows(spec, parts[split])
        if max_words is not None:
            texts, _ = truncate_words(texts, max_words)
        keep_t: list[str] = []
        keep_y: list[int] = []
        seen: set[str] = set()
        for text, y in zip(texts, ys, strict=True):
            if text in seen or (split == "train" and text in seen_test):
                left += 1
                continue
            seen.add(text)
            keep_t.append(text)
            keep_y.append(y)
        if split == "test":
            seen_test = seen
        idx = balance(np.asarray(keep_y), seed=0)
        notes.append(
            f"{split}: {len(parts[split])} rows, {left} left out (empty or duplicate), "
            f"{len(keep_y) - len(idx)} dropped to balance 50/50 → {len(idx)}"
        )
        inputs += [keep_t[i] for i in idx]
        labels += [keep_y[i] for i in idx]
        splits += [split] * len(idx)
    rows = np.arange(len(inputs))
    if limit is not None and limit < len(inputs):
        rows = np.sort(np.random.default_rng(seed).choice(len(inputs), size=limit, replace=False))
        notes.append(f"kept a seeded random subset of {limit} examples (seed {seed})")
    kept = [inputs[i] for i in rows]
    provenance = {
        **got["source"],
        "reference": spec.reference,
        "label_mapping": {c: i for i, c in enumerate(spec.classes)},
    }
    return Dataset(
        name=name,
        ids=[str(i) for i in text_ids(kept)],
        inputs=kept,
        labels=np.asarray([labels[i] for i in rows], dtype=np.int64),
        task="classification",
        kind="text",
        classes=spec.classes,
        notes=tuple(notes),
        splits=tuple(splits[i] for i in rows),
        provenance=provenance,
    )


def load_hf(
    ref: str,
    columns: Any,
    limit: int | None = None,
    seed: int = 0,
    *,
    max_words: int | None = None,
) -> Dataset:
    """Any hub dataset ``owner/name[:config][@revision]`` (or a local hub-layout folder) with
    the column roles of ``columns`` (:class:`~w2sg.data.files.Columns`), as a data file.
    ``@revision`` pins a commit, tag or branch (:func:`fetch` with ``strict``).

    The hub's splits become the split column (``train``, ``test``, ``validation``…; others such
    as ``unsupervised`` are left out, with a note) unless ``columns.split`` names a column; a
    dataset with one split has its splits drawn.
    """
    from w2sg.data.files import SPLIT_ALIASES, frame_to_dataset

    if columns is None:
        raise W2SGError(f"hf:{ref} needs the column options: --text-column COL --label-column COL")
    hub, config, revision = parse_hf_ref(ref)
    got = fetch(hub, config, revision, strict=True)
    import pandas as pd

    frames: dict[str, Any] = got["frames"]
    notes: list[str] = []
    if columns.split is None and len(frames) > 1:
        usable = {s: f for s, f in frames.items() if s.lower() in SPLIT_ALIASES}
        left = sorted(set(frames) - set(usable))
        if left:
            notes.append(f"left out the hub splits {', '.join(left)} (not train/test/validation)")
        frame = pd.concat(
            [f.assign(**{"__split__": s.lower()}) for s, f in sorted(usable.items())],
            ignore_index=True,
        )
        columns = dataclasses.replace(columns, split="__split__")
    else:
        frame = pd.concat([frames[s] for s in sorted(frames)], ignore_index=True)
    ds = frame_to_dataset(
        frame, columns, name=f"hf:{ref}", source=got["source"], limit=limit, seed=seed,
        max_words=max_words, what=f"hf:{ref}",
    )  # fmt: skip
    if notes:
        ds = dataclasses.replace(ds, notes=tuple(notes) + ds.notes)
    return ds
