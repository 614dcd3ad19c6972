"""The training loop: one config in, one run directory out.

The run directory holds config.yaml (the resolved config), metrics.jsonl (every loss term per step,
and one record per epoch), last.pt (everything needed to resume), best.pt (the weights with the best
validation PGD accuracy) and status.json.

Resuming is exact: the batch order of an epoch depends on (seed, epoch) alone (EpochSampler), and
last.pt carries the RNG states and the epoch's running sums, so a run stopped anywhere and resumed
ends with the same weights and metrics as one never stopped. Two draws would break that and are kept
off the global RNG: the DataLoader's base seed (drawn whenever an iterator is made, i.e. again after a
resume) comes from its own generator seeded by (seed, epoch), and validation's PGD random starts
come from an RNG seeded by (seed, epoch) that leaves the training stream untouched.

Rank 0 holds the run directory's lock from creation to the end (training/claim.py); under torchrun
the same loop runs with DistributedDataParallel and rank 0 alone writes files.
"""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from . import distributed as dist
from .attacks import PGD
from .checkpoint import FORMAT, load_checkpoint
from .config import Config, save_config
from .data import create_dataset
from .data.sampler import EpochSampler
from .ema import EMA
from .files import atomic_save, first_line
from .attacks.flags import robust_flags, stack
from .methods import create_method
from .models import create_model
from .modes import model_mode
from .registry import ConfigError
from .rundir import RunDir
from .runtime import machine, resolve_device, rng_state, seed_everything, seeded_rng, set_rng_state
from .training.claim import check_checkpoint_config, claim
from .training.data import IndexedDataset
from .training.device_data import DeviceBatches
from .training.loops import EpochLoops
from .training.errors import TrainingStopped
from .training.metrics_log import MetricsLog, truncate_metrics
from .training.monitor import masking_history, monitor_flags, monitor_record, overfit
from .training.schedule import lr_factor, make_optimizer
from .training.step import DeviceStep

__all__ = ["Trainer", "train"]


