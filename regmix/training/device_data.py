"""The training set held on the training device, batches and their augmentation made there as tensor ops.

A DataLoader builds every batch on the host, one example at a time (and, with workers, in other
processes), then copies it to the device: on a GPU that sets the pace of a small model's step.
DeviceBatches keeps the whole training split on the device once (CIFAR-10's 49,000 training images are
150 MB as uint8) and makes batch b of an epoch by one gather and, where the dataset augments, one
random crop with zero padding and one left-right flip for the whole batch.

The batch order is the EpochSampler's (seed, epoch): the same examples in the same batches as the
DataLoader path. The augmentation draws its offsets and flips for the whole epoch at once from a
generator seeded by (seed, epoch) alone, so a run resumed in the middle of an epoch sees the same
augmented batches as one never stopped, and the global RNG stream (attack starts) is not touched.
Without augmentation the batches are the DataLoader's, value for value (tests/test_fast_step.py).
"""
from __future__ import annotations

import torch

from ..registry import ConfigError


def crop_flip(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, padding: int) -> torch.Tensor:
    """Per example i: zero-pad by `padding`, crop the original size at (top[i], left[i]), flip left-right
    where flip[i]; the batched form of data.base.random_crop_flip, for given offsets. One gather."""
    n, _, h, w = x.shape
    if padding:
        x = torch.nn.functional.pad(x, (padding,) * 4)
    rows = (top.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = left.view(n, 1) + torch.arange(w, device=x.device)
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return x[batch, channel, rows, cols]


class DeviceBatches:
    """The batches of one rank's epochs, made on `device` from a dataset held there.

    Arguments:
        dataset: a map-style dataset of (image in [0,1], label); an ImageTensorDataset (CIFAR, the
            embedded digits) is moved as it is stored (uint8 stays uint8), anything else is read once.
        sampler (EpochSampler): the batch order (and which examples this rank owns).
        device: where the data lives and the batches are made.
        seed (int): seeds the augmentation's draws, with the epoch.
    """

    def __init__(self, dataset, sampler, device, seed: int = 0):
        images = getattr(dataset, "images", None)
        if images is not None and hasattr(dataset, "scale"):
            self.images, self.scale = images.to(device), float(dataset.scale)
            self.labels = dataset.labels.to(device)
            self.augment = bool(getattr(dataset, "augment", False))
            self.padding, self.flip = int(dataset.crop_padding), bool(dataset.flip)
        else:
            if getattr(dataset, "augment", False):
                raise ConfigError("data.on_device: the dataset augments example by example on the host "
                                  f"({type(dataset).__name__}); train it with data.on_device=false")
            xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
            self.images, self.scale = torch.stack(xs).to(device), 1.0
            self.labels = torch.as_tensor(ys, dtype=torch.long).to(device)
            self.augment, self.padding, self.flip = False, 0, False
        self.sampler, self.device, self.seed = sampler, torch.device(device), int(seed)
        self.order = None
        self.draws = None

    def set_epoch(self, epoch: int):
        """The epoch's order (this rank's indices) and its augmentation draws, made once."""
        self.order = self.sampler.rank_indices().to(self.device)
        if self.augment:
            g = torch.Generator().manual_seed(self.seed * 1_000_033 + 104_729 * epoch + 17)
            n, span = len(self.order), 2 * self.padding + 1
            offsets = torch.randint(0, span, (2, n), generator=g) if self.padding else torch.zeros(2, n, dtype=torch.long)
            flips = torch.rand(n, generator=g) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
            self.draws = (offsets[0].to(self.device), offsets[1].to(self.device), flips.to(self.device))

    def batch(self, b: int):
        """(x, y, index) of batch b of the current epoch, on the device."""
        size = self.sampler.batch_size
        index = self.order[b * size:(b + 1) * size]
        x = self.images[index].float()
        if self.scale != 1.0:
            x = x / self.scale
        if self.augment:
            top, left, flip = (d[b * size:(b + 1) * size] for d in self.draws)
            x = crop_flip(x, top, left, flip, self.padding)
        return x, self.labels[index], index
