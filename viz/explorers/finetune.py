"""The AMR explorer's fine-tune in a background thread (background.BackgroundJob): the kernel keeps
answering widget events while the thread trains. The training is regmix's
(regmix.training.finetune.finetune; with control=True regmix.diagnostics.finetune.finetune_comparison:
the same budget at the run's own weights beside it, and PGD accuracy before and after)."""
from __future__ import annotations

from regmix.diagnostics.finetune import finetune_comparison
from regmix.registry import ConfigError
from regmix.training.finetune import OPTIMIZERS, finetune

from .background import BackgroundJob, Cancelled

__all__ = ["FineTune"]


class FineTune(BackgroundJob):
    """Trains a copy of `model` for `steps` batches with RegMix at `weights`, from the model given
    (never touched). optimizer: 'run' (the run's own optimiser and learning rate) or 'adam-half'; lr
    overrides the learning rate. control=True also trains the same budget at the run's own weights
    and measures PGD accuracy on `n` validation points before and after (`comparison`).
    on_progress(step, total, loss) after every batch; on_done(job) once at the end. stop() ends after
    the current batch, keeping the steps taken (no comparison then)."""

    name = "regmix-finetune"

    def __init__(self, model, config, weights: dict, *, steps: int = 50, lr: float | None = None,
                 optimizer: str = "run", batch_size: int = 128, seed: int = 0, control: bool = False,
                 n: int = 256, attack: str = "pgd10", before=None, on_progress=None, on_done=None):
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        super().__init__(on_progress=on_progress, on_done=on_done)
        self.source, self.config, self.weights = model, config, dict(weights)
        self.steps, self.batch_size, self.seed, self.lr = int(steps), batch_size, seed, lr
        self.optimizer_choice, self.control, self.n, self.attack, self.before = optimizer, control, n, attack, before
        self.model, self.optimizer, self.losses, self.comparison = None, None, [], None

    def work(self):
        options = dict(steps=self.steps, seed=self.seed, optimizer=self.optimizer_choice, lr=self.lr,
                       batch_size=self.batch_size, on_step=self._step, check=self.check)
        try:
            if self.control:
                self.comparison = finetune_comparison(self.source, self.config, self.weights, n=self.n,
                                                      attack=self.attack, before=self.before, **options)
                self.model, self.losses = self.comparison["model"], self.comparison["losses"]
                self.optimizer = self.comparison["optimizer"]
            else:
                self.model, self.losses, self.optimizer = finetune(self.source, self.config, self.weights, **options)
        except Cancelled as stopped:   # a stopped fine-tune keeps the steps it took
            self.model, losses, self.optimizer = stopped.partial
            self.losses = self.losses or losses
        return self.model

    def _step(self, step, total, loss):
        if step <= self.steps:
            self.losses.append(loss)
        self.progress(step, total, loss)
