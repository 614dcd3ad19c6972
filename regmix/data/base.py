from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..registry import ConfigError, Registry, suggest

DATASETS = Registry("dataset")
SPLITS = ("train", "val", "test")
# the number of classes of each registered dataset, known without building it (a large dataset's files
# are not read); tests/test_data.py checks every entry against the dataset itself
NUM_CLASSES = {"mnist5k": 10, "digits": 10, "cifar10": 10, "cifar100": 100, "tinyimagenet": 200}


def dataset_classes(name: str, field: str = "dataset") -> int:
    """The number of classes of a registered dataset (NUM_CLASSES; a dataset registered elsewhere is
    built once to ask it), or one line naming `field`."""
    if name not in DATASETS:
        raise ConfigError(f"{field}: unknown dataset {name!r}{suggest(name, DATASETS.names())}; "
                          f"known: {', '.join(DATASETS.names())}")
    if name in NUM_CLASSES:
        return NUM_CLASSES[name]
    return DATASETS.get(name)(split="test", data_dir=None, download=False, augment=False).num_classes


class DatasetNotFound(ConfigError):
    pass


def stratified_split(labels: np.ndarray, fractions: dict, seed: int = 0) -> dict:
    """Deterministic per-class split of indices into named parts ({'test': .2, 'val': .1, 'train': rest})."""
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in fractions}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for name, frac in fractions.items():
            count = len(idx) - start if frac is None else int(round(frac * len(idx)))
            parts[name].append(idx[start:start + count])
            start += count
    # shuffled once, with the same seed: the first N points of any split are then a fair sample of it
    return {name: rng.permutation(np.concatenate(chunks)) for name, chunks in parts.items()}


def holdout_split(n: int, val_size: int, split: str, seed: int = 0) -> np.ndarray:
    """Indices of `split` ('train' or 'val') when val_size points are held out of n training points."""
    if not 0 < val_size < n:
        raise ConfigError(f"data.val_size: must be in (0, {n}), got {val_size}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:val_size] if split == "val" else order[val_size:])


class ImageTensorDataset(Dataset):
    """Images held in memory as a uint8 or float tensor (N, C, H, W); returns float images in [0,1]."""

    def __init__(self, images: torch.Tensor, labels, *, name: str, num_classes: int, mean, std,
                 scale: float = 255.0, augment: bool = False, crop_padding: int = 4, flip: bool = True):
        if len(images) == 0:
            raise ConfigError(f"data: dataset {name!r} is empty")
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.scale = scale
        self.name = name
        self.num_classes = num_classes
        self.in_channels = images.shape[1]
        self.image_size = tuple(images.shape[2:])
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment = augment
        self.crop_padding = crop_padding
        self.flip = flip

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i].float() / self.scale
        if self.augment:
            x = random_crop_flip(x, self.crop_padding, self.flip)
        return x, self.labels[i]


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool) -> torch.Tensor:
    """The CIFAR augmentation: zero-pad, crop back at a random offset, flip left-right half the time."""
    _, h, w = x.shape
    if padding:
        x = torch.nn.functional.pad(x, (padding,) * 4)
        top, left = torch.randint(0, 2 * padding + 1, (2,)).tolist()
        x = x[:, top:top + h, left:left + w]
    if flip and torch.rand(()) < 0.5:
        x = x.flip(-1)
    return x
