"""Which strong attack should the masking monitor use? Every pair of eval.monitor_attack measured at
every finished run's kept checkpoint (best.pt, the EMA weights where the run kept one) on the monitor's own
validation subset, against what the run's test split says (PGD-20 - APGD-CE+T on the same points).

The monitor measures every epoch; the study's runs were trained with the pgd pair, and only their kept
checkpoints survive, so this compares the pairs where all can still be measured: at the epoch each
run kept. A run is flagged when PGD-10 is more than the threshold above the strong attack; it was masked
when its test drop is above regmix.paper.threshold.MASKED_DROP.

    .venv/bin/python docs/results/monitor_attacks.py runs/study-mnist5k docs/results/monitor_attacks.json
    .venv/bin/python docs/results/monitor_attacks.py runs/study-mnist5k docs/results/monitor_attacks_500.json --points 500

(--points N: the first N validation points instead of each run's eval.monitor_points, 200 in the study; the
mnist5k validation split has 500.)

Writes OUTPUT (JSON: one row per run, then per attack how well its gap ranks masked runs above unmasked
ones (ROC AUC), the runs flagged, the masked runs caught and missed, the unmasked runs flagged; and
`while_training`: each run monitored with another pair while it trained beside its twin monitored with the
pgd pair, regmix.paper.threshold.monitor_twins); resumable (the rows and pairs already in OUTPUT are kept).
CPU: about 15-40 s per run for pgd and apgd, as much again for apgd_t.
"""
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from regmix.attacks import PGD
from regmix.attacks.flags import attack_flags, stack
from regmix.config import MONITOR_ATTACKS, load_config
from regmix.data import create_dataset
from regmix.files import atomic_write_text
from regmix.models.loading import load_model
from regmix.paper.threshold import MASKED_DROP, apgd_drop, masked, monitor_twins
from regmix.runtime import seeded_rng
from regmix.study.results import collect
from regmix.study.suite import load_suite
from regmix.training.monitor import monitor_flags


# the monitor pairs measured together, each group from the run's seed (clean, PGD-10, then its pairs in
# order), so that a group added later (apgd_t, 2026-12-06) leaves the numbers of the earlier ones unchanged
GROUPS = (("pgd", "apgd"), ("apgd_t",))
assert sorted(a for g in GROUPS for a in g) == sorted(MONITOR_ATTACKS), "a monitor pair is not measured"


def measure(run: Path, group, points=None) -> dict:
    """Accuracies (fractions) on the run's monitor subset at its kept checkpoint: clean, PGD-10, and the
    strong attack of each monitor pair of `group`, as the trainer measures them (same subset, threat and
    settings; `points`: the first `points` validation points instead of the run's eval.monitor_points)."""
    c = load_config(run / "config.yaml")
    data = create_dataset(c.data.name, "val", c.data.data_dir, augment=False, val_size=c.data.val_size)
    x, y = stack(DataLoader(Subset(data, range(min(points or c.eval.monitor_points, len(data)))), batch_size=1000))
    model, threat = load_model(run, which="best", ema=bool(c.train.ema)), c.eval_threat()
    found = {"n": len(y)}
    with seeded_rng(c.train.seed, torch.device("cpu")):
        with torch.no_grad():
            clean = model(x).argmax(1) == y
        pgd = attack_flags(model, PGD(model, threat), x, y, clean, batch_size=c.data.eval_batch_size)
        found.update(clean=clean.float().mean().item(), pgd=pgd.float().mean().item())
        for attack in group:
            flags = monitor_flags(model, x, y, clean, pgd, threat, steps=c.eval.monitor_steps,
                                  restarts=c.eval.monitor_restarts, device="cpu",
                                  batch_size=c.data.eval_batch_size, attack=attack)
            found[f"strong_{attack}"] = flags["strong"].float().mean().item()
    return found


def separation(rows, gap) -> float:
    """How well `gap` (a function of a row) ranks masked runs above unmasked ones, whatever the threshold:
    the fraction of (masked, unmasked) pairs whose masked run has the larger gap, ties counting half (ROC
    AUC; 0.5 is chance)."""
    pairs = [(gap(m), gap(u)) for m in rows if m["masked"] for u in rows if not u["masked"]]
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs) if pairs else float("nan")


def judged(rows, gap, threshold) -> dict:
    """Per run flagged (its gap above the threshold) against masked (its test split): what was caught."""
    flagged = {r["name"] for r in rows if gap(r) > threshold}
    return {"separation": separation(rows, gap), "flagged": sorted(flagged),
            "masked_caught": sorted(r["name"] for r in rows if r["masked"] and r["name"] in flagged),
            "masked_missed": sorted(r["name"] for r in rows if r["masked"] and r["name"] not in flagged),
            "unmasked_flagged": sorted(r["name"] for r in rows if not r["masked"] and r["name"] in flagged)}


def summary(rows, threshold):
    """Each monitor pair at the kept checkpoints."""
    return {attack: judged(rows, lambda r, a=attack: r["pgd"] - r[f"strong_{a}"], threshold)
            for attack in MONITOR_ATTACKS}


def while_training_summary(monitored, threshold) -> dict:
    """Per pair monitored while training: both monitors' largest gaps over the armed epochs, same runs."""
    found = {}
    for attack in sorted({r["attack"] for r in monitored}):
        rows = [r for r in monitored if r["attack"] == attack]
        found[attack] = {a: judged(rows, lambda r, a=a: r[a]["max_pgd_gap"] or 0.0, threshold) for a in ("pgd", attack)}
    return found


def main(folder, output, points=None):
    folder, output = Path(folder), Path(output)
    done = {r["name"]: r for r in json.loads(output.read_text())["runs"]} if output.exists() else {}
    results = collect(load_suite("mnist5k"), folder)
    monitored = monitor_twins(results)
    rows = []
    for entry in results["runs"]:
        drop = apgd_drop(entry)
        if drop is None:
            continue
        row = done.setdefault(entry["name"], {"name": entry["name"], "method": entry["method"],
                                              "sweep": entry["sweep"], "test_drop": drop, "masked": masked(entry)})
        for number, group in enumerate(GROUPS):
            if all(f"strong_{a}" in row for a in group):
                continue
            start = time.time()
            row.update(measure(folder / "runs" / entry["name"], group, points))
            row["wall_s" if number == 0 else f"wall_s_{'+'.join(group)}"] = round(time.time() - start, 1)
            print(json.dumps(row), flush=True)
        rows.append(row)
        threshold = load_config(folder / "runs" / entry["name"] / "config.yaml").eval.masking_threshold
        atomic_write_text(output, json.dumps({"command": " ".join(["docs/results/monitor_attacks.py", *sys.argv[1:]]),
                                              "threshold": threshold, "points": points or "eval.monitor_points",
                                              "runs": rows,
                                              "summary": summary(rows, threshold),
                                              "while_training": monitored,
                                              "while_training_summary": while_training_summary(monitored, threshold)},
                                             indent=1) + "\n")


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 4) or (len(args) == 4 and (args[2] != "--points" or not args[3].isdigit()
                                                         or int(args[3]) < 1)):
        sys.exit("usage: monitor_attacks.py STUDY_FOLDER OUTPUT.json [--points N (a positive whole number; "
                 "default: each run's eval.monitor_points)]")
    main(args[0], args[1], int(args[3]) if len(args) == 4 else None)
