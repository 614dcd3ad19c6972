"""A study's results in one folder, DIR: DIR/results.json (every number of every run: evaluations,
training curve, wall time, diagnostics summaries, each with the record it comes from) and DIR/records/
(copies of those records, so the folder stands alone). viz draws DIR's figures from results.json alone.

The engine gathers the numbers (collect, copy_records) and saves them (save_results); what a study
reads from them (claims, tables) is written by the study's own code between the two, which may add its
entries to results.json: `regmix study --results DIR` runs regmix.paper.results.write_results, the
RegMix paper's. fill_readme then regenerates the generated blocks of DIR/README.md from those tables.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from ..diagnostics import records as diagnostics_records
from ..evaluation.records import load_flags, load_record
from ..files import atomic_write_text
from ..rundir import RunDir
from ..training.monitor import PREFIX, flags_of, monitor_record
from .ledger import epoch_times, read_ledger, run_dir, train_machines
from .runner import plan
from .suite import Suite

RESULTS_FILE = "results.json"


def _curve(rd: RunDir) -> dict:
    """Validation accuracy and training eps per epoch (epochs counted from 1)."""
    rows = [r for r in rd.metrics("epoch") if "val_pgd" in r]
    return {"epoch": [r["epoch"] + 1 for r in rows], "val_pgd": [r["val_pgd"] for r in rows],
            "val_clean": [r["val_clean"] for r in rows], "eps": [r.get("eps") for r in rows]}


def _summaries(rd: RunDir, kinds) -> dict:
    """The summary numbers of the run's diagnostics records (weight landscape, softmax) that tables read."""
    found = {}
    if "weight" in kinds and rd.diagnostic("landscape_weight").exists():
        _, meta = diagnostics_records.load_record(rd.diagnostic("landscape_weight"))
        found["weight"] = {"record": str(rd.diagnostic("landscape_weight")), "grid": meta.get("grid"),
                           "n": meta.get("n"), "attack": meta.get("attack"),
                           "hessian": {k: v.get("eigenvalue") for k, v in (meta.get("hessian") or {}).items()},
                           "sharpness": meta.get("sharpness") or {}}
    if "softmax" in kinds and rd.diagnostic("softmax").exists():
        _, meta = diagnostics_records.load_record(rd.diagnostic("softmax"))
        found["softmax"] = {"record": str(rd.diagnostic("softmax")), "n": meta.get("n"),
                            "summary": meta.get("summary")}
    return found


def _monitor(rd: RunDir, config: dict) -> dict:
    """What the masking monitor (training/monitor.py) saw while the run trained, re-read with today's rule
    from the accuracies its epoch records logged (a run logged under an earlier rule is judged as a run
    today would be): the epochs flagged for gradient masking and for catastrophic overfitting, the largest
    gaps once armed (max_overfit_gap: the largest threshold the overfitting rule would have passed, the
    smaller of its two gaps at the worst epoch), and the epoch each selection (eval.select pgd | strong)
    keeps. {} without a monitor."""
    validated = [r for r in rd.metrics("epoch") if "val_pgd" in r]
    rows = [r for r in validated if f"{PREFIX}pgd" in r]  # the epochs the monitor ran (eval.monitor_every)
    if not rows:
        return {}
    threshold = config["eval"].get("masking_threshold", 0.1)
    warmup = config["train"].get("eps_warmup_epochs") or 0
    peak, masked, overfit, gaps = None, [], [], {"pgd_gap": [], "fgsm_gap": [], "overfit": []}
    for r in rows:
        # the gaps and the drop, unflagged; the flags once, below, where the eps is at its full value
        record = monitor_record({k: r[f"{PREFIX}{k}"] for k in ("pgd", "strong", "fgsm")}, threshold, False, peak)
        peak = r[f"{PREFIX}pgd"] if peak is None else max(peak, r[f"{PREFIX}pgd"])
        if r["epoch"] + 1 < warmup:
            continue
        is_masked, is_overfit = flags_of(record, threshold)
        if is_masked:
            masked.append(r["epoch"] + 1)
        if is_overfit:
            overfit.append(r["epoch"] + 1)
        for key in ("pgd_gap", "fgsm_gap"):
            gaps[key].append(record[f"{PREFIX}{key}"])
        # the overfitting rule's level: flagged at a threshold t exactly when both its gaps exceed t
        gaps["overfit"].append(min(record[f"{PREFIX}fgsm_gap"], record[f"{PREFIX}pgd_drop"]))

    def best_epoch(key, among):  # the trainer's rule: the highest accuracy, clean accuracy breaking ties, first wins
        best = max(among, key=lambda r: (r[key], r["val_clean"], -r["epoch"]))
        return best["epoch"] + 1
    return {"threshold": threshold, "attack": config["eval"].get("monitor_attack", "pgd"),  # the strong attack
            "points": config["eval"].get("monitor_points"), "every": config["eval"].get("monitor_every", 1),
            "masking_epochs": masked, "overfit_epochs": overfit,
            "max_pgd_gap": max(gaps["pgd_gap"], default=None), "max_fgsm_gap": max(gaps["fgsm_gap"], default=None),
            "max_overfit_gap": max(gaps["overfit"], default=None),
            "select_pgd_epoch": best_epoch("val_pgd", validated),
            "select_strong_epoch": best_epoch(f"{PREFIX}strong", rows)}


