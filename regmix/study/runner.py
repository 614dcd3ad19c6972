"""`regmix study SUITE`: every method x seed of a suite trained from its recipes, evaluated, reported.

A suite is data, not code: configs/study/<suite>.yaml names the recipe of each method, the seeds, the
evaluations (attacks, points, which seeds), a cost table for the estimate, a `smoke` variant, and sweeps
(a grid of options, or named variants such as ablations) run with part='sweeps' or 'all'. OUT holds:

    OUT/.lock          one study writes a folder at a time (FolderLock)
    OUT/study.json     the plan and the evaluations finished so far (with their record files; ledger.py)
    OUT/runs/<method>-seed<k>/   one run directory per method and seed (RunDir)
    OUT/sweeps/<sweep>/          a symlink per finished run of that sweep (a sweep folder)
    OUT/report.md      tables of the main runs and the sweeps (report.py)

It can be stopped at any moment and started again: complete runs are skipped, interrupted ones resumed
from last.pt (or, where nothing can be continued, moved aside and started again), and an evaluation
whose record exists is not repeated.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from ..config import load_config
from ..diagnostics import compute
from ..evaluation.run import evaluate_run
from ..files import atomic_write_text
from ..lock import FolderLock
from ..progress import progress_bar
from ..registry import ConfigError, suggest
from ..runtime import resolve_device
from ..trainer import train as train_run
from .ledger import STUDY_FILE, check_folder, epoch_times, eval_done, eval_wall_s, read_ledger, run_dir
from .report import duration as _duration, write_report
from .suite import EvalSpec, Suite, check_seeds, sweep_points

PARTS = ("main", "sweeps", "all")


def after_work(key: str, outcome: str) -> None:
    """Called by run_study after each piece of work it did (a training, an evaluation or a diagnostics
    record; not after one it skipped), with the piece's key ('run', 'run/evaluation', 'run/record') and
    its outcome. It does nothing: a test replaces it (monkeypatch) with one that raises, to stop the
    study at a chosen point as an interruption would, and checks that the next start resumes there."""


@dataclass
class RunTask:
    method: str
    seed: int
    name: str
    recipe: Path
    overrides: List[str]
    sweep: str = ""          # the sweep it belongs to ("" for the main table)
    variant: str = ""        # its grid point or named variant within the sweep
    diagnostics: tuple = ()  # the suite's diagnostics records it gets (main runs: all; sweeps: as listed)


@dataclass
class EvalTask:
    run: RunTask
    spec: EvalSpec

    @property
    def key(self) -> str:
        return f"{self.run.name}/{self.spec.name}"


def plan(suite: Suite, out: Path, methods: Optional[Sequence[str]] = None,
         seeds: Optional[Sequence[int]] = None, part: str = "main", sweeps: Optional[Sequence[str]] = None) -> tuple:
    """(runs, evals) of the main table ('main'), the suite's sweeps ('sweeps') or both ('all'); every
    run's config is loaded and validated here, before any work. sweeps: only these of the suite's sweeps,
    in this order (default: all of them, in the suite's order)."""
    if part not in PARTS:
        raise ConfigError(f"part: must be one of {', '.join(PARTS)}, got {part!r}")
    for name in sweeps or ():
        if name not in suite.sweeps:
            raise ConfigError(f"sweeps: {name!r} is not a sweep of suite {suite.name}{suggest(name, suite.sweeps)}; "
                              f"it has {', '.join(suite.sweeps) or 'none'}")
    methods = list(suite.recipes) if not methods else list(methods)
    for m in methods:
        if m not in suite.recipes:
            raise ConfigError(f"methods: {m!r} is not in suite {suite.name}{suggest(m, suite.recipes)}; "
                              f"it has {', '.join(suite.recipes)}")
    seeds = list(suite.seeds) if not seeds else list(seeds)
    runs, evals = [], []

    def add(method, sweep, variant, extra, run_seeds, specs, diagnostics):
        for i, seed in enumerate(run_seeds):
            name = "-".join(filter(None, [method, sweep, variant, f"seed{seed}"]))
            overrides = [*suite.overrides, *extra, f"out_dir={Path(out) / 'runs'}", f"name={name}",
                         f"train.seed={seed}", f"train.device={suite.device}", "train.progress=false"]
            load_config(suite.recipes[method], overrides)
            run = RunTask(method, seed, name, suite.recipes[method], overrides, sweep, variant, tuple(diagnostics))
            runs.append(run)
            evals.extend(EvalTask(run, e) for e in specs if e.seeds == "all" or i == 0)

    if part in ("main", "all"):
        for method in methods:
            add(method, "", "", [], seeds, suite.evals, suite.diagnostics)
    if part in ("sweeps", "all"):
        for sweep in (sweeps or suite.sweeps):
            entry = suite.sweeps[sweep]
            if entry["method"] not in methods:
                continue
            named = entry.get("evals")  # absent: every evaluation of the suite; [] none (training only)
            specs = list(suite.evals) if named is None else [e for e in suite.evals if e.name in named]
            sweep_seeds = check_seeds(entry["seeds"], f"sweeps.{sweep}.seeds") if "seeds" in entry else seeds
            for variant, extra in sweep_points(suite, sweep, entry, f"sweeps.{sweep}"):
                add(entry["method"], sweep, variant, extra, sweep_seeds, specs,
                    [k for k in entry.get("diagnostics") or [] if k in suite.diagnostics])
    return runs, evals


# ---------------------------------------------------------------- what is left, what it costs


def estimate(suite: Suite, out: Path, runs, evals, ledger) -> dict:
    """Seconds still to spend, each from the closest measurement in this study folder (any run or evaluation
    of the suite there, planned now or not): training from the epoch times (validation and the masking
    monitor included) of runs trained alike (same method, sweep and variant: another seed), else of its
    method's main-table runs (its recipe as written: a variant that changes the cost, a 5-step attack or
    a wider model, is then underestimated until one of its runs has epochs), else the suite's cost table;
    an evaluation from the wall times of the same evaluation finished on runs trained alike, else on its
    method's main-table runs, else the table; diagnostics from the table."""
    def kind(run):  # runs trained alike: the same but for the seed
        return run.method, run.sweep, run.variant
    # measured anywhere in the folder: every run and evaluation of the suite, not only those planned now
    every_run, every_eval = plan(suite, out, part="all")
    pool_runs = list({r.name: r for r in [*every_run, *runs]}.values())
    pool_evals = list({t.key: t for t in [*every_eval, *evals]}.values())
    times = {run.name: epoch_times(run_dir(out, run), validation=True) for run in pool_runs}
    alike: Dict[tuple, List[float]] = {}
    by_method: Dict[str, List[float]] = {}
    for run in pool_runs:
        alike.setdefault(kind(run), []).extend(times[run.name])
        by_method.setdefault(run.method, []).extend(times[run.name] if not run.sweep else [])  # its recipe as written
    train_s = 0.0
    sources = set()
    todo_runs = [r for r in runs if run_dir(out, r).state() != "complete"]
    for run in todo_runs:
        epochs = load_config(run.recipe, run.overrides).train.epochs
        done = len(times[run.name])
        measured = alike[kind(run)] or by_method[run.method]
        if measured:
            train_s += sum(measured) / len(measured) * max(epochs - done, 0)
            sources.add("measured epoch times" if alike[kind(run)] else "its method's epoch times")
        else:
            # the table prices a run of the recipe as written; a variant with more epochs costs more
            base = load_config(run.recipe, suite.overrides).train.epochs
            train_s += float((suite.cost.get("train") or {}).get(run.method, 0)) * max(epochs - done, 0) / max(base, 1)
            sources.add("cost table")
    walls = {task.key: eval_wall_s(task, ledger) for task in pool_evals}
    eval_alike: Dict[tuple, List[float]] = {}
    eval_by_method: Dict[tuple, List[float]] = {}
    for task in pool_evals:
        if walls[task.key] is not None:
            eval_alike.setdefault((*kind(task.run), task.spec.name), []).append(walls[task.key])
            if not task.run.sweep:
                eval_by_method.setdefault((task.run.method, task.spec.name), []).append(walls[task.key])
    todo_evals = [e for e in evals if not eval_done(e, ledger)]
    eval_s = 0.0
    for task in todo_evals:
        measured = (eval_alike.get((*kind(task.run), task.spec.name))
                    or eval_by_method.get((task.run.method, task.spec.name)))
        if measured:
            eval_s += sum(measured) / len(measured)
            sources.add("measured evaluation times")
        else:
            eval_s += float((suite.cost.get("eval") or {}).get(task.spec.name, 0))
            sources.add("cost table")
    todo_records = [kind for r in runs for kind in r.diagnostics
                    if not compute.default_path(run_dir(out, r).path, kind).exists()]
    eval_s += sum(float((suite.cost.get("diagnostics") or {}).get(kind, 0)) for kind in todo_records)
    if todo_records:
        sources.add("cost table")
    return {"runs": len(runs), "evals": len(evals), "todo_runs": len(todo_runs), "todo_evals": len(todo_evals),
            "train_s": train_s, "eval_s": eval_s, "sources": sorted(sources)}


def describe(suite: Suite, out: Path, runs, evals, cost) -> str:
    main = [r for r in runs if not r.sweep]
    methods, seeds = list(dict.fromkeys(r.method for r in main)), list(dict.fromkeys(r.seed for r in main))
    specs = {e.name: e for e in suite.evals}
    counts = {name: sum(1 for t in evals if t.spec.name == name) for name in specs}
    sweeps = {w: sum(1 for r in runs if r.sweep == w) for w in dict.fromkeys(r.sweep for r in runs if r.sweep)}
    lines = [f"study {suite.name}{' (smoke)' if suite.smoke else ''} -> {out}",
             f"  {cost['runs']} runs on device {suite.device}: "
             + "; ".join(([f"{len(methods)} methods ({', '.join(methods)}) x {len(seeds)} seeds "
                           f"({', '.join(map(str, seeds))})"] if main else [])
                         + [f"sweep {w}: {n} runs" for w, n in sweeps.items()]),
             f"  {cost['evals']} evaluations" + (": " + ", ".join(f"{name} {count} ({specs[name].attacks}, "
                                                                   f"n={specs[name].n or 'all'})"
                                                                   for name, count in counts.items() if count)
                                                 if cost["evals"] else " (training only)"),
             f"  still to do: {cost['todo_runs']} runs, {cost['todo_evals']} evaluations",
             f"  expected cost: about {_duration(cost['train_s'] + cost['eval_s'])} (training "
             f"{_duration(cost['train_s'])}, evaluation {_duration(cost['eval_s'])}); an ESTIMATE from "
             f"{' and '.join(cost['sources']) or 'nothing left to do'} ({suite.file.name}), not a measurement of this machine"]
    return "\n".join(lines)


# ---------------------------------------------------------------- running


def _train(run: RunTask, out: Path, log):
    rd = run_dir(out, run)
    state = rd.state()
    if state == "complete":
        log(f"[study] {run.name}: complete, skipped")
        return "skipped"
    config = load_config(run.recipe, run.overrides)
    if not rd.is_run():
        log(f"[study] {run.name}: training")
        train_run(config)
        return "trained"
    if rd.checkpoint("last").exists():
        log(f"[study] {run.name}: {state}, resuming from last.pt")
        train_run(config, resume=True)
        return "resumed"
    # nothing to continue from (stopped before its first checkpoint): the old folder is kept aside
    log(f"[study] {run.name}: {state} without last.pt, starting again (the old folder is moved aside)")
    train_run(config, overwrite=True)
    return "restarted"


def _evaluate(task: EvalTask, out: Path, ledger: dict, device, log) -> str:
    if eval_done(task, ledger):
        log(f"[study] {task.key}: record exists, skipped")
        return "skipped"
    log(f"[study] {task.key}: evaluating ({task.spec.attacks}, n={task.spec.n or 'all'})")
    eps = None
    if task.spec.eps_scale != 1:
        eps = load_config(task.run.recipe, task.run.overrides).eval_threat().eps * task.spec.eps_scale
    record = evaluate_run(str(run_dir(out, task.run).path), attacks=task.spec.attacks, n=task.spec.n, eps=eps,
                          which=task.spec.checkpoint, device=device, sanity=task.spec.sanity, log=log,
                          progress=False)
    ledger.setdefault("evals_done", {})[task.key] = record["_path"]
    atomic_write_text(Path(out) / STUDY_FILE, json.dumps(ledger, indent=1))
    return "evaluated"


def link_sweeps(out: Path, runs) -> None:
    """OUT/sweeps/<sweep>/<run name>: a symlink to each finished run of each sweep, so that a sweep is a
    folder of runs like `regmix sweep` writes (the explorers' and `regmix figures`' alpha x beta input)."""
    for run in runs:
        if not run.sweep or not run_dir(out, run).is_complete():
            continue
        link = Path(out) / "sweeps" / run.sweep / run.name
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path("..") / ".." / "runs" / run.name)


