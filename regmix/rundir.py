"""A run directory, in one place: what it holds, how each part is read, and who may write it.

    RUN/config.yaml       the resolved config, method options with every default filled in
    RUN/run.json          the run's identity: a random run id made once, at creation
    RUN/status.json       {"state": running|stopped|failed|complete, "best": ..., "epochs": ...}
    RUN/metrics.jsonl     one record per logged step and one per epoch
    RUN/last.pt           everything needed to resume (checkpoint.py's format)
    RUN/best.pt           the weights with the best validation PGD accuracy
    RUN/eval/             evaluation records (JSON) and per-example flags (.npz)
    RUN/diagnostics/      diagnostic records (.npz): landscapes, softmax, interpolation
    RUN/.lock             held by the one process that writes the run (lock.py)

Every module that reads or writes a run directory goes through `RunDir`; none spells these names.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import List, Optional

from .checks import regular_file
from .files import atomic_write_text
from .lock import FolderLock
from .registry import ConfigError
from .yaml_text import load_yaml_text

STATES = ("running", "stopped", "failed", "complete")


class RunDir:
    """`RunDir("runs/demo/regmix")`: paths, readers and the writer's lock of one run directory."""

    CONFIG, IDENTITY, STATUS, METRICS = "config.yaml", "run.json", "status.json", "metrics.jsonl"
    BEST, LAST, EVAL, DIAGNOSTICS = "best.pt", "last.pt", "eval", "diagnostics"
    # what makes a folder "hold a run": any of these (a lock file alone does not)
    RUN_FILES = (CONFIG, IDENTITY, STATUS, METRICS, BEST, LAST)

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self):
        return str(self.path)

    # ------------------------------------------------------------ paths

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def status_path(self) -> Path:
        return self.path / self.STATUS

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def identity_path(self) -> Path:
        return self.path / self.IDENTITY

    @property
    def eval_dir(self) -> Path:
        return self.path / self.EVAL

    @property
    def diagnostics_dir(self) -> Path:
        return self.path / self.DIAGNOSTICS

    def checkpoint(self, which: str = "best") -> Path:
        """RUN/best.pt or RUN/last.pt."""
        if which not in ("best", "last"):
            raise ConfigError(f"checkpoint: must be 'best' or 'last', got {which!r}")
        return self.path / (self.BEST if which == "best" else self.LAST)

    def diagnostic(self, name: str) -> Path:
        """RUN/diagnostics/NAME.npz."""
        return self.diagnostics_dir / f"{name}.npz"

    # ------------------------------------------------------------ state

    def is_run(self) -> bool:
        """True when the folder holds anything of a run (even a partial one)."""
        return any((self.path / name).exists() for name in self.RUN_FILES)

    def present(self) -> List[str]:
        return [name for name in self.RUN_FILES if (self.path / name).exists()]

    def read_config(self) -> dict:
        """config.yaml as a mapping; one line naming the file when it is not a regular file of YAML."""
        if regular_file(self.config_path) is None:
            raise ConfigError(f"config: {self.config_path} is not a regular file")
        data = load_yaml_text(self.config_path.read_text(), field="config", path=self.config_path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config: {self.config_path} must hold a mapping, got {type(data).__name__}")
        return data

    def status(self) -> Optional[dict]:
        """status.json as a dict, or None when missing or unreadable."""
        if regular_file(self.status_path) is None:  # a FIFO would block the read
            return None
        try:
            status = json.loads(self.status_path.read_text())
        except (OSError, ValueError, RecursionError):
            return None
        return status if isinstance(status, dict) else None

    def state(self) -> str:
        """complete | running | stopped | failed | interrupted | new.

        interrupted: a last.pt but no usable status, or a status "running" whose writer is gone (killed,
        or its last status write failed): a running run's writer holds the lock and is alive."""
        status = self.status() or {}
        state = status.get("state")
        if state == "running" and not self.lock().holder_alive():
            return "interrupted"
        if state in STATES:
            return state
        return "interrupted" if self.checkpoint("last").exists() else "new"

    def is_complete(self) -> bool:
        return self.state() == "complete"

    def write_status(self, state: str, **extra):
        if state not in STATES:
            raise ValueError(f"status: state must be one of {STATES}, got {state!r}")
        atomic_write_text(self.status_path, json.dumps({"state": state, **extra}))

    def metrics(self, kind: Optional[str] = None) -> List[dict]:
        """metrics.jsonl's records (of one kind: 'step' or 'epoch'); a line cut short by a crash is skipped."""
        if regular_file(self.metrics_path) is None:
            return []
        out = []
        for line in self.metrics_path.read_text().splitlines():
            record = parse_metrics_line(line)
            if record is not None and (kind is None or record.get("kind") == kind):
                out.append(record)
        return out

    # ------------------------------------------------------------ identity

    def run_id(self) -> Optional[str]:
        if regular_file(self.identity_path) is None:
            return None
        try:
            run_id = json.loads(self.identity_path.read_text())["run_id"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            return None
        return run_id if isinstance(run_id, str) else None

    def ensure_run_id(self) -> str:
        """The run id, made (once) when missing. Only the writer (the lock's holder) calls this."""
        run_id = self.run_id()
        if run_id is None:
            run_id = uuid.uuid4().hex
            atomic_write_text(self.identity_path, json.dumps({"run_id": run_id}))
        return run_id

    def identity(self) -> dict:
        """What identifies the run in records: its id and its resolved real path (symlinks and
        relative spellings resolved), so one run is one run however it was named."""
        return {"run_id": self.run_id(), "run_path": os.path.realpath(self.path)}

    def stale_temporaries(self) -> List[Path]:
        """Temporary files an atomic write left behind when its process was killed mid-write
        (RUN/.last.pt.<random>.tmp, .status.json.<random>.tmp, ...): never renamed, never read."""
        names = [*self.RUN_FILES]
        found = [p for name in names for p in self.path.glob(f".{name}.*.tmp")]
        for folder in (self.eval_dir, self.diagnostics_dir):
            found += list(folder.glob(".*.tmp")) if folder.is_dir() else []
        return sorted(p for p in found if p.is_file() and not p.is_symlink())

    # ------------------------------------------------------------ writing

    def lock(self, field: str = "run directory") -> FolderLock:
        """The writer's lock; `with run.lock(): ...`."""
        return FolderLock(self.path, field=field, what="run")


def parse_metrics_line(line: str):
    """A metrics record, or None for a line cut short by a crash."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "step" in record else None
