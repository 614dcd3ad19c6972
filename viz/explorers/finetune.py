"""A short RegMix fine-tune in a background thread (background.BackgroundJob): the kernel keeps
answering widget events while the thread trains a copy of the model."""
from __future__ import annotations

import copy

import torch

from regmix.registry import ConfigError

from .background import BackgroundJob, Cancelled

# "run": the optimiser the run was trained with (config.optim: name, lr, momentum, weight_decay);
# "adam-half": Adam at half the run's learning rate (what the fine-tune always did before)
OPTIMIZERS = ("run", "adam-half")


class FineTune(BackgroundJob):
    """Trains a copy of `model` for `steps` batches with the RegMix objective at the given weights.

    optimizer: "run" (default) uses the run's own optimiser and learning rate, "adam-half" Adam at half
    the run's learning rate; lr overrides the learning rate of either. on_progress(step, steps, loss) is
    called after every batch and on_done(job) once at the end (also after an error or stop(); `error`
    then holds it). The original model is never touched.
    """

    name = "regmix-finetune"

    def __init__(self, model, config, weights: dict, *, steps: int = 50, lr: float | None = None,
                 optimizer: str = "run", batch_size: int = 128, seed: int = 0, on_progress=None, on_done=None):
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        super().__init__(on_progress=on_progress, on_done=on_done)
        self.source, self.config, self.weights = model, config, dict(weights)
        self.steps, self.batch_size, self.seed = int(steps), batch_size, seed
        self.optimizer_choice = optimizer
        self.lr = lr if lr is not None else config.optim.lr * (0.5 if optimizer == "adam-half" else 1.0)
        self.model, self.optimizer, self.losses = None, None, []

    def make_optimizer(self, params) -> torch.optim.Optimizer:
        if self.optimizer_choice == "adam-half":
            return torch.optim.Adam(params, lr=self.lr)
        from regmix.training.schedule import make_optimizer
        optimizer = make_optimizer(self.config, params)  # the run's class, momentum and weight decay
        for group in optimizer.param_groups:
            group["lr"] = self.lr
        return optimizer

    def _batches(self):
        from regmix.data import create_dataset
        data = self.config.data
        dataset = create_dataset(data.name, "train", data.data_dir, augment=False, val_size=data.val_size)
        generator = torch.Generator().manual_seed(self.seed)
        while True:
            loader = torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, shuffle=True,
                                                 generator=generator)
            yield from loader

    def work(self):
        from regmix.methods import create_method
        model = copy.deepcopy(self.source).train()
        device = next(model.parameters()).device  # the run's device (the explorer's choice)
        options = {**self.config.method.options, **self.weights}
        method = create_method("regmix", self.config.training_threat(), **options)
        self.optimizer = self.make_optimizer(model.parameters())
        batches = self._batches()
        try:
            for step in range(1, self.steps + 1):
                self.check()
                x, y = next(batches)
                x, y = x.to(device), y.to(device)
                loss, _ = method.loss(model, x, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.losses.append(loss.item())
                self.progress(step, self.steps, self.losses[-1])
        except Cancelled:
            pass  # a stopped fine-tune keeps the steps it took, as before
        self.model = model.eval()
        return self.model
