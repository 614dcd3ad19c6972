"""Atomic writes and an error's first line: the ground floor every writer of the project stands on.

A file is written through a temporary file in its own folder, fsynced, then renamed over the old one,
so a crash or a full disk leaves the previous file whole. `faults.tear_write` is the one hook a test
uses to cut a write in half (REGMIX_FAULT=kill@write:NAME); unset it is one dictionary lookup.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from . import faults


def first_line(err: BaseException) -> str:
    """An exception's first message line, or its type when it has no message (many do not)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def atomic_write(path, write):
    """Call write(f) on a temporary file beside `path`, fsync, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            faults.tear_write(path.name, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(f"writing {path} failed ({first_line(err)}); "
                      f"the previous {path.name}, if any, is intact") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj, path):
    """torch.save, atomically."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text: str):
    atomic_write(path, lambda f: f.write(text.encode()))
