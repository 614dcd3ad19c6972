"""Fault injection: a training run walked through kill points and write failures, checking that
nothing is lost and that resuming ends bit for bit where an uninterrupted run ends.

Faults fire at events (a step, the N-th write of a file), never after a sleep (regmix/faults.py).
CI runs the small subset: every method once, in process, interrupted right after a periodic checkpoint
(half the methods with EMA); each kind of kill in a child process on one method; one full-disk
failure. `-m slow` adds every method x EMA x kill point in child processes."""
import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

import regmix.faults as faults_module
from regmix.methods import METHODS
from regmix.rundir import RunDir
from regmix.trainer import Trainer, train

from conftest import tiny_config
from same_run import Killed, assert_same_run, kill_after

# small enough for CI: 10 steps an epoch (batch 128 of 1,257 digits), 2 epochs, 2-step attacks
SMALL = dict(data={"batch_size": 128}, threat={"eps": 0.1, "step": 0.05, "steps": 2},
             eval={"steps": 2, "max_points": 64}, optim={"name": "sgd", "lr": 0.05},
             schedule={"name": "cosine"})


def small_config(root, method, ema, **train_options):
    return tiny_config(root, method, **SMALL, train={"epochs": 2, "ema": ema, "checkpoint_every": 3,
                                                   **train_options})


METHOD_CASES = [(name, i % 2 == 0) for i, name in enumerate(METHODS.names())]


@pytest.mark.parametrize("method, ema", METHOD_CASES, ids=[f"{m}-{'ema' if e else 'noema'}" for m, e in METHOD_CASES])
def test_every_method_resumes_exactly_from_a_periodic_checkpoint(tmp_path, monkeypatch, method, ema):
    """Stopped right after step 12 (a periodic checkpoint, mid-way through epoch 2), then resumed."""
    whole = train(small_config(tmp_path / "whole", method, ema))
    config = small_config(tmp_path / "parts", method, ema)
    monkeypatch.setattr(faults_module, "at_step", kill_after(12))
    with pytest.raises(Killed):
        train(config)
    monkeypatch.undo()
    resumed = Trainer(config, resume=True)
    assert (resumed.start_epoch, resumed.start_batch) == (1, 2)
    resumed.fit()
    assert_same_run(whole, config.run_dir)


# ---------------------------------------------------------------- child processes

def regmix_train(recipe, out_dir, *args, fault=None, limit_bytes=None):
    env = {k: v for k, v in os.environ.items() if k != "REGMIX_FAULT"}
    if fault:
        env["REGMIX_FAULT"] = fault
    prelude = ""
    if limit_bytes:  # a full disk: no file may grow past limit_bytes (EFBIG instead of SIGXFSZ)
        prelude = (f"import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                   f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); ")
    code = (f"{prelude}import sys; from regmix.cli import main; "
            f"sys.exit(main(['train', '--config', {str(recipe)!r}, '--out-dir', {str(out_dir)!r}, *{list(args)!r}]))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def small_recipe(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    config = small_config(root, "pgd_at", ema=True)
    recipe = root / "recipe.yaml"
    data = config.to_dict()
    data.update(name="r", out_dir=str(root / "unused"))
    recipe.write_text(yaml.safe_dump(data))
    p = regmix_train(recipe, root / "whole")
    assert p.returncode == 0, p.stderr
    return recipe, root / "whole" / "r"


KILLS = ["kill@step:3", "kill@step:14", "kill@step:10", "kill@write:last.pt:2", "kill@write:best.pt:1",
         "kill@append:metrics.jsonl:7", "kill@write:status.json:2"]


# one run walked through them all, each resumed from where the previous kill left it (traced for
# 10 steps an epoch and checkpoints every 3: each fault fires before the run can finish)
WALK = ["kill@step:3", "kill@write:last.pt:2", "kill@step:10", "kill@append:metrics.jsonl:5", "kill@step:14",
        "kill@write:status.json:2"]


@pytest.mark.parametrize("fault", KILLS)
def test_sigkill_at_an_event_then_resume_loses_nothing(small_recipe, tmp_path, fault):
    recipe, whole = small_recipe
    p = regmix_train(recipe, tmp_path, fault=fault)
    assert p.returncode == -signal.SIGKILL, p.stderr
    run = RunDir(tmp_path / "r")
    assert run.state() in ("interrupted", "new")  # a "running" left by a dead writer is not believed
    assert not any(f.name.endswith(".pt") and f.stat().st_size == 0 for f in run.path.iterdir())
    p = regmix_train(recipe, tmp_path, "--resume")
    assert p.returncode == 0, p.stderr
    assert_same_run(whole, run.path)


def test_a_full_disk_stops_the_run_then_it_resumes_exactly(small_recipe, tmp_path):
    """The disk fills while the run writes (RLIMIT_FSIZE below the size of last.pt): the run fails with
    one line, the status says failed, and a resume once there is room ends like an uninterrupted run."""
    recipe, whole = small_recipe
    size = (whole / "last.pt").stat().st_size
    p = regmix_train(recipe, tmp_path, limit_bytes=size // 2)
    assert p.returncode == 1 and "writing" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    run = RunDir(tmp_path / "r")
    assert run.state() == "failed" and not [f for f in run.path.iterdir() if f.name.endswith(".tmp")]
    p = regmix_train(recipe, tmp_path, "--resume")
    assert p.returncode == 0, p.stderr
    assert_same_run(whole, run.path)


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS.names())
@pytest.mark.parametrize("ema", [False, True])
def test_every_method_and_kill_point_in_child_processes(tmp_path, method, ema):
    config = small_config(tmp_path, method, ema)
    data = config.to_dict()
    data.update(name="r")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    assert regmix_train(recipe, tmp_path / "whole").returncode == 0
    out = tmp_path / "parts"
    for i, fault in enumerate(WALK):
        p = regmix_train(recipe, out, *(["--resume"] if i else []), fault=fault)
        assert p.returncode == -signal.SIGKILL, f"{fault}: {p.stderr}"
    p = regmix_train(recipe, out, "--resume")
    assert p.returncode == 0, p.stderr
    assert_same_run(tmp_path / "whole" / "r", out / "r")
    assert json.loads((out / "r" / "status.json").read_text())["state"] == "complete"
