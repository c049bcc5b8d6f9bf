"""Ensembles, strong-to-strong rounds and weak-label cleaning as ordinary sweep rows: parsed from
the YAML, run by the sweep's runner exactly as ``w2sg run`` runs them, stored with their settings,
skipped on re-run, read by ``w2sg study`` and ``w2sg export``."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import w2sg
from w2sg.cli import main
from w2sg.config import COMBINE_RULES, RunConfig
from w2sg.errors import W2SGError
from w2sg.experiments.runner import inputs_of, member_roles, prepare
from w2sg.experiments.store import ResultStore
from w2sg.experiments.sweep import EnsembleRef, ModelRef, RunSpec, load_sweep, parse_sweep

BASE: dict[str, Any] = {
    "name": "t",
    "tasks": [
        {
            "name": "s",
            "dataset": "synthetic",
            "params": {"n": 240, "n_weak": 3, "task": "classification", "noise_dim": 40},
        }
    ],  # fmt: skip
    "weak": ["weak_1", "weak_2", "weak_3"],
    "strong": ["strong"],
    "heads": ["ridge"],
    "seeds": [0],
    "run": {"n_bootstrap": 20},
}

ENSEMBLE = {"ensemble": ["weak_1", "weak_2", "weak_3"], "combine": ["average", "metric"]}


def sweep_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def test_ensemble_entry_expands_one_weak_side_per_rule() -> None:
    weak = [*BASE["weak"], {**ENSEMBLE, "combine": list(COMBINE_RULES),
                            "combine_temperature": 0.1, "combine_labels": 30}]  # fmt: skip
    specs = parse_sweep(sweep_with(weak=weak)).expand()
    ens = [s for s in specs if s.is_ensemble]
    assert len(specs) == 3 + len(COMBINE_RULES) and len(ens) == len(COMBINE_RULES)
    by_rule = {s.config.combine: s for s in ens}
    assert set(by_rule) == set(COMBINE_RULES)
    members = ("weak_1", "weak_2", "weak_3")
    for rule, spec in by_rule.items():
        assert isinstance(spec.weak, EnsembleRef)
        assert tuple(m.label for m in spec.weak.members) == members
        # τ belongs to metric and the label count to learned_labelled; the other rules keep
        # the defaults, which are left out of their hashes
        tau = 0.1 if rule == "metric" else RunConfig.combine_temperature
        n = 30 if rule == "learned_labelled" else RunConfig.combine_labels
        assert (spec.config.combine_temperature, spec.config.combine_labels) == (tau, n)
        identity = spec.config.identity()
        assert identity["combine"] == rule
        assert ("combine_temperature" in identity) == (rule == "metric")
        assert ("combine_labels" in identity) == (rule == "learned_labelled")
        # the stored description round-trips to the same run and hash
        again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec and again.config_hash == spec.config_hash
        assert spec.description()["weak"] == {"ensemble": [ModelRef(m).to_dict() for m in members]}
    assert by_rule["metric"].weak.label == "ensemble[metric,t=0.1](weak_1+weak_2+weak_3)"
    assert by_rule["learned_labelled"].weak.label == (
        "ensemble[learned_labelled,n=30](weak_1+weak_2+weak_3)"
    )
    assert by_rule["average"].weak.label == "ensemble[average](weak_1+weak_2+weak_3)"
    assert len({s.config_hash for s in specs}) == len(specs)
    # adding ensembles leaves the single weak models' runs (and hashes) as they were
    plain = {s.config_hash for s in parse_sweep(BASE).expand()}
    assert plain == {s.config_hash for s in specs if not s.is_ensemble}
    # another τ is another run; the default rule is average
    other = parse_sweep(sweep_with(weak=[{**ENSEMBLE, "combine": "metric",
                                          "combine_temperature": 0.2}])).expand()  # fmt: skip
    assert other[0].config_hash != by_rule["metric"].config_hash
    (default,) = parse_sweep(sweep_with(weak=[{"ensemble": ["weak_1", "weak_2"]}])).expand()
    assert default.config.combine == "average"
    assert member_roles(default) == ["weak", "weak_member_1"]
    assert set(inputs_of(default)) == {"weak", "weak_member_1", "strong", "labels", "ids"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"heads": [{"head": "ridge", "combine": "metric"}]},
         "heads[0].combine: combination settings belong to an ensemble weak entry"),
        ({"run": {"combine_temperature": 0.1}},
         "run.combine_temperature: combination settings belong to an ensemble weak entry"),
        ({"weak": [{"ensemble": ["weak_1"]}]}, "weak[0].ensemble: must list at least 2"),
        ({"weak": [{"ensemble": ["weak_1", "weak_1"]}]},
         "weak[0].ensemble[1]: 'weak_1' is listed twice"),
        ({"weak": [{"ensemble": ["weak_1", "weak_2"], "combine": "median"}]},
         "weak[0].combine: unknown rule 'median'"),
        ({"weak": [{"ensemble": ["weak_1", "weak_2"], "combine_temperature": 0.1}]},
         "weak[0].combine_temperature: is τ of the metric rule"),
        ({"weak": [{"ensemble": ["weak_1", "weak_2"], "combine": "learned",
                    "combine_labels": 10}]},
         "weak[0].combine_labels: is the label count of learned_labelled"),
        ({"weak": [{"ensemble": ["weak_1", "weak_9"]}]},
         "tasks[0].weak[0].ensemble[1]: the synthetic generator has no representation 'weak_9'"),
        ({"weak": [{"ensemble": ["weak_1", "weak_2"], "wieghts": 1}]},
         "weak[0]: unknown key 'wieghts'"),
        ({"weak": ["weak_1"], "strong": [{"ensemble": ["weak_1", "weak_2"]}]},
         "strong[0]: an ensemble is a weak side; list it under weak"),
        ({"weak": [ENSEMBLE], "heads": [{"head": "softmax", "weak_train": "full"}]},
         "the members of an ensemble are probes"),
        ({"weak": [ENSEMBLE, ENSEMBLE]}, "weak[1]: 'ensemble[average](weak_1+weak_2+weak_3)' is "
         "listed twice"),
        ({"weak": [{"ensemble": ["weak_1", "weak_2"], "combine": "soft_vote"}],
          "tasks": [{"dataset": "synthetic", "params": {"n": 200, "n_weak": 3,
                                                        "task": "regression"}}]},
         "soft_vote picks a class"),
    ],
)  # fmt: skip
def test_ensemble_errors_name_the_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(W2SGError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):  # fmt: skip
        parse_sweep(sweep_with(**changes), source="s.yaml")


CONFIG = """
name: rows
tasks:
  - name: bin
    dataset: synthetic
    params: {n: 240, task: classification, n_weak: 3, noise_dim: 40}
