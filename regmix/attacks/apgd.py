from typing import List

import torch

from ..registry import ConfigError
from .base import Attack, ascent_direction, project, random_delta

APGD_LOSSES = ("ce", "dlr")


def dlr_loss(logits, y):
    """Per-example difference of logits ratio (Croce & Hein 2020): -(z_y - max_{j != y} z_j) / (z_(1) -
    z_(3)), z_(k) the k-th largest logit. Invariant to the logits' shift and scale, so a saturated
    softmax (large logits) does not flatten it as it flattens the cross-entropy. Needs 3 classes."""
    logits = logits.float()
    top = logits.sort(1, descending=True).values
    true = logits.gather(1, y[:, None]).squeeze(1)
    # the largest other logit: the first unless the first is the true class
    other = torch.where(top[:, 0] == true, top[:, 1], top[:, 0])
    return -(true - other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr_loss(logits, y, target):
    """Per-example targeted DLR (Croce & Hein 2020): -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2), raised
    as the target's logit t overtakes the true class's; invariant to the logits' shift and scale. Needs 4
    classes."""
    logits = logits.float()
    top = logits.sort(1, descending=True).values
    true = logits.gather(1, y[:, None]).squeeze(1)
    aimed = logits.gather(1, target[:, None]).squeeze(1)
    return -(true - aimed) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + 1e-12)


