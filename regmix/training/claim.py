"""Claiming a run directory before training writes a byte into it.

The writer holds RUN/.lock for the whole run (a second writer is refused, naming the holder). A folder
that holds anything of a run is never overwritten:

- without `resume`, it is refused (asking for --resume or --overwrite);
- with `overwrite`, the old run is moved aside to RUN.old-<time> (never deleted) and a new one starts;
- with `resume` and a last.pt, the run continues if its (resolved) config is the same;
- with `resume` and no last.pt: if no weights were kept (no best.pt either) the run starts again in
  place, keeping its run id (a run that crashed at its first step, or whose first checkpoint hit a
  full disk, is resumed, with a corrected config if need be; metrics records past step 0 are
  dropped and recomputed identically); with a best.pt it is refused: there is nothing to continue
  from, and starting again would replace those weights.
"""
from __future__ import annotations

import copy
import os
import time
from pathlib import Path

from ..config import Config, resolved_dict
from ..lock import FolderLock
from ..loggers import start_check
from ..registry import ConfigError
from ..rundir import RunDir

# where a run lives, where its data is read from, and how it is displayed or mirrored are not part of
# what it computes (a run moved to another folder or machine resumes)
NOT_COMPUTED = (("name",), ("out_dir",), ("data", "data_dir"), ("train", "progress"), ("train", "loggers"))


def claim(run: RunDir, config: Config, *, resume: bool, overwrite: bool) -> tuple:
    """Take the run directory's lock and decide: returns (lock, continue_from_last_pt)."""
    if resume and overwrite:
        raise ConfigError("overwrite: cannot be combined with resume; --resume continues the run in place, "
                          "--overwrite moves it aside and starts again")
    start_check(config.train.loggers)  # a logger that cannot start fails here, before any folder exists
    lock = run.lock().acquire()
    try:
        # a kill in the middle of an atomic write leaves its temporary file: the writer (holding the lock) removes it
        for stale in run.stale_temporaries():
            stale.unlink(missing_ok=True)
        if not run.is_run():
            return lock, False
        if overwrite:
            aside = move_aside(run, lock)
            print(f"[{config.name}] the previous run was moved to {aside}", flush=True)
            return run.lock().acquire(), False
        held = ", ".join(run.present())
        if not resume:
            raise ConfigError(f"{run.path}: already holds a run ({run.state()}: {held}); pass --resume to "
                              f"continue it, --overwrite to move it aside and start again, or choose another "
                              f"name or out_dir")
        has_last = run.checkpoint("last").exists()
        if has_last or trained(run):
            check_same_config(run, config)
        if not has_last and trained(run):
            raise ConfigError(f"resume: {run.path} has no last.pt to continue from, but holds results of "
                              f"training ({held}); pass --overwrite to move it aside and start again")
        return lock, has_last
    except BaseException:
        lock.release()
        raise


def trained(run: RunDir) -> bool:
    """Whether weights of the run were kept (best.pt or last.pt). Metrics records alone are not kept
    results: restarting from step 0 writes them again, identically."""
    return run.checkpoint("best").exists() or run.checkpoint("last").exists()


def check_same_config(run: RunDir, config: Config):
    if not run.config_path.exists():
        return
    previous, current = _computed(resolved_dict(run.read_config())), _computed(config.resolved().to_dict())
    if previous != current:
        diffs = differences(previous, current)
        raise ConfigError(f"{run.path}: already holds a run with a different config "
                          f"({'; '.join(diffs[:3])}); choose another name or out_dir, or --overwrite")


def check_checkpoint_config(path, stored, config: Config):
    """A resume continues the weights of last.pt only under the config they were trained with: the
    config stored inside last.pt is compared with the one asked to continue (config.yaml can be edited
    by hand; last.pt cannot), refused with one line naming the first key that differs."""
    if not isinstance(stored, dict):
        raise ConfigError(f"resume: {path} holds no config; nothing was changed: --overwrite moves the run "
                          f"aside and starts again")
    previous, current = _computed(resolved_dict(stored)), _computed(config.resolved().to_dict())
    if previous != current:
        first = differences(previous, current)[0]
        raise ConfigError(f"resume: {path} was trained with another config than the one asked to continue "
                          f"(first difference: {first}); nothing was changed: choose another name or out_dir, "
                          f"or --overwrite")


def _computed(cfg: dict) -> dict:
    """cfg without the NOT_COMPUTED keys."""
    cfg = copy.deepcopy(cfg)
    for *sections, key in NOT_COMPUTED:
        node = cfg
        for section in sections:
            node = node.get(section, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(key, None)
    return cfg


def move_aside(run: RunDir, lock: FolderLock) -> Path:
    """RUN -> RUN.old-<time>[-n], done while holding RUN's lock (which moves along with the folder)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = run.path.with_name(f"{run.path.name}.old-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = run.path.with_name(f"{run.path.name}.old-{stamp}-{n}")
    os.rename(run.path, aside)
    lock.release()
    return aside


def differences(a, b, prefix=""):
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: {x!r} there, {y!r} here")
    return out
