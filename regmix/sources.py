"""Model sources: any model the diagnostics and evaluation can take, with what they need to know about it.

`load_source(source, ...)` accepts
  * a regmix run directory or checkpoint file (regmix.checkpoint; the run knows its data and threat);
  * "robustbench:<dataset>/<threat>/<name>", read from `model_dir/<dataset>/<threat>/<name>.pt`
    (RobustBench's own layout, default ./models as in RobustBench); nothing is downloaded;
  * a TorchScript file (torch.jit.save); `export_torchscript` stores the dataset and threat inside it;
  * any torch.nn.Module (or an ExternalModel, returned as is).
and returns an `ExternalModel`: the model in eval mode plus its dataset, number of classes, threat model,
name, kind of source and a Config that the run-directory code paths (diagnostics, explorers) can read.

Every model takes images in [0,1] and normalises inside (regmix models and RobustBench models both do).

Safety: .pt files are read with torch.load(weights_only=True), so a pickle that carries code is refused,
never run. A TorchScript archive is read by torch.jit.load, whose unpickler rebuilds only tensors and
TorchScript types (it resolves no Python globals); the model's compiled TorchScript code does run.

RobustBench entries: regmix.models.robustbench (which architectures are built, and how).
"""
from __future__ import annotations

import contextlib
import json
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from torch import nn

from .checkpoint import FORMAT, resolve_checkpoint
from .checks import regular_file
from .config import Config, DataConfig, MethodConfig, ModelConfig, ThreatConfig, load_config
from .data.base import dataset_classes
from .files import atomic_write_text, first_line
from .models import model_from_checkpoint
from .models.robustbench import ROBUSTBENCH, load_robustbench, load_weights_file, parse_robustbench
from .modes import model_mode
from .registry import ConfigError
from .threat import ThreatModel, parse_threat

META_FILE = "regmix.json"  # TorchScript extra file holding {"dataset", "threat", "num_classes", "name"}


@dataclass(frozen=True, eq=False)
class ExternalModel:
    """A model (eval mode, [0,1] inputs) with what diagnostics need: dataset, classes, threat model.

    kind: run | checkpoint | robustbench | torchscript | module.  location: the file or folder it came
    from (None for a module).  config: the run's Config, or one made from the fields above (method
    "external") so that code written for run directories reads it the same way.  info: checkpoint
    details for records (checkpoint, checkpoint_file, ema, epoch).
    """
    model: nn.Module
    dataset: str
    num_classes: int
    threat: ThreatModel
    name: str
    kind: str
    location: Optional[str] = None
    input_range: Tuple[float, float] = (0.0, 1.0)
    config: Any = None
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        """Where this model's records go by default: the run directory, the checkpoint's folder, or
        runs/external/<name> for a model that has no run."""
        return home_of(self.kind, self.location, self.name)

    def __repr__(self):
        return (f"ExternalModel({self.name!r}, kind={self.kind}, dataset={self.dataset}, "
                f"classes={self.num_classes}, threat={self.threat.norm} eps={self.threat.eps:.4g})")


def source_label(source) -> str:
    """A short display name for any model source: a run's folder name, a file's stem, a RobustBench
    entry's name, an ExternalModel's or a module's name."""
    if isinstance(source, ExternalModel):
        return source.name
    if isinstance(source, nn.Module):
        return type(source).__name__
    text = str(source)
    if text.startswith(ROBUSTBENCH):
        return parse_robustbench(text)[2]
    path = Path(text)
    return path.name if path.is_dir() else path.stem


SOURCE_CARD = "source.json"   # in runs/external/<name>: what the records there were computed from


def write_source_card(source: ExternalModel) -> Optional[Path]:
    """HOME/source.json for a model that has no run directory (robustbench, torchscript, module), so
    that its record folder can be given to the figure commands like a run directory; None for runs and
    checkpoints, whose folder already says what they are."""
    if source.kind in ("run", "checkpoint"):
        return None
    card = {"kind": source.kind, "name": source.name, "location": source.location, "dataset": source.dataset,
            "num_classes": source.num_classes, "threat": {"norm": source.threat.norm, "eps": source.threat.eps},
            "method": "external"}
    path = source.home / SOURCE_CARD
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(card, indent=1))
    return path


