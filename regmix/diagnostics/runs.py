"""What every diagnostic needs from a run directory: the model, a fixed data subset, the threat."""
from __future__ import annotations

import re

import torch

from ..checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
from ..config import load_config
from ..registry import ConfigError
from ..threat import ThreatModel

ATTACK_SPEC = re.compile(r"^(none|fgsm|pgd(\d+)|cw(\d+))$")


def resolve_device(name="auto") -> torch.device:
    """'auto' (CUDA when there is one), 'cpu', 'cuda', 'cuda:N' or a torch.device -> a torch.device."""
    if isinstance(name, torch.device):
        return name
    from ..trainer import resolve_device as _resolve
    return _resolve(name)


def load_run(run_dir, which: str = "best", device="cpu", ema: bool = True):
    """(model in eval mode, resolved Config) of a run directory."""
    state = load_checkpoint(resolve_checkpoint(run_dir, which), map_location=device)
    config = load_config(data=state["config"])
    return model_from_checkpoint(state, device=device, ema=ema), config


def fixed_subset(config, split: str = "test", n: int = 512, *, data_dir=None):
    """The first n points of a split (a fixed subset: the same points for every run and every call)."""
    from ..data import create_dataset
    if n < 1:
        raise ConfigError(f"n: must be an integer >= 1, got {n}")
    ds = create_dataset(config.data.name, split, data_dir or config.data.data_dir, augment=False,
                        val_size=config.data.val_size)
    n = min(n, len(ds))
    xs, ys = zip(*(ds[i] for i in range(n)))
    return torch.stack(xs), torch.as_tensor([int(v) for v in ys])


def attack_factory(spec: str, threat: ThreatModel):
    """'none' -> None; 'fgsm', 'pgdK', 'cwK' -> model -> attack at the threat's eps (PGD step eps/4)."""
    from ..attacks import FGSM, PGD
    match = ATTACK_SPEC.match(str(spec).lower())
    if not match:
        raise ConfigError(f"--attack: must be none, fgsm, pgdK or cwK (K steps, e.g. pgd10), got {spec!r}")
    if match.group(1) == "none":
        return None
    if match.group(1) == "fgsm":
        t = threat.with_(step=threat.eps)
        return lambda model: FGSM(model, t, random_start=False)
    steps = int(match.group(2) or match.group(3))
    if steps < 1:
        raise ConfigError(f"--attack: the number of steps must be >= 1, got {spec!r}")
    t = threat.with_(step=threat.eps / 4, steps=steps)
    loss = "cw" if match.group(3) else "ce"
    return lambda model: PGD(model, t, loss=loss)


def eval_threat(config, eps=None) -> ThreatModel:
    threat = config.eval_threat()
    return threat if eps is None else threat.with_(eps=eps, step=None)
