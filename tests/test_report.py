"""`regmix report`: a row is a setting (everything but the seed), a run counts once however its path was
spelled, AutoAttack's warnings are shown."""
import os
import subprocess
import sys

import pytest

from regmix.evaluation.records import find_records
from regmix.evaluation.report import build_table, format_table
from regmix.evaluation.run import evaluate_run
from regmix.registry import ConfigError
from regmix.trainer import train

from conftest import tiny_config

QUICK = dict(attacks="clean,pgd3", n=30, sanity=False, log=lambda *_: None, progress=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(tiny_config(tmp_path_factory.mktemp("runs"), "standard", train={"epochs": 1}))


def record(seed, **changes):
    r = {"kind": "eval", "version": 2, "run_id": f"id{seed}", "run_path": f"/runs/r{seed}", "method": "regmix",
         "method_options": {"alpha": 0.5}, "model": "m", "dataset": "d", "split": "test", "n": 100,
         "threat": {"norm": "linf", "eps": 0.1}, "checkpoint": "best", "ema": False,
         "attack_list": ["clean", "pgd20"], "accuracy": {"clean": 0.8 + seed / 100, "pgd20": 0.4},
         "created": f"2026-01-01T00:00:0{seed}"}
    r.update(changes)
    return r


def test_one_run_through_three_path_spellings_counts_once(run, tmp_path, monkeypatch):
    link = tmp_path / "link"
    link.symlink_to(run.resolve(), target_is_directory=True)
    monkeypatch.chdir(run.parent)
    # three evaluation seeds, so three record files: only the path spelling tells the runs apart
    records = [evaluate_run(path, seed=seed, **QUICK)
               for seed, path in enumerate([run.resolve(), run.name, link])]
    assert len({r["run_dir"] for r in records}) == 3  # as typed: three spellings
    assert {r["run_path"] for r in records} == {os.path.realpath(run)}
    assert len({r["_path"] for r in records}) == 3
    found = find_records([run, link])  # the same files reached twice are read once
    assert len(found) == 3
    table = build_table(found)
    assert len(table["rows"]) == 1 and table["rows"][0]["count"] == 1


def test_a_moved_run_keeps_its_id_and_two_runs_are_two_seeds():
    moved = [record(1), record(1, run_path="/elsewhere/r1", created="2026-01-02T00:00:00")]
    assert build_table(moved)["rows"][0]["count"] == 1
    no_id = [record(1, run_id=None), record(1, run_id=None, created="2026-01-02T00:00:00")]
    assert build_table(no_id)["rows"][0]["count"] == 1  # fallback: the resolved path
    row = build_table([record(1), record(2)])["rows"][0]
    assert row["count"] == 2 and row["clean"][0] == pytest.approx(81.5)


def test_two_eps_or_two_checkpoints_are_two_rows_not_two_seeds(run):
    records = [evaluate_run(run, **QUICK), evaluate_run(run, eps=0.05, **QUICK),
               evaluate_run(run, which="last", **QUICK)]
    table = build_table(records)
    assert len(table["rows"]) == 3 and all(r["count"] == 1 for r in table["rows"])
    assert set(table["keys"]) == {"threat", "checkpoint"}  # the columns say which
    assert {r["threat"] for r in table["rows"]} == {"linf 0.1", "linf 0.05"}
    text = format_table(table, "md")
    header = text.splitlines()[0]
    assert "threat" in header and "checkpoint" in header
    assert "all rows:" in text and "attacks: clean,pgd3" in text  # what the rows share
    # synthetic: options, attack set, n and EMA each make their own row too
    variants = [record(1), record(2, method_options={"alpha": 0.3}), record(3, attack_list=["clean", "aa"]),
                record(4, n=500), record(5, ema=True)]
    assert len(build_table(variants)["rows"]) == 5


def test_records_hold_the_resolved_method_options(run):
    from regmix.methods import resolved_options
    r = evaluate_run(run, **QUICK)
    assert r["method_options"] == resolved_options("standard", {}) and r["method_options"]
    grouped = build_table([r], group_by="method_options.true_class_target")
    assert grouped["rows"][0]["group"] == str(r["method_options"]["true_class_target"])


def test_autoattack_warnings_are_shown():
    warned = record(1, autoattack_warnings=["it seems that the output is a probability distribution"])
    table = build_table([warned, record(2)])
    assert table["rows"][0]["warnings"] == warned["autoattack_warnings"]
    for fmt in ("md", "latex", "csv"):
        assert "probability distribution" in format_table(table, fmt), fmt


def test_bad_report_arguments_name_the_argument_and_the_command_names_the_flag(run):
    with pytest.raises(ConfigError, match="^group_by: "):
        build_table([record(1)], "nonexistent")
    with pytest.raises(ConfigError, match="^fmt: "):
        format_table(build_table([record(1)]), "html")
    evaluate_run(run, **QUICK)
    bad = subprocess.run([sys.executable, "-m", "regmix", "report", str(run), "--group-by", "nonexistent"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("regmix: error: --group-by: ")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_folder_of_runs_leaves_out_runs_moved_aside(run, tmp_path):
    """RUN.old-<time> (what --overwrite leaves) is not one more seed of a folder's results."""
    import shutil
    evaluate_run(run, **QUICK)
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copytree(run, folder / "r")
    shutil.copytree(run, folder / "r.old-20260101-000000")
    found = find_records([folder])
    assert found and all(".old-" not in r["_path"] for r in found)
    assert find_records([folder / "r.old-20260101-000000"])  # named directly, it is read
