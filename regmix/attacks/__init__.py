"""Attacks: one small class each, on a base that saves and restores the model's mode.

`create_attack(name, model, threat, **options)`; `ATTACKS.names()` lists them.
"""
from .apgd import APGD, APGDT
from .base import Attack
from .fgsm import FGSM
from .pgd import PGD
from .prior import PriorGuidedPerturbation
from .specs import ATTACKS, parse_attack


def create_attack(name, model, threat, **options) -> Attack:
    """Any attack name of `specs.parse_attack` (the one vocabulary), e.g. 'pgd', 'pgd20', 'cw', 'aa'."""
    return parse_attack(name).build(model, threat, **options)


__all__ = ["APGD", "APGDT", "ATTACKS", "Attack", "FGSM", "PGD", "PriorGuidedPerturbation", "create_attack"]
