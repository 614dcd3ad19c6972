"""What a resume promises, kept: the config stored in last.pt is the one continued; TensorBoard drops
what an earlier attempt logged past the checkpoint; a torn temporary file from a kill is removed; a
run reached through a symlink is resumed as its target, not rewritten; a logger that cannot start
leaves no folder. Issue 24, class 'resume'. Faults are injected at an event (regmix/faults.py)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from regmix import faults
from regmix.registry import ConfigError
from regmix.rundir import RunDir
from regmix.trainer import Trainer, train

from conftest import tiny_config
from same_run import Killed, kill_after

# 20 steps an epoch (64 of 1,257 digits), last.pt every 3 steps
SMALL = dict(threat={"eps": 0.1, "step": 0.05, "steps": 2}, eval={"steps": 2, "max_points": 64})


def interrupted(root, monkeypatch, step=5, **train_options):
    config = tiny_config(root, "standard", **SMALL, train={"checkpoint_every": 3, **train_options})
    monkeypatch.setattr(faults, "at_step", kill_after(step))
    with pytest.raises(Killed):
        train(config)
    monkeypatch.undo()
    return config


def test_resume_compares_the_config_stored_in_last_pt(tmp_path, monkeypatch):
    """config.yaml edited by hand to match another config: last.pt was trained with the first one."""
    config = interrupted(tmp_path, monkeypatch)
    run = RunDir(config.run_dir)
    edited = run.read_config()
    edited["optim"]["lr"] = 0.01
    run.config_path.write_text(yaml.safe_dump(edited, sort_keys=False))
    other = tiny_config(tmp_path, "standard", **SMALL, optim={"lr": 0.01}, train={"checkpoint_every": 3})
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file() and p.name != ".lock"}
    with pytest.raises(ConfigError, match=r"^resume: .*last\.pt was trained with another config .*first "
                                          r"difference: optim\.lr: 0\.003 there, 0\.01 here"):
        Trainer(other, resume=True)
    assert {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file() and p.name != ".lock"} == before
    # the config it was trained with continues (config.yaml, edited, differs from it: refused as before)
    run.config_path.write_text(yaml.safe_dump({**edited, "optim": {**edited["optim"], "lr": 0.003}}, sort_keys=False))
    assert Trainer(config, resume=True).step == 3


def events(folder: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_a_killed_run_resumed_through_a_symlink_keeps_every_promise(tmp_path):
    """SIGKILL half-way through the 2nd write of last.pt (at step 6; the 1st, at step 3, is whole), then
    `--resume` through a symlink to the run: the torn temporary file is removed, the TensorBoard events
    hold each step once and match metrics.jsonl, config.yaml keeps the run's own name and out_dir."""
    pytest.importorskip("tensorboard")
    recipe = tmp_path / "r.yaml"
    config = tiny_config(tmp_path / "runs", "standard", **SMALL, train={"checkpoint_every": 3, "epochs": 1,
                                                                          "loggers": ["tensorboard"]})
    recipe.write_text(yaml.safe_dump({k: v for k, v in config.to_dict().items() if k not in ("name", "out_dir")}))
    env = {**os.environ, "REGMIX_FAULT": "kill@write:last.pt:2"}
    child = subprocess.run([sys.executable, "-m", "regmix", "train", "--config", str(recipe), "--out-dir",
                            str(tmp_path / "runs"), "--name", "r"], env=env, capture_output=True, text=True)
    assert child.returncode == -9, child.stderr
    run = RunDir(tmp_path / "runs" / "r")
    assert run.stale_temporaries() and max(events(run.path / "tensorboard")["train/loss"]) == 6
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "link").symlink_to(run.path)
    stored = run.read_config()

    resumed = subprocess.run([sys.executable, "-m", "regmix", "train", "--config", str(recipe), "--out-dir",
                              str(tmp_path / "elsewhere"), "--name", "link", "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert run.is_complete() and not run.stale_temporaries()
    assert {k: run.read_config()[k] for k in ("name", "out_dir")} == {k: stored[k] for k in ("name", "out_dir")}
    tb = events(run.path / "tensorboard")
    steps = [r["step"] for r in run.metrics("step")]
    assert tb["train/loss"] == steps == list(range(1, 21))  # each step once, the metrics' own steps
    for tag, logged in tb.items():
        assert logged == sorted(set(logged)), tag


def test_stale_temporaries_are_removed_on_the_next_start(tmp_path, monkeypatch):
    config = interrupted(tmp_path, monkeypatch)
    run = RunDir(config.run_dir)
    torn = [run.path / ".last.pt.k2j3h4.tmp", run.path / ".status.json.x.tmp"]
    for p in torn:
        p.write_bytes(b"half a file")
    keep = run.path / "notes.tmp"  # not an atomic write's temporary: left alone
    keep.write_text("mine")
    assert sorted(run.stale_temporaries()) == sorted(torn)
    Trainer(config, resume=True).close()
    assert not any(p.exists() for p in torn) and keep.read_text() == "mine"


def test_a_logger_that_cannot_start_leaves_no_run_folder(tmp_path, monkeypatch, capsys):
    from regmix.cli import main
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # an install whose import fails
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({k: v for k, v in tiny_config(tmp_path).to_dict().items()
                                      if k not in ("name", "out_dir")}))
    assert main(["train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"),
                 "--set", "train.loggers=[tensorboard]"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.loggers: 'tensorboard' cannot start" in err, err
    assert not (tmp_path / "runs").exists()