weak:
  - weak_1
  - weak_2
  - weak_3
  - {ensemble: [weak_1, weak_2, weak_3], combine: [average, metric, learned_labelled, vote],
     combine_temperature: 0.1, combine_labels: 20}
strong: [strong]
heads:
  - ridge
  - {head: ridge, s2s_iters: 2}
  - {head: ridge, clean: knn_filter, clean_k: 5, clean_keep: 0.8}
seeds: [0]
run: {n_bootstrap: 20}
"""


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """The sweep runs here, once per module, so every test finds the store in any order."""
    folder = tmp_path_factory.mktemp("rows")
    cfg = folder / "rows.yaml"
    cfg.write_text(CONFIG)
    db = folder / "rows.db"
    args = ["sweep", str(cfg), "--store", str(db), "--json", "--workers", "1", "--no-progress"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(args)
    return cfg, db, {"args": args, "code": code, "out": printed.getvalue()}


def approx(value: Any) -> Any:
    return value if value is None else pytest.approx(value, rel=1e-6, abs=1e-9)


def _inputs(spec: RunSpec) -> dict[str, np.ndarray]:
    """The arrays of a synthetic spec's inputs, prepared as the sweep prepares them."""
    out = {}
    for role, (unit, name) in inputs_of(spec).items():
        (out[role],) = prepare(unit, [name])
    return out


