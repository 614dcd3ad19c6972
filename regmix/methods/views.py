"""The three inputs RegMix compares: clean x, x + d_init and x + d_final.

One function builds them for the training objective (pgk, regmix), the softmax diagnostics and the
explorers, so that what a figure shows is what the method trains on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..attacks.base import project
from ..attacks.prior import PRIOR_INITS
from ..threat import ThreatModel

STARTS = PRIOR_INITS  # the prior's own kinds of (re)start


def ce_sum(logits, y):
    """The attack loss of the diagnostics: summed cross-entropy (the sign step ignores the scale)."""
    return F.cross_entropy(logits.float(), y, reduction="sum")


def random_start(x: torch.Tensor, threat: ThreatModel, *, kind: str = "uniform",
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A d_init without a prior: uniform in the eps-ball ('uniform'), or FGSM-PGK's corners of the ball
    ('sign': eps times the sign of the uniform draw); kept inside the [0, 1] box.

    Without a generator the draw comes from torch's global stream on x's device; with one (a CPU
    generator) it is drawn on the CPU and moved, so that it does not depend on the device.
    """
    if kind not in STARTS:
        raise ValueError(f"kind: must be one of {', '.join(STARTS)}, got {kind!r}")
    eps = threat.eps
    if generator is None:
        eta = torch.empty_like(x).uniform_(-eps, eps)
    else:
        eta = (torch.rand(x.shape, generator=generator) * 2 - 1).to(x.device, x.dtype) * eps
    if kind == "sign":
        eta = eps * eta.sign()
    return project(eta, x, threat)


@dataclass
class PerturbationViews:
    clean: torch.Tensor
    init: torch.Tensor                   # x + d_init
    final: torch.Tensor                  # x + d_final, detached
    eta: torch.Tensor                    # d_init, detached
    grad: torch.Tensor                   # gradient of `loss` wrt d_init (FGSM-PGK's prior momentum uses it)
    logits_init: torch.Tensor            # f(x + d_init) from the first step; keeps its graph if keep_graph
    logits: Optional[dict] = None        # {'clean', 'init', 'final'} -> logits without graph, if asked


def perturbation_views(model, x, y, eta, threat: ThreatModel, *, steps: int = 1,
                       loss: Callable = ce_sum, keep_graph: bool = False, logits: bool = False) -> PerturbationViews:
    """From d_init = eta: one sign step of threat.step on `loss` (FGSM-PGK's step), then steps - 1
    further projected sign steps on the same loss give d_final.

    The model stays in the mode it is in (the caller chooses: pgk/regmix attack in training mode, the
    diagnostics in eval mode). keep_graph keeps f(x + d_init)'s graph so that a training loss can use
    it (the reference code computes it once, for the attack gradient and for its regulariser).
    logits=True adds the three views' logits computed without a graph.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: must be an integer >= 1, got {steps!r}")
    eta = eta.detach().requires_grad_(True)
    with torch.enable_grad():
        logits_init = model(x + eta)
        (grad,) = torch.autograd.grad(loss(logits_init, y), eta, retain_graph=keep_graph)
    eta = eta.detach()
    delta = project(eta + threat.step * grad.sign(), x, threat)
    for _ in range(steps - 1):
        delta.requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(loss(model(x + delta), y), delta)
        delta = project(delta.detach() + threat.step * g.sign(), x, threat)
    delta = delta.detach()
    views = PerturbationViews(clean=x, init=x + eta, final=x + delta, eta=eta, grad=grad,
                              logits_init=logits_init if keep_graph else logits_init.detach())
    if logits:
        with torch.no_grad():
            views.logits = {"clean": model(x), "init": model(views.init), "final": model(views.final)}
    return views
