"""Checkpoints: written atomically, read with `weights_only=True` (no pickled code ever runs)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .registry import ConfigError
from .training import faults

FORMAT = 1


def atomic_write(path, write):
    """Write through a temporary file in the same folder, fsync, then rename: a crash or a full disk
    leaves the previous file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            faults.tear_write(path.name, f)  # tests only: REGMIX_FAULT=kill@write:NAME
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(f"writing {path} failed ({first_line(err)}); "
                      f"the previous {path.name}, if any, is intact") from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj, path):
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text: str):
    atomic_write(path, lambda f: f.write(text.encode()))


def first_line(err: BaseException) -> str:
    """An exception's first message line, or its type when it has no message (many do not)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_checkpoint(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint: no such file {path}")
    if path.stat().st_size == 0:
        raise ConfigError(f"checkpoint: {path} is empty (0 bytes): a copy or a write was cut short")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # UnpicklingError for code-carrying pickles, RuntimeError/EOFError for cut files
        raise ConfigError(f"checkpoint: {path} was refused: it is not a whole, plain regmix checkpoint "
                          f"(truncated, corrupt, or carrying code; only tensors and plain values are "
                          f"loaded): {first_line(err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"checkpoint: {path} is not a regmix checkpoint (format {FORMAT})")
    return state


def resolve_checkpoint(path, which="best") -> Path:
    """A run directory -> its best.pt or last.pt; a file -> itself."""
    path = Path(path)
    if path.is_dir():
        from .rundir import RunDir  # the one place that names a run's files (it imports this module lazily)
        path = RunDir(path).checkpoint(which)
    if not path.is_file():
        raise ConfigError(f"checkpoint: no such file {path}")
    return path


def model_from_checkpoint(state: dict, device="cpu", ema: bool = True):
    """Rebuild the model that a checkpoint describes and load its (EMA, where kept) weights."""
    from .models import create_model
    config, data = state["config"], state["data"]
    model = create_model(config["model"]["name"], data["num_classes"], data["in_channels"],
                         mean=data["mean"], std=data["std"], **config["model"]["options"])
    weights = state["ema"] if ema and state.get("ema") is not None else state["model"]
    load_weights(model, weights, source=config["model"]["name"])
    return model.to(device).eval()


def load_weights(model: torch.nn.Module, weights: dict, source: str = "checkpoint"):
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


def load_model(path, device="cpu", which="best", ema=True):
    return model_from_checkpoint(load_checkpoint(resolve_checkpoint(path, which)), device=device, ema=ema)
