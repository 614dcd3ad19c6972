"""Masking caught while training: what validation PGD-10 hides, measured every evaluation epoch on a fixed
validation subset (the first eval.monitor_points points).

Three accuracies on the subset:
    pgd      the validation PGD-10 itself (eval.steps steps of eval.step, random start);
    strong   robust only if a point survives PGD-10 *and* two attacks of eval.monitor_steps steps and
             eval.monitor_restarts random restarts each, chosen by eval.monitor_attack:
               pgd   PGD on the cross-entropy, then PGD on the CW margin (the margin's gradient does not
                     vanish when the softmax saturates, the cross-entropy's does); the default;
               apgd  APGD on the cross-entropy, then APGD on the DLR loss (attacks/apgd.py: a step size that
                     adapts, and a loss blind to the logits' scale), at the same number of gradient steps;
               apgd_t APGD on the cross-entropy, then targeted APGD (APGD-T) on the MONITOR_TARGETS
                     classes each point ranks highest after its first, monitor_steps steps per target
                     (twice the gradient steps of the other two with 3 targets).
             Which pair catches what, at what cost, on the mnist5k study: docs/results/README.md
             ("Masking"), every number there with its record.
    fgsm     one FGSM step of eps from the clean point.

Two gaps and a drop, as fractions of the subset:
    pgd_gap  = pgd - strong: PGD-10 overstates the robustness a stronger attack finds (gradient masking);
    fgsm_gap = fgsm - pgd:   a single step finds far less than PGD;
    pgd_drop = peak - pgd:   PGD-10 below its best value of the earlier epochs (0 on the first).
Two things are flagged (eval.masking_threshold is the one threshold): gradient masking, pgd_gap above
it; catastrophic overfitting, fgsm_gap *and* pgd_drop above it (FGSM-RS's signature: PGD accuracy
collapses while FGSM accuracy stays high). The FGSM gap alone is not a flag: a healthy robust model has
one (on the mnist5k study a RegMix run at its best epochs: FGSM 92.0 vs PGD-10 81.5 on the subset, a
10.5-point gap, while the stronger attack found 77.5 and PGD-10 was still rising; the first form of this
monitor flagged that). A flag is a warning in the log, in the epoch's metrics record and in status.json.
Flags are raised only once the training eps has reached its full value (after train.eps_warmup_epochs):
before, the model is trained at a smaller eps than the one it is evaluated at, and a model that is not
robust yet shows both gaps without masking anything (the numbers are recorded all the same).
eval.select = strong chooses best.pt on `strong`; train.stop_on_overfit stops the run at the first epoch
flagged for catastrophic overfitting.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ..attacks import APGD, APGDT, FGSM, PGD
from ..attacks.flags import attack_flags
from ..config import MONITOR_ATTACKS
from ..registry import ConfigError

KEYS = ("pgd", "strong", "fgsm")
MONITOR_TARGETS = 3  # apgd_t's target classes: AutoAttack's APGD-T tries 9, at 100 steps each
PREFIX = "val_monitor_"
GAP_DECIMALS = 9  # far below one point's share of any subset (1e-9: a billion points)


def strong_attacks(model, threat, attack: str, steps: int, restarts: int) -> list:
    """The two attacks of `strong`, in the order they run (eval.monitor_attack: one of MONITOR_ATTACKS)."""
    strong_threat = threat.with_(steps=steps)
    if attack == "pgd":
        return [PGD(model, strong_threat, loss=loss, restarts=restarts) for loss in ("ce", "cw")]
    if attack == "apgd":
        return [APGD(model, strong_threat, loss=loss, restarts=restarts) for loss in ("ce", "dlr")]
    if attack == "apgd_t":
        return [APGD(model, strong_threat, loss="ce", restarts=restarts),
                APGDT(model, strong_threat, targets=MONITOR_TARGETS, restarts=restarts)]
    raise ConfigError(f"eval.monitor_attack: must be one of {', '.join(MONITOR_ATTACKS)}, got {attack!r}")


def monitor_flags(model, x, y, clean, pgd, threat, *, steps: int, restarts: int, device, batch_size,
                  attack: str = "pgd") -> dict:
    """Per-point flags {pgd, strong, fgsm} on the subset (x, y), given its clean and PGD-10 flags. Each
    stronger attack runs only on the points every earlier one left robust (strong includes PGD-10)."""
    strong = pgd
    for stronger in strong_attacks(model, threat, attack, steps, restarts):
        strong = attack_flags(model, stronger, x, y, strong, device=device, batch_size=batch_size)
    fgsm = attack_flags(model, FGSM(model, threat), x, y, clean, device=device, batch_size=batch_size)
    return {"pgd": pgd, "strong": strong, "fgsm": fgsm}


def _difference(a: float, b: float) -> float:
    """a - b for two accuracies of the subset, rounded to GAP_DECIMALS: a gap of exactly the threshold is not
    above it. Each accuracy is a count over the subset, so a gap is a whole number of points' shares, but the
    float subtraction is not (0.6 - 0.52 = 0.08000000000000007): unrounded, float noise would decide every
    gap that lands on the threshold (on 200 points, 16 points' gap against a threshold of 0.08)."""
    return round(a - b, GAP_DECIMALS)


def monitor_record(accuracies: Dict[str, float], threshold: float, armed: bool = True,
                   peak: Optional[float] = None) -> dict:
    """The epoch record's monitor fields from the subset's accuracies {pgd, strong, fgsm} and `peak`, the
    best monitor PGD-10 accuracy of the earlier epochs (None on the first); flags only when `armed` (the
    training eps at its full value)."""
    record = {f"{PREFIX}{k}": accuracies[k] for k in KEYS}
    record.update({f"{PREFIX}pgd_gap": _difference(accuracies["pgd"], accuracies["strong"]),
                   f"{PREFIX}fgsm_gap": _difference(accuracies["fgsm"], accuracies["pgd"]),
                   f"{PREFIX}pgd_drop": 0.0 if peak is None else max(0.0, _difference(peak, accuracies["pgd"]))})
    masked, overfitting = (flags_of(record, threshold) if armed else (False, False))
    record[f"{PREFIX}flagged"] = float(masked or overfitting)
    record[f"{PREFIX}overfit"] = float(overfitting)
    warnings = warnings_of(record, masked, overfitting)
    if warnings:
        record["masking_warning"] = "; ".join(warnings)
    return record


def flags_of(record: dict, threshold: float) -> Tuple[bool, bool]:
    """(gradient masking, catastrophic overfitting) of an epoch's monitor fields."""
    masked = record[f"{PREFIX}pgd_gap"] > threshold
    overfitting = record[f"{PREFIX}fgsm_gap"] > threshold and record[f"{PREFIX}pgd_drop"] > threshold
    return masked, overfitting


def warnings_of(record: dict, masked: bool, overfitting: bool) -> List[str]:
    out = []
    if masked:
        out.append(f"PGD-10 overstates the stronger attack by {100 * record[PREFIX + 'pgd_gap']:.1f} points "
                   f"({100 * record[PREFIX + 'pgd']:.1f} vs {100 * record[PREFIX + 'strong']:.1f}): gradient masking")
    if overfitting:
        out.append(f"PGD-10 accuracy fell {100 * record[PREFIX + 'pgd_drop']:.1f} points below its best while FGSM "
                   f"accuracy exceeds it by {100 * record[PREFIX + 'fgsm_gap']:.1f} ({100 * record[PREFIX + 'fgsm']:.1f} "
                   f"vs {100 * record[PREFIX + 'pgd']:.1f}): catastrophic overfitting")
    return out


def overfit(record: dict) -> bool:
    """Whether an epoch record was flagged for catastrophic overfitting (what train.stop_on_overfit stops on)."""
    return record.get(f"{PREFIX}overfit") == 1.0


def masking_history(epoch_records) -> List[dict]:
    """[{epoch (1-based), warning}] of the epoch records that were flagged (what status.json lists)."""
    return [{"epoch": r["epoch"] + 1, "warning": r["masking_warning"]} for r in epoch_records
            if r.get("masking_warning")]
