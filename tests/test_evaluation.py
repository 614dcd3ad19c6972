import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import regmix
from regmix.attacks import PGD
from regmix.attacks.specs import parse_attacks
from regmix.attacks.autoattack import AutoAttackRunner
from regmix.attacks.flags import attack_flags, clean_flags
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
    for bad in ("pgd0", "fgsm3", "aa:apgd-x", "foo", "pgd10,pgd10", ""):
        with pytest.raises(ConfigError, match="^attacks: "):
            parse_attacks(bad)


def test_one_vocabulary_for_every_caller():
    """create_attack, regmix eval and the diagnostics read names through the one parser."""
    from regmix.attacks import FGSM, create_attack
    from regmix.attacks.specs import attack_factory, parse_attack
    model = regmix.create_model("small_cnn", 10, 1, width=4)
    threat = regmix.ThreatModel("linf", 0.1, step=0.05, steps=3)
    # a bare name runs the threat as given; a count sets the steps, at step eps/4
    assert create_attack("pgd", model, threat).threat == threat
    assert create_attack("pgd20", model, threat).threat.steps == 20
    assert create_attack("cw7", model, threat).threat.step == pytest.approx(0.025)
    assert create_attack("cw7", model, threat).loss == "cw"
    assert isinstance(create_attack("fgsm", model, threat), FGSM) and create_attack("fgsm_rs", model, threat).random_start
    assert parse_attack("none") == parse_attack("clean") and attack_factory("none", threat) is None
    attack = attack_factory("pgd7", threat)(model)
    assert attack.threat.steps == 7 and attack.threat.step == pytest.approx(0.025)
    assert parse_attack("aa:apgd-ce+apgd-t").aa_attacks == ["apgd-ce", "apgd-t"]
    assert parse_attack("pgd").at(threat).steps == 3  # the sanity checks order attacks by their steps
    with pytest.raises(ConfigError, match="^attack: unknown name 'pgdx'"):
        attack_factory("pgdx", threat)


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
    # the run by identity (resolved path, run id) and its method options with the defaults filled in
    assert loaded["run_path"] == os.path.realpath(tiny_run) and "run_id" in loaded
    from regmix.methods import resolved_options
    assert loaded["method_options"] == resolved_options("pgd_at", {}) and loaded["method_options"]
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
    with pytest.raises(ConfigError, match="^group_by: "):
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


@pytest.mark.parametrize("strong", ["aa", "apgd20", "apgd_t20"])
def test_pgd_far_above_autoattack_or_apgd_is_called_masking(strong):
    """The mnist5k study's RegMix seed 4: PGD-20 17.6 points above APGD-CE + APGD-T on the same points. The
    strongest PGD/CW is compared with the strongest of AutoAttack and APGD; 10 points is the line."""
    from regmix.evaluation.sanity import check_accuracies
    specs = parse_attacks(f"pgd20,cw20,{strong}")
    masked = check_accuracies({"clean": 0.98, "pgd20": 0.80, "cw20": 0.78, strong: 0.62}, specs, 500)
    assert masked == [f"cw20 (0.780) overstates {strong} (0.620) by 16.0 points: gradient masking; "
                      f"report {strong}, not cw20"]
    assert check_accuracies({"clean": 0.98, "pgd20": 0.80, "cw20": 0.78, strong: 0.69}, specs, 500) == []
    assert check_accuracies({"clean": 0.98, strong: 0.10}, parse_attacks(strong), 500) == []  # nothing to compare


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


def test_autoattack_as_an_attack_returns_the_examples_its_flags_count(tiny_run, digits_points):
    """runner(x, y) and runner.run(...) share one compacted loop: a point is fooled by the returned x_adv
    exactly where run() counts it not robust; every x_adv is within eps of x, and x itself where no attack
    fooled the point."""
    model = regmix.load_model(tiny_run)
    x, y = digits_points
    threat = regmix.ThreatModel("linf", 0.1)
    make = lambda: AutoAttackRunner(model, threat, version="custom", attacks=["apgd-ce", "apgd-t"], batch_size=60)
    flags = make().run(x, y, clean_flags(model, x, y))["robust"]
    x_adv = make()(x, y)
    right = clean_flags(model, x_adv, y)
    assert 0 < int(flags.sum()) < int(clean_flags(model, x, y).sum())  # some fooled, some not: the test can fail
    assert torch.equal(right, flags)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert torch.equal(x_adv[flags], x[flags])