def read_source_card(folder) -> Optional[dict]:
    """The source.json of an external model's record folder, or None."""
    path = Path(folder) / SOURCE_CARD
    if regular_file(path) is None:  # missing, or a FIFO that would block the read
        return None
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return card if isinstance(card, dict) else None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "model"


def home_of(kind: str, location: Optional[str], name: str) -> Path:
    if kind == "run":
        return Path(location)
    if kind == "checkpoint":
        return Path(location).parent
    if kind == "torchscript":  # by the file's name, so that source_home needs no load
        name = Path(location).stem
    return Path("runs") / "external" / _safe_name(name)


def source_home(source) -> Path:
    """Where records of `source` go by default, without loading it (see ExternalModel.home)."""
    if isinstance(source, ExternalModel):
        return source.home
    if isinstance(source, nn.Module):
        return home_of("module", None, type(source).__name__)
    text = str(source)
    if text.startswith(ROBUSTBENCH):
        return home_of("robustbench", None, parse_robustbench(text)[2])
    path = Path(text)
    if path.is_dir():
        return path
    if _is_torchscript(path):
        return home_of("torchscript", str(path), path.stem)
    return path.parent


def _external_config(name: str, dataset: str, threat: ThreatModel, kind: str):
    """A Config describing a model that has no run, so run-directory code reads dataset and threat."""
    return Config(name=_safe_name(name), out_dir=str(Path("runs") / "external"), data=DataConfig(name=dataset),
                  model=ModelConfig(name=f"{kind}:{name}"), method=MethodConfig(name="external"),
                  threat=ThreatConfig(norm=threat.norm, eps=threat.eps, step=threat.step, steps=threat.steps))


def _wrap(model, *, dataset, threat, num_classes, name, kind, location=None, device="cpu", config=None,
          info=None) -> ExternalModel:
    if dataset is None:
        raise ConfigError(f"dataset: a {kind} model needs the dataset it was trained on (e.g. dataset='cifar10'); "
                          f"it decides the evaluation data and the number of classes")
    if threat is None:
        raise ConfigError(f"threat: a {kind} model needs its threat model, e.g. threat='linf:8/255' or 'l2:0.5'")
    threat = parse_threat(threat)
    expected = dataset_classes(dataset)
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes != expected):
        raise ConfigError(f"num_classes: the {kind} model has {num_classes!r} classes; {dataset} has {expected}")
    classes = expected
    model = model.to(device).eval()
    config = config or _external_config(name, dataset, threat, kind)
    info = {"checkpoint": kind, "checkpoint_file": Path(location).name if location else None, "ema": False,
            "epoch": None, **(info or {})}
    return ExternalModel(model=model, dataset=dataset, num_classes=classes, threat=threat, name=name, kind=kind,
                         location=None if location is None else str(location), config=config, info=info)


def check_fits(model: nn.Module, x: torch.Tensor, num_classes: int, field: str = "source") -> None:
    """One forward pass on the first image of `x` (the dataset's): refused with one line unless the
    model takes that input and gives num_classes logits, before any attack runs on it."""
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = x.device
    try:
        with torch.no_grad(), model_mode(model, training=False):
            out = model(x[:1].to(device))
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ConfigError(f"{field}: the model does not take this dataset's images (shape "
                          f"{tuple(x.shape[1:])}): {first_line(err)}") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != num_classes:
        shape = tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"{field}: the model gives {shape} outputs per image; the dataset has "
                          f"{num_classes} classes")


# ---------------------------------------------------------------- files


