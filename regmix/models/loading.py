"""A model from a checkpoint: the architecture its config names, then its (EMA) weights, checked to fit."""
from __future__ import annotations

import torch

from ..checkpoint import load_checkpoint, resolve_checkpoint
from ..registry import ConfigError
from .base import create_model


def load_weights(model: torch.nn.Module, weights: dict, source: str = "checkpoint"):
    """Load `weights` into `model`, refusing in one line (naming `source`) when they do not fit."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    wrong = [k for k in own if k in weights and own[k].shape != weights[k].shape]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                  else f"shape of {wrong[0]}: {tuple(weights[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)}")
        raise ConfigError(f"checkpoint: weights of {source!r} do not fit this model "
                          f"(another architecture or number of classes): {detail}")
    model.load_state_dict(weights)


def model_from_checkpoint(state: dict, device="cpu", ema: bool = True):
    """Rebuild the model that a checkpoint describes and load its (EMA, where kept) weights."""
    config, data = state["config"], state["data"]
    model = create_model(config["model"]["name"], data["num_classes"], data["in_channels"],
                         mean=data["mean"], std=data["std"], **config["model"]["options"])
    weights = state["ema"] if ema and state.get("ema") is not None else state["model"]
    load_weights(model, weights, source=config["model"]["name"])
    return model.to(device).eval()


def load_model(path, device="cpu", which="best", ema=True):
    """A ready model (eval mode) from a run directory (its best.pt or last.pt) or a checkpoint file."""
    return model_from_checkpoint(load_checkpoint(resolve_checkpoint(path, which)), device=device, ema=ema)
