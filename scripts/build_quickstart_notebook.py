# ruff: noqa: E501  (notebook cells keep their own line lengths)
"""Write examples/quickstart.ipynb from the cells below, executed: each code cell runs in one
namespace and keeps its printed output and the value of its last expression (a figure as PNG, a
DataFrame as HTML and text), as a Jupyter kernel would. No Jupyter needed.

    PYTHONPATH=src python scripts/build_quickstart_notebook.py examples/quickstart.ipynb

tests/test_notebook.py executes the written notebook's code cells.
"""

import ast
import base64
import contextlib
import io
import json
import sys

import matplotlib

matplotlib.use("Agg")

CELLS = [
    (
        "md",
        """# w2sg quickstart: weak-to-strong generalization from Python

`import w2sg` gives the same functions the command line runs (`w2sg run`, `w2sg metric`,
`w2sg embed`, `w2sg sweep`), so the numbers here are the numbers the CLI prints.
Task: Rotten Tomatoes sentiment. Weak model: `static-64` (a 64-d static token model). Strong
model: `minilm-l6` (all-MiniLM-L6-v2). Both ship in PyPI packages and run offline on a CPU.
See docs/python-api.md for every function.""",
    ),
    (
        "code",
        "LIMIT = 4000  # examples of Rotten Tomatoes used below (the demo's 4,000)",
        {"tags": ["parameters"]},
    ),
    (
        "code",
        """import numpy as np

import w2sg

print(w2sg.__version__)""",
    ),
    (
        "md",
        """## 1. Representations

`w2sg.embed` extracts (and caches) a model's representation of a dataset, a data file or a
list of texts. An `Embedding` of a dataset carries its rows' content ids and labels.""",
    ),
    (
        "code",
        """weak = w2sg.embed("static-64", "rotten_tomatoes", limit=LIMIT, progress=False)
strong = w2sg.embed("minilm-l6", "rotten_tomatoes", limit=LIMIT, progress=False)
print(weak.shape, strong.shape, np.bincount(weak.labels))""",
    ),
    (
        "md",
        """## 2. One weak-to-strong run

The weak model is trained on `weak_train` with true labels and labels `w2s_train`; the strong
student learns from those labels (`w2s`); the `ceiling` is the strong model on true labels.
`summary()` is the table `w2sg run` prints.""",
    ),
    (
        "code",
        """result = w2sg.run(weak=weak, strong=strong)
print(result.summary())""",
    ),
    (
        "md",
        """The same run by dataset name (what `w2sg run --dataset rotten_tomatoes --weak static-64
--strong minilm-l6 --limit N` does) gives the same numbers:""",
    ),
    (
        "code",
        """by_name = w2sg.run(dataset="rotten_tomatoes", weak="static-64", strong="minilm-l6", limit=LIMIT)
assert by_name["pgr"] == result["pgr"] and by_name["w2s"] == result["w2s"]
result.pgr""",
    ),
    (
        "md",
        """## 3. Tidy metrics, a figure, a run folder

`to_frame()` has one row per model × split × metric (`against`: the truth, or the weak model's
labels for the students).""",
    ),
    (
        "code",
        """frame = result.to_frame()
frame.query("split == 'test' and against == 'truth'").pivot(
    index="model", columns="metric", values="value"
).round(4)""",
    ),
    (
        "code",
        """fig = result.plot()  # a reliability diagram per model and the PGR bar
fig""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

folder = result.save(Path(tempfile.mkdtemp()) / "rt-run")  # = w2sg run --out
print(sorted(p.name for p in folder.iterdir()))
assert w2sg.load_result(folder).to_dict() == result.to_dict()""",
    ),
    (
        "md",
        """## 4. Options

Keyword options are the `RunConfig` fields or the CLI options by the same name: here ridge
heads (the setting of the representation-kernel theory; `--head ridge`), 200 bootstrap
resamples (`--bootstrap 200`) and the parameter-free Gavish–Donoho rule for k
(`--gavish-donoho`).""",
    ),
    (
        "code",
        """ridge = w2sg.run(weak=weak, strong=strong, head="ridge", bootstrap=200, gavish_donoho=True)
print(ridge.summary().split("\\n\\n")[1])
{k: ridge.theory[k] for k in ("op_norm", "k_weak", "k_strong", "predicted_gap", "measured_gap")}""",
    ),
    (
        "md",
        """## 5. The label-free metric

`w2sg.metric` is `w2sg metric`: ‖P_s(I − P_w)‖_op needs no labels; with labels (an `Embedding`
of a dataset brings its own, encoded ±1 as `run` encodes them) it adds the predicted gap G.""",
    ),
    ("code", """print(w2sg.metric(weak, strong).summary())"""),
    (
        "md",
        """## 6. A sweep and its results store

`w2sg.sweep` takes a sweep YAML file or the same content as a dict; `w2sg.load_store` reads the
SQLite store into a DataFrame with plain `task`, `weak`, `strong`, `head`, `seed` columns. This
one runs on the synthetic model of THEORY.md §4 (three weak representations that see ever
fewer latent coordinates).""",
    ),
    (
        "code",
        """config = {
    "tasks": [{"name": "synthetic", "dataset": "synthetic",
               "params": {"n": 600, "task": "regression", "n_weak": 3, "noise_dim": 300}}],
    "weak": ["weak_1", "weak_2", "weak_3"],
    "strong": ["strong"],
    "heads": ["ridge"],
    "seeds": [0, 1],
    "run": {"strong_ridge": 0.0, "n_bootstrap": 100, "kernel": {"rule": "noise_floor"}},
}
store = Path(tempfile.mkdtemp()) / "runs.db"
print(w2sg.sweep(config, store=store, workers=1, progress=False).to_dict())
runs = w2sg.load_store(store)
runs.groupby("weak")[["theory.op_norm", "theory.predicted_gap", "metrics.w2s.mse"]].mean()""",
    ),
]


