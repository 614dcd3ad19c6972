"""The clean loss surface over a plane of weights, theta + a*d1 + b*d2, many grid points per pass: the
fast path of weight_landscape (landscape.py). A pass's weights come from one matrix product over the
flattened parameters (PlaneWeights); the model is called functionally, vmap'd over the stacked
weights, or one point per pass."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

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
                w = torch.stack([to_channels_last(t) for t in w])
            out[name] = w if len(ab) > 1 else w[0]
        return out


def to_channels_last(t: torch.Tensor) -> torch.Tensor:
    """t in the channels-last layout with channels-last strides even where it has a single channel.
    `contiguous(memory_format=channels_last)` leaves a one-channel tensor as it is (its layout satisfies
    both formats), and oneDNN then reads it, and the first convolution's output, as the plain layout,
    which the next convolution copies back to channels-last at every grid point; `to(memory_format=...)`
    gives it channels-last strides, so every convolution stays channels-last."""
    return t.to(memory_format=torch.channels_last)


# a CUDA pass over many grid points holds (points x batch) images' activations at once: at most this many
POINT_IMAGES_PER_PASS_CUDA = 32_768


class PlaneSurface:
    """One clean surface in the making: the model called functionally (torch.func.functional_call) with
    a grid point's weights (weights_of: PlaneWeights), so that its own parameters are never written; the
    grid of (a, b) points in row order, and the per-point sums, kept on the device until result().
    On a CPU, 4-d weights and inputs go channels-last, which oneDNN's convolutions run faster."""

    def __init__(self, model, batches, d1, d2, coords):
        base = {name: p.detach() for name, p in model.named_parameters()}
        self.model, self.buffers = model, dict(model.named_buffers())
        channels_last = all(xb.dim() == 4 and not xb.is_cuda for xb, _ in batches)
        if channels_last:
            batches = [(to_channels_last(xb), yb) for xb, yb in batches]
        self.batches = batches
        self.device = batches[0][0].device
        self.side = len(coords)
        self.grid = torch.tensor([[a, b] for a in coords for b in coords], dtype=torch.float64)
        self.n = sum(len(yb) for _, yb in batches)
        self.total = torch.zeros(len(self.grid), dtype=torch.float64, device=self.device)
        self.correct = torch.zeros(len(self.grid), dtype=torch.long, device=self.device)
        self.weights_of = PlaneWeights(base, d1, d2, channels_last)

    def call(self, weights, xb):
        return functional_call(self.model, (weights, self.buffers), (xb,))

    def result(self):
        """(loss, acc), each (G, G) indexed [a, b]: the means over the points of every batch."""
        shape = (self.side, self.side)
        loss = (self.total / self.n).cpu().numpy()
        acc = (self.correct.double() / self.n).cpu().numpy()
        return loss.reshape(shape), acc.reshape(shape)


def batched_clean_surface(model, batches, d1, d2, coords, points_per_batch, progress=None):
    """Clean loss and accuracy at every grid point, points_per_batch points per forward pass.

    The model is called functionally with the grid point's weights (PlaneSurface); with several points
    per pass, vmap maps the call over the stacked weights (PlaneWeights: one matrix product makes a
    pass's weights). Inference mode, eval mode (BatchNorm uses its running statistics, as when the
    weights are written into the model).
    """
    surface = PlaneSurface(model, batches, d1, d2, coords)
    with model_mode(model, training=False), torch.inference_mode():
        for start in range(0, len(surface.grid), points_per_batch):
            ab = surface.grid[start:start + points_per_batch]
            k = len(ab)
            weights = surface.weights_of(ab.to(surface.device))
            forward = surface.call if k == 1 else vmap(surface.call, in_dims=(0, None))
            for xb, yb in surface.batches:
                logits = forward(weights, xb).float().reshape(k, len(yb), -1)
                per = F.cross_entropy(logits.flatten(0, 1), yb.repeat(k), reduction="none").view(k, -1)
                # summed per batch in float32 then accumulated in float64, like loss_and_accuracy
                surface.total[start:start + k] += per.sum(1).double()
                surface.correct[start:start + k] += (logits.argmax(2) == yb).sum(1)
            if progress is not None:
                progress(start + k, len(surface.grid))
    return surface.result()
