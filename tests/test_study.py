"""`regmix study`: the smoke path end to end, a stopped study resumed, --dry-run writing nothing."""
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from regmix.cli import main
from regmix.diagnostics.records import load_record
from regmix.registry import ConfigError
from regmix.paper import tables
from regmix.rundir import RunDir
from regmix.runtime import machine
from regmix.study import load_suite, run_study
from regmix.study import runner
from regmix.study.results import copy_records
from regmix.study.suite import sweep_points

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["standard", "fgsm_rs", "pgd_at", "trades", "mart", "pgk", "regmix"]


def test_smoke_study_trains_evaluates_and_reports_every_method(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "mnist5k", "--smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "7 runs" in printed and "21 evaluations" in printed and "ESTIMATE" in printed
    ledger = json.loads((out / "study.json").read_text())
    assert ledger["suite"] == "mnist5k" and ledger["smoke"] is True
    for method in METHODS:
        run = RunDir(out / "runs" / f"{method}-seed0")
        assert run.is_complete(), method
        assert run.read_config()["method"]["name"] == method
        for spec in ("whole", "first_seed"):
            record = json.loads(Path(ledger["evals_done"][f"{method}-seed0/{spec}"]).read_text())
            assert record["method"] == method and record["n"] == (64 if spec == "whole" else 32)
        # the wide evaluation attacks at twice the run's evaluation eps
        run_eps = run.read_config()["threat"]["eps"]
        wide = json.loads(Path(ledger["evals_done"][f"{method}-seed0/wide"]).read_text())
        assert wide["threat"]["eps"] == pytest.approx(2 * run_eps), method
        # every main run gets the suite's diagnostics records (weight landscape with Hessian, softmax)
        _, weight = load_record(run.diagnostic("landscape_weight"))
        assert weight["grid"] == 3 and "eigenvalue" in weight["hessian"]["clean"], method
        assert load_record(run.diagnostic("softmax"))[1]["n"] == 16, method
    report = (out / "report.md").read_text()
    assert all(f"| {m} | 1 | 64 |" in report for m in METHODS)
    assert "## first_seed" in report and "Training wall time" in report and "eps x2" in report
    here = machine("cpu")  # every train time names the machine that measured it
    assert sum(line.endswith(f"| {here} |") for line in report.splitlines()) == len(METHODS)

    # the results folder: every number with its record, the claims, the tables, the figures
    results_dir = tmp_path / "results"
    assert main(["study", "mnist5k", "--smoke", "--out", str(out), "--results", str(results_dir)]) == 0
    results = json.loads((results_dir / "results.json").read_text())
    assert sorted(e["method"] for e in results["runs"]) == sorted(METHODS)
    for entry in results["runs"]:
        for ev in entry["evals"].values():  # each number's record was copied beside it, unchanged
            assert json.loads((results_dir / ev["record"]).read_text())["accuracy"] == ev["accuracy"]
        assert (results_dir / entry["summaries"]["softmax"]["record"]).exists()
    assert [c["id"] for c in results["claims"]][:3] == ["robustness", "robustness_no_smoothing", "wider_eps"]
    assert "| RegMix is more robust than FGSM-PGK and PGD-AT |" in (results_dir / "claims.md").read_text()
    tables = (results_dir / "tables.md").read_text()
    assert "| regmix | 1 |" in tables
    assert all(e["train_machines"] == [here] for e in results["runs"])
    assert f"Train times measured on: `{here}` ({len(METHODS)} runs)." in tables
    # what the masking monitor saw while each run trained, beside the APGD gap
    assert all(e["monitor"]["select_pgd_epoch"] == 1 for e in results["runs"])
    assert "## Masking caught while training" in tables and "| regmix-seed0 | 1 | 1 |" in tables
    assert {"claims.png", "convergence.png", "landscapes.png", "softmax_truth.png"} <= \
        {p.name for p in (results_dir / "figures").iterdir()}

    # started again, it finds everything done and does no work
    result = run_study(load_suite("mnist5k", smoke=True), out, log=lambda *a: None)
    assert set(result["outcomes"].values()) == {"skipped"} and len(result["outcomes"]) == 42


class Stopped(RuntimeError):
    """Raised by stop_after's hook: the study stops between two pieces of work."""


def stop_after(count: int):
    """A runner.after_work that raises Stopped once `count` pieces of work are done, as an interruption would."""
    done = []

    def after_work(key, outcome):
        done.append(key)
        if len(done) >= count:
            raise Stopped(f"stopped after {done}")
    return after_work


def test_stopped_study_resumes_and_skips_finished_work(tmp_path, monkeypatch):
    suite = load_suite("mnist5k", smoke=True)
    out = tmp_path / "study"
    quiet = lambda *a: None  # noqa: E731
    monkeypatch.setattr(runner, "after_work", stop_after(2))
    with pytest.raises(Stopped, match=r"\['standard-seed0', 'standard-seed0/whole'\]"):  # a training, an evaluation
        run_study(suite, out, methods=["standard"], log=quiet)
    monkeypatch.undo()
    assert RunDir(out / "runs" / "standard-seed0").is_complete()
    done = json.loads((out / "study.json").read_text())["evals_done"]
    assert list(done) == ["standard-seed0/whole"]
    first_record = Path(done["standard-seed0/whole"]).read_text()

    result = run_study(suite, out, methods=["standard"], log=quiet)
    assert result["outcomes"] == {"standard-seed0": "skipped", "standard-seed0/whole": "skipped",
                                  "standard-seed0/first_seed": "evaluated", "standard-seed0/wide": "evaluated",
                                  "standard-seed0/weight": "diagnosed", "standard-seed0/softmax": "diagnosed"}
    assert Path(done["standard-seed0/whole"]).read_text() == first_record  # not evaluated twice
    assert (out / "report.md").exists()


def test_evals_subset_now_and_the_rest_later(tmp_path, capsys):
    suite = load_suite("mnist5k", smoke=True)
    out = tmp_path / "study"
    quiet = lambda *a: None  # noqa: E731
    with pytest.raises(ConfigError, match="evals: 'wholle' is not an evaluation of suite mnist5k.*did you mean 'whole'"):
        run_study(suite, out, methods=["standard"], evals=["wholle"], log=quiet)
    assert not out.exists()  # refused before any work
    first = run_study(suite, out, methods=["standard"], evals=["whole"], log=quiet, progress=True)["outcomes"]
    assert "study mnist5k" in capsys.readouterr().err  # the bar over the runs (forced on: no terminal here)
    assert first["standard-seed0/whole"] == "evaluated" and "standard-seed0/wide" not in first
    rest = run_study(suite, out, methods=["standard"], log=quiet)["outcomes"]
    assert rest["standard-seed0/whole"] == "skipped"
    assert rest["standard-seed0/wide"] == rest["standard-seed0/first_seed"] == "evaluated"


def test_study_killed_in_the_middle_of_a_training_resumes_it(tmp_path):
    """SIGKILL right after optimiser step 5 of 7 (last.pt written at step 4): the next start resumes the run."""
    out = tmp_path / "study"
    env = {**os.environ, "REGMIX_FAULT": "kill@step:5"}
    killed = subprocess.run([sys.executable, "-m", "regmix", "study", "mnist5k", "--smoke", "--methods", "standard",
                             "--out", str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert killed.returncode != 0, killed.stdout + killed.stderr
    run = RunDir(out / "runs" / "standard-seed0")
    assert run.state() == "interrupted" and run.checkpoint("last").exists()

    result = run_study(load_suite("mnist5k", smoke=True), out, methods=["standard"], log=lambda *a: None)
    assert result["outcomes"]["standard-seed0"] == "resumed"
    assert run.is_complete()
    steps = [r["step"] for r in run.metrics("step")]
    assert steps == sorted(set(steps))  # resumed from its checkpoint: no step logged twice


def test_dry_run_prints_the_plan_and_cost_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["study", "cifar10", "--dry-run", "--out", str(out), "--seeds", "0,1,2,3"]) == 0
    printed = capsys.readouterr().out
    assert "28 runs on device auto: 7 methods" in printed and "x 4 seeds" in printed
    assert "expected cost" in printed and "ESTIMATE" in printed
    assert not out.exists()


def test_the_estimate_prices_a_run_from_runs_trained_alike_before_its_methods(tmp_path):
    """A 5-step variant costs more per epoch than its method's main runs: once one of its seeds has epochs,
    the other seeds are priced from those, not from the main runs' (which are the fallback, then the table)."""
    suite, out = load_suite("mnist5k"), tmp_path / "study"
    runs, _ = runner.plan(suite, out, methods=["pgk"], seeds=[0, 1], part="all", sweeps=["pgk_5step"])
    main_runs = [r for r in runs if not r.sweep]
    five_step = [r for r in runs if r.sweep == "pgk_5step"]
    assert len(main_runs) == len(five_step) == 2

    def fake_epochs(run, seconds, count, validation=None):  # epoch records as the trainer writes them, nothing else
        path = runner.run_dir(out, run).metrics_path
        path.parent.mkdir(parents=True, exist_ok=True)
        timed = {} if validation is None else {"validation_time_s": validation}
        path.write_text("".join(json.dumps({"kind": "epoch", "epoch": e, "step": e, "epoch_time_s": seconds, **timed})
                                + "\n" for e in range(count)))

    epochs = 30  # the suite's recipes train 30 epochs
    fake_epochs(main_runs[0], 3.0, epochs)  # pgk seed 0 measured, its seed 1 not yet started
    cost = runner.estimate(suite, out, runs, [], {})
    # seed 1 of the main table and both 5-step seeds are priced at the main run's 3 s per epoch
    assert cost["train_s"] == pytest.approx(3 * epochs * 3.0)
    assert {"its method's epoch times", "measured epoch times"} <= set(cost["sources"])  # (the table: diagnostics)
    fake_epochs(five_step[0], 6.0, 10)  # a 5-step seed stopped after 10 epochs, at twice the cost
    cost = runner.estimate(suite, out, runs, [], {})
    assert cost["train_s"] == pytest.approx(epochs * 3.0 + epochs * 6.0 + (epochs - 10) * 6.0)
    assert "its method's epoch times" not in cost["sources"]
    # an epoch costs its validation and masking monitor too, where the trainer timed them
    fake_epochs(main_runs[0], 3.0, epochs, validation=1.0)
    cost = runner.estimate(suite, out, runs, [], {})
    assert cost["train_s"] == pytest.approx(epochs * 4.0 + epochs * 6.0 + (epochs - 10) * 6.0)
    assert sum(runner.epoch_times(runner.run_dir(out, main_runs[0]))) == pytest.approx(epochs * 3.0)  # train time
    # a plan of the 5-step sweep alone still reads the main runs measured in the folder
    sweep_only, _ = runner.plan(suite, out, part="sweeps", sweeps=["pgk_no_smoothing"])
    cost = runner.estimate(suite, out, sweep_only, [], {})
    assert cost["train_s"] == pytest.approx(len(sweep_only) * epochs * 4.0)
    assert "its method's epoch times" in cost["sources"]  # (and the table: its diagnostics records)


def test_the_estimate_prices_an_evaluation_from_its_measured_wall_times(tmp_path):
    """A width-32 model's APGD costs more than the table's guess: once one of its seeds' evaluation has a
    record, its other seeds are priced from that record's wall time; runs of the method trained otherwise
    come next, the table last. A record without a usable wall time counts as unmeasured."""
    suite, out = load_suite("mnist5k"), tmp_path / "study"
    runs, evals = runner.plan(suite, out, methods=["pgd_at"], seeds=[0, 1, 2], part="all", sweeps=["pgd_at_width32"])
    apgd = [e for e in evals if e.spec.name == "apgd"]
    main_apgd = [e for e in apgd if not e.run.sweep]
    wide_apgd = [e for e in apgd if e.run.sweep]
    assert len(main_apgd) == 3 and len(wide_apgd) == 3
    ledger = {"evals_done": {}}

    def finish(task, wall):  # a record in its place, as evaluate_run writes it (only what the estimate reads)
        path = runner.run_dir(out, task.run).path / "eval" / f"{task.spec.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"wall_s": wall}))
        ledger["evals_done"][task.key] = str(path)

    def apgd_cost():  # the APGD evaluations still to do
        return runner.estimate(suite, out, runs, apgd, ledger)["eval_s"] - diagnostics

    diagnostics = runner.estimate(suite, out, runs, [], {})["eval_s"]  # the table's diagnostics, left as they are
    table = suite.cost["eval"]["apgd"]
    assert apgd_cost() == pytest.approx(6 * table)
    finish(main_apgd[0], 100.0)  # one main run measured: every other pgd_at APGD priced at 100 s
    assert apgd_cost() == pytest.approx(5 * 100.0)
    assert "measured evaluation times" in runner.estimate(suite, out, runs, apgd, ledger)["sources"]
    finish(wide_apgd[0], 400.0)  # the wide model measured: its seeds priced at 400 s, the main runs at 100 s
    assert apgd_cost() == pytest.approx(2 * 100.0 + 2 * 400.0)
    finish(wide_apgd[1], float("nan"))  # finished, but its record says nothing usable: done, not a price
    assert apgd_cost() == pytest.approx(2 * 100.0 + 400.0)


def test_a_sweep_with_no_evaluations_trains_only(tmp_path, capsys):
    """evals: [] means none (the monitor sweeps train only), not every evaluation as an absent key does;
    anything but a list is refused naming the field."""
    suite, out = load_suite("mnist5k"), tmp_path / "study"
    runs, evals = runner.plan(suite, out, part="sweeps", sweeps=["regmix_monitor_apgd_t", "pgd_at_width32"])
    assert {r.sweep for r in runs} == {"regmix_monitor_apgd_t", "pgd_at_width32"}
    assert evals and all(t.run.sweep == "pgd_at_width32" for t in evals)
    assert main(["study", "mnist5k", "--dry-run", "--out", str(out), "--part", "sweeps",
                 "--sweeps", "regmix_monitor_apgd_t"]) == 0
    assert "0 evaluations (training only)" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"sweeps.x.evals: must be a list"):
        sweep_points(suite, "x", {"method": "regmix", "variants": {"a": []}, "evals": "whole"}, "sweeps.x")


def test_train_times_of_two_machines_are_not_read_as_one():
    """The main table names the machines its train times come from; a run resumed elsewhere is named."""
    runs = [{"name": "pgk-seed0", "train_machines": ["A, 2 logical CPUs"]},
            {"name": "pgk-seed1", "train_machines": ["not recorded"]},
            {"name": "pgk-seed2", "train_machines": ["A, 2 logical CPUs", "NVIDIA H200"]}]
    line = tables._machines_line(runs)[-1]
    assert line.startswith("Train times measured on: `A, 2 logical CPUs` (2 runs); not recorded (1 run); "
                           "`NVIDIA H200` (1 run). Times of different machines are not comparable")
    assert line.endswith("resumed on another machine: pgk-seed2.")
    assert tables._machines_line([{"name": "old"}]) == []  # results written before the field: no line


def test_bad_arguments_are_one_line_naming_the_flag(tmp_path, capsys):
    assert main(["study", "mnist5", "--dry-run", "--out", str(tmp_path / "a")]) == 2
    assert "did you mean 'mnist5k'" in capsys.readouterr().err
    assert main(["study", "mnist5k", "--dry-run", "--methods", "regmx", "--out", str(tmp_path / "b")]) == 2
    assert "--methods" in capsys.readouterr().err
    assert main(["study", "mnist5k", "--dry-run", "--seeds", "0,x", "--out", str(tmp_path / "c")]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_suite_files_are_validated(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "configs/study/mnist5k.yaml").read_text().replace(" mnist5k/", f" {ROOT}/configs/study/mnist5k/")
    bad.write_text(text.replace("seeds: [0, 1, 2]", "seedz: [0, 1, 2]"))
    with pytest.raises(ConfigError, match="seedz: unknown key"):
        load_suite(str(bad))
    bad.write_text(text.replace('"clean,pgd20,cw20"', '"clean,pgdx"', 1))
    with pytest.raises(ConfigError, match="evals.whole.attacks"):
        load_suite(str(bad))
    bad.write_text(text.replace("eps_scale: 2}", "eps_scale: -2}", 1))
    with pytest.raises(ConfigError, match=r"evals\.wide2\.eps_scale: must be a number > 0"):
        load_suite(str(bad), smoke=True)
    bad.write_text(text.replace("weight: {grid: 3,", "weight: {grid: 3, gird: 3,", 1))
    with pytest.raises(ConfigError, match=r"diagnostics.weight.gird: unknown key \(did you mean 'grid'\?\)"):
        load_suite(str(bad), smoke=True)


@pytest.mark.parametrize("suite", ["mnist5k", "cifar10", "cifar100", "tinyimagenet"])
def test_every_suite_has_the_seven_methods_three_seeds_and_the_protocol(suite):
    s = load_suite(suite)
    assert list(s.recipes) == METHODS and len(s.seeds) >= 3
    by_name = {e.name: e for e in s.evals}
    assert by_name["whole"].n is None and {"pgd20", "cw20"} <= set(by_name["whole"].attacks.split(","))
    assert by_name["apgd"].attacks.endswith("aa:apgd-ce+apgd-t") and (by_name["apgd"].n or 10 ** 9) >= 500
    assert by_name["apgd"].seeds == "all"
    assert by_name["autoattack"].attacks == "clean,aa" and by_name["autoattack"].seeds == "first"


def test_a_study_folder_holds_one_suite_variant(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"suite": "mnist5k", "smoke": True}))
    with pytest.raises(ConfigError, match="holds study 'mnist5k' \\(smoke\\)"):
        run_study(load_suite("mnist5k"), out, dry_run=True, log=lambda *a: None)


