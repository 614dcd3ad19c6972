"""(4) Weight landscape: regmix's fast path against loss-landscapes' planar_interpolation (and against the
plain path it replaced, landscape_paths.py), on the same grid, data and directions."""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from regmix.diagnostics.landscape import random_plane, weight_landscape

from .fixtures import digits
from .landscape_paths import captured_weight_landscape, plain_weight_landscape
from .profiling import profile_shares
from .timing import alternate, full_fp32, ratio, target


def run(model, scale, device="cpu", log=print) -> dict:
    import loss_landscapes  # the dev extra's comparison tool: the other sections run without it
    from loss_landscapes.metrics import Loss

    x, y, _ = digits("test", scale.landscape_points)
    x, y = x.to(device), y.to(device)
    steps = scale.landscape_steps
    d1, d2 = random_plane(model, seed=0)
    end_one, end_two = copy.deepcopy(model), copy.deepcopy(model)
    with torch.no_grad():
        for p1, p2, u, v in zip(end_one.parameters(), end_two.parameters(), d1, d2):
            p1.add_(u)
            p2.add_(v)
    coords = np.arange(steps) / steps  # planar_interpolation's grid: start + (i/steps) * (end - start)
    metric = Loss(F.cross_entropy, x, y)
    surfaces = {}
    model.eval()

    def theirs():
        surfaces["loss_landscapes"] = loss_landscapes.planar_interpolation(model, end_one, end_two, metric,
                                                                          steps=steps, deepcopy_model=True)

    def ours_fast():
        surfaces["regmix_fast"] = weight_landscape(model, x, y, coords=coords, directions=(d1, d2),
                                                   batch_size=len(y))["loss"]

    def ours_fast_loop():  # one grid point per pass (no vmap): on a GPU, the alternative to batching points
        surfaces["regmix_fast_loop"] = weight_landscape(model, x, y, coords=coords, directions=(d1, d2),
                                                        batch_size=len(y), points_per_batch=1)["loss"]

    def ours_fast_graph():  # one grid point per replay of a captured pass
        surfaces["regmix_fast_graph"] = captured_weight_landscape(model, x, y, coords=coords, directions=(d1, d2),
                                                                  batch_size=len(y))["loss"]

    def ours_plain():
        surfaces["regmix_plain"] = plain_weight_landscape(model, x, y, coords=coords, directions=(d1, d2),
                                                          batch_size=len(y))["loss"]

    contenders = {"loss_landscapes": theirs, "regmix_fast": ours_fast, "regmix_plain": ours_plain}
    graph_error = None
    if str(device).startswith("cuda"):  # on a CPU one point per pass is already the fast path's default
        contenders["regmix_fast_loop"] = ours_fast_loop
        try:  # a capture that fails is recorded, not allowed to end the section
            ours_fast_graph()
            contenders["regmix_fast_graph"] = ours_fast_graph
        except Exception as exc:
            graph_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            log(f"[landscape] captured one-point pass failed: {graph_error}")
    timings = alternate(contenders, repeats=scale.repeats, warmup=scale.warmup, device=device)
    # Their rows: odd i evaluate j = 0..steps-1 (our columns), even i evaluate j = 1..steps (one
    # column further; the overlap is our columns 1..steps-1). docs: ../shared/docs/stack.md.
    theirs_, fast, plain = surfaces["loss_landscapes"], surfaces["regmix_fast"], surfaces["regmix_plain"]
    gaps = []
    for i in range(steps):
        if i % 2:
            gaps.append(np.abs(theirs_[i] - fast[i]).max())
        elif steps > 1:
            gaps.append(np.abs(theirs_[i, :steps - 1] - fast[i, 1:]).max())
    gap = float(max(gaps))
    # fast == plain is a check of the implementation, so on CUDA it is made with TF32 convolutions off:
    # with them on (PyTorch's default for cuDNN) each path moves by ~8e-4 from its fp32 value and the two
    # differ by 3.5e-4 (H200, 2026-11-26), with them off by 4.8e-7. The timings keep the default.
    with full_fp32(device):
        ours_fast(), ours_plain()
        exact_fast, exact_plain = surfaces["regmix_fast"], surfaces["regmix_plain"]
        if "regmix_fast_graph" in contenders:
            ours_fast_graph()
            exact_graph = surfaces["regmix_fast_graph"]
    profile = {"regmix_fast": profile_shares(ours_fast), "loss_landscapes": profile_shares(theirs)}
    out = {"profile": profile, "grid": f"{steps} x {steps}", "points": len(y), "batch": len(y), "timings": timings,
           "targets": [target("regmix fast speed / loss-landscapes speed", ratio(timings, "loss_landscapes", "regmix_fast"),
                              ">=", 1.5 if not str(device).startswith("cuda") else 5.0)],
           "fast_vs_plain_speedup": ratio(timings, "regmix_plain", "regmix_fast"),
           **({"one_point_per_pass_vs_loss_landscapes": ratio(timings, "loss_landscapes", "regmix_fast_loop"),
               "captured_point_vs_loss_landscapes": ratio(timings, "loss_landscapes", "regmix_fast_graph")}
              if "regmix_fast_graph" in timings else {}),
           **({"captured_point_error": graph_error} if graph_error else {}),
           "max_abs_gap_vs_loss_landscapes": gap,
           "max_abs_gap_fast_vs_plain": float(np.abs(exact_fast - exact_plain).max()),
           **({"max_abs_gap_captured_vs_plain": float(np.abs(exact_graph - exact_plain).max())}
              if "regmix_fast_graph" in contenders else {}),
           "max_abs_gap_fast_vs_plain_default_precision": float(np.abs(fast - plain).max()),
           "checks": {"agrees_with_loss_landscapes": gap <= 1e-4 * max(1.0, float(np.abs(fast).max())),
                      "fast_equals_plain": bool(np.allclose(exact_fast, exact_plain, rtol=1e-5, atol=0))}}
    log(f"[landscape] loss-landscapes {timings['loss_landscapes']['median_s']:.3f}s, fast "
        f"{timings['regmix_fast']['median_s']:.3f}s, plain {timings['regmix_plain']['median_s']:.3f}s, gap {gap:.2g}")
    return out
