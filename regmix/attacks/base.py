from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import cw_margin
from ..modes import model_mode
from ..registry import ConfigError
from ..threat import ThreatModel

ATTACK_LOSSES = ("ce", "cw")
MODES = ("eval", "train")


def attack_loss(name: str, logits, y):
    """Summed (not averaged) so that each example's gradient does not depend on the batch size."""
    if name == "ce":
        return F.cross_entropy(logits.float(), y, reduction="sum")
    return cw_margin(logits, y).sum()


def project(delta: torch.Tensor, x: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Into the eps-ball of the threat's norm, then into the [0,1] box around x."""
    if threat.norm == "linf":
        delta = delta.clamp(-threat.eps, threat.eps)
    else:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = delta * (threat.eps / norms).clamp(max=1.0).view(-1, *[1] * (delta.dim() - 1))
    return (x + delta).clamp(0, 1) - x


def random_delta(x: torch.Tensor, threat: ThreatModel) -> torch.Tensor:
    """Uniform in the Linf ball; for L2 a random direction at a uniformly drawn radius."""
    if threat.norm == "linf":
        delta = torch.empty_like(x).uniform_(-threat.eps, threat.eps)
    else:
        delta = torch.randn_like(x)
        norms = delta.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))
        radius = torch.rand(x.shape[0], *[1] * (x.dim() - 1), device=x.device) * threat.eps
        delta = delta / norms.clamp_min(1e-12) * radius
    return project(delta, x, threat)


def attack_still_robust(robust: torch.Tensor, run, still_right, x_adv=None) -> bool:
    """One more attack on the points still robust, compacted (the one form of "attack what is left" of
    Attack's restarts, APGD's targets and AutoAttack's sequence of attacks).

    robust: a bool mask over the batch (updated in place; it may live on another device than the
    examples, as AutoAttack keeps it on the CPU). run(idx): the attack's examples for the points idx.
    still_right(found, idx): a bool mask, over idx, of the examples the model still classifies right.
    A point fooled leaves `robust` and, when `x_adv` is given, takes its example there. False, without
    running, when no point is left."""
    idx = robust.nonzero().squeeze(1)
    if idx.numel() == 0:
        return False
    found = run(idx)
    fooled = ~still_right(found, idx)
    robust[idx[fooled]] = False
    if x_adv is not None:
        x_adv[idx[fooled].to(x_adv.device)] = found[fooled.to(found.device)].to(x_adv.device)
    return True


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "linf":
        return grad.sign()
    norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    return grad / norms.view(-1, *[1] * (grad.dim() - 1))


class Attack:
    """Base: runs `perturb` with the model in the chosen mode, then restores the model's mode.

    Gradients are taken with respect to the perturbation only (never the weights).

    Arguments:
        model (nn.Module): a classifier on [0,1] inputs (normalisation inside the model).
        threat (ThreatModel): the perturbations allowed (norm, eps) and the step settings.
        mode (str): the model's mode while attacking, 'eval' (default) or 'train'.
        check_range (bool): refuse inputs outside [0,1] (default True). The check reads two numbers back
            from the device; a training method whose data the trainer has checked passes False, so that a
            training step never waits on the host (and can be captured as a CUDA graph).

    Example (a new attack is a subclass with `perturb`, registered in attacks/__init__.py):
        >>> class Noise(Attack):
        ...     def perturb(self, x, y):
        ...         return x + project(random_delta(x, self.threat), x, self.threat)
        >>> x_adv = Noise(model, ThreatModel("linf", 0.1))(x, y)
    """

    def __init__(self, model: torch.nn.Module, threat: ThreatModel, *, mode: str = "eval", check_range: bool = True):
        if not isinstance(threat, ThreatModel):
            raise ConfigError(f"threat: expected a ThreatModel, got {type(threat).__name__}")
        if mode not in MODES:
            raise ConfigError(f"attack.mode: must be one of {', '.join(MODES)}, got {mode!r}")
        self.model = model
        self.threat = threat
        self.mode = mode
        self.check_range = check_range

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.check_range and (x.min() < 0 or x.max() > 1):
            raise ConfigError(f"inputs: images must be in [0,1] (pixel units; normalisation lives in the model), "
                              f"found values in [{x.min().item():.3g}, {x.max().item():.3g}]")
        if self.threat.eps == 0:
            return x.detach().clone()
        with model_mode(self.model, training=self.mode == "train"), torch.enable_grad():
            x_adv = self.perturb(x.detach(), y)
        return x_adv.detach()

    def perturb(self, x, y) -> torch.Tensor:
        raise NotImplementedError

    def restarted(self, x, y, restarts: int):
        """`run_once` (a subclass's single run from a random start) `restarts` times, each restart only on
        the examples every earlier one failed to fool (the batch compacted); an example keeps the first
        perturbation that fooled the model."""
        x_adv = self.run_once(x, y)
        if restarts == 1:
            return x_adv
        with torch.no_grad():
            robust = self.model(x_adv).argmax(1) == y
        for _ in range(restarts - 1):
            if not self.rerun_robust(x, y, x_adv, robust, lambda idx: self.run_once(x[idx], y[idx])):
                break
        return x_adv

    def rerun_robust(self, x, y, x_adv, robust, run) -> bool:
        """One more run on the examples still robust (`robust`, a bool mask of the batch): `run(idx)` attacks
        x[idx]; an example it fools takes its point in `x_adv` and leaves `robust` (both updated in place).
        False, without running, when no example is left (attack_still_robust with this model's check)."""
        def still_right(found, idx):
            with torch.no_grad():
                return self.model(found).argmax(1) == y[idx]
        return attack_still_robust(robust, run, still_right, x_adv)

    def gradient(self, x, delta, y, loss: str = "ce"):
        """Gradient of the attack loss with respect to delta, and the logits it was taken at."""
        delta = delta.detach().requires_grad_(True)
        logits = self.model(x + delta)
        (grad,) = torch.autograd.grad(attack_loss(loss, logits, y), delta)
        return grad, logits.detach()

    def settings(self) -> dict:
        return {"norm": self.threat.norm, "eps": round(self.threat.eps, 6), "mode": self.mode}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"
