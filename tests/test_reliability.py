"""Faults and hostile input: every row of docs/reliability.md has a test here (or names where it is)."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import yaml

import regmix
from regmix.checkpoint import load_checkpoint
from regmix.files import atomic_save
from regmix.lock import FolderLocked
from regmix.registry import ConfigError
from regmix.rundir import RunDir
from regmix.trainer import Trainer, train
from regmix.training.errors import TrainingDiverged

from regmix.config import load_config

from conftest import tiny_config
from same_run import assert_same_run

RECIPE = {
    "name": "r", "data": {"name": "digits", "batch_size": 32},
    "model": {"name": "small_cnn", "options": {"width": 8}},
    "threat": {"eps": 0.1, "step": 0.1, "steps": 2},
    "method": {"name": "regmix", "options": {"reset_every": 2}},
    "optim": {"name": "sgd", "lr": 0.05}, "schedule": {"name": "cosine"},
    "eval": {"steps": 3, "max_points": 100},
    "train": {"epochs": 4, "ema": True, "progress": False, "checkpoint_every": 7},
}


def write_recipe(path, **changes):
    recipe = json.loads(json.dumps(RECIPE))
    for section, values in changes.items():
        recipe[section].update(values)
    path.write_text(yaml.safe_dump(recipe))
    return path


def cli(*args, fault=None, **kw):
    """`regmix ARGS` in a child process; fault: a REGMIX_FAULT value (regmix/faults.py)."""
    env = {k: v for k, v in os.environ.items() if k != "REGMIX_FAULT"}
    if fault:
        env["REGMIX_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-m", "regmix", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run that every interrupted one must end equal to."""
    root = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(root / "recipe.yaml")
    p = cli("train", "--config", str(recipe), "--out-dir", str(root / "runs"))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    return recipe, root / "runs" / "r"


def steps_per_epoch(run_dir):
    return next(json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()
                if '"epoch"' in ln and json.loads(ln)["kind"] == "epoch")["step"]


def test_sigkill_at_chosen_steps_and_writes_then_resume_ends_like_an_uninterrupted_run(reference, tmp_path):
    """SIGKILL at events, never after a sleep: at a periodic checkpoint (step 7, checkpoint_every 7),
    mid-epoch between checkpoints, on the last step of an epoch (before its validation), half-way
    through writing last.pt, half-way through a metrics record, and in the last epoch."""
    recipe, expected = reference
    spe = steps_per_epoch(expected)
    faults = ["kill@step:7", "kill@step:19", f"kill@step:{spe}", "kill@write:last.pt:2",
              "kill@append:metrics.jsonl:9", f"kill@step:{3 * spe + 2}"]
    out_dir = tmp_path / "runs"
    for i, fault in enumerate(faults):
        p = cli("train", "--config", str(recipe), "--out-dir", str(out_dir), *(["--resume"] if i else []),
                fault=fault)
        _, err = p.communicate(timeout=600)
        assert p.returncode == -signal.SIGKILL, f"{fault}: exit {p.returncode}: {err}"
    p = cli("train", "--config", str(recipe), "--out-dir", str(out_dir), "--resume")
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    assert_same_run(expected, out_dir / "r")


