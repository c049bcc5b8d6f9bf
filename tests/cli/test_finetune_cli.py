"""``w2sg run --train full|lora``: bad input is one line, exit 2, before anything is trained."""

from __future__ import annotations

import pytest

from w2sg.cli import main


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (["--dataset", "rotten_tomatoes", "--weak", "static-64", "--strong", "static-64",
          "--train", "lora"], "needs a transformers checkpoint"),
        (["--dataset", "rotten_tomatoes", "--weak", "static-64", "--strong", "minilm-l6",
          "--train", "lora", "--lora-rank", "0"], "--lora-rank must be >= 1"),
        (["--dataset", "rotten_tomatoes", "--weak", "static-64", "--strong", "minilm-l6",
          "--train", "full", "--warmup", "1.5"], "--warmup is a fraction"),
        (["--weak", "W.npy", "--strong", "S.npy", "--labels", "y.npy", "--train", "full"],
         "representation arrays cannot be fine-tuned"),
        (["--dataset", "rotten_tomatoes", "--weak", "static-64", "--strong", "static-64",
          "--weak-train", "full"], "needs a transformers checkpoint"),
        (["--dataset", "rotten_tomatoes", "--weak", "minilm-l6@0", "--strong", "minilm-l6",
          "--weak-train", "full"], "@0 is the embedding output"),
        (["--dataset", "rotten_tomatoes", "--weak", "static-64", "--strong", "minilm-l6@pooler",
          "--train", "lora"], "not at a named layer"),
    ],
)  # fmt: skip
def test_bad_finetune_input_is_one_line(capsys, extra: list[str], pattern: str) -> None:
    code = main(["run", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("w2sg: error: ") and pattern in err
    assert len(err.strip().splitlines()) == 1
