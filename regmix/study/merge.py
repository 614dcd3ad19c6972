"""`regmix study --merge DIR`: the evaluations made in a copy of a study folder (elsewhere, e.g. on a
GPU) brought home, into the same runs only. The copy is untrusted input: it is checked whole before
anything is written."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict

from ..checks import inside, plain_name, read_json
from ..evaluation.records import REQUIRED
from ..files import atomic_write, atomic_write_text
from ..lock import FolderLock
from ..registry import ConfigError
from ..rundir import RunDir
from .ledger import STUDY_FILE, check_folder, read_ledger
from .suite import Suite


def merge_evals(suite: Suite, out, source, log: Callable = print) -> Dict[str, str]:
    """Bring home the evaluations made in a copy of this study folder (SOURCE), e.g. on a GPU machine
    with `eval_device='cuda'` and only the runs' best.pt travelling. Each record in SOURCE's ledger
    that OUT lacks is copied, with its flags, into the run's eval folder here and entered in OUT's
    ledger, but only if the run here is the same run (same run id, complete); records stay as written
    (their device and paths say where they ran). Returns {key: merged|present|refused}.

    The copy is untrusted input: the whole of it is checked before anything is written (_merge_plan).
    Every name it gives (a ledger key's run name, a record's file, its flags_file) must be one plain
    name that stays inside its folder (no '..', no absolute path, no symlink out), every record a
    readable evaluation record of a regular file; the first that is not refuses the merge with one
    line naming it, and nothing is merged."""
    out, source = Path(out), Path(source)
    theirs = read_ledger(source, check=False)  # untrusted: checked whole by _merge_plan, naming what is wrong
    if not theirs:
        raise ConfigError(f"merge: {source} holds no study ({STUDY_FILE} missing or unreadable)")
    if theirs.get("suite") != suite.name or bool(theirs.get("smoke")) != suite.smoke:
        raise ConfigError(f"merge: {source} holds study {theirs.get('suite')!r}"
                          f"{' (smoke)' if theirs.get('smoke') else ''}, not {suite.name!r}{' (smoke)' if suite.smoke else ''}")
    outcomes: Dict[str, str] = {}
    with FolderLock(out, field="out", what="study"):
        ledger = read_ledger(out)
        check_folder(out, suite, ledger)
        done = ledger.setdefault("evals_done", {})
        todo = _merge_plan(out, source, theirs, done, outcomes, log)
        for key, device, files in todo:
            # the flags first: a ledger entry or a record never points at a file not yet written
            for src, dest in files:
                atomic_write(dest, lambda f, src=src: f.write(src.read_bytes()))
            done[key] = str(RunDir(out / "runs" / key.rpartition("/")[0]).eval_dir / files[-1][1].name)
            atomic_write_text(out / STUDY_FILE, json.dumps(ledger, indent=1))
            log(f"[study] {key}: merged ({device})")
            outcomes[key] = "merged"
    return outcomes


def _merge_plan(out: Path, source: Path, theirs: dict, done: dict, outcomes: dict, log) -> list:
    """[(key, device, [(source file, destination file), ...])] of what merge_evals copies, every path
    checked inside its folder and every record read; ConfigError (one line naming the file) on the
    first thing in SOURCE that is not a clean copy of this study, before anything is written."""
    entries = theirs.get("evals_done") or {}
    ledger_file = source / STUDY_FILE
    if not isinstance(entries, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
        raise ConfigError(f"merge: {ledger_file}: evals_done must map 'run/evaluation' keys to record paths")
    todo = []
    for key, where in sorted(entries.items()):
        name, _, spec = key.rpartition("/")
        field = f"merge: {ledger_file}: evals_done key {key!r}"
        plain_name(name, field, "run/evaluation with a plain run name")
        plain_name(spec, field, "run/evaluation with a plain evaluation name")
        if key in done and Path(done[key]).exists():
            outcomes[key] = "present"
            continue
        eval_src = inside(source / "runs", Path(name) / RunDir.EVAL, field)
        src = inside(eval_src, Path(where).name, f"merge: {ledger_file}: record of {key!r}", name_only=True)
        if src.suffix != ".json":
            raise ConfigError(f"merge: {ledger_file}: record of {key!r} must be a .json file, got {where!r}")
        if not src.exists():
            log(f"[study] {key}: refused, its record {src} is not in the copy")
            outcomes[key] = "refused"
            continue
        record = read_json(src, "merge: record")
        missing = [k for k in REQUIRED if k not in record]
        if missing or record.get("kind") != "eval":
            raise ConfigError(f"merge: {src} is not a regmix evaluation record (missing {', '.join(missing) or 'kind=eval'})")
        here = RunDir(inside(out / "runs", name, field, name_only=True))
        if not here.is_complete() or not here.run_id() or record.get("run_id") != here.run_id():
            log(f"[study] {key}: refused, not the same finished run here (run id or state differs)")
            outcomes[key] = "refused"
            continue
        files = []
        flags = record.get("flags_file")
        if flags is not None:
            flags_src = inside(eval_src, flags, f"merge: {src}: flags_file", name_only=True)
            if not flags.endswith(".npz") or not flags_src.is_file():
                raise ConfigError(f"merge: {src}: flags_file {flags!r} is not a regular .npz file in {eval_src}")
            files.append((flags_src, inside(here.eval_dir, flags, f"merge: {src}: flags_file", name_only=True)))
        files.append((src, inside(here.eval_dir, src.name, f"merge: record of {key!r}", name_only=True)))
        todo.append((key, record.get("device", "device not recorded"), files))
    return todo