def test_killed_while_writing_a_checkpoint(reference, tmp_path):
    """The process dies half-way through writing last.pt: the previous one is intact and resuming works."""
    recipe, expected = reference
    out_dir = tmp_path / "runs"
    script = f"""
import os, signal, torch, regmix.files as ck
from regmix.config import load_config
from regmix.trainer import train
real_save, calls = torch.save, [0]
def dying_save(obj, f, *a, **k):
    calls[0] += 1
    if calls[0] == 4:
        f.write(b"half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *a, **k)
ck.torch.save = dying_save
train(load_config({str(recipe)!r}, ["out_dir={out_dir}"]))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert p.returncode == -signal.SIGKILL
    leftovers = [f.name for f in (out_dir / "r").iterdir() if f.name.endswith(".tmp")]
    load_checkpoint(out_dir / "r" / "last.pt")  # still a whole, loadable checkpoint
    r = cli("train", "--config", str(recipe), "--out-dir", str(out_dir), "--resume")
    _, err = r.communicate(timeout=600)
    assert r.returncode == 0, err
    assert_same_run(expected, out_dir / "r")
    assert leftovers  # the torn temporary file was there, never renamed over last.pt


def test_sigterm_stops_cleanly_with_a_checkpoint_and_resumes_exactly(reference, tmp_path):
    recipe, expected = reference
    out_dir = tmp_path / "runs"
    go = tmp_path / "go"
    p = cli("train", "--config", str(recipe), "--out-dir", str(out_dir), fault=f"pause@step:10:{go}")
    for _ in range(6000):  # the run reaches step 10 and waits there (bounded: at most 10 minutes)
        if (tmp_path / "go.waiting").exists() or p.poll() is not None:
            break
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    go.touch()
    out, err = p.communicate(timeout=600)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "--resume" in err
    assert json.loads((out_dir / "r" / "status.json").read_text())["state"] == "stopped"
    state = load_checkpoint(out_dir / "r" / "last.pt")
    assert not state["complete"] and state["step"] == 11  # the step under way finished, then it stopped
    r = cli("train", "--config", str(recipe), "--out-dir", str(out_dir), "--resume")
    _, err = r.communicate(timeout=600)
    assert r.returncode == 0, err
    assert_same_run(expected, out_dir / "r")


def test_nan_loss_stops_with_the_step_and_terms_named_and_keeps_the_checkpoint(tmp_path):
    # a temperature of 1e-40 underflows to 0 in float32: the KL terms become NaN on the first step
    recipe = write_recipe(tmp_path / "recipe.yaml", method={"options": {"temperature": 1.0e-40}},
                          train={"checkpoint_every": 0})
    p = cli("train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"))
    out, err = p.communicate(timeout=600)
    assert p.returncode == 1
    line = err.strip().splitlines()[-1]
    assert "loss is nan" in line and "step" in line and "amr_final_init=" in line and "Traceback" not in err
    assert not (tmp_path / "runs" / "r" / "last.pt").exists() or load_checkpoint(tmp_path / "runs" / "r" / "last.pt")


def test_nonfinite_steps_can_be_skipped_and_counted(tmp_path):
    config = tiny_config(tmp_path, "standard", train={"epochs": 1, "on_nonfinite": "skip"})
    trainer = Trainer(config)
    original, calls = trainer.method.loss, [0]

    def sometimes_nan(*args, **kwargs):
        calls[0] += 1
        loss, terms = original(*args, **kwargs)
        return (loss * float("nan"), terms) if calls[0] in (3, 5) else (loss, terms)

    trainer.method.loss = sometimes_nan
    trainer.fit()
    epoch = [json.loads(ln) for ln in (config.run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert epoch["kind"] == "epoch" and epoch["skipped_steps"] == 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_in_process_divergence_raises(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "pgk", train={"epochs": 1}))
    original = trainer.method.loss
    trainer.method.loss = lambda *a, **k: (lambda out: (out[0] * float("inf"), out[1]))(original(*a, **k))
    with pytest.raises(TrainingDiverged, match=r"loss is (inf|nan) at epoch 1, step 1 \(ce="):
        trainer.fit()


def test_a_full_disk_leaves_the_previous_checkpoint_intact(tmp_path):
    """A real write failure: the file-size limit (RLIMIT_FSIZE) stops the write like a full disk does."""
    path = tmp_path / "last.pt"
    atomic_save({"format": 1, "weights": torch.ones(10)}, path)
    script = f"""
import resource, signal, torch
from regmix.files import atomic_save
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    atomic_save({{"format": 1, "weights": torch.zeros(100000)}}, {str(path)!r})
except OSError as err:
    print("failed:", err, "| cause:", repr(err.__cause__))
