"""One .npz per diagnostic: numeric arrays plus a JSON `meta` string, readable with allow_pickle=False
(so a record from elsewhere can be opened without running code)."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..checkpoint import atomic_write

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
    """(arrays, meta) of a record written by save_record."""
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    return arrays, meta
