"""Loss landscapes as arrays: weight space (Li et al. 2018), checkpoint interpolation (Goodfellow et
al. 2015), input space per example, and two smoothness numbers (Hessian top eigenvalue, surface
sharpness).

Every function evaluates with the model in eval mode (BatchNorm uses its running statistics, so a
grid point's value does not depend on the batch) and leaves the model's weights and mode as it found
them, also when interrupted.
"""
from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..modes import model_mode
from ..registry import ConfigError
from .plane import POINT_IMAGES_PER_PASS_CUDA, batched_clean_surface

AttackFactory = Callable[[torch.nn.Module], Callable]


# ---------------------------------------------------------------- directions


def filter_normalized_direction(model: torch.nn.Module, *, generator: Optional[torch.Generator] = None,
                                include_bias_bn: bool = False) -> list[torch.Tensor]:
    """A Gaussian direction with one tensor per parameter, rescaled filter by filter so that each
    filter's direction has the norm of the filter's weights (Li et al. 2018, Sec. 4).

    A filter is a slice along the first dimension (a conv output channel, a linear layer's row).
    One-dimensional parameters (biases, BatchNorm scale and shift) get a zero direction, as in Li et
    al.; with include_bias_bn each of their entries is its own filter (|d_i| = |w_i|, random sign).
    """
    directions = []
    for p in model.parameters():
        d = torch.randn(p.shape, generator=generator, dtype=torch.float32).to(p.device, p.dtype)
        if p.dim() <= 1:
            d = d.sign() * p.detach().abs() if include_bias_bn else torch.zeros_like(p)
        else:
            w = p.detach().flatten(1).norm(dim=1)
            scale = w / d.flatten(1).norm(dim=1).clamp_min(1e-12)
            d = d * scale.view(-1, *[1] * (p.dim() - 1))
        directions.append(d)
    return directions


def random_plane(model, seed: int = 0, include_bias_bn: bool = False):
    """Two filter-normalised directions from one seed (reproducible on any device)."""
    generator = torch.Generator().manual_seed(int(seed))
    return (filter_normalized_direction(model, generator=generator, include_bias_bn=include_bias_bn),
            filter_normalized_direction(model, generator=generator, include_bias_bn=include_bias_bn))


@contextmanager
def evaluation_state(model: torch.nn.Module):
    """Eval mode and a copy of the parameters; both are put back on exit, whatever happens inside."""
    saved = [p.detach().clone() for p in model.parameters()]
    with model_mode(model, training=False):
        try:
            yield saved
        finally:
            with torch.no_grad():
                for p, w in zip(model.parameters(), saved):
                    p.copy_(w)


def place_on_plane(model, base, d1, d2, a: float, b: float):
    """Write theta + a*d1 + b*d2 into the model's parameters (base: theta, as evaluation_state saved it)."""
    with torch.no_grad():
        for p, w, u, v in zip(model.parameters(), base, d1, d2):
            p.copy_(w + a * u + b * v)


# ---------------------------------------------------------------- evaluation on a fixed subset


def batches_of(x, y, batch_size):
    """(x, y) cut into consecutive batches of batch_size (the last one shorter)."""
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size)]