def checkpoints(steps: int) -> List[int]:
    """The iterations at which APGD may halve its step: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j +
    max(p_j - p_{j-1} - 0.03, 0.06), each p_j < 1 taken as ceil(p_j * steps), without repeats or 0."""
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    found = []
    for value in p[1:]:
        at = -(-round(value * steps, 9) // 1)  # ceil, free of float noise (0.22 * 100 = 22.000000000000004)
        if 0 < at < steps and int(at) not in found:
            found.append(int(at))
    return found


class APGD(Attack):
    """Auto-PGD (Croce & Hein, ICML 2020): threat.steps gradient steps with momentum 0.75 whose step size
    starts at 2 eps and is halved, per example, at checkpoints where the loss stopped rising (in fewer than
    rho of the steps since the last checkpoint, or not at all with the step unchanged); a halving restarts
    the example from the best point found. Linf or L2, on the cross-entropy or the DLR loss. It needs no
    step size, and where the fixed step of PGD stalls on a flattened or noisy loss it keeps finding
    adversarial points: the masking check of training/monitor.py relies on it.

    An example keeps the first misclassified point found (else the point of highest loss); each restart
    runs only on the examples every earlier one failed to fool.

    Arguments:
        model (nn.Module): a classifier on [0,1] inputs (normalisation inside the model).
        threat (ThreatModel): norm (linf or l2), eps and steps (default 10); threat.step is not used.
        loss (str): 'ce' (cross-entropy, default) or 'dlr' (difference of logits ratio; 3 classes or more).
        restarts (int): random restarts, each on the still-robust examples (default 1).
        rho (float): the fraction of loss-raising steps below which the step is halved (default 0.75).
        mode (str): the model's mode while attacking, 'eval' or 'train' (default 'eval').
        check_range (bool): refuse inputs outside [0,1] (default True; see Attack).

    Example:
        >>> attack = APGD(model, ThreatModel("linf", 0.2, steps=20), loss="dlr")  # or create_attack("apgd_dlr20", ...)
        >>> x_adv = attack(x, y)
    """

    def __init__(self, model, threat, *, loss="ce", restarts=1, rho=0.75, mode="eval", check_range=True):
        super().__init__(model, threat, mode=mode, check_range=check_range)
        if loss not in APGD_LOSSES:
            raise ConfigError(f"attack.loss: must be one of {', '.join(APGD_LOSSES)}, got {loss!r}")
        if int(restarts) < 1:
            raise ConfigError(f"attack.restarts: must be >= 1, got {restarts}")
        if not 0 < float(rho) <= 1:
            raise ConfigError(f"attack.rho: must be a finite number in (0, 1], got {rho}")
        self.loss = loss
        self.restarts = int(restarts)
        self.rho = float(rho)

    def objective(self, logits, y):
        """The per-example loss the attack raises."""
        if self.loss == "ce":
            return torch.nn.functional.cross_entropy(logits.float(), y, reduction="none")
        if logits.shape[1] < 3:
            raise ConfigError("attack.loss: 'dlr' needs a classifier of 3 classes or more")
        return dlr_loss(logits, y)

    def _losses(self, x, delta, y):
        """Per-example losses, their gradient with respect to delta, and whether each is misclassified."""
        delta = delta.detach().requires_grad_(True)
        logits = self.model(x + delta)
        losses = self.objective(logits, y)
        (grad,) = torch.autograd.grad(losses.sum(), delta)
        return losses.detach(), grad, logits.detach().argmax(1) != y

    def run_once(self, x, y):
        steps, shape = self.threat.steps, (-1, *[1] * (x.dim() - 1))
        eta = torch.full((len(y),), 2.0 * self.threat.eps, device=x.device)
        delta = random_delta(x, self.threat)
        losses, grad, fooled = self._losses(x, delta, y)
        found = torch.where(fooled.view(shape), delta, torch.zeros_like(delta))
        ever = fooled.clone()
        best_loss, best_delta, best_grad = losses.clone(), delta.clone(), grad.clone()
        previous = delta
        marks, since, raised = set(checkpoints(steps)), 0, torch.zeros(len(y), device=x.device)
        last_eta, last_best = eta.clone(), best_loss.clone()
        for k in range(steps):
            z = project(delta + eta.view(shape) * ascent_direction(grad, self.threat.norm), x, self.threat)
            alpha = 1.0 if k == 0 else 0.75  # no momentum on the first step
            new = project(delta + alpha * (z - delta) + (1 - alpha) * (delta - previous), x, self.threat)
            previous, delta = delta, new
            new_losses, grad, fooled = self._losses(x, delta, y)
            found = torch.where((fooled & ~ever).view(shape), delta, found)
            ever |= fooled
            raised += (new_losses > losses).float()
            losses = new_losses
            better = losses > best_loss
            best_loss = torch.where(better, losses, best_loss)
            best_delta = torch.where(better.view(shape), delta, best_delta)
            best_grad = torch.where(better.view(shape), grad, best_grad)
            since += 1
            if k + 1 in marks:
                halve = (raised < self.rho * since) | ((eta == last_eta) & (best_loss == last_best))
                last_eta, last_best = eta.clone(), best_loss.clone()
                eta = torch.where(halve, eta / 2, eta)
                # a halved example restarts from its best point (and its gradient there)
                delta = torch.where(halve.view(shape), best_delta, delta)
                previous = torch.where(halve.view(shape), best_delta, previous)
                grad = torch.where(halve.view(shape), best_grad, grad)
                since, raised = 0, torch.zeros_like(raised)
        return x + torch.where(ever.view(shape), found, best_delta)

    def perturb(self, x, y):
        return self.restarted(x, y, self.restarts)

    def settings(self) -> dict:
        return {**super().settings(), "steps": self.threat.steps, "loss": self.loss, "restarts": self.restarts}


class APGDT(APGD):
    """Targeted Auto-PGD (APGD-T, Croce & Hein 2020, AutoAttack's second attack): APGD on the targeted DLR
    loss, run once for each of the `targets` classes the clean point ranks highest after its first (its
    2nd, 3rd, ... largest logit), each run only on the examples every earlier one left correctly
    classified. An example counts as fooled when it is misclassified, into any class, and keeps the first
    point that fooled the model; one never fooled keeps the first target's point, one misclassified to
    begin with is returned unperturbed. Aiming at one wrong class at a time finds adversarial points that
    untargeted losses miss on models whose loss surface is flat or noisy around the true class (the
    masking check of training/monitor.py).

    Arguments:
        model (nn.Module): a classifier on [0,1] inputs, 4 classes or more.
        threat (ThreatModel): norm (linf or l2), eps and steps per target (default 10).
        targets (int): the target classes tried, from 1 to the classes minus one (default 9, AutoAttack's).
        restarts (int): random restarts per target (default 1).
        rho, mode, check_range: as APGD.

    Example:
        >>> attack = APGDT(model, ThreatModel("linf", 0.2, steps=20), targets=3)  # or create_attack("apgd_t20", ...)
        >>> x_adv = attack(x, y)
    """

    def __init__(self, model, threat, *, targets=9, restarts=1, rho=0.75, mode="eval", check_range=True):
        super().__init__(model, threat, loss="dlr", restarts=restarts, rho=rho, mode=mode, check_range=check_range)
        if int(targets) < 1:
            raise ConfigError(f"attack.targets: must be >= 1, got {targets}")
        self.targets = int(targets)
        self._aimed = None  # the target class of each example of the batch run_once is attacking

    def objective(self, logits, y):
        return targeted_dlr_loss(logits, y, self._aimed)

    def perturb(self, x, y):
        with torch.no_grad():
            logits = self.model(x)
        if logits.shape[1] < 4 or self.targets > logits.shape[1] - 1:
            raise ConfigError(f"attack.targets: must be between 1 and the classes minus one, and the classifier "
                              f"needs 4 classes or more; got {self.targets} targets for {logits.shape[1]} classes")
        ranked = logits.argsort(1, descending=True)
        robust = logits.argmax(1) == y
        x_adv = x.clone()
        aims = [r for r in range(1, self.targets + 1) for _ in range(self.restarts)]
        for i, rank in enumerate(aims):
            def run(idx, rank=rank, first=i == 0):
                self._aimed = ranked[idx, rank]
                found = self.run_once(x[idx], y[idx])
                if first:  # a point never fooled keeps the first run's point, as in Attack.restarted
                    x_adv[idx] = found
                return found

            if not self.rerun_robust(x, y, x_adv, robust, run):
                break
        self._aimed = None
        return x_adv

    def settings(self) -> dict:
        return {**super().settings(), "targets": self.targets}