def test_sweep_stores_ensemble_s2s_and_cleaning_rows(
    swept: tuple[Path, Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, db, first = swept
    args = first["args"]
    assert first["code"] == 0
    out = json.loads(first["out"])
    assert (out["total"], out["executed"], out["failed"]) == (21, 21, 0)
    with ResultStore(db, read_only=True) as store:
        rows = {r["config_hash"]: r for r in store.rows()}
    specs = {s.config_hash: s for s in load_sweep(cfg).expand()}
    assert set(rows) == set(specs)
    for h, row in rows.items():
        spec = specs[h]
        assert row["status"] == "done", row["error"]
        assert row["weak"] == spec.weak.label and row["head"] == spec.head_label
        assert row["config"] == json.loads(json.dumps(spec.to_dict()))
        if not spec.is_ensemble or spec.head_label != "ridge":
            continue
        # an ensemble row is the run of `w2sg run --weak A B C --combine RULE` on the same data
        arrays = _inputs(spec)
        members = [arrays[r] for r in member_roles(spec)]
        direct = w2sg.run(weak=members, strong=arrays["strong"], labels=arrays["labels"],
                          ids=arrays["ids"], config=spec.config).record  # fmt: skip
        ens = row["metrics"]["ensemble"]
        assert ens["rule"] == spec.config.combine == row["config"]["run"]["combine"]
        assert ens["members"] == ["weak_1", "weak_2", "weak_3"]
        # (equal up to BLAS rounding: the sweep's workers use one thread, this process several)
        assert ens["weights"] == approx(direct["ensemble"]["weights"])
        assert row["metrics"]["w2s"] == approx(direct["w2s"])
        assert row["metrics"]["weak"] == approx(direct["weak"])
        assert row["theory"]["combine"] == spec.config.combine
        if spec.config.combine == "metric":
            assert row["config"]["run"]["combine_temperature"] == 0.1
            assert ens["temperature"] == 0.1
            alpha = np.exp(-np.array(ens["member_op_norm"]) / 0.1)
            np.testing.assert_allclose(ens["weights"], alpha / alpha.sum(), rtol=1e-12)
        if spec.config.combine == "learned_labelled":
            assert ens["n_labelled"] == 20 == row["config"]["run"]["combine_labels"]
        if spec.config.combine == "vote":
            assert ens["weights"] is None
    s2s = [r for r in rows.values() if r["head"] == "ridge[s2s_iters=2]"]
    assert len(s2s) == 7
    for row in s2s:
        assert row["config"]["run"]["s2s_iters"] == 2
        assert [r["round"] for r in row["metrics"]["rounds"]] == [1, 2]
    clean = [r for r in rows.values() if r["head"].startswith("ridge[clean=knn_filter")]
    assert len(clean) == 7
    for row in clean:
        assert row["config"]["run"]["clean"] == "knn_filter"
        c = row["metrics"]["cleaning"]
        assert c["method"] == "knn_filter" and c["n_after"] == round(0.8 * c["n_before"])
    # a single-weak s2s row is the pipeline's run with the same config
    spec = next(s for s in specs.values() if s.head_label == "ridge[s2s_iters=2]"
                and not s.is_ensemble)  # fmt: skip
    arrays = _inputs(spec)
    direct = w2sg.run(weak=arrays["weak"], strong=arrays["strong"], labels=arrays["labels"],
                      ids=arrays["ids"], config=spec.config).record  # fmt: skip
    stored = rows[spec.config_hash]["metrics"]["rounds"]
    assert [r["labels_changed"] for r in stored] == [r["labels_changed"] for r in direct["rounds"]]
    for mine, theirs in zip(stored, direct["rounds"], strict=True):
        assert mine["test"] == approx(theirs["test"])

    assert main(args) == 0  # re-run: everything is skipped
    again = json.loads(capsys.readouterr().out)
    assert (again["executed"], again["skipped"]) == (0, 21)


def test_study_and_export_read_the_rows(
    swept: tuple[Path, Path, dict[str, Any]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, db, _ = swept
    with ResultStore(db, read_only=True) as store:
        rows = store.rows("done")
    assert main(["study", str(db), "--by-weak", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    plain = [t for t in table if t["head"] == "ridge"]
    # ensembles sit in the group of the single weak models they combine
    assert len({t["config_id"] for t in plain}) == 1 and len(plain) == 7
    ens = {t["weak"]: t for t in plain if "ensemble" in t}
    assert set(ens) == {
        "ensemble[average](weak_1+weak_2+weak_3)",
        "ensemble[metric,t=0.1](weak_1+weak_2+weak_3)",
        "ensemble[learned_labelled,n=20](weak_1+weak_2+weak_3)",
        "ensemble[vote](weak_1+weak_2+weak_3)",
    }
    for name, t in ens.items():
        (row,) = [r for r in rows if r["weak"] == name and r["head"] == "ridge"]
        assert t["ensemble"]["weights"] == row["metrics"]["ensemble"]["weights"]
        assert t["w2s_score"] == row["metrics"]["w2s"]["accuracy"]
    s2s = [t for t in table if t["head"] == "ridge[s2s_iters=2]"]
    for t in s2s:
        (row,) = [r for r in rows if r["weak"] == t["weak"] and r["head"] == t["head"]]
        assert t["s2s_rounds"] == 2
        assert t["s2s_score"] == row["metrics"]["rounds"][-1]["test"]["accuracy"]
    assert main(["study", str(db), "--by-weak"]) == 0
    text = capsys.readouterr().out
    assert "s2s_last" in text and "ensemble[metric,t=0.1](weak_1+weak_2+weak_3)" in text
    # correlations and rank studies are over the single weak supervisors
    assert main(["study", str(db), "--json", "--bootstrap", "20"]) == 0
    corr = json.loads(capsys.readouterr().out)
    assert len({(c["head"], c["config_id"]) for c in corr}) == 3
    assert all(c["n_weak"] == 3 for c in corr)
    assert main(["study", str(db), "--rank", "--json"]) == 0
    assert "ensemble" not in capsys.readouterr().out

    out = tmp_path / "rows.csv"
    assert main(["export", str(db), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 21
    metric = frame[(frame["weak"] == "ensemble[metric,t=0.1](weak_1+weak_2+weak_3)")
                   & (frame["head"] == "ridge")].iloc[0]  # fmt: skip
    assert metric["config.run.combine"] == "metric"
    assert metric["metrics.ensemble.rule"] == "metric"
    (row,) = [r for r in rows if r["weak"] == metric["weak"] and r["head"] == "ridge"]
    assert json.loads(metric["metrics.ensemble.weights"]) == pytest.approx(
        row["metrics"]["ensemble"]["weights"], rel=1e-12
    )
    assert json.loads(metric["config.weak.ensemble"])[2]["model"] == "weak_3"
    assert set(frame.loc[frame["head"] == "ridge[s2s_iters=2]", "config.run.s2s_iters"]) == {2}


def test_study_ensembles_against_the_members(
    swept: tuple[Path, Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, db, _ = swept
    with ResultStore(db, read_only=True) as store:
        rows = store.rows("done")
    assert main(["study", str(db), "--ensembles", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert len(table) == 4 * 3  # four rules × three heads
    for t in table:
        group = [r for r in rows if r["head"] == t["head"]]
        single = {w: next(r for r in group if r["weak"] == w) for w in ("weak_1", "weak_2",
                                                                         "weak_3")}  # fmt: skip
        (ens,) = [r for r in group if r["weak"] == t["ensemble"]]
        err = {w: 1 - r["metrics"]["w2s"]["accuracy"] for w, r in single.items()}
        pick = min(single, key=lambda w: single[w]["theory"]["op_norm"])
        best = min(err, key=lambda w: err[w])
        assert (t["pick"], t["best"], t["n_members_run"]) == (pick, best, 3)
        mine = 1 - ens["metrics"]["w2s"]["accuracy"]
        assert t["error"] == pytest.approx(mine)
        assert t["vs_pick"]["mean"] == pytest.approx(mine - err[pick])
        assert t["vs_best"]["mean"] == pytest.approx(mine - err[best])
        assert t["vs_pick"]["n"] == 1 and t["vs_pick"]["se"] is None  # one seed: no SE
    assert main(["study", str(db), "--ensembles"]) == 0
    assert "ens−pick" in capsys.readouterr().out


def test_an_ensemble_row_uses_the_data_s_own_splits() -> None:
    """A task with its own splits (a data file's split column, a hub dataset): the ensemble's
    members and student use them, as a single weak model's run does."""
    from w2sg.experiments.runner import pipeline_run

    (spec,) = parse_sweep(sweep_with(weak=[{"ensemble": ["weak_1", "weak_2"]}])).expand()
    arrays = _inputs(spec)
    n = len(arrays["labels"])
    names = np.array(["train"] * (n - 50) + ["test"] * 50)
    members = [arrays[r] for r in member_roles(spec)]
    out = pipeline_run(spec, arrays["weak"], arrays["strong"], arrays["labels"], arrays["ids"],
                       given_splits=names, members=members)  # fmt: skip
    assert out["metrics"]["n"]["test"] == 50
    assert out["metrics"]["ensemble"]["members"] == ["weak_1", "weak_2"]


def test_a_store_of_ensembles_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Correlations are over single weak models: a store of ensembles says so (study, report)."""
    from w2sg.report import build_report

    cfg = tmp_path / "only.yaml"
    data = sweep_with(weak=[{"ensemble": ["weak_1", "weak_2"], "combine": ["average", "vote"]}])
    cfg.write_text(json.dumps(data))  # JSON is YAML
    db = tmp_path / "only.db"
    assert main(["sweep", str(cfg), "--store", str(db), "--workers", "1", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["study", str(db), "--bootstrap", "20"]) == 0
    assert "every finished run has an ensemble weak side" in capsys.readouterr().err
    assert main(["study", str(db), "--ensembles", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert [t["n_members_run"] for t in table] == [0, 0] and "pick" not in table[0]
    text = build_report(db, tmp_path / "report", n_boot=20).read_text()
    assert "every finished run has an ensemble weak side" in text
    assert "<h2>Ensemble weights</h2>" in text and "<h2>Rank vs realized error</h2>" not in text
