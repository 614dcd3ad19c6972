"""Training objectives: `create_method(name, threat=..., **options)`.

A method's `loss(model, x, y, index)` returns (total loss, {term name: detached tensor}).
"""
from ..registry import Registry

METHODS = Registry("method")

from .base import Method  # noqa: E402
from . import baselines, prior_guided  # noqa: E402,F401  (registration)


def create_method(name: str, threat=None, **options) -> Method:
    from ..threat import ThreatModel
    cls = METHODS.get(name)
    return cls(ThreatModel() if threat is None else threat, **options)


__all__ = ["METHODS", "Method", "create_method"]
