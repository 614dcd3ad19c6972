"""A study's results in one file: `regmix study SUITE --results DIR` writes DIR/results.json (every
number of every run: evaluations, training curve, wall time, diagnostics summaries, each with the
record it comes from), DIR/records/ (copies of those records, so the folder stands alone), and
DIR/claims.md + DIR/tables.md (claims.py). viz draws DIR's figures from results.json alone.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Dict, List

from ..files import atomic_write_text
from ..evaluation.records import load_flags, load_record
from ..rundir import RunDir
from .runner import epoch_times, plan, read_ledger, run_dir
from .suite import Suite

RESULTS_FILE = "results.json"


def _curve(rd: RunDir) -> dict:
    """Validation accuracy and training eps per epoch (epochs counted from 1)."""
    rows = [r for r in rd.metrics("epoch") if "val_pgd" in r]
    return {"epoch": [r["epoch"] + 1 for r in rows], "val_pgd": [r["val_pgd"] for r in rows],
            "val_clean": [r["val_clean"] for r in rows], "eps": [r.get("eps") for r in rows]}


def _summaries(rd: RunDir, kinds) -> dict:
    """The numbers the claims use from the run's diagnostics records (weight landscape, softmax)."""
    from ..diagnostics.records import load_record
    found = {}
    if "weight" in kinds and rd.diagnostic("landscape_weight").exists():
        _, meta = load_record(rd.diagnostic("landscape_weight"))
        found["weight"] = {"record": str(rd.diagnostic("landscape_weight")), "grid": meta.get("grid"),
                           "n": meta.get("n"), "attack": meta.get("attack"),
                           "hessian": {k: v.get("eigenvalue") for k, v in (meta.get("hessian") or {}).items()},
                           "sharpness": meta.get("sharpness") or {}}
    if "softmax" in kinds and rd.diagnostic("softmax").exists():
        _, meta = load_record(rd.diagnostic("softmax"))
        found["softmax"] = {"record": str(rd.diagnostic("softmax")), "n": meta.get("n"),
                            "summary": meta.get("summary")}
    return found


# the stronger evaluations whose points are a prefix of `whole`'s -> their attack (as claims.METRICS reads them)
SAME_POINTS = {"apgd": "aa:apgd-ce+apgd-t", "autoattack": "aa"}


def _same_points(records: Dict[str, dict]) -> dict:
    """PGD-20 on exactly the points of each stronger, smaller evaluation (APGD, AutoAttack: the first n
    test digits, in the order of every evaluation, evaluation.run._first_points), from the per-point
    flags: a PGD-to-AutoAttack gap without the difference of the point sets. Used only where both
    records are of the same checkpoint at the same eps and their clean flags agree point for point."""
    import numpy as np
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
        config = rd.read_config()
        entry = {"name": run.name, "method": run.method, "seed": run.seed, "sweep": run.sweep,
                 "variant": run.variant, "options": config["method"].get("options") or {},
                 "train": {"epochs": config["train"]["epochs"], "ema": config["train"].get("ema"),
                           "eps": config["threat"]["eps"]},
                 "train_s": round(sum(epoch_times(rd)), 2), "curve": _curve(rd),
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


def _copy_records(results: dict, dest: Path) -> None:
    """Copy every cited record under DEST/records/<run>/ and point results.json at the copies."""
    records = dest / "records"
    if records.exists():
        shutil.rmtree(records)
    for entry in results["runs"]:
        folder = records / entry["name"]
        folder.mkdir(parents=True, exist_ok=True)
        for name, ev in entry["evals"].items():
            target = folder / f"eval-{name}.json"
            shutil.copyfile(ev["record"], target)
            ev["source"], ev["record"] = ev["record"], str(target.relative_to(dest))
        for kind, diag in entry["summaries"].items():
            target = folder / Path(diag["record"]).name
            shutil.copyfile(diag["record"], target)
            diag["source"], diag["record"] = diag["record"], str(target.relative_to(dest))
        run = RunDir(Path(results["study_folder"]) / "runs" / entry["name"])
        if run.config_path.exists():
            shutil.copyfile(run.config_path, folder / run.config_path.name)
        # the epoch records (the curves come from them); the per-step ones stay in the study folder
        epochs = [json.dumps(r) for r in run.metrics("epoch")]
        atomic_write_text(folder / "metrics_epochs.jsonl", "\n".join(epochs) + "\n")


def write_results(suite: Suite, out, dest, *, command: str = "") -> Path:
    """DEST/results.json, DEST/records/, DEST/tables.md and DEST/claims.md from study folder OUT, and
    the generated blocks of DEST/README.md (claims.fill_readme) when it exists."""
    from .claims import evaluate_claims, fill_readme, write_claims, write_tables
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    results = collect(suite, out)
    results["command"] = command
    _copy_records(results, dest)
    results["claims"] = evaluate_claims(results)
    path = dest / RESULTS_FILE
    atomic_write_text(path, json.dumps(results, indent=1))
    write_tables(results, dest)
    write_claims(results, dest)
    fill_readme(dest)
    return path
