from __future__ import annotations

import math

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """The order of epoch e is a permutation drawn from (seed, e) alone, so a run resumed anywhere in
    an epoch replays the same batches from `start_batch` on.

    With world_size > 1 the permutation is padded (repeating its head) to a multiple of world_size and
    rank r takes every world_size-th index from r: the ranks' batches together are then exactly the
    single-process batches of the same global batch size.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0):
        self.epoch, self.start_batch = epoch, start_batch

    def global_order(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        order = torch.randperm(self.n, generator=g)
        padded = math.ceil(self.n / self.world_size) * self.world_size
        return torch.cat([order, order[:padded - self.n]])

    def rank_indices(self) -> torch.Tensor:
        return self.global_order()[self.rank::self.world_size]

    def owned(self, upto_batch: int) -> torch.Tensor:
        """Bool mask over the dataset: examples this rank processed in batches [0, upto_batch), not
        counting the padding copies (their originals belong to another position)."""
        positions = torch.arange(self.rank, math.ceil(self.n / self.world_size) * self.world_size, self.world_size)
        mine = self.rank_indices()[: upto_batch * self.batch_size]
        mask = torch.zeros(self.n, dtype=torch.bool)
        mask[mine[positions[: len(mine)] < self.n]] = True
        return mask

    def __iter__(self):
        return iter(self.rank_indices()[self.start_batch * self.batch_size:].tolist())

    def __len__(self):
        return len(self.rank_indices()) - self.start_batch * self.batch_size

    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.rank_indices()) / self.batch_size)
