"""Accuracy under attack. Attacks run only on the points the model still gets right (the batch is
compacted, not masked), so a robust point costs an attack and a broken one costs nothing."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..modes import model_mode
from ..progress import progress_bar

AttackFactory = Callable[[torch.nn.Module], Callable]


def make_loader(dataset: Dataset, batch_size: int, max_points: Optional[int] = None) -> DataLoader:
    if max_points is not None and max_points < len(dataset):
        dataset = Subset(dataset, range(max_points))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


def robust_accuracy(model: torch.nn.Module, loader, attacks: Dict[str, AttackFactory], *,
                    device="cpu") -> Dict[str, float]:
    """{'clean': acc, name: acc under that attack, ...} in [0,1] over the whole loader.

    Each attack is built once by its factory (model -> callable(x, y) -> x_adv) and runs on the points
    that are classified correctly on clean inputs.
    """
    x, y = stack(loader)
    flags = robust_flags(model, x, y, attacks, device=device, batch_size=loader.batch_size or 256)
    return {name: f.float().mean().item() for name, f in flags.items()}


def stack(loader):
    xs, ys = zip(*[(b[0], b[1]) for b in loader])
    return torch.cat(xs), torch.cat(ys)


@torch.inference_mode()
def clean_flags(model, x, y, *, device="cpu", batch_size=256) -> torch.Tensor:
    with model_mode(model, training=False):
        return torch.cat([model(x[i:i + batch_size].to(device)).argmax(1).cpu() == y[i:i + batch_size]
                          for i in range(0, len(y), batch_size)])


def attack_flags(model, attack, x, y, candidates: torch.Tensor, *, device="cpu", batch_size=256,
                 progress: Optional[bool] = False, desc: str = "attack") -> torch.Tensor:
    """Per-point robustness under `attack`: only the `candidates` (a bool mask) are attacked, in
    compacted batches; every other point counts as not robust. progress: see progress_bar (off by
    default: validation inside training calls this every epoch)."""
    robust = torch.zeros(len(y), dtype=torch.bool)
    idx = candidates.nonzero().squeeze(1)
    bar = progress_bar(len(idx), desc, progress) if progress is not False else None
    try:
        with model_mode(model, training=False):
            for start in range(0, len(idx), batch_size):
                part = idx[start:start + batch_size]
                xb, yb = x[part].to(device), y[part].to(device)
                x_adv = attack(xb, yb)
                with torch.no_grad():
                    robust[part] = (model(x_adv).argmax(1) == yb).cpu()
                if bar is not None:
                    bar.update(len(part))
                    bar.set_postfix(robust=int(robust[idx[:start + len(part)]].sum()), refresh=False)
    finally:
        if bar is not None:
            bar.close()
    return robust


def robust_flags(model, x, y, attacks: Dict[str, AttackFactory], *, device="cpu", batch_size=256,
                 seed: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """{'clean': flags, name: flags, ...}: per-point correctness, clean and under each attack."""
    flags = {"clean": clean_flags(model, x, y, device=device, batch_size=batch_size)}
    for name, factory in attacks.items():
        if seed is not None:
            torch.manual_seed(seed)  # each attack's randomness independent of the others' order
        flags[name] = attack_flags(model, factory(model), x, y, flags["clean"], device=device,
                                   batch_size=batch_size)
    return flags
