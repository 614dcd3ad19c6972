"""The documented range of every number of a config, checked before any folder is created (issue 24):
NUMBER_RANGES, one row per numeric field (a new field adds a row), and the ranges that depend on
other fields. check_number (regmix/checks.py) refuses NaN and infinity with the rest."""
from __future__ import annotations

import re

from .checks import MAX_BATCH, MAX_EPOCHS, MAX_POINTS, MAX_STEPS, check_number
from .models import check_model_options
from .registry import ConfigError

# Every number of the config with its documented range: (field, low, high, check_number options). A value
# outside, NaN or infinite is refused before any folder is created. A new numeric field adds a row here.
NUMBER_RANGES = [
    ("data.batch_size", 1, MAX_BATCH, {"integer": True}),
    ("data.eval_batch_size", 1, MAX_BATCH, {"integer": True}),
    ("data.num_workers", 0, 256, {"integer": True}),
    ("data.val_size", 1, MAX_POINTS, {"integer": True, "none_ok": True}),
    ("threat.steps", 0, MAX_STEPS, {"integer": True}),
    ("optim.lr", 0, 10, {"lo_open": True}),
    ("optim.momentum", 0, 1, {"hi_open": True}),
    ("optim.weight_decay", 0, 1, {"hi_open": True}),
    ("schedule.gamma", 0, 1, {"lo_open": True}),
    ("schedule.lr_min", 0, 10, {}),
    ("schedule.warmup_epochs", 0, MAX_EPOCHS, {}),
    ("eval.steps", 0, MAX_STEPS, {"integer": True}),
    ("eval.every", 1, MAX_EPOCHS, {"integer": True}),
    ("eval.max_points", 1, MAX_POINTS, {"integer": True, "none_ok": True}),
    ("train.epochs", 1, MAX_EPOCHS, {"integer": True}),
    ("train.ema_decay", 0, 1, {"lo_open": True, "hi_open": True}),
    ("train.eps_warmup_epochs", 0, MAX_EPOCHS, {"integer": True}),
    ("train.log_every", 1, 10 ** 9, {"integer": True}),
    ("train.checkpoint_every", 0, 10 ** 9, {"integer": True}),
]


def check_numbers(config):
    """NUMBER_RANGES checked (check_number: finite, in range), then the ranges that depend on other
    fields: the learning-rate warm-up lies within train.epochs (a longer one never reaches the rate)."""
    for name, lo, hi, options in NUMBER_RANGES:
        value = config
        for part in name.split("."):
            value = getattr(value, part)
        check_number(name, value, lo, hi, **options)
    epochs = config.train.epochs
    check_number("schedule.warmup_epochs", config.schedule.warmup_epochs, 0, epochs)
    for m in config.schedule.milestones:  # (a milestone past the last epoch is never reached: allowed)
        check_number("schedule.milestones", m, 0, MAX_EPOCHS, lo_open=True)
    check_model_options(config.model.name, config.model.options)
    config.training_threat()
    try:  # the evaluation threat's errors name the eval fields they come from
        config.eval_threat()
    except ConfigError as err:
        raise ConfigError(re.sub(r"^threat\.", "eval.", str(err))) from None