@contextlib.contextmanager
def _quiet_jit():
    """torch 2.14 marks torch.jit deprecated with a FutureWarning on every call; TorchScript files are
    what users have, so regmix reads and writes them without repeating the warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
        yield


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive holds compiled code (…/code/…) and constants.pkl; torch.save files do not."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def export_torchscript(model: nn.Module, path, *, dataset: str, threat, num_classes: Optional[int] = None,
                       name: Optional[str] = None, example=None) -> Path:
    """Save `model` with torch.jit.save, with its dataset and threat model stored inside the archive, so
    that load_source(path) needs no further arguments. Scripts the model, or traces it on `example`."""
    threat = parse_threat(threat)
    classes = dataset_classes(dataset) if num_classes is None else int(num_classes)
    meta = {"dataset": dataset, "num_classes": classes, "name": name or Path(path).stem,
            "threat": {"norm": threat.norm, "eps": threat.eps}}
    with model_mode(model, training=False), _quiet_jit():
        scripted = torch.jit.trace(model, example) if example is not None else torch.jit.script(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_jit():
        torch.jit.save(scripted, str(path), _extra_files={META_FILE: json.dumps(meta)})
    return path


def _load_torchscript(path: Path, *, dataset, threat, num_classes, name, device):
    extra = {META_FILE: ""}
    try:
        with _quiet_jit():
            model = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as err:
        raise ConfigError(f"source: {path} is not a loadable TorchScript file: {first_line(err)}") from None
    meta = json.loads(extra[META_FILE]) if extra[META_FILE] else {}
    return _wrap(model, dataset=dataset or meta.get("dataset"), threat=threat or meta.get("threat"),
                 num_classes=num_classes if num_classes is not None else meta.get("num_classes"),
                 name=name or meta.get("name") or path.stem, kind="torchscript", location=path, device=device)


def _load_regmix(path: Path, *, which, ema, device, name):
    file = resolve_checkpoint(path, which)
    state = load_weights_file(file)
    if not (isinstance(state, dict) and state.get("format") == FORMAT):
        raise ConfigError(
            f"source: {file} is not a regmix checkpoint: weights without their architecture; load them into "
            f"your nn.Module and pass the module (load_source(module, dataset=..., threat=...)), save it with "
            f"regmix.sources.export_torchscript, or place it as robustbench:<dataset>/<threat>/<name>")
    config = load_config(data=state["config"])
    model = model_from_checkpoint(state, device=device, ema=ema)
    kind = "run" if path.is_dir() else "checkpoint"
    location = path if path.is_dir() else file
    return _wrap(model, dataset=config.data.name, threat=config.eval_threat(), num_classes=state["data"]["num_classes"],
                 name=name or (path.name if path.is_dir() else file.parent.name), kind=kind, location=location,
                 device=device, config=config,
                 info={"checkpoint": file.stem, "checkpoint_file": file.name,
                       "ema": bool(ema and state.get("ema") is not None), "epoch": state.get("epoch")})


# ---------------------------------------------------------------- the entry point


def load_source(source: Union[str, Path, nn.Module, ExternalModel], *, dataset: Optional[str] = None,
                threat=None, num_classes: Optional[int] = None, name: Optional[str] = None,
                model_dir="./models", which: str = "best", ema: bool = True, device="cpu") -> ExternalModel:
    """Any model source -> ExternalModel (see the module docstring).

    dataset/threat/num_classes: required for a module or a TorchScript file without stored metadata,
    ignored for runs and RobustBench entries (they know theirs). threat: ThreatModel or 'linf:8/255'.
    which/ema: the checkpoint of a run directory. model_dir: RobustBench's model directory.
    """
    if isinstance(source, ExternalModel):
        return source
    if isinstance(source, nn.Module):
        return _wrap(source, dataset=dataset, threat=threat, num_classes=num_classes,
                     name=name or type(source).__name__, kind="module", device=device)
    if not isinstance(source, (str, Path)):
        raise ConfigError(f"source: expected a run directory, a checkpoint or TorchScript file, "
                          f"'robustbench:<dataset>/<threat>/<name>' or an nn.Module, got {type(source).__name__}")
    text = str(source)
    if text.startswith(ROBUSTBENCH):
        model, dataset, threat, classes, entry, path = load_robustbench(text, model_dir)
        return _wrap(model, dataset=dataset, threat=threat, num_classes=classes, name=name or entry,
                     kind="robustbench", location=path, device=device)
    path = Path(text).expanduser()
    if not path.exists():
        raise ConfigError(f"source: no such run directory or file {path} (for a RobustBench model write "
                          f"robustbench:<dataset>/<threat>/<name>)")
    if path.is_file() and _is_torchscript(path):
        return _load_torchscript(path, dataset=dataset, threat=threat, num_classes=num_classes, name=name,
                                 device=device)
    return _load_regmix(path, which=which, ema=ema, device=device, name=name)


__all__ = ["ExternalModel", "SOURCE_CARD", "check_fits", "export_torchscript", "load_source", "read_source_card",
           "source_home", "source_label", "write_source_card"]
