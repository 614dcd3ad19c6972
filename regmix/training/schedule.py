"""The optimiser, and the learning-rate schedule as a function of the (fractional) epoch."""
from __future__ import annotations

import math

import torch


def make_optimizer(config, params, fused: bool = False) -> torch.optim.Optimizer:
    """config.optim's optimiser; `fused` (train.fast's step, training/step.py): one fused kernel that can
    take its learning rate as a device tensor, inside a captured CUDA graph. Otherwise torch's
    multi-tensor (foreach) form; the two differ in the last bits of a float32 update."""
    o = config.optim
    if o.name == "adam":  # capturable: Adam refuses a capture otherwise (its step count lives on the device)
        kind = {"fused": True, "capturable": True} if fused else {}
        return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay, **kind)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, nesterov=o.nesterov,
                           **({"fused": True} if fused else {}))


def lr_factor(config, epoch: float) -> float:
    """The learning rate multiplier at a fractional epoch."""
    s, total = config.schedule, config.train.epochs
    if s.warmup_epochs and epoch < s.warmup_epochs:
        return (epoch + 1e-8) / s.warmup_epochs
    floor = s.lr_min / config.optim.lr
    if s.name == "constant":
        return 1.0
    if s.name == "multistep":
        return s.gamma ** sum(epoch >= m for m in s.milestones)
    if s.name == "cosine":
        t = (epoch - s.warmup_epochs) / max(total - s.warmup_epochs, 1e-8)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    # cyclic (Wong et al. 2020): linear up to the peak at mid-run, then linearly down to the floor
    t = epoch / total
    return floor + (1 - floor) * (t / 0.5 if t < 0.5 else (1 - t) / 0.5)
