"""Evaluation records: one JSON file per evaluation, in RUN_DIR/eval/. Tables are made from them.

A record names its run by identity, not by the path typed: `run_id` (RUN/run.json) and `run_path`
(the resolved real path), so a run evaluated through a relative, an absolute or a symlinked path is
one run. Version 1 records (before run ids) are still read.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Iterable, List, Optional

import torch

from ..checkpoint import atomic_write_text
from ..registry import ConfigError

VERSION = 2
REQUIRED = ("kind", "version", "method", "model", "dataset", "split", "n", "threat", "accuracy")


def environment(device) -> dict:
    import importlib.metadata as md
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("regmix", "torch", "torchvision", "numpy", "pyautoattack", "autoattack"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"versions": versions, "device": f"{device} ({name})"}


def run_identity(record: dict) -> str:
    """What makes two records the same run: the run id; else the resolved path (older records: the
    run_dir they stored, resolved as well as it still can be)."""
    if record.get("run_id"):
        return f"id:{record['run_id']}"
    if record.get("run_path"):
        return f"path:{record['run_path']}"
    where = record.get("run_dir") or record.get("_path")
    return f"path:{os.path.realpath(where)}" if where else "path:?"


def record_stem(record: dict) -> str:
    """checkpoint[-ema]-split-nN-<hash of what was run>: one file per distinct evaluation."""
    key = json.dumps({k: record.get(k) for k in ("attack_list", "threat", "step", "restarts", "seed", "checkpoint_file")},
                     sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    ema = "-ema" if record.get("ema") else ""
    return f"{record['checkpoint']}{ema}-{record['split']}-n{record['n']}-{digest}"


def save_record(record: dict, folder: Path) -> Path:
    path = Path(folder) / f"{record_stem(record)}.json"
    atomic_write_text(path, json.dumps(record, indent=2))
    return path


def flags_key(attack: str) -> str:
    """An attack's array name in a record's .flags.npz (the 'aa:...' names hold a ':', which npz refuses)."""
    return attack.replace(":", "_")


def load_flags(record: dict) -> Optional[dict]:
    """The record's per-point flags ({'clean' and each attack of attack_list: bool array}) from the
    .flags.npz beside it, or None where it has none."""
    import numpy as np
    from ..checks import inside, regular_file
    name = record.get("flags_file")
    if not name:
        return None
    # a name read from a record: one file beside it, never a path leading elsewhere
    path = inside(Path(record["_path"]).parent, name, f"records: {record['_path']}: flags_file", name_only=True)
    if regular_file(path) is None:
        return None
    with np.load(path, allow_pickle=False) as data:
        return {a: data[flags_key(a)] for a in dict.fromkeys(["clean", *record.get("attack_list", [])])
                if flags_key(a) in data.files}


def load_record(path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"records: {path} is not a readable JSON record ({err})") from None
    missing = [k for k in REQUIRED if k not in record] if isinstance(record, dict) else list(REQUIRED)
    if missing or record.get("kind") != "eval":
        raise ConfigError(f"records: {path} is not a regmix evaluation record (missing {', '.join(missing) or 'kind=eval'})")
    record["_path"] = str(path)
    return record


def find_records(paths: Iterable) -> List[dict]:
    """Records from files, run directories (RUN/eval/*.json) or folders of run directories."""
    from ..rundir import RunDir
    paths = list(paths)
    found = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            eval_dir = RunDir(p).eval_dir
            files = (sorted(eval_dir.glob("*.json")) or sorted(p.glob(f"*/{eval_dir.name}/*.json"))
                     or sorted(p.glob("*.json")))
            # RUN.old-<time>: a run that --overwrite moved aside is not part of a folder's results
            found += [f for f in files if ".old-" not in f.parent.parent.name or f.parent.parent == p]
        else:
            raise ConfigError(f"records: no such file or directory {p}")
    if not found:
        raise ConfigError(f"records: no evaluation records under {', '.join(map(str, paths))}; run `regmix eval` first")
    # the same file reached twice (a folder and a symlink to it) is read once
    unique = {}
    for f in found:
        unique.setdefault(os.path.realpath(f), f)
    return [load_record(f) for f in unique.values()]
