"""GPU: seconds per CIFAR-10 epoch (50,000 images, batch 128) of PGD-10 AT and RegMix on a ResNet-18,
synthetic CIFAR-shaped data, fp32 and bf16, with and without torch.compile and channels_last, set against
the floating-point floor (the step's FLOPs, counted, over the card's measured bf16 matrix-product rate).
Skipped, with the reason in the record, where no CUDA device is present."""
from __future__ import annotations

import itertools
import math
import time
from contextlib import nullcontext

import torch

import regmix
from regmix.ema import EMA
from regmix.training.device_data import crop_flip
from regmix.training.step import DeviceStep

from .profiling import device_busy_share
from .timing import synchronizer
from .train_step import OPTIONS  # the recipes' options (regmix with AGR)

EPOCH_IMAGES = 50_000
# what the 'graph' rows capture, in the record (report_gpu.OLD_GRAPH_STEP: what records without it captured)
GRAPH_STEP = "the whole step: the attack, loss and backward, the fused SGD step and the EMA's update"


def _threat(method, eps=8 / 255):
    if method == "regmix":
        return regmix.ThreatModel("linf", eps, step=eps, steps=1)
    return regmix.ThreatModel("linf", eps, step=2 / 255, steps=10)


def configurations(methods, dtypes, compiles, channels_lasts, batches):
    """The first batch size first; eager configurations before compiled ones (tens of seconds of compilation
    each), so that a time budget that runs out leaves the cheap rows measured; within each, the likely
    fastest (bf16, channels_last) first."""
    rows = itertools.product(compiles, batches, dtypes, channels_lasts, methods)
    order = lambda c: (c[1] != batches[0], c[0], c[2] != "bf16", not c[3])  # noqa: E731
    return sorted(rows, key=order)


class Step:
    """One training step of `method` on a fresh ResNet-18 (seeded), synthetic data rotated over 4 batches."""

    def __init__(self, method, dtype, compiled, channels_last, batch, device, model_name, image):
        torch.manual_seed(0)
        model = regmix.create_model(model_name, 10, 3, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model, self.net = model, (torch.compile(model) if compiled else model)
        self.x = torch.rand(batch * 4, 3, image, image, device=device)
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (len(self.x),), device=device)
        self.method = regmix.create_method(method, _threat(method), **OPTIONS.get(method, {}))
        self.method.setup(len(self.y), tuple(self.x.shape[1:]), device)
        self.method.start_epoch(0)
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        kind = str(device).split(":")[0]
        self.autocast = (lambda: torch.autocast(device_type=kind, dtype=torch.bfloat16)) if dtype == "bf16" else nullcontext
        self.batch, self.device, self.k = batch, device, 0

    def __call__(self):
        k, b = self.k % 4, self.batch
        self.k += 1
        idx = torch.arange(k * b, (k + 1) * b, device=self.device)
        self.net.train()
        with self.autocast():
            loss, _ = self.method.loss(self.net, self.x[idx], self.y[idx], idx)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


class DeviceDataStep:
    """The trainer's train.fast step (regmix/training/step.py): the data set on the device as uint8 with the
    CIFAR augmentation made there (random crop with 4 pixels of padding, flip), sums kept on the device, no
    host read; graph=True captures the whole step as one CUDA graph: forward, attack, backward, the
    optimiser (fused SGD, the recipes' settings) and the EMA (gated with averaged buffers for pgk and
    regmix, as their recipes), as in the trainer."""

    def __init__(self, method, dtype, graph, channels_last, batch, device, model_name, image, batches=8):
        torch.manual_seed(0)
        model = regmix.create_model(model_name, 10, 3, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model, self.crop_flip = model, crop_flip
        n = batch * batches
        self.images = torch.randint(0, 256, (n, 3, image, image), dtype=torch.uint8, device=device)
        self.y = torch.randint(0, 10, (n,), device=device)
        self.draws = (torch.randint(0, 9, (2, n), device=device), torch.rand(n, device=device) < 0.5)
        self.method = regmix.create_method(method, _threat(method), **OPTIONS.get(method, {}))
        self.method.setup(n, (3, image, image), device)
        self.method.start_epoch(0)
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True)
        gated = method in ("pgk", "regmix")
        self.ema = EMA(model, 0.999, gate=0.82 if gated else None, buffers="average" if gated else "copy")
        self.step = DeviceStep(model, self.method, self.opt, amp=dtype == "bf16", graph=graph,
                               after_update=lambda: self.ema.update(self.model, self.method.attack_ratio))
        self.step.reset({}, 0, device)
        self.batch, self.batches, self.channels_last, self.k = batch, batches, channels_last, 0

    def __call__(self):
        b = self.batch
        idx = torch.arange((self.k % self.batches) * b, (self.k % self.batches + 1) * b, device=self.y.device)
        self.k += 1
        x = self.crop_flip(self.images[idx].float() / 255, self.draws[0][0, idx], self.draws[0][1, idx],
                           self.draws[1][idx], 4)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.model.train()
        self.step(x, self.y[idx], idx)


