"""The Hessian of the mean cross-entropy beyond its top eigenvalue: its trace (Hutchinson's estimator)
and its eigenvalue density (stochastic Lanczos quadrature), from Hessian-vector products.

The quantities are those of PyHessian (Yao et al. 2020); the code is written here from the methods:

- Hutchinson (1990): tr(H) = E[z^T H z] for z with independent +-1 entries; the mean over `samples`
  draws, with its standard error.
- Stochastic Lanczos quadrature (Golub & Welsch 1969; Ubaru, Chen & Saad 2017; Ghorbani, Krishnan & Xiao
  2019): m Lanczos steps from a random unit vector v give a tridiagonal T whose eigenvalues theta_j
  (Ritz values) and first eigenvector components tau_j = U[0, j]^2 are the nodes and weights of a
  Gauss quadrature of v's spectral measure; averaged over `runs` vectors, sum_j tau_j delta(t -
  theta_j) estimates the density of the Hessian's eigenvalues (each run's weights sum to 1). Lanczos
  here reorthogonalises fully (the vectors are kept), so a run of m >= dim steps gives the exact
  eigenvalues.

hessian_top_eigenvalue (power iteration) stays in regmix.diagnostics.landscape.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..modes import model_mode


def hessian_operator(model, x, y, *, batch_size: int = 256):
    """(hvp, dim): hvp(v) = H v for a flat vector v over the trainable parameters, H the Hessian of
    the mean cross-entropy of model over (x, y) (eval mode, in batches: the same H for any batch size)."""
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    x, y = x.to(device), y.to(device)
    n = len(y)
    sizes = [p.numel() for p in params]

    def hvp(v: torch.Tensor) -> torch.Tensor:
        parts = [t.view_as(p) for t, p in zip(torch.split(v.to(device), sizes), params)]
        out = torch.zeros(sum(sizes), dtype=v.dtype, device=device)
        with model_mode(model, training=False):
            for start in range(0, n, batch_size):
                xb, yb = x[start:start + batch_size], y[start:start + batch_size]
                with torch.enable_grad():
                    loss = F.cross_entropy(model(xb).float(), yb) * (len(yb) / n)
                    grads = torch.autograd.grad(loss, params, create_graph=True)
                    dot = sum((g * t).sum() for g, t in zip(grads, parts))
                    out += torch.cat([h.reshape(-1) for h in torch.autograd.grad(dot, params)]).to(out.dtype)
        return out

    return hvp, sum(sizes)


def hutchinson_trace(hvp, dim: int, *, samples: int = 50, seed: int = 0) -> dict:
    """tr(H) by Hutchinson's estimator with Rademacher vectors. Returns {'trace', 'std_error',
    'samples'} (std_error: of the mean over the samples)."""
    if samples < 1:
        raise ValueError(f"samples: must be >= 1, got {samples}")
    generator = torch.Generator().manual_seed(int(seed))
    values = []
    for _ in range(samples):
        z = torch.randint(0, 2, (dim,), generator=generator).to(torch.float32) * 2 - 1
        values.append(float(torch.dot(z, hvp(z).cpu())))
    spread = float(np.std(values, ddof=1)) / math.sqrt(samples) if samples > 1 else float("nan")
    return {"trace": float(np.mean(values)), "std_error": spread, "samples": samples}


def lanczos(hvp, dim: int, steps: int, *, start: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The tridiagonal of `steps` Lanczos iterations from `start` (normalised here), with full
    reorthogonalisation: (alphas (k,), betas (k-1,)), k <= steps (fewer when the Krylov space closes)."""
    v = start.to(torch.float64)
    v = v / v.norm()
    basis, alphas, betas = [v], [], []
    for k in range(min(steps, dim)):
        w = hvp(basis[-1].to(torch.float32)).cpu().to(torch.float64)
        alpha = float(torch.dot(w, basis[-1]))
        alphas.append(alpha)
        for _ in range(2):  # twice is enough (Kahan-Parlett)
            for b in basis:
                w = w - torch.dot(w, b) * b
        beta = float(w.norm())
        if k == min(steps, dim) - 1 or beta < 1e-10 * max(1.0, abs(alpha)):
            break
        betas.append(beta)
        basis.append(w / beta)
    return np.array(alphas), np.array(betas)


