import json
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import regmix
from regmix.attacks import PGD
from regmix.attacks.specs import parse_attacks
from regmix.evaluation.autoattack import AutoAttackRunner
from regmix.evaluation.flags import attack_flags, clean_flags
from regmix.evaluation.records import find_records, load_record
from regmix.registry import ConfigError
from regmix.evaluation.report import build_table, format_table
from regmix.evaluation.run import evaluate_run
from regmix.evaluation.sanity import probe
from regmix.trainer import train

from conftest import tiny_config


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory of a model adversarially trained for three epochs on the 8x8 digits."""
    return train(tiny_config(tmp_path_factory.mktemp("runs"), "pgd_at", train={"epochs": 3}))


@pytest.fixture(scope="module")
def digits_points():
    ds = regmix.create_dataset("digits", "test")
    return torch.stack([ds[i][0] for i in range(120)]), torch.stack([ds[i][1] for i in range(120)])


def test_attack_names_parse_and_bad_names_are_refused():
    specs = parse_attacks("pgd20,cw50,aa,aa-plus,aa:apgd-ce+square,square,fgsm")
    assert specs[0].name == "clean"  # clean is always measured first
    kinds = {s.name: (s.kind, s.steps, s.aa_version, tuple(s.aa_attacks)) for s in specs}
    assert kinds["pgd20"] == ("pgd", 20, None, ())
    assert kinds["cw50"] == ("cw", 50, None, ())
    assert kinds["aa"][2] == "standard" and kinds["aa-plus"][2] == "plus"
    assert kinds["aa:apgd-ce+square"][3] == ("apgd-ce", "square")
    for bad in ("pgd", "pgd0", "aa:apgd-x", "foo", "pgd10,pgd10", ""):
        with pytest.raises(ConfigError, match="--attacks"):
            parse_attacks(bad)


def test_compacted_attack_gives_the_same_accuracy_as_attacking_every_point(tiny_run, digits_points):
    model = regmix.load_model(tiny_run)
    x, y = digits_points
    # no random start: each point's attack is then a deterministic function of that point alone
    attack = PGD(model, regmix.ThreatModel("linf", 0.1, step=0.025, steps=5), random_start=False)
    right = clean_flags(model, x, y)
    assert 0 < right.sum() < len(y)
    compacted = attack_flags(model, attack, x, y, right, batch_size=17)
    everything = attack_flags(model, attack, x, y, torch.ones_like(right), batch_size=64)
    assert torch.equal(compacted, everything & right)
    assert compacted.float().mean() == (everything & right).float().mean()


def test_record_round_trips_and_the_report_matches_it(tiny_run):
    record = evaluate_run(tiny_run, attacks="clean,fgsm,pgd5,cw5,aa:apgd-ce", n=60, batch_size=32,
                          sanity=False, log=lambda *_: None)
    loaded = load_record(record["_path"])
    assert loaded == record
    assert set(loaded["accuracy"]) == {"clean", "fgsm", "pgd5", "cw5", "aa:apgd-ce", "worst"}
    assert loaded["n"] == 60 and loaded["method"] == "pgd_at" and loaded["dataset"] == "digits"
    assert loaded["threat"] == {"norm": "linf", "eps": pytest.approx(0.1)}
    assert loaded["autoattack"]["package"] in ("pyautoattack", "autoattack")
    assert loaded["autoattack"]["attacks"] == ["apgd-ce"] and loaded["autoattack"]["seed"] == 0
    assert {"torch", "regmix"} <= set(loaded["versions"]) and loaded["wall_s"] > 0
    flags = np.load(tiny_run / "eval" / loaded["flags_file"])
    for name, acc in loaded["accuracy"].items():
        if name != "worst":
            assert flags[name.replace(":", "_")].mean() == pytest.approx(acc)
            assert (flags[name.replace(":", "_")] <= flags["clean"]).all()
    # the report's numbers are the record's
    table = build_table(find_records([tiny_run]))
    row = table["rows"][0]
    for name, acc in loaded["accuracy"].items():
        assert row[name][0] == pytest.approx(100 * acc) and row[name][1] == 0
    text = format_table(table, "md")
    assert f"{100 * loaded['accuracy']['pgd5']:.2f}" in text
    assert "\\begin{tabular}" in format_table(table, "latex")
    assert format_table(table, "csv").splitlines()[1].startswith("pgd_at,1,")


def test_report_averages_over_seeds():
    records = [{"kind": "eval", "version": 1, "run_dir": f"r{s}", "method": "regmix", "model": "m", "dataset": "d",
                "split": "test", "n": 100, "threat": {"eps": 0.1}, "accuracy": {"clean": c, "pgd20": p}}
               for s, (c, p) in enumerate([(0.9, 0.5), (0.8, 0.4), (0.7, 0.6)])]
    row = build_table(records)["rows"][0]
    assert row["count"] == 3
    assert row["clean"][0] == pytest.approx(80.0) and row["clean"][1] == pytest.approx(10.0)
    assert row["pgd20"][0] == pytest.approx(50.0) and row["pgd20"][1] == pytest.approx(10.0)
    with pytest.raises(ConfigError, match="--group-by"):
        build_table(records, "nonexistent")


class Quantized(torch.nn.Module):
    """Rounds the input to 8 bits before the model: the gradient of round() is zero, so every
    gradient-based attack is blind while the model stays just as easy to fool."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(torch.round(x * 255) / 255)


