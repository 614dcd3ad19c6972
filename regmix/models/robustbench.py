"""RobustBench checkpoints read from RobustBench's own file layout, offline.

`robustbench:<dataset>/<threat>/<name>` is read from `model_dir/<dataset>/<threat>/<name>.pt` (the
layout robustbench.utils.load_model downloads into); nothing is downloaded. The weights are read with
torch.load(weights_only=True), under 'state_dict' or at the top, 'module.'/'model.' prefixes removed.

The architecture: the `robustbench` package (1.1.1) cannot be imported next to pyautoattack (it imports
fra31's `autoattack` module name). Where `import robustbench` works, its model zoo builds any entry;
otherwise regmix builds the entries in ROBUSTBENCH_WRN: plain WideResNets without input normalisation
(regmix.models.wide_resnet with RobustBench's parameter names mapped), e.g. Standard,
Carmon2019Unlabeled, Zhang2019Theoretically. Checked against robustbench 1.1.1's own load_model on the
same files (Standard, Carmon2019Unlabeled, CIFAR-100 Sitawarin2020Improving): logits equal to 1e-5.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from ..files import first_line
from ..registry import ConfigError, suggest
from .loading import load_weights
from .normalized import NormalizedModel
from .wide_resnet import WideResNet
from ..threat import ThreatModel

ROBUSTBENCH = "robustbench:"
# RobustBench's datasets that regmix can load data for, and the threat models with a norm ball
RB_DATASETS = ("cifar10", "cifar100")
RB_THREATS = {"linf": "Linf", "l2": "L2"}
RB_EPS = {"Linf": 8 / 255, "L2": 0.5}   # the leaderboards' radii for CIFAR

# RobustBench entries that are plain WideResNets (no input normalisation): (dataset, threat) -> name ->
# (depth, widen). Read off robustbench 1.1.1's model zoo (entries `lambda: WideResNet(depth=, widen_factor=)`).
ROBUSTBENCH_WRN: Dict[Tuple[str, str], Dict[str, Tuple[int, int]]] = {
    ("cifar10", "Linf"): {
        "Standard": (28, 10), "Carmon2019Unlabeled": (28, 10), "Sehwag2020Hydra": (28, 10),
        "Sehwag2021Proxy": (28, 10), "Wang2020Improving": (28, 10), "Wu2020Adversarial_extra": (28, 10),
        "Zhang2020Geometry": (28, 10), "Sridhar2021Robust": (28, 10), "Sridhar2021Robust_34_15": (34, 15),
        "Zhang2019Theoretically": (34, 10), "Zhang2019You": (34, 10), "Zhang2020Attacks": (34, 10),
        "Wu2020Adversarial": (34, 10), "Huang2020Self": (34, 10), "Sitawarin2020Improving": (34, 10),
        "Addepalli2021Towards_WRN34": (34, 10), "Addepalli2022Efficient_WRN_34_10": (34, 10),
        "Chen2021LTD_WRN34_10": (34, 10), "Chen2021LTD_WRN34_20": (34, 20),
        "Chen2024Data_WRN_34_10": (34, 10), "Chen2024Data_WRN_34_20": (34, 20),
        "Cui2020Learnable_34_10": (34, 10), "Cui2020Learnable_34_20": (34, 20),
        "Cui2023Decoupled_WRN-34-10": (34, 10), "Jia2022LAS-AT_34_10": (34, 10), "Jia2022LAS-AT_70_16": (70, 16),
    },
    ("cifar10", "L2"): {"Standard": (28, 10), "Sehwag2021Proxy": (28, 10), "Wu2020Adversarial": (34, 10)},
    ("cifar100", "Linf"): {
        "Addepalli2021Towards_WRN34": (34, 10), "Addepalli2022Efficient_WRN_34_10": (34, 10),
        "Chen2021LTD_WRN34_10": (34, 10), "Chen2024Data_WRN_34_10": (34, 10),
        "Cui2020Learnable_34_10_LBGAT0": (34, 10), "Cui2020Learnable_34_10_LBGAT6": (34, 10),
        "Cui2020Learnable_34_10_LBGAT9_eps_8_255": (34, 10), "Cui2020Learnable_34_20_LBGAT6": (34, 20),
        "Cui2023Decoupled_WRN-34-10": (34, 10), "Cui2023Decoupled_WRN-34-10_autoaug": (34, 10),
        "Jia2022LAS-AT_34_10": (34, 10), "Jia2022LAS-AT_34_20": (34, 20), "Sehwag2021Proxy": (34, 10),
        "Sitawarin2020Improving": (34, 10),
    },
}


def load_weights_file(path, field: str = "source") -> Any:
    """torch.load(weights_only=True): tensors and plain values only; a code-carrying pickle is refused."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{field}: no such file {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for pickles that carry code, RuntimeError for corrupt files
        raise ConfigError(f"{field}: {path} was refused: only tensors and plain values are loaded "
                          f"(weights_only=True): {first_line(err)}") from None


def parse_robustbench(spec: str) -> Tuple[str, str, str]:
    """'robustbench:cifar10/Linf/Standard' -> ('cifar10', 'Linf', 'Standard')."""
    body = spec[len(ROBUSTBENCH):] if spec.startswith(ROBUSTBENCH) else spec
    parts = body.split("/")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"source: expected robustbench:<dataset>/<threat>/<name> such as "
                          f"robustbench:cifar10/Linf/Standard, got {spec!r}")
    dataset, threat, name = parts
    dataset = dataset.lower()
    if dataset not in RB_DATASETS:
        raise ConfigError(f"source: RobustBench dataset must be one of {', '.join(RB_DATASETS)} (those regmix has "
                          f"data for), got {dataset!r}{suggest(dataset, RB_DATASETS)}")
    if threat.lower() not in RB_THREATS:
        raise ConfigError(f"source: RobustBench threat model must be Linf or L2, got {threat!r}")
    return dataset, RB_THREATS[threat.lower()], name