def execute(src, ns):
    tree = ast.parse(src)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = tree.body[:-1] if last is not None else tree.body
    out = io.StringIO()
    value = None
    with contextlib.redirect_stdout(out):
        exec(compile(ast.Module(body=body, type_ignores=[]), "<cell>", "exec"), ns)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)
    return out.getvalue(), value


def display(value, count):
    from matplotlib.figure import Figure

    data = {}
    if isinstance(value, Figure):
        buf = io.BytesIO()
        value.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        data["image/png"] = base64.b64encode(buf.getvalue()).decode()
        data["text/plain"] = [repr(value)]
    else:
        data["text/plain"] = repr(value).splitlines(keepends=True)
        if hasattr(value, "to_html"):
            data["text/html"] = value.to_html().splitlines(keepends=True)
    return {"output_type": "execute_result", "execution_count": count, "data": data, "metadata": {}}


def lines(text):
    return text.splitlines(keepends=True)


def build(path, run=True):
    ns = {}
    cells = []
    count = 0
    for entry in CELLS:
        kind, src = entry[0], entry[1]
        meta = entry[2] if len(entry) > 2 else {}
        if kind == "md":
            cells.append({"cell_type": "markdown", "metadata": meta, "source": lines(src)})
            continue
        count += 1
        outputs = []
        if run:
            printed, value = execute(src, ns)
            if printed:
                outputs.append({"output_type": "stream", "name": "stdout", "text": lines(printed)})
            if value is not None:
                outputs.append(display(value, count))
        cells.append(
            {
                "cell_type": "code",
                "execution_count": count,
                "metadata": meta,
                "outputs": outputs,
                "source": lines(src),
            }
        )
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, c in enumerate(nb["cells"]):
        c["id"] = f"cell-{i:02d}"
    with open(path, "w") as fh:
        json.dump(nb, fh, indent=1, ensure_ascii=False)
        fh.write("\n")


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "examples/quickstart.ipynb")