"""
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "failed: writing" in p.stdout and "is intact" in p.stdout, p.stderr
    assert torch.equal(load_checkpoint(path)["weights"], torch.ones(10))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["last.pt"]


def test_a_run_directory_holding_another_config_is_refused(reference, tmp_path):
    recipe, expected = reference
    p = cli("train", "--config", str(recipe), "--out-dir", str(expected.parent), "--set", "train.seed=9", "--resume")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "different config" in err and "train.seed" in err


def test_resuming_with_another_process_count_is_refused(reference):
    _, expected = reference
    state = load_checkpoint(expected / "last.pt")
    assert state["world_size"] == 1


def test_a_long_evaluation_keeps_memory_flat(trained_mnist_model):
    from regmix.attacks.flags import attack_flags

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    ds = regmix.create_dataset("mnist5k", "test")
    x = torch.stack([ds[i][0] for i in range(1000)])
    y = torch.stack([ds[i][1] for i in range(1000)])
    attack = regmix.create_attack("pgd", trained_mnist_model, regmix.ThreatModel("linf", 0.1, steps=2))
    everything = torch.ones(len(y), dtype=torch.bool)
    attack_flags(trained_mnist_model, attack, x, y, everything, batch_size=50)  # warm-up: allocator pools
    before = rss_mb()
    for _ in range(3):
        attack_flags(trained_mnist_model, attack, x, y, everything, batch_size=50)
    assert rss_mb() - before < 50


# ---------------------------------------------------------------- one writer, never overwritten

def run_files(run_dir):
    """name -> bytes of every file of a run directory (the lock file aside)."""
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete tiny run (one epoch), whose files the partial-state tests copy."""
    root = tmp_path_factory.mktemp("finished")
    return train(tiny_config(root, "standard", train={"epochs": 1}))


PARTIAL = {
    "finished, no last.pt": ["config.yaml", "run.json", "status.json", "metrics.jsonl", "best.pt"],
    "no best.pt": ["config.yaml", "run.json", "status.json", "metrics.jsonl", "last.pt"],
    "metrics only": ["metrics.jsonl"],
    "status only": ["status.json"],
    "config only": ["config.yaml"],
    "last.pt only": ["last.pt"],
}


@pytest.mark.parametrize("state", sorted(PARTIAL))
def test_a_folder_holding_any_part_of_a_run_is_never_overwritten(finished, tmp_path, state):
    config = tiny_config(tmp_path, "standard", train={"epochs": 1})
    config.run_dir.mkdir(parents=True)
    for name in PARTIAL[state]:
        (config.run_dir / name).write_bytes((finished / name).read_bytes())
    before = run_files(config.run_dir)
    with pytest.raises(ConfigError, match=r"already holds a run .*--resume.*--overwrite"):
        Trainer(config)
    assert run_files(config.run_dir) == before


def test_resume_without_last_pt_is_refused_when_something_was_trained(finished, tmp_path):
    config = tiny_config(tmp_path, "standard", train={"epochs": 1})
    config.run_dir.mkdir(parents=True)
    for name in PARTIAL["finished, no last.pt"]:
        (config.run_dir / name).write_bytes((finished / name).read_bytes())
    before = run_files(config.run_dir)
    with pytest.raises(ConfigError, match=r"resume: .* no last.pt to continue from.*--overwrite"):
        Trainer(config, resume=True)
    assert run_files(config.run_dir) == before


def test_overwrite_moves_the_old_run_aside(finished, tmp_path):
    config = tiny_config(tmp_path, "standard", train={"epochs": 1, "seed": 3})
    config.run_dir.mkdir(parents=True)
    for name in PARTIAL["finished, no last.pt"]:
        (config.run_dir / name).write_bytes((finished / name).read_bytes())
    before = run_files(config.run_dir)
    train(config, overwrite=True)
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("standard.old-")]
    assert run_files(aside) == before  # the old run, whole, under its new name
    assert RunDir(config.run_dir).is_complete() and RunDir(config.run_dir).run_id() != RunDir(aside).run_id()
    with pytest.raises(ConfigError, match="cannot be combined"):
        Trainer(config, resume=True, overwrite=True)


