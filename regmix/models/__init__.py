"""Models: `create_model(name, num_classes, in_channels, mean=..., std=...)`.

Every model takes images in [0,1]; the per-dataset normalisation is its first operation, so attacks
and epsilons always speak pixel units.
"""
from ..registry import Registry

MODELS = Registry("model")

from . import resnet, small_cnn, wide_resnet  # noqa: E402,F401  (registration)
from .normalized import NormalizedModel  # noqa: E402


def create_model(name: str, num_classes: int = 10, in_channels: int = 3, *, mean=None, std=None, **options):
    backbone = MODELS.get(name)(num_classes=num_classes, in_channels=in_channels, **options)
    mean = (0.0,) * in_channels if mean is None else tuple(mean)
    std = (1.0,) * in_channels if std is None else tuple(std)
    return NormalizedModel(backbone, mean, std, name=name)


__all__ = ["MODELS", "create_model", "NormalizedModel"]
