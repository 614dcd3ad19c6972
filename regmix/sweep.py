"""Train every combination of a grid of config values and seeds, each in its own run directory.

Runs already complete (status.json) are skipped; any other run folder is resumed (from last.pt, or
started again in place when nothing was trained in it). The sweep folder's lock (FolderLock, flock:
a dead holder's lock is simply taken) keeps two sweeps from writing into the same folder. With jobs > 1 the runs go
to separate processes, each with cores/jobs torch threads, so that they do not oversubscribe.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
import yaml

from .checks import check_number
from .config import dotted_get, load_config, resolved_dict
from .evaluation.records import load_record
from .files import atomic_write_text
from .lock import FolderLock
from .progress import progress_bar
from .registry import ConfigError
from .rundir import RunDir
from .trainer import train

LOCK_NAME = FolderLock.NAME
SECTIONS = ("data", "model", "threat", "method", "optim", "schedule", "eval", "train")


class SweepFailed(RuntimeError):
    pass


def parse_grid(items: Sequence[str]) -> Dict[str, list]:
    """['alpha=0.5,1', 'optim.lr=0.1,0.01'] -> {'method.options.alpha': [0.5, 1], 'optim.lr': [...]}.

    A key without a dot is a method option (the weights being swept are); values are read as YAML.
    """
    grid = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"--grid: expected key=v1,v2,..., got {item!r}")
        key, raw = (s.strip() for s in item.split("=", 1))
        if not key:
            raise ConfigError(f"--grid: missing key in {item!r}")
        if "." not in key:
            key = f"method.options.{key}"
        elif key.split(".")[0] not in SECTIONS:
            raise ConfigError(f"--grid: {key!r} is not a config key; use SECTION.KEY with SECTION one of "
                              f"{', '.join(SECTIONS)}, or a bare method option such as alpha")
        values = [_value(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ConfigError(f"--grid: no values for {key!r}")
        if key in grid:
            raise ConfigError(f"--grid: {key!r} is given twice")
        grid[key] = values
    return grid


def _value(text: str):
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:  # YAML 1.1 reads 1e-3 as a string
            return float(value)
        except ValueError:
            pass
    return value


def parse_seeds(text) -> List[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: expected integers separated by commas, e.g. 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: expected distinct integers, e.g. 0,1,2, got {text!r}")
    return seeds


def _token(value) -> str:
    text = str(value).replace("/", "over")
    return re.sub(r"[^A-Za-z0-9.+-]", "_", text)


@dataclass
class SweepRun:
    name: str
    values: dict            # grid key -> value
    seed: int
    overrides: List[str] = field(default_factory=list)


def plan(grid: Dict[str, list], seeds: Sequence[int]) -> List[SweepRun]:
    """Every combination; names like alpha0.5_beta1_seed0 (a key's last part, or its full path when
    two keys share the last part)."""
    short = {k: k.split(".")[-1] for k in grid}
    if len(set(short.values())) != len(short):
        short = {k: k.replace(".", "-") for k in grid}
    runs = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        for seed in seeds:
            name = "_".join([f"{short[k]}{_token(v)}" for k, v in values.items()] + [f"seed{seed}"])
            overrides = [f"{k}={json.dumps(v)}" for k, v in values.items()] + [f"train.seed={seed}", f"name={name}"]
            runs.append(SweepRun(name, values, seed, overrides))
    return runs


def run_state(run_dir: Path) -> str:
    """RunDir.state(): complete, running, stopped, failed, interrupted or new."""
    return RunDir(run_dir).state()


def sweep_lock(out_dir: Path) -> FolderLock:
    """OUT_DIR/.lock: one sweep writes a sweep folder at a time."""
    return FolderLock(out_dir, field="--out-dir", what="sweep")


# ---------------------------------------------------------------- running


def _train_one(config_path: str, overrides: List[str], resume: bool, threads: int) -> str:
    """One run, in this process or a worker. Returns the run directory."""
    if threads:
        torch.set_num_threads(threads)
    return str(train(load_config(config_path, overrides), resume=resume))


def sweep(config_path, grid: Dict[str, list], seeds: Sequence[int] = (0,), *, out_dir=None, jobs: int = 1,
          progress: bool = False, extra_overrides: Sequence[str] = (), log=print,
          outer_progress: Optional[bool] = None) -> List[dict]:
    """Train every (grid combination, seed); returns one row per run with its outcome:
    'skipped' (already complete), 'resumed', 'trained' or 'failed' (with the error).
    progress: each run's training bar (one job only); outer_progress: the bar over the runs
    (regmix.progress.progress_bar: None shows it in a terminal or notebook only)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs: must be an integer >= 1, got {jobs}")
    check_number("--jobs", jobs, 1, 256, integer=True)
    base = load_config(config_path, list(extra_overrides))
    out_dir = Path(out_dir) if out_dir is not None else Path(base.out_dir) / f"sweep-{base.name}"
    runs = plan(grid, seeds)
    for run in runs:  # every combination is validated before anything trains
        run.overrides = [*extra_overrides, f"out_dir={out_dir}", *([] if progress and jobs == 1 else
                                                                  ["train.progress=false"]), *run.overrides]
        load_config(config_path, run.overrides)
    rows = []
    with sweep_lock(out_dir):
        atomic_write_text(out_dir / "sweep.json", json.dumps(
            {"kind": "sweep", "version": 1, "config": str(config_path), "grid": grid, "seeds": list(seeds),
             "overrides": list(extra_overrides),
             "runs": [{"name": r.name, "values": r.values, "seed": r.seed} for r in runs]}, indent=1))
        todo = []
        for run in runs:
            run_dir = RunDir(out_dir / run.name)
            state = run_dir.state()
            row = {"name": run.name, "values": run.values, "seed": run.seed, "run_dir": str(out_dir / run.name)}
            if state == "complete":
                rows.append({**row, "outcome": "skipped"})
                log(f"[sweep] {run.name}: complete, skipped")
            else:
                todo.append((run, row, run_dir.is_run()))
        threads = max(1, (os.cpu_count() or 1) // int(jobs))
        # the sweep's own bar over its runs (progress=True above is each run's training bar)
        bar = progress_bar(len(todo), f"sweep {out_dir.name}", outer_progress, unit="run")
        if int(jobs) == 1:
            for run, row, resume in todo:
                rows.append(_finish(row, resume, lambda: _train_one(str(config_path), run.overrides, resume, 0), log))
                bar.update(1)
        else:
            # spawn, not fork: a forked child inherits the parent's torch thread pool in an unusable state
            with ProcessPoolExecutor(max_workers=int(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [(pool.submit(_train_one, str(config_path), run.overrides, resume, threads), row, resume)
                           for run, row, resume in todo]
                for future, row, resume in futures:
                    rows.append(_finish(row, resume, future.result, log))
                    bar.update(1)
        bar.close()
    order = {r.name: i for i, r in enumerate(runs)}
    rows.sort(key=lambda r: order[r["name"]])
    return rows


def _finish(row, resume, result, log):
    try:
        result()
    except Exception as err:  # one bad run does not stop the others
        log(f"[sweep] {row['name']}: failed: {err}")
        return {**row, "outcome": "failed", "error": f"{type(err).__name__}: {err}"}
    outcome = "resumed" if resume else "trained"
    log(f"[sweep] {row['name']}: {outcome}")
    return {**row, "outcome": outcome}


# ---------------------------------------------------------------- reading results


def _eval_accuracy(run_dir: Path):
    """The newest evaluation record's accuracy (fractions), preferring the best checkpoint."""
    records = []
    eval_dir = RunDir(run_dir).eval_dir
    for path in sorted(eval_dir.glob("*.json")) if eval_dir.is_dir() else []:
        try:
            records.append(load_record(path))
        except ConfigError:  # not a readable evaluation record: not a result
            continue
    if not records:
        return None
    records.sort(key=lambda r: (r.get("checkpoint") == "best", r.get("n", 0), r.get("created", "")))
    return records[-1]


def run_results(run_dir) -> dict:
    """What a heatmap needs from one run: its config values and accuracies, from the evaluation
    record when there is one, else the best validation accuracy (source says which)."""
    run = RunDir(run_dir)
    out = {"run_dir": str(run.path), "name": run.path.name, "config": run.read_config(), "state": run.state()}
    record = _eval_accuracy(run.path)
    if record is not None:
        out.update(source="eval", accuracy=dict(record["accuracy"]), n=record.get("n"),
                   checkpoint=record.get("checkpoint"))
        return out
    best = (run.status() or {}).get("best", {})
    if best.get("epoch", -1) < 0:
        epochs = [r for r in run.metrics("epoch") if "val_pgd" in r]
        best = max(epochs, key=lambda r: (r["val_pgd"], r["val_clean"]), default={})
    acc = {k: best[f"val_{k}"] for k in ("clean", "pgd") if f"val_{k}" in best}
    out.update(source="validation" if acc else "none", accuracy=acc, n=None, checkpoint="best")
    return out


def collect(out_dir, keys=("method.options.alpha", "method.options.beta")) -> List[dict]:
    """run_results of every run directory under a sweep folder, with the swept keys' values.

    A run whose config leaves a key at the method's default gets that default (from the method)."""
    out_dir = Path(out_dir)
    rows = []
    # RUN.old-<time> folders are runs that --overwrite moved aside, not part of the sweep
    for run_dir in sorted(p for p in out_dir.iterdir() if RunDir(p).config_path.exists() and ".old-" not in p.name):
        res = run_results(run_dir)
        for key in keys:
            value = dotted_get(res["config"], key)
            if value is None and key.startswith("method.options."):
                # a run written before config.yaml held every default: resolved as the trainer does
                value = dotted_get(resolved_dict(res["config"]), key)
            res[key] = value
        rows.append(res)
    return rows