# the stronger evaluations whose points are a prefix of `whole`'s -> their attack (as the suites name them)
SAME_POINTS = {"apgd": "aa:apgd-ce+apgd-t", "autoattack": "aa"}


def _same_points(records: Dict[str, dict]) -> dict:
    """PGD-20 on exactly the points of each stronger, smaller evaluation (APGD, AutoAttack: the first n
    test digits, in the order of every evaluation, evaluation.run._first_points), from the per-point
    flags: a PGD-to-AutoAttack gap without the difference of the point sets. Used only where both
    records are of the same checkpoint at the same eps and their clean flags agree point for point."""
    whole = records.get("whole")
    w = load_flags(whole) if whole is not None else None
    if not w or "pgd20" not in w:
        return {}
    found = {}
    for name, attack in SAME_POINTS.items():
        other = records.get(name)
        if other is None or (other["checkpoint"], other.get("ema"), other["threat"]) != \
                (whole["checkpoint"], whole.get("ema"), whole["threat"]):
            continue
        f = load_flags(other)
        if not f or attack not in f:
            continue
        n = len(f[attack])
        if n <= len(w["pgd20"]) and np.array_equal(f["clean"], w["clean"][:n]):
            found[name] = {"n": n, "pgd20": float(w["pgd20"][:n].mean()), "attack": float(f[attack].mean())}
    return found


def collect(suite: Suite, out) -> Dict:
    """Every run of the suite (main table and sweeps) that has finished training, with what is done."""
    out = Path(out)
    runs, evals = plan(suite, out, part="all")
    ledger = read_ledger(out)
    done = ledger.get("evals_done") or {}
    entries: List[dict] = []
    for run in runs:
        rd = run_dir(out, run)
        if rd.state() != "complete":
            continue
        config, train_s = rd.read_config(), sum(epoch_times(rd))
        entry = {"name": run.name, "method": run.method, "seed": run.seed, "sweep": run.sweep,
                 "variant": run.variant, "options": config["method"].get("options") or {},
                 "train": {"epochs": config["train"]["epochs"], "ema": config["train"].get("ema"),
                           "eps": config["threat"]["eps"]},
                 "train_s": round(train_s, 2), "train_machines": train_machines(rd), "curve": _curve(rd),
                 # validation and the masking monitor, summed over the epochs that timed them
                 "validation_s": round(sum(epoch_times(rd, validation=True)) - train_s, 2),
                 "best": (rd.status() or {}).get("best"), "evals": {},
                 "summaries": _summaries(rd, run.diagnostics)}
        records = {}
        for task in (t for t in evals if t.run.name == run.name and t.key in done):
            record = records[task.spec.name] = load_record(done[task.key])
            entry["evals"][task.spec.name] = {"accuracy": record["accuracy"], "n": record["n"],
                                              "eps": record["threat"]["eps"], "checkpoint": record["checkpoint"],
                                              "epoch": record.get("epoch"), "wall_s": record.get("wall_s"),
                                              "warnings": record.get("autoattack_warnings") or [],
                                              "record": done[task.key]}
        entry["same_points"] = _same_points(records)
        monitor = _monitor(rd, config)
        if monitor:  # runs trained before the monitor existed keep their entries as they were
            entry["monitor"] = monitor
        entries.append(entry)
    setting = {}
    main = [e for e in entries if not e["sweep"]]
    if main:
        config = run_dir(out, next(r for r in runs if r.name == main[0]["name"])).read_config()
        setting = {"dataset": config["data"]["name"], "model": config["model"], "threat": config["threat"],
                   "epochs": config["train"]["epochs"], "eps_warmup_epochs": config["train"].get("eps_warmup_epochs"),
                   "optim": config["optim"], "schedule": config["schedule"], "batch_size": config["data"]["batch_size"]}
    specs = {e.name: {"attacks": e.attacks, "n": e.n, "seeds": e.seeds, "checkpoint": e.checkpoint,
                      "eps_scale": e.eps_scale} for e in suite.evals}
    return {"suite": suite.name, "smoke": suite.smoke, "suite_file": suite.file.name, "study_folder": str(out),
            "setting": setting, "evals": specs, "seeds": suite.seeds, "runs": entries}


