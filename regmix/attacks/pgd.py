from ..registry import ConfigError
from .base import ATTACK_LOSSES, Attack, ascent_direction, project, random_delta


class PGD(Attack):
    """Projected gradient ascent (Madry et al. 2018): threat.steps steps of size threat.step,
    Linf or L2, from a random start, on the cross-entropy or the CW margin.

    Each restart runs only on the examples that every earlier restart failed to fool (the batch is
    compacted), and an example keeps the first perturbation that fooled the model.

    Arguments:
        model (nn.Module): a classifier on [0,1] inputs (normalisation inside the model).
        threat (ThreatModel): norm (linf or l2), eps, step (default eps/4) and steps (default 10).
        loss (str): 'ce' (cross-entropy, default) or 'cw' (the CW margin).
        random_start (bool): start from a random point in the ball (default True).
        restarts (int): random restarts, each on the still-robust examples (default 1).
        mode (str): the model's mode while attacking, 'eval' or 'train' (default 'eval').
        check_range (bool): refuse inputs outside [0,1] (default True; see Attack).

    Example:
        >>> attack = PGD(model, ThreatModel("linf", 8/255, steps=20))  # or create_attack("pgd20", model, threat)
        >>> x_adv = attack(x, y)
    """

    def __init__(self, model, threat, *, loss="ce", random_start=True, restarts=1, mode="eval",
                 check_range=True):
        super().__init__(model, threat, mode=mode, check_range=check_range)
        if loss not in ATTACK_LOSSES:
            raise ConfigError(f"attack.loss: must be one of {', '.join(ATTACK_LOSSES)}, got {loss!r}")
        if int(restarts) < 1:
            raise ConfigError(f"attack.restarts: must be >= 1, got {restarts}")
        self.loss = loss
        self.random_start = random_start
        self.restarts = int(restarts)

    def run_once(self, x, y):
        delta = random_delta(x, self.threat) if self.random_start else x.new_zeros(x.shape)
        for _ in range(self.threat.steps):
            grad, _ = self.gradient(x, delta, y, self.loss)
            delta = project(delta + self.threat.step * ascent_direction(grad, self.threat.norm), x, self.threat)
        return x + delta

    def perturb(self, x, y):
        return self.restarted(x, y, self.restarts)

    def settings(self):
        return {**super().settings(), "step": round(self.threat.step, 6), "steps": self.threat.steps,
                "loss": self.loss, "random_start": self.random_start, "restarts": self.restarts}
