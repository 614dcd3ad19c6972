"""The masking monitor's threshold (eval.masking_threshold, 0.10) checked against the study, by a rule
written before the study's APGD evaluations were read.

The monitor (regmix/training/monitor.py) flags an epoch when validation PGD-10 is more than the threshold
above its stronger attack. Whether a run *was* masked is decided afterwards, on the test split: its kept
checkpoint is masked when PGD-20 overstates APGD-CE + APGD-T by more than MASKED_DROP on the same points.

The rule (first written on 2026-12-04 before APGD of RegMix's seeds 1-4 was read; that study's folder
was lost with its machine, and the rule is written here again, unchanged in substance, on 2026-12-05
before any APGD of the study that replaced it): the calibration runs are the main table's pgk and regmix
runs (five seeds each); the held-out runs are every other run with APGD and a monitor, except a sweep
whose training is the calibration runs' own (regmix_select_strong: the same training, another kept
checkpoint). The threshold stays 0.10 unless a lower one flags every masked calibration run and no
unmasked held-out run; then it becomes the largest such value on a 0.005 grid. With no masked
calibration run, or every one already flagged at 0.10, it stays. A run is flagged at t when its largest
monitor gap over the armed epochs exceeds t, the comparison the trainer makes (monitor.flags_of)."""
from __future__ import annotations

from typing import List, Optional

from ..evaluation.sanity import MASKED_DROP  # PGD-20 - APGD-CE+T on the same test points above it: masked
from ..study.metrics import points

CURRENT = 0.10            # eval.masking_threshold's default when the rule was written
GRID = 0.005
CALIBRATION = ("pgk", "regmix")
SHARED_TRAINING = ("regmix_select_strong",)
MONITOR_FIELDS = ("max_pgd_gap", "max_overfit_gap", "masking_epochs", "overfit_epochs", "points", "every")


def apgd_drop(entry) -> Optional[float]:
    """PGD-20 minus APGD-CE+T of the kept checkpoint on the same test points (None until both exist)."""
    p = (entry.get("same_points") or {}).get("apgd")
    return None if p is None else p["pgd20"] - p["attack"]


def masked(entry) -> Optional[bool]:
    """Whether the kept checkpoint was masked: PGD-20 above APGD-CE+T by more than MASKED_DROP on the same
    test points (None until both exist)."""
    drop = apgd_drop(entry)
    return None if drop is None else drop > MASKED_DROP


def monitor_twins(results: dict) -> List[dict]:
    """Runs monitored with another pair than the pgd one while training (eval.monitor_attack: the
    *_monitor_apgd_t sweeps) beside their main-table twin (same method and seed, monitored with the pgd
    pair): the same training when validation PGD-10 is equal epoch for epoch (`same_training`), so the two
    monitors' largest gaps over the armed epochs compare directly, each as its run configured it, and the
    twin's test split says whether that training's kept checkpoint was masked."""
    main = {(e["method"], e["seed"]): e for e in results["runs"] if not e["sweep"]}
    rows = []
    for e in results["runs"]:
        twin, attack = main.get((e["method"], e["seed"])), (e.get("monitor") or {}).get("attack", "pgd")
        if attack == "pgd" or twin is None or not twin.get("monitor"):
            continue
        rows.append({"name": e["name"], "twin": twin["name"], "attack": attack, "masked": masked(twin),
                     "test_drop": apgd_drop(twin), "same_training": e["curve"]["val_pgd"] == twin["curve"]["val_pgd"],
                     "train_s": e.get("train_s"), "validation_s": {"pgd": twin.get("validation_s"),
                                                                   attack: e.get("validation_s")},
                     "pgd": {k: twin["monitor"].get(k) for k in MONITOR_FIELDS},
                     attack: {k: e["monitor"].get(k) for k in MONITOR_FIELDS}})
    return rows


def _row(entry) -> dict:
    return {"name": entry["name"], "drop": apgd_drop(entry), "masked": masked(entry),
            "gap": entry["monitor"]["max_pgd_gap"], "overfit": entry["monitor"].get("max_overfit_gap")}


def _above(level: Optional[float], t: float) -> Optional[bool]:
    """Whether a monitor level (a gap in points, as the trainer logs it) passes threshold t: the one comparison
    behind every flag read here (None for a level not recorded)."""
    return None if level is None else level > t


def _flagged(row, t: float) -> bool:
    return bool(_above(row["gap"], t))


def flagged_at(monitor: dict, t: float) -> Optional[bool]:
    """Whether a run's monitor (its summary in results.json) flags it at threshold t by either of the
    trainer's rules, masking or catastrophic overfitting (None without the overfitting level)."""
    masking, overfit = _above(monitor.get("max_pgd_gap"), t), _above(monitor.get("max_overfit_gap"), t)
    return None if masking is None or overfit is None else masking or overfit


def _overfit_flagged(row, t: float) -> Optional[bool]:
    """Whether the overfitting rule flags the run at t (None for a run read before its level was recorded).
    Not part of the rule, which decides on the masking gap alone: shown beside it, since the trainer applies
    the one threshold to both."""
    return _above(row.get("overfit"), t)


