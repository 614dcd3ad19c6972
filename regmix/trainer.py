"""The training loop: one config in, one run directory out.

The run directory holds config.yaml (the resolved config), metrics.jsonl (every loss term per step,
and one record per epoch), last.pt (everything needed to resume) and best.pt (the weights with the
best validation PGD accuracy), and status.json.
"""
from __future__ import annotations

import json
import math
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .attacks import PGD
from .checkpoint import FORMAT, atomic_save, atomic_write_text, load_checkpoint
from .config import Config, save_config
from .data import create_dataset
from .ema import EMA
from .evaluate import make_loader, robust_accuracy
from .methods import create_method
from .models import create_model
from .registry import ConfigError


class TrainingDiverged(RuntimeError):
    pass


class IndexedDataset(Dataset):
    """(x, y, i): the example's index lets a method keep per-example state (FGSM-PGK's prior)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return x, y, i


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} asked for, but no CUDA device is available; use cpu or auto")
    return torch.device(name)


def lr_factor(config: Config, epoch: float) -> float:
    """The learning rate multiplier at a fractional epoch."""
    s, total = config.schedule, config.train.epochs
    if s.warmup_epochs and epoch < s.warmup_epochs:
        return (epoch + 1e-8) / s.warmup_epochs
    floor = s.lr_min / config.optim.lr
    if s.name == "constant":
        return 1.0
    if s.name == "multistep":
        return s.gamma ** sum(epoch >= m for m in s.milestones)
    if s.name == "cosine":
        t = (epoch - s.warmup_epochs) / max(total - s.warmup_epochs, 1e-8)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    # cyclic (Wong et al. 2020): linear up to the peak at mid-run, then linearly down to the floor
    t = epoch / total
    return floor + (1 - floor) * (t / 0.5 if t < 0.5 else (1 - t) / 0.5)


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
            "python": random.getstate()}


def set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    def __init__(self, config: Config, *, resume: bool = False):
        self.config = config
        self.run_dir = config.run_dir
        self.device = resolve_device(config.train.device)
        self._check_run_dir(resume)
        if config.train.amp != "none" and self.device.type != "cuda":
            print(f"[{config.name}] note: train.amp={config.train.amp} applies on CUDA only; "
                  f"training in float32 on {self.device}", flush=True)
        if config.train.deterministic:
            torch.use_deterministic_algorithms(True)
        seed_everything(config.train.seed)

        c = config
        self.train_set = create_dataset(c.data.name, "train", c.data.data_dir, download=c.data.download,
                                        augment=c.data.augment, val_size=c.data.val_size)
        self.val_set = create_dataset(c.data.name, "val", c.data.data_dir, download=c.data.download,
                                      augment=False, val_size=c.data.val_size)
        ds = self.train_set
        self.data_info = {"num_classes": ds.num_classes, "in_channels": ds.in_channels,
                          "image_size": list(ds.image_size), "mean": list(ds.mean), "std": list(ds.std)}
        self.model = create_model(c.model.name, ds.num_classes, ds.in_channels, mean=ds.mean, std=ds.std,
                                  **c.model.options).to(self.device)
        if c.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.threat = c.training_threat()
        self.method = create_method(c.method.name, self.threat, **c.method.options)
        self.method.setup(len(ds), (ds.in_channels, *ds.image_size), self.device)
        self.optimizer = self._optimizer()
        self.steps_per_epoch = math.ceil(len(ds) / c.data.batch_size)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(c, step / self.steps_per_epoch))
        self.ema = EMA(self.model, c.train.ema_decay) if c.train.ema else None
        self.loader_generator = torch.Generator()
        self.loader = DataLoader(IndexedDataset(ds), batch_size=c.data.batch_size, shuffle=True,
                                 drop_last=False, num_workers=c.data.num_workers,
                                 generator=self.loader_generator, pin_memory=self.device.type == "cuda",
                                 persistent_workers=False)
        self.val_loader = make_loader(self.val_set, c.data.eval_batch_size, c.eval.max_points)
        self.start_epoch = 0
        self.best = {"val_pgd": -1.0, "val_clean": -1.0, "epoch": -1}
        self.step = 0
        if resume and (self.run_dir / "last.pt").exists():
            self._load(load_checkpoint(self.run_dir / "last.pt", map_location=self.device))

    # ------------------------------------------------------------ set-up helpers

    def _check_run_dir(self, resume: bool):
        saved = self.run_dir / "config.yaml"
        if not saved.exists():
            return
        import yaml
        previous = yaml.safe_load(saved.read_text())
        current = self.config.to_dict()
        for cfg in (previous, current):  # how a run is displayed is not part of what it computes
            cfg.get("train", {}).pop("progress", None)
        if previous != current:
            diffs = _differences(previous, current)
            raise ConfigError(f"{self.run_dir}: already holds a run with a different config "
                              f"({'; '.join(diffs[:3])}); choose another name or out_dir")
        if not resume and (self.run_dir / "last.pt").exists():
            raise ConfigError(f"{self.run_dir}: already holds this run; pass --resume to continue it "
                              f"or choose another name")

    def _optimizer(self):
        o = self.config.optim
        params = self.model.parameters()
        if o.name == "adam":
            return torch.optim.Adam(params, lr=o.lr, weight_decay=o.weight_decay)
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov)

    def _autocast(self):
        if self.config.train.amp == "bf16" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _epoch_threat(self, epoch):
        warmup = self.config.train.eps_warmup_epochs
        if not warmup or epoch >= warmup:
            return self.threat
        scale = (epoch + 1) / warmup
        return self.threat.with_(eps=self.threat.eps * scale, step=self.threat.step * scale)

    @property
    def eval_model(self):
        return self.ema.model if self.ema is not None else self.model

    # ------------------------------------------------------------ checkpoints

    def _state(self, epoch: int, complete: bool) -> dict:
        return {"format": FORMAT, "config": self.config.to_dict(), "data": self.data_info,
                "epoch": epoch, "step": self.step, "complete": complete,
                "model": self.model.state_dict(),
                "ema": self.ema.model.state_dict() if self.ema else None,
                "ema_updates": self.ema.updates if self.ema else 0,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "method": self.method.state_dict(), "rng": rng_state(), "best": dict(self.best)}

    def _load(self, state: dict):
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
            self.ema.updates = int(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
        self.best = dict(state["best"])
        self.start_epoch = int(state["epoch"])
        self.step = int(state["step"])

    def _truncate_metrics(self):
        """On resume, drop records of epochs that are about to be redone, so metrics.jsonl ends as it
        would have without the interruption."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        keep = [ln for ln in path.read_text().splitlines()
                if ln.strip() and _complete_json(ln) and json.loads(ln)["epoch"] < self.start_epoch]
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))

    # ------------------------------------------------------------ the loop

    def validate(self) -> dict:
        threat = self.config.eval_threat()
        acc = robust_accuracy(self.eval_model, self.val_loader,
                              {"pgd": lambda m: PGD(m, threat)}, device=self.device)
        return {"val_clean": acc["clean"], "val_pgd": acc["pgd"]}

    def train_epoch(self, epoch: int, log) -> dict:
        c = self.config
        self.model.train()
        threat = self._epoch_threat(epoch)
        self.method.set_threat(threat)
        self.method.start_epoch(epoch)
        self.loader_generator.manual_seed(c.train.seed * 100003 + epoch)
        sums, count, seen, start = {}, 0, 0, time.time()
        batches = self.loader
        if c.train.progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"{c.name} epoch {epoch + 1}/{c.train.epochs}", leave=False, disable=None,
                           dynamic_ncols=True)
        for x, y, index in batches:
            x, y, index = x.to(self.device, non_blocking=True), y.to(self.device), index.to(self.device)
            if c.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                loss, terms = self.method.loss(self.model, x, y, index)
            if not torch.isfinite(loss):
                values = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
                raise TrainingDiverged(f"train: loss is {float(loss)} at epoch {epoch + 1}, step {self.step + 1} "
                                       f"({values}); the last good checkpoint is {self.run_dir / 'last.pt'}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model)
            self.step += 1
            values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v * len(y)
            count += 1
            seen += len(y)
            if self.step % c.train.log_every == 0:
                log({"kind": "step", "epoch": epoch, "step": self.step,
                     "lr": self.optimizer.param_groups[0]["lr"], **values})
            if c.train.progress:
                batches.set_postfix(loss=f"{values['loss']:.3f}")
        elapsed = time.time() - start
        return {**{f"train_{k}": v / seen for k, v in sums.items()}, "eps": threat.eps,
                "images_per_s": seen / elapsed, "epoch_time_s": elapsed}

    def fit(self) -> Path:
        c = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(c, self.run_dir / "config.yaml")
        self._truncate_metrics()
        self._write_status("running")
        with open(self.run_dir / "metrics.jsonl", "a") as metrics:
            def log(record):
                metrics.write(json.dumps(record) + "\n")

            for epoch in range(self.start_epoch, c.train.epochs):
                record = self.train_epoch(epoch, log)
                last = epoch + 1 == c.train.epochs
                if (epoch + 1) % c.eval.every == 0 or last:
                    record.update(self.validate())
                    # PGD accuracy selects; clean accuracy breaks ties (a standard model is 0 under PGD)
                    if (record["val_pgd"], record["val_clean"]) > (self.best["val_pgd"], self.best["val_clean"]):
                        self.best = {"val_pgd": record["val_pgd"], "val_clean": record["val_clean"],
                                     "epoch": epoch + 1}
                        atomic_save(self._best_state(epoch + 1, record), self.run_dir / "best.pt")
                log({"kind": "epoch", "epoch": epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                     **record})
                metrics.flush()
                atomic_save(self._state(epoch + 1, complete=last), self.run_dir / "last.pt")
                shown = {k: round(v, 4) for k, v in record.items() if k.startswith(("train_loss", "val_"))}
                print(f"[{c.name}] epoch {epoch + 1}/{c.train.epochs} {shown}", flush=True)
        self._write_status("complete")
        return self.run_dir

    def _best_state(self, epoch, record):
        return {"format": FORMAT, "config": self.config.to_dict(), "data": self.data_info, "epoch": epoch,
                "model": self.model.state_dict(),
                "ema": self.ema.model.state_dict() if self.ema else None,
                "val": {k: v for k, v in record.items() if k.startswith("val_")}}

    def _write_status(self, state):
        atomic_write_text(self.run_dir / "status.json",
                          json.dumps({"state": state, "best": self.best, "epochs": self.config.train.epochs}))


def _complete_json(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except json.JSONDecodeError:
        return False


def _differences(a, b, prefix=""):
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: {x!r} there, {y!r} here")
    return out


def train(config: Config, *, resume: bool = False) -> Path:
    return Trainer(config, resume=resume).fit()
