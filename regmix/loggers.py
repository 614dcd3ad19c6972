"""Experiment loggers fed the same records as metrics.jsonl: `create_loggers(["tensorboard"], run_dir)`.

Each logger has `.log(record)`, `.flush()` and `.close()`. The trainer creates them on rank 0 only
(the one process that writes metrics.jsonl) and hands them every record it writes there.

    tensorboard  RUN/tensorboard/ event files (pip install 'regmix[tensorboard]')
    mlflow       RUN/mlflow.db, a local SQLite store, no server (pip install 'regmix[mlflow]')

Tags: a step record's values go under train/ (train/loss, train/lr, train/<term>); an epoch record's
val_X under val/X, its train_X (epoch means) under train_epoch/X, the rest under epoch/. Both kinds
are logged at their "step" (the optimiser step count), so step and epoch curves share one x axis.
Values that are not numbers (strings, lists, None) are skipped; nested dicts are flattened with "/".
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import sqlite3
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from .files import first_line
from .registry import ConfigError, suggest

FIELD = "train.loggers"
# name -> (import name of the package it needs, the extra that installs it)
LOGGERS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}
SKIP_KEYS = ("kind", "epoch", "step")


def scalars(record: dict) -> Dict[str, float]:
    """The numeric values of a metrics record under their tags (see the module docstring)."""
    kind = record.get("kind", "step")
    out: Dict[str, float] = {}

    def tag(key: str) -> str:
        if kind == "step":
            return f"train/{key}"
        if kind == "epoch":
            for prefix, group in (("val_", "val"), ("train_", "train_epoch")):
                if key.startswith(prefix):
                    return f"{group}/{key[len(prefix):]}"
            return f"epoch/{key}"
        return f"{kind}/{key}"

    def add(name: str, value):
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{name}/{k}", v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
        elif hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # 0-d numpy/torch values
            out[name] = float(value.item())

    for key, value in record.items():
        if key not in SKIP_KEYS:
            add(tag(str(key)), value)
    return out


def _step(record: dict, fallback: int) -> int:
    step = record.get("step")
    return int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else fallback


class TensorBoardLogger:
    """Scalars into RUN/tensorboard/ through torch.utils.tensorboard.SummaryWriter.

    start_step: on a resumed run, the step of the checkpoint; TensorBoard then drops the events that
    an earlier attempt wrote after it (as metrics.jsonl is truncated), so no curve shows two pasts.
    """

    def __init__(self, run_dir, start_step: Optional[int] = None):
        from torch.utils.tensorboard import SummaryWriter  # optional extra (tensorboard)
        self.log_dir = Path(run_dir) / "tensorboard"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        purge = None if start_step is None else int(start_step) + 1
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)
        self._count = 0

    def log(self, record: dict):
        self._count += 1
        step = _step(record, self._count)
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


class MLflowLogger:
    """Metrics into a local MLflow store, RUN/mlflow.db (SQLite; no server), one MLflow run per regmix run.

    MLflow 3 refuses its old ./mlruns file store, so the store is the SQLite file it recommends. A
    resumed run appends to the MLflow run whose id is in RUN/mlflow_run_id.
    View it with `mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db`.
    """

    def __init__(self, run_dir, start_step: Optional[int] = None):
        from mlflow.tracking import MlflowClient  # optional extra (mlflow)
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        # creating the store runs MLflow's schema migrations, which log a page of INFO lines
        for name in ("alembic", "mlflow.store.db.utils"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri = f"sqlite:///{run_dir / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=self.uri)
        experiment = self.client.get_experiment_by_name("regmix")
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment("regmix")
        id_file = run_dir / "mlflow_run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        if run_id is None:
            run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
            id_file.write_text(run_id)
        elif start_step is not None:
            self._purge(run_dir / "mlflow.db", run_id, int(start_step))
        self.run_id, self._count = run_id, 0

    @staticmethod
    def _purge(db: Path, run_id: str, step: int):
        """Drop the metric points an earlier attempt logged after the checkpoint (MLflow's client has no
        call for it; the local store is SQLite, its tables metrics and latest_metrics)."""
        with sqlite3.connect(str(db)) as con:
            for table in ("metrics", "latest_metrics"):
                con.execute(f"DELETE FROM {table} WHERE run_uuid = ? AND step > ?", (run_id, step))

    def log(self, record: dict):
        from mlflow.entities import Metric  # optional extra (mlflow)
        self._count += 1
        step, now = _step(record, self._count), int(time.time() * 1000)
        metrics = [Metric(tag, value, now, step) for tag, value in scalars(record).items() if math.isfinite(value)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def flush(self):
        pass  # every log_batch is written through

    def close(self):
        self.client.set_terminated(self.run_id)


FACTORIES = {"tensorboard": TensorBoardLogger, "mlflow": MLflowLogger}
# the module each logger starts from: importing it is what fails on a broken install
STARTS = {"tensorboard": "torch.utils.tensorboard", "mlflow": "mlflow.tracking"}


def start_check(names: Iterable[str]) -> List[str]:
    """check_loggers, then each logger's module imported: called before the run folder is created, so a
    logger that cannot start costs one line and leaves nothing behind."""
    names = check_loggers(names)
    for name in names:
        try:
            importlib.import_module(STARTS[name])
        except Exception as err:  # a broken install raises anything from ImportError to AttributeError
            first = first_line(err)
            raise ConfigError(f"{FIELD}: {name!r} cannot start ({type(err).__name__}: {first}); "
                              f"reinstall it (pip install 'regmix[{LOGGERS[name][1]}]') or remove it") from None
    return names


def check_loggers(names: Iterable[str]) -> List[str]:
    """Validate logger names and that their packages are importable, before any work; returns the names.

    Unknown name -> ConfigError naming train.loggers; a missing package -> the extra to install.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names or [])
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"{FIELD}: unknown logger {name!r}{suggest(name, LOGGERS)}; "
                              f"known: {', '.join(sorted(LOGGERS))}")
        package, extra = LOGGERS[name]
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"{FIELD}: {name!r} needs the {package} package: pip install 'regmix[{extra}]'")
    if len(set(names)) != len(names):
        raise ConfigError(f"{FIELD}: a logger is named twice: {names}")
    return names


def create_loggers(names: Iterable[str], run_dir, *, start_step: Optional[int] = None) -> list:
    """One logger per name, writing under run_dir; call only on the process that writes metrics.jsonl."""
    created = []
    try:
        for name in check_loggers(names):
            created.append(FACTORIES[name](run_dir, start_step=start_step))
    except BaseException:
        for logger in created:
            logger.close()
        raise
    return created


__all__ = ["create_loggers", "check_loggers", "start_check", "scalars", "TensorBoardLogger", "MLflowLogger", "LOGGERS"]
