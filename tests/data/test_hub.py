"""Hub datasets from local fixtures in hub layout: formats, balancing, splits, failing offline."""

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from w2sg.data import hub
from w2sg.data.datasets import list_datasets, load_dataset
from w2sg.data.files import Columns
from w2sg.errors import W2SGError

datasets = pytest.importorskip("datasets", reason="the hub extra (datasets) is not installed")


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("W2SG_HUB_DIR", str(tmp_path / "hub"))
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))


def write_hub(root: Path, sub: str, splits: dict[str, list[dict]]) -> Path:
    """Parquet files as ``datasets`` writes them: ``<sub>/<split>-00000-of-00001.parquet``."""
    for split, rows in splits.items():
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    return root


# One hand-made source row per format, and what its text must hold.
ROWS = {
    "amazon_polarity": {"title": "Great", "content": "Works well.", "label": 1},
    "sciq": {"question": "What is H2O?", "correct_answer": "water", "distractor1": "salt",
             "distractor2": "iron", "distractor3": "gold", "support": "Water is H2O."},
    "anthropic_hh": {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello, how can I help?",
                     "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away."},
    "cosmos_qa": {"context": "It rained.", "question": "Why wet?", "answer0": "rain",
                  "answer1": "sun", "answer2": "snow", "answer3": "wind", "label": 0},
    "boolq": {"passage": "Cats are mammals.", "question": "are cats mammals", "answer": True},
    "anli-r2": {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": 0},
    "cola": {"sentence": "The book was read.", "label": 1},
    "dream": {"dialogue": ["M: Tea?", "W: Yes."], "question": "What does W want?",
              "answer": "tea", "choice": ["tea", "coffee", "water"]},
    "ethics-deontology": {"scenario": "I must feed the dog.", "excuse": "It ate.", "label": 1},
    "ethics-justice": {"scenario": "I paid him since he worked.", "label": 1},
    "ethics-virtue": {"scenario": "She gave money [SEP] generous", "label": 1},
    "ethics-utilitarianism": {"baseline": "I won a prize.", "less_pleasant": "I lost a sock."},
    "mc_taco": {"sentence": "He slept.", "question": "How long?", "answer": "8 hours",
                "label": 1},
    "hellaswag": {"ctx": "She opens the door", "endings": ["and walks in.", "and flies.",
                  "and melts.", "and sings opera."], "label": "0"},
    "multirc": {"paragraph": "Bob ate.", "question": "Who ate?", "answer": "Bob", "label": 1},
    "openbookqa": {"question_stem": "Sun is a?", "answerKey": "A",
                   "choices": {"label": ["A", "B"], "text": ["star", "planet"]}},
    "paws": {"sentence1": "A is B.", "sentence2": "B is A.", "label": 1},
    "piqa": {"goal": "Open a jar", "sol1": "twist the lid", "sol2": "eat the jar", "label": 0},
    "quail": {"context": "Ann ran.", "question": "Who ran?", "answers": ["Ann", "Bo", "Cy", "Di"],
              "correct_answer_id": 0},
    "quartz": {"para": "More heat, more melt.", "question": "Heat up: melt?", "answerKey": "A",
               "choices": {"label": ["A", "B"], "text": ["more", "less"]}},
    "social_i_qa": {"context": "Kai helped.", "question": "How is Kai?", "answerA": "kind",
                    "answerB": "mean", "answerC": "lazy", "label": "1"},
    "sst2": {"sentence": "a gem of a film", "label": 1},
    "wic": {"sentence1": "The bank of the river.", "sentence2": "The bank lent money.",
            "word": "bank", "label": 0},
    "twitter-sentiment": {"text": "love this!", "label": 1},
}  # fmt: skip
ROWS["sciq_with_support"] = ROWS["sciq"]
ROWS["anthropic_hh_single"] = ROWS["anthropic_hh"]


def test_every_registered_dataset_has_a_format_test_row():
    assert set(ROWS) == set(hub.HUB_REGISTRY)
    assert len(hub.HUB_REGISTRY) == 26  # EleutherAI/w2s's 25 (with OpenAI's 5) + HH single form


@pytest.mark.parametrize("name", sorted(ROWS))
def test_format_of_each_dataset_on_a_hand_made_row(name):
    spec = hub.HUB_REGISTRY[name]
    labels_seen = set()
    for seed in range(40):
        out = spec.format(ROWS[name], random.Random(seed))
        assert out is not None
        text, label = out
        assert label in (0, 1) and text.strip()
        labels_seen.add(label)
    assert labels_seen  # deterministic per seed:
    assert spec.format(ROWS[name], random.Random(3)) == spec.format(ROWS[name], random.Random(3))


def _fmt(name, seed=0):
    return hub.HUB_REGISTRY[name].format(ROWS[name], random.Random(seed))


def test_formats_match_the_reference_templates():
    assert _fmt("amazon_polarity") == ("Great Works well.", 1)
    assert _fmt("boolq") == ("Passage: Cats are mammals.\nQuestion: are cats mammals", 1)
    assert _fmt("anli-r2")[1] == 1 and _fmt("anli-r2")[0].endswith(
        "Does the premise entail the hypothesis?"
    )
    assert _fmt("cola") == ("The book was read.", 1)
    assert _fmt("ethics-justice") == (
        "Q: Does this statement exemplify justice?\n\nI paid him since he worked.\n\nA:",
        1,
    )
    assert _fmt("mc_taco") == ("He slept.\n\nGiven the above, How long? Is the answer 8 hours?", 1)
    assert _fmt("multirc") == ('Passage:\n\nBob ate.\n\nQ: "Who ate?" Is the answer "Bob"?', 1)
    assert _fmt("wic")[0].endswith('Q: Does "bank" have the same meaning in the above sentences?')
    for seed in range(30):  # the label says whether the shown answer is the correct one
        text, label = _fmt("sciq", seed)
        assert text.startswith("Q: What is H2O? A: ")
        assert (text.endswith("A: water")) == bool(label)
        text, label = _fmt("piqa", seed)
        assert text.endswith("twist the lid") == bool(label)
        text, label = _fmt("quail", seed)
        assert text.endswith('Is the answer "Ann"?') == bool(label)
        text, label = _fmt("social_i_qa", seed)
        assert text.endswith('Is the answer "kind"?') == bool(label)
        text, label = _fmt("hellaswag", seed)
        assert ('Q: Is "and walks in." the best' in text) == bool(label)
        text, label = _fmt("cosmos_qa", seed)
        assert text.endswith("Answer: rain") == bool(label)
        text, label = _fmt("ethics-utilitarianism", seed)
        first = text.split("\n1) ")[1].split("\n")[0]
        shown = int(text[-1])
        assert (shown == (1 if first == "I won a prize." else 2)) == bool(label)


def test_anthropic_hh_pairwise_shows_both_replies_and_labels_which_was_chosen():
    prompt, chosen, rejected = hub.split_hh(ROWS["anthropic_hh"]["chosen"],
                                            ROWS["anthropic_hh"]["rejected"])  # fmt: skip
    assert prompt == "\n\nHuman: Hi?\n\nAssistant:"
    assert (chosen, rejected) == ("Hello, how can I help?", "Go away.")
    for seed in range(20):
        text, label = _fmt("anthropic_hh", seed)
        assert text.startswith("Human: Hi?\n\nAssistant:") and "Go away." in text
        assert ("Response A: Hello, how can I help?" in text) == bool(label)
        assert text.endswith("Q: Is response A better than response B?")
    text, label = _fmt("anthropic_hh_single", 0)
    assert text in (ROWS["anthropic_hh"]["chosen"], ROWS["anthropic_hh"]["rejected"])


def test_balance_undersamples_the_majority_to_the_minority_count():
    y = np.array([1] * 30 + [0] * 12)
    idx = hub.balance(y, seed=0)
    assert np.bincount(y[idx]).tolist() == [12, 12]
    assert set(np.flatnonzero(y == 0)) <= set(idx.tolist())  # the minority is kept whole
    assert np.array_equal(idx, hub.balance(y, seed=0)) and np.all(np.diff(idx) > 0)


def _boolq_rows(n, offset=0):
    return [
        {"passage": f"passage {i}", "question": f"q {i}?", "answer": bool(i % 3 == 0)}
        for i in range(offset, offset + n)
    ]


def test_a_registered_dataset_loads_from_a_hub_layout_folder(tmp_path):
    write_hub(tmp_path / "hub" / "google" / "boolq", "data",
              {"train": _boolq_rows(60), "validation": _boolq_rows(30, 1000)})  # fmt: skip
    ds = load_dataset("boolq")
    assert ds.task == "classification" and ds.classes == ("no", "yes")
    n_train, n_test = ds.splits.count("train"), ds.splits.count("test")
    assert (n_train, n_test) == (40, 20)  # 60 rows, 20 yes → 20 + 20; 30 rows, 10 yes → 10 + 10
    y = ds.labels[np.array(ds.splits) == "train"]
    assert y.sum() * 2 == len(y)  # balanced 50/50
    assert ds.inputs[0].startswith("Passage: passage 10") or "Passage: " in ds.inputs[0]
    assert ds.provenance["hub"] == "google/boolq"
    assert ds.provenance["revision"] == "local copy (revision not recorded)"
    assert any("dropped to balance" in n for n in ds.notes)
    small = load_dataset("boolq", limit=10, seed=1)
    assert len(small) == 10 and set(small.inputs) <= set(ds.inputs)
    rows = {r["name"]: r for r in list_datasets()}
    assert rows["boolq"]["available"] is True and rows["sciq"]["available"] is False


def test_configs_pooled_test_sets_and_the_parquet_conversion_layout(tmp_path):
    rows = [{"scenario": f"s{i}", "label": i % 2} for i in range(20)]
    write_hub(tmp_path / "hub" / "hendrycks" / "ethics", "justice",
              {"train": rows, "test": rows[:6]})  # fmt: skip
    ds = load_dataset("ethics-justice")
    # a text in both splits stays in test only
    assert ds.splits.count("test") == 6 and ds.splits.count("train") == 14
    sciq = [dict(ROWS["sciq"], question=f"question {i}?") for i in range(40)]
    folder = tmp_path / "hub" / "allenai" / "sciq" / "default"
    for split, part in (("train", sciq[:30]), ("validation", sciq[30:])):
        (folder / split).mkdir(parents=True)
        datasets.Dataset.from_list(part).to_parquet(str(folder / split / "0000.parquet"))
    ds = load_dataset("sciq")
    assert ds.splits.count("test") + ds.splits.count("train") == len(ds) <= 40
    assert any("fixed test pool of 20" in n for n in ds.notes)


def test_missing_split_names_the_folder(tmp_path):
    write_hub(tmp_path / "hub" / "google" / "boolq", "data", {"train": _boolq_rows(10)})
    with pytest.raises(W2SGError, match="has no split 'validation'"):
        load_dataset("boolq")


def test_hf_prefix_reads_any_hub_dataset_with_the_column_options(tmp_path):
    rows = [
        {"q": f"question {i}\nwith a newline", "a": f"answer {i}", "ok": "yes" if i % 2 else "no"}
        for i in range(30)
    ]
    write_hub(tmp_path / "hub" / "someone" / "qa", "data",
              {"train": rows[:20], "test": rows[20:], "unsupervised": rows[:3]})  # fmt: skip
    cols = Columns(text=("q", "a"), label="ok", template="Q: {q} A: {a}")
    ds = load_dataset("hf:someone/qa", columns=cols)
    assert len(ds) == 30 and ds.splits.count("test") == 10 and ds.classes == ("no", "yes")
    assert "Q: question 0\nwith a newline A: answer 0" in ds.inputs
    assert any("unsupervised" in n for n in ds.notes)
    local = load_dataset(f"hf:{tmp_path / 'hub' / 'someone' / 'qa'}", columns=cols)
    assert local.inputs == ds.inputs
    with pytest.raises(W2SGError, match="needs the column options"):
        load_dataset("hf:someone/qa")


def test_offline_fails_in_one_line_naming_the_hub_id_the_folder_and_the_fix(tmp_path):
    with pytest.raises(W2SGError) as err:
        load_dataset("sciq")
    message = str(err.value)
    assert "\n" not in message and "allenai/sciq" in message and "HF_HUB_OFFLINE=1" in message
    assert str(tmp_path / "hub" / "allenai" / "sciq") in message and "--data FILE" in message


def test_a_hub_that_never_answers_fails_within_the_probe_time(monkeypatch):
    """A server that accepts the connection and never answers (a silent proxy, a black hole)."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        start = time.perf_counter()
        sha, reason = hub.probe_hub("allenai/sciq", timeout=1.0)
        assert sha is None and ("did not answer" in str(reason) or "timed out" in str(reason))
        assert time.perf_counter() - start < 2.0
        start = time.perf_counter()
        with pytest.raises(W2SGError, match=r"allenai/sciq .*\((.* did not answer|.* timed out)"):
            load_dataset("sciq")
        # the probe's own timeout bounds the wait; huggingface_hub's default (10 s per request,
        # with retries) would not: 9 s separates the two with room for a loaded machine
        assert time.perf_counter() - start < 9.0


def test_the_command_fails_offline_without_touching_the_network(tmp_path):
    """Offline, `w2sg run` on a hub dataset that is not on disk fails in one line, exit 2, without
    a single connection attempt (an audit hook turns any ``socket.connect`` into a crash, which
    would print a traceback instead of the one line). The wall time is printed, not asserted:
    speed is a benchmark's business; the 60 s timeout only catches a hang."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", W2SG_HUB_DIR=str(tmp_path / "empty"))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                         env.get("PYTHONPATH", "")])  # fmt: skip
    guard = (
        "import sys, os\n"
        "def hook(event, args):\n"
        "    if event == 'socket.connect':\n"
        "        sys.stderr.write(f'network attempt {args[1:]}\\n'); os._exit(99)\n"
        "sys.addaudithook(hook)\n"
        "from w2sg.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", guard, "run", "--dataset", "cosmos_qa", "--weak", "static-64",
         "--strong", "static-64"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert "network attempt" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("w2sg: error: hub dataset allenai/cosmos_qa")
    print(f"offline failure of `w2sg run --dataset cosmos_qa`: {elapsed:.2f} s")


def _qa_rows(n, offset=0):
    return [
        {"q": f"question {i}", "ok": "yes" if i % 2 else "no"} for i in range(offset, offset + n)
    ]


def _record_source(folder, revision, requested=None):
    info = {"hub": "someone/qa", "config": None, "revision": revision, "requested": requested}
    (folder / hub.SOURCE_FILE).write_text(json.dumps(info))


SHA_A = "0123456789abcdef0123456789abcdef01234567"
SHA_B = "fedcba9876543210fedcba9876543210fedcba98"


def test_hf_ref_syntax_with_config_and_revision(tmp_path):
    assert hub.parse_hf_ref("someone/qa") == ("someone/qa", None, None)
    assert hub.parse_hf_ref("someone/qa:cfg") == ("someone/qa", "cfg", None)
    assert hub.parse_hf_ref("someone/qa@v1.0") == ("someone/qa", None, "v1.0")
    assert hub.parse_hf_ref(f"someone/qa:cfg@{SHA_A}") == ("someone/qa", "cfg", SHA_A)
    folder = tmp_path / "with@sign"
    folder.mkdir()
    assert hub.parse_hf_ref(str(folder)) == (str(folder), None, None)  # a folder is taken whole
    with pytest.raises(W2SGError, match="no revision"):
        hub.parse_hf_ref("someone/qa@")


def test_a_pinned_revision_is_checked_against_the_recorded_copy(tmp_path):
    folder = write_hub(tmp_path / "hub" / "someone" / "qa", "data",
                       {"train": _qa_rows(20), "test": _qa_rows(8, 100)})  # fmt: skip
    _record_source(folder, SHA_A, requested="v1.0")
    cols = Columns(text=("q",), label="ok")
    for pin in (SHA_A, SHA_A[:7], "v1.0"):  # the commit, a prefix of it, the tag it resolved
        ds = load_dataset(f"hf:someone/qa@{pin}", columns=cols)
        assert ds.name == f"hf:someone/qa@{pin}" and len(ds) == 28
        assert ds.provenance["revision"] == SHA_A and ds.provenance["pinned"] == pin
        assert "note" not in ds.provenance
    for pin in (SHA_B, SHA_B[:8], "v2.0"):
        with pytest.raises(W2SGError) as err:
            load_dataset(f"hf:someone/qa@{pin}", columns=cols)
        message = str(err.value)
        assert "\n" not in message and f"at revision {SHA_A}, not the pinned {pin}" in message
        assert str(folder) in message and "W2SG_HUB_DIR" in message
    # unpinned: whatever the copy is, with its commit recorded
    assert load_dataset("hf:someone/qa", columns=cols).provenance["revision"] == SHA_A
    # a hand-made copy records no revision: used, with a note that says so
    (folder / hub.SOURCE_FILE).unlink()
    ds = load_dataset(f"hf:someone/qa@{SHA_B}", columns=cols)
    assert "does not record its revision" in ds.provenance["note"]


def test_a_pinned_revision_is_what_gets_downloaded(tmp_path, monkeypatch):
    asked, downloaded = [], []

    def probe(hub_id, revision=None, timeout=hub.PROBE_SECONDS):
        asked.append((hub_id, revision))
        return SHA_A, None

    def download(hub_id, config, sha, folder, *, requested=None):
        downloaded.append((hub_id, config, sha, requested))
        write_hub(folder, config or "data", {"train": _qa_rows(10), "test": _qa_rows(4)})
        _record_source(folder, sha, requested)

    monkeypatch.setattr(hub, "probe_hub", probe)
    monkeypatch.setattr(hub, "_download", download)
    cols = Columns(text=("q",), label="ok")
    ds = load_dataset("hf:someone/qa:cfg@v1.0", columns=cols)
    assert asked == [("someone/qa", "v1.0")]
    assert downloaded == [("someone/qa", "cfg", SHA_A, "v1.0")]
    assert ds.provenance["revision"] == SHA_A and ds.provenance["config"] == "cfg"
    load_dataset("hf:someone/qa:cfg@v1.0", columns=cols)  # read from the copy now
    assert len(asked) == len(downloaded) == 1


def test_offline_message_names_the_pinned_revision(tmp_path):
    cols = Columns(text=("q",), label="ok")
    with pytest.raises(W2SGError, match=r"hub dataset someone/qa:cfg@v1\.0 is not in"):
        load_dataset("hf:someone/qa:cfg@v1.0", columns=cols)
    with pytest.raises(W2SGError) as err:
        load_dataset("hf:someone/qa@v1.0", columns=cols)
    folder = tmp_path / "hub" / "someone" / "qa"
    assert f"hub dataset someone/qa@v1.0 is not in {folder} and" in str(err.value)


def test_probe_asks_for_the_pinned_revision_as_one_path_segment(monkeypatch):
    """The hub's API resolves a revision (a branch such as refs/convert/parquet, a tag) to its
    commit; the probe sends it URL-encoded, as huggingface_hub does."""
    import http.server
    import threading

    paths = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            paths.append(self.path)
            body = json.dumps({"sha": SHA_B}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        assert hub.probe_hub("allenai/cosmos_qa", "refs/convert/parquet") == (SHA_B, None)
        assert hub.probe_hub("allenai/cosmos_qa") == (SHA_B, None)
    finally:
        server.shutdown()
        server.server_close()
    assert paths == [
        "/api/datasets/allenai/cosmos_qa/revision/refs%2Fconvert%2Fparquet",
        "/api/datasets/allenai/cosmos_qa/revision/main",
    ]
