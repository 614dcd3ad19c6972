"""regmix: RegMix adversarial training (AMR + AGR), its baselines, attacks and evaluation."""
from . import losses
from .attacks import create_attack
from .data import create_dataset
from .methods import create_method
from .models import create_model
from .sources import ExternalModel, load_source
from .threat import ThreatModel

__version__ = "0.1.0"


def load_model(path, *, device="cpu", which="best", ema=True):
    """A ready model (eval mode) from a run directory or a checkpoint file; see regmix.checkpoint."""
    from .checkpoint import load_model as _load
    return _load(path, device=device, which=which, ema=ema)


__all__ = ["ExternalModel", "ThreatModel", "create_attack", "create_dataset", "create_method", "create_model",
           "load_model", "load_source", "losses", "__version__"]
