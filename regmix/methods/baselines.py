"""The baselines RegMix is judged against: standard training, PGD-AT, FGSM-RS, TRADES and MART."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attacks import FGSM, PGD
from ..attacks.base import project
from ..losses import kl
from ..modes import model_mode
from .base import METHODS, Method, detached


@METHODS.register("standard")
class Standard(Method):
    """Cross-entropy on clean inputs; no attack.

    Arguments:
        threat (ThreatModel): unused in training (kept for the common interface).
        true_class_target (float): target probability of the true class. (Default: 1.0, one-hot)
        attack_mode ('eval' | 'train'): unused. (Default: 'eval')

    Examples::
        >>> method = regmix.create_method("standard")
        >>> loss, terms = method.loss(model, x, y)   # terms: {'ce'}
    """
    name = "standard"

    def loss(self, model, x, y, index=None):
        ce = self.ce(model(x), y)
        return ce, detached({"ce": ce})


@METHODS.register("pgd_at")
class PGDAT(Method):
    """Madry et al. 2018: cross-entropy on threat.steps-step PGD examples from a random start.

    Arguments:
        threat (ThreatModel): eps, step and steps of the training PGD (CIFAR: 8/255, 2/255, 10).
        true_class_target (float): target probability of the true class. (Default: 1.0, one-hot)
        attack_mode ('eval' | 'train'): model mode while the attack is crafted. (Default: 'eval')

    Examples::
        >>> method = regmix.create_method("pgd_at", regmix.ThreatModel("linf", 8/255, step=2/255, steps=10))
        >>> loss, terms = method.loss(model, x, y)   # terms: {'ce'}
    """
    name = "pgd_at"

    def loss(self, model, x, y, index=None):
        x_adv = PGD(model, self.threat, mode=self.attack_mode, check_range=False)(x, y)
        ce = self.ce(model(x_adv), y)
        return ce, detached({"ce": ce})


@METHODS.register("fgsm_rs")
class FGSMRS(Method):
    """Wong et al. 2020: one FGSM step of step_ratio * eps from a uniform random start.

    Arguments:
        threat (ThreatModel): eps of the ball (threat.step is not used: the step is step_ratio * eps).
        step_ratio (float): FGSM step as a multiple of eps. (Default: 1.25)
        true_class_target (float): target probability of the true class. (Default: 1.0, one-hot)
        attack_mode ('eval' | 'train'): model mode while the attack is crafted. (Default: 'eval')

    Examples::
        >>> method = regmix.create_method("fgsm_rs", regmix.ThreatModel("linf", 8/255), step_ratio=1.25)
        >>> loss, terms = method.loss(model, x, y)   # terms: {'ce'}
    """
    name = "fgsm_rs"
    defaults = {"step_ratio": 1.25}
    non_negative = ("step_ratio",)

    def loss(self, model, x, y, index=None):
        attack = FGSM(model, self.threat, random_start=True, step_ratio=self.step_ratio, mode=self.attack_mode, check_range=False)
        ce = self.ce(model(attack(x, y)), y)
        return ce, detached({"ce": ce})


@METHODS.register("trades")
class TRADES(Method):
    """Zhang et al. 2019: CE(f(x), y) + beta * KL(f(x) || f(x_adv)); x_adv maximises that KL with
    threat.steps sign steps from x + 0.001 N(0, 1).

    Arguments:
        threat (ThreatModel): eps, step and steps of the KL-maximising attack.
        beta (float): weight of the KL term. (Default: 6.0)
        true_class_target (float): target probability of the true class in the CE. (Default: 1.0)
        attack_mode ('eval' | 'train'): model mode while the attack is crafted. (Default: 'eval')

    Examples::
        >>> method = regmix.create_method("trades", regmix.ThreatModel("linf", 8/255, step=2/255, steps=10), beta=6.0)
        >>> loss, terms = method.loss(model, x, y)   # terms: {'ce', 'kl'}
    """
    name = "trades"
    defaults = {"beta": 6.0}
    non_negative = ("beta",)

    def adversarial(self, model, x):
        with model_mode(model, training=self.attack_mode == "train"):
            with torch.no_grad():
                logits_clean = model(x)
            delta = project(0.001 * torch.randn_like(x), x, self.threat)
            for _ in range(self.threat.steps):
                delta.requires_grad_(True)
                with torch.enable_grad():
                    loss = kl(logits_clean, model(x + delta), reduction="batchmean")
                    (grad,) = torch.autograd.grad(loss, delta)
                delta = project(delta.detach() + self.threat.step * grad.sign(), x, self.threat)
        return (x + delta).detach()

    def loss(self, model, x, y, index=None):
        x_adv = self.adversarial(model, x)
        logits_clean = model(x)
        ce = self.ce(logits_clean, y)
        robust = self.beta * kl(logits_clean, model(x_adv))
        return ce + robust, detached({"ce": ce, "kl": robust})


@METHODS.register("mart")
class MART(Method):
    """Wang et al. 2020: boosted CE on the PGD example + beta * KL(f(x) || f(x_adv)) * (1 - f(x)_y).

    Arguments:
        threat (ThreatModel): eps, step and steps of the training PGD.
        beta (float): weight of the misclassification-aware KL term. (Default: 5.0; 6.0 for WRN-34-10)
        true_class_target (float): target probability of the true class in the CE. (Default: 1.0)
        attack_mode ('eval' | 'train'): model mode while the attack is crafted. (Default: 'eval')

    Examples::
        >>> method = regmix.create_method("mart", regmix.ThreatModel("linf", 8/255, step=2/255, steps=10), beta=5.0)
        >>> loss, terms = method.loss(model, x, y)   # terms: {'bce', 'kl'}
    """
    name = "mart"
    defaults = {"beta": 5.0}
    non_negative = ("beta",)

    def loss(self, model, x, y, index=None):
        x_adv = PGD(model, self.threat, mode=self.attack_mode, check_range=False)(x, y)
        logits_adv = model(x_adv).float()
        logits_clean = model(x).float()
        p_adv = logits_adv.softmax(1)
        # The strongest wrong class: the runner-up when the top class is the true one.
        top2 = p_adv.topk(2, dim=1).indices
        wrong = torch.where(top2[:, 0] == y, top2[:, 1], top2[:, 0])
        boosted_ce = self.ce(logits_adv, y) + F.nll_loss(torch.log(1.0001 - p_adv + 1e-12), wrong)
        p_clean = logits_clean.softmax(1)
        kl_per_example = (p_clean * (torch.log(p_clean + 1e-12) - torch.log(p_adv + 1e-12))).sum(1)
        weight = 1.0000001 - p_clean.gather(1, y[:, None]).squeeze(1)
        robust = self.beta * (kl_per_example * weight).mean()
        return boosted_ce + robust, detached({"bce": boosted_ce, "kl": robust})
