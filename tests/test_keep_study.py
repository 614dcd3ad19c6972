"""docs/results/keep_study.py: a study folder kept without its checkpoints comes back as the same study."""
import importlib.util
import json
from pathlib import Path

import pytest

from regmix.rundir import RunDir
from regmix.study import load_suite, run_study

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("keep_study", ROOT / "docs" / "results" / "keep_study.py")
keep_study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(keep_study)


def test_a_kept_study_restores_finished_runs_only_and_is_not_redone(tmp_path):
    suite = load_suite("mnist5k", smoke=True)
    out, kept, fresh = tmp_path / "study", tmp_path / "kept", tmp_path / "fresh"
    quiet = dict(log=lambda *_: None, progress=False)
    run_study(suite, out, methods=["standard", "fgsm_rs"], **quiet)
    # fgsm_rs-seed0 trained, but one of its evaluations is still to do: it still needs its checkpoint
    ledger = json.loads((out / "study.json").read_text())
    Path(ledger["evals_done"].pop("fgsm_rs-seed0/wide")).unlink()
    (out / "study.json").write_text(json.dumps(ledger))

    assert keep_study.main(["save", str(out), str(kept), "--smoke"]) == 0
    assert sorted(p.name for p in (kept / "runs").iterdir()) == ["standard-seed0"]
    files = {str(p.relative_to(kept / "runs" / "standard-seed0")) for p in (kept / "runs" / "standard-seed0").rglob("*")
             if p.is_file()}
    assert not {RunDir.BEST, RunDir.LAST, ".lock"} & files
    assert {RunDir.STATUS, RunDir.METRICS, RunDir.CONFIG} <= files
    assert sum(f.startswith("eval/") and f.endswith(".json") for f in files) == 3  # its three evaluations' records
    assert "diagnostics/softmax.npz" in files and "diagnostics/landscape_weight.npz" in files
    assert sorted(json.loads((kept / "study.json").read_text())["evals_done"]) == [
        "standard-seed0/first_seed", "standard-seed0/whole", "standard-seed0/wide"]
    # a kept run that gains a record later (a diagnostic the suite added) is kept again with it
    late = out / "runs" / "standard-seed0" / "diagnostics" / "added_later.npz"
    late.write_bytes(b"a record added after the run was first kept")
    assert keep_study.main(["save", str(out), str(kept), "--smoke"]) == 0
    assert (kept / "runs" / "standard-seed0" / "diagnostics" / "added_later.npz").read_bytes() == late.read_bytes()
    late.unlink()

    # on a fresh machine: the kept run and its evaluations are skipped, the rest is done
    assert keep_study.main(["restore", str(kept), str(fresh), "--smoke"]) == 0
    outcomes = run_study(suite, fresh, methods=["standard", "fgsm_rs"], **quiet)["outcomes"]
    assert outcomes["standard-seed0"] == "skipped" and outcomes["standard-seed0/whole"] == "skipped"
    assert outcomes["standard-seed0/softmax"] == "skipped"
    assert outcomes["fgsm_rs-seed0"] == "trained" and outcomes["fgsm_rs-seed0/wide"] == "evaluated"
    # its records are the kept ones, unchanged
    record = Path(json.loads((fresh / "study.json").read_text())["evals_done"]["standard-seed0/whole"])
    assert record.parent == fresh / "runs" / "standard-seed0" / "eval"
    assert record.read_bytes() == (out / "runs" / "standard-seed0" / "eval" / record.name).read_bytes()


def test_restore_refuses_a_folder_of_another_study_in_one_line(tmp_path, capsys):
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "study.json").write_text(json.dumps({"suite": "mnist5k", "smoke": True, "evals_done": {}}))
    (kept / "runs").mkdir()
    assert keep_study.main(["restore", str(kept), str(tmp_path / "out")]) == 2  # a real suite's folder
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "smoke" in err and not (tmp_path / "out").exists()
