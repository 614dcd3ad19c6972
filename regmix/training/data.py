"""What the training loop needs around a dataset: example indices and an input range check."""
from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..registry import ConfigError


class IndexedDataset(Dataset):
    """(x, y, i): the example's index lets a method keep per-example state (FGSM-PGK's prior)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return x, y, i


def check_pixel_range(x: torch.Tensor, where: str):
    low, high = x.min().item(), x.max().item()
    if low < 0 or high > 1:
        raise ConfigError(f"{where}: images must be in [0,1] (normalisation happens inside the model), "
                          f"found values in [{low:.3g}, {high:.3g}]" + ("; divide by 255" if high > 1.5 else ""))