def test_sweeps_run_grid_points_and_variants_and_report_them(tmp_path):
    suite = load_suite("mnist5k", smoke=True)
    out = tmp_path / "study"
    result = run_study(suite, out, methods=["regmix"], part="sweeps", log=lambda *a: None)
    names = {"regmix-alpha_beta-alpha0.5-seed0", "regmix-alpha_beta-alpha2.0-seed0", "regmix-ablations-amr_only-seed0",
             "regmix-monitor_apgd-monitor_apgd-seed0"}
    assert {k for k, v in result["outcomes"].items() if v == "trained"} == names
    # a sweep with evals: [] trains only; its run is monitored with the APGD pair
    assert not any(k.startswith("regmix-monitor_apgd-monitor_apgd-seed0/") for k in result["outcomes"])
    assert RunDir(out / "runs" / "regmix-monitor_apgd-monitor_apgd-seed0").read_config()["eval"]["monitor_attack"] == "apgd"
    options = {n: RunDir(out / "runs" / n).read_config()["method"]["options"] for n in names}
    assert options["regmix-alpha_beta-alpha0.5-seed0"]["alpha"] == 0.5
    assert options["regmix-alpha_beta-alpha2.0-seed0"]["alpha"] == 2.0
    assert options["regmix-ablations-amr_only-seed0"]["gamma"] == 0
    # a sweep gets the diagnostics records it lists (the ablation: softmax), and no others
    assert result["outcomes"]["regmix-ablations-amr_only-seed0/softmax"] == "diagnosed"
    assert not any(k.endswith("/weight") for k in result["outcomes"])
    assert not RunDir(out / "runs" / "regmix-alpha_beta-alpha0.5-seed0").diagnostic("softmax").exists()
    # each sweep is also a folder of its runs, which regmix.sweep.collect (the explorers' heatmap) reads
    from regmix.sweep import collect
    rows = collect(out / "sweeps" / "alpha_beta")
    assert sorted(r["method.options.alpha"] for r in rows) == [0.5, 2.0]
    report = (out / "report.md").read_text()
    assert "### alpha_beta: whole" in report and "| alpha0.5 | 1 |" in report and "| alpha2.0 | 1 |" in report
    assert "### ablations: whole" in report and "| amr_only | 1 |" in report
    # the results' tables take a sweep without evaluations (its monitor entry names the APGD pair)
    assert main(["study", "mnist5k", "--smoke", "--out", str(out), "--part", "sweeps", "--methods", "regmix",
                 "--results", str(tmp_path / "results")]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    entry = next(e for e in results["runs"] if e["sweep"] == "monitor_apgd")
    assert entry["evals"] == {} and entry["monitor"]["attack"] == "apgd"


def test_sweep_entries_are_validated(tmp_path):
    text = (ROOT / "configs/study/mnist5k.yaml").read_text().replace(" mnist5k/", f" {ROOT}/configs/study/mnist5k/")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("gamma: {method: regmix, grid:", "gamma: {method: regmx, grid:"))
    with pytest.raises(ConfigError, match="sweeps.gamma.method"):
        load_suite(str(bad))
    bad.write_text(text.replace("seeds: [0], evals: [whole]}", "seeds: [0], evals: [wole]}", 1))
    with pytest.raises(ConfigError, match="did you mean 'whole'"):
        load_suite(str(bad))


