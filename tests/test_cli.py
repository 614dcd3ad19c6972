import json
import subprocess
import sys

import pytest


def regmix_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "regmix", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["demo", "--help"]])
def test_help(args):
    result = regmix_cli(*args)
    assert result.returncode == 0 and "usage: regmix" in result.stdout


@pytest.mark.parametrize("override, field", [
    ("threat.eps=-1", "threat.eps"),
    ("method.options.alpha=-0.5", "method.options.alpha"),
    ("method.name=regmixx", "method"),
    ("train.epochz=2", "train.epochz"),
])
def test_bad_input_is_one_line_a_nonzero_exit_and_no_run_directory(tmp_path, pytestconfig, override, field):
    recipe = pytestconfig.rootpath / "configs" / "demo" / "regmix.yaml"
    result = regmix_cli("train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"), "--set", override)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regmix: error: ") and field in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_debug_shows_the_traceback(tmp_path, pytestconfig):
    recipe = pytestconfig.rootpath / "configs" / "demo" / "regmix.yaml"
    result = regmix_cli("--debug", "train", "--config", str(recipe), "--set", "threat.eps=-1")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_demo_end_to_end_in_miniature(tmp_path):
    out = tmp_path / "demo"
    result = regmix_cli("demo", "--out", str(out), "--epochs", "1", "--methods", "standard,regmix", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "| regmix |" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [r["method"] for r in summary["rows"]] == ["standard", "regmix"]
    assert all(0 <= r["pgd"] <= r["clean"] <= 1 and r["n"] == 1000 for r in summary["rows"])
    for method in ("standard", "regmix"):
        assert {p.name for p in (out / method).iterdir()} >= {"config.yaml", "metrics.jsonl", "best.pt", "last.pt"}
    # a second call reuses the finished runs instead of retraining them
    again = regmix_cli("demo", "--out", str(out), "--epochs", "1", "--methods", "standard", "--no-progress")
    assert again.returncode == 0 and "epoch 1/1" not in again.stdout


def test_demo_rerun_resumes_a_run_that_failed_before_keeping_weights(tmp_path):
    """A demo whose first training crashed left status.json only: the rerun trains it (no --resume asked)."""
    out = tmp_path / "demo"
    (out / "standard").mkdir(parents=True)
    (out / "standard" / "status.json").write_text(json.dumps({"state": "failed"}))
    result = regmix_cli("demo", "--out", str(out), "--epochs", "1", "--methods", "standard", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "standard" / "status.json").read_text())["state"] == "complete"
