"""GPU: seconds per CIFAR-10 epoch (50,000 images, batch 128) of PGD-10 AT and RegMix on a ResNet-18,
synthetic CIFAR-shaped data, fp32 and bf16, with and without torch.compile and channels_last.
Skipped, with the reason in the record, where no CUDA device is present."""
from __future__ import annotations

import itertools
import math
import time
from contextlib import nullcontext

import torch

import regmix

EPOCH_IMAGES = 50_000


def _threat(method, eps=8 / 255):
    if method == "regmix":
        return regmix.ThreatModel("linf", eps, step=eps, steps=1)
    return regmix.ThreatModel("linf", eps, step=2 / 255, steps=10)


def measure(device: str, steps: int, *, model_name="resnet18", image=32, batch=128,
            methods=("pgd_at", "regmix"), dtypes=("fp32", "bf16"), compiles=(False, True),
            channels_lasts=(False, True), log=print) -> list:
    rows = []
    for method, dtype, compiled, cl in itertools.product(methods, dtypes, compiles, channels_lasts):
        torch.manual_seed(0)
        model = regmix.create_model(model_name, 10, 3, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)).to(device)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        net = torch.compile(model) if compiled else model
        x = torch.rand(batch * 4, 3, image, image, device=device)
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (len(x),), device=device)
        m = regmix.create_method(method, _threat(method))
        m.setup(len(y), tuple(x.shape[1:]), device)
        m.start_epoch(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        autocast = torch.autocast(device_type=str(device).split(":")[0], dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()

        def step(k):
            idx = torch.arange((k % 4) * batch, (k % 4 + 1) * batch, device=device)
            net.train()
            with autocast:
                loss, _ = m.loss(net, x[idx], y[idx], idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
        start = time.perf_counter()
        for k in range(3):  # warm-up: compilation, cuDNN autotuning
            step(k)
        sync()
        warm = time.perf_counter() - start
        start = time.perf_counter()
        for k in range(steps):
            step(k)
        sync()
        per_step = (time.perf_counter() - start) / steps
        row = {"method": method, "dtype": dtype, "compile": compiled, "channels_last": cl,
               "seconds_per_step": per_step, "seconds_per_epoch": per_step * math.ceil(EPOCH_IMAGES / batch),
               "warmup_s": warm}
        rows.append(row)
        log(f"[gpu] {method} {dtype} compile={compiled} channels_last={cl}: {row['seconds_per_epoch']:.1f} s/epoch")
    return rows


def run(scale, device, log=print) -> dict:
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        reason = ("skipped: no CUDA device on this machine (run `python -m benchmarks --device cuda` where "
                  "one is present)")
        log(f"[gpu] {reason}")
        return {"skipped": reason}
    torch.backends.cudnn.benchmark = True
    rows = measure(device, scale.gpu_steps, log=log)
    best = min(r["seconds_per_epoch"] for r in rows if r["method"] == "pgd_at")
    return {"device": torch.cuda.get_device_name(torch.device(device)), "model": "resnet18 (CIFAR), batch 128",
            "data": "synthetic CIFAR-shaped (3x32x32)", "epoch_images": EPOCH_IMAGES, "rows": rows,
            "estimated_limit": "about 2-4 s per PGD-10 epoch on an H100",
            "targets": [{"name": "PGD-10 AT s/epoch (best configuration)", "value": round(best, 2), "target": "<= 8",
                         "met": best <= 8, "note": "synthetic data; extrapolated from timed steps"}]}
