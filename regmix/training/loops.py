"""One epoch of training, the two ways the Trainer (regmix/trainer.py) can run it: the DataLoader loop,
which reads every step's loss back (a non-finite one stops or is skipped), and train.fast's loop on
batches made on the device, whose step (optimiser and EMA included) reads nothing back
(training/step.py). Both share the bookkeeping after a step (the step record, a checkpoint inside the epoch,
the fault hook). A mixin: it uses the Trainer's config, model, method, optimiser and run directory.
"""
from __future__ import annotations

import time

import torch

from .. import distributed as dist
from .. import faults
from .data import check_pixel_range
from .errors import TrainingDiverged


class EpochLoops:
    def train_epoch(self, epoch: int, log) -> dict:
        c = self.config
        threat = self._epoch_threat(epoch)
        self.method.set_threat(threat)
        start_batch, self.start_batch = self.start_batch, 0
        if start_batch == 0:
            self.method.start_epoch(epoch)
        self.sampler.set_epoch(epoch, start_batch)
        self.loader_rng.manual_seed(c.train.seed * 100_003 + epoch)
        partial, self.partial = (self.partial or {"sums": {}, "seen": 0, "skipped": 0, "elapsed": 0.0}), None
        bar = None
        if c.train.progress and dist.is_main():
            from tqdm.auto import tqdm  # optional at run time: only a run that shows progress needs it
            bar = tqdm(total=self.steps_per_epoch, initial=start_batch, desc=f"{c.name} epoch {epoch + 1}/{c.train.epochs}",
                       leave=False, disable=None, dynamic_ncols=True)
        try:
            steps = self._fast_steps if c.train.fast else self._loader_steps
            sums, seen, skipped, elapsed = steps(epoch, start_batch, partial, log, bar)
        finally:
            if bar is not None:
                bar.close()
        totals = dist.all_reduce_sum(torch.tensor([seen, *[sums.get(k, 0.0) for k in sorted(sums)]],
                                                  dtype=torch.float64, device=self.device)).tolist()
        record = {f"train_{k}": v / max(totals[0], 1) for k, v in zip(sorted(sums), totals[1:])}
        record.update({"eps": threat.eps, "images_per_s": totals[0] / elapsed, "epoch_time_s": elapsed,
                       "machine": self.machine, "skipped_steps": skipped})
        return record

    def _apply_update(self):
        """The optimiser's step and the EMA's, after the gradients are in (the loader path; train.fast's
        step makes both itself)."""
        self.optimizer.step()
        if self.ema is not None:
            self._update_ema()

    def _update_ema(self):
        self.ema.update(self.model, self.method.attack_ratio)

    def _after_step(self, epoch, done, log, values, stop, state):
        """Step bookkeeping shared by both loops: the step record, a checkpoint inside the epoch when
        asked (periodic, or a stop signal), the fault hook. `values` and `state` are callables, so the
        fast loop reads the device only when something is written."""
        c = self.config
        if self.step % c.train.log_every == 0:
            log({"kind": "step", "epoch": epoch, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
                 **values()})
        periodic = c.train.checkpoint_every and self.step % c.train.checkpoint_every == 0
        if (stop or periodic) and done < self.steps_per_epoch:
            log.flush()
            self._save_last(epoch, done, state())
            if stop:
                raise self._stopped(f"at epoch {epoch + 1}, step {self.step}; a checkpoint was written")
        faults.at_step(self.step)  # tests only: REGMIX_FAULT=kill@step:K

    def _loader_steps(self, epoch, start_batch, partial, log, bar):
        """The DataLoader loop: every step reads its loss back (a non-finite one stops or is skipped)."""
        c = self.config
        sums, seen, skipped, start = dict(partial["sums"]), partial["seen"], partial["skipped"], time.time()
        for batch_index, (x, y, index) in enumerate(self.loader, start=start_batch):
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
                        f"the last good checkpoint is {self.run.checkpoint('last')}")
                skipped += 1
                self._print(f"skipped step {self.step + 1}: non-finite loss ({values})")
            else:
                loss.backward()
                self._apply_update()
            self.scheduler.step()
            self.step += 1
            values = {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}
            if not nonfinite:
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v * len(y)
                seen += len(y)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{values['loss']:.3f}")
            self._after_step(epoch, batch_index + 1, log, lambda: values, stop,
                             lambda: {"sums": sums, "seen": seen, "skipped": skipped,
                                      "elapsed": partial["elapsed"] + time.time() - start})
        return sums, seen, skipped, partial["elapsed"] + time.time() - start

    def _fast_steps(self, epoch, start_batch, partial, log, bar):
        """train.fast: batches made on the device, the step never reads the device (training/step.py);
        the sums and the count of non-finite losses are read once per log interval, at a checkpoint
        and at the epoch's end. A non-finite loss stops the run there (the weights it touched are never
        written: the last checkpoint was written before it)."""
        c, step = self.config, self.device_step
        start = time.time()
        self.device_batches.set_epoch(epoch)
        step.reset(partial["sums"], partial["seen"], self.device)

        def read():
            sums, seen, bad = step.read()
            if bad:
                raise TrainingDiverged(
                    f"train: the loss was not finite at {bad} step(s) up to step {self.step} (epoch {epoch + 1}; "
                    f"train.fast reads it every train.log_every steps); the last good checkpoint is "
                    f"{self.run.checkpoint('last')}")
            return sums, seen

        def values():  # the step record: read only when one is written
            read()
            latest = step.last_values()
            if bar is not None:
                bar.set_postfix(loss=f"{latest['loss']:.3f}")
            return latest

        def state():  # a checkpoint's partial sums
            sums, seen = read()
            return {"sums": sums, "seen": seen, "skipped": 0, "elapsed": partial["elapsed"] + time.time() - start}

        for batch_index in range(start_batch, self.steps_per_epoch):
            x, y, index = self.device_batches.batch(batch_index)
            if batch_index == start_batch:
                check_pixel_range(x, f"data ({c.data.name})")
            if c.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            step(x, y, index)  # the whole step, optimiser and EMA included; bf16 autocast inside where asked
            self.scheduler.step()
            self.step += 1
            stop = self._reduce_flags(False)[1] if dist.active() else self._stop_signal is not None
            if bar is not None:
                bar.update(1)

            self._after_step(epoch, batch_index + 1, log, values, stop, state)
        sums, seen = read()
        return sums, seen, 0, partial["elapsed"] + time.time() - start
