"""Runtime helpers shared by training, evaluation and diagnostics: the device, the machine in words, seeding,
RNG states."""
from __future__ import annotations

import os
import platform
import random
from contextlib import contextmanager

import numpy as np
import torch

from .registry import ConfigError


def resolve_device(name) -> torch.device:
    """'auto' -> cuda when available, else cpu; a CUDA device asked for without one is refused. name: a
    device name ('cpu', 'cuda', 'cuda:N', 'auto') or a torch.device."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for, but no CUDA device is available; use cpu or auto")
    return torch.device(name)


def cpu_name() -> str:
    """The CPU's model name: /proc/cpuinfo's 'model name' on Linux, else platform.processor() (empty on
    many Linux systems), else the architecture."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and line.split(":", 1)[1].strip():
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(device) -> str:
    """What a time is measured on, in words: the GPU's name on CUDA, else the CPU's with its logical CPUs
    and torch's threads ('AMD EPYC, 2 logical CPUs, 2 torch threads'). Training writes it beside every
    epoch time, evaluation records beside their device, so that times from two machines are not read as
    one."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads"


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG's state (torch, CUDA, numpy, python) as tensors and plain values, so that a
    checkpoint loaded with weights_only=True carries it."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
            "python": random.getstate()}


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


@contextmanager
def seeded_rng(seed: int, device: torch.device):
    """Run a block on torch's RNG seeded with `seed` and give the outer RNG back untouched: what the
    block draws depends on `seed` alone, and the caller's stream is not advanced (validation inside
    a training run must neither depend on nor shift the training's random draws)."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        yield
