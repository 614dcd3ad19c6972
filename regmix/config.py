"""Run configuration: dataclasses loaded from YAML, overridden by `--set key=value`, validated up front.

A YAML file may name `base: other.yaml` (relative to itself); its keys are merged over the base's.
"""
from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from .config_ranges import check_numbers
from .data import DATASETS
from .ema import EMA_BUFFERS
from .files import atomic_write_text
from .methods import METHODS, create_method, resolved_options
from .models import MODELS
from .recipes import find_recipe
from .registry import ConfigError, suggest
from .threat import ThreatModel, parse_number
from .yaml_text import load_yaml_text


@dataclass
class DataConfig:
    name: str = "mnist5k"
    data_dir: Optional[str] = None
    download: bool = False
    batch_size: int = 128
    eval_batch_size: int = 500
    val_size: Optional[int] = None      # points held out of the training data; None: the dataset's default
    augment: Optional[bool] = None      # None: crop + flip on natural images, nothing on digits
    num_workers: int = 0


@dataclass
class ModelConfig:
    name: str = "small_cnn"
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class ThreatConfig:
    """The training attack's threat model (steps is used by multi-step methods)."""
    norm: str = "linf"
    eps: Any = 0.3
    step: Any = None
    steps: int = 10


@dataclass
class MethodConfig:
    name: str = "regmix"
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: str = "sgd"                   # sgd | adam
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False


@dataclass
class ScheduleConfig:
    name: str = "multistep"             # constant | multistep | cosine | cyclic
    milestones: List[float] = field(default_factory=list)   # epochs where lr is multiplied by gamma
    gamma: float = 0.1
    lr_min: float = 0.0                 # floor of cosine and cyclic
    warmup_epochs: float = 0.0          # linear warm-up of the learning rate


@dataclass
class EvalConfig:
    """Validation every epoch: clean and PGD accuracy on the validation split (model selection)."""
    eps: Any = None                     # None: the training eps
    step: Any = None                    # None: eps / 4
    steps: int = 10
    every: int = 1
    max_points: Optional[int] = None    # validate on the first N validation points only
    # masking caught while training (regmix/training/monitor.py): on the first monitor_points validation
    # points (0: off), PGD-10 against a stronger attack (monitor_attack: pgd, PGD on CE with monitor_restarts
    # restarts, then on the CW margin; apgd, APGD on CE, then on DLR; apgd_t, APGD on CE, then targeted APGD
    # on 3 target classes; monitor_steps steps each) and against FGSM; masking (PGD-10 above the strong attack) or
    # catastrophic overfitting (FGSM above PGD-10 while PGD-10 fell below its best), each by more than
    # masking_threshold (a fraction: 0.1 is 10 points of accuracy), is a warning in the log, metrics.jsonl
    # and status.json
    monitor_points: int = 200
    monitor_steps: int = 20
    monitor_restarts: int = 1
    monitor_attack: str = "pgd"
    monitor_every: int = 1              # the monitor at the validation epochs whose number is a multiple of
                                        # this, and at the last (a strong attack on many points costs more
                                        # than an epoch: docs/results/README.md)
    masking_threshold: float = 0.1
    select: str = "pgd"                 # best.pt on: pgd (validation PGD-10) | strong (the monitor's strong attack)


@dataclass
class TrainConfig:
    epochs: int = 10
    seed: int = 0
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    amp: str = "none"                   # none | bf16 (CUDA only)
    channels_last: bool = False
    fast: bool = False                  # data on the device, a whole step (fused optimiser, EMA) with no host read
    cuda_graph: bool = True             # with fast on CUDA: capture the step once and replay it
    ema: bool = False
    ema_decay: float = 0.999
    ema_gate: Optional[float] = None    # FGSM-PGK's gated decay on the batch's acc_final/acc_init (0.82 CIFAR-10,
                                        # 0.9 CIFAR-100/Tiny ImageNet); null: the plain decay (regmix/ema.py)
    ema_buffers: str = "copy"           # copy | average: BatchNorm statistics copied, or averaged as FGSM-PGK's
    eps_warmup_epochs: int = 0          # ramp the training eps linearly over the first N epochs
    log_every: int = 1                  # steps between metrics.jsonl step records
    checkpoint_every: int = 0           # also write last.pt every N steps inside an epoch (0: at epoch ends)
    on_nonfinite: str = "stop"          # stop | skip: what a NaN/Inf loss does
    progress: bool = True
    deterministic: bool = False
    sync_batchnorm: bool = False        # distributed runs: BatchNorm statistics over all ranks
    loggers: List[str] = field(default_factory=list)   # also send metrics to: tensorboard, mlflow
    stop_on_overfit: bool = False       # end the run at the first epoch the monitor flags for catastrophic
                                        # overfitting (training/monitor.py)