class Trainer(EpochLoops):
    def __init__(self, config: Config, *, resume: bool = False, overwrite: bool = False):
        c = self.config = config.resolved()  # method defaults filled in: what runs is what is recorded
        self.run = RunDir(c.run_dir)
        self.run_dir = self.run.path
        self.device = dist.setup(c.train.device) or resolve_device(c.train.device)
        self.rank, self.world = dist.rank(), dist.world_size()
        # what the epoch times are measured on, written beside them (times of two machines differ)
        self.machine = machine(self.device) + (f", {self.world} processes" if self.world > 1 else "")
        if c.data.batch_size % self.world:
            raise ConfigError(f"data.batch_size: the global batch ({c.data.batch_size}) must divide evenly "
                              f"over {self.world} processes")
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
        self.optimizer = make_optimizer(c, self.model.parameters(), fused=c.train.fast)
        self.sampler = EpochSampler(len(ds), c.data.batch_size // self.world, c.train.seed, self.rank, self.world)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(c, step / self.steps_per_epoch))
        self.ema = EMA(self.model, c.train.ema_decay, gate=c.train.ema_gate, buffers=c.train.ema_buffers) if c.train.ema else None
        # the loader's own generator: making an iterator draws its base seed from here, not from the
        # global RNG whose state last.pt restores (train_epoch seeds it by (seed, epoch))
        self.loader_rng = torch.Generator()
        self.loader = DataLoader(IndexedDataset(ds), batch_size=c.data.batch_size // self.world,
                                 sampler=self.sampler, num_workers=c.data.num_workers,
                                 pin_memory=self.device.type == "cuda", generator=self.loader_rng)
        # train.fast: the training split on the device, batches made there, no host read inside a step
        # (training/device_data.py, training/step.py); on CUDA the step is captured as a CUDA graph
        self.device_batches = DeviceBatches(ds, self.sampler, self.device, seed=c.train.seed) if c.train.fast else None
        graph = c.train.fast and c.train.cuda_graph and self.device.type == "cuda"
        if graph and dist.active():
            self._print("note: train.cuda_graph is not used under torchrun (DDP); the fast step runs eagerly")
            graph = False
        self.device_step = None
        n_val = len(self.val_set) if c.eval.max_points is None else min(c.eval.max_points, len(self.val_set))
        self.val_points = stack(DataLoader(torch.utils.data.Subset(self.val_set, range(self.rank, n_val, self.world)),
                                           batch_size=1000))
        self.net = self._wrap_ddp()
        if c.train.fast:
            self.device_step = DeviceStep(self.net, self.method, self.optimizer,
                                          after_update=self._update_ema if self.ema is not None else None,
                                          amp=c.train.amp == "bf16" and self.device.type == "cuda", graph=graph)
        self.start_epoch, self.start_batch, self.step = 0, 0, 0
        self.partial = None  # running sums of an epoch that a checkpoint interrupted
        self.best = {"val_pgd": -1.0, "val_clean": -1.0, "epoch": -1}
        self._stop_signal = None
        # everything above checks the config (data, model, method) before the run directory is touched
        self.lock = None
        continue_run = self._claim(resume, overwrite)
        try:
            if continue_run:
                self._load(self._read_last())
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ set-up helpers

    def _print(self, text):
        if dist.is_main():
            print(f"[{self.config.name}] {text}", flush=True)

    def _claim(self, resume: bool, overwrite: bool) -> bool:
        """Rank 0 takes the lock and decides; every rank learns the outcome (or the same error)."""
        outcome = None
        if dist.is_main():
            try:
                self.lock, outcome = claim(self.run, self.config, resume=resume, overwrite=overwrite)
            except ConfigError as err:
                if not dist.active():
                    raise
                outcome = err
        outcome = dist.broadcast_object(outcome)
        if isinstance(outcome, ConfigError):
            self.close()
            raise outcome
        return bool(outcome)

    def _read_last(self) -> dict:
        """last.pt, refused unless it was trained with the config asked to continue. A run reached
        through a symlink is resumed as its target: under the target's own name and out_dir (those
        stored in last.pt when they still lead there), so its config.yaml is not rewritten."""
        try:
            state = load_checkpoint(self.run.checkpoint("last"), map_location=self.device)
        except ConfigError as err:
            raise ConfigError(f"resume: {err}; nothing was changed: --overwrite moves the run aside and "
                              f"starts again") from None
        check_checkpoint_config(self.run.checkpoint("last"), state.get("config"), self.config)
        real = Path(os.path.realpath(self.run.path))
        if real != Path(os.path.abspath(self.run.path)):
            stored = state["config"]
            name, out_dir = stored.get("name"), stored.get("out_dir")
            if not (isinstance(name, str) and isinstance(out_dir, str)
                    and os.path.realpath(Path(out_dir) / name) == str(real)):
                name, out_dir = real.name, str(real.parent)
            self.config.name, self.config.out_dir = name, out_dir
            self.run, self.run_dir = RunDir(real), real
        return state

    def close(self):
        """Let go of the run directory (done by fit; for a Trainer that is never fitted)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __del__(self):
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.release()

    def _wrap_ddp(self):
        if not dist.active():
            return self.model
        model = self.model
        if self.config.train.sync_batchnorm:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            self.model = model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

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
            atomic_save(self._state(epoch, batch, partial, complete, rngs), self.run.checkpoint("last"))
        dist.barrier()

    def _load(self, state: dict):
        if state.get("world_size", 1) != self.world:
            raise ConfigError(f"resume: {self.run.checkpoint('last')} was written by {state.get('world_size', 1)} "
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

    # ------------------------------------------------------------ the loop

    def validate(self, epoch: int) -> dict:
        """Clean and PGD accuracy on the validation split, sharded over ranks and summed, and the masking
        monitor (training/monitor.py) on its first eval.monitor_points points, at the epochs of
        eval.monitor_every. The random starts draw from an RNG seeded by (seed, epoch, rank): the same after
        a resume, and validation PGD-10's the same with or without the monitor (it draws first)."""
        c = self.config
        threat = c.eval_threat()
        x, y = self.val_points
        monitored = c.eval.monitor_points and ((epoch + 1) % c.eval.monitor_every == 0 or epoch + 1 == c.train.epochs)
        # this rank's points are validation points rank, rank + world, ...: those below monitor_points
        n = min(len(y), max(0, -(-(c.eval.monitor_points - self.rank) // self.world)))
        seed = (c.train.seed * 1_000_003 + 7919 * (epoch + 1) + self.rank) % 2 ** 63
        with seeded_rng(seed, self.device):
            flags = robust_flags(self.eval_model, x, y, {"pgd": lambda m: PGD(m, threat)}, device=self.device,
                                 batch_size=c.data.eval_batch_size)
            monitor = monitor_flags(self.eval_model, x[:n], y[:n], flags["clean"][:n], flags["pgd"][:n], threat,
                                    steps=c.eval.monitor_steps, restarts=c.eval.monitor_restarts,
                                    attack=c.eval.monitor_attack, device=self.device,
                                    batch_size=c.data.eval_batch_size) if monitored else {}
        counts = dist.all_reduce_sum(torch.tensor([flags["clean"].sum(), flags["pgd"].sum(), len(y),
                                                   *[f.sum() for f in monitor.values()], n],
                                                  dtype=torch.float64, device=self.device)).tolist()
        record = {"val_clean": counts[0] / counts[2], "val_pgd": counts[1] / counts[2]}
        if monitor:
            record.update(monitor_record({k: v / max(counts[-1], 1) for k, v in zip(monitor, counts[3:-1])},
                                         c.eval.masking_threshold, armed=epoch + 1 >= c.train.eps_warmup_epochs,
                                         peak=self.best.get("monitor_pgd_peak")))
        return record

    def _reduce_flags(self, nonfinite: bool) -> tuple:
        """Every rank learns whether any rank saw a non-finite loss or a stop signal."""
        flags = dist.all_reduce_max(torch.tensor([float(nonfinite), float(self._stop_signal is not None)],
                                                 device=self.device))
        return bool(flags[0]), bool(flags[1])

    def _stopped(self, where: str) -> TrainingStopped:
        signum = self._stop_signal or signal.SIGTERM
        return TrainingStopped(signum, f"stopped by {signal.Signals(signum).name} {where}; continue with --resume")

    def fit(self) -> Path:
        c, main = self.config, dist.is_main()
        log = None
        try:
            if main:
                self.run.path.mkdir(parents=True, exist_ok=True)
                self.run.ensure_run_id()
                save_config(c, self.run.config_path)
                truncate_metrics(self.run, self.step, self.start_epoch)
                self._write_status("running")
            dist.barrier()
            log = MetricsLog(self.run, active=main, loggers=c.train.loggers)
            with self._signals():
                for epoch in range(self.start_epoch, c.train.epochs):
                    if self.best.get("stopped_on_overfit"):  # train.stop_on_overfit ended the run
                        break
                    self._epoch(epoch, log)
        except TrainingStopped:
            self._write_status("stopped")
            raise
        except BaseException as err:
            self._write_status("failed", error=f"{type(err).__name__}: {first_line(err)}")
            raise
        finally:
            if log is not None:
                log.close()
            self.close()
        self._write_status("complete")
        return self.run_dir

    def _epoch(self, epoch: int, log):
        c, main = self.config, dist.is_main()
        with model_mode(self.net, training=True):
            record = self.train_epoch(epoch, log)
        last = epoch + 1 == c.train.epochs
        if (epoch + 1) % c.eval.every == 0 or last:
            start = time.time()
            record.update(self.validate(epoch))  # its counts are gathered to the CPU: the time includes the device's
            record["validation_time_s"] = time.time() - start
            # eval.select's accuracy (PGD-10, or the monitor's strong attack) selects; clean accuracy breaks
            # ties (a standard model is 0 under PGD)
            key = "val_pgd" if c.eval.select == "pgd" else "val_monitor_strong"
            if (record[key], record["val_clean"]) > (self.best.get(key, -1.0), self.best["val_clean"]):
                self.best = {**self.best, "val_pgd": record["val_pgd"], "val_clean": record["val_clean"],
                             "epoch": epoch + 1, key: record[key]}
                if main:
                    atomic_save(self._best_state(epoch + 1, record), self.run.checkpoint("best"))
            if "val_monitor_pgd" in record:  # the best monitor PGD accuracy so far, which a collapse falls from
                if c.train.stop_on_overfit and overfit(record):
                    self.best["stopped_on_overfit"] = epoch + 1
                self.best["monitor_pgd_peak"] = max(self.best.get("monitor_pgd_peak", 0.0), record["val_monitor_pgd"])
        stopping = bool(self.best.get("stopped_on_overfit"))
        log({"kind": "epoch", "epoch": epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"], **record})
        log.flush()
        self._save_last(epoch + 1, 0, None, complete=last or stopping)
        shown = {k: round(v, 4) for k, v in record.items() if k.startswith(("train_loss", "val_"))}
        self._print(f"epoch {epoch + 1}/{c.train.epochs} {shown}")
        if record.get("masking_warning"):
            self._print(f"warning: epoch {epoch + 1}: {record['masking_warning']}")
            self._write_status("running")  # status.json lists every flagged epoch
        if stopping:
            self._print(f"stopped after epoch {epoch + 1} (train.stop_on_overfit): catastrophic overfitting flagged "
                        f"(FGSM above PGD-10, PGD-10 below its best, each by more than eval.masking_threshold); "
                        f"best.pt holds epoch {self.best['epoch']}")
        if self._stop_signal is not None and not last and not stopping:
            raise self._stopped(f"after epoch {epoch + 1}")

    def _best_state(self, epoch, record):
        return {"format": FORMAT, "config": self.config.to_dict(), "data": self.data_info, "epoch": epoch,
                "model": self.model.state_dict(),
                "ema": self.ema.model.state_dict() if self.ema else None,
                "val": {k: v for k, v in record.items() if k.startswith("val_")}}

    def _write_status(self, state, **extra):
        """Rank 0 records the run's state. On the way out of a failure a second failure here (a full
        disk) must not hide the first: RunDir.state() reads a "running" left by a dead writer as
        interrupted, since the lock is no longer held."""
        if not dist.is_main():
            return
        try:
            masking = masking_history(self.run.metrics("epoch"))  # epochs the monitor flagged
            self.run.write_status(state, best=self.best, epochs=self.config.train.epochs,
                                  **({"masking": masking} if masking else {}), **extra)
        except OSError:
            if state in ("running", "complete"):
                raise


def train(config: Config, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train one run into config.run_dir (see training/claim.py for resume and overwrite)."""
    return Trainer(config, resume=resume, overwrite=overwrite).fit()
