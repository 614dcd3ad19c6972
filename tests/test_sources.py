"""Model sources: RobustBench's file layout (offline), TorchScript, plain modules, regmix runs."""
import argparse
from pathlib import Path

import pytest
import torch

import regmix
from regmix.commands.flags import add_source_arguments, source_options
from regmix.models.robustbench import ROBUSTBENCH_WRN
from regmix.models.wide_resnet import WideResNet
from regmix.registry import ConfigError
from regmix.sources import ExternalModel, export_torchscript, load_source, source_home
from regmix.threat import ThreatModel, parse_threat

from conftest import tiny_config


class Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("touch EXPLOITED",))


def _reference_wrn(depth=10, widen=1, classes=10):
    torch.manual_seed(0)
    net = WideResNet(depth, widen, classes, 3).eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, so a mix-up of BN layers shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net


def _robustbench_names(state, depth):
    """regmix's WideResNet keys written the way RobustBench's WideResNet names them (the file layout
    of its model zoo): block{1,2,3}.layer.I.{bn1,conv1,bn2,conv2,convShortcut}, bn1, fc."""
    n = (depth - 4) // 6
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "blocks":
            index = int(parts[1])
            rest = ".".join(parts[2:]).replace("shortcut", "convShortcut")
            key = f"block{index // n + 1}.layer.{index % n}.{rest}"
        elif parts[0] == "bn":
            key = "bn1." + ".".join(parts[1:])
        elif parts[0] == "linear":
            key = "fc." + ".".join(parts[1:])
        out[key] = value
    return out


@pytest.fixture
def tiny_entry(monkeypatch):
    """A WRN-10-1 declared as a RobustBench cifar10/Linf entry (the real ones are WRN-28-10 and up)."""
    monkeypatch.setitem(ROBUSTBENCH_WRN, ("cifar10", "Linf"), {**ROBUSTBENCH_WRN[("cifar10", "Linf")], "TinyWRN": (10, 1)})
    return "TinyWRN"


@pytest.mark.parametrize("layout", ["state_dict+module", "bare"])
def test_robustbench_file_layout_offline(tmp_path, tiny_entry, layout):
    ref = _reference_wrn()
    weights = _robustbench_names(ref.state_dict(), 10)
    if layout == "state_dict+module":  # DataParallel checkpoints as in Carmon2019Unlabeled's file
        weights = {"state_dict": {f"module.{k}": v for k, v in weights.items()}}
        # RobustBench builds sub_block1 for some entries but never runs it
        weights["state_dict"]["module.sub_block1.layer.0.bn1.weight"] = torch.ones(16)
    folder = tmp_path / "models" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    torch.save(weights, folder / "TinyWRN.pt")

    src = load_source("robustbench:cifar10/Linf/TinyWRN", model_dir=tmp_path / "models")
    assert isinstance(src, ExternalModel)
    assert (src.dataset, src.num_classes, src.kind, src.name) == ("cifar10", 10, "robustbench", "TinyWRN")
    assert src.threat == ThreatModel("linf", 8 / 255)
    assert src.input_range == (0.0, 1.0) and not src.model.training
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(src.model(x), ref(x), atol=1e-5)
    # what run-directory code reads: the dataset and the evaluation threat, from the source's config
    assert src.config.data.name == "cifar10" and src.config.eval_threat().eps == pytest.approx(8 / 255)
    assert src.home == source_home("robustbench:cifar10/Linf/TinyWRN") == Path("runs/external/TinyWRN")


def test_robustbench_l2_entry_and_lowercase_threat(tmp_path, monkeypatch):
    monkeypatch.setitem(ROBUSTBENCH_WRN, ("cifar10", "L2"), {"TinyL2": (10, 1)})
    folder = tmp_path / "cifar10" / "L2"
    folder.mkdir(parents=True)
    torch.save(_robustbench_names(_reference_wrn().state_dict(), 10), folder / "TinyL2.pt")
    src = load_source("robustbench:cifar10/l2/TinyL2", model_dir=tmp_path)
    assert src.threat.norm == "l2" and src.threat.eps == pytest.approx(0.5)


