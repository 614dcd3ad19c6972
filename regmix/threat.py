"""The threat model: which perturbations an attacker may use, in pixel units of [0,1] images."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Optional, Union

from .checks import MAX_STEPS, check_number
from .registry import ConfigError

NORMS = ("linf", "l2")


def parse_number(value: Union[str, float, int], field: str) -> float:
    """Accept 0.03, 8 or '8/255' (the usual way epsilons are written)."""
    if isinstance(value, bool):
        raise ConfigError(f"{field}: expected a number such as 0.03 or '8/255', got {value!r}")
    try:
        number = float(value) if isinstance(value, (int, float)) else float(Fraction(str(value).strip()))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise ConfigError(f"{field}: expected a number such as 0.03 or '8/255', got {value!r}") from None
    if not math.isfinite(number):  # NaN passes every `value < 0` check after it: refused here, once
        raise ConfigError(f"{field}: must be a finite number, got {value!r}")
    return number


@dataclass(frozen=True)
class ThreatModel:
    """norm in {linf, l2}; eps the radius; step the attack step size; steps the number of steps.

    step defaults to eps/4 (2/255 for eps 8/255, the usual PGD setting).
    """
    norm: str = "linf"
    eps: float = 8 / 255
    step: Optional[float] = None
    steps: int = 10

    def __post_init__(self):
        norm = str(self.norm).lower()
        if norm not in NORMS:
            raise ConfigError(f"threat.norm: must be one of {', '.join(NORMS)}, got {self.norm!r}")
        object.__setattr__(self, "norm", norm)
        eps = parse_number(self.eps, "threat.eps")
        limit = 1.0 if norm == "linf" else 100.0
        if not 0 <= eps <= limit:
            raise ConfigError(f"threat.eps: must be in [0, {limit:g}] for {norm} on [0,1] images, got {eps:g}")
        object.__setattr__(self, "eps", eps)
        step = eps / 4 if self.step is None else parse_number(self.step, "threat.step")
        if step < 0 or (eps > 0 and step > 4 * eps):
            raise ConfigError(f"threat.step: must be in [0, 4*eps] = [0, {4 * eps:g}], got {step:g}")
        object.__setattr__(self, "step", step)
        check_number("threat.steps", self.steps, 0, MAX_STEPS, integer=True)

    def with_(self, **changes) -> "ThreatModel":
        return replace(self, **changes)

    def __str__(self):
        return f"{self.norm} eps={self.eps:.4g} step={self.step:.4g} steps={self.steps}"


def parse_threat(value, field: str = "threat") -> ThreatModel:
    """ThreatModel, {"norm":..., "eps":...}, or "NORM:EPS" such as "linf:8/255" or "l2:0.5"."""
    if isinstance(value, ThreatModel):
        return value
    if isinstance(value, dict):
        try:
            return ThreatModel(**value)
        except TypeError as err:
            raise ConfigError(f"{field}: allowed keys are norm, eps, step, steps ({err})") from None
    match = re.fullmatch(r"\s*(linf|l2)\s*:\s*(\S+)\s*", str(value), flags=re.IGNORECASE)
    if not match:
        raise ConfigError(f"{field}: expected NORM:EPS such as 'linf:8/255' or 'l2:0.5', got {value!r}")
    return ThreatModel(match.group(1).lower(), parse_number(match.group(2), field))
