"""What a new user tripped on in sweeps (issue 12, item 5): layers of hf:/folder models, and a
progress bar that names what it is preparing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sweep_fakes import fake_prepare, fake_run, make_specs

from w2sg.errors import W2SGError
from w2sg.experiments import executors
from w2sg.experiments.sweep import parse_sweep


def test_layers_of_hf_and_folder_models_are_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')
    sweep = parse_sweep(
        {
            "tasks": [{"dataset": "rotten_tomatoes", "limit": 100}],
            "weak": [f"hf:{folder}@2", {"model": str(folder), "layer": 1}, "hf:org/model@-1"],
            "strong": ["minilm-l6"],
            "heads": ["ridge"],
        }
    )
    labels = sorted(s.weak.label for s in sweep.expand())
    assert labels == sorted([f"hf:{folder}@2", f"{folder}@1", "hf:org/model@-1"])
    with pytest.raises(W2SGError, match="has no layers to pick"):  # a static model has none
        parse_sweep(
            {
                "tasks": [{"dataset": "rotten_tomatoes", "limit": 100}],
                "weak": ["static-64@2"],
                "strong": ["minilm-l6"],
            }
        )


class RecordingBar:
    """Stands in for the tqdm bar and keeps every postfix it is given."""

    disable = True
    mininterval = 1.0

    def __init__(self) -> None:
        self.postfixes: list[dict[str, Any]] = []

    def set_postfix(self, values: dict[str, Any], refresh: bool = True) -> None:
        self.postfixes.append(dict(values))

    def update(self, n: int = 1) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_progress_bar_names_what_it_prepares(tmp_path: Path, monkeypatch) -> None:
    bar = RecordingBar()
    monkeypatch.setattr(executors, "progress_bar", lambda *a, **k: bar)
    specs = make_specs(["a", "b"], [0], tasks=("t1", "t2"))
    executors.run_sweep(
        specs, tmp_path / "r.db", workers=1, run_fn=fake_run, prepare_fn=fake_prepare
    )
    named = {p["preparing"] for p in bar.postfixes if "preparing" in p}
    # one unit per task, named by its draw (the dataset of a synthetic unit is "synthetic" too)
    assert named == {"synthetic t1 seed 0", "synthetic t2 seed 0"}
    assert bar.postfixes[-1]["inputs"] == "2/2" and "preparing" not in bar.postfixes[-1]