def eigenvalue_density(hvp, dim: int, *, steps: int = 30, runs: int = 4, seed: int = 0,
                       points: int = 200, width: float | None = None) -> dict:
    """Stochastic Lanczos quadrature of the Hessian's eigenvalue density.

    Returns {'nodes', 'weights'} (lists of per-run arrays: Ritz values and their weights, each run's
    weights summing to 1), 'grid' and 'density' (the nodes smoothed by Gaussians of std `width`,
    default 1% of the spectrum's span; integrates to about 1 over the grid), 'min' and 'max' (the
    extreme Ritz values: the spectrum's edges, which Lanczos finds first)."""
    if steps < 1 or runs < 1:
        raise ValueError(f"steps, runs: must be >= 1, got {steps}, {runs}")
    generator = torch.Generator().manual_seed(int(seed))
    nodes, weights = [], []
    for _ in range(runs):
        start = torch.randint(0, 2, (dim,), generator=generator).to(torch.float64) * 2 - 1
        alphas, betas = lanczos(hvp, dim, steps, start=start)
        t = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        theta, u = np.linalg.eigh(t)
        nodes.append(theta)
        weights.append(u[0] ** 2)
    grid, density, width = _smooth(nodes, weights, points=points, width=width, share=0.01)
    every = np.concatenate(nodes)
    return {"nodes": nodes, "weights": weights, "grid": grid, "density": density, "min": float(every.min()),
            "max": float(every.max()), "width": width, "steps": steps, "runs": runs}


def _smooth(nodes, weights, *, points: int, width, share: float):
    """The quadrature's point masses as a density: Gaussians of std `width` (default: `share` of the
    nodes' span), averaged over runs. Returns (grid, density, width)."""
    every = np.concatenate(nodes)
    low, high = float(every.min()), float(every.max())
    span = max(high - low, 1e-12 * max(1.0, abs(high)))
    width = width if width is not None else share * span
    grid = np.linspace(low - 5 * width, high + 5 * width, points)
    density = sum((np.asarray(w)[:, None] * np.exp(-0.5 * ((grid[None] - np.asarray(n)[:, None]) / width) ** 2)).sum(0)
                  for n, w in zip(nodes, weights))
    return grid, density / (len(nodes) * width * math.sqrt(2 * math.pi)), width


def hessian_spectrum(model, x, y, *, samples: int = 20, steps: int = 20, runs: int = 2, seed: int = 0,
                     batch_size: int = 256) -> dict:
    """The numbers a landscape record keeps: {'trace', 'trace_std_error', 'trace_samples', 'min',
    'max', 'nodes' (runs x k), 'weights' (runs x k), 'lanczos_steps', 'runs'} of the Hessian of the
    mean cross-entropy over (x, y); lists, for JSON."""
    hvp, dim = hessian_operator(model, x, y, batch_size=batch_size)
    trace = hutchinson_trace(hvp, dim, samples=samples, seed=seed)
    density = eigenvalue_density(hvp, dim, steps=steps, runs=runs, seed=seed + 1)
    return {"trace": trace["trace"], "trace_std_error": trace["std_error"], "trace_samples": samples,
            "min": density["min"], "max": density["max"],
            "nodes": [n.tolist() for n in density["nodes"]], "weights": [w.tolist() for w in density["weights"]],
            "lanczos_steps": steps, "runs": runs}


def density_from_record(spectrum: dict, *, points: int = 200, width: float | None = None) -> tuple:
    """(grid, density) smoothed from a record's nodes and weights (hessian_spectrum's)."""
    grid, density, _ = _smooth(spectrum["nodes"], spectrum["weights"], points=points, width=width, share=0.02)
    return grid, density