def choose_masking_threshold(results: dict) -> Optional[dict]:
    """{calibration, held_out (rows: name, drop, masked, gap), threshold, reason}; None until every
    calibration run of the main table has its APGD evaluation and a monitor."""
    main = [e for e in results["runs"] if not e["sweep"] and e["method"] in CALIBRATION]
    if not main or any(apgd_drop(e) is None or not e.get("monitor") for e in main):
        return None
    calibration = [_row(e) for e in main]
    held_out = [_row(e) for e in results["runs"] if (e["sweep"] or e["method"] not in CALIBRATION)
                and e["sweep"] not in SHARED_TRAINING and e.get("monitor") and apgd_drop(e) is not None]
    masked_runs = [r for r in calibration if r["masked"]]
    choice = {"calibration": calibration, "held_out": held_out, "threshold": CURRENT}
    if not masked_runs:
        return {**choice, "reason": "no calibration run was masked: nothing to calibrate, the threshold stays"}
    if all(_flagged(r, CURRENT) for r in masked_runs):
        return {**choice, "reason": "every masked calibration run is flagged at the current threshold: it stays"}
    clean = [r for r in held_out if not r["masked"]]
    grid = [round(k * GRID, 10) for k in range(int(round(CURRENT / GRID)) - 1, 0, -1)]  # below CURRENT, largest first
    # a lower threshold flags more runs: the largest one that flags every masked calibration run is the only
    # candidate (any lower one flags every unmasked run that it flags, and more)
    needed = next((t for t in grid if all(_flagged(r, t) for r in masked_runs)), None)
    if needed is None:  # a masked calibration run without a monitor gap: no threshold flags it
        why = "no threshold flags every masked calibration run"
    else:
        blockers = [r["name"] for r in clean if _flagged(r, needed)]
        if not blockers:
            untested = "" if held_out else "; no held-out run has APGD yet, so nothing has tested it"
            return {**choice, "threshold": needed,
                    "reason": f"the largest threshold on the {points(GRID)}-point grid that flags every masked "
                              f"calibration run and no unmasked held-out run{untested}"}
        why = (f"{points(needed)}, the largest threshold that flags every masked calibration run, also flags "
               f"{len(blockers)} unmasked held-out run{'s' * (len(blockers) != 1)} ({', '.join(blockers)})")
    return {**choice, "lowest": needed,
            "reason": f"{why}: the threshold stays, and the monitor does not separate masked from unmasked runs on "
                      "this study"}


def threshold_section(results: dict) -> List[str]:
    """Markdown: the rule, each run's monitor gap against its test drop, the decision (empty until the
    calibration runs have their APGD evaluations)."""
    c = choose_masking_threshold(results)
    if c is None:
        return []
    t = c["threshold"]

    # flagged at the current threshold, and at the chosen one (or, where it stays, at the lowest one tried)
    columns = list(dict.fromkeys(x for x in (CURRENT, t, c.get("lowest")) if x is not None))

    def yes_no(flag):
        return "-" if flag is None else "yes" if flag else "no"

    def rows(runs):
        return [f"| {r['name']} | {points(r['drop'])} | {'yes' if r['masked'] else 'no'} | {points(r['gap'])} | "
                + " | ".join(yes_no(_flagged(r, x)) for x in columns) + f" | {yes_no(_overfit_flagged(r, t))} |"
                for r in runs]
    head = ["| run | PGD-20 - APGD (test) | masked | max PGD-10 - strong (validation) | "
            + " | ".join(f"flagged at {points(x)}" for x in columns) + f" | overfitting flagged at {points(t)} |",
            "|---" * (5 + len(columns)) + "|"]
    caught = [r for r in c["held_out"] if r["masked"]]
    false = [r for r in c["held_out"] if not r["masked"] and _flagged(r, t)]
    every = c["calibration"] + c["held_out"]
    either = [r for r in every if _flagged(r, t) or _overfit_flagged(r, t)]
    wrong = [r for r in either if not r["masked"]]
    return ["## The masking threshold", "",
            f"Rule (regmix/paper/threshold.py, written before the study's APGD was read): a kept checkpoint is masked "
            f"when PGD-20 overstates APGD-CE+T by more than {points(MASKED_DROP)} points on the same test points; the "
            f"monitor's threshold stays {points(CURRENT)} points unless a lower one flags every masked calibration run "
            f"(the main table's {' and '.join(CALIBRATION)}) and no unmasked held-out run (every other run with APGD, "
            f"except {', '.join(SHARED_TRAINING)}, whose training is the calibration runs'); then the largest such "
            f"value on a {points(GRID)}-point grid.", "",
            "Calibration runs:", "", *head, *rows(c["calibration"]), "",
            f"Held-out runs ({len(c['held_out'])} with APGD):", "", *head, *rows(c["held_out"]), "",
            f"Decision by the rule: threshold {points(t)} points ({c['reason']}). Held out: "
            f"{sum(_flagged(r, t) for r in caught)} of {len(caught)} masked runs flagged, {len(false)} unmasked "
            f"runs flagged. Either rule at {points(t)} points (masking or catastrophic overfitting, the trainer's two "
            f"flags), over all {len(every)} runs: {sum(bool(r['masked']) for r in either)} of "
            f"{sum(bool(r['masked']) for r in every)} masked runs flagged, "
            f"{len(wrong)} unmasked runs flagged{' (' + ', '.join(r['name'] for r in wrong) + ')' if wrong else ''}."]
