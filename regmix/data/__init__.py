"""Datasets: `create_dataset(name, split)` returns a torch Dataset of (image in [0,1], label).

Every dataset carries `num_classes`, `in_channels`, `image_size`, `mean` and `std` (the model
normalises inside, so images stay in [0,1]).
"""
from ..registry import ConfigError
from . import embedded, torchvision_sets  # noqa: F401  (registration)
from .base import DATASETS, SPLITS, DatasetNotFound, ImageTensorDataset


def create_dataset(name: str, split: str = "train", data_dir=None, *, download: bool = False,
                   augment=None, val_size=None):
    """Build dataset `name` for `split` in {train, val, test}.

    val is carved from the training data with a fixed seed (model selection uses it); test is the
    official test set, only for reports. augment=None means: random crop + flip on the train split of
    natural-image datasets, nothing elsewhere.
    """
    if split not in SPLITS:
        raise ConfigError(f"data.split: must be one of {', '.join(SPLITS)}, got {split!r}")
    factory = DATASETS.get(name)
    options = {} if val_size is None else {"val_size": int(val_size)}
    return factory(split=split, data_dir=data_dir, download=download, augment=augment, **options)


__all__ = ["DATASETS", "create_dataset", "DatasetNotFound", "ImageTensorDataset"]
