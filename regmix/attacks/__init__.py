"""Attacks: one small class each, on a base that saves and restores the model's mode.

`create_attack(name, model, threat, **options)`; `ATTACKS.names()` lists them.
"""
from ..registry import Registry

ATTACKS = Registry("attack")

from .base import Attack  # noqa: E402
from .fgsm import FGSM  # noqa: E402
from .pgd import PGD  # noqa: E402
from .prior import PriorGuidedPerturbation  # noqa: E402

ATTACKS.register("fgsm")(lambda model, threat, **kw: FGSM(model, threat, random_start=False, **kw))
ATTACKS.register("fgsm_rs")(lambda model, threat, **kw: FGSM(model, threat, random_start=True, **kw))
ATTACKS.register("pgd")(lambda model, threat, **kw: PGD(model, threat, **kw))
ATTACKS.register("cw")(lambda model, threat, **kw: PGD(model, threat, loss="cw", **kw))


def create_attack(name, model, threat, **options) -> Attack:
    """Any attack name of `specs.parse_attack` (the one vocabulary), e.g. 'pgd', 'pgd20', 'cw', 'aa'."""
    from .specs import parse_attack
    return parse_attack(name).build(model, threat, **options)


__all__ = ["ATTACKS", "Attack", "FGSM", "PGD", "PriorGuidedPerturbation", "create_attack"]
