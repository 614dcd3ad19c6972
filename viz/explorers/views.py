"""Logits of chosen test examples under the three inputs RegMix compares: clean, x + d_init
(uniform in the eps-ball) and x + d_final (one sign step of the training step from d_init)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from regmix.data import create_dataset
from regmix.methods.views import perturbation_views, random_start
from regmix.modes import model_mode

VIEWS = ("clean", "init", "final")
LABELS = {"clean": "clean", "init": "initial adv.", "final": "final adv."}


def view_logits(model, x, y, threat, *, seed: int = 0, start: str = "uniform") -> dict:
    """{'clean', 'init', 'final'} -> logits (N, C), float64 on the CPU. The same seed gives the same
    draw, so two models are compared on the same starting points. start: how d_init is drawn
    (regmix.methods.prior_start(config) gives the run's own)."""
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    x, y = x.to(device), y.to(device)
    with model_mode(model, training=False):
        eta = random_start(x, threat, kind=start, generator=generator)
        views = perturbation_views(model, x, y, eta, threat, logits=True)
        return {view: views.logits[view].double().cpu() for view in VIEWS}


def softmax(logits, temperature: float = 1.0):
    return F.softmax(torch.as_tensor(logits) / temperature, dim=1).numpy()


def spread_subset(config, n: int, split: str = "test"):
    """n points spread evenly over the split (indices 0, L/n, 2L/n, ...): fixed across runs and calls,
    and every class present even where a split is stored sorted by label (mnist5k's test split is)."""
    data = config.data
    dataset = create_dataset(data.name, split, data.data_dir, augment=False, val_size=data.val_size)
    n = max(1, min(n, len(dataset)))
    points = [dataset[i * len(dataset) // n] for i in range(n)]
    return torch.stack([p[0] for p in points]), torch.as_tensor([int(p[1]) for p in points])
