"""One writer per folder: a lock file held with the kernel's `flock` by the process that writes.

The kernel drops a `flock` when its process dies, however it dies (SIGKILL included), so a lock left
by a dead process is never stale: the next writer simply takes it. The file also names its holder
(pid, host, start time) so that a refused writer can say who holds the folder. The lock file is left
in place on release (unlinking a locked file would let a third process lock a different inode).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from .registry import ConfigError


class FolderLocked(ConfigError):
    """Another live process writes this folder."""


class FolderLock:
    """`with FolderLock(folder, field="--out"): ...` holds FOLDER/.lock or raises FolderLocked.

    field: the argument or config field the folder came from, named in the error."""

    NAME = ".lock"

    def __init__(self, folder, field: str = "run directory", what: str = "run"):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.field, self.what = field, what
        self._fd = None

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return {}

    def holder_alive(self) -> bool:
        """Whether the process named in the lock file still lives (a holder on another host is taken
        to live: its pids cannot be checked from here). A released lock file is empty."""
        h = self.holder()
        if not isinstance(h.get("pid"), int):
            return False
        if h.get("host") != socket.gethostname():
            return True
        try:
            os.kill(h["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def acquire(self) -> "FolderLock":
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            h = self.holder()
            raise FolderLocked(f"{self.field}: {self.folder} is being written by another {self.what} "
                               f"(pid {h.get('pid', '?')} on {h.get('host', '?')}, since {h.get('started', '?')}); "
                               f"wait for it to finish or stop it first") from None
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