@dataclass
class Config:
    name: str = "run"
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    threat: ThreatConfig = field(default_factory=ThreatConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name

    def to_dict(self) -> dict:
        return asdict(self)

    def resolved(self) -> "Config":
        """A copy whose method.options hold every option of the method, defaults filled in: what the
        run computes with, and what config.yaml records, so that readers never rebuild defaults."""
        out = copy.deepcopy(self)
        out.method.options = resolved_options(self.method.name, self.method.options, self.training_threat())
        return out

    def training_threat(self) -> ThreatModel:
        return ThreatModel(self.threat.norm, self.threat.eps, self.threat.step, self.threat.steps)

    def eval_threat(self, eps=None) -> ThreatModel:
        """The one evaluation threat (validation, `regmix eval`, diagnostics): eval.eps (default: the
        training eps), eval.step, eval.steps. `eps` overrides eval.eps; the step is then eps/4."""
        train = self.training_threat()
        if eps is not None:
            return ThreatModel(train.norm, eps, None, self.eval.steps)
        eps = train.eps if self.eval.eps is None else self.eval.eps
        return ThreatModel(train.norm, eps, self.eval.step, self.eval.steps)


# ---------------------------------------------------------------- loading


def _coerce(value, kind, where):
    origin = typing.get_origin(kind)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
        origin = typing.get_origin(kind)
    if kind is Any:
        return value
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind)
        return [_coerce(v, item, where) for v in value]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of options, got {value!r}")
        return dict(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return parse_number(value, where)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls, data, prefix=""):
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{where}: unknown config key{suggest(key, names)}; "
                              f"allowed under {prefix.rstrip('.') or 'the top level'}: {', '.join(names)}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            kwargs[key] = _build(kind, value, where + ".")
        else:
            kwargs[key] = _coerce(value, kind, where)
    return cls(**kwargs)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


MAX_BASES = 32             # `base:` files one recipe may chain


def read_yaml(path, _seen=()) -> dict:
    path = find_recipe(path)  # a shipped recipe by name (demo/regmix.yaml) when no such file is here
    _seen = _seen or (path.resolve(),)
    if not path.is_file():
        raise ConfigError(f"--config: no such file {path}")
    data = load_yaml_text(path.read_text(), field="--config", path=path)
    if not data:
        # an empty file would silently train with every default: almost surely a wrong path or a lost edit
        raise ConfigError(f"--config: {path} is empty; a recipe sets at least the data, model and method")
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping of keys, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(f"base: in {path} must be the path of a YAML file (relative to it), got {base!r}")
        if len(_seen) > MAX_BASES:
            raise ConfigError(f"base: {path} is more than {MAX_BASES} base files deep; a recipe chains a few")
        base_path = (path.parent / base).resolve()
        if base_path in _seen:
            raise ConfigError(f"base: {path} includes itself through {base_path}")
        data = _merge(read_yaml(base_path, _seen + (base_path,)), data)
    return data


