"""Timing side by side: the contenders run alternately in one process, several times, and each gets
a median and a spread; a ratio is always of two medians taken under the same conditions."""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Callable, Dict

import torch


def synchronizer(device: str) -> Callable[[], None]:
    if str(device).startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def summary(samples) -> dict:
    med = statistics.median(samples)
    return {"median_s": med, "min_s": min(samples), "max_s": max(samples),
            "spread": (max(samples) - min(samples)) / med if med > 0 else 0.0, "repeats": len(samples),
            "samples_s": [round(s, 6) for s in samples]}


def alternate(contenders: Dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1,
              device: str = "cpu") -> Dict[str, dict]:
    """Times each callable `repeats` times, alternating A B C, C B A, ... so that a drift in machine
    load falls on every contender alike. Warm-up rounds (not timed) come first."""
    sync = synchronizer(device)
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    sync()
    times = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            contenders[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: summary(t) for name, t in times.items()}


def ratio(timings: Dict[str, dict], a: str, b: str) -> float:
    """median(a) / median(b)."""
    return timings[a]["median_s"] / timings[b]["median_s"]


def target(name: str, value: float, op: str, limit: float, note: str = "") -> dict:
    met = value <= limit if op == "<=" else value >= limit
    return {"name": name, "value": round(value, 4), "target": f"{op} {limit}", "met": bool(met), "note": note}


@contextmanager
def full_fp32(device):
    """TF32 off for cuDNN and matrix products inside the block (CUDA); nothing to do on a CPU."""
    if not str(device).startswith("cuda"):
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
