"""Training objectives: `create_method(name, threat=..., **options)`.

A method's `loss(model, x, y, index)` returns (total loss, {term name: detached tensor}).
`resolved_options(name, options)` gives the effective options (every default filled in), which is what
run directories record, so that readers never rebuild a default from the registry themselves.
"""
from ..registry import Registry

METHODS = Registry("method")

from .base import Method  # noqa: E402
from . import baselines, prior_guided  # noqa: E402,F401  (registration)


def create_method(name: str, threat=None, **options) -> Method:
    from ..threat import ThreatModel
    cls = METHODS.get(name)
    return cls(ThreatModel() if threat is None else threat, **options)


def resolved_options(name: str, options=None, threat=None) -> dict:
    """Every option of method `name` with its effective value: `options` over the method's defaults.

    The options are validated exactly as `create_method` does (unknown or bad values raise ConfigError
    naming `method.options.<key>`); pass the run's threat where a method checks it (pgk/regmix need linf).
    """
    method = create_method(name, threat, **dict(options or {}))
    return dict(method.options)


__all__ = ["METHODS", "Method", "create_method", "resolved_options"]