def parse_override(text: str):
    """'method.options.alpha=0.5' -> (['method', 'options', 'alpha'], 0.5); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set: expected key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides) -> dict:
    data = copy.deepcopy(data)
    for text in overrides or ():
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def load_config(path=None, overrides=(), data: Optional[dict] = None) -> Config:
    """Config from a YAML file (or a dict), with `key=value` overrides, validated."""
    raw = read_yaml(path) if path is not None else copy.deepcopy(data or {})
    config = _build(Config, apply_overrides(raw, overrides))
    validate(config)
    return config


def validate(config: Config):
    """Everything that can be checked before a run starts, so a bad value never costs a half run."""
    check_numbers(config)
    DATASETS.get(config.data.name)
    if config.data.val_size is not None:
        if config.data.name in FIXED_SPLITS:
            raise ConfigError(f"data.val_size: {config.data.name} has a fixed validation split; leave "
                              f"data.val_size unset (null) for it (it applies to cifar10, cifar100, tinyimagenet)")
        if config.data.val_size < 1:
            raise ConfigError(f"data.val_size: must be null or an integer >= 1, got {config.data.val_size!r}")
    MODELS.get(config.model.name)
    create_method(config.method.name, config.training_threat(), **config.method.options)
    config.eval_threat()
    checks = [
        ("name", bool(config.name) and "/" not in config.name and config.name not in (".", ".."),
         "a non-empty folder name without '/'"),
        ("data.batch_size", config.data.batch_size >= 1, "an integer >= 1"),
        ("data.eval_batch_size", config.data.eval_batch_size >= 1, "an integer >= 1"),
        ("data.num_workers", config.data.num_workers >= 0, "an integer >= 0"),
        ("optim.name", config.optim.name in ("sgd", "adam"), "one of sgd, adam"),
        ("optim.lr", 0 < config.optim.lr <= 10, "a number in (0, 10]"),
        ("optim.momentum", 0 <= config.optim.momentum < 1, "a number in [0, 1)"),
        ("optim.weight_decay", 0 <= config.optim.weight_decay < 1, "a number in [0, 1)"),
        ("schedule.name", config.schedule.name in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
        ("schedule.gamma", 0 < config.schedule.gamma <= 1, "a number in (0, 1]"),
        ("schedule.lr_min", 0 <= config.schedule.lr_min <= config.optim.lr, "a number in [0, optim.lr]"),
        ("schedule.warmup_epochs", config.schedule.warmup_epochs >= 0, "a number >= 0"),
        ("schedule.milestones", all(m > 0 for m in config.schedule.milestones),
         "positive epochs"),
        ("eval.every", config.eval.every >= 1, "an integer >= 1"),
        ("eval.max_points", config.eval.max_points is None or config.eval.max_points >= 1, "null or an integer >= 1"),
        ("eval.monitor_points", 0 <= config.eval.monitor_points <= 10 ** 7, "an integer in [0, 10000000] (0: off)"),
        ("eval.monitor_steps", 1 <= config.eval.monitor_steps <= 10 ** 4, "an integer in [1, 10000]"),
        ("eval.monitor_restarts", 1 <= config.eval.monitor_restarts <= 100, "an integer in [1, 100]"),
        ("eval.masking_threshold", 0 < config.eval.masking_threshold <= 1, "a number in (0, 1]"),
        ("eval.monitor_attack", config.eval.monitor_attack in MONITOR_ATTACKS, f"one of {', '.join(MONITOR_ATTACKS)}"),
        ("eval.monitor_every", 1 <= config.eval.monitor_every <= 100000, "an integer in [1, 100000]"),
        ("eval.select", config.eval.select in ("pgd", "strong"), "one of pgd, strong"),
        ("eval.select", config.eval.select == "pgd" or config.eval.monitor_points > 0,
         "pgd when eval.monitor_points is 0 (strong is measured on the monitor subset)"),
        ("eval.select", config.eval.select == "pgd" or config.eval.monitor_every == 1,
         "pgd when eval.monitor_every is above 1 (strong must be measured at every validation epoch to choose "
         "among them)"),
        ("train.stop_on_overfit", not config.train.stop_on_overfit or config.eval.monitor_points > 0,
         "false when eval.monitor_points is 0 (the FGSM-to-PGD gap is measured on the monitor subset)"),
        ("train.seed", 0 <= config.train.seed <= 2 ** 31 - 1, "an integer in [0, 2**31 - 1]"),
        ("train.loggers", set(config.train.loggers) <= set(LOGGERS), f"a list of {', '.join(LOGGERS)} (or empty)"),
        ("train.epochs", 1 <= config.train.epochs <= 100000, "an integer in [1, 100000]"),
        ("train.amp", config.train.amp in ("none", "bf16"), "one of none, bf16"),
        ("train.ema_decay", 0 < config.train.ema_decay < 1, "a number in (0, 1)"),
        ("train.ema_gate", config.train.ema_gate is None or 0 < config.train.ema_gate <= 1,
         "null (the plain EMA) or a number in (0, 1]"),
        ("train.ema_gate", config.train.ema_gate is None or not config.train.ema
         or METHODS.get(config.method.name).reports_attack_ratio,
         f"null for {config.method.name} (the gate reads the attack success acc_final/acc_init of pgk, regmix)"),
        ("train.ema_buffers", config.train.ema_buffers in EMA_BUFFERS, f"one of {', '.join(EMA_BUFFERS)}"),
        ("train.eps_warmup_epochs", config.train.eps_warmup_epochs >= 0, "an integer >= 0"),
        ("train.log_every", config.train.log_every >= 1, "an integer >= 1"),
        ("train.checkpoint_every", config.train.checkpoint_every >= 0, "an integer >= 0"),
        ("train.on_nonfinite", config.train.on_nonfinite in ("stop", "skip"), "one of stop, skip"),
        ("train.on_nonfinite", not (config.train.fast and config.train.on_nonfinite == "skip"),
         "stop with train.fast=true (skipping a step needs a per-step read of the loss; the fast step reads "
         "it once per log interval)"),
        ("train.device", config.train.device == "auto" or config.train.device.split(":")[0] in ("cpu", "cuda"),
         "auto, cpu, cuda or cuda:N"),
    ]
    for name, ok, allowed in checks:
        if not ok:
            value = config
            for part in name.split("."):
                value = getattr(value, part)
            raise ConfigError(f"{name}: must be {allowed}, got {value!r}")


SCHEDULES = ("constant", "multistep", "cosine", "cyclic")
LOGGERS = ("tensorboard", "mlflow")
MONITOR_ATTACKS = ("pgd", "apgd", "apgd_t")  # the masking monitor's strong attack (training/monitor.py)
FIXED_SPLITS = ("mnist5k", "digits")   # embedded datasets: their validation split is part of the data

def dotted_get(mapping: dict, key: str):
    """mapping['a']['b'] for key 'a.b'; None where a part is missing."""
    node = mapping
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def resolved_dict(data: dict) -> dict:
    """A saved config (config.yaml, a checkpoint's) as a resolved dict: fields added since and method
    defaults filled in, so a run written before config.yaml held resolved values compares equal."""
    try:
        return _build(Config, data).resolved().to_dict()
    except ConfigError:  # a config this version cannot read is compared as it stands
        return data


def save_config(config: Config, path):
    """Write config.yaml resolved (method defaults filled in)."""
    atomic_write_text(path, yaml.safe_dump(config.resolved().to_dict(), sort_keys=False))