def test_evaluations_made_elsewhere_are_merged_only_into_the_same_runs(tmp_path, capsys):
    """A finished study copied elsewhere without last.pt, evaluated there (--eval-device), merged back:
    the records land in the runs here and the study skips them; a run of the same name trained anew
    (another run id) is refused, and nothing of it is copied."""
    import shutil
    suite = load_suite("mnist5k", smoke=True)
    home, away = tmp_path / "home", tmp_path / "away"
    quiet = lambda *a: None  # noqa: E731
    run_study(suite, home, methods=["standard"], evals=["whole"], log=quiet)
    shutil.copytree(home, away, ignore=shutil.ignore_patterns("last.pt", ".lock"))
    # fgsm_rs was never trained in this folder: with train=False it is left alone, not trained
    result = run_study(suite, away, methods=["standard", "fgsm_rs"], evals=["first_seed"], eval_device="cpu",
                       train=False, log=quiet)
    assert result["outcomes"]["fgsm_rs-seed0"] == "untrained" and "fgsm_rs-seed0/first_seed" not in result["outcomes"]
    assert not (away / "runs" / "fgsm_rs-seed0").exists()
    assert result["outcomes"]["standard-seed0"] == "skipped"  # complete without last.pt: not trained again
    assert result["outcomes"]["standard-seed0/first_seed"] == "evaluated"

    assert main(["study", "mnist5k", "--smoke", "--out", str(home), "--merge", str(away)]) == 0
    assert "merged 1 evaluations, 1 already here, 0 refused" in capsys.readouterr().out
    record = Path(json.loads((home / "study.json").read_text())["evals_done"]["standard-seed0/first_seed"])
    assert record.parent == home / "runs" / "standard-seed0" / "eval"
    assert (record.parent / json.loads(record.read_text())["flags_file"]).exists()
    again = run_study(suite, home, methods=["standard"], evals=["first_seed"], log=quiet)["outcomes"]
    assert again["standard-seed0/first_seed"] == "skipped"

    other = tmp_path / "other"  # same suite and run name, another training: another run id
    run_study(suite, other, methods=["standard"], evals=["whole"], log=quiet)
    assert main(["study", "mnist5k", "--smoke", "--out", str(other), "--merge", str(away)]) == 2
    assert "--merge: 1 records are not of the same finished runs here" in capsys.readouterr().err
    assert "standard-seed0/first_seed" not in json.loads((other / "study.json").read_text())["evals_done"]
    assert len(list((other / "runs" / "standard-seed0" / "eval").glob("*.json"))) == 1

    assert main(["study", "mnist5k", "--smoke", "--out", str(tmp_path / "x"), "--eval-device", "gpu0",
                 "--methods", "standard"]) == 2
    assert "--eval-device:" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["mnist5k", "cifar10", "cifar100", "tinyimagenet"])
