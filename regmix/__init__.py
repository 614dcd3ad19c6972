"""regmix: RegMix adversarial training (AMR + AGR), its baselines, attacks and evaluation."""
from . import losses
from .attacks import create_attack
from .data import create_dataset
from .methods import create_method
from .models import create_model, load_model
from .sources import ExternalModel, load_source
from .threat import ThreatModel

__version__ = "0.1.0"


__all__ = ["ExternalModel", "ThreatModel", "create_attack", "create_dataset", "create_method", "create_model",
           "load_model", "load_source", "losses", "__version__"]
