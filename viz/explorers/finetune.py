"""A short RegMix fine-tune in a background thread, so that the notebook stays responsive: the
kernel keeps answering widget events while the thread trains a copy of the model."""
from __future__ import annotations

import copy
import threading

import torch


class FineTune:
    """Trains a copy of `model` for `steps` batches with the RegMix objective at the given weights.

    on_progress(step, steps, loss) is called after every batch and on_done(job) once at the end (also
    after an error or stop(); `error` then holds it). The original model is never touched.
    """

    def __init__(self, model, config, weights: dict, *, steps: int = 50, lr: float | None = None,
                 batch_size: int = 128, seed: int = 0, on_progress=None, on_done=None):
        self.source, self.config, self.weights = model, config, dict(weights)
        self.steps, self.batch_size, self.seed = int(steps), batch_size, seed
        self.lr = lr if lr is not None else config.optim.lr * 0.5
        self.on_progress, self.on_done = on_progress, on_done
        self.model, self.error, self.losses = None, None, []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="regmix-finetune", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self._stop.set()

    def join(self, timeout=None):
        self.thread.join(timeout)
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _batches(self):
        from regmix.data import create_dataset
        data = self.config.data
        dataset = create_dataset(data.name, "train", data.data_dir, augment=False, val_size=data.val_size)
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=True,
                                                 generator=generator)
            yield from loader

    def _run(self):
        from regmix.methods import create_method
        try:
            model = copy.deepcopy(self.source).train()
            options = {**self.config.method.options, **self.weights}
            method = create_method("regmix", self.config.training_threat(), **options)
            optimizer = torch.optim.Adam(model.parameters(), lr=self.lr)
            batches = self._batches()
            for step in range(1, self.steps + 1):
                if self._stop.is_set():
                    break
                x, y = next(batches)
                loss, _ = method.loss(model, x, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self.losses.append(loss.item())
                if self.on_progress:
                    self.on_progress(step, self.steps, self.losses[-1])
            self.model = model.eval()
        except Exception as err:  # reported through on_done: a thread's exception is otherwise lost
            self.error = err
        finally:
            if self.on_done:
                self.on_done(self)
