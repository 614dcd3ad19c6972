"""(6) Peak resident memory (each case in a child process of its own, its VmHWM) of the demo's smallest path,
a 21 x 21 weight landscape and a 1,000-point AutoAttack evaluation; and the size of FGSM-PGK's
per-example prior buffers, with what narrower storage would do to them."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

import regmix

from .fixtures import digits

ROOT = Path(__file__).resolve().parent.parent


def peak_rss(cmd, cwd, log_path: Path) -> dict:
    """Runs cmd (a benchmarks.memory_child case) and returns the peak resident memory it reports."""
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log_path, "w") as log:
        code = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    text = log_path.read_text()
    peaks = [int(line.split()[1]) for line in text.splitlines() if line.startswith("peak_rss_kib ")]
    out = {"peak_rss_mib": round(peaks[-1] / 1024, 1) if peaks else None,
           "seconds": round(time.perf_counter() - start, 1), "returncode": code,
           "command": " ".join(str(c) for c in cmd)}
    if code != 0 or not peaks:
        out["error_tail"] = text[-800:]
    return out


def demo_configs(scale, workdir: Path) -> Path:
    """The demo recipes; the smoke run points them at scikit-learn's 8x8 digits (seconds)."""
    target = workdir / "demo_configs"
    shutil.copytree(ROOT / "configs" / "demo", target, dirs_exist_ok=True)
    if scale.name != "full":
        base = target / "base.yaml"
        text = base.read_text().replace("name: mnist5k", "name: digits")
        base.write_text(text)
    return target


def prior_storage(log=print) -> dict:
    """Bytes of eta + m per dataset, and how much of a real prior a narrower type would keep exactly
    (measured on digits after three epochs of FGSM-PGK steps, step = eps, sign init)."""
    sizes = {"cifar10": (50_000, 3 * 32 * 32), "tinyimagenet": (100_000, 3 * 64 * 64)}
    out = {"buffers": "eta and m, float32, one of each per training example"}
    for name, (n, d) in sizes.items():
        out[name] = {"examples": n, "values_per_example": d, "float32_bytes": 2 * n * d * 4,
                     "float16_bytes_if_it_were_exact": 2 * n * d * 2,
                     "reset_temporary_bytes_before": n * d * 4,
                     "reset_temporary_bytes_now": min(n, 4096) * d * 4}
    torch.manual_seed(0)
    x, y, ds = digits("train", 256)
    threat = regmix.ThreatModel("linf", 0.1, step=0.1, steps=1)
    model = regmix.create_model("small_cnn", 10, 1, mean=ds.mean, std=ds.std, width=8).train()
    method = regmix.create_method("pgk", threat)
    method.setup(len(y), tuple(x.shape[1:]), "cpu")
    method.start_epoch(0)
    for _ in range(3):
        for s in range(0, len(y), 64):
            idx = torch.arange(s, s + 64)
            method.loss(model, x[idx], y[idx], idx)
    eta, m = method.prior.eta, method.prior.m
    on_grid = (eta == 0) | (eta.abs() == threat.eps)
    out["measured_on_digits"] = {
        "eta_on_step_grid": round(on_grid.float().mean().item(), 4),
        "eta_exact_in_float16": round((eta.half().float() == eta).float().mean().item(), 4),
        "eta_exact_in_bfloat16": round((eta.bfloat16().float() == eta).float().mean().item(), 4),
        "m_exact_in_float16": round((m.half().float() == m).float().mean().item(), 6)}
    out["decision"] = ("float32 kept: the stored eta is (x + eta).clamp(0, 1) - x, whose rounding leaves values "
                       "off any grid of step multiples, and m is a running sum of normalised gradients; "
                       "no narrower type reproduces a run bit for bit")
    log(f"[memory] prior storage {out['measured_on_digits']}")
    return out


def run(model, eps, scale, workdir: Path, log=print) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    x, y, _ = digits("test", 1000)
    torch.save({"state": model.state_dict(), "eps": eps, "points": len(y)}, workdir / "model.pt")
    python = sys.executable
    cases = {"baseline": [python, "-m", "benchmarks.memory_child", "baseline", str(workdir), scale.name],
             "landscape": [python, "-m", "benchmarks.memory_child", "landscape", str(workdir), scale.name],
             "autoattack": [python, "-m", "benchmarks.memory_child", "autoattack", str(workdir), scale.name],
             "demo": [python, "-m", "benchmarks.memory_child", "demo", str(workdir), scale.name, "--", "demo",
                      "--out", str(workdir / "demo_runs"), "--methods", "regmix", "--epochs", "1",
                      "--config-dir", str(demo_configs(scale, workdir)), "--no-progress"]}
    out = {"cases": {}}
    for name, cmd in cases.items():
        out["cases"][name] = peak_rss(cmd, ROOT, workdir / f"{name}.log")
        log(f"[memory] {name}: {out['cases'][name]['peak_rss_mib']} MiB peak, rc {out['cases'][name]['returncode']}")
    out["descriptions"] = {
        "baseline": "python + torch + regmix + the demo model, one forward pass",
        "demo": "regmix demo --methods regmix --epochs 1 (train one epoch, then the demo's PGD-20 test evaluation)"
                + ("" if scale.name == "full" else " on scikit-learn's 8x8 digits (smoke)"),
        "landscape": f"weight_landscape, {scale.memory_grid} x {scale.memory_grid} grid, clean, {512 if scale.name == 'full' else scale.landscape_points} points",
        "autoattack": f"AutoAttack standard through the adapter on {scale.memory_aa_points} points, "
                      f"APGD/FAB iterations cut to {scale.memory_aa_iters}, Square queries to {scale.aa_square_queries or 100} "
                      f"(memory depends on points and batch, not on iterations)"}
    out["prior_storage"] = prior_storage(log)
    out["checks"] = {"all_children_succeeded": all(c["returncode"] == 0 and c["peak_rss_mib"] for c in out["cases"].values())}
    return out
