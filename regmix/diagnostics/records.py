"""One .npz per diagnostic: numeric arrays plus a JSON `meta` string, readable with allow_pickle=False
(so a record from elsewhere can be opened without running code)."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..checks import regular_file
from ..registry import ConfigError

RECORD_VERSION = 1


def save_record(path, kind: str, arrays: dict, meta: dict) -> Path:
    path = Path(path)
    meta = {"kind": kind, "version": RECORD_VERSION, **meta}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps(meta)),
                        **{k: np.asarray(v) for k, v in arrays.items()})
    # a reader (or a crash) never sees half a record: the same write-then-rename as checkpoints
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def load_record(path) -> tuple[dict, dict]:
    """(arrays, meta) of a record written by save_record; anything else (an object array, which would
    need pickle, a torn archive, a FIFO, a meta that is not a JSON object) is one line naming the file."""
    path = Path(path)
    if regular_file(path) is None:
        raise ConfigError(f"records: {path} is not a regular file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files if k != "meta"}
            meta = json.loads(str(data["meta"]))
    except (ValueError, OSError, KeyError, EOFError, RecursionError, zipfile.BadZipFile) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"records: {path} is not a readable diagnostics record ({first})") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"records: {path} is not a readable diagnostics record (its meta is not a JSON object)")
    return arrays, meta
