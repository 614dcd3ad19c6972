"""FGSM-PGK's prior-guided initialisation (Jia et al., TPAMI 2024): every training example keeps a
perturbation from the previous epoch, moved by a momentum of its own input gradients."""
from __future__ import annotations

import torch

from ..distributed import all_reduce_sum
from ..registry import ConfigError
from ..threat import ThreatModel


PRIOR_INITS = ("sign", "uniform")

# Examples drawn per chunk at a reset: the fresh draw never needs a second full-size buffer (about
# 5 GB for Tiny ImageNet); the CPU generator gives the same numbers in chunks as in one call.
_RESET_CHUNK = 4096


def fresh_prior(u: torch.Tensor, eps: float, init: str) -> torch.Tensor:
    """A (re)initial perturbation from uniform draws u in [0, 1).

    'sign' is FGSM-PGK's: clamp(eps * sign(uniform(-eps, eps)), -eps, eps), i.e. every pixel at +-eps;
    'uniform' draws uniformly inside the ball. Both use the same draws, so switching the option
    changes nothing else in a run.
    """
    centred = u * (2 * eps) - eps
    if init == "sign":
        return (eps * centred.sign()).clamp(-eps, eps)
    return centred


class PriorGuidedPerturbation:
    """Per-example state: eta (the initial perturbation) and m (the gradient momentum).

    Both are re-drawn (eta by `init`, see fresh_prior; m = 0) at epoch 0 and every `reset_every`
    epochs, from a generator seeded by (seed, epoch): every process of a distributed run draws the
    same eta.

    Both buffers stay float32: the stored eta is the box-projected (x + eta).clamp(0, 1) - x, whose
    rounding leaves values that are not multiples of the step, and m is a running sum of normalised
    gradients, so no narrower storage reproduces a run bit for bit (docs/benchmarks.md, memory).
    """

    def __init__(self, threat: ThreatModel, num_samples: int, sample_shape, *, momentum: float = 0.3,
                 reset_every: int = 10, device="cpu", seed: int = 0, init: str = "sign"):
        if init not in PRIOR_INITS:
            raise ConfigError(f"method.options.prior_init: must be one of {', '.join(PRIOR_INITS)}, got {init!r}")
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
        self.init = init
        self.eta = torch.zeros(num_samples, *sample_shape, device=device)
        self.m = torch.zeros_like(self.eta)

    def start_epoch(self, epoch: int):
        if epoch % self.reset_every == 0:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            for start in range(0, len(self.eta), _RESET_CHUNK):
                part = self.eta[start:start + _RESET_CHUNK]
                part.copy_(fresh_prior(torch.rand(part.shape, generator=g), self.threat.eps, self.init))
            self.m.zero_()

    def initial(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """eta for these examples, clipped so that x + eta stays in [0,1]."""
        eta = self.eta[index].to(x.dtype)
        return (x + eta).clamp(0, 1) - x

    def update(self, x, index, eta, grad, acc_final, acc_init):
        """m = g/||g||_1 * (2 - acc_final/acc_init) + mu*m; eta = clip(eta + step*sign(m)).

        ||g||_1 is taken over the whole batch, as in the reference code (over the global batch in a
        distributed run). acc_final and acc_init are the whole batch's too: in a distributed run, the
        global batch's, as methods.base.attack_success gives them (this update does not reduce them
        again). When no example was classified correctly at the initial point the accuracy ratio is taken
        as 1. The accuracies may be numbers or tensors on the device (methods pass tensors, so that the
        update never reads a value back to the host); the ratio is formed in float64 either way.
        """
        acc_final = torch.as_tensor(acc_final, dtype=torch.float64, device=grad.device)
        acc_init = torch.as_tensor(acc_init, dtype=torch.float64, device=grad.device)
        ratio = self.ratio(acc_final, acc_init)
        grad = grad.float()
        norm = all_reduce_sum(grad.abs().sum())
        m = grad / norm.clamp_min(1e-12) * (2.0 - ratio).float() + self.momentum * self.m[index]
        eta = (eta + self.threat.step * m.sign()).clamp(-self.threat.eps, self.threat.eps)
        self.m[index] = m
        self.eta[index] = (x + eta).clamp(0, 1) - x

    @staticmethod
    def ratio(acc_final: torch.Tensor, acc_init: torch.Tensor) -> torch.Tensor:
        """acc_final / acc_init, 1 where acc_init is 0 (no example right at the initial point)."""
        return torch.where(acc_init > 0, acc_final / acc_init.clamp_min(1e-30), torch.ones_like(acc_init))

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
