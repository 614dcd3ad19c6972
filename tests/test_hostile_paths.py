"""Paths read from data (a record, a ledger, a suite, a source) stay inside their folder: `regmix study
--merge` checks a whole copy before it writes anything and names the offending file; a suite's names
never lead out of runs/. Issue 24, class 'paths from data'."""
import json
import os
from pathlib import Path

import pytest

from regmix.checks import inside, plain_name
from regmix.cli import main
from regmix.evaluation.records import load_flags
from regmix.registry import ConfigError
from regmix.rundir import RunDir
from regmix.study import load_suite, merge_evals

ROOT = Path(__file__).resolve().parent.parent


def quiet(*a):
    pass


def finished_run(folder: Path, run_id: str) -> RunDir:
    run = RunDir(folder)
    run.path.mkdir(parents=True)
    run.identity_path.write_text(json.dumps({"run_id": run_id}))
    run.write_status("complete")
    run.checkpoint("best").write_bytes(b"the weights")
    return run


def record(run_id, flags="e.flags.npz"):
    return {"kind": "eval", "version": 2, "method": "standard", "model": "small_cnn", "dataset": "mnist5k",
            "split": "test", "n": 4, "threat": {"eps": 0.3}, "accuracy": {"clean": 50.0}, "run_id": run_id,
            "flags_file": flags}


def study_pair(tmp_path, *, damaged=None):
    """home (two finished runs, no evaluations) and away (its copy, one evaluation per run)."""
    home, away = tmp_path / "home", tmp_path / "away"
    for name, rid in (("a-seed0", "A"), ("b-seed0", "B")):
        finished_run(home / "runs" / name, rid)
        there = finished_run(away / "runs" / name, rid)
        there.eval_dir.mkdir()
        (there.eval_dir / "e.json").write_text(json.dumps(record(rid)))
        (there.eval_dir / "e.flags.npz").write_bytes(b"flags of " + name.encode())
    ledger = {"suite": "mnist5k", "smoke": True,
              "evals_done": {f"{n}/first_seed": str(away / "runs" / n / "eval" / "e.json") for n in ("a-seed0", "b-seed0")}}
    (away / "study.json").write_text(json.dumps(ledger))
    return home, away


def set_ledger(away, key, where):
    ledger = json.loads((away / "study.json").read_text())
    ledger["evals_done"][key] = where
    (away / "study.json").write_text(json.dumps(ledger))


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*")) if ".lock" not in p.name}


SUITE = load_suite("mnist5k", smoke=True)


def test_a_clean_copy_merges(tmp_path):
    home, away = study_pair(tmp_path)
    assert merge_evals(SUITE, home, away, log=quiet) == {"a-seed0/first_seed": "merged", "b-seed0/first_seed": "merged"}
    assert (home / "runs" / "b-seed0" / "eval" / "e.flags.npz").read_bytes() == b"flags of b-seed0"


def hostile_copies(tmp_path, away):
    """(what is wrong, how to make it) - each is refused whole, naming the file or key."""
    outside = tmp_path / "outside.txt"
    ev = away / "runs" / "b-seed0" / "eval"

    def flags(name):
        return lambda: (ev / "e.json").write_text(json.dumps(record("B", name)))

    def link(name, target):
        def make():
            (ev / name).unlink()
            (ev / name).symlink_to(target)
        return make

    def fifo():
        (ev / "e.json").unlink()
        os.mkfifo(ev / "e.json")

    return {
        "flags_file ../best.pt": flags("../../best.pt"),
        "flags_file far outside": flags("../../../../../x.txt"),
        "flags_file absolute": flags(str(outside)),
        "ledger key leading out": lambda: set_ledger(away, "../../victim/first_seed", str(ev / "e.json")),
        "ledger key absolute": lambda: set_ledger(away, f"{tmp_path}/victim/first_seed", str(ev / "e.json")),
        "record a symlink out of the copy": link("e.json", outside),
        "flags a symlink out of the copy": link("e.flags.npz", outside),
        "record not JSON": lambda: (ev / "e.json").write_text("{torn"),
        "record a list": lambda: (ev / "e.json").write_text("[1, 2]"),
        "record nested 100000 deep": lambda: (ev / "e.json").write_text("[" * 100000 + "]" * 100000),
        "record a FIFO": fifo,
        "record not an eval record": lambda: (ev / "e.json").write_text('{"kind": "eval"}'),
        "evals_done not a mapping": lambda: (away / "study.json").write_text(
            json.dumps({"suite": "mnist5k", "smoke": True, "evals_done": ["a"]})),
    }


