"""benchmarks/cifar_e2e.py: the CIFAR path end to end (data files -> study -> AutoAttack -> results and
figures -> report -> explorers) with --tiny on the CPU, as the GPU runs it with --device cuda."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cifar_e2e import METHODS, first_error_line, run_child
from regmix.rundir import RunDir
from regmix.study import read_ledger

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    out = tmp_path_factory.mktemp("cifar_e2e") / "run"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cifar_e2e", "--device", "cpu", "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    return out, proc, json.loads((out / "cifar_e2e.json").read_text())


def test_every_stage_ran_ok_or_was_skipped_for_a_stated_reason(e2e):
    out, proc, log = e2e
    stages = {s["name"]: s for s in log["stages"]}
    assert list(stages) == ["data", "train", "results", "report", "explorers", "apgd", "autoattack"]
    for s in log["stages"]:
        assert s["status"] == "ok" or (s["status"] == "skipped" and "not installed" in s["error"]), (s, proc.stdout[-3000:])
    assert proc.returncode == 0 and log["ok"] and log["failed"] == []
    assert all(isinstance(s["seconds"], float) and s["seconds"] >= 0 for s in log["stages"])
    assert (out / "cifar_e2e.log").read_text().count("[ok     ]") == sum(s["status"] == "ok" for s in log["stages"])
    assert stages["data"]["numbers"]["train_images"] == 200


def test_the_study_records_exist_for_every_method(e2e):
    out, _, log = e2e
    study = out / "study"
    ledger = read_ledger(study)
    trained = {s["name"]: s for s in log["stages"]}["train"]["numbers"]
    for method in METHODS:
        run = study / "runs" / f"{method}-seed0"
        assert RunDir(run).is_complete()
        record = Path(ledger["evals_done"][f"{method}-seed0/whole"])
        accuracy = json.loads(record.read_text())["accuracy"]
        assert set(accuracy) >= {"clean", "pgd2", "cw2"} and accuracy == pytest.approx(trained[method]["whole"], abs=1e-4)
        assert {"landscape_weight.npz", "softmax.npz"} <= {p.name for p in (run / "diagnostics").iterdir()}
    assert (study / "report.md").is_file() and (out / "results" / "tables.md").is_file()


def test_the_data_files_are_the_published_layout_read_by_regmix(e2e):
    import regmix
    out, _, _ = e2e
    folder = out / "data" / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == ["batches.meta", *[f"data_batch_{i}" for i in range(1, 6)],
                                                       "test_batch"]
    assert len(regmix.create_dataset("cifar10", "test", out / "data")) == 100
    assert len(regmix.create_dataset("cifar10", "train", out / "data", val_size=40)) == 160


def test_autoattack_and_the_explorers_report_their_numbers(e2e):
    stages = {s["name"]: s for s in e2e[2]["stages"]}
    if stages["apgd"]["status"] == "ok":
        assert 0 <= stages["apgd"]["numbers"]["standard"]["aa:apgd-ce+apgd-t"] <= 1
        assert 0 <= stages["autoattack"]["numbers"]["standard"]["aa"] <= 1
    if stages["explorers"]["status"] == "ok":
        numbers = stages["explorers"]["numbers"]
        assert numbers["distribution"]["runs"] == len(METHODS) and numbers["distribution"]["max_sum_error"] < 1e-5
        assert numbers["landscape"]["grid"] == 3 and numbers["amr"]["finetune_steps"] == 2
    if stages["results"]["status"] == "ok":
        assert "landscapes.png" in stages["results"]["numbers"]["figures"]


def test_a_stage_that_runs_past_its_limit_is_stopped_and_recorded(tmp_path):
    # the child waits on a pipe nobody writes: it can only end by being killed
    code, output = run_child([sys.executable, "-c", "import os; r, w = os.pipe(); print('waiting', flush=True); os.read(r, 1)"],
                             tmp_path / "child.log", 2, tmp_path, None)
    assert code == "timeout" and "waiting" in output


def test_the_error_line_is_the_exception_or_the_error_message():
    traceback = "Traceback (most recent call last):\n  File \"x\", line 1\nRuntimeError: CUDA error: out of memory\n"
    assert first_error_line(traceback, 1) == "exit 1: RuntimeError: CUDA error: out of memory"
    assert first_error_line("plan\nerror: data.data_dir: cifar10 not found\n", 2) == \
        "exit 2: error: data.data_dir: cifar10 not found"
    assert first_error_line("", -9) == "exit -9: no output"


def test_a_non_empty_out_folder_is_refused_before_any_work(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.cifar_e2e", "--device", "cpu", "--tiny", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "is not empty" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
