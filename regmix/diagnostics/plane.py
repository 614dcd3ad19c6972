"""The clean loss surface over a plane of weights, theta + a*d1 + b*d2, many grid points per pass: the
fast path of weight_landscape (landscape.py). A pass's weights come from one matrix product over the
flattened parameters (PlaneWeights); the model is called functionally, vmap'd over the stacked
weights, or one point per pass (on a GPU optionally captured once as a CUDA graph and replayed)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..modes import model_mode


class PlaneWeights:
    """The weights theta + a*d1 + b*d2 of many grid points (a, b), made by one matrix product over the
    flattened parameters, [a b] @ [d1; d2] + theta, then viewed as one stacked tensor per parameter
    (the leading dimension is the point's, which vmap maps over). The same sums as writing each point's
    weights into the model, to float32 rounding (tests/test_landscape.py)."""

    def __init__(self, base: dict, d1, d2, channels_last: bool):
        self.names = list(base)
        self.shapes = [w.shape for w in base.values()]
        self.flat = torch.cat([w.reshape(-1) for w in base.values()])
        self.plane = torch.stack([torch.cat([u.reshape(-1) for u in d1]), torch.cat([v.reshape(-1) for v in d2])])
        self.channels_last = channels_last

    def __call__(self, ab: torch.Tensor) -> dict:
        stacked = torch.addmm(self.flat, ab.to(self.plane), self.plane)  # (points, parameters)
        out, start = {}, 0
        for name, shape in zip(self.names, self.shapes):
            n = shape.numel()
            w = stacked[:, start:start + n].reshape(len(ab), *shape)
            start += n
            if self.channels_last and w.dim() == 5:
                w = torch.stack([t.contiguous(memory_format=torch.channels_last) for t in w])
            out[name] = w if len(ab) > 1 else w[0]
        return out


# a CUDA pass over many grid points holds (points x batch) images' activations at once: at most this many
POINT_IMAGES_PER_PASS_CUDA = 32_768


def _captured_points(call, weights_of, batches, grid, total, correct, progress=None):
    """One grid point per replay of a CUDA graph that makes the point's weights (PlaneWeights, from a
    static [a, b]) and runs the clean pass over every batch: the host copies [a, b] in, replays, and
    copies the two sums out, a few launches per point however deep the model."""
    device = total.device
    grid = grid.to(device)
    point = grid[:1].clone()
    sums = torch.zeros(2, dtype=torch.float64, device=device)

    def body():
        weights = weights_of(point)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        hits = torch.zeros((), dtype=torch.long, device=device)
        for xb, yb in batches:
            logits = call(weights, xb).float()
            # summed per batch in float32 then accumulated in float64, like loss_and_accuracy
            loss_sum += F.cross_entropy(logits, yb, reduction="none").sum().double()
            hits += (logits.argmax(1) == yb).sum()
        sums[0].copy_(loss_sum)
        sums[1].copy_(hits)

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
        total[i].copy_(sums[0])
        correct[i].copy_(sums[1])
        if progress is not None:
            progress(i + 1, len(grid))


def batched_clean_surface(model, batches, d1, d2, coords, points_per_batch, progress=None, cuda_graph=False):
    """Clean loss and accuracy at every grid point, points_per_batch points per forward pass.

    The model is called functionally (torch.func.functional_call) with the grid point's weights, so
    its own parameters are never written; with several points per pass, vmap maps the call over the
    stacked weights (PlaneWeights: one matrix product makes a pass's weights). Inference mode, eval mode
    (BatchNorm uses its running statistics, as in the plain path). The sums stay on the device until the
    surface is done. On a CPU, 4-d weights and inputs go channels-last, which oneDNN's convolutions run
    faster.
    """
    from torch.func import functional_call, vmap  # torch.func loads functorch: only the landscape needs it

    base = {name: p.detach() for name, p in model.named_parameters()}
    buffers = {name: b for name, b in model.named_buffers()}
    channels_last = all(xb.dim() == 4 and not xb.is_cuda for xb, _ in batches)
    if channels_last:
        batches = [(xb.contiguous(memory_format=torch.channels_last), yb) for xb, yb in batches]
    device = batches[0][0].device
    grid = torch.tensor([[a, b] for a in coords for b in coords], dtype=torch.float64)
    n = sum(len(yb) for _, yb in batches)
    total = torch.zeros(len(grid), dtype=torch.float64, device=device)
    correct = torch.zeros(len(grid), dtype=torch.long, device=device)
    weights_of = PlaneWeights(base, d1, d2, channels_last)

    def call(weights, xb):
        return functional_call(model, (weights, buffers), (xb,))

    with model_mode(model, training=False), torch.inference_mode():
        captured = cuda_graph and points_per_batch == 1 and device.type == "cuda"
        if captured:
            _captured_points(call, weights_of, batches, grid, total, correct, progress)
        for start in range(0, 0 if captured else len(grid), points_per_batch):
            ab = grid[start:start + points_per_batch]
            k = len(ab)
            weights = weights_of(ab.to(device))
            forward = call if k == 1 else vmap(call, in_dims=(0, None))
            for xb, yb in batches:
                logits = forward(weights, xb).float().reshape(k, len(yb), -1)
                per = F.cross_entropy(logits.flatten(0, 1), yb.repeat(k), reduction="none").view(k, -1)
                # summed per batch in float32 then accumulated in float64, like loss_and_accuracy
                total[start:start + k] += per.sum(1).double()
                correct[start:start + k] += (logits.argmax(2) == yb).sum(1)
            if progress is not None:
                progress(start + k, len(grid))
    shape = (len(coords), len(coords))
    loss = (total / n).cpu().numpy()
    acc = (correct.double() / n).cpu().numpy()
    return loss.reshape(shape), acc.reshape(shape)