def step_flops(method, device, model_name="resnet18", image=32, batch=128) -> float:
    """Conv and linear FLOPs of one eager training step (the attack's passes included), counted by
    torch.utils.flop_counter: a property of the method and the model, not of the machine."""
    from torch.utils.flop_counter import FlopCounterMode
    step = Step(method, "fp32", False, False, batch, device, model_name, image)
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def gpu_busy_share(method, device, model_name="resnet18", image=32, batch=128, steps=5, path="plain"):
    """Kernel time on the device over wall time, bf16 channels_last, of the plain step (eager) or of the
    train.fast step ('fast', or 'graph': captured): near 1 means the GPU computes all the time; far below,
    the host (Python, launches) is what the step waits for. None on a CPU."""
    if not str(device).startswith("cuda"):
        return None
    try:
        if path == "plain":
            step = Step(method, "bf16", False, True, batch, device, model_name, image)
        else:
            step = DeviceDataStep(method, "bf16", path == "graph", True, batch, device, model_name, image)
        for _ in range(5):
            step()
    except Exception as exc:  # a step that fails here is recorded as failed in its timed row too
        return f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return device_busy_share(step, steps)


def matmul_rate(device, dtype=torch.bfloat16, n=8192, repeats=10) -> float:
    """Measured dense matrix-product rate (FLOP/s) on random data: the card's practical ceiling."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    sync = synchronizer(device)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start)


def measure(device: str, steps: int, *, model_name="resnet18", image=32, batches=(128,),
            methods=("pgd_at", "regmix"), dtypes=("fp32", "bf16"), compiles=(False, True),
            channels_lasts=(False, True), budget_s=None, flops=None, log=print) -> list:
    """One row per configuration; once `budget_s` seconds have passed, the remaining configurations are
    recorded as skipped (not measured) rather than left out silently."""
    rows, began = [], time.perf_counter()
    for compiled, batch, dtype, cl, method in configurations(methods, dtypes, compiles, channels_lasts, batches):
        row = {"method": method, "dtype": dtype, "compile": compiled, "channels_last": cl, "batch": batch}
        if budget_s is not None and rows and time.perf_counter() - began > budget_s:  # the first always runs
            rows.append({**row, "skipped": f"time budget of {budget_s:.0f} s spent"})
            log(f"[gpu] {method} {dtype} compile={compiled} channels_last={cl} batch={batch}: skipped (budget)")
            continue
        if compiled:
            # Dynamo's guards hold the model instance: without a reset every fresh model of a configuration
            # recompiles the same forward until its recompile limit sends it back to eager
            torch._dynamo.reset()
        label = f"{method} {dtype} compile={compiled} channels_last={cl} batch={batch}"
        rows.append(_timed(row, lambda: Step(method, dtype, compiled, cl, batch, device, model_name, image),
                           warmup=3, steps=steps, device=device, flops=flops, label=label, log=log))
    return rows


def _timed(row, make_step, *, warmup, steps, device, flops, label, log, check=None) -> dict:
    """One configuration's row: `warmup` untimed steps (compilation, cuDNN's choices, a capture), then
    `steps` timed; s/epoch from the timed steps. A configuration that fails (a compiler error) is recorded
    as failed, so that it never hides the others; `check(step)` may refuse a step after it ran."""
    sync = synchronizer(device)
    try:
        step = make_step()
        start = time.perf_counter()
        for _ in range(warmup):
            step()
        sync()
        warm = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        per_step = (time.perf_counter() - start) / steps
        if check is not None:
            check(step)
    except Exception as exc:
        row = {**row, "skipped": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
        log(f"[gpu] {label}: {row['skipped']}")
        return row
    row = {**row, "seconds_per_step": per_step, "seconds_per_epoch": per_step * math.ceil(EPOCH_IMAGES / row["batch"]),
           "warmup_s": warm}
    if flops and row["method"] in flops:
        row["tflops_achieved"] = flops[row["method"]] * row["batch"] / 128 / per_step / 1e12
    log(f"[gpu] {label}: {row['seconds_per_epoch']:.2f} s/epoch (warm-up {warm:.1f} s)")
    return row


def measure_paths(device, steps, *, methods=("pgd_at", "regmix"), batches=(128, 512), paths=("fast", "graph"),
                  model_name="resnet18", image=32, flops=None, log=print) -> list:
    """The train.fast step (DeviceDataStep), eagerly ('fast') and captured ('graph'), bf16 channels_last:
    rows in the same form as measure()'s, with a 'path' key. A graph's warm-up includes its capture."""
    rows = []
    for batch in batches:
        for path in paths:
            for method in methods:
                row = {"method": method, "dtype": "bf16", "compile": False, "channels_last": True, "batch": batch,
                       "path": path}
                if path == "graph" and not str(device).startswith("cuda"):
                    rows.append({**row, "skipped": "CUDA graphs need a CUDA device"})
                    continue
                rows.append(_timed(
                    row, lambda: DeviceDataStep(method, "bf16", path == "graph", True, batch, device, model_name, image),
                    warmup=5, steps=steps, device=device, flops=flops,  # 3 eager steps, the capture, a first replay
                    label=f"{method} {path} bf16 channels_last batch={batch}", log=log,
                    check=_captured if path == "graph" else None))
    return rows


def _captured(step):
    if step.step.graph is None:
        raise RuntimeError("the step was not captured")


def run(scale, device, log=print, budget_s=250) -> dict:
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        reason = ("skipped: no CUDA device on this machine (run `python -m benchmarks --device cuda` where "
                  "one is present)")
        log(f"[gpu] {reason}")
        return {"skipped": reason}
    torch.backends.cudnn.benchmark = True
    # R2 (2026-11-26) holds the plain step's whole matrix (fp32/bf16, compile, channels_last); here the plain
    # step is timed in its best form beside the train.fast rows, for a side-by-side reading
    out = measure_all(device, scale.gpu_steps, batches=(128, 512) if scale.name == "full" else (128,),
                      budget_s=budget_s, log=log, dtypes=("bf16",), compiles=(False,), channels_lasts=(True,))
    return {"device": torch.cuda.get_device_name(torch.device(device)), "graph_step": GRAPH_STEP,
            "precision": {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                          "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}, **out}


def measure_all(device, steps, *, methods=("pgd_at", "regmix"), batches=(128,), budget_s=None, model_name="resnet18",
                image=32, matmul_n=8192, log=print, **kw) -> dict:
    """The GPU section's body on any device (tests run it tiny on a CPU): FLOPs per step, the matrix-product
    ceiling, every configuration's time, the floor and the target."""
    flops = {m: step_flops(m, device, model_name, image) for m in methods}
    peak_bf16 = matmul_rate(device, torch.bfloat16, matmul_n)
    peak_fp32 = matmul_rate(device, torch.float32, matmul_n)
    log(f"[gpu] FLOPs per step (batch 128): {', '.join(f'{m} {f / 1e12:.3f} T' for m, f in flops.items())}; "
        f"matmul rate bf16 {peak_bf16 / 1e12:.0f}, fp32 {peak_fp32 / 1e12:.0f} TFLOP/s")
    busy = {m: gpu_busy_share(m, device, model_name, image) for m in methods}
    log(f"[gpu] share of wall time the GPU computes (eager bf16 channels_last, batch 128): {busy}")
    busy_paths = {path: {m: gpu_busy_share(m, device, model_name, image, path=path) for m in methods}
                  for path in ("fast", "graph")} if str(device).startswith("cuda") else {}
    log(f"[gpu] the same for the train.fast step, eager and captured: {busy_paths}")
    # the train.fast step first (eager and captured), then the configurations of the plain step
    rows = measure_paths(device, steps, methods=methods, batches=batches, model_name=model_name, image=image,
                         flops=flops, log=log)
    rows += measure(device, steps, model_name=model_name, image=image, batches=batches, methods=methods,
                    budget_s=budget_s, flops=flops, log=log, **kw)
    steps_per_epoch = math.ceil(EPOCH_IMAGES / 128)
    timed = [r for r in rows if "seconds_per_epoch" in r]

    def best_of(method, batch):
        return min((r["seconds_per_epoch"] for r in timed if r["method"] == method and r["batch"] == batch),
                   default=math.inf)
    best = best_of("pgd_at", 128)
    return {"model": f"{model_name} (CIFAR)" if model_name == "resnet18" else model_name,
            "data": f"synthetic CIFAR-shaped (3x{image}x{image})", "epoch_images": EPOCH_IMAGES, "rows": rows,
            "step_tflop_batch128": {m: f / 1e12 for m, f in flops.items()},
            "gpu_busy_share_eager_bf16_batch128": busy,
            "gpu_busy_share_fast_bf16_batch128": busy_paths,
            "matmul_tflops": {"bf16": peak_bf16 / 1e12, "fp32": peak_fp32 / 1e12},
            # the floor: the epoch's counted FLOPs at the card's measured bf16 matrix-product rate
            "floor_s_per_epoch_bf16": {m: f * steps_per_epoch / peak_bf16 for m, f in flops.items()},
            "estimated_limit": "about 2-4 s per PGD-10 epoch on an H100",
            "targets": [{"name": "PGD-10 AT s/epoch, batch 128 (best configuration)", "value": round(best, 2),
                         "target": "<= 8", "met": best <= 8, "note": "synthetic data; extrapolated from timed steps"},
                        {"name": "RegMix s/epoch, batch 128 (best configuration)", "value": round(best_of("regmix", 128), 2),
                         "target": "<= 3.5", "met": best_of("regmix", 128) <= 3.5,
                         "note": "synthetic data; extrapolated from timed steps"}]
                       + [{"name": f"{m} at batch 512 over its floor (best configuration)",
                           "value": round(best_of(m, 512) / (flops[m] * steps_per_epoch / peak_bf16), 2),
                           "target": "<= 3", "met": best_of(m, 512) / (flops[m] * steps_per_epoch / peak_bf16) <= 3,
                           "note": "floor: counted FLOPs at the measured bf16 matmul rate"}
                          for m in methods if 512 in batches and best_of(m, 512) < math.inf]}
