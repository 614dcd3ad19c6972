"""metrics.jsonl as the trainer writes it: appended record by record, cut back on resume, and
mirrored to optional loggers (TensorBoard, MLflow) on the writing rank."""
from __future__ import annotations

import json

from .. import faults
from ..files import atomic_write_text
from ..loggers import create_loggers
from ..rundir import RunDir, parse_metrics_line


class MetricsLog:
    """`log(record)` appends one JSON line (and hands the record to every logger); `flush()` before a
    checkpoint makes the file hold every record up to it. Inactive (rank > 0): every call does nothing."""

    def __init__(self, run: RunDir, active: bool, loggers=()):
        self.run, self.active = run, active
        self._file = None
        self._loggers = []
        if active:
            # a resumed run (truncate_metrics has cut metrics.jsonl back to its checkpoint): the loggers
            # drop what an earlier attempt logged past the last record kept, as metrics.jsonl did
            start = last_step(run) if run.metrics_path.exists() else None
            self._file = open(run.metrics_path, "a")
            if loggers:
                self._loggers = list(create_loggers(list(loggers), run.path, start_step=start))

    def __call__(self, record: dict):
        if self._file is None:
            return
        line = json.dumps(record) + "\n"
        faults.tear_append(self.run.METRICS, self._file, line)  # tests only: kill@append:metrics.jsonl
        self._file.write(line)
        for logger in self._loggers:
            logger.log(record)

    def flush(self):
        if self._file is not None:
            self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        loggers, self._loggers = self._loggers, []
        for logger in loggers:
            logger.close()


def truncate_metrics(run: RunDir, step: int, start_epoch: int):
    """On resume, drop the records written after the checkpoint (and any line a crash cut short), so
    metrics.jsonl ends as it would have without the interruption."""
    if not run.metrics_path.exists():
        return
    keep = []
    for line in run.metrics_path.read_text().splitlines():
        record = parse_metrics_line(line)
        if record is None or record["step"] > step:
            continue
        if record.get("kind") == "epoch" and record.get("epoch", -1) >= start_epoch:
            continue
        keep.append(line)
    atomic_write_text(run.metrics_path, "".join(ln + "\n" for ln in keep))


def last_step(run: RunDir) -> int:
    """The largest step of metrics.jsonl's records (0 when it holds none)."""
    steps = [r["step"] for r in run.metrics() if isinstance(r.get("step"), int) and not isinstance(r["step"], bool)]
    return max(steps, default=0)
