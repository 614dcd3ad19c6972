"""Where the time goes: the share of self CPU time by kind of operation (torch profiler), the same
categories for every comparison."""
from __future__ import annotations

CATEGORIES = [  # (category, substrings of aten op names), first match wins
    ("convolution", ("convolution",)),
    ("matmul", ("addmm", "aten::mm", "bmm", "linear")),
    ("pooling", ("pool",)),
    ("activation", ("relu", "threshold", "clamp_min")),
    ("softmax/loss", ("softmax", "nll", "cross_entropy", "kl_div", "aten::exp", "aten::log")),
    ("prior gather/scatter", ("aten::index", "index_put", "index_select", "gather", "scatter")),
    ("optimizer/EMA", ("_foreach", "adam", "lerp", "addcdiv", "addcmul", "sqrt")),
    ("random draws", ("uniform", "rand", "normal", "bernoulli")),
    ("reductions/syncs", ("sum", "mean", "amax", "argmax", "max", "min", "item", "_local_scalar_dense", "eq")),
    ("elementwise", ("add", "sub", "mul", "div", "clamp", "sign", "where", "neg", "abs", "copy_", "fill_",
                     "zero_", "ones_like", "zeros_like", "empty", "to", "sigmoid", "pow", "masked_fill")),
]


def profile_shares(fn) -> dict:
    """Runs fn once under the torch profiler; {kind: share of the aten ops' self CPU time}."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    shares, total = {}, 0.0
    for event in prof.key_averages():
        if not event.key.startswith("aten::") and not event.key.startswith("autograd"):
            continue
        t = event.self_cpu_time_total
        total += t
        kind = next((name for name, keys in CATEGORIES if any(k in event.key for k in keys)), "other")
        shares[kind] = shares.get(kind, 0.0) + t
    return {k: round(v / total, 4) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])} if total else {}


def device_busy_share(fn, repeats: int = 1):
    """Kernel time on the CUDA device over wall time while fn runs `repeats` times (torch profiler): near 1,
    the card computes all the time; far below, the host (Python, launches, reads back) sets the pace."""
    import time

    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.cuda.synchronize()
    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            torch.cuda.synchronize()
            wall = time.perf_counter() - start
        # the kernels' own events only: an operator's self_device_time_total counts its kernels a second time
        kernels = sum(e.self_device_time_total for e in prof.key_averages()
                      if e.device_type == torch.autograd.DeviceType.CUDA)  # microseconds
        return round(kernels / 1e6 / wall, 3)
    except Exception as exc:  # the profiler is a help here, not the measurement
        return f"failed: {type(exc).__name__}: {exc}"
