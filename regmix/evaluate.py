"""Accuracy under attack. Attacks run only on the points the model still gets right (the batch is
compacted, not masked), so a weak model costs little to evaluate."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Subset

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
    was_training = model.training
    model.eval()
    built = {name: factory(model) for name, factory in attacks.items()}
    correct = {name: 0 for name in ["clean", *built]}
    total = 0
    try:
        for batch in loader:
            x, y = batch[0].to(device), batch[1].to(device)
            with torch.inference_mode():
                right = model(x).argmax(1) == y
            total += len(y)
            correct["clean"] += int(right.sum())
            idx = right.nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            for name, attack in built.items():
                x_adv = attack(x[idx], y[idx])
                with torch.no_grad():
                    correct[name] += int((model(x_adv).argmax(1) == y[idx]).sum())
    finally:
        model.train(was_training)
    return {name: c / max(total, 1) for name, c in correct.items()}
