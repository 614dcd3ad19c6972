"""What every diagnostic needs from a run directory: the model, a fixed data subset, the threat."""
from __future__ import annotations

import torch

from ..registry import ConfigError
from ..threat import ThreatModel


def resolve_device(name="auto") -> torch.device:
    """'auto' (CUDA when there is one), 'cpu', 'cuda', 'cuda:N' or a torch.device -> a torch.device."""
    if isinstance(name, torch.device):
        return name
    from ..runtime import resolve_device as _resolve
    return _resolve(name)


def load_run(source, which: str = "best", device="cpu", ema: bool = True):
    """(model in eval mode, resolved Config) of a run directory, or of any model source that
    regmix.sources.load_source takes (an ExternalModel carries its own dataset and threat)."""
    from ..sources import load_source
    loaded = load_source(source, which=which, device=device, ema=ema)
    return loaded.model, loaded.config


def fixed_subset(config, split: str = "test", n: int = 512, *, data_dir=None, model=None):
    """The first n points of a split (a fixed subset: the same points for every run and every call).
    model: checked against them (classes, input shape: sources.check_fits) before any work."""
    from ..data import create_dataset
    if n < 1:
        raise ConfigError(f"n: must be an integer >= 1, got {n}")
    ds = create_dataset(config.data.name, split, data_dir or config.data.data_dir, augment=False,
                        val_size=config.data.val_size)
    n = min(n, len(ds))
    xs, ys = zip(*(ds[i] for i in range(n)))
    x, y = torch.stack(xs), torch.as_tensor([int(v) for v in ys])
    if model is not None:
        from ..sources import check_fits
        check_fits(model, x, ds.num_classes)
    return x, y


def attack_factory(spec: str, threat: ThreatModel):
    """'none' -> None; any other attack name (regmix.attacks.specs: fgsm, pgdK, cwK, aa, ...) -> model ->
    attack at the threat's eps (pgdK/cwK: step eps/4)."""
    from ..attacks.specs import attack_factory as factory
    return factory(spec, threat, field="attack")


def eval_threat(config, eps=None) -> ThreatModel:
    """The one evaluation threat derivation, Config.eval_threat (eps: an override)."""
    return config.eval_threat(eps)
