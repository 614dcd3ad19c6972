"""What a study folder holds and what is done in it: OUT/study.json (the ledger: the plan and the
evaluations finished so far, with their record files), OUT/runs/<run>/ (one RunDir per run) and the
epoch times each run recorded. The runner, the report, the results and the merge all read the folder
through these functions; none of them imports another to do so."""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

from ..checks import in_range, inside, plain_name, read_json
from ..registry import ConfigError
from ..rundir import RunDir

STUDY_FILE = "study.json"


def run_dir(out: Path, run) -> RunDir:
    """The run folder of `run` (a runner.RunTask, or anything with its `name`): OUT/runs/<name>."""
    return RunDir(Path(out) / "runs" / run.name)


def epoch_times(run: RunDir, *, validation: bool = False) -> List[float]:
    """A run's recorded epoch wall times (s), from its metrics.jsonl: training only (its train time), or
    with each epoch's validation and masking monitor added (validation=True: what an epoch costs; epochs
    recorded before the trainer timed validation count its training only)."""
    return [r["epoch_time_s"] + ((r.get("validation_time_s") or 0.0) if validation else 0.0) for r in run.metrics("epoch")
            if isinstance(r.get("epoch_time_s"), (int, float))]


def train_machines(run: RunDir) -> List[str]:
    """The machines a run's epoch times were measured on (training's "machine", in order of first use;
    more than one where it was resumed elsewhere); "not recorded" for epochs trained by code older than the
    field."""
    names = [r.get("machine") or "not recorded" for r in run.metrics("epoch") if "epoch_time_s" in r]
    return list(dict.fromkeys(names))


def read_ledger(out: Path, *, check: bool = True) -> dict:
    """OUT/study.json, or {} where it is missing, not a regular file or not a JSON object. check: every
    record it lists is read where it belongs, OUT/runs/<run>/eval/<its file name> (ledger_record), so
    a moved folder still finds its records and an entry leading elsewhere is refused."""
    try:
        ledger = read_json(Path(out) / STUDY_FILE, "study")
    except ConfigError:
        return {}
    if check and "evals_done" in ledger:
        done = ledger["evals_done"]
        if not isinstance(done, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in done.items()):
            raise ConfigError(f"study: {Path(out) / STUDY_FILE}: evals_done must map 'run/evaluation' keys to record paths")
        ledger["evals_done"] = {key: str(ledger_record(out, key, where)) for key, where in done.items()}
    return ledger


def ledger_record(out, key: str, where: str) -> Path:
    """Where the ledger's record of `key` ('run/evaluation') is: OUT/runs/<run>/eval/<file name of where>,
    resolved and refused (one line) unless it stays inside the study's runs."""
    field = f"study: {Path(out) / STUDY_FILE}: evals_done key {key!r}"
    name = plain_name(key.rpartition("/")[0], field, "run/evaluation with a plain run name")
    file = plain_name(Path(where).name, f"{field}: its record", "a record file name")
    return inside(Path(out) / "runs", Path(name) / RunDir.EVAL / file, field)


def eval_done(task, ledger: dict) -> bool:
    """Whether the evaluation `task` (a runner.EvalTask: its `key`, 'run/evaluation') has its record."""
    record = (ledger.get("evals_done") or {}).get(task.key)
    return bool(record) and Path(record).exists()


def eval_wall_s(task, ledger: dict) -> Optional[float]:
    """The wall time (s) the finished evaluation `task` took, from its record's "wall_s"; None where it is
    not finished or its record does not say (a record that cannot be read is not an error here: the
    estimate then falls back to the suite's cost table)."""
    if not eval_done(task, ledger):
        return None
    try:
        wall = read_json(ledger["evals_done"][task.key], "record").get("wall_s")
    except ConfigError:
        return None
    return float(wall) if in_range(wall, 0, math.inf) else None


def check_folder(out: Path, suite, ledger: dict):
    """A study folder holds one suite in one variant: smoke runs never mix with real ones."""
    if ledger and (ledger.get("suite") != suite.name or bool(ledger.get("smoke")) != suite.smoke):
        raise ConfigError(f"out: {out} holds study {ledger.get('suite')!r}{' (smoke)' if ledger.get('smoke') else ''}; "
                          f"choose another folder for {suite.name!r}{' (smoke)' if suite.smoke else ''}")
