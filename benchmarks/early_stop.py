"""PGD that stops attacking a point at its first fooling iterate, in two ways that give the same result: the
compacted batch (only still-robust points are computed after each step) and plain masking (every point
computed, fooled ones frozen). The evaluation section (evaluation.py) times one against the other;
tests/test_fast_paths.py checks that they agree. regmix's own PGD runs every step on every point."""
from __future__ import annotations

import torch

from regmix.attacks import PGD
from regmix.attacks.base import ascent_direction, project, random_delta


class EarlyStopPGD(PGD):
    """PGD (regmix.attacks.PGD, same arguments) in which an example keeps the first iterate that fooled
    the model, seen in the logits of the step's own forward pass, and is not attacked further.

    Arguments (besides PGD's):
        compact (bool): run the remaining steps on the still-robust examples only (default True);
            False computes every example and masks the update (the same result).

    Example:
        >>> x_adv = EarlyStopPGD(model, ThreatModel("linf", 8/255, steps=20), compact=False)(x, y)
    """

    def __init__(self, model, threat, *, compact=True, **options):
        super().__init__(model, threat, **options)
        self.compact = bool(compact)

    def run_once(self, x, y):
        delta = random_delta(x, self.threat) if self.random_start else x.new_zeros(x.shape)
        return x + (self._compacted(x, y, delta) if self.compact else self._masked(x, y, delta))

    def _step(self, x, delta, grad):
        return project(delta + self.threat.step * ascent_direction(grad, self.threat.norm), x, self.threat)

    def _compacted(self, x, y, delta):
        delta = delta.clone()
        active = torch.arange(len(y), device=x.device)
        for _ in range(self.threat.steps):
            xa, ya, da = x[active], y[active], delta[active]
            grad, logits = self.gradient(xa, da, ya, self.loss)
            keep = (logits.argmax(1) == ya).nonzero().squeeze(1)
            active = active[keep]
            if active.numel() == 0:
                break
            delta[active] = self._step(xa[keep], da[keep], grad[keep])
        return delta

    def _masked(self, x, y, delta):
        fooled = torch.zeros(len(y), dtype=torch.bool, device=x.device)
        shape = (-1,) + (1,) * (x.dim() - 1)
        for _ in range(self.threat.steps):
            grad, logits = self.gradient(x, delta, y, self.loss)
            fooled |= logits.argmax(1) != y
            delta = torch.where(fooled.view(shape), delta, self._step(x, delta, grad))
        return delta

    def settings(self):
        return {**super().settings(), "stop_on_success": True}
