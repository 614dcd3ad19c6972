import json
import os

import pytest

from conftest import tiny_config
from regmix.cli import main
from regmix.config import save_config
from regmix.registry import ConfigError
from regmix.sweep import LOCK_NAME, collect, sweep_lock, parse_grid, parse_seeds, plan, run_results, sweep


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "regmix.yaml"
    save_config(tiny_config(tmp_path, "regmix", train={"epochs": 1}, eval={"steps": 2, "max_points": 64}), path)
    return path


def test_grid_and_seed_parsing():
    grid = parse_grid(["alpha=0.5,1", "optim.lr=1e-3", "eps_label=8/255"])
    assert grid == {"method.options.alpha": [0.5, 1], "optim.lr": [0.001], "method.options.eps_label": ["8/255"]}
    for bad, message in [("alpha", "key=v1,v2"), ("bogus.lr=1", "not a config key"), ("alpha=", "no values")]:
        with pytest.raises(ConfigError, match=message):
            parse_grid([bad])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["alpha=1", "method.options.alpha=2"])
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds("0,x")


def test_plan_names_every_combination_uniquely():
    runs = plan(parse_grid(["alpha=0.5,1", "beta=0,2"]), [0, 1])
    names = [r.name for r in runs]
    assert len(names) == 8 == len(set(names))
    assert "alpha0.5_beta2_seed1" in names
    clash = plan({"method.options.lr": [1], "optim.lr": [0.1]}, [0])
    assert clash[0].name == "method-options-lr1_optim-lr0.1_seed0"


def test_sweep_trains_skips_complete_and_resumes_interrupted(recipe, tmp_path, capsys):
    out = tmp_path / "sweep"
    grid = parse_grid(["alpha=0.5,2"])
    rows = sweep(recipe, grid, [0], out_dir=out, log=lambda *_: None)
    assert [r["outcome"] for r in rows] == ["trained", "trained"]
    assert json.loads((out / "sweep.json").read_text())["runs"][1]["values"] == {"method.options.alpha": 2}
    for row in rows:
        config = json.loads(json.dumps(run_results(row["run_dir"])["config"]))
        assert config["method"]["options"]["alpha"] == row["values"]["method.options.alpha"]
        assert config["train"]["seed"] == 0
    assert (out / LOCK_NAME).read_text() == ""  # the sweep let go of its folder
    # an interruption: status not complete, last.pt present
    status = out / "alpha2_seed0" / "status.json"
    status.write_text(json.dumps({"state": "running"}))
    rows = sweep(recipe, grid, [0], out_dir=out, log=lambda *_: None, outer_progress=True)
    assert [r["outcome"] for r in rows] == ["skipped", "resumed"]
    assert "sweep sweep" in capsys.readouterr().err  # the bar over the runs left to do (forced on here)
    assert json.loads(status.read_text())["state"] == "complete"
    table = collect(out)
    assert sorted(r["method.options.alpha"] for r in table) == [0.5, 2]
    from regmix.methods.prior_guided import RegMix
    assert all(r["method.options.beta"] == RegMix.defaults["beta"] for r in table)  # the method default
    assert all(r["source"] == "validation" and 0 <= r["accuracy"]["pgd"] <= 1 for r in table)


def test_eval_records_are_preferred_over_validation(recipe, tmp_path):
    out = tmp_path / "sweep"
    rows = sweep(recipe, parse_grid(["beta=1"]), [3], out_dir=out, log=lambda *_: None)
    run_dir = rows[0]["run_dir"]
    os.makedirs(f"{run_dir}/eval")
    record = {"kind": "eval", "version": 1, "checkpoint": "best", "n": 100, "accuracy": {"clean": 0.9, "pgd20": 0.4},
              "method": "regmix", "model": "small_cnn", "dataset": "digits", "split": "test",
              "threat": {"norm": "linf", "eps": 0.1}}
    with open(f"{run_dir}/eval/best.json", "w") as f:
        json.dump(record, f)
    with open(f"{run_dir}/eval/zz-not-a-record.json", "w") as f:  # read through load_record: skipped
        json.dump({"kind": "eval", "accuracy": {"clean": 1.0}}, f)
    res = run_results(run_dir)
    assert res["source"] == "eval" and res["accuracy"] == {"clean": 0.9, "pgd20": 0.4}


def test_a_second_sweep_on_the_same_folder_is_refused_and_stale_locks_are_taken(tmp_path):
    out = tmp_path / "s"
    with sweep_lock(out):
        with pytest.raises(ConfigError, match=rf"--out-dir: .* another sweep \(pid {os.getpid()} on "):
            sweep_lock(out).acquire()
    assert (out / LOCK_NAME).read_text() == ""  # released: the holder's name is cleared
    # what a SIGKILLed sweep leaves: its name in the file, but no flock (the kernel dropped it)
    (out / LOCK_NAME).write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": os.uname().nodename}))
    with sweep_lock(out):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_bad_grid_values_fail_before_any_training(recipe, tmp_path):
    with pytest.raises(ConfigError, match="alpha"):
        sweep(recipe, parse_grid(["alpha=1,-1"]), [0], out_dir=tmp_path / "bad", log=lambda *_: None)
    assert not (tmp_path / "bad" / "alpha1_seed0").exists()


def test_sweep_command_in_parallel_processes(recipe, tmp_path, capsys):
    out = tmp_path / "par"
    code = main(["sweep", str(recipe), "--grid", "alpha=0,1", "--jobs", "2", "--out-dir", str(out)])
    assert code == 0
    assert "2 trained" in capsys.readouterr().out
    assert all(json.loads((out / n / "status.json").read_text())["state"] == "complete"
               for n in ("alpha0_seed0", "alpha1_seed0"))
    assert main(["sweep", str(recipe), "--grid", "alpha", "--out-dir", str(out)]) == 2