def test_robustbench_refusals(tmp_path, tiny_entry, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="does not download"):
        load_source("robustbench:cifar10/Linf/TinyWRN", model_dir=tmp_path)
    with pytest.raises(ConfigError, match="robustbench:<dataset>/<threat>/<name>"):
        load_source("robustbench:cifar10/Standard")
    with pytest.raises(ConfigError, match="cifar10, cifar100"):
        load_source("robustbench:imagenet/Linf/Standard")
    with pytest.raises(ConfigError, match="Linf or L2"):
        load_source("robustbench:cifar10/corruptions/Standard")
    folder = tmp_path / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    torch.save({}, folder / "Gowal2021Improving.pt")
    with pytest.raises(ConfigError, match="plain-WideResNet entries"):
        load_source("robustbench:cifar10/Linf/Gowal2021Improving", model_dir=tmp_path)
    # a code-carrying pickle in the model directory is refused, and its code never runs
    torch.save({"state_dict": {"x": Exploit()}}, folder / "TinyWRN.pt")
    with pytest.raises(ConfigError, match="refused"):
        load_source("robustbench:cifar10/Linf/TinyWRN", model_dir=tmp_path)
    assert not (tmp_path / "EXPLOITED").exists()
    # weights of another shape: refused with the architecture named
    torch.save(_robustbench_names(_reference_wrn(10, 2).state_dict(), 10), folder / "TinyWRN.pt")
    with pytest.raises(ConfigError, match="do not fit"):
        load_source("robustbench:cifar10/Linf/TinyWRN", model_dir=tmp_path)


def test_a_pickle_given_as_a_model_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"format": 1, "payload": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(ConfigError, match="refused"):
        load_source(tmp_path / "evil.pt")
    assert not (tmp_path / "EXPLOITED").exists()
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "weights.pt")
    with pytest.raises(ConfigError, match="not a regmix checkpoint: weights without their architecture"):
        load_source(tmp_path / "weights.pt")
    with pytest.raises(ConfigError, match="no such run directory or file"):
        load_source(tmp_path / "absent.pt")


def _digits_batch(n=16):
    ds = regmix.create_dataset("digits", "test")
    return torch.stack([ds[i][0] for i in range(n)])


def test_torchscript_export_carries_dataset_and_threat(tmp_path):
    torch.manual_seed(0)
    model = regmix.create_model("small_cnn", 10, 1, width=8, mean=(0.3,), std=(0.38,)).eval()
    path = export_torchscript(model, tmp_path / "digits_cnn.pt", dataset="digits", threat="linf:0.1",
                              example=_digits_batch(2))
    src = load_source(path)
    assert (src.kind, src.dataset, src.num_classes, src.name) == ("torchscript", "digits", 10, "digits_cnn")
    assert src.threat == ThreatModel("linf", 0.1)
    assert isinstance(src.model, torch.jit.ScriptModule)
    x = _digits_batch()
    with torch.no_grad():
        assert torch.allclose(src.model(x), model(x), atol=1e-6)
    # the stated values win over the stored ones
    assert load_source(path, threat="l2:0.5").threat == ThreatModel("l2", 0.5)


