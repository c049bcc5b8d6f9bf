"""The text summary of one run: the table ``w2sg run`` prints and ``Result.summary()`` returns.

It reads only the run record (``RunResult.to_dict()``, the ``--json`` object), so a record loaded
from ``metrics.json`` prints the same table as the run that wrote it.
"""

from __future__ import annotations

from typing import Any


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def format_summary(record: dict[str, Any]) -> str:
    """A readable table of one run: weak / w2s / ceiling / baseline, PGR (headline and AUROC),
    flags, theory and bounds highlights."""
    task = record["task"]
    cols = {
        "classification": ["accuracy", "auroc", "cross_entropy", "ece", "smooth_ce"],
        "probability": ["kl", "accuracy", "ece", "smooth_ce", "mse"],
        "regression": ["mse", "rmse", "mae", "r2"],
    }[task]
    n = record["n"]
    lines = ["split sizes: " + " · ".join(f"{k} {v}" for k, v in n.items())]
    mapping = (record.get("provenance") or {}).get("data", {}).get("label_mapping")
    if mapping:
        lines.append("classes: " + ", ".join(f"{i} = {c}" for c, i in mapping.items()))
    lines.append("")
    lines.append(f"{'model':<10}" + "".join(f"{c:>15}" for c in cols))
    for model in ("weak", "w2s", "ceiling", "baseline"):
        row = record.get(model)
        if row is not None:
            lines.append(f"{model:<10}" + "".join(f"{_fmt(row.get(c)):>15}" for c in cols))
    if record.get("baseline") is not None:
        lines.append(f"({_BASELINE[task]})")
    lines.append("")
    for key in ("pgr", "pgr_auroc"):
        if record.get(key):
            lines.append(_pgr_line(record[key]))
    flags = record.get("flags")
    if flags is not None:
        lines.append("flags: " + ("none" if not flags else ", ".join(_flag_name(f) for f in flags)))
        lines += [f"  {_flag_name(f)}: {f['reason']}" for f in flags]
    ens = record.get("ensemble")
    if ens:
        weights = ens.get("weights") or [None] * len(ens["members"])
        lines += ["", f"weak side: {len(ens['members'])} weak models combined by {ens['rule']}"]
        for name, w, m, op in zip(
            ens["members"], weights, ens["member_weak"],
            ens.get("member_op_norm") or [None] * len(ens["members"]), strict=True,
        ):  # fmt: skip
            score = "  ".join(f"{k} {_fmt(v)}" for k, v in m.items() if k in ("accuracy", "mse"))
            lines.append(f"  {name:<24} weight {_fmt(w, 3)}  op_norm {_fmt(op)}  weak {score}")
    t = record.get("theory")
    if t:
        lines += [
            "",
            "representation kernels (ridge heads, following [X]):",
            f"  label-free ‖P_s(I−P_w)‖_op {_fmt(t.get('op_norm'))}   "
            f"‖·‖_F²/n {_fmt(t.get('fro_sq_over_n'))}   k_weak {t.get('k_weak')}   "
            f"k_strong {t.get('k_strong')}",
            f"  predicted gap G {_fmt(t.get('predicted_gap'))}   measured PredGap "
            f"{_fmt(t.get('measured_gap'))}   Err(w2s)−Err(ceiling) "
            f"{_fmt(t.get('w2s_minus_ceiling'))}   cross term {_fmt(t.get('cross_term'))}",
            f"  weak error on D̂ ‖e‖²/n {_fmt(t.get('weak_error_hat'))}   inherited ‖S_s e‖²/n "
            f"{_fmt(t.get('inherited_error'))}   corrected ‖(I−S_s)e‖²/n "
            f"{_fmt(t.get('corrected_error'))}",
        ]
    tf = record.get("theory_finetuned")
    if t and tf:
        lines.append(
            f"  fine-tuned ceiling's own representations: ‖P_s(I−P_w)‖_op "
            f"{_fmt(tf.get('op_norm'))}   predicted gap G {_fmt(tf.get('predicted_gap'))}   "
            f"k_strong {tf.get('k_strong')}"
        )
    lines += _training_lines(record.get("train") or {})
    b = record.get("bounds")
    if b:
        lines += ["", "bounds (following [Y]/[C]; test unless marked D̂):"]
        rows: list[tuple[str, Any]] = []
        if "generalization" in b:
            rows.append(("cross-entropy, TV form", b["generalization"]["tv"]))
            rows.append(("0-1 error", b["disagreement"]))
            for entry in b["calibration"]["per_class"]:
                rows.append((f"smooth CE, class {entry['class']}", entry["mean_abs"]))
        for name in ("misfit_sq", "misfit_kl"):
            if name in b:
                rows.append((f"{name} on D̂", b[name]["train"]))
                rows.append((f"{name} on test", b[name]["test"]))
        for label, entry in rows:
            lines.append(f"  {label:<24}{_bound_row(entry)}")
        for note in b.get("notes", []):
            lines.append(f"  note: {note}")
    rounds = record.get("rounds")
    if rounds:
        metric = rounds[0]["pgr"]["metric"]
        lines += [
            "",
            "strong-to-strong rounds (each student trained on the previous one's predictions):",
            f"  {'round':<7}{'labels changed':>16}{metric + ' (test)':>18}{'PGR':>9}"
            f"{'agree w/ teacher':>18}{'‖P_s(I−P_w)‖_op':>17}",
        ]
        for r in rounds:
            agree = r["vs_teacher"]["test"].get("agreement")
            op = (r.get("theory") or {}).get("op_norm")
            lines.append(
                f"  {r['round']:<7}{_fmt(r['labels_changed']):>16}"
                f"{_fmt(r['test'].get(metric)):>18}{_fmt(r['pgr']['value'], 3):>9}"
                f"{_fmt(agree):>18}{_fmt(op):>17}"
            )
    for note in record.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


