"""Masking caught while training: what validation PGD-10 hides, measured every evaluation epoch on a fixed
validation subset (the first eval.monitor_points points).

Three accuracies on the subset:
    pgd      the validation PGD-10 itself (eval.steps steps of eval.step, random start);
    strong   robust only if a point survives PGD-10 *and* PGD on the cross-entropy with
             eval.monitor_steps steps and eval.monitor_restarts random restarts *and* PGD on the CW margin
             with as many steps (the margin's gradient does not vanish when the softmax saturates, the
             cross-entropy's does);
    fgsm     one FGSM step of eps from the clean point.

Two gaps, as fractions of the subset:
    pgd_gap  = pgd - strong: PGD-10 overstates the robustness a stronger attack finds (gradient masking);
    fgsm_gap = fgsm - pgd:   a single step finds far less than PGD (catastrophic overfitting: FGSM-RS's
               PGD accuracy collapses while FGSM accuracy stays high).
A gap above eval.masking_threshold is flagged: a warning in the log, in the epoch's metrics record and in
status.json. Flags are raised only once the training eps has reached its full value (after
train.eps_warmup_epochs): before, the model is trained at a smaller eps than the one it is evaluated at,
and a model that is not robust yet shows both gaps without masking anything (the numbers are recorded
all the same). eval.select = strong chooses best.pt on `strong`; train.stop_on_overfit stops the run at
the first flagged epoch whose PGD accuracy has also collapsed: fgsm_gap past the threshold and PGD-10
more than the threshold below its best earlier value (the catastrophic-overfitting signature).
"""
from __future__ import annotations

from typing import Dict, List

from ..attacks import FGSM, PGD
from ..attacks.flags import attack_flags

KEYS = ("pgd", "strong", "fgsm")
PREFIX = "val_monitor_"


def monitor_flags(model, x, y, clean, pgd, threat, *, steps: int, restarts: int, device, batch_size) -> dict:
    """Per-point flags {pgd, strong, fgsm} on the subset (x, y), given its clean and PGD-10 flags. Each
    stronger attack runs only on the points every earlier one left robust (strong includes PGD-10)."""
    strong_threat = threat.with_(steps=steps)
    strong = pgd
    for loss in ("ce", "cw"):
        strong = attack_flags(model, PGD(model, strong_threat, loss=loss, restarts=restarts), x, y, strong,
                              device=device, batch_size=batch_size)
    fgsm = attack_flags(model, FGSM(model, threat), x, y, clean, device=device, batch_size=batch_size)
    return {"pgd": pgd, "strong": strong, "fgsm": fgsm}


def monitor_record(accuracies: Dict[str, float], threshold: float, armed: bool = True) -> dict:
    """The epoch record's monitor fields from the subset's accuracies {pgd, strong, fgsm}; flags only
    when `armed` (the training eps at its full value)."""
    pgd_gap = accuracies["pgd"] - accuracies["strong"]
    fgsm_gap = accuracies["fgsm"] - accuracies["pgd"]
    record = {f"{PREFIX}{k}": accuracies[k] for k in KEYS}
    record.update({f"{PREFIX}pgd_gap": pgd_gap, f"{PREFIX}fgsm_gap": fgsm_gap})
    warnings = warnings_of(record, threshold) if armed else []
    record[f"{PREFIX}flagged"] = float(bool(warnings))
    if warnings:
        record["masking_warning"] = "; ".join(warnings)
    return record


def warnings_of(record: dict, threshold: float) -> List[str]:
    out = []
    if record[f"{PREFIX}pgd_gap"] > threshold:
        out.append(f"PGD-10 overstates the stronger attack by {100 * record[PREFIX + 'pgd_gap']:.1f} points "
                   f"({100 * record[PREFIX + 'pgd']:.1f} vs {100 * record[PREFIX + 'strong']:.1f}): gradient masking")
    if record[f"{PREFIX}fgsm_gap"] > threshold:
        out.append(f"FGSM accuracy exceeds PGD-10's by {100 * record[PREFIX + 'fgsm_gap']:.1f} points "
                   f"({100 * record[PREFIX + 'fgsm']:.1f} vs {100 * record[PREFIX + 'pgd']:.1f}): "
                   f"catastrophic overfitting or masking")
    return out


def overfit(record: dict, threshold: float, peak: float) -> bool:
    """The catastrophic-overfitting signature on a flagged epoch: the FGSM-to-PGD gap past the threshold
    and PGD-10 accuracy more than the threshold below `peak`, its best earlier value on the subset."""
    return (record.get(f"{PREFIX}flagged") == 1.0 and record[f"{PREFIX}fgsm_gap"] > threshold
            and peak - record[f"{PREFIX}pgd"] > threshold)


def masking_history(epoch_records) -> List[dict]:
    """[{epoch (1-based), warning}] of the epoch records that were flagged (what status.json lists)."""
    return [{"epoch": r["epoch"] + 1, "warning": r["masking_warning"]} for r in epoch_records
            if r.get("masking_warning")]
