"""The mnist5k study folder kept in the repository without its checkpoints, so that it outlives the machine
that ran it: `--results` regenerates every table, claim and figure from a clean clone, and a study
stopped on one machine goes on on another where it stopped.

    .venv/bin/python docs/results/keep_study.py save runs/study-mnist5k docs/results/study
    .venv/bin/python docs/results/keep_study.py restore docs/results/study runs/study-mnist5k

save: every run of the suite that is finished (complete, every evaluation of its plan recorded, every
diagnostics record written) is copied to KEPT/runs/<run>/ without best.pt, last.pt and its lock; a run
that still needs a checkpoint is left out (it is trained again, or resumed, where its folder is).
KEPT/study.json is the ledger with the evaluations of the kept runs only. Nothing else is changed.
restore: KEPT's runs are copied into OUT where OUT does not hold them yet (a run OUT holds is left as it
is), and the ledger's evaluations are added to OUT's. `regmix study` then skips the kept runs and their
evaluations, and `--results` reads them as it reads any run.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from regmix.diagnostics.compute import default_path
from regmix.files import atomic_write_text
from regmix.registry import ConfigError
from regmix.rundir import RunDir
from regmix.study.ledger import STUDY_FILE, check_folder, eval_done, ledger_record, read_ledger, run_dir
from regmix.study.runner import plan
from regmix.study.suite import load_suite

LEFT_OUT = {RunDir.BEST, RunDir.LAST, ".lock"}


def finished(out: Path, suite):
    """The runs of the suite's whole plan (main and every sweep) that no longer need a checkpoint, and
    the ledger entries of their evaluations."""
    ledger = read_ledger(out)
    runs, evals = plan(suite, out, part="all")
    keep, done = [], {}
    for run in runs:
        mine = [task for task in evals if task.run is run]
        if (run_dir(out, run).is_complete() and all(eval_done(task, ledger) for task in mine)
                and all(default_path(run_dir(out, run).path, kind).exists() for kind in run.diagnostics)):
            keep.append(run.name)
            done.update({task.key: Path(ledger["evals_done"][task.key]).name for task in mine})
    return keep, done, ledger


def copy_run(source: Path, dest: Path) -> None:
    """A run folder's files and subfolders (eval/, diagnostics/) but its checkpoints and lock."""
    for path in sorted(source.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.name not in LEFT_OUT:
            target = dest / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def save(out: Path, kept: Path, suite) -> int:
    keep, done, ledger = finished(out, suite)
    for name in keep:  # copied again each time: a finished run still gains records (a suite's new diagnostics)
        copy_run(out / "runs" / name, kept / "runs" / name)
    stored = {key: value for key, value in ledger.items() if not key.startswith("plan_")}
    stored.update(evals_done=dict(sorted(done.items())), suite_file=Path(ledger.get("suite_file", "")).name)
    atomic_write_text(kept / STUDY_FILE, json.dumps(stored, indent=1) + "\n")
    print(f"kept {len(keep)} finished runs ({len(done)} evaluations) in {kept}")
    return 0


def restore(kept: Path, out: Path, suite) -> int:
    theirs = read_ledger(kept, check=False)
    if not theirs:
        raise ConfigError(f"kept: {kept} holds no {STUDY_FILE}")
    check_folder(kept, suite, theirs)
    ours = read_ledger(out)
    check_folder(out, suite, ours)
    added = 0
    for source in sorted((kept / "runs").iterdir()):
        if not (out / "runs" / source.name).exists():
            copy_run(source, out / "runs" / source.name)
            added += 1
    ledger = ours or {key: value for key, value in theirs.items() if key != "evals_done"}
    merged = {key: str(ledger_record(out, key, name)) for key, name in theirs.get("evals_done", {}).items()}
    ledger["evals_done"] = {**merged, **ours.get("evals_done", {})}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / STUDY_FILE, json.dumps(ledger, indent=1))
    print(f"restored {added} runs into {out} ({len(merged)} kept evaluations in its ledger)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--suite", default="mnist5k")
    parser.add_argument("--smoke", action="store_true", help="the suite's smoke variant")
    args = parser.parse_args(argv)
    try:
        suite = load_suite(args.suite, smoke=args.smoke)
        if args.action == "save":
            return save(args.source, args.dest, suite)
        return restore(args.source, args.dest, suite)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