def test_an_old_config_without_method_defaults_still_resumes(finished, tmp_path):
    """config.yaml written before it held resolved method options: the comparison is on resolved configs."""
    from regmix.training.claim import claim
    config = tiny_config(tmp_path, "regmix", train={"epochs": 1})
    run = RunDir(config.run_dir)
    run.path.mkdir(parents=True)
    old = config.to_dict()
    old["method"]["options"] = {}
    old["train"].pop("loggers")
    run.config_path.write_text(yaml.safe_dump(old))
    (run.path / "last.pt").write_bytes((finished / "last.pt").read_bytes())
    lock, continues = claim(run, config, resume=True, overwrite=False)
    lock.release()
    assert continues  # the same config once resolved: the run continues from last.pt
    data = config.to_dict()
    data["method"]["options"] = {"alpha": 3}
    changed = load_config(data=data)
    from regmix.methods.prior_guided import RegMix
    there = re.escape(f"method.options.alpha: {RegMix.defaults['alpha']} there, 3 here")
    with pytest.raises(ConfigError, match=r"different config \(" + there):
        claim(run, changed, resume=True, overwrite=False)


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", train={"epochs": 1, "checkpoint_every": 0})
    run = RunDir(tmp_path / "runs" / "r")
    go = tmp_path / "go"
    first = cli("train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"), fault=f"pause@step:2:{go}")
    try:
        for _ in range(6000):  # the first writer holds the run at step 2 (bounded: at most 10 minutes)
            if (tmp_path / "go.waiting").exists() or first.poll() is not None:
                break
            time.sleep(0.1)
        second = cli("train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"), "--resume")
        _, err = second.communicate(timeout=600)
        assert second.returncode == 2 and len(err.strip().splitlines()) == 1, err
        assert f"pid {first.pid} on {socket.gethostname()}" in err and "being written by another run" in err
        with pytest.raises(FolderLocked):
            run.lock().acquire()
        assert run.state() == "running"
    finally:
        go.touch()
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert run.is_complete()
    # a writer killed with SIGKILL leaves its name in the lock file but no lock: the next one takes it
    code = f"from regmix.rundir import RunDir; import os, signal; RunDir({str(run.path)!r}).lock().acquire(); " \
           f"os.kill(os.getpid(), signal.SIGKILL)"
    dead = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert dead.returncode == -signal.SIGKILL
    assert run.lock().holder()["pid"] != os.getpid()  # the dead writer's name is still in the file
    with pytest.raises(FolderLocked):  # while this process holds it, nobody else gets it
        with run.lock():
            run.lock().acquire()
    with run.lock() as lock:
        assert lock.holder()["pid"] == os.getpid()


# ---------------------------------------------------------------- item 6: one line, the field, nothing lost

@pytest.mark.parametrize("content", [b"", "half"])
def test_an_empty_or_truncated_checkpoint_is_one_clear_error(finished, tmp_path, content):
    path = tmp_path / "run" / "best.pt"
    path.parent.mkdir()
    whole = (finished / "best.pt").read_bytes()
    path.write_bytes(whole[: len(whole) // 2] if content == "half" else content)
    for load in (lambda: load_checkpoint(path), lambda: regmix.load_model(path.parent)):
        with pytest.raises(ConfigError, match=r"^checkpoint: .*best.pt (is empty|was refused: .*truncated)") as err:
            load()
        assert len(str(err.value).splitlines()) == 1


def test_resume_from_an_empty_last_pt_is_refused_and_changes_nothing(finished, tmp_path):
    config = tiny_config(tmp_path, "standard", train={"epochs": 1})
    config.run_dir.mkdir(parents=True)
    for name in PARTIAL["no best.pt"]:
        (config.run_dir / name).write_bytes((finished / name).read_bytes())
    (config.run_dir / "last.pt").write_bytes(b"")
    before = run_files(config.run_dir)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(config.to_dict()))
    p = cli("train", "--config", str(recipe), "--resume")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1, err
    assert "resume: checkpoint:" in err and "last.pt is empty" in err
    with pytest.raises(ConfigError, match=r"^resume: checkpoint: .*last.pt is empty .*nothing was changed"):
        Trainer(config, resume=True)
    assert run_files(config.run_dir) == before


