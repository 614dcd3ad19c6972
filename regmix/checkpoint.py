"""Checkpoints read with `weights_only=True` (no pickled code ever runs); written by files.atomic_save."""
from __future__ import annotations

from pathlib import Path

import torch

from .files import first_line
from .registry import ConfigError
from .rundir import RunDir

FORMAT = 1


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint: no such file {path}")
    if path.stat().st_size == 0:
        raise ConfigError(f"checkpoint: {path} is empty (0 bytes): a copy or a write was cut short")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # UnpicklingError for code-carrying pickles, RuntimeError/EOFError for cut files
        raise ConfigError(f"checkpoint: {path} was refused: it is not a whole, plain regmix checkpoint "
                          f"(truncated, corrupt, or carrying code; only tensors and plain values are "
                          f"loaded): {first_line(err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"checkpoint: {path} is not a regmix checkpoint (format {FORMAT})")
    return state


def resolve_checkpoint(path, which="best") -> Path:
    """A run directory -> its best.pt or last.pt; a file -> itself."""
    path = Path(path)
    if path.is_dir():
        path = RunDir(path).checkpoint(which)
    if not path.is_file():
        raise ConfigError(f"checkpoint: no such file {path}")
    return path