def register_robustbench_wrn(dataset: str, threat: str, name: str, depth: int, widen: int):
    """Declare another RobustBench entry that is a plain WideResNet(depth, widen) (your own models too)."""
    ROBUSTBENCH_WRN.setdefault((dataset, threat), {})[name] = (int(depth), int(widen))


def robustbench_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The weights in a RobustBench file: under 'state_dict' (or 'last') or at the top, with the
    'module.' (DataParallel) and 'model.' prefixes removed, as RobustBench's loader does."""
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        checkpoint = checkpoint["state_dict"]
    elif isinstance(checkpoint, dict) and "last" in checkpoint and isinstance(checkpoint["last"], dict):
        checkpoint = checkpoint["last"]
    if not isinstance(checkpoint, dict) or not all(torch.is_tensor(v) for v in checkpoint.values()):
        raise ConfigError("source: the RobustBench file holds no state dict (a mapping of names to tensors)")
    out = {}
    for key, value in checkpoint.items():
        for prefix in ("module.", "model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def wrn_from_robustbench_keys(weights: Dict[str, torch.Tensor], depth: int) -> Dict[str, torch.Tensor]:
    """RobustBench's WideResNet parameter names -> regmix.models.wide_resnet.WideResNet's.

    blockG.layer.I.X -> blocks.(G-1)*n+I.X (convShortcut -> shortcut), bn1 -> bn, fc -> linear.
    sub_block1.* is dropped: RobustBench builds it for some entries but its forward never uses it.
    """
    n = (depth - 4) // 6
    out = {}
    for key, value in weights.items():
        if key.startswith("sub_block1."):
            continue
        match = re.match(r"block([123])\.layer\.(\d+)\.(.*)$", key)
        if match:
            group, index, rest = int(match.group(1)), int(match.group(2)), match.group(3)
            key = f"blocks.{(group - 1) * n + index}.{rest.replace('convShortcut', 'shortcut')}"
        elif key.startswith("bn1."):
            key = "bn." + key[len("bn1."):]
        elif key.startswith("fc."):
            key = "linear." + key[len("fc."):]
        out[key] = value
    return out


def _robustbench_zoo_model(dataset: str, threat: str, name: str) -> Optional[nn.Module]:
    """The architecture from robustbench's own model zoo, where `import robustbench` works; else None."""
    try:
        from robustbench.model_zoo import model_dicts  # optional extra (robustbench)
        from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel as RBThreat  # (the same)
    except Exception:  # not installed, or 1.1.1's import of fra31's `autoattack` fails
        return None
    entries = model_dicts[BenchmarkDataset(dataset)][RBThreat(threat)]
    if name not in entries:
        raise ConfigError(f"source: RobustBench has no {dataset}/{threat} model {name!r}{suggest(name, entries)}")
    entry = entries[name]
    if entry.get("gdrive_id") is None or isinstance(entry.get("gdrive_id"), list):
        raise ConfigError(f"source: RobustBench's {name!r} is a timm model or an ensemble; load it with robustbench "
                          f"and pass the nn.Module (load_source(model, dataset=..., threat=...))")
    return entry["model"]()


def load_robustbench(spec: str, model_dir="./models"):
    """'robustbench:<dataset>/<threat>/<name>' -> (model, dataset, ThreatModel, num_classes, name, file),
    read from model_dir/<dataset>/<threat>/<name>.pt; nothing is downloaded."""
    dataset, threat, entry = parse_robustbench(spec)
    path = Path(model_dir).expanduser() / dataset / threat / f"{entry}.pt"
    if not path.is_file():
        raise ConfigError(f"source: no file {path} (model_dir={model_dir}); regmix does not download: place "
                          f"RobustBench's checkpoint there (robustbench.utils.load_model fetches it to the same path)")
    weights = robustbench_state_dict(load_weights_file(path))
    classes = 100 if dataset == "cifar100" else 10
    model = _robustbench_zoo_model(dataset, threat, entry)
    if model is not None:
        load_weights(model, weights, source=f"robustbench:{dataset}/{threat}/{entry}")
    else:
        known = ROBUSTBENCH_WRN.get((dataset, threat), {})
        if entry not in known:
            raise ConfigError(
                f"source: without a working `robustbench` package regmix builds only plain-WideResNet entries; "
                f"{dataset}/{threat} has {', '.join(sorted(known)) or 'none'}; {entry!r} is not one"
                f"{suggest(entry, known)} (pass the nn.Module instead, or register_robustbench_wrn)")
        depth, widen = known[entry]
        backbone = WideResNet(depth, widen, classes, 3)
        load_weights(backbone, wrn_from_robustbench_keys(weights, depth), source=f"robustbench {entry}")
        # RobustBench's plain WideResNets take [0,1] images without normalisation: identity mean/std
        model = NormalizedModel(backbone, (0.0,) * 3, (1.0,) * 3, name=f"robustbench:{entry}")
    return model, dataset, ThreatModel(threat.lower(), RB_EPS[threat]), classes, entry, path


__all__ = ["ROBUSTBENCH", "ROBUSTBENCH_WRN", "load_robustbench", "load_weights_file", "parse_robustbench",
           "register_robustbench_wrn", "robustbench_state_dict", "wrn_from_robustbench_keys"]