def test_sanity_checks_fire_on_a_model_built_to_mask_gradients(trained_mnist_model, mnist_batch):
    x, y = mnist_batch
    threat = regmix.ThreatModel("linf", 0.15)
    masked = probe(Quantized(trained_mnist_model).eval(), x, y, threat)
    assert any("Square" in w and "masked" in w for w in masked["warnings"]), masked
    # PGD is blind while the model is not robust: the black-box attack finds what PGD cannot
    assert masked["accuracy"]["pgd20_eps_x1"] > masked["accuracy"]["square1000"] + 0.3, masked
    honest = probe(trained_mnist_model, x, y, threat)
    assert not any("Square" in w for w in honest["warnings"]), honest


def test_accuracy_checks_fire_when_numbers_are_out_of_order():
    from regmix.evaluation.sanity import check_accuracies
    specs = parse_attacks("pgd10,pgd50,fgsm,aa")
    ok = check_accuracies({"clean": 0.9, "pgd10": 0.5, "pgd50": 0.48, "fgsm": 0.6, "aa": 0.45}, specs, 1000)
    assert ok == []
    bad = check_accuracies({"clean": 0.9, "pgd10": 0.5, "pgd50": 0.6, "fgsm": 0.3, "aa": 0.7}, specs, 1000)
    assert len(bad) == 3 and any("more steps" in w for w in bad) and any("FGSM" in w for w in bad)


def test_autoattack_resumes_without_redoing_finished_attacks(tiny_run, digits_points, tmp_path):
    model = regmix.load_model(tiny_run)
    x, y = digits_points[0][:40], digits_points[1][:40]
    threat = regmix.ThreatModel("linf", 0.1)
    state = tmp_path / "aa.state.json"
    runner = AutoAttackRunner(model, threat, version="custom", attacks=["apgd-ce", "apgd-dlr"], batch_size=40)
    calls = []
    original = runner._attack
    runner._attack = lambda name, *a: (calls.append(name), original(name, *a))[1]

    def stop_after_first(name, acc):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(x, y, clean_flags(model, x, y), state_path=state, on_attack=stop_after_first)
    assert calls == ["apgd-ce"] and json.loads(state.read_text())["done"] == ["apgd-ce"]
    result = runner.run(x, y, clean_flags(model, x, y), state_path=state)
    assert calls == ["apgd-ce", "apgd-dlr"]
    assert set(result["after"]) == {"apgd-ce", "apgd-dlr"}
    assert result["after"]["apgd-dlr"] <= result["after"]["apgd-ce"]


def test_the_git_install_of_autoattack_is_supported_too(monkeypatch, tiny_run, digits_points):
    """A stand-in with the git API (import autoattack; bs=; returns x_adv only) behind the adapter."""
    seen = {}

    class GitAutoAttack:
        def __init__(self, model, norm="Linf", eps=0.3, seed=None, verbose=True, attacks_to_run=(),
                     version="standard", is_tf_model=False, device="cuda", log_path=None):
            seen.update(norm=norm, eps=eps, version=version, verbose=verbose)
            self.square = types.SimpleNamespace(n_queries=5000)
            self.attacks_to_run = []

        def run_standard_evaluation(self, x, y, bs=250):
            seen["bs"], seen["attacks"] = bs, list(self.attacks_to_run)
            return torch.zeros_like(x)  # a black image: fools the model on most points

    import importlib
    real_import = importlib.import_module

    def fake_import(name, *a, **k):
        if name == "pyautoattack":
            raise ImportError(name)
        if name == "autoattack":
            return types.SimpleNamespace(AutoAttack=GitAutoAttack, __version__="0.1")
        return real_import(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    monkeypatch.setattr(importlib.metadata, "version", lambda name: (_ for _ in ()).throw(importlib.metadata.PackageNotFoundError()))
    model = regmix.load_model(tiny_run)
    x, y = digits_points
    runner = AutoAttackRunner(model, regmix.ThreatModel("linf", 0.1), batch_size=33)
    result = runner.run(x, y, clean_flags(model, x, y))
    assert runner.describe()["package"] == "autoattack" and runner.describe()["package_version"] == "0.1"
    assert seen == {"norm": "Linf", "eps": pytest.approx(0.1), "version": "standard", "verbose": False,
                    "bs": 33, "attacks": ["square"]}
    assert list(result["after"]) == ["apgd-ce", "apgd-t", "fab-t", "square"]


def test_eval_and_report_commands(tiny_run):
    run = lambda *a: subprocess.run([sys.executable, "-m", "regmix", *a], capture_output=True, text=True, timeout=600)
    result = run("eval", str(tiny_run), "--attacks", "clean,pgd5", "--n", "50", "--no-sanity", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "| pgd_at | 1 |" in result.stdout
    report = run("report", str(tiny_run), "--format", "latex")
    assert report.returncode == 0 and "pgd\\_at" in report.stdout
    bad = run("eval", str(tiny_run), "--attacks", "pgd5,bogus")
    assert bad.returncode == 2 and bad.stderr.startswith("regmix: error: --attacks: unknown attack 'bogus'")


@pytest.mark.slow
def test_standard_autoattack_on_a_handful_of_points(tiny_run):
    record = evaluate_run(tiny_run, attacks="clean,pgd20,aa", n=16, sanity=True, log=lambda *_: None)
    assert record["autoattack"]["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert record["accuracy"]["aa"] <= record["accuracy"]["pgd20"] + 1 / 16
