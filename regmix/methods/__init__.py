"""Training objectives: `create_method(name, threat=..., **options)`.

A method's `loss(model, x, y, index)` returns (total loss, {term name: detached tensor}).
`resolved_options(name, options)` gives the effective options (every default filled in), which is what
run directories record, so that readers never rebuild a default from the registry themselves.
"""
from ..threat import ThreatModel
from . import baselines, prior_guided  # noqa: F401  (registration)
from .base import METHODS, Method


def create_method(name: str, threat=None, **options) -> Method:
    cls = METHODS.get(name)
    return cls(ThreatModel() if threat is None else threat, **options)


def resolved_options(name: str, options=None, threat=None) -> dict:
    """Every option of method `name` with its effective value: `options` over the method's defaults.

    The options are validated exactly as `create_method` does (unknown or bad values raise ConfigError
    naming `method.options.<key>`); pass the run's threat where a method checks it (pgk/regmix need linf).
    """
    method = create_method(name, threat, **dict(options or {}))
    return dict(method.options)


def prior_start(config) -> str:
    """How a run's method draws d_init (the random_start kind): its prior_init option (pgk and regmix:
    'sign' by default), else 'uniform'. The diagnostics and explorers start where training starts."""
    if config.method.name not in METHODS:  # a model regmix did not train (regmix.sources): no prior
        return "uniform"
    options = resolved_options(config.method.name, config.method.options, config.training_threat())
    return options.get("prior_init", "uniform")


__all__ = ["METHODS", "Method", "create_method", "prior_start", "resolved_options"]
