"""Evaluation records: one JSON file per evaluation, in RUN_DIR/eval/. Tables are made from them.

A record names its run by identity, not by the path typed: `run_id` (RUN/run.json) and `run_path`
(the resolved real path), so a run evaluated through a relative, an absolute or a symlinked path is
one run. Version 1 records (before run ids) are still read.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import math
import os
import platform
import sys
from pathlib import Path
from typing import Iterable, List, Optional

import numpy as np
import torch

from ..checks import inside, read_json, regular_file
from ..files import atomic_write_text
from ..registry import ConfigError
from ..rundir import RunDir
from ..runtime import machine

VERSION = 2
REQUIRED = ("kind", "version", "method", "model", "dataset", "split", "n", "threat", "accuracy")


def environment(device) -> dict:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in ("regmix", "torch", "torchvision", "numpy", "pyautoattack", "autoattack"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    device = torch.device(device)
    return {"versions": versions, "device": f"{device} ({machine(device)})"}


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
    """An evaluation record read as untrusted data: a regular file of valid JSON whose fields hold what
    the tables read (check_record), or one line naming the file."""
    path = Path(path)
    record = read_json(path, "records", kind=None)  # a FIFO, torn JSON or deep nesting: one line
    missing = [k for k in REQUIRED if k not in record] if isinstance(record, dict) else list(REQUIRED)
    if missing or record.get("kind") != "eval":
        raise ConfigError(f"records: {path} is not a regmix evaluation record (missing {', '.join(missing) or 'kind=eval'})")
    problem = check_record(record)
    if problem:
        raise ConfigError(f"records: {path} is malformed: {problem}")
    record["_path"] = str(path)
    return record


def _number(value, lo=-math.inf, hi=math.inf) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi


def check_record(record: dict) -> str:
    """'' for a record whose fields have the types the readers expect, else what is wrong (the first)."""
    accuracy = record.get("accuracy")
    if not isinstance(accuracy, dict) or not accuracy:
        return "accuracy must map attack names to fractions in [0, 1]"
    for name, value in accuracy.items():
        if not _number(value, 0, 1):
            return f"accuracy.{name} must be a fraction in [0, 1], got {str(value)[:40]!r}"
    if isinstance(record.get("n"), bool) or not isinstance(record.get("n"), int) or record["n"] < 0:
        return f"n must be an integer >= 0, got {str(record.get('n'))[:40]!r}"
    threat = record.get("threat")
    if not isinstance(threat, dict) or not _number(threat.get("eps"), 0) or not isinstance(threat.get("norm", "linf"), str):
        return "threat must be {norm, eps} with eps a finite number >= 0"
    for key in ("method", "model", "dataset", "split"):
        if not isinstance(record.get(key), str):
            return f"{key} must be a string, got {str(record.get(key))[:40]!r}"
    for key in ("created", "checkpoint", "run_id", "run_path", "run_dir", "flags_file"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} must be a string"
    for key in ("attack_list", "autoattack_warnings"):
        if record.get(key) is not None and not (isinstance(record[key], list) and all(isinstance(a, str) for a in record[key])):
            return f"{key} must be a list of strings"
    for key in ("step", "restarts", "epoch", "wall_s", "seed", "train_seed"):
        if record.get(key) is not None and not _number(record[key]):
            return f"{key} must be a finite number or null"
    if record.get("method_options") is not None and not isinstance(record["method_options"], dict):
        return "method_options must be a mapping"
    return ""


def find_records(paths: Iterable) -> List[dict]:
    """Records from files, run directories (RUN/eval/*.json) or folders of run directories."""
    paths = list(paths)
    found = []
    for p in map(Path, paths):
        if p.exists() and not p.is_dir() and regular_file(p) is None:
            raise ConfigError(f"records: {p} is not a regular file")
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            eval_dir = RunDir(p).eval_dir
            files = (sorted(eval_dir.glob("*.json")) or sorted(p.glob(f"*/{eval_dir.name}/*.json"))
                     or sorted(p.glob("*.json")))
            # RUN.old-<time>: a run that --overwrite moved aside is not part of a folder's results
            # what is not a regular file (a FIFO named *.json would block the read) is skipped
            found += [f for f in files if (".old-" not in f.parent.parent.name or f.parent.parent == p)
                      and regular_file(f) is not None]
        else:
            raise ConfigError(f"records: no such file or directory {p}")
    if not found:
        raise ConfigError(f"records: no evaluation records under {', '.join(map(str, paths))}; run `regmix eval` first")
    # the same file reached twice (a folder and a symlink to it) is read once
    unique = {}
    for f in found:
        unique.setdefault(os.path.realpath(f), f)
    return [load_record(f) for f in unique.values()]
