"""The model registry and its one factory, `create_model`: every model is wrapped in NormalizedModel,
so it sees normalised inputs while attacks speak pixels in [0, 1]."""
import inspect

from ..checks import MAX_WIDTH, check_number
from ..files import first_line
from ..registry import ConfigError, Registry, suggest
from .normalized import NormalizedModel

MODELS = Registry("model")


# the numeric options of the models, with their documented ranges (check_number options)
OPTION_RANGES = {"width": (1, MAX_WIDTH, {"integer": True}), "dropout": (0, 1, {"hi_open": True})}


def check_model_options(name: str, options: dict):
    """model.options checked before any work: known to the model, and each number in its range (a width
    that cannot be allocated is refused here rather than aborting the process later)."""
    factory = MODELS.get(name)
    allowed = [p for p in inspect.signature(factory).parameters if p not in ("num_classes", "in_channels")]
    for key, value in (options or {}).items():
        if key not in allowed:
            raise ConfigError(f"model.options.{key}: unknown option for {name!r}{suggest(key, allowed)}; "
                              f"allowed: {', '.join(allowed) or 'none'}")
        if key in OPTION_RANGES:
            lo, hi, kw = OPTION_RANGES[key]
            check_number(f"model.options.{key}", value, lo, hi, **kw)


def create_model(name: str, num_classes: int = 10, in_channels: int = 3, *, mean=None, std=None, **options):
    check_model_options(name, options)
    try:
        backbone = MODELS.get(name)(num_classes=num_classes, in_channels=in_channels, **options)
    except (MemoryError, RuntimeError) as err:  # an allocation the machine cannot make: one line, not an abort
        raise ConfigError(f"model.options: {name} with {options or 'its defaults'} ({num_classes} classes) "
                          f"could not be created: {first_line(err)}") from None
    mean = (0.0,) * in_channels if mean is None else tuple(mean)
    std = (1.0,) * in_channels if std is None else tuple(std)
    return NormalizedModel(backbone, mean, std, name=name)

