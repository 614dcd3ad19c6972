from __future__ import annotations

import torch

from ..losses import cross_entropy
from ..registry import ConfigError, suggest
from ..threat import ThreatModel


class Method:
    """A training objective. Subclasses list their options with defaults in `defaults`; every option
    can be set from the config (method.options) and is validated here, before any training starts.

    Options shared by all methods: label_smoothing (on the cross-entropy) and attack_mode (the mode
    the model is in while an attack is crafted: 'eval' freezes BatchNorm statistics, 'train' does not).
    """
    name = ""
    defaults: dict = {}
    common = {"label_smoothing": 0.0, "attack_mode": "eval"}
    non_negative = ()

    def __init__(self, threat: ThreatModel, **options):
        allowed = {**self.common, **self.defaults}
        for key in options:
            if key not in allowed:
                raise ConfigError(f"method.options.{key}: unknown option for {self.name!r}{suggest(key, allowed)}; "
                                  f"allowed: {', '.join(sorted(allowed))}")
        self.threat = threat
        self.options = {**allowed, **options}
        for key, value in self.options.items():
            setattr(self, key, value)
        if not 0 <= float(self.label_smoothing) < 1:
            raise ConfigError(f"method.options.label_smoothing: must be in [0, 1), got {self.label_smoothing}")
        if self.attack_mode not in ("eval", "train"):
            raise ConfigError(f"method.options.attack_mode: must be 'eval' or 'train', got {self.attack_mode!r}")
        for key in self.non_negative:
            value = self.options[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"method.options.{key}: must be a number >= 0, got {value!r}")
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
        return cross_entropy(logits, y, self.label_smoothing)

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


def batch_accuracy(logits, y) -> float:
    """Accuracy over the global batch (all ranks of a distributed run)."""
    from ..distributed import all_reduce_sum
    counts = all_reduce_sum(torch.stack([(logits.argmax(1) == y).sum(), torch.tensor(len(y), device=y.device)]).float())
    return (counts[0] / counts[1]).item()
