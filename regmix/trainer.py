"""The training loop: one config in, one run directory out.

The run directory holds config.yaml (the resolved config), metrics.jsonl (every loss term per step,
and one record per epoch), last.pt (everything needed to resume), best.pt (the weights with the best
validation PGD accuracy) and status.json.

Resuming is exact: the batch order of an epoch depends on (seed, epoch) alone (EpochSampler), and
last.pt carries the RNG states and the epoch's running sums, so a run stopped anywhere and resumed
ends with the same weights and metrics as one never stopped. Under torchrun the same loop runs with
DistributedDataParallel; rank 0 alone writes files.
"""
from __future__ import annotations

import json
import math
import random
import signal
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from . import distributed as dist
from .attacks import PGD
from .checkpoint import FORMAT, atomic_save, atomic_write_text, load_checkpoint
from .config import Config, save_config
from .data import create_dataset
from .data.sampler import EpochSampler
from .ema import EMA
from .evaluation.flags import robust_flags, stack
from .methods import create_method
from .models import create_model
from .registry import ConfigError


class TrainingDiverged(RuntimeError):
    pass


class TrainingStopped(Exception):
    """SIGTERM or SIGINT arrived; a checkpoint was written and the run can be resumed."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


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


def check_pixel_range(x: torch.Tensor, where: str):
    low, high = x.min().item(), x.max().item()
    if low < 0 or high > 1:
        raise ConfigError(f"{where}: images must be in [0,1] (normalisation happens inside the model), "
                          f"found values in [{low:.3g}, {high:.3g}]" + ("; divide by 255" if high > 1.5 else ""))


class Trainer:
    def __init__(self, config: Config, *, resume: bool = False):
        c = self.config = config
        self.run_dir = config.run_dir
        self.device = dist.setup(c.train.device) or resolve_device(c.train.device)
        self.rank, self.world = dist.rank(), dist.world_size()
        if c.data.batch_size % self.world:
            raise ConfigError(f"data.batch_size: the global batch ({c.data.batch_size}) must divide evenly "
                              f"over {self.world} processes")
        self._check_run_dir(resume)
        if c.train.amp != "none" and self.device.type != "cuda":
            self._print(f"note: train.amp={c.train.amp} applies on CUDA only; training in float32 on {self.device}")
        if c.train.deterministic:
            torch.use_deterministic_algorithms(True)
        seed_everything(c.train.seed + self.rank)  # ranks draw different random starts

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
        self.method.setup(len(ds), (ds.in_channels, *ds.image_size), self.device, seed=c.train.seed)
        self.optimizer = self._optimizer()
        self.sampler = EpochSampler(len(ds), c.data.batch_size // self.world, c.train.seed, self.rank, self.world)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(c, step / self.steps_per_epoch))
        self.ema = EMA(self.model, c.train.ema_decay) if c.train.ema else None
        self.loader = DataLoader(IndexedDataset(ds), batch_size=c.data.batch_size // self.world,
                                 sampler=self.sampler, num_workers=c.data.num_workers,
                                 pin_memory=self.device.type == "cuda")
        n_val = len(self.val_set) if c.eval.max_points is None else min(c.eval.max_points, len(self.val_set))
        self.val_points = stack(DataLoader(torch.utils.data.Subset(self.val_set, range(self.rank, n_val, self.world)),
                                           batch_size=1000))
        self.net = self._wrap_ddp()
        self.start_epoch, self.start_batch, self.step = 0, 0, 0
        self.partial = None  # running sums of an epoch that a checkpoint interrupted
        self.best = {"val_pgd": -1.0, "val_clean": -1.0, "epoch": -1}
        self._stop_signal = None
        if resume and (self.run_dir / "last.pt").exists():
            self._load(load_checkpoint(self.run_dir / "last.pt", map_location=self.device))

    # ------------------------------------------------------------ set-up helpers

    def _print(self, text):
        if dist.is_main():
            print(f"[{self.config.name}] {text}", flush=True)

    def _wrap_ddp(self):
        if not dist.active():
            return self.model
        model = self.model
        if self.config.train.sync_batchnorm:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.model = model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

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

    @contextmanager
    def _signals(self):
        """SIGTERM (what a cluster sends before pre-emption) and SIGINT finish the current step,
        write a checkpoint and stop."""
        def note(signum, frame):
            self._stop_signal = signum
        try:
            previous = {s: signal.signal(s, note) for s in (signal.SIGTERM, signal.SIGINT)}
        except ValueError:  # not the main thread: leave signals alone
            previous = {}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # ------------------------------------------------------------ checkpoints

    def _state(self, epoch: int, batch: int, partial, complete: bool, rngs: list) -> dict:
        return {"format": FORMAT, "config": self.config.to_dict(), "data": self.data_info,
                "epoch": epoch, "batch": batch, "partial": partial, "step": self.step, "complete": complete,
                "world_size": self.world,
                "model": self.model.state_dict(),
                "ema": self.ema.model.state_dict() if self.ema else None,
                "ema_updates": self.ema.updates if self.ema else 0,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "method": self.method.state_dict(), "rng": rngs, "best": dict(self.best)}

    def _save_last(self, epoch, batch, partial, complete=False):
        """All ranks make their per-example state whole first (the examples of the batches done in
        the sampler's current epoch); rank 0 writes, with every rank's RNG state."""
        self.method.sync(self.sampler.owned(batch if partial is not None else self.steps_per_epoch))
        rngs = [rng_state()]
        if dist.active():
            rngs = [None] * self.world
            torch.distributed.all_gather_object(rngs, rng_state())
        if dist.is_main():
            atomic_save(self._state(epoch, batch, partial, complete, rngs), self.run_dir / "last.pt")
        dist.barrier()

    def _load(self, state: dict):
        if state.get("world_size", 1) != self.world:
            raise ConfigError(f"--resume: {self.run_dir / 'last.pt'} was written by {state.get('world_size', 1)} "
                              f"process(es); resume it with the same number, not {self.world}")
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.model.load_state_dict(state["ema"])
            self.ema.updates = int(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.method.load_state_dict(state["method"])
        set_rng_state(state["rng"][self.rank])
        self.best = dict(state["best"])
        self.start_epoch, self.start_batch = int(state["epoch"]), int(state["batch"])
        self.partial = state["partial"]
        self.step = int(state["step"])

    def _truncate_metrics(self):
        """On resume, drop the records written after the checkpoint, so metrics.jsonl ends as it
        would have without the interruption."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            record = _parse(line)
            if record is None or record["step"] > self.step:
                continue
            if record["kind"] == "epoch" and record["epoch"] >= self.start_epoch:
                continue
            keep.append(line)
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))

    # ------------------------------------------------------------ the loop

    def validate(self) -> dict:
        """Clean and PGD accuracy on the validation split, sharded over ranks and summed."""
        threat = self.config.eval_threat()
        x, y = self.val_points
        flags = robust_flags(self.eval_model, x, y, {"pgd": lambda m: PGD(m, threat)}, device=self.device,
                             batch_size=self.config.data.eval_batch_size)
        counts = dist.all_reduce_sum(torch.tensor([flags["clean"].sum(), flags["pgd"].sum(), len(y)],
                                                  dtype=torch.float64, device=self.device))
        return {"val_clean": (counts[0] / counts[2]).item(), "val_pgd": (counts[1] / counts[2]).item()}

    def _reduce_flags(self, nonfinite: bool) -> tuple:
        """Every rank learns whether any rank saw a non-finite loss or a stop signal."""
        flags = dist.all_reduce_max(torch.tensor([float(nonfinite), float(self._stop_signal is not None)],
                                                 device=self.device))
        return bool(flags[0]), bool(flags[1])

    def train_epoch(self, epoch: int, log) -> dict:
        c = self.config
        self.net.train()
        threat = self._epoch_threat(epoch)
        self.method.set_threat(threat)
        start_batch, self.start_batch = self.start_batch, 0
        if start_batch == 0:
            self.method.start_epoch(epoch)
        self.sampler.set_epoch(epoch, start_batch)
        partial, self.partial = (self.partial or {"sums": {}, "seen": 0, "skipped": 0, "elapsed": 0.0}), None
        sums, seen, skipped, start = dict(partial["sums"]), partial["seen"], partial["skipped"], time.time()
        batches = self.loader
        if c.train.progress and dist.is_main():
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"{c.name} epoch {epoch + 1}/{c.train.epochs}", leave=False,
                           disable=None, dynamic_ncols=True, initial=start_batch, total=self.steps_per_epoch)
        for batch_index, (x, y, index) in enumerate(batches, start=start_batch):
            x, y, index = x.to(self.device, non_blocking=True), y.to(self.device), index.to(self.device)
            if batch_index == start_batch:
                check_pixel_range(x, f"data ({c.data.name})")
            if c.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                loss, terms = self.method.loss(self.net, x, y, index)
            nonfinite, stop = self._reduce_flags(not torch.isfinite(loss).item())
            self.optimizer.zero_grad(set_to_none=True)
            if nonfinite:
                values = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items())
                if c.train.on_nonfinite == "stop":
                    raise TrainingDiverged(
                        f"train: loss is {loss.item()} at epoch {epoch + 1}, step {self.step + 1} ({values}); "
                        f"the last good checkpoint is {self.run_dir / 'last.pt'}")
                skipped += 1
                self._print(f"skipped step {self.step + 1}: non-finite loss ({values})")
            else:
                loss.backward()
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.update(self.model)
            self.scheduler.step()
            self.step += 1
            values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
            if not nonfinite:
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v * len(y)
                seen += len(y)
            if self.step % c.train.log_every == 0:
                log({"kind": "step", "epoch": epoch, "step": self.step,
                     "lr": self.optimizer.param_groups[0]["lr"], **values})
            if c.train.progress and dist.is_main():
                batches.set_postfix(loss=f"{values['loss']:.3f}")
            done = batch_index + 1
            periodic = c.train.checkpoint_every and self.step % c.train.checkpoint_every == 0
            if (stop or periodic) and done < self.steps_per_epoch:
                state = {"sums": sums, "seen": seen, "skipped": skipped, "elapsed": partial["elapsed"] + time.time() - start}
                log.flush()
                self._save_last(epoch, done, state)
                if stop:
                    name = signal.Signals(self._stop_signal or signal.SIGTERM).name
                    raise TrainingStopped(self._stop_signal or signal.SIGTERM,
                                          f"stopped by {name} at epoch {epoch + 1}, step {self.step}; a checkpoint "
                                          f"was written: continue with --resume")
        totals = dist.all_reduce_sum(torch.tensor([seen, *[sums.get(k, 0.0) for k in sorted(sums)]],
                                                  dtype=torch.float64, device=self.device)).tolist()
        elapsed = partial["elapsed"] + time.time() - start
        record = {f"train_{k}": v / max(totals[0], 1) for k, v in zip(sorted(sums), totals[1:])}
        record.update({"eps": threat.eps, "images_per_s": totals[0] / elapsed, "epoch_time_s": elapsed,
                       "skipped_steps": skipped})
        return record

    def fit(self) -> Path:
        c = self.config
        main = dist.is_main()
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(c, self.run_dir / "config.yaml")
            self._truncate_metrics()
            self._write_status("running")
        dist.barrier()
        metrics = open(self.run_dir / "metrics.jsonl", "a") if main else None

        def log(record):
            if metrics is not None:
                metrics.write(json.dumps(record) + "\n")
        log.flush = lambda: metrics.flush() if metrics is not None else None

        try:
            with self._signals():
                for epoch in range(self.start_epoch, c.train.epochs):
                    record = self.train_epoch(epoch, log)
                    last = epoch + 1 == c.train.epochs
                    if (epoch + 1) % c.eval.every == 0 or last:
                        record.update(self.validate())
                        # PGD accuracy selects; clean accuracy breaks ties (a standard model is 0 under PGD)
                        if (record["val_pgd"], record["val_clean"]) > (self.best["val_pgd"], self.best["val_clean"]):
                            self.best = {"val_pgd": record["val_pgd"], "val_clean": record["val_clean"],
                                         "epoch": epoch + 1}
                            if main:
                                atomic_save(self._best_state(epoch + 1, record), self.run_dir / "best.pt")
                    log({"kind": "epoch", "epoch": epoch, "step": self.step,
                         "lr": self.optimizer.param_groups[0]["lr"], **record})
                    log.flush()
                    self._save_last(epoch + 1, 0, None, complete=last)
                    shown = {k: round(v, 4) for k, v in record.items() if k.startswith(("train_loss", "val_"))}
                    self._print(f"epoch {epoch + 1}/{c.train.epochs} {shown}")
                    if self._stop_signal is not None and not last:
                        name = signal.Signals(self._stop_signal).name
                        raise TrainingStopped(self._stop_signal, f"stopped by {name} after epoch {epoch + 1}; "
                                                                 f"continue with --resume")
        except TrainingStopped:
            if main:
                self._write_status("stopped")
            raise
        finally:
            if metrics is not None:
                metrics.close()
        if main:
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


def _parse(line: str):
    """A metrics record, or None for a line cut short by a crash."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "step" in record else None


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
