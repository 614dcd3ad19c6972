"""Attack names, parsed in one place. Every caller (`create_attack`, `regmix eval --attacks`, the
diagnostics' `attack=`) goes through `parse_attack`, so one name means one attack everywhere:

    clean, none     no attack (accuracy on clean inputs); `none` is a synonym of `clean`
    fgsm, fgsm_rs   one signed-gradient step; fgsm_rs: from a random start, step 1.25 eps
    pgd, cw         the threat's own steps and step size (threat.steps, threat.step)
    pgdN, cwN       N steps of size eps/4 (or the `step` given), cross-entropy or CW margin loss
    apgd, apgd_dlr  Auto-PGD (regmix's own, attacks/apgd.py) on the cross-entropy or the DLR loss, the
                    threat's steps; apgdN, apgd_dlrN: N steps (its step size adapts itself)
    apgd_t          targeted Auto-PGD on the targeted DLR loss, 9 target classes of the threat's steps
                    each; apgd_tN: N steps per target
    aa, aa-plus     AutoAttack, standard or plus version (fra31's; optional dependency)
    aa:A+B          AutoAttack's attacks A, B, ... (from apgd-ce, apgd-dlr, fab, fab-t, apgd-t, square)
    square          Square alone (black-box, 5,000 queries)

`parse_attack(name)` -> AttackSpec; `spec.build(model, threat)` -> a callable (x, y) -> x_adv (None for
clean); `attack_factory(name, threat)` -> model -> attack, what the diagnostics take.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, List, Optional

from ..checks import MAX_STEPS  # one bound for attack steps everywhere (config, method options, names)
from ..registry import ConfigError, Registry, suggest
from .apgd import APGD, APGDT
from .autoattack import AutoAttackRunner
from .fgsm import FGSM
from .pgd import PGD

ATTACKS = Registry("attack")
ATTACKS.register("fgsm")(lambda model, threat, **kw: FGSM(model, threat, random_start=False, **kw))
ATTACKS.register("fgsm_rs")(lambda model, threat, **kw: FGSM(model, threat, random_start=True, **kw))
ATTACKS.register("pgd")(lambda model, threat, **kw: PGD(model, threat, **kw))
ATTACKS.register("cw")(lambda model, threat, **kw: PGD(model, threat, loss="cw", **kw))
ATTACKS.register("apgd")(lambda model, threat, **kw: APGD(model, threat, **kw))
ATTACKS.register("apgd_dlr")(lambda model, threat, **kw: APGD(model, threat, loss="dlr", **kw))
ATTACKS.register("apgd_t")(lambda model, threat, **kw: APGDT(model, threat, **kw))

AA_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "fab-t", "apgd-t", "square")
MULTI_STEP = ("pgd", "cw", "apgd", "apgd_dlr", "apgd_t")
_NAME = re.compile(r"^([a-z_]+?)(\d+)?$")
_AA = re.compile(r"^aa(-plus)?(?::(.*))?$")
ALLOWED = ("clean, none, fgsm, fgsm_rs, pgd, cw, apgd, apgd_dlr, apgd_t, pgdN, cwN, apgdN, apgd_dlrN, apgd_tN (N steps), "
           "aa, aa-plus, "
           "aa:ATTACK+ATTACK (from "
           + ", ".join(AA_ATTACKS) + "), square")


@dataclass(frozen=True)
class AttackSpec:
    """A parsed attack name. kind: clean | fgsm | fgsm_rs | pgd | cw | autoattack; steps: the step
    count named (pgdN, cwN), None for the threat's own."""
    name: str
    kind: str
    steps: Optional[int] = None
    aa_version: Optional[str] = None
    aa_attacks: List[str] = field(default_factory=list)

    @property
    def white_box(self) -> bool:
        return self.kind in ATTACKS

    def threat_for(self, threat, step=None):
        """The threat the attack runs at: pgdN/cwN/apgdN set N steps of `step` (default eps/4; APGD ignores it)."""
        if self.kind in MULTI_STEP and self.steps is not None:
            return threat.with_(steps=self.steps, step=threat.eps / 4 if step is None else step)
        return threat if step is None else threat.with_(step=step)

    def at(self, threat) -> "AttackSpec":
        """This spec with the step count it will run (a bare pgd/cw takes the threat's)."""
        if self.kind in MULTI_STEP and self.steps is None:
            return replace(self, steps=threat.steps)
        return self

    def build(self, model, threat, *, step=None, restarts: int = 1, seed: int = 0, device=None,
              batch_size: int = 250, **options):
        """The attack on `model` at `threat`: an Attack for the white-box kinds, an AutoAttackRunner
        (also a callable (x, y) -> x_adv) for the AutoAttack kinds, None for clean.

        restarts: PGD/CW random restarts; seed, device, batch_size: AutoAttack's; other options go to
        the attack class (e.g. loss, random_start, mode).
        """
        if self.kind == "clean":
            return None
        if self.white_box:
            if self.kind in MULTI_STEP:
                options["restarts"] = restarts
            return ATTACKS.get(self.kind)(model, self.threat_for(threat, step), **options)
        if device is None:
            device = next(model.parameters()).device
        return AutoAttackRunner(model, threat, version=self.aa_version, attacks=self.aa_attacks or None,
                                seed=seed, device=device, batch_size=batch_size, **options)

    def factory(self, threat, **options) -> Optional[Callable]:
        """model -> attack (None for clean): for code that builds the attack once per model."""
        if self.kind == "clean":
            return None
        return lambda model: self.build(model, threat, **options)


