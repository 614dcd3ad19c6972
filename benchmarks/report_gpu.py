"""The GPU section of docs/benchmarks.md (benchmarks/gpu.py's record): its table and the reading of it, every
number taken from the record."""
from __future__ import annotations

from benchmarks.report_format import targets_table

# what the 'graph' rows of a record without a graph_step key captured (records up to 2026-12-04)
OLD_GRAPH_STEP = "the forward, attack and backward; the optimiser and the EMA stayed eager"


def gpu_section(g: dict, on_gpu: bool = False) -> list:
    out = []
    prec = g.get("precision", {})
    out += [f"{g['device']}: {g['model']}, {g['data']}, seconds per epoch of {g['epoch_images']:,} images "
            f"(extrapolated from timed steps). fp32 rows use PyTorch's defaults (cuDNN TF32 convolutions: "
            f"{prec.get('cudnn_allow_tf32')}; TF32 matrix products: {prec.get('matmul_allow_tf32')}); bf16 rows "
            "autocast the model's passes (the attack's included) to bfloat16.", "",
            "Floating-point floor: one step's conv and linear FLOPs (torch.utils.flop_counter, batch 128: "
            + ", ".join(f"{m} {v:.2f} TFLOP" for m, v in g["step_tflop_batch128"].items())
            + f") over this card's measured bf16 matrix-product rate ({g['matmul_tflops']['bf16']:.0f} TFLOP/s; "
            + f"fp32 {g['matmul_tflops']['fp32']:.0f}): "
            + ", ".join(f"{m} {v:.2f} s/epoch" for m, v in g["floor_s_per_epoch_bf16"].items())
            + f". The issue's estimate: {g['estimated_limit']}.", "",
            *(["Share of the wall time the GPU spends in kernels (eager, bf16, channels_last, batch 128; torch "
               "profiler): " + ", ".join(f"{m} {v}" for m, v in g["gpu_busy_share_eager_bf16_batch128"].items())
               + ". Below 1, the step waits on the host: Python, kernel launches, the attack's small kernels.", ""]
              if g.get("gpu_busy_share_eager_bf16_batch128") else []),
            *(["The same share for the train.fast step (bf16, channels_last, batch 128): "
               + "; ".join(f"{path}: " + ", ".join(f"{m} {v}" for m, v in shares.items())
                           for path, shares in g["gpu_busy_share_fast_bf16_batch128"].items())
               + " (a captured graph's kernels are counted where the profiler sees them inside a replay).", ""]
              if g.get("gpu_busy_share_fast_bf16_batch128") else []),
            "Step: plain is the method's loss, backward and optimiser step on batches already on the card; fast is "
            "train.fast (regmix/training/step.py: uint8 data on the card, augmentation there, sums kept on the card, "
            "no host read, the recipes' SGD and EMA); graph is fast captured once as a CUDA graph and replayed "
            f"({g.get('graph_step', OLD_GRAPH_STEP)}).", "",
            "| method | step | dtype | compile | channels_last | batch | s/epoch | TFLOP/s achieved | warm-up s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in g["rows"]:
        head = (f"| {r['method']} | {r.get('path', 'plain')} | {r['dtype']} | {r['compile']} | {r['channels_last']} | "
                f"{r.get('batch', 128)} |")
        if "skipped" in r:
            out.append(f"{head} not measured: {r['skipped']} | | |")
        else:
            out.append(f"{head} {r['seconds_per_epoch']:.1f} | {r.get('tflops_achieved', float('nan')):.0f} | "
                       f"{r['warmup_s']:.1f} |")
    out += ["", *targets_table(g["targets"]), "", *_gpu_reading(g)]
    if "graph_step" not in g:
        out += ["", "**Waiting for a GPU lease:** this record's graph rows predate the capture of the whole step (the "
                "optimiser's and the EMA's updates inside the graph); `bash benchmarks/gpu_lease.sh` measures it, "
                "after checking the captured step against the eager one (`python -m benchmarks.graph_check`)."]
    return out


def _gpu_reading(g: dict) -> list:
    """What the GPU table says, with its numbers taken from the record."""
    timed = [r for r in g["rows"] if "seconds_per_epoch" in r]
    best = {}
    for r in timed:
        key = (r["method"], r.get("batch", 128))
        if key not in best or r["seconds_per_epoch"] < best[key]["seconds_per_epoch"]:
            best[key] = r
    floor = g["floor_s_per_epoch_bf16"]

    def describe(method, batch):
        r = best.get((method, batch))
        if r is None:
            return f"{method} at batch {batch}: not measured"
        return (f"{method} at batch {batch}: {r['seconds_per_epoch']:.1f} s/epoch ({r.get('path', 'plain')} step, "
                f"{r['dtype']}, compile {r['compile']}, "
                f"channels_last {r['channels_last']}), {r['seconds_per_epoch'] / floor[method]:.1f}x its floor of "
                f"{floor[method]:.2f} s")
    batches = sorted({b for _, b in best})
    lines = ["Reading the table. Best configurations: " + "; ".join(describe(m, b) for b in batches for m in floor) + "."]
    busy = g.get("gpu_busy_share_eager_bf16_batch128") or {}
    small, large = best.get(("pgd_at", batches[0])), best.get(("pgd_at", batches[-1]))
    speedup = small["seconds_per_epoch"] / large["seconds_per_epoch"] if small and large and small is not large else None
    # the busy share is the plain eager step's: read it with that step's own rate
    plain_small = min((r for r in timed if r["method"] == "pgd_at" and r.get("batch", 128) == batches[0]
                       and r.get("path", "plain") == "plain" and not r["compile"]),
                      key=lambda r: r["seconds_per_epoch"], default=None)
    at_first = [r for r in timed if r["method"] == "pgd_at" and r.get("batch", 128) == batches[0]]
    compiled = min((r["seconds_per_epoch"] for r in at_first if r["compile"]), default=None)
    eager = min((r["seconds_per_epoch"] for r in at_first if not r["compile"]), default=None)
    lines += ["", "At the recipe's batch of 128 the plain step is bound by its size, not by the card's arithmetic: a "
              "ResNet-18 pass over 128 CIFAR images gives each kernel too little work to fill the card, and the "
              "10 attack iterations are strings of such kernels with the host (Python, launches) between them"
              + (f" (the card is busy {100 * busy['pgd_at']:.0f}% of a PGD-10 step's wall time, and at "
                 f"{plain_small['tflops_achieved']:.0f} TFLOP/s over the whole step its kernels run far below the "
                 "matrix-product rate)" if isinstance(busy.get("pgd_at"), float) and plain_small
                 and "tflops_achieved" in plain_small else "")
              + "." + (f" The same epoch at batch {batches[-1]} takes {speedup:.1f}x less time (best against best): more "
                       "work per launch, the mark of a launch-bound step." if speedup else "")
              + " torch.compile compiles the model's forward only: the attack loop, its autograd.grad calls and the "
              "method's prior stay eager, and the input's requires_grad differs between the attack's passes and the "
              "training pass (two graphs)" + (f"; at batch {batches[0]} PGD-10 AT's best compiled row takes "
                                             f"{compiled:.1f} s/epoch against {eager:.1f} eager" if compiled and eager else "")
              + "." + _graph_reading(g, timed)]
    return lines


def _graph_reading(g: dict, timed: list) -> str:
    """What capturing the step as a CUDA graph changed, from the record's plain and graph rows."""
    def best(method, batch, path):
        return min((r["seconds_per_epoch"] for r in timed if r["method"] == method and r.get("batch", 128) == batch
                    and r.get("path", "plain") == path), default=None)
    plain, graph = best("pgd_at", 128, "plain"), best("pgd_at", 128, "graph")
    if not (plain and graph):
        return " Capturing the whole step as one CUDA graph (train.fast on CUDA) was not measured in this record."
    busy = (g.get("gpu_busy_share_fast_bf16_batch128") or {}).get("graph", {})
    regmix = best("regmix", 128, "plain"), best("regmix", 128, "graph")
    return (f" Captured as one CUDA graph (train.fast replayed with one launch; captured: "
            f"{g.get('graph_step', OLD_GRAPH_STEP)}), PGD-10 AT's epoch at batch 128 takes {plain / graph:.1f}x less time "
            f"({plain:.1f} to {graph:.1f} s)"
            + (f" and RegMix's {regmix[0] / regmix[1]:.1f}x ({regmix[0]:.1f} to {regmix[1]:.1f} s)" if all(regmix) else "")
            + (f"; the card is then busy {100 * busy['pgd_at']:.0f}% (pgd_at) and {100 * busy['regmix']:.0f}% "
               "(regmix) of the step's wall time" if isinstance(busy.get("pgd_at"), float)
               and isinstance(busy.get("regmix"), float) else "")
            + ". What is left at batch 128 is mostly the card's own work on small kernels (the achieved TFLOP/s column "
            "against the matrix-product rate): bf16 convolutions over 128 images of 32 x 32 do not reach the "
            "rate that the floor assumes, and " + ("the eager optimiser, EMA, " if "graph_step" not in g else "the ")
            + "batch gather and augmentation between replays leave the card idle the rest of the time (most for "
            "RegMix, whose step is shorter).")
