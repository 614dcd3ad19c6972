"""Hostile files where records and configs are read: what is not a regular file is skipped, a record
whose fields are not what the tables read is refused naming the file, `base:` and YAML that would
loop, recurse or expand without end are one line, a diagnostics record needing pickle is refused.
Issue 24, classes 'malformed records', 'non-regular files', 'configs that never end'."""
import json
import os

import numpy as np
import pytest

from regmix.cli import main
from regmix.config import MAX_BASES, load_config
from regmix.diagnostics.records import load_record as load_diagnostic
from regmix.diagnostics.records import save_record
from regmix.evaluation.records import find_records, load_record
from regmix.registry import ConfigError
from regmix.rundir import RunDir


def record(**changes):
    r = {"kind": "eval", "version": 2, "run_id": "id0", "method": "regmix", "model": "m", "dataset": "d",
         "split": "test", "n": 100, "threat": {"norm": "linf", "eps": 0.1}, "checkpoint": "best",
         "attack_list": ["clean", "pgd20"], "accuracy": {"clean": 0.8, "pgd20": 0.4}, "created": "2026-01-01"}
    r.update(changes)
    return r


def one_line_exit_2(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and all(n in err for n in needles), err


def test_report_skips_what_is_not_a_regular_file(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    run.eval_dir.mkdir(parents=True)
    (run.eval_dir / "good.json").write_text(json.dumps(record()))
    os.mkfifo(run.eval_dir / "pipe.json")  # opening it for reading would wait for a writer forever
    (run.eval_dir / "dir.json").mkdir()
    assert [r["_path"] for r in find_records([run.path])] == [str(run.eval_dir / "good.json")]
    assert main(["report", str(tmp_path / "run")]) == 0 and "| regmix |" in capsys.readouterr().out
    one_line_exit_2(capsys, ["report", str(run.eval_dir / "pipe.json")], "not a regular file")
    # a status.json, run.json or metrics.jsonl that is a FIFO reads as missing, never blocks
    for name in (RunDir.STATUS, RunDir.IDENTITY, RunDir.METRICS):
        os.mkfifo(run.path / name)
    assert run.status() is None and run.run_id() is None and run.metrics() == [] and run.state() == "new"


MALFORMED = {
    "accuracy a string": {"accuracy": {"clean": "0.8"}},
    "accuracy NaN": {"accuracy": {"clean": float("nan")}},
    "accuracy infinite": {"accuracy": {"clean": float("inf")}},
    "accuracy a list": {"accuracy": {"clean": [0.8]}},
    "accuracy deeply nested": {"accuracy": {"clean": json.loads("[" * 500 + "]" * 500)}},
    "accuracy not a mapping": {"accuracy": [0.8]},
    "accuracy above 1": {"accuracy": {"clean": 80}},
    "n a string": {"n": "100"},
    "eps a string": {"threat": {"norm": "linf", "eps": "8/255"}},
    "threat a list": {"threat": [0.1]},
    "method a number": {"method": 3},
    "created a number": {"created": 5},
    "attack_list of numbers": {"attack_list": [1, 2]},
    "step NaN": {"step": float("nan")},
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_record_is_refused_naming_the_file(tmp_path, capsys, case):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(record(**MALFORMED[case])))  # (json writes NaN and Infinity, as Python reads them)
    with pytest.raises(ConfigError, match=f"^records: {path} is malformed: "):
        load_record(path)
    (tmp_path / "good.json").write_text(json.dumps(record()))
    one_line_exit_2(capsys, ["report", str(tmp_path)], str(path))


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000, "{torn", "", "[1, 2]"])
def test_unreadable_json_is_one_line(tmp_path, text):
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^records: {path} "):
        load_record(path)


def test_a_diagnostics_record_needing_pickle_is_refused(tmp_path):
    good = save_record(tmp_path / "good.npz", "weight", {"loss": np.zeros(3)}, {"grid": 3})
    assert load_diagnostic(good)[1]["grid"] == 3
    bad = tmp_path / "object.npz"
    np.savez(bad, meta=np.array(json.dumps({"kind": "weight"})), loss=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ConfigError, match=f"^records: {bad} is not a readable diagnostics record .*pickle"):
        load_diagnostic(bad)
    for name, content in (("torn.npz", good.read_bytes()[:50]), ("meta.npz", None)):
        path = tmp_path / name
        if content is None:
            np.savez(path, meta=np.array("[1, 2]"))
        else:
            path.write_bytes(content)
        with pytest.raises(ConfigError, match=f"^records: {path} is not a readable diagnostics record"):
            load_diagnostic(path)
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(ConfigError, match="is not a regular file"):
        load_diagnostic(tmp_path / "pipe.npz")


def write(path, text):
    path.write_text(text)
    return path


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize("case,text,needle", [
    ("base a number", "base: 3\n", "base: in"), ("base a list", "base: [a.yaml]\n", "base: in"),
    ("base a mapping", "base: {a: 1}\n", "base: in"), ("base empty", "base: ''\n", "base: in"),
    ("alias bomb", BOMB, "expands to more than"), ("alias loop", "train: &a {x: *a}\n", "contains it"),
    ("nested 100000 deep", "x: " + "[" * 100000 + "]" * 100000 + "\n", "nested too deeply"),
])
def test_a_config_that_never_ends_is_one_line(tmp_path, capsys, case, text, needle):
    recipe = write(tmp_path / "r.yaml", text)
    one_line_exit_2(capsys, ["train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs")], needle)
    assert not (tmp_path / "runs").exists()


def test_a_loop_or_an_endless_chain_of_bases_is_one_line(tmp_path, capsys):
    write(tmp_path / "a.yaml", "base: b.yaml\ntrain: {epochs: 1}\n")
    write(tmp_path / "b.yaml", "base: a.yaml\ntrain: {epochs: 2}\n")
    one_line_exit_2(capsys, ["train", "--config", str(tmp_path / "a.yaml"), "--out-dir", str(tmp_path / "runs")],
                    "includes itself")
    write(tmp_path / "self.yaml", "base: self.yaml\ntrain: {epochs: 1}\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(tmp_path / "self.yaml")
    for i in range(3000):  # a chain thousands deep, every file distinct
        write(tmp_path / f"c{i}.yaml", f"base: c{i + 1}.yaml\ntrain: {{epochs: 1}}\n")
    write(tmp_path / "c3000.yaml", "train: {epochs: 1}\n")
    one_line_exit_2(capsys, ["train", "--config", str(tmp_path / "c0.yaml"), "--out-dir", str(tmp_path / "runs")],
                    f"more than {MAX_BASES} base files deep")
    assert not (tmp_path / "runs").exists()