def loss_and_accuracy(model, batches, attack: Optional[Callable] = None, seed: int = 0) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over the batches, on clean inputs or on attack(x, y).

    The attack's random start is drawn from `seed` at every call, so that neighbouring grid points
    see the same start and the surface is not speckled by attack noise.
    """
    total_loss, correct, n = 0.0, 0, 0
    devices = [batches[0][0].device] if batches and batches[0][0].is_cuda else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for x, y in batches:
            if attack is not None:
                x = attack(x, y)
            with torch.no_grad():
                logits = model(x).float()
                total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
            n += len(y)
    return total_loss / n, correct / n


def _evaluate_point(model, batches, attack_factory, seed):
    loss, acc = loss_and_accuracy(model, batches)
    out = {"loss": loss, "acc": acc}
    if attack_factory is not None:
        out["adv_loss"], out["adv_acc"] = loss_and_accuracy(model, batches, attack_factory(model), seed)
    return out


def weight_landscape(model, x, y, *, coords: Sequence[float] = None, grid: int = 21, span: float = 1.0,
                     directions=None, seed: int = 0, include_bias_bn: bool = False,
                     attack: Optional[AttackFactory] = None, batch_size: int = 256, progress=None,
                     points_per_batch: Optional[int] = None) -> dict:
    """Loss and accuracy at theta + a*d1 + b*d2 for a, b on a grid (both axes the same coordinates).

    Returns arrays: coords (G,), loss and acc (G, G) indexed [a, b], and adv_loss, adv_acc when an
    attack factory (model -> attack) is given: the attack is run against each perturbed model.

    The clean surface is evaluated functionally (plane.py), points_per_batch grid points per forward
    pass (default 1 on a CPU, where batching points measured no faster; on a GPU as many as
    POINT_IMAGES_PER_PASS_CUDA images' activations allow, the whole grid of a small model). It equals
    writing each point's weights into the model and evaluating it to float32 rounding
    (tests/test_landscape.py: loss within 1e-5 relative). That point-by-point way is taken for the
    adversarial surface (an attack needs a whole model per point) and for a TorchScript model, which
    torch.func cannot call functionally.
    """
    coords = np.linspace(-span, span, grid) if coords is None else np.asarray(coords, dtype=float)
    if points_per_batch is not None and (isinstance(points_per_batch, bool) or int(points_per_batch) < 1):
        raise ConfigError(f"points_per_batch: must be an integer >= 1, got {points_per_batch!r}")
    device = next(model.parameters()).device
    batches = batches_of(x.to(device), y.to(device), batch_size)
    d1, d2 = directions if directions is not None else random_plane(model, seed, include_bias_bn)
    keys = ["loss", "acc"] + (["adv_loss", "adv_acc"] if attack is not None else [])
    out = {k: np.zeros((len(coords), len(coords))) for k in keys}
    total = len(coords) ** 2
    functional = not isinstance(model, torch.jit.ScriptModule)
    if functional:
        if points_per_batch:
            per_batch = int(points_per_batch)
        elif device.type == "cuda":  # as many points per pass as the activations allow
            per_batch = max(1, min(total, POINT_IMAGES_PER_PASS_CUDA // max(1, min(len(y), batch_size))))
        else:
            per_batch = 1
        clean_progress = progress if attack is None else None
        out["loss"], out["acc"] = batched_clean_surface(model, batches, d1, d2, coords, per_batch, clean_progress)
        if attack is None:
            return {"coords": coords, **out}
    with evaluation_state(model) as base:
        for i, a in enumerate(coords):
            for j, b in enumerate(coords):
                place_on_plane(model, base, d1, d2, float(a), float(b))
                if not functional:
                    out["loss"][i, j], out["acc"][i, j] = loss_and_accuracy(model, batches)
                if attack is not None:
                    out["adv_loss"][i, j], out["adv_acc"][i, j] = loss_and_accuracy(model, batches, attack(model),
                                                                                    seed)
                if progress is not None:
                    progress(i * len(coords) + j + 1, total)
    return {"coords": coords, **out}


def interpolate_models(model_a, model_b, x, y, *, steps: int = 21, t_min: float = -0.5, t_max: float = 1.5,
                       attack: Optional[AttackFactory] = None, batch_size: int = 256, seed: int = 0,
                       progress=None) -> dict:
    """Loss and accuracy along (1 - t) * A + t * B (t = 0 is A, t = 1 is B).

    Every floating-point tensor of the state is interpolated, BatchNorm running statistics included,
    so that each point is a consistent model; neither input model is changed.
    """
    sa, sb = model_a.state_dict(), model_b.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ConfigError("interp: the two checkpoints are different architectures; interpolation needs "
                          "the same model (name, width, number of classes)")
    ts = np.linspace(t_min, t_max, steps)
    work = copy.deepcopy(model_a).eval()
    device = next(work.parameters()).device
    batches = batches_of(x.to(device), y.to(device), batch_size)
    keys = ["loss", "acc"] + (["adv_loss", "adv_acc"] if attack is not None else [])
    out = {k: np.zeros(len(ts)) for k in keys}
    for i, t in enumerate(ts):
        mixed = {k: (1 - t) * sa[k] + t * sb[k].to(sa[k].device) if sa[k].is_floating_point() else sa[k]
                 for k in sa}
        work.load_state_dict(mixed)
        for k, v in _evaluate_point(work, batches, attack, seed).items():
            out[k][i] = v
        if progress is not None:
            progress(i + 1, len(ts))
    return {"t": ts, **out}


def input_landscape(model, x, y, *, eps: float, grid: int = 21, span: float = 2.0, seed: int = 0,
                    clip: bool = True, batch_size: int = 1024) -> dict:
    """Per example: the loss over x + eps * (a * u + b * v), u = sign of the input gradient of the
    loss (the FGSM direction), v a random sign direction; a, b in [-span, span] (units of eps).

    Returns coords (G,), loss and correct (N, G, G) indexed [example, a, b], the directions u, v
    (N, ...) and the clean per-example loss. clip keeps the images in [0, 1].
    """
    coords = np.linspace(-span, span, grid)
    device = next(model.parameters()).device
    x, y = x.to(device), y.to(device)
    with model_mode(model, training=False):
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(F.cross_entropy(model(xg).float(), y, reduction="sum"), xg)
        u = grad.sign()
        generator = torch.Generator().manual_seed(int(seed))
        v = (torch.randint(0, 2, x.shape, generator=generator) * 2 - 1).to(device, x.dtype)
        a, b = np.meshgrid(coords, coords, indexing="ij")
        ab = torch.tensor(np.stack([a.ravel(), b.ravel()], 1), dtype=x.dtype, device=device)
        loss = np.zeros((len(y), grid, grid))
        correct = np.zeros((len(y), grid, grid), dtype=bool)
        with torch.no_grad():
            clean = F.cross_entropy(model(x).float(), y, reduction="none").cpu().numpy()
            for n in range(len(y)):
                for start in range(0, len(ab), batch_size):
                    c = ab[start:start + batch_size]
                    pts = x[n] + eps * (c[:, 0].view(-1, *[1] * x[n].dim()) * u[n] +
                                        c[:, 1].view(-1, *[1] * x[n].dim()) * v[n])
                    if clip:
                        pts = pts.clamp(0, 1)
                    logits = model(pts).float()
                    target = y[n].expand(len(c))
                    rows = slice(start, start + len(c))
                    loss.reshape(len(y), -1)[n, rows] = F.cross_entropy(logits, target, reduction="none").cpu().numpy()
                    correct.reshape(len(y), -1)[n, rows] = (logits.argmax(1) == target).cpu().numpy()
    return {"coords": coords, "loss": loss, "correct": correct, "clean_loss": clean,
            "u": u.cpu().numpy(), "v": v.cpu().numpy(), "labels": y.cpu().numpy()}


# ---------------------------------------------------------------- smoothness numbers


def hessian_top_eigenvalue(model, x, y, *, iters: int = 20, tol: float = 1e-3, seed: int = 0,
                           batch_size: int = 256) -> dict:
    """The eigenvalue of largest magnitude of the Hessian of the mean cross-entropy over (x, y) with
    respect to all parameters, by power iteration with Hessian-vector products (Pearlmutter 1994).

    Stops when the estimate changes by less than tol (relative). Returns {'eigenvalue', 'history',
    'converged'}. x may be adversarial examples crafted beforehand (the Hessian of the robust loss
    at fixed inputs).
    """
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    batches = batches_of(x.to(device), y.to(device), batch_size)
    n = len(y)
    generator = torch.Generator().manual_seed(int(seed))
    v = [torch.randn(p.shape, generator=generator).to(p) for p in params]
    norm = math.sqrt(sum(float((t * t).sum()) for t in v))
    v = [t / norm for t in v]
    history, value, converged = [], 0.0, False
    with model_mode(model, training=False):
        for _ in range(iters):
            hv = [torch.zeros_like(p) for p in params]
            for xb, yb in batches:
                with torch.enable_grad():
                    loss = F.cross_entropy(model(xb).float(), yb) * (len(yb) / n)
                    grads = torch.autograd.grad(loss, params, create_graph=True)
                    dot = sum((g * t).sum() for g, t in zip(grads, v))
                    for acc, h in zip(hv, torch.autograd.grad(dot, params)):
                        acc += h.detach()
            new = sum(float((h * t).sum()) for h, t in zip(hv, v))
            norm = math.sqrt(sum(float((h * h).sum()) for h in hv))
            history.append(new)
            if norm == 0:
                value, converged = 0.0, True
                break
            v = [h / norm for h in hv]
            if len(history) > 1 and abs(new - value) <= tol * max(abs(new), 1e-12):
                value, converged = new, True
                break
            value = new
    return {"eigenvalue": value, "history": history, "converged": converged}


def surface_sharpness(coords, loss, *, basin_tol: float = 0.1) -> dict:
    """Numbers that make "smoother" comparable between two 2D surfaces on the same grid.

    max_rise:  the largest loss increase over the grid relative to the centre (sharpness in the
               plane, as Keskar et al.'s measure restricted to it);
    mean_rise: the average increase over the grid;
    curvature: the mean of the two second finite differences at the centre (per unit of the
               coordinate squared);
    basin:     the fraction of grid points whose loss is within basin_tol of the centre's.
    The centre is the grid point nearest to coordinate 0.
    """
    coords, loss = np.asarray(coords, dtype=float), np.asarray(loss, dtype=float)
    c = int(np.argmin(np.abs(coords)))
    centre = loss[c, c]
    out = {"centre": float(centre), "max_rise": float(loss.max() - centre),
           "mean_rise": float((loss - centre).mean()),
           "basin": float((loss <= centre + basin_tol).mean()), "basin_tol": basin_tol}
    if 0 < c < len(coords) - 1:
        h = (coords[c + 1] - coords[c - 1]) / 2
        d2a = (loss[c + 1, c] - 2 * centre + loss[c - 1, c]) / h ** 2
        d2b = (loss[c, c + 1] - 2 * centre + loss[c, c - 1]) / h ** 2
        out["curvature"] = float((d2a + d2b) / 2)
    else:
        out["curvature"] = float("nan")
    return out
