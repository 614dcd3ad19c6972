"""One .npz per diagnostic: numeric arrays plus a JSON `meta` string, readable with allow_pickle=False
(so a record from elsewhere can be opened without running code)."""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

RECORD_VERSION = 1


def save_record(path, kind: str, arrays: dict, meta: dict) -> Path:
    path = Path(path)
    meta = {"kind": kind, "version": RECORD_VERSION, **meta}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array(json.dumps(meta)),
                        **{k: np.asarray(v) for k, v in arrays.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    # temporary file + rename: a reader (or a crash) never sees half a record
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_record(path) -> tuple[dict, dict]:
    """(arrays, meta) of a record written by save_record."""
    with np.load(Path(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    return arrays, meta
