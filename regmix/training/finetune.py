"""A fine-tune of a trained model with the RegMix objective at chosen weights, for a budget of steps.

The model given is never touched: a copy is trained and returned. The batches come from the run's
training split in an order fixed by `seed`, so two fine-tunes of the same budget and seed (at chosen
weights and at the run's own, the control) see the same data."""
from __future__ import annotations

import copy

import torch

from ..data import create_dataset
from ..methods import create_method
from ..registry import ConfigError
from .schedule import make_optimizer

# "run": the optimiser the run was trained with (config.optim: name, lr, momentum, weight_decay);
# "adam-half": Adam at half the run's learning rate
OPTIMIZERS = ("run", "adam-half")


def finetune_optimizer(config, params, *, choice: str = "run", lr: float | None = None) -> torch.optim.Optimizer:
    """The fine-tune's optimiser: the run's own (class, momentum, weight decay) or Adam; lr: the run's
    learning rate (halved for 'adam-half') unless given."""
    if choice not in OPTIMIZERS:
        raise ConfigError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {choice!r}")
    lr = lr if lr is not None else config.optim.lr * (0.5 if choice == "adam-half" else 1.0)
    if choice == "adam-half":
        return torch.optim.Adam(params, lr=lr)
    optimizer = make_optimizer(config, params)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return optimizer


def training_batches(config, *, batch_size: int = 128, seed: int = 0):
    """Endless shuffled batches of the run's training split (no augmentation), in a seeded order."""
    data = config.data
    dataset = create_dataset(data.name, "train", data.data_dir, augment=False, val_size=data.val_size)
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def finetune(model, config, weights: dict, *, steps: int, optimizer: str = "run", lr: float | None = None,
             batch_size: int = 128, seed: int = 0, on_step=None, check=None):
    """Train a copy of `model` for `steps` batches with RegMix at the run's options updated by
    `weights` (alpha, beta, gamma, temperature); returns (the copy in eval mode, its losses, its
    optimiser). The batches and the attack's random starts follow `seed` (the global RNG is restored
    after).

    on_step(step, steps, loss) is called after every batch; check() before every batch may raise to
    stop (the steps taken are kept: the exception propagates with `finetune.partial` set on it).
    """
    if int(steps) < 1:
        raise ConfigError(f"steps: must be an integer >= 1, got {steps!r}")
    tuned = copy.deepcopy(model).train()
    device = next(tuned.parameters()).device
    method = create_method("regmix", config.training_threat(), **{**regmix_options(config), **weights})
    opt = finetune_optimizer(config, tuned.parameters(), choice=optimizer, lr=lr)
    batches = training_batches(config, batch_size=batch_size, seed=seed)
    losses = []
    devices = [device] if device.type == "cuda" else []
    # the same seed, the same random starts of the attack: a control differs only in the weights
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        _loop(tuned, method, opt, batches, device, int(steps), losses, on_step, check)
    return tuned.eval(), losses, opt


def _loop(tuned, method, opt, batches, device, steps, losses, on_step, check):
    try:
        for step in range(1, steps + 1):
            if check is not None:
                check()
            x, y = next(batches)
            loss, _ = method.loss(tuned, x.to(device), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if on_step is not None:
                on_step(step, steps, losses[-1])
    except Exception as err:
        err.partial = (tuned.eval(), losses, opt)
        raise


def regmix_options(config) -> dict:
    """The run's RegMix options; a run of another method fine-tunes with RegMix's defaults."""
    return dict(config.method.options) if config.method.name == "regmix" else {}
