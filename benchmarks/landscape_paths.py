"""The landscape section's other ways to the same clean weight surface as regmix's weight_landscape:
the plain one, one grid point at a time with the weights written into the model (the path the fast one
replaced; tests/test_landscape.py checks the fast path against it), and, on a GPU, the one-point pass
captured once as a CUDA graph and replayed for each point."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from regmix.diagnostics.landscape import batches_of, evaluation_state, loss_and_accuracy, place_on_plane
from regmix.diagnostics.plane import PlaneSurface
from regmix.modes import model_mode


def plain_weight_landscape(model, x, y, *, coords, directions, batch_size: int = 256, progress=None) -> dict:
    """weight_landscape's clean surface (coords, loss, acc), point by point: theta + a*d1 + b*d2 written
    into the model, then loss_and_accuracy over the batches in eval mode. Weights and mode restored."""
    coords = np.asarray(coords, dtype=float)
    device = next(model.parameters()).device
    batches = batches_of(x.to(device), y.to(device), batch_size)
    d1, d2 = directions
    out = {k: np.zeros((len(coords), len(coords))) for k in ("loss", "acc")}
    with evaluation_state(model) as base:
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                place_on_plane(model, base, d1, d2, float(a), float(b))
                out["loss"][i, j], out["acc"][i, j] = loss_and_accuracy(model, batches)
                if progress is not None:
                    progress(i * len(coords) + j + 1, len(coords) ** 2)
    return {"coords": coords, **out}


def captured_weight_landscape(model, x, y, *, coords, directions, batch_size: int = 256, progress=None) -> dict:
    """weight_landscape's clean surface (coords, loss, acc) with one grid point per replay of a CUDA graph
    that makes the point's weights (PlaneWeights, from a static [a, b]) and runs the clean pass over every
    batch: the host copies [a, b] in, replays, and copies the two sums out, a few launches per point however
    deep the model. CUDA only."""
    coords = np.asarray(coords, dtype=float)
    device = next(model.parameters()).device
    if device.type != "cuda":
        raise ValueError(f"a captured pass needs the model on a CUDA device, not {device}")
    surface = PlaneSurface(model, batches_of(x.to(device), y.to(device), batch_size), *directions, coords)
    grid = surface.grid.to(device)
    point = grid[:1].clone()
    sums = torch.zeros(2, dtype=torch.float64, device=device)

    def body():
        weights = surface.weights_of(point)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        hits = torch.zeros((), dtype=torch.long, device=device)
        for xb, yb in surface.batches:
            logits = surface.call(weights, xb).float()
            # summed per batch in float32 then accumulated in float64, like loss_and_accuracy
            loss_sum += F.cross_entropy(logits, yb, reduction="none").sum().double()
            hits += (logits.argmax(1) == yb).sum()
        sums[0].copy_(loss_sum)
        sums[1].copy_(hits)

    with model_mode(model, training=False), torch.inference_mode():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up outside the capture: cuDNN's choices, lazy initialisation
                body()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()
        for i in range(len(grid)):
            point.copy_(grid[i:i + 1])
            graph.replay()
            surface.total[i].copy_(sums[0])
            surface.correct[i].copy_(sums[1])
            if progress is not None:
                progress(i + 1, len(grid))
    loss, acc = surface.result()
    return {"coords": coords, "loss": loss, "acc": acc}
