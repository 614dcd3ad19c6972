import torch
from torch import nn

from ..registry import ConfigError


class NormalizedModel(nn.Module):
    """Wraps a backbone so that it takes [0,1] images: (x - mean) / std happens inside."""

    def __init__(self, backbone: nn.Module, mean, std, name: str = ""):
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ConfigError(f"model.std: need one positive std per channel, got mean={mean}, std={std}")
        self.name = name
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.backbone((x - self.mean) / self.std)