def _as_cited(record, study_folder) -> str:
    """A record's path under the study folder as the command named it (runs/study-mnist5k/runs/...), not
    the machine's absolute path that the ledger resolves to, so the results read the same on any clone."""
    try:
        return str(Path(study_folder) / Path(record).resolve().relative_to(Path(study_folder).resolve()))
    except ValueError:  # a record outside the study folder (never written by `regmix study`)
        return str(record)


def copy_records(results: dict, dest) -> None:
    """Copy every cited record under DEST/records/<run>/ and point `results` (collect's) at the copies;
    `source` keeps where each one came from."""
    dest, study_folder = Path(dest), results["study_folder"]
    records = dest / "records"
    if records.exists():
        shutil.rmtree(records)
    for entry in results["runs"]:
        folder = records / entry["name"]
        folder.mkdir(parents=True, exist_ok=True)
        for name, ev in entry["evals"].items():
            target = folder / f"eval-{name}.json"
            shutil.copyfile(ev["record"], target)
            ev["source"], ev["record"] = _as_cited(ev["record"], study_folder), str(target.relative_to(dest))
        for kind, diag in entry["summaries"].items():
            target = folder / Path(diag["record"]).name
            shutil.copyfile(diag["record"], target)
            diag["source"], diag["record"] = _as_cited(diag["record"], study_folder), str(target.relative_to(dest))
        run = RunDir(Path(study_folder) / "runs" / entry["name"])
        if run.config_path.exists():
            shutil.copyfile(run.config_path, folder / run.config_path.name)
        # the epoch records (the curves come from them); the per-step ones stay in the study folder
        epochs = [json.dumps(r) for r in run.metrics("epoch")]
        atomic_write_text(folder / "metrics_epochs.jsonl", "\n".join(epochs) + "\n")


def save_results(results: dict, dest) -> Path:
    """DEST/results.json."""
    path = Path(dest) / RESULTS_FILE
    atomic_write_text(path, json.dumps(results, indent=1))
    return path


def fill_readme(dest, sources: Sequence[str]) -> None:
    """Replace each `<!-- generated: NAME -->` ... `<!-- end: NAME -->` block of DEST/README.md with the
    section of the markdown files `sources` (in DEST) that NAME names (a heading's text, or a file's
    name for the whole file), so the prose stays and every number in it is regenerated with the tables.
    Nothing happens where DEST has no README.md."""
    dest = Path(dest)
    readme = dest / "README.md"
    if not readme.exists():
        return
    sections = {}
    for source in sources:
        text = (dest / source).read_text() if (dest / source).exists() else ""
        for block in re.split(r"\n(?=#+ )", text):
            heading, _, body = block.partition("\n")
            sections[heading.lstrip("# ").strip()] = body.strip()
        sections[source] = text.strip()

    def replace(match):
        name = match.group(1)
        body = sections.get(name, f"(no section {name!r} in {' or '.join(sources)} yet)")
        return f"<!-- generated: {name} -->\n{body}\n<!-- end: {name} -->"
    text = re.sub(r"<!-- generated: (.+?) -->.*?<!-- end: \1 -->", replace, readme.read_text(), flags=re.S)
    atomic_write_text(readme, text)