def test_foreign_torchscript_needs_the_dataset_and_threat(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    path = tmp_path / "foreign.ts"
    torch.jit.save(torch.jit.script(model), str(path))
    with pytest.raises(ConfigError, match="^dataset: a torchscript model needs"):
        load_source(path)
    with pytest.raises(ConfigError, match="^threat: a torchscript model needs"):
        load_source(path, dataset="digits")
    src = load_source(path, dataset="digits", threat="linf:8/255")
    assert src.threat.eps == pytest.approx(8 / 255) and src.home == source_home(path) == Path("runs/external/foreign")


def test_a_module_passed_in_python():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    src = load_source(model, dataset="mnist5k", threat={"norm": "linf", "eps": 0.3}, name="linear")
    assert src.model is model and not model.training
    assert (src.kind, src.num_classes, src.name, src.location) == ("module", 10, "linear", None)
    assert load_source(src) is src
    with pytest.raises(ConfigError, match="did you mean 'mnist5k'"):
        load_source(model, dataset="mnist", threat="linf:0.3")
    with pytest.raises(ConfigError, match="^threat: expected NORM:EPS"):
        load_source(model, dataset="mnist5k", threat="0.3")
    with pytest.raises(ConfigError, match="^source: expected a run directory"):
        load_source(42)


def test_a_regmix_run_directory_and_checkpoint(tmp_path):
    config = tiny_config(tmp_path, "standard")
    model = regmix.create_model("small_cnn", 10, 1, width=8, mean=(0.3,), std=(0.38,))
    run = tmp_path / "standard"
    run.mkdir()
    torch.save({"format": 1, "config": config.to_dict(), "epoch": 2, "model": model.state_dict(), "ema": None,
                "data": {"num_classes": 10, "in_channels": 1, "mean": (0.3,), "std": (0.38,)}}, run / "best.pt")
    src = load_source(run)
    assert (src.kind, src.dataset, src.name, src.home) == ("run", "digits", "standard", run)
    assert src.threat == config.eval_threat() and src.config.method.name == "standard"
    assert src.info == {"checkpoint": "best", "checkpoint_file": "best.pt", "ema": False, "epoch": 2}
    x = _digits_batch()
    with torch.no_grad():
        assert torch.allclose(src.model(x), model.eval()(x))
    by_file = load_source(run / "best.pt")
    assert by_file.kind == "checkpoint" and by_file.home == run


def test_parse_threat():
    assert parse_threat("LINF:8/255") == ThreatModel("linf", 8 / 255)
    assert parse_threat(ThreatModel("l2", 1.0)) == ThreatModel("l2", 1.0)
    with pytest.raises(ConfigError, match="threat.eps"):
        parse_threat("linf:2")


def test_command_flags_reach_load_source(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    add_source_arguments(parser)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    torch.jit.save(torch.jit.script(model), str(tmp_path / "m.pt"))
    args = parser.parse_args([str(tmp_path / "m.pt"), "--dataset", "digits", "--threat", "l2:0.5"])
    src = load_source(args.path, **source_options(args))
    assert (src.dataset, src.threat) == ("digits", ThreatModel("l2", 0.5))
    assert source_options(parser.parse_args(["x"]))["model_dir"] == "./models"


def test_the_readme_three_commands_on_a_robustbench_checkpoint_offline(tmp_path, tiny_entry, monkeypatch):
    """README "Models regmix did not train": the AutoAttack number, the landscape and the softmax
    figure of a RobustBench checkpoint on disk, with `regmix eval`, `landscape` and `figures`, offline
    (a tiny WRN in RobustBench's file layout; CIFAR-10 files of random pixels in torchvision's format)."""
    import json

    import torchvision

    from regmix.cli import main
    from regmix.diagnostics import load_record
    from test_data import _write_fake_cifar
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    _write_fake_cifar(data, n=16)
    # the fake files cannot match torchvision's checksums of the real ones
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    folder = tmp_path / "models" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(_robustbench_names(_reference_wrn().state_dict(), 10), folder / "TinyWRN.pt")
    source = ["robustbench:cifar10/Linf/TinyWRN", "--model-dir", "models", "--data-dir", str(data), "--device", "cpu"]

    assert main(["eval", *source, "--attacks", "clean,aa:apgd-ce", "--n", "8", "--no-sanity"]) == 0
    home = tmp_path / "runs" / "external" / "TinyWRN"
    record = json.loads(next((home / "eval").glob("*.json")).read_text())
    assert record["threat"]["eps"] == pytest.approx(8 / 255) and "aa:apgd-ce" in record["accuracy"]
    assert main(["landscape", *source, "--grid", "3", "--n", "8", "--attack", "none", "--hessian-iters", "0"]) == 0
    assert load_record(home / "diagnostics" / "landscape_weight.npz")[0]["loss"].shape == (3, 3)
    assert main(["figures", *source, "--grid", "3", "--n", "8", "--examples", "2", "--attack", "none",
                 "--hessian-iters", "0", "--formats", "png", "--out", "figs"]) == 0
    assert (tmp_path / "figs" / "softmax_true_class_hist.png").exists()
