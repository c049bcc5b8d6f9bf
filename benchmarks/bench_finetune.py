"""Fine-tuning throughput: w2sg's learner against Hugging Face ``Trainer``, same everything.

Both sides train the same module (the model's pooling into a zero-initialised linear head; LoRA
through peft on the same target modules) on the same tokenized texts, with the same batch size,
max length, precision, optimiser (AdamW, linear decay after warm-up, clipping at 1.0) and
length-grouped batches with dynamic padding, for one epoch; they alternate, ``--repeats`` times
each. Throughput is training examples per second of the training loop (w2sg: ``examples_per_s``
of the learner's ``train`` record; Trainer: ``train_samples_per_second``). Peak memory is the
process's peak resident set on CPU (it only grows, so it is read after each mode's rounds).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/bench_finetune.py --n 256 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import tempfile
import time
from typing import Any

import numpy as np


def ours(mode: str, texts: list[str], labels: np.ndarray, args: argparse.Namespace) -> float:
    from w2sg.config import FinetuneConfig, RunConfig
    from w2sg.heads.finetune import FinetuneSource

    config = RunConfig(
        train=mode,
        finetune=FinetuneConfig(
            epochs=1, batch_size=args.batch_size, max_length=args.max_length, select="last"
        ),
    )
    source = FinetuneSource(args.model, texts, mode, kind="text")
    learner = source.learner("ceiling", config, seed=0)
    rows = np.arange(len(texts))
    learner.fit(rows, np.eye(2)[labels])
    return float(learner.info()["examples_per_s"])


def trainer(mode: str, texts: list[str], labels: np.ndarray, args: argparse.Namespace) -> float:
    import torch
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from w2sg.heads import finetune as F

    backbone = F._Backbone(args.model)
    torch.manual_seed(0)
    model = backbone.load(torch.float32)
    hidden = F._hidden_size(model.config)
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        target = F.LORA_TARGETS.get(str(model.config.model_type), "all-linear")
        model = get_peft_model(
            model,
            LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=target, bias="none"),
        )
    student = F._student_module(model, hidden, 2, backbone.pooling)

    class WithLoss(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student = student

        def forward(self, input_ids: Any, attention_mask: Any, labels: Any = None) -> Any:
            logits = self.student(input_ids, attention_mask)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            return {"loss": loss, "logits": logits}

    tok = backbone.tokenizer
    enc = tok(
        [t.lower() for t in texts] if backbone.lowercase else texts,
        truncation=True,
        max_length=args.max_length,
    )
    data = Dataset.from_dict(
        {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": labels.tolist(),
        }
    )
    out = tempfile.mkdtemp()
    targs = TrainingArguments(
        output_dir=out, per_device_train_batch_size=args.batch_size, num_train_epochs=1,
        learning_rate=2e-4 if mode == "lora" else 2e-5,
        warmup_steps=math.ceil(0.1 * math.ceil(len(texts) / args.batch_size)),
        lr_scheduler_type="linear", max_grad_norm=1.0, weight_decay=0.0,
        train_sampling_strategy="group_by_length",
        report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True,
        dataloader_num_workers=0, seed=0, disable_tqdm=True,
    )  # fmt: skip
    t = Trainer(
        model=WithLoss(), args=targs, train_dataset=data, data_collator=DataCollatorWithPadding(tok)
    )
    result = t.train()
    return float(result.metrics["train_samples_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--modes", default="lora,full")
    args = parser.parse_args()
    from w2sg.data.datasets import load_dataset

    data = load_dataset("rotten_tomatoes", limit=args.n)
    texts, labels = list(data.inputs), np.asarray(data.labels)
    rows = []
    for mode in args.modes.split(","):
        speeds: dict[str, list[float]] = {"w2sg": [], "trainer": []}
        for _ in range(args.repeats):  # alternating
            speeds["w2sg"].append(ours(mode, texts, labels, args))
            speeds["trainer"].append(trainer(mode, texts, labels, args))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        med = {k: statistics.median(v) for k, v in speeds.items()}
        rows.append({
            "mode": mode, "w2sg_ex_per_s": med["w2sg"], "trainer_ex_per_s": med["trainer"],
            "ratio": med["w2sg"] / med["trainer"], "all": speeds, "peak_rss_mb": peak,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "model": args.model,
                "n": args.n,
                "batch_size": args.batch_size,
                "max_length": args.max_length,
                "threads": os.environ.get("OMP_NUM_THREADS"),
                "load": os.getloadavg(),
                "when": time.strftime("%Y-%m-%d %H:%M"),
            }
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