def _diagnose(run: RunTask, out: Path, suite: Suite, device, log) -> Iterator[tuple]:
    """The diagnostics records of one run (run.diagnostics), computed where missing, one at a time:
    yields (key, outcome, when it began; None where skipped)."""
    makers = {"weight": compute.weight_landscape_record, "softmax": compute.softmax_run_record}
    for kind in run.diagnostics:
        options = suite.diagnostics[kind]
        path, key = compute.default_path(run_dir(out, run).path, kind), f"{run.name}/{kind}"
        if path.exists():
            yield key, "skipped", None
            continue
        log(f"[study] {key}: computing the {kind} record ({options})")
        began = time.time()
        makers[kind](run_dir(out, run).path, device=device, out=path, **options)
        yield key, "diagnosed", began


def run_study(suite: Suite, out, *, methods=None, seeds=None, part: str = "main", evals=None, dry_run: bool = False,
              log: Callable = print, progress: Optional[bool] = None,
              eval_device: Optional[str] = None, train: bool = True, sweeps=None) -> dict:
    """Plan, state the cost, then train, evaluate and report what is not done yet. part: main|sweeps|all.
    evals: names of the suite's evaluations to run now (default: all of them). progress: a bar over the
    runs (regmix.progress.progress_bar: None shows it in a terminal or notebook only).
    eval_device: where evaluations and diagnostics run (default: the suite's device); training stays on
    the suite's device, so a CPU suite's finished runs can be evaluated on a GPU (see merge_evals). Each
    record states the device it ran on. train=False: train nothing; a run that is not complete is
    skipped with its evaluations (a copy of the folder evaluated elsewhere holds only some runs).
    dry_run: print the plan and cost only, write nothing. After each piece of work done (not skipped)
    it calls after_work(key, outcome).
    sweeps: names of the suite's sweeps to run (with part sweeps or all), in that order (default: all).
    Returns {'plan': cost summary, 'outcomes': {key: trained|resumed|restarted|skipped|untrained|evaluated},
    'report': path}.
    """
    out = Path(out)
    only = evals
    if eval_device:  # checked before any work, as every argument
        try:
            resolve_device(eval_device)
        except (ConfigError, RuntimeError) as err:
            raise ConfigError(f"eval_device: {str(err).partition(': ')[2] or err}") from None
    runs, evals = plan(suite, out, methods, seeds, part, sweeps)
    if only is not None:  # a subset of the evaluations now (the cheap ones first, say); the rest later
        names = [e.name for e in suite.evals]
        for name in only:
            if name not in names:
                raise ConfigError(f"evals: {name!r} is not an evaluation of suite {suite.name}{suggest(name, names)}; "
                                  f"it has {', '.join(names)}")
        evals = [e for e in evals if e.spec.name in only]
    ledger = read_ledger(out)
    check_folder(out, suite, ledger)
    cost = estimate(suite, out, runs, evals, ledger)
    log(describe(suite, out, runs, evals, cost))
    if eval_device:
        log(f"  evaluations and diagnostics on device {eval_device} (training on {suite.device})")
    if dry_run:
        return {"plan": cost, "outcomes": {}, "report": None}
    device = resolve_device(eval_device or suite.device)
    outcomes: Dict[str, str] = {}

    def count(key, outcome, began=None):
        outcomes[key] = outcome
        if outcome != "skipped":
            if began is not None:  # what each piece took (where a GPU run's minutes go)
                log(f"[study] {key}: {outcome} in {time.time() - began:.1f} s")
            after_work(key, outcome)

    start = time.time()
    with FolderLock(out, field="out", what="study"):
        ledger = read_ledger(out)
        check_folder(out, suite, ledger)
        ledger.update({"kind": "study", "version": 1, "suite": suite.name, "smoke": suite.smoke,
                       "suite_file": str(suite.file), "evals_done": ledger.get("evals_done", {})})
        ledger[f"plan_{part}"] = {"runs": [r.name for r in runs], "evals": [e.key for e in evals]}
        atomic_write_text(out / STUDY_FILE, json.dumps(ledger, indent=1))
        bar = progress_bar(len(runs), f"study {suite.name}", progress, unit="run")
        for run in runs:
            bar.set_postfix_str(run.name)
            if not train and not run_dir(out, run).is_complete():
                log(f"[study] {run.name}: not trained in this folder; skipped with its evaluations (train=False)")
                outcomes[run.name] = "untrained"
                bar.update(1)
                continue
            began = time.time()
            count(run.name, _train(run, out, log), began)
            for task in (e for e in evals if e.run is run):
                began = time.time()
                count(task.key, _evaluate(task, out, ledger, device, log), began)
            for key, outcome, began in _diagnose(run, out, suite, device, log):
                count(key, outcome, began)
            bar.update(1)
        bar.close()
        everything = plan(suite, out, methods, seeds, "all")
        link_sweeps(out, everything[0])
        report = write_report(out, suite, *everything, ledger)
    log(f"[study] done in {_duration(time.time() - start)}; report: {report}")
    return {"plan": cost, "outcomes": outcomes, "report": str(report)}
