"""Deterministic fault injection: `REGMIX_FAULT` names the event at which a process dies (or waits).

Tests kill a training run at a chosen event rather than after a sleep, so a loaded machine changes
nothing. The variable holds one or more comma-separated faults:

    kill@step:K                  SIGKILL right after optimiser step K (1-based, counted over the run),
                                 after that step's periodic checkpoint, if any, was written
    kill@write:NAME[:N]          SIGKILL half-way through the N-th (default 1st) atomic write of NAME
                                 (last.pt, best.pt, status.json, ...): half the bytes sit in the
                                 temporary file, which is never renamed over NAME
    kill@append:metrics.jsonl[:N] SIGKILL half-way through the N-th record appended to metrics.jsonl
    pause@step:K:FILE            after step K, create FILE.waiting, then wait until FILE exists (a test
                                 holds a run at a known point, acts, and lets it go on)

Unset (always, outside tests), each hook is one dictionary lookup.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ENV = "REGMIX_FAULT"
_counts: dict = {}


def _faults():
    text = os.environ.get(ENV, "")
    for item in filter(None, (part.strip() for part in text.split(","))):
        action, _, where = item.partition("@")
        kind, _, rest = where.partition(":")
        yield action, kind, rest


def _die():
    os.kill(os.getpid(), signal.SIGKILL)


def at_step(step: int):
    """Called by the trainer after each optimiser step (and its checkpoint, if one was due)."""
    if ENV not in os.environ:
        return
    for action, kind, rest in _faults():
        if kind != "step":
            continue
        target, _, path = rest.partition(":")
        if int(target) != step:
            continue
        if action == "kill":
            _die()
        elif action == "pause":
            # polled on an event (the file), not timed: the test decides when the run goes on
            Path(path + ".waiting").write_text(str(os.getpid()))
            while not Path(path).exists():
                time.sleep(0.05)


def _nth(kind: str, name: str, rest: str) -> bool:
    target, _, nth = rest.partition(":")
    if target != name:
        return False
    key = (kind, name)
    _counts[key] = _counts.get(key, 0) + 1
    return _counts[key] == int(nth or 1)


def tear_write(name: str, f) -> None:
    """Called by checkpoint.atomic_write once the temporary file holds all of NAME's bytes: cut it
    to half and die, as a power cut in the middle of the write would."""
    if ENV not in os.environ:
        return
    for action, kind, rest in _faults():
        if action == "kill" and kind == "write" and _nth("write", name, rest):
            f.flush()
            size = f.tell()
            f.truncate(size // 2)
            f.flush()
            os.fsync(f.fileno())
            _die()


def tear_append(name: str, f, line: str) -> None:
    """Called before a line is appended to NAME: on the chosen record, write half of it and die."""
    if ENV not in os.environ:
        return
    for action, kind, rest in _faults():
        if action == "kill" and kind == "append" and _nth("append", name, rest):
            f.write(line[: len(line) // 2])
            f.flush()
            os.fsync(f.fileno())
            _die()
