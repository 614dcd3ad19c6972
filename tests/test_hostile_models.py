"""A model is checked against the dataset (number of classes, input shape) before any attack runs on
it, and a model that cannot be built is one line. Issue 24, class 'a model that does not fit'."""
import re

import pytest
import torch
from torch import nn

from regmix.cli import main
from regmix.diagnostics import compute
from regmix.evaluation.run import evaluate_run
from regmix.models import create_model
from regmix.registry import ConfigError
from regmix.sources import export_torchscript, load_source


def digits_model(classes=10, channels=1):
    """A model for 8x8 images of `channels` channels with `classes` outputs."""
    return nn.Sequential(nn.Flatten(), nn.Linear(channels * 64, classes))


CASES = {
    "3 classes on a 10-class dataset": (digits_model(classes=3), "gives (3,) outputs"),
    "100 classes on a 10-class dataset": (digits_model(classes=100), "gives (100,) outputs"),
    "3-channel input on 1-channel images": (digits_model(channels=3), "does not take this dataset's images"),
    "one output per image": (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Flatten(0)), "outputs per image"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_model_that_does_not_fit_the_dataset_is_refused_before_any_attack(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    model, message = CASES[case]
    with pytest.raises(ConfigError, match=f"^source: .*{re.escape(message)}"):
        evaluate_run(model, dataset="digits", threat="linf:0.1", attacks="clean,pgd5", n=16, sanity=False,
                     log=lambda *a: None)
    assert not list(tmp_path.rglob("*.json")) and not list(tmp_path.rglob("*.npz"))  # no record written
    source = load_source(model, dataset="digits", threat="linf:0.1")
    with pytest.raises(ConfigError, match="^source: "):
        compute.weight_landscape_record(source, grid=2, n=8, attack="none", hessian_iters=0, device="cpu",
                                        out=tmp_path / "w.npz")
    assert not (tmp_path / "w.npz").exists()


def test_a_model_that_fits_is_evaluated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = evaluate_run(digits_model(), dataset="digits", threat="linf:0.1", attacks="clean,pgd2", n=8,
                          sanity=False, log=lambda *a: None)
    assert record["n"] == 8 and set(record["accuracy"]) == {"clean", "pgd2"}


def test_a_torchscript_file_claiming_other_classes_is_refused_on_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = export_torchscript(digits_model(classes=3), tmp_path / "m.pt", dataset="digits", threat="linf:0.1",
                              num_classes=3, example=torch.zeros(1, 1, 8, 8))
    assert main(["eval", str(path), "--attacks", "clean,pgd2", "--n", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "num_classes" in err and "digits has 10" in err, err
    assert not (tmp_path / "runs").exists()
    # the same file with no class count stored: the output shape is what is refused
    plain = export_torchscript(digits_model(classes=3), tmp_path / "p.pt", dataset="digits", threat="linf:0.1",
                               example=torch.zeros(1, 1, 8, 8))
    assert main(["eval", str(plain), "--attacks", "clean,pgd2", "--n", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gives (3,) outputs" in err, err
    assert not list(tmp_path.rglob("*.json"))


def test_a_model_that_cannot_be_allocated_is_one_line(monkeypatch):
    """Past the width bound the config refuses it; an allocation that fails anyway (a machine with less
    memory) is one line naming model.options, not an abort."""
    with pytest.raises(ConfigError, match=r"^model.options.width: must be an integer in \[1, 1024\]"):
        create_model("small_cnn", 10, 1, width=10 ** 9)

    def no_memory(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory\nmore")
    monkeypatch.setattr(nn.Linear, "__init__", no_memory)
    with pytest.raises(ConfigError, match=r"^model.options: small_cnn with \{'width': 64\} .* could not be created: "
                                          r"\[enforce fail.*can't allocate memory$"):
        create_model("small_cnn", 10, 1, width=64)
