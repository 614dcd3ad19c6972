"""The benchmark's smoke run: every comparison runs, the record has its structure, the page is generated
from it, and the equal-result checks hold. No timing is asserted anywhere."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("train_step", "attack", "eval", "landscape", "autoattack", "memory", "gpu")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    doc = out / "page.md"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--smoke", "--threads", "1", "--out", str(out),
                           "--doc", str(doc), "--machine", "ci"], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = list(out.glob("ci-*-smoke.json"))
    assert len(records) == 1
    return json.loads(records[0].read_text()), doc.read_text()


def test_record_has_every_section_with_timings_and_targets(smoke):
    record, _ = smoke
    assert record["command"].startswith("python -m benchmarks --smoke")
    assert {"cpu", "cpu_count", "torch", "load_start", "load_end"} <= set(record["machine"])
    results = record["results"]
    assert not [name for name in SECTIONS if "error" in results[name]]
    for name in ("train_step", "attack", "eval", "landscape", "autoattack"):
        section = results[name]
        for timing in section["timings"].values():
            assert timing["repeats"] >= 1 and timing["median_s"] > 0 and timing["spread"] >= 0
        for t in section["targets"]:
            assert set(t) >= {"name", "value", "target", "met"} and isinstance(t["met"], bool)
    train = results["train_step"]
    assert [t["name"] for t in train["targets"]] == ["regmix / pgd_at", "pgk / pgd_at", "regmix / pgk"]
    assert set(train["seconds_per_step"]) == {"standard", "pgd_at", "trades", "pgk", "regmix"}
    assert all(sum(p.values()) == pytest.approx(1.0, abs=0.01) for p in train["profile"].values())


def test_forward_passes_and_flop_equivalents_are_the_methods_own(smoke):
    work = smoke[0]["results"]["train_step"]["work"]
    assert {m: w["forward_passes"] for m, w in work.items()} == \
        {"standard": 1, "pgd_at": 11, "trades": 13, "pgk": 2, "regmix": 3}
    # forward = 1, input-only backward ~ 1, full backward ~ 2 (the first conv has no input gradient)
    expected = {"standard": 3, "pgd_at": 23, "trades": 27, "pgk": 7, "regmix": 10}
    for m, value in expected.items():
        assert work[m]["flop_equivalents"] == pytest.approx(value, abs=0.1)


def test_equal_result_checks_hold(smoke):
    results = smoke[0]["results"]
    checks = {f"{name}.{k}": v for name, s in results.items() for k, v in s.get("checks", {}).items()}
    assert {"train_step.ema_foreach_bitwise_equal", "eval.compacted_equals_masked",
            "eval.early_stop_not_weaker_than_plain", "landscape.agrees_with_loss_landscapes",
            "landscape.fast_equals_plain", "memory.all_children_succeeded"} <= set(checks)
    assert all(checks.values()), checks


def test_attack_comparison_runs_or_says_why_not(smoke):
    attack = smoke[0]["results"]["attack"]
    if "torchattacks_pgd" in attack["timings"]:
        assert attack["checks"]["same_accuracy_as_torchattacks"]
    else:
        assert attack["torchattacks"].startswith("skipped: torchattacks is not installed")
    assert "apgd_ce" in attack["timings"]


def test_memory_and_prior_storage_are_recorded(smoke):
    memory = smoke[0]["results"]["memory"]
    assert set(memory["cases"]) == {"baseline", "demo", "landscape", "autoattack"}
    assert all(c["peak_rss_mib"] > 50 for c in memory["cases"].values())
    cifar = memory["prior_storage"]["cifar10"]
    assert cifar["float32_bytes"] == 2 * 50_000 * 3 * 32 * 32 * 4
    assert memory["prior_storage"]["tinyimagenet"]["float32_bytes"] == 2 * 100_000 * 3 * 64 * 64 * 4


def test_gpu_section_is_skipped_with_a_reason_on_cpu(smoke):
    gpu = smoke[0]["results"]["gpu"]
    if not torch.cuda.is_available():
        assert gpu["skipped"].startswith("skipped: no CUDA device")


def test_page_is_generated_from_the_record(smoke):
    record, page = smoke
    assert page.startswith("# Benchmarks")
    assert record["command"] in page and "Smoke run" in page
    for t in record["results"]["train_step"]["targets"]:
        assert f"| {t['name']} | {t['value']:.3f} |" in page
    assert "No GPU was available" in page or record["results"]["gpu"].get("rows")


def test_gpu_section_body_runs_tiny_on_cpu_and_renders():
    """The GPU section's code path (FLOP count, matrix-product rate, configurations, budget, page) on a
    tiny model on the CPU: the part CI can check of what only a GPU times for real."""
    from benchmarks import report
    from benchmarks.gpu import measure_all
    out = measure_all("cpu", 1, model_name="small_cnn", image=8, matmul_n=64, dtypes=("fp32",), compiles=(False,),
                      channels_lasts=(False, True), log=lambda *_: None)
    paths = [r for r in out["rows"] if "path" in r]  # the train.fast step's rows come first
    assert [(r["path"], r["method"]) for r in paths] == [("fast", "pgd_at"), ("fast", "regmix"),
                                                          ("graph", "pgd_at"), ("graph", "regmix")]
    assert all(r["seconds_per_epoch"] > 0 for r in paths[:2]) and all("CUDA" in r["skipped"] for r in paths[2:])
    rows = [r for r in out["rows"] if "path" not in r]
    assert [r["channels_last"] for r in rows] == [True, True, False, False]  # channels_last first
    assert all(r["seconds_per_epoch"] > 0 and r["tflops_achieved"] > 0 for r in rows)
    # PGD-10 AT makes 10 forward + input-gradient passes and one training pass: far more FLOPs than regmix's step
    assert out["step_tflop_batch128"]["pgd_at"] > 2 * out["step_tflop_batch128"]["regmix"]
    spent = measure_all("cpu", 1, model_name="small_cnn", image=8, matmul_n=64, dtypes=("fp32",), compiles=(False,),
                        channels_lasts=(False,), budget_s=0, log=lambda *_: None)["rows"]
    spent = [r for r in spent if "path" not in r]
    assert len(spent) == 2 and all("skipped" in r for r in spent[1:])  # recorded as skipped, not left out
    section = {"device": "cpu (test)", "precision": {}, **out, "rows": out["rows"] + spent[1:]}
    record = {"command": "test", "record_path": "x.json", "date": "today", "scale": {"name": "smoke"},
              "machine": {"cpu": "c", "cpu_count": 1, "torch": "t", "torch_threads": 1, "device": "cpu",
                          "load_start": [0], "load_end": [0]}, "results": {"gpu": section}}
    page = report.render(record)
    assert "| regmix | plain | fp32 | False | True | 128 |" in page, page
    assert "| regmix | fast | bf16 | False | True | 128 |" in page, page
    assert "| regmix | plain | fp32 | False | False | 128 | not measured: time budget of 0 s spent |" in page, page
    # a record without graph_step predates the whole-step capture: the page says its rows wait for a lease
    assert "the forward, attack and backward; the optimiser and the EMA stayed eager" in page
    assert "**Waiting for a GPU lease:**" in page
    from benchmarks.gpu import GRAPH_STEP
    section["graph_step"] = GRAPH_STEP
    page = report.render(record)
    assert "**Waiting for a GPU lease:**" not in page and GRAPH_STEP in page


def test_bad_arguments_exit_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "trian"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--only: unknown section 'trian'" in proc.stderr


def _record(date, device, results, scale="full", path="x.json"):
    return {"command": f"python -m benchmarks ({date})", "record_path": path, "date": date, "scale": {"name": scale},
            "machine": {"cpu": "c", "cpu_count": 2, "torch": "t", "torch_threads": 2, "device": device,
                        "gpu": "G" if device == "cuda" else None, "load_start": [0], "load_end": [0]},
            "results": results}


def test_the_page_takes_each_section_from_the_latest_record_that_ran_it_cpu_and_gpu_apart():
    """Sections run at different times (a quiet machine for some, a lent GPU for others) make one page; a
    later failed or skipped run of a section does not hide an earlier good one."""
    from benchmarks import report
    target = lambda v: {"name": "compacted speed / masked speed", "value": v, "target": ">= 1.5", "met": v >= 1.5}  # noqa: E731
    timing = {"median_s": 1.0, "spread": 0.0, "repeats": 1}
    evaluation = lambda v: {"points": 10, "eps": 0.1, "clean_accuracy": 0.9, "plain_pgd20_vs_compacted": 1.0,  # noqa: E731
                            "timings": {"compacted": timing}, "accuracy_under_attack": {"compacted": 0.5},
                            "targets": [target(v)]}
    old = _record("2026-01-01 10:00 UTC", "cpu", {"eval": evaluation(2.0)}, path="old.json")
    broken = _record("2026-01-02 10:00 UTC", "cpu", {"eval": {"error": "RuntimeError: boom"}}, path="broken.json")
    newer = _record("2026-01-03 10:00 UTC", "cpu", {"memory": {"skipped": "skipped: no reason"}}, path="newer.json")
    gpu = _record("2026-01-04 10:00 UTC", "cuda", {"eval": evaluation(1.1)}, path="gpu.json")
    chosen = report.merge([gpu, newer, broken, old])
    assert chosen[(False, "eval")][1] is old and chosen[(True, "eval")][1] is gpu
    page = report.render([old, broken, newer, gpu])
    assert "`old.json`" in page and "`gpu.json`" in page and "`broken.json`" not in page
    assert "| compacted speed / masked speed | 2.000 | >= 1.5 | yes | R1, CPU |" in page
    assert "| compacted speed / masked speed | 1.100 | >= 1.5 | **no** | R3, GPU |" in page
    assert "### On the GPU: PGD-20 evaluation" in page and "Skipped: no reason." in page
    assert "## 1. Training step\n\nNot run in any record" in page
    # a superseded record of a section is still named under it, with what it measured
    newest = _record("2026-01-05 10:00 UTC", "cpu", {"eval": evaluation(1.6)}, path="newest.json")
    page = report.render([old, broken, newer, gpu, newest])
    assert "| compacted speed / masked speed | 1.600 | >= 1.5 | yes | R3, CPU |" in page
    assert ("Earlier records of this section (superseded by the one above, kept in benchmarks/results): `old.json` "
            "(2026-01-01 10:00 UTC, c, load average [0] at the start): compacted speed / masked speed 2.000 (met).") in page


def test_report_reads_every_full_record_of_a_folder_and_names_where_each_lies(tmp_path):
    from benchmarks import report
    (tmp_path / "a.json").write_text(json.dumps(_record("2026-01-01 10:00 UTC", "cpu", {}, path="/elsewhere/a.json")))
    (tmp_path / "b.json").write_text(json.dumps(_record("2026-01-01 11:00 UTC", "cpu", {}, scale="smoke")))
    records = report.full_records(tmp_path)
    assert len(records) == 1 and records[0]["record_path"] == str(tmp_path / "a.json")  # smoke left out


def test_graph_check_compares_every_part_and_skips_without_cuda():
    """benchmarks/graph_check.py: its comparison on the CPU (two eager runs from one seed agree bit for
    bit; a changed rate or a perturbed tensor shows); the capture itself waits for a GPU."""
    from benchmarks.graph_check import _run, check, compare
    a, captured = _run("regmix", False, 5, "cpu", 16, "small_cnn", 16)
    b, _ = _run("regmix", False, 5, "cpu", 16, "small_cnn", 16)
    assert not captured and set(a) == {"weights", "momentum", "ema", "ema_updates", "sums"}
    assert all(p["bitwise_equal"] and p["max_relative_difference"] == 0 for p in compare(a, b).values())
    b["ema"][0] = b["ema"][0] * (1 + 1e-3)
    parts = compare(a, b)
    assert not parts["ema"]["bitwise_equal"] and parts["ema"]["max_relative_difference"] > 1e-4
    assert parts["weights"]["bitwise_equal"]
    assert float(a["ema_updates"][0]) == 5
    assert check("cpu") == {"skipped": "no CUDA device: nothing to capture"}
