"""One way to run a model in a given mode and give it back as it was."""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def model_mode(model: torch.nn.Module, training: bool = False):
    """`with model_mode(model, training=False): ...` sets train/eval mode for the block and restores the
    model's previous mode afterwards, also when the block raises (attacks and diagnostics borrow a model
    that a training loop owns)."""
    was_training = model.training
    model.train(training)
    try:
        yield model
    finally:
        model.train(was_training)
