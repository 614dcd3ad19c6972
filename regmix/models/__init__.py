"""Models: `create_model(name, num_classes, in_channels, mean=..., std=...)`; `load_model(run or file)`.

Every model takes images in [0,1]; the per-dataset normalisation is its first operation, so attacks
and epsilons always speak pixel units. The registry and the factory live in `base`; each architecture
module registers itself when imported here.
"""
from . import resnet, small_cnn, wide_resnet  # noqa: F401  (registration)
from .base import MODELS, check_model_options, create_model
from .loading import load_model, load_weights, model_from_checkpoint
from .normalized import NormalizedModel

__all__ = ["MODELS", "create_model", "check_model_options", "NormalizedModel", "load_model", "load_weights",
           "model_from_checkpoint"]
