"""(3) PGD-20 evaluation on a model about 50% robust: the compacted batch (only still-robust points
are computed after each step) against plain masking (every point computed, fooled ones frozen)."""
from __future__ import annotations

import torch

import regmix
from regmix.attacks import PGD

from .early_stop import EarlyStopPGD
from .fixtures import accuracy, digits
from .profiling import device_busy_share
from .timing import alternate, full_fp32, ratio, target


# On a GPU the section's 1,000 digits leave the card idle between launches; there the points are repeated
# this many times so that the card, not the host, sets the pace (the accuracies are those of the 1,000).
CUDA_REPEAT = 32


def run(model, eps, scale, device="cpu", log=print) -> dict:
    x, y, _ = digits("test", scale.eval_points)
    repeat = CUDA_REPEAT if str(device).startswith("cuda") else 1
    x, y = x.repeat(repeat, 1, 1, 1).to(device), y.repeat(repeat).to(device)
    threat = regmix.ThreatModel("linf", eps, steps=20)
    attacks = {"compacted": EarlyStopPGD(model, threat, compact=True),
               "masked": EarlyStopPGD(model, threat, compact=False),
               "plain_pgd20": PGD(model, threat)}
    adv = {}

    def runner(name):
        def go():
            torch.manual_seed(0)
            adv[name] = attacks[name](x, y)
        return go

    timings = alternate({k: runner(k) for k in attacks}, repeats=scale.repeats, warmup=scale.warmup, device=device)
    # The equal-result checks are made again in full float32 on CUDA: with TF32 convolutions (PyTorch's
    # default there) a compacted batch is a different batch, rounded differently, and a point on the
    # boundary can go either way (2026-12-04, H200: the timed runs' flags differed on a few of 32,000 points)
    with torch.no_grad():
        timed_flags = {k: (model(v).argmax(1) == y) for k, v in adv.items()}
    with full_fp32(device):
        for name in attacks:
            runner(name)()
        with torch.no_grad():
            flags = {k: (model(v).argmax(1) == y) for k, v in adv.items()}
    acc = {k: f.float().mean().item() for k, f in flags.items()}
    busy = ({k: device_busy_share(runner(k)) for k in ("compacted", "masked")}
            if str(device).startswith("cuda") else None)
    out = {"points": len(y), "repeated": repeat, "gpu_busy_share": busy, "eps": eps, "clean_accuracy": accuracy(model, x, y), "accuracy_under_attack": acc,
           "timings": timings,
           "targets": [target("compacted speed / masked speed", ratio(timings, "masked", "compacted"), ">=", 1.5)],
           "plain_pgd20_vs_compacted": ratio(timings, "plain_pgd20", "compacted"),
           "flags_differing_at_default_precision": int((timed_flags["compacted"] != timed_flags["masked"]).sum()),
           "checks": {"compacted_equals_masked": bool(torch.equal(flags["compacted"], flags["masked"])),
                      "early_stop_not_weaker_than_plain": bool(not (flags["compacted"] & ~flags["plain_pgd20"]).any())}}
    log(f"[eval] accuracy {acc}; compacted {timings['compacted']['median_s']:.3f}s, masked {timings['masked']['median_s']:.3f}s")
    return out
