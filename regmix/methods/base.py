from __future__ import annotations

import math

import torch

from ..checks import MAX_EPOCHS, MAX_STEPS, MAX_WEIGHT, check_number, in_range
from ..distributed import all_reduce_sum
from ..losses import check_true_class_target, cross_entropy
from ..registry import ConfigError, Registry, suggest
from ..threat import ThreatModel

METHODS = Registry("method")

# the documented range of each numeric option a method may have (check_number options); every other
# number must be finite, and the loss weights a method lists in `non_negative` lie in [0, MAX_WEIGHT]
OPTION_RANGES = {
    "attack_steps": (1, MAX_STEPS, {"integer": True}),
    "reset_every": (1, MAX_EPOCHS, {"integer": True}),
    "momentum": (0, 1, {}),
    "temperature": (0, MAX_WEIGHT, {"lo_open": True}),
    "step_ratio": (0, 100, {}),
}


class Method:
    """A training objective. Subclasses list their options with defaults in `defaults`; every option
    can be set from the config (method.options) and is validated here, before any training starts.

    Options shared by all methods:
        true_class_target (float, default 1.0): label smoothing as FGSM-PGK defines it, the target
            probability of the true class in the cross-entropy (and in FGSM-PGK's attack step); every
            other class gets (1 - f) / (C - 1). 1.0 is the one-hot target (no smoothing).
        attack_mode ('eval' | 'train', default 'eval'): the mode the model is in while an attack is
            crafted; 'eval' freezes BatchNorm statistics, 'train' does not.

    The former option `label_smoothing` is refused: recipes passed FGSM-PGK's factor f through it as
    PyTorch's `label_smoothing=e`, which gives the true class 1 - e + e/C, not f.
    """
    name = ""
    defaults: dict = {}
    # Methods whose loss() sets attack_ratio: the batch's acc_final / acc_init as a device tensor (the
    # success of the training attack, which FGSM-PGK's gated EMA reads); None for the others.
    reports_attack_ratio = False
    attack_ratio = None
    common = {"true_class_target": 1.0, "attack_mode": "eval"}
    non_negative = ()
    # Options that no longer exist, with what to write instead (the did-you-mean cannot guess these).
    renamed = {"label_smoothing": "true_class_target, the target probability of the true class (FGSM-PGK's "
                                  "factor f; the other classes get (1 - f)/(C - 1)); PyTorch's "
                                  "label_smoothing=e is true_class_target = 1 - e + e/C"}

    def __init__(self, threat: ThreatModel, **options):
        allowed = {**self.common, **self.defaults}
        for key in options:
            if key in self.renamed and key not in allowed:
                raise ConfigError(f"method.options.{key}: no longer an option; use {self.renamed[key]}")
            if key not in allowed:
                raise ConfigError(f"method.options.{key}: unknown option for {self.name!r}{suggest(key, allowed)}; "
                                  f"allowed: {', '.join(sorted(allowed))}")
        self.threat = threat
        self.options = {**allowed, **options}
        for key, value in self.options.items():
            setattr(self, key, value)
        try:
            check_true_class_target(self.true_class_target)
        except ValueError as err:
            raise ConfigError(f"method.options.{err}") from None
        if self.attack_mode not in ("eval", "train"):
            raise ConfigError(f"method.options.attack_mode: must be 'eval' or 'train', got {self.attack_mode!r}")
        for key, value in self.options.items():  # NaN and infinity pass `value < 0`: refused first, for every option
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"method.options.{key}: must be a finite number, got {value!r}")
            if key in OPTION_RANGES:
                lo, hi, kw = OPTION_RANGES[key]
                check_number(f"method.options.{key}", value, lo, hi, **kw)
        for key in self.non_negative:
            value = self.options[key]
            if not in_range(value, 0, MAX_WEIGHT):
                raise ConfigError(f"method.options.{key}: must be a number >= 0 (finite, at most {MAX_WEIGHT:g}), "
                                  f"got {value!r}")
        self.validate()

    def validate(self):
        """Checks of a method's own options."""

    def setup(self, num_samples: int, sample_shape, device, seed: int = 0):
        """Called once by the trainer before training: allocate per-example state here."""

    def sync(self, mine):
        """Distributed runs: make per-example state whole again; `mine` marks this rank's examples."""

    def start_epoch(self, epoch: int):
        """Called at the start of every epoch (0-based)."""

    def set_threat(self, threat: ThreatModel):
        """The trainer ramps eps at the start of a run (train.eps_warmup_epochs) through this."""
        self.threat = threat

    def ce(self, logits, y):
        return cross_entropy(logits, y, self.true_class_target)

    def loss(self, model, x, y, index=None):
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{type(self).__name__}(threat=[{self.threat}], {args})"


def detached(terms: dict) -> dict:
    return {k: v.detach() for k, v in terms.items()}


def attack_success(logits_final, logits_init, y) -> tuple:
    """(acc_final, acc_init, acc_final / acc_init) over the global batch (all ranks of a distributed
    run), float32 tensors on y's device, from one count of each and one reduction: nothing is read back
    to the host, so a training step never waits on them. The ratio is 1 when no example was classified
    correctly at the initial point (as the prior's momentum takes it)."""
    # the batch size is made on the device (torch.full), not copied from the host: a CUDA graph capture
    # refuses host-to-device copies of pageable memory
    total = torch.full((), len(y), dtype=torch.long, device=y.device)
    counts = all_reduce_sum(torch.stack([(logits_final.argmax(1) == y).sum(), (logits_init.argmax(1) == y).sum(),
                                         total]).float())
    ratio = torch.where(counts[1] > 0, counts[0] / counts[1].clamp_min(1), torch.ones_like(counts[0]))
    return counts[0] / counts[2], counts[1] / counts[2], ratio