def test_the_git_install_of_autoattack_is_supported_too(monkeypatch, tiny_run, digits_points, capsys):
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
            self.logger.log("Warning: it seems to be a stand-in")  # the git package's checks print so
            self.logger.log("initial accuracy: 90%")
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
    result = runner.run(x, y, clean_flags(model, x, y), progress=True)
    assert result["warnings"] == ["it seems to be a stand-in"]
    assert "4/4" in capsys.readouterr().err  # the progress bar: one step per attack
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
    assert bad.returncode == 2 and bad.stderr.startswith("regmix: error: --attacks: unknown name 'bogus'")
    for flags, start in ((["--step", "-1"], "--step: "), (["--restarts", "0"], "--restarts: ")):
        bad = run("eval", str(tiny_run), "--attacks", "clean,pgd5", "--no-sanity", *flags)
        assert bad.returncode == 2 and bad.stderr.startswith(f"regmix: error: {start}"), bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "[eval]" not in bad.stdout


def test_bad_arguments_are_refused_before_the_clean_pass(tiny_run, monkeypatch):
    import regmix.evaluation.run as run_module

    def no_work(*a, **k):
        raise AssertionError("the clean pass ran before the arguments were checked")

    monkeypatch.setattr(run_module, "clean_flags", no_work)
    cases = [("step", dict(step=-1)), ("step", dict(step="1/2")), ("restarts", dict(restarts=0)),
             ("attacks", dict(attacks="pgd5,bogus")), ("attacks", dict(attacks="pgd0")), ("n", dict(n=0)),
             ("n", dict(n=10 ** 6)), ("eps", dict(eps=-0.1)), ("eps", dict(eps="a lot")),
             ("batch_size", dict(batch_size=0)), ("which", dict(which="newest"))]
    for name, kwargs in cases:
        with pytest.raises(ConfigError, match=f"^{name}: "):
            evaluate_run(tiny_run, **{"attacks": "clean,pgd5", "sanity": False, **kwargs})


def test_eval_eps_of_the_config_is_the_evaluated_eps(tiny_run, tmp_path):
    """One threat derivation (Config.eval_threat): a run that set eval.eps is evaluated at it."""
    from regmix.checkpoint import load_checkpoint
    from regmix.files import atomic_save
    state = load_checkpoint(tiny_run / "best.pt")
    state["config"]["eval"]["eps"] = 0.05
    (tmp_path / "run").mkdir()
    atomic_save(state, tmp_path / "run" / "best.pt")
    quiet = dict(attacks="clean,pgd3", n=20, sanity=False, log=lambda *_: None)
    record = evaluate_run(tmp_path / "run", **quiet)
    assert record["threat"]["eps"] == pytest.approx(0.05) and "eps=0.05" in record["attacks"]["pgd3"]
    assert evaluate_run(tmp_path / "run", eps="1/50", **quiet)["threat"]["eps"] == pytest.approx(0.02)
    assert evaluate_run(tiny_run, **quiet)["threat"]["eps"] == pytest.approx(0.1)  # no eval.eps: training eps


def test_progress_bar_counts_the_points_attacked(tiny_run, digits_points, capsys):
    model = regmix.load_model(tiny_run)
    x, y = digits_points
    right = clean_flags(model, x, y)
    attack = PGD(model, regmix.ThreatModel("linf", 0.1, steps=2))
    attack_flags(model, attack, x, y, right, batch_size=50, progress=True, desc="pgd2")
    err = capsys.readouterr().err
    assert "pgd2" in err and f"{int(right.sum())}/{int(right.sum())}" in err
    attack_flags(model, attack, x, y, right, batch_size=50, progress=None)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def test_without_tqdm_a_bar_nobody_asked_for_is_a_silent_counter(monkeypatch):
    import sys
    from regmix.progress import progress_bar, progress_callback
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # a bare image without tqdm: the import fails
    bar = progress_bar(3, "study", None, unit="run")
    bar.set_postfix_str("run a")
    bar.update(2)
    bar.set_postfix(loss=1.0)
    bar.close()
    assert bar.n == 2
    update = progress_callback("grid")
    update(1, 2)
    update(2, 2)
    with pytest.raises(ImportError):  # asked for (progress=True): the missing package says so
        progress_bar(3, "study", True)


class Probabilities(torch.nn.Module):
    """Returns softmax outputs instead of logits: AutoAttack's own check warns about that."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).softmax(1)


def test_autoattack_check_warnings_are_kept(tiny_run, digits_points):
    model = Probabilities(regmix.load_model(tiny_run)).eval()
    x, y = digits_points[0][:16], digits_points[1][:16]
    runner = AutoAttackRunner(model, regmix.ThreatModel("linf", 0.1), version="custom", attacks=["apgd-ce"],
                              batch_size=16)
    runner.aa.apgd.n_iter = 5  # the check runs before the attack: a short attack is enough
    result = runner.run(x, y, clean_flags(model, x, y))
    assert any("probability distribution" in w for w in result["warnings"]), result["warnings"]


@pytest.mark.slow
def test_standard_autoattack_on_a_handful_of_points(tiny_run):
    record = evaluate_run(tiny_run, attacks="clean,pgd20,aa", n=16, sanity=True, log=lambda *_: None)
    assert record["autoattack"]["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert record["accuracy"]["aa"] <= record["accuracy"]["pgd20"] + 1 / 16
