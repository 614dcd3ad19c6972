"""How a training run ends other than complete: the CLI maps these to exit codes."""
from __future__ import annotations


class TrainingDiverged(RuntimeError):
    """A non-finite loss with train.on_nonfinite=stop (exit 1)."""


class TrainingStopped(Exception):
    """SIGTERM or SIGINT arrived; a checkpoint was written and the run can be resumed (exit 128+signum)."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum
