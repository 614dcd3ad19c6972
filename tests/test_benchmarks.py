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


def test_gpu_measurement_code_path_runs_tiny_on_cpu():
    from benchmarks.gpu import measure
    rows = measure("cpu", 1, model_name="small_cnn", image=8, batch=4, dtypes=("fp32",), compiles=(False,),
                   channels_lasts=(False, True), log=lambda *_: None)
    assert len(rows) == 4 and all(r["seconds_per_epoch"] > 0 for r in rows)


def test_bad_arguments_exit_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "trian"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--only: unknown section 'trian'" in proc.stderr
