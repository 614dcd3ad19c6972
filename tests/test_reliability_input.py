"""Bad input (one line naming the field, exit code 2, nothing written) and a run that fails at its
first step or first write: rows of docs/reliability.md (RI), split from test_reliability.py."""
import subprocess
import sys

import pytest
import torch

import regmix
from regmix.data import DATASETS, ImageTensorDataset
from regmix.registry import ConfigError
from regmix.rundir import RunDir
from regmix.trainer import Trainer, train
from regmix import faults

from conftest import tiny_config
from test_reliability import cli, write_recipe


@pytest.mark.parametrize("override, field", [
    ("threat.eps=-0.3", "threat.eps"), ("threat.eps=5", "threat.eps"), ("threat.step=9", "threat.step"),
    ("method.options.alpha=-1", "method.options.alpha"), ("method.options.beta=-1", "method.options.beta"),
    ("method.options.gamma=-1", "method.options.gamma"), ("data.name=imagenet", "known: cifar10"),
    ("model.name=vit", "known: preact_resnet18"), ("method.name=fgsm", "known: fgsm_rs"),
    ("train.epohcs=3", "did you mean 'epochs'"), ("data.name=cifar10", "cifar10 not found"),
])
def test_bad_input_is_one_line_naming_the_field_and_nothing_is_written(tmp_path, override, field):
    recipe = write_recipe(tmp_path / "recipe.yaml")
    p = cli("train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"), "--set", override,
            "--set", f"data.data_dir={tmp_path / 'nodata'}")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 2
    assert len(err.strip().splitlines()) == 1 and field in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_malformed_yaml_and_unknown_attack_names(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {epochs: 3\n")
    p = cli("train", "--config", str(bad))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "not valid YAML at line" in err


def test_images_in_0_255_are_refused(tmp_path, monkeypatch, mnist_batch):
    x, y = mnist_batch
    model = regmix.create_model("small_cnn", 10, 1, width=4)
    with pytest.raises(ConfigError, match=r"inputs: images must be in \[0,1\]"):
        regmix.create_attack("pgd", model, regmix.ThreatModel())(x * 255, y)

    def raw_digits(split="train", **_):
        ds = regmix.create_dataset("digits", split)
        return ImageTensorDataset(ds.images * 16, ds.labels, name="raw", num_classes=10, mean=(0,), std=(1,), scale=1.0)

    monkeypatch.setitem(DATASETS._entries, "raw_digits", raw_digits)
    with pytest.raises(ConfigError, match="divide by 255"):
        train(tiny_config(tmp_path, "standard", data={"name": "raw_digits"}))


def test_an_empty_dataset_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        ImageTensorDataset(torch.zeros(0, 1, 8, 8), [], name="none", num_classes=10, mean=(0,), std=(1,))


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_val_size_on_a_fixed_split_dataset_names_the_field(tmp_path, name):
    with pytest.raises(ConfigError, match=rf"^data.val_size: {name} has a fixed validation split"):
        tiny_config(tmp_path, "standard", data={"name": name, "val_size": 100})


def test_an_empty_yaml_file_is_refused(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    p = cli("train", "--config", str(empty), "--out-dir", str(tmp_path / "runs"))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "--config:" in err and "is empty" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_a_negative_seed_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"^train.seed: must be an integer in \[0, 2\*\*31 - 1\], got -1"):
        tiny_config(tmp_path, "standard", train={"seed": -1})


def test_a_crash_at_the_first_step_leaves_status_failed_and_the_name_usable(tmp_path, monkeypatch):
    """A RuntimeError raised right after step 1, before any checkpoint (a width of 0, which once did
    this, is now refused by the config check before any folder exists)."""
    def crash(step):
        if step == 1:
            raise RuntimeError("the first step crashed")
    broken = tiny_config(tmp_path, "standard", train={"epochs": 1})
    monkeypatch.setattr(faults, "at_step", crash)
    with pytest.raises(RuntimeError):
        train(broken)
    monkeypatch.undo()
    run = RunDir(broken.run_dir)
    assert run.state() == "failed" and "RuntimeError" in run.status()["error"]
    assert not run.checkpoint("last").exists() and not run.checkpoint("best").exists()
    fixed = tiny_config(tmp_path, "standard", train={"epochs": 1})
    with pytest.raises(ConfigError, match="--resume"):  # still never overwritten silently
        Trainer(fixed)
    run_id = run.run_id()
    train(fixed, resume=True)  # nothing was trained: --resume starts it again, with the corrected config
    assert run.is_complete() and run.run_id() == run_id
    assert run.read_config()["model"]["options"] == {"width": 8}


def test_a_write_failure_leaves_the_status_not_running(tmp_path):
    """A full disk (RLIMIT_FSIZE: a file may not grow past 24 kB, so last.pt cannot be written)."""
    recipe = write_recipe(tmp_path / "recipe.yaml", train={"epochs": 1, "checkpoint_every": 0})
    code = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (24_000, 24_000))
from regmix.cli import main
sys.exit(main(["train", "--config", {str(recipe)!r}, "--out-dir", {str(tmp_path / 'runs')!r}]))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 1 and "writing" in p.stderr and "failed" in p.stderr, p.stderr
    run = RunDir(tmp_path / "runs" / "r")
    assert run.state() in ("failed", "interrupted") and run.state() != "running"
