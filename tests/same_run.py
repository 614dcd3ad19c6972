"""Two runs that must have ended alike (one interrupted and resumed, one not), compared bit for bit."""
import pytest
import torch

import regmix.faults as faults
from regmix.rundir import RunDir
from regmix.trainer import Trainer, train

TIMING = ("images_per_s", "epoch_time_s", "validation_time_s")  # the only fields of metrics.jsonl that may differ


def assert_same_tensors(a, b, where):
    """Nested dicts/lists of tensors and plain values, equal bit for bit (dtype included)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert sorted(a, key=str) == sorted(b, key=str), f"{where}: keys differ"
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def metrics_without_timing(run_dir):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in RunDir(run_dir).metrics()]


def assert_same_run(a_dir, b_dir):
    """Everything a run leaves: last.pt (weights, EMA, optimiser, scheduler, method state, RNG states,
    best record, step), best.pt (all but the config, which names the folder), and metrics.jsonl without
    its timing fields and without a torn line."""
    load = lambda d, f: torch.load(d / f, weights_only=True)  # noqa: E731
    a, b = load(a_dir, "last.pt"), load(b_dir, "last.pt")
    assert a["complete"] and b["complete"]
    for part in ("model", "ema", "ema_updates", "optimizer", "scheduler", "method", "rng", "best", "step"):
        assert_same_tensors(a[part], b[part], part)
    assert_same_tensors({k: v for k, v in load(a_dir, "best.pt").items() if k != "config"},
                        {k: v for k, v in load(b_dir, "best.pt").items() if k != "config"}, "best.pt")
    assert metrics_without_timing(a_dir) == metrics_without_timing(b_dir)
    for d in (a_dir, b_dir):
        assert len(RunDir(d).metrics_path.read_text().splitlines()) == len(RunDir(d).metrics())  # no torn line


class Killed(Exception):
    pass


def kill_after(step):
    """A fault hook (regmix.training.faults.at_step) that kills the run at the end of training step `step`."""
    def at_step(current):
        if current == step:
            raise Killed(step)
    return at_step


def assert_resumes_exactly(config_of, root, monkeypatch, step):
    """config_of(folder) -> Config: a run killed after `step` and resumed ends as one never stopped.
    Returns the uninterrupted run's folder."""
    whole = train(config_of(root / "whole"))
    parts = config_of(root / "parts")
    with monkeypatch.context() as m:
        m.setattr(faults, "at_step", kill_after(step))
        with pytest.raises(Killed):
            train(parts)
    Trainer(parts, resume=True).fit()
    assert_same_run(whole, parts.run_dir)
    return whole
