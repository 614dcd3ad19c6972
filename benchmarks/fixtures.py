"""The benchmark's data and models: real digits from the embedded mnist5k, a small_cnn (the demo
recipes' model) trained here in seconds, and an eps at which it is about 50% robust. No network."""
from __future__ import annotations

import torch
import torch.nn.functional as F

import regmix
from regmix.attacks import PGD


def digits(split: str, n: int):
    ds = regmix.create_dataset("mnist5k", split)
    n = min(n, len(ds))
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.stack([ds[i][1] for i in range(n)])
    return x, y, ds


def demo_model(ds, seed: int = 0):
    """small_cnn width 16 with the data's normalisation inside, as in configs/demo/base.yaml."""
    torch.manual_seed(seed)
    return regmix.create_model("small_cnn", ds.num_classes, ds.in_channels, mean=ds.mean, std=ds.std, width=16)


def trained_model(scale, seed: int = 0):
    """Standard training (Adam 1e-3, batch 128): accurate on clean digits, not robust."""
    x, y, ds = digits("train", scale.train_points)
    model = demo_model(ds, seed)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(scale.train_epochs):
        order = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 128):
            idx = order[i:i + 128]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model, x, y, batch=500) -> float:
    return torch.cat([model(x[i:i + batch]).argmax(1) == y[i:i + batch] for i in range(0, len(y), batch)]).float().mean().item()


def pgd_accuracy(model, x, y, eps, steps=20, seed=0) -> float:
    torch.manual_seed(seed)
    x_adv = PGD(model, regmix.ThreatModel("linf", eps, steps=steps))(x, y)
    return accuracy(model, x_adv, y)


def eps_for_half_robust(model, x, y, *, rounds: int = 7, low: float = 0.0, high: float = 0.3) -> tuple:
    """Bisection on eps until PGD-20 accuracy on (x, y) is about 0.5: the 'about 50% robust' model
    of the evaluation comparison is the trained model at this eps."""
    eps, acc = high, 0.0
    for _ in range(rounds):
        eps = (low + high) / 2
        acc = pgd_accuracy(model, x, y, eps)
        if acc > 0.5:
            low = eps
        else:
            high = eps
    return round(eps, 4), acc
