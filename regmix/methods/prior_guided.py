"""FGSM-PGK (Jia et al. 2024) and RegMix (Liu & Ojha 2025), which shares its attack pipeline and
replaces its MSE regulariser with AMR + AGR (see docs/method.md)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attacks import PriorGuidedPerturbation
from ..attacks.prior import PRIOR_INITS
from ..attacks.base import attack_loss, project
from ..losses import KL_REDUCTIONS, agr, amr_terms
from ..registry import ConfigError
from . import METHODS
from .base import Method, batch_accuracy, detached


class PriorGuided(Method):
    """The FGSM-PGK pipeline: x + eta (the example's prior perturbation) -> z_init; one sign step of
    threat.step from eta (or attack_steps PGD steps) -> d_final -> z_final; eta moves by momentum.

    z_init is computed once, in the model's training mode and with its graph kept: it gives both the
    attack gradient and the regulariser's second output, as in the reference code.
    Without example indices (index=None) eta is drawn at random and no state is kept.
    """
    defaults = {"momentum": 0.3, "reset_every": 10, "attack_steps": 1, "prior_init": "sign"}

    def validate(self):
        if self.prior_init not in PRIOR_INITS:
            raise ConfigError(f"method.options.prior_init: must be one of {', '.join(PRIOR_INITS)}, got {self.prior_init!r}")
        if isinstance(self.attack_steps, bool) or not isinstance(self.attack_steps, int) or self.attack_steps < 1:
            raise ConfigError(f"method.options.attack_steps: must be an integer >= 1, got {self.attack_steps!r}")
        if self.threat.norm != "linf":
            raise ConfigError(f"threat.norm: {self.name} is defined for linf only, got {self.threat.norm!r}")
        self.prior = None

    def setup(self, num_samples, sample_shape, device, seed=0):
        self.prior = PriorGuidedPerturbation(self.threat, num_samples, sample_shape, momentum=self.momentum,
                                             reset_every=self.reset_every, device=device, seed=seed,
                                             init=self.prior_init)

    def sync(self, mine):
        if self.prior is not None:
            self.prior.sync(mine)

    def set_threat(self, threat):
        super().set_threat(threat)
        if self.prior is not None:
            self.prior.threat = threat

    def start_epoch(self, epoch):
        if self.prior is not None:
            self.prior.start_epoch(epoch)

    def state_dict(self):
        return {} if self.prior is None else {"prior": self.prior.state_dict()}

    def load_state_dict(self, state):
        if self.prior is not None and "prior" in state:
            self.prior.load_state_dict(state["prior"])

    def loss(self, model, x, y, index=None):
        stateful = self.prior is not None and index is not None
        if stateful:
            eta = self.prior.initial(x, index)
        else:
            eta = torch.empty_like(x).uniform_(-self.threat.eps, self.threat.eps)
            if self.prior_init == "sign":  # FGSM-PGK's start: every pixel at +-eps
                eta = self.threat.eps * eta.sign()
            eta = project(eta, x, self.threat)
        eta.requires_grad_(True)
        logits_init = model(x + eta)
        (grad,) = torch.autograd.grad(self.ce(logits_init, y), eta, retain_graph=True)
        eta = eta.detach()
        delta = project(eta + self.threat.step * grad.sign(), x, self.threat)
        for _ in range(self.attack_steps - 1):
            delta.requires_grad_(True)
            (g,) = torch.autograd.grad(attack_loss("ce", model(x + delta), y), delta)
            delta = project(delta.detach() + self.threat.step * g.sign(), x, self.threat)
        logits_final = model(x + delta.detach())
        if stateful:
            self.prior.update(x, index, eta, grad, batch_accuracy(logits_final, y), batch_accuracy(logits_init, y))
        return self.objective(model, x, y, logits_init, logits_final)

    def objective(self, model, x, y, logits_init, logits_final):
        raise NotImplementedError


@METHODS.register("pgk")
class PGK(PriorGuided):
    """FGSM-PGK: LS-CE(z_final) + lam * MSE(z_final, z_init) on logits (mean over batch x classes)."""
    name = "pgk"
    defaults = {**PriorGuided.defaults, "lam": 5.6, "label_smoothing": 0.5}
    non_negative = ("lam",)

    def objective(self, model, x, y, logits_init, logits_final):
        ce = self.ce(logits_final, y)
        mse = self.lam * F.mse_loss(logits_final.float(), logits_init.float())
        return ce + mse, detached({"ce": ce, "mse": mse})


@METHODS.register("regmix")
class RegMix(PriorGuided):
    """RegMix: LS-CE(z_final) + alpha KL(f_final||f_init) + beta KL(f_init||f_final) + gamma KL(f_clean||f_final).

    alpha, beta, gamma are provisional until the sweep of docs/method.md is run; label smoothing
    follows FGSM-PGK so that the two differ in the regulariser only.
    """
    name = "regmix"
    defaults = {**PriorGuided.defaults, "alpha": 1.0, "beta": 0.5, "gamma": 1.0, "temperature": 1.0,
                "kl_reduction": "batchmean", "detach_target": False, "label_smoothing": 0.5}
    non_negative = ("alpha", "beta", "gamma")

    def validate(self):
        super().validate()
        if self.kl_reduction not in KL_REDUCTIONS:
            raise ConfigError(f"method.options.kl_reduction: must be one of {', '.join(KL_REDUCTIONS)}, "
                              f"got {self.kl_reduction!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or self.temperature <= 0:
            raise ConfigError(f"method.options.temperature: must be a number > 0, got {self.temperature!r}")

    def objective(self, model, x, y, logits_init, logits_final):
        options = dict(temperature=self.temperature, reduction=self.kl_reduction, detach_target=self.detach_target)
        ce = self.ce(logits_final, y)
        final_init, init_final = amr_terms(logits_final, logits_init, self.alpha, self.beta, **options)
        total = ce + final_init + init_final
        terms = {"ce": ce, "amr_final_init": final_init, "amr_init_final": init_final}
        if self.gamma > 0:
            terms["agr"] = agr(model(x), logits_final, self.gamma, **options)
            total = total + terms["agr"]
        return total, detached(terms)