def test_every_shipped_suite_loads_whole_and_as_its_smoke_variant(name):
    whole, smoke = load_suite(name), load_suite(name, smoke=True)
    assert smoke.smoke and len(smoke.seeds) <= len(whole.seeds)
    for entry in smoke.sweeps.values():  # a smoke's sweeps evaluate with the smoke's evaluations
        assert set(entry.get("evals", [])) <= {e.name for e in smoke.evals}


def test_the_study_engine_never_imports_the_paper():
    """regmix.study is generic: the RegMix paper's claims and rules (regmix.paper) sit above it and use it,
    never the reverse (the `regmix study` command joins them)."""
    found = []
    for path in sorted((ROOT / "regmix" / "study").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            found += [f"{path.name}:{node.lineno}" for name in names if "paper" in name.split(".")]
    assert found == []


def test_copied_records_cite_their_source_under_the_study_folder_as_named_not_the_machines_absolute_path(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = Path("study/runs/pgk-seed0/eval/best-test-n10-abc.json")
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"accuracy": {"clean": 0.5}}))
    # the ledger resolves its records (ledger_record), so collect hands copy_records absolute paths
    results = {"study_folder": "study", "runs": [{"name": "pgk-seed0", "summaries": {},
                                                  "evals": {"whole": {"record": str(record.resolve())}}}]}
    copy_records(results, "results")
    ev = results["runs"][0]["evals"]["whole"]
    assert ev["source"] == str(record) and ev["record"] == "records/pgk-seed0/eval-whole.json"
    assert json.loads((tmp_path / "results" / ev["record"]).read_text()) == {"accuracy": {"clean": 0.5}}
