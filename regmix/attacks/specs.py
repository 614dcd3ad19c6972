"""Evaluation attacks by name: clean, fgsm, pgdN, cwN, aa, aa-plus, aa:apgd-ce+square, square."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import List, Optional

from ..registry import ConfigError
from .fgsm import FGSM
from .pgd import PGD

AA_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "fab-t", "apgd-t", "square")
_PATTERN = re.compile(r"^(clean|fgsm|square|pgd(\d+)|cw(\d+)|aa(-plus)?(?::([a-z+\-]+))?)$")
ALLOWED = "clean, fgsm, pgdN, cwN (N steps), aa, aa-plus, aa:ATTACK+ATTACK (from " + ", ".join(AA_ATTACKS) + "), square"


@dataclass(frozen=True)
class AttackSpec:
    name: str
    kind: str                      # clean | fgsm | pgd | cw | autoattack
    steps: int = 0
    aa_version: Optional[str] = None
    aa_attacks: List[str] = field(default_factory=list)

    @property
    def white_box(self) -> bool:
        return self.kind in ("fgsm", "pgd", "cw")

    def build(self, model, threat, *, step=None, restarts=1):
        """A callable (x, y) -> x_adv for the white-box kinds."""
        if self.kind == "fgsm":
            return FGSM(model, threat)
        if self.kind in ("pgd", "cw"):
            t = threat.with_(steps=self.steps, step=threat.eps / 4 if step is None else step)
            return PGD(model, t, loss="ce" if self.kind == "pgd" else "cw", restarts=restarts)
        raise ValueError(f"{self.name} is not a white-box attack")


def parse_attack(name: str) -> AttackSpec:
    text = name.strip().lower()
    match = _PATTERN.match(text)
    if not match:
        raise ConfigError(f"--attacks: unknown attack {name!r}; allowed: {ALLOWED}")
    if text in ("clean", "fgsm"):
        return AttackSpec(text, text)
    if match.group(2) or match.group(3):
        steps = int(match.group(2) or match.group(3))
        if not 1 <= steps <= 10000:
            raise ConfigError(f"--attacks: {name!r} needs between 1 and 10000 steps")
        return AttackSpec(text, "pgd" if match.group(2) else "cw", steps=steps)
    if text == "square":
        return AttackSpec(text, "autoattack", aa_version="custom", aa_attacks=["square"])
    if match.group(5):
        attacks = match.group(5).split("+")
        unknown = [a for a in attacks if a not in AA_ATTACKS]
        if unknown or len(set(attacks)) != len(attacks):
            raise ConfigError(f"--attacks: {name!r}: AutoAttack attacks must be distinct names from "
                              f"{', '.join(AA_ATTACKS)}")
        return AttackSpec(text, "autoattack", aa_version="custom", aa_attacks=attacks)
    return AttackSpec(text, "autoattack", aa_version="plus" if match.group(4) else "standard")


def parse_attacks(text: str) -> List[AttackSpec]:
    names = [n for n in (s.strip() for s in text.split(",")) if n]
    if not names:
        raise ConfigError(f"--attacks: give at least one attack; allowed: {ALLOWED}")
    specs = [parse_attack(n) for n in names]
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError(f"--attacks: an attack is listed twice in {text!r}")
    if specs[0].name != "clean" and "clean" not in {s.name for s in specs}:
        specs.insert(0, parse_attack("clean"))  # every other accuracy is relative to it
    return specs
