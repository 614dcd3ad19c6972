"""The two checks every piece of untrusted input goes through, in one place:

    check_number(field, value, lo, hi, integer=...)  a finite number (int or float, never a bool) in a
                                                      documented range; NaN and infinity fail it
    inside(root, relative, field)                     a path read from data (a record, a ledger, a suite,
                                                      a source) resolved inside its folder, or refused

Both raise ConfigError with one line naming the field and what is allowed.
"""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Optional

from .registry import ConfigError

# upper bounds shared by the config, the suites, the methods and the command-line flags: far above any
# real use (a CIFAR run is 200 epochs, an attack 100 steps, a landscape grid 51), low enough that a typo
# never becomes a run that cannot end
MAX_EPOCHS = 100_000
MAX_STEPS = 10_000          # attack steps, PGD restarts x steps stay bounded by these two
MAX_RESTARTS = 100
MAX_GRID = 1_001            # points per axis of a landscape grid
MAX_POINTS = 10_000_000     # test / validation points
MAX_BATCH = 1_000_000
MAX_WIDTH = 1_024           # a model's width option (small_cnn: 1,024 is a 1 GB model)
MAX_ITERS = 100_000         # Hessian power iterations and the like
MAX_WEIGHT = 1e6            # loss weights (alpha, beta, gamma, lam, ...), temperatures


def _interval(lo, hi, lo_open, hi_open) -> str:
    def show(v):
        return f"{v:g}" if isinstance(v, float) else str(v)
    return f"{'(' if lo_open else '['}{show(lo)}, {show(hi)}{')' if hi_open else ']'}"


def describe(lo, hi, *, integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> str:
    """'an integer in [1, 10000]' / 'a finite number in (0, 1]': the allowed part of a message."""
    return f"{'an integer' if integer else 'a finite number'} in {_interval(lo, hi, lo_open, hi_open)}"


def in_range(value, lo, hi, *, integer: bool = False, lo_open: bool = False, hi_open: bool = False) -> bool:
    """True for an int or float (not a bool; an int when integer) that is finite and inside the range."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    above = value > lo if lo_open else value >= lo
    below = value < hi if hi_open else value <= hi
    return above and below


def check_number(field: str, value, lo, hi, *, integer: bool = False, lo_open: bool = False,
                 hi_open: bool = False, none_ok: bool = False):
    """`value` when it is a finite number in the range (None too where none_ok), else ConfigError
    'FIELD: must be an integer in [lo, hi], got VALUE'."""
    if value is None and none_ok:
        return None
    if not in_range(value, lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open):
        allowed = describe(lo, hi, integer=integer, lo_open=lo_open, hi_open=hi_open)
        raise ConfigError(f"{field}: must be {'null or ' if none_ok else ''}{allowed}, got {value!r}")
    return value


def inside(root, relative, field: str, *, name_only: bool = False) -> Path:
    """ROOT/RELATIVE with every symlink resolved, refused unless it stays inside ROOT (resolved too):
    no absolute path, no '..', no symlink leading out. name_only: RELATIVE must be one plain name (a
    file or folder directly in ROOT). The path need not exist yet (a file about to be written)."""
    if isinstance(relative, os.PathLike):
        relative = os.fspath(relative)
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise ConfigError(f"{field}: must be a relative path inside {root}, got {relative!r}")
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts or (name_only and (len(parts) != 1 or "\\" in relative)):
        allowed = "one plain file name" if name_only else "a relative path without '..'"
        raise ConfigError(f"{field}: must be {allowed} inside {root}, got {relative!r}")
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / relative))
    if target != base and base not in target.parents:
        raise ConfigError(f"{field}: {relative!r} leads out of {root} (to {target}); refused")
    return target


def plain_name(value, field: str, what: str = "a name") -> str:
    """A string usable as one folder or file name: non-empty, no '/', '\\', NUL, not '.' or '..'."""
    if not isinstance(value, str) or not value or value in (".", "..") or any(c in value for c in "/\\\x00"):
        raise ConfigError(f"{field}: must be {what}: a non-empty folder name without '/', got {value!r}")
    return value


def regular_file(path) -> Optional[Path]:
    """PATH when it is a regular file (after symlinks), else None: a FIFO, a socket or a device named
    *.json is never opened (reading a FIFO blocks until a writer comes)."""
    try:
        return Path(path) if stat.S_ISREG(os.stat(path).st_mode) else None
    except OSError:
        return None


def read_json(path, field: str, *, kind=dict):
    """A JSON file read as untrusted data: refused with one line naming FIELD and the file unless it is a
    regular file holding valid JSON of `kind` (deep nesting is refused, never a RecursionError)."""
    if regular_file(path) is None:
        raise ConfigError(f"{field}: {path} is not a regular file")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"{field}: {path} is not a readable JSON file ({reason})") from None
    if kind is not None and not isinstance(data, kind):
        raise ConfigError(f"{field}: {path} must hold a JSON {'object' if kind is dict else kind.__name__}, "
                          f"got {type(data).__name__}")
    return data