_BASELINE = {
    "classification": "baseline: every row gets the training labels' class frequencies; "
    "its accuracy is the majority-class rate",
    "regression": "baseline: every row gets the mean of the training targets",
    "probability": "baseline: every row gets the mean training probability",
}


def _pgr_line(p: dict[str, Any]) -> str:
    """``PGR (metric, test): value  95% CI [lo, hi]``, or why it is undefined."""
    text = f"{'PGR (' + p['metric'] + ', test):':<22}{_fmt(p['value'], 3)}"
    if p.get("ci_low") is not None:
        text += f"  95% CI [{_fmt(p['ci_low'], 3)}, {_fmt(p['ci_high'], 3)}]"
    if p.get("reason"):
        text += f"  ({p['reason']})"
    return text


def _flag_name(flag: dict[str, Any]) -> str:
    return f"{flag['code']}({flag['model']})" if flag.get("model") else str(flag["code"])


def _bound_row(entry: dict[str, Any]) -> str:
    """One line for a bound ``{measured, weak, lower, upper, holds}`` or a misfit entry."""
    if "misfit" in entry:
        text = (
            f"err_w2s {_fmt(entry['err_w2s'])} ≤ err_weak − misfit = {_fmt(entry['err_weak'])} − "
            f"{_fmt(entry['misfit'])}   holds {entry['holds']}"
        )
        if entry.get("applies") is not True and entry.get("reason"):
            text += f"\n{'':<26}does not apply: {entry['reason']}"
        return text
    return (
        f"measured {_fmt(entry['measured'])}  weak {_fmt(entry.get('weak'))}  "
        f"bound [{_fmt(entry.get('lower'))}, {_fmt(entry.get('upper'))}]  holds {entry['holds']}"
    )


def _training_lines(train: dict[str, Any]) -> list[str]:
    """How each model learned, when any was fine-tuned (probe runs print nothing here)."""
    if not any(v.get("mode") in ("full", "lora") for v in train.values()):
        return []
    lines = ["", "training:"]
    for model in ("weak", "w2s", "ceiling"):
        e = train.get(model, {})
        if e.get("mode") in ("full", "lora"):
            share = e["trainable_params"] / max(e["total_params"], 1)
            rates = f"   lr {e['lr']:g}, head {e['head_lr']:g}" if "lr" in e else ""
            lines.append(
                f"  {model:<8}{e['mode']:<6}trainable {e['trainable_params']:,} of "
                f"{e['total_params']:,} ({share:.2%})   epochs {e['epochs_run']}, kept "
                f"{e['best_epoch']} ({e['selected_by']}){rates}   {_fmt(e['seconds'], 1)} s, "
                f"{_fmt(e['examples_per_s'], 1)} ex/s   {e['device']} {e['dtype']}"
            )
        else:
            lines.append(f"  {model:<8}{e.get('mode', 'n/a')}")
    return lines