@pytest.mark.parametrize("case", list(hostile_copies(Path("/x"), Path("/y"))))
def test_a_hostile_copy_is_refused_whole_before_anything_is_written(tmp_path, case, capsys):
    home, away = study_pair(tmp_path)
    victim = finished_run(tmp_path / "victim", "V")
    (tmp_path / "outside.txt").write_text("not the study's")
    hostile_copies(tmp_path, away)[case]()
    before_home, before_outside = snapshot(home), snapshot(tmp_path / "victim")
    code = main(["study", "mnist5k", "--smoke", "--out", str(home), "--merge", str(away)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("regmix: error: --merge:"), err
    # the good record of run a (sorted first) was not merged either: nothing is written
    assert snapshot(home) == before_home and snapshot(tmp_path / "victim") == before_outside
    assert victim.checkpoint("best").read_bytes() == b"the weights"
    assert (tmp_path / "outside.txt").read_text() == "not the study's" and not (tmp_path / "x.txt").exists()


def test_the_refusal_names_the_offending_file(tmp_path):
    home, away = study_pair(tmp_path)
    bad = away / "runs" / "b-seed0" / "eval" / "e.json"
    bad.write_text("{torn")
    with pytest.raises(ConfigError, match=f"merge: record: {bad}"):
        merge_evals(SUITE, home, away, log=quiet)


def test_inside_resolves_and_refuses_what_leads_out(tmp_path):
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    (tmp_path / "root" / "in").symlink_to(tmp_path / "root" / "sub")
    assert inside(tmp_path / "root", "sub/new.json", "f") == (tmp_path / "root" / "sub" / "new.json").resolve()
    assert inside(tmp_path / "root", "in", "f") == (tmp_path / "root" / "sub").resolve()
    for bad in ("../x", "sub/../../x", "/etc/passwd", "out/x", "out", "", None, 3, "a\x00b"):
        with pytest.raises(ConfigError, match="^f: "):
            inside(tmp_path / "root", bad, "f")
    with pytest.raises(ConfigError, match="one plain file name"):
        inside(tmp_path / "root", "sub/x", "f", name_only=True)
    for bad in ("../../x", "a/b", ".", "..", "", 5):
        with pytest.raises(ConfigError, match="^g: "):
            plain_name(bad, "g")


def test_a_record_whose_flags_file_leads_out_is_refused(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "secret.npz").write_bytes(b"x")
    rec = {"_path": str(tmp_path / "eval" / "r.json"), "flags_file": "../secret.npz", "attack_list": []}
    with pytest.raises(ConfigError, match="flags_file"):
        load_flags(rec)


@pytest.mark.parametrize("field,value", [("suite", "../../x"), ("suite", "a/b"), ("sweeps", "../../x"),
                                         ("recipes", "../up")])
def test_a_suite_whose_names_lead_out_of_runs_is_refused(tmp_path, field, value, capsys, monkeypatch):
    text = (ROOT / "configs/study/mnist5k.yaml").read_text().replace(" mnist5k/", f" {ROOT}/configs/study/mnist5k/")
    if field == "suite":
        text = f"suite: {json.dumps(value)}\n" + "\n".join(l for l in text.splitlines() if not l.startswith("suite:"))
    elif field == "sweeps":
        text = text.replace("  gamma: {method: regmix, grid:", f"  {json.dumps(value)}: {{method: regmix, grid:")
    else:
        text = text.replace("  standard: ", f"  {json.dumps(value)}: ", 1)
    (tmp_path / "s.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    smoke = [] if field == "sweeps" else ["--smoke"]  # (the smoke variant has sweeps of its own)
    assert main(["study", str(tmp_path / "s.yaml"), *smoke, "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"s.{field}" in err, err
    assert sorted(os.listdir(tmp_path)) == ["s.yaml"] and not (tmp_path.parent / "x").exists()


def test_the_study_ledger_is_read_inside_the_study(tmp_path):
    """A ledger entry is read at OUT/runs/<run>/eval/<its file name>: one leading elsewhere never is,
    a folder moved elsewhere still finds its records, a key leading out is refused."""
    from regmix.study import read_ledger
    out = tmp_path / "study"
    (out / "runs").mkdir(parents=True)
    entries = {"a-seed0/whole": "/etc/passwd", "b-seed0/whole": str(tmp_path / "old-place/runs/b-seed0/eval/e.json")}
    (out / "study.json").write_text(json.dumps({"suite": "mnist5k", "evals_done": entries}))
    done = read_ledger(out)["evals_done"]
    assert done == {"a-seed0/whole": str((out / "runs/a-seed0/eval/passwd").resolve()),
                    "b-seed0/whole": str((out / "runs/b-seed0/eval/e.json").resolve())}
    for key in ("../../victim/whole", "/abs/whole", "a-seed0/../../x/whole"):
        (out / "study.json").write_text(json.dumps({"suite": "mnist5k", "evals_done": {key: "e.json"}}))
        with pytest.raises(ConfigError, match="^study: .*evals_done key"):
            read_ledger(out)
