from .base import Attack, ascent_direction, project, random_delta


class FGSM(Attack):
    """One gradient-sign step (Goodfellow et al. 2015). With random_start: FGSM-RS (Wong et al. 2020),
    a uniform start in the ball and a step of step_ratio * eps (1.25 by default).

    Arguments:
        model (nn.Module): a classifier on [0,1] inputs (normalisation inside the model).
        threat (ThreatModel): norm (linf or l2) and eps; threat.step and threat.steps are not used.
        random_start (bool): start from a uniform point in the ball (default False).
        step_ratio (float): the step in units of eps (default 1.0, or 1.25 with random_start).
        loss (str): 'ce' or 'cw' (default 'ce').
        mode (str): the model's mode while attacking, 'eval' or 'train' (default 'eval').
        check_range (bool): refuse inputs outside [0,1] (default True; see Attack).

    Example:
        >>> attack = FGSM(model, ThreatModel("linf", 8/255))      # or create_attack("fgsm", model, threat)
        >>> x_adv = attack(x, y)
    """

    def __init__(self, model, threat, *, random_start=False, step_ratio=None, loss="ce", mode="eval",
                 check_range=True):
        super().__init__(model, threat, mode=mode, check_range=check_range)
        self.random_start = random_start
        self.step_ratio = (1.25 if random_start else 1.0) if step_ratio is None else float(step_ratio)
        self.loss = loss

    def perturb(self, x, y):
        delta = random_delta(x, self.threat) if self.random_start else x.new_zeros(x.shape)
        grad, _ = self.gradient(x, delta, y, self.loss)
        delta = delta + self.step_ratio * self.threat.eps * ascent_direction(grad, self.threat.norm)
        return x + project(delta, x, self.threat)

    def settings(self):
        return {**super().settings(), "random_start": self.random_start, "step_ratio": self.step_ratio,
                "loss": self.loss}