def parse_attack(name: str, field: str = "attack") -> AttackSpec:
    """One attack name -> AttackSpec; a bad name raises ConfigError naming `field`."""
    text = str(name).strip().lower()
    if text in ("clean", "none"):
        return AttackSpec("clean", "clean")
    if text == "square":
        return AttackSpec(text, "autoattack", aa_version="custom", aa_attacks=["square"])
    aa = _AA.match(text)
    if aa:
        if aa.group(2) is None:
            return AttackSpec(text, "autoattack", aa_version="plus" if aa.group(1) else "standard")
        attacks = aa.group(2).split("+")
        if aa.group(1) or not all(attacks) or any(a not in AA_ATTACKS for a in attacks) \
                or len(set(attacks)) != len(attacks):
            raise ConfigError(f"{field}: {name!r}: AutoAttack attacks must be distinct names from "
                              f"{', '.join(AA_ATTACKS)}, joined by '+' (e.g. aa:apgd-ce+apgd-t)")
        return AttackSpec(text, "autoattack", aa_version="custom", aa_attacks=attacks)
    match = _NAME.match(text)
    base, count = (match.group(1), match.group(2)) if match else (text, None)
    if base not in ATTACKS or (count is not None and base not in MULTI_STEP):
        known = ["clean", "none", *ATTACKS.names(), "aa", "aa-plus", "square"]
        raise ConfigError(f"{field}: unknown name {name!r}{suggest(text, known)}; allowed: {ALLOWED}")
    if count is None:
        return AttackSpec(text, base)
    if not 1 <= int(count) <= MAX_STEPS:
        raise ConfigError(f"{field}: {name!r} needs between 1 and {MAX_STEPS} steps")
    return AttackSpec(text, base, steps=int(count))


def parse_attacks(text: str, field: str = "attacks") -> List[AttackSpec]:
    """A comma-separated list; clean is measured first (every other accuracy is relative to it)."""
    names = [n for n in (s.strip() for s in str(text).split(",")) if n]
    if not names:
        raise ConfigError(f"{field}: give at least one attack; allowed: {ALLOWED}")
    specs = [parse_attack(n, field) for n in names]
    if len({s.name for s in specs}) != len(specs):
        raise ConfigError(f"{field}: an attack is listed twice in {text!r}")
    if "clean" not in {s.name for s in specs}:
        specs.insert(0, parse_attack("clean"))
    elif specs[0].name != "clean":
        specs.sort(key=lambda s: s.name != "clean")  # stable: the others keep their order
    return specs


def attack_factory(name: str, threat, *, field: str = "attack", **options) -> Optional[Callable]:
    """'none'/'clean' -> None; any other name -> model -> attack at `threat` (see parse_attack)."""
    return parse_attack(name, field).factory(threat, **options)
