"""`regmix eval` and `regmix landscape` on models regmix did not train (regmix.sources), offline."""
import json

import numpy as np
import pytest
import torch

import regmix
from regmix.cli import main
from regmix.diagnostics import load_record
from regmix.sources import export_torchscript


@pytest.fixture
def digits_model(tmp_path, monkeypatch):
    """A small CNN exported as TorchScript with its dataset and threat inside; records go under the
    working directory (runs/external/<name>), so the test works in tmp_path."""
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = regmix.create_model("small_cnn", 10, 1, width=8, mean=(0.3,), std=(0.38,)).eval()
    ds = regmix.create_dataset("digits", "test")
    example = torch.stack([ds[i][0] for i in range(2)])
    path = export_torchscript(model, tmp_path / "digits_cnn.pt", dataset="digits", threat="linf:0.1", example=example)
    return path, model


def test_eval_of_a_torchscript_model_writes_a_record_beside_it(digits_model, tmp_path, capsys):
    path, model = digits_model
    assert main(["eval", str(path), "--attacks", "clean,pgd3", "--n", "40", "--no-sanity", "--device", "cpu"]) == 0
    records = sorted((tmp_path / "runs" / "external" / "digits_cnn" / "eval").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert (record["source"], record["dataset"], record["n"], record["method"]) == ("torchscript", "digits", 40, "external")
    assert record["threat"]["eps"] == pytest.approx(0.1)
    # the clean accuracy is the model's own, computed here from the original module
    ds = regmix.create_dataset("digits", "test")
    x = torch.stack([ds[i][0] for i in range(40)])
    y = torch.tensor([int(ds[i][1]) for i in range(40)])
    with torch.no_grad():
        expected = (model(x).argmax(1) == y).float().mean().item()
    assert record["accuracy"]["clean"] == pytest.approx(expected)
    assert record["accuracy"]["pgd3"] <= record["accuracy"]["clean"]


def test_eval_of_a_foreign_torchscript_names_the_missing_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    torch.jit.save(torch.jit.script(net), str(tmp_path / "foreign.pt"))
    assert main(["eval", str(tmp_path / "foreign.pt"), "--n", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("regmix: error: --dataset:")
    assert not (tmp_path / "runs").exists()  # nothing written
    assert main(["eval", str(tmp_path / "foreign.pt"), "--dataset", "digits", "--threat", "linf:0.05",
                 "--attacks", "clean,fgsm", "--n", "8", "--no-sanity", "--device", "cpu"]) == 0


def test_landscape_of_a_torchscript_model(digits_model, tmp_path):
    path, _ = digits_model
    assert main(["landscape", str(path), "--grid", "3", "--n", "16", "--attack", "none", "--hessian-iters", "0",
                 "--device", "cpu"]) == 0
    arrays, meta = load_record(tmp_path / "runs" / "external" / "digits_cnn" / "diagnostics" / "landscape_weight.npz")
    assert arrays["loss"].shape == (3, 3) and np.isfinite(arrays["loss"]).all()
    assert (meta["method"], meta["dataset"], meta["run"]) == ("external", "digits", "digits_cnn")


def test_landscape_reads_the_data_from_data_dir(digits_model, tmp_path, monkeypatch):
    """--data-dir reaches the dataset loader (CIFAR / Tiny ImageNet live wherever the user keeps them)."""
    from regmix.diagnostics import compute
    seen = {}
    real = compute.fixed_subset

    def spy(config, split, n, **options):
        seen["data_dir"] = options.get("data_dir")
        return real(config, split, n, **options)
    monkeypatch.setattr(compute, "fixed_subset", spy)
    path, _ = digits_model
    assert main(["landscape", str(path), "--grid", "2", "--n", "8", "--attack", "none", "--hessian-iters", "0",
                 "--device", "cpu", "--data-dir", str(tmp_path / "datasets")]) == 0
    assert seen["data_dir"] == str(tmp_path / "datasets")


def test_figures_of_a_torchscript_model(digits_model, tmp_path):
    """`regmix figures MODEL.pt`: records computed into runs/external/<name> (described by its
    source.json), every figure of a single model drawn from them."""
    path, _ = digits_model
    out = tmp_path / "figs"
    assert main(["figures", str(path), "--grid", "3", "--n", "16", "--examples", "2", "--hessian-iters", "0",
                 "--attack", "none", "--formats", "png", "--device", "cpu", "--out", str(out),
                 "--data-dir", str(tmp_path / "datasets")]) == 0  # digits are embedded: read, never needed
    home = tmp_path / "runs" / "external" / "digits_cnn"
    assert json.loads((home / "source.json").read_text())["kind"] == "torchscript"
    drawn = {p.stem for p in out.glob("*.png")}
    assert {"landscape_weight", "softmax_reliability", "softmax_true_class_hist"} <= drawn
    assert "val_accuracy" not in drawn  # no training curves for a model regmix did not train
