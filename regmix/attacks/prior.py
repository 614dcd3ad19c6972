"""FGSM-PGK's prior-guided initialisation (Jia et al., TPAMI 2024): every training example keeps a
perturbation from the previous epoch, moved by a momentum of its own input gradients."""
from __future__ import annotations

import torch

from ..distributed import all_reduce_sum
from ..registry import ConfigError
from ..threat import ThreatModel


class PriorGuidedPerturbation:
    """Per-example state: eta (the initial perturbation) and m (the gradient momentum).

    Both are re-drawn (eta uniform in [-eps, eps], m = 0) at epoch 0 and every `reset_every` epochs,
    from a generator seeded by (seed, epoch): every process of a distributed run draws the same eta.
    """

    def __init__(self, threat: ThreatModel, num_samples: int, sample_shape, *, momentum: float = 0.3,
                 reset_every: int = 10, device="cpu", seed: int = 0):
        if threat.norm != "linf":
            raise ConfigError("threat.norm: the prior-guided initialisation is defined for linf only")
        if not 0 <= momentum <= 1:
            raise ConfigError(f"method.momentum: must be in [0, 1], got {momentum}")
        if int(reset_every) < 1:
            raise ConfigError(f"method.reset_every: must be an integer >= 1, got {reset_every}")
        self.threat = threat
        self.momentum = float(momentum)
        self.reset_every = int(reset_every)
        self.seed = int(seed)
        self.eta = torch.zeros(num_samples, *sample_shape, device=device)
        self.m = torch.zeros_like(self.eta)

    def start_epoch(self, epoch: int):
        if epoch % self.reset_every == 0:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            fresh = torch.rand(self.eta.shape, generator=g) * (2 * self.threat.eps) - self.threat.eps
            self.eta.copy_(fresh)
            self.m.zero_()

    def initial(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """eta for these examples, clipped so that x + eta stays in [0,1]."""
        eta = self.eta[index].to(x.dtype)
        return (x + eta).clamp(0, 1) - x

    def update(self, x, index, eta, grad, acc_final: float, acc_init: float):
        """m = g/||g||_1 * (2 - acc_final/acc_init) + mu*m; eta = clip(eta + step*sign(m)).

        ||g||_1 is taken over the whole batch, as in the reference code (over the global batch in a
        distributed run); when no example was classified correctly at the initial point the accuracy
        ratio is taken as 1.
        """
        ratio = acc_final / acc_init if acc_init > 0 else 1.0
        grad = grad.float()
        norm = all_reduce_sum(grad.abs().sum())
        m = grad / norm.clamp_min(1e-12) * (2.0 - ratio) + self.momentum * self.m[index]
        eta = (eta + self.threat.step * m.sign()).clamp(-self.threat.eps, self.threat.eps)
        self.m[index] = m
        self.eta[index] = (x + eta).clamp(0, 1) - x

    def sync(self, mine: torch.Tensor):
        """Distributed runs: every rank updated only its own examples (mask `mine`); afterwards all
        ranks hold every example's latest eta and m."""
        mine = mine.to(self.eta.device)
        touched = all_reduce_sum(mine.float()) > 0
        shape = (-1,) + (1,) * (self.eta.dim() - 1)
        for buf in (self.eta, self.m):
            merged = all_reduce_sum(buf * mine.view(shape).to(buf.dtype))
            buf.copy_(torch.where(touched.view(shape), merged, buf))

    def state_dict(self):
        return {"eta": self.eta, "m": self.m}

    def load_state_dict(self, state):
        if state["eta"].shape != self.eta.shape:
            raise ConfigError(f"checkpoint: prior perturbations have shape {tuple(state['eta'].shape)}, "
                              f"this run needs {tuple(self.eta.shape)}")
        self.eta.copy_(state["eta"])
        self.m.copy_(state["m"])
