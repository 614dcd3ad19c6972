"""regmix.diagnostics.hessian against the exact Hessian of a model small enough to write it out."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

from regmix.diagnostics import hessian as H
from regmix.diagnostics.landscape import hessian_top_eigenvalue


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))       # 43 parameters
    x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).double()

    def loss(theta):
        parts, start = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            parts[name] = theta[start:start + size].view(shape)
            start += size
        return nn.functional.cross_entropy(functional_call(model.double(), parts, (x.double(),)), y)

    exact = torch.autograd.functional.hessian(loss, flat).numpy()
    model.float()
    return model, x, y, exact


def test_hessian_vector_products_are_the_exact_hessians_columns(tiny):
    model, x, y, exact = tiny
    hvp, dim = H.hessian_operator(model, x, y, batch_size=16)   # in batches: the same H
    assert dim == exact.shape[0] == 43
    for i in (0, 7, 42):
        e = torch.zeros(dim)
        e[i] = 1
        np.testing.assert_allclose(hvp(e).numpy(), exact[:, i], atol=2e-5)


def test_hutchinson_trace_matches_the_exact_trace(tiny):
    model, x, y, exact = tiny
    hvp, dim = H.hessian_operator(model, x, y)
    est = H.hutchinson_trace(hvp, dim, samples=400, seed=1)
    truth = float(np.trace(exact))
    # unbiased, with the standard error it reports; Rademacher variance is 2 * sum of off-diagonal H_ij^2
    expected_se = np.sqrt(2 * ((exact ** 2).sum() - (np.diag(exact) ** 2).sum()) / 400)
    assert abs(est["trace"] - truth) < 4 * expected_se
    assert est["std_error"] == pytest.approx(expected_se, rel=0.25)
    with pytest.raises(ValueError, match="samples"):
        H.hutchinson_trace(hvp, dim, samples=0)


def test_lanczos_quadrature_has_unit_mass_on_the_exact_spectrum(tiny):
    model, x, y, exact = tiny
    eig = np.linalg.eigvalsh(exact)
    hvp, dim = H.hessian_operator(model, x, y)
    full = H.eigenvalue_density(hvp, dim, steps=dim, runs=2, seed=3)        # m = dim: every eigenvalue
    for nodes, weights in zip(full["nodes"], full["weights"]):
        assert weights.sum() == pytest.approx(1.0, abs=1e-9) and np.all(weights >= 0)
        assert nodes.min() >= eig.min() - 1e-4 and nodes.max() <= eig.max() + 1e-4   # inside the support
    assert full["min"] == pytest.approx(eig.min(), abs=1e-4) and full["max"] == pytest.approx(eig.max(), abs=1e-4)
    mass = np.trapezoid(full["density"], full["grid"]) if hasattr(np, "trapezoid") else np.trapz(full["density"], full["grid"])
    assert mass == pytest.approx(1.0, abs=1e-3)
    short = H.eigenvalue_density(hvp, dim, steps=12, runs=3, seed=4)
    assert eig.min() - 1e-4 <= short["min"] and short["max"] <= eig.max() + 1e-4
    assert short["max"] == pytest.approx(eig.max(), rel=1e-2)                # Lanczos finds the edge first
    top = hessian_top_eigenvalue(model, x, y, iters=200, tol=1e-7)["eigenvalue"]
    assert max(abs(eig.min()), abs(eig.max())) == pytest.approx(abs(top), rel=1e-3)


def test_the_record_form_smooths_back_to_a_density(tiny):
    model, x, y, _ = tiny
    spectrum = H.hessian_spectrum(model, x, y, samples=5, steps=6, runs=2)
    assert set(spectrum) >= {"trace", "trace_std_error", "min", "max", "nodes", "weights"}
    assert all(isinstance(n, list) for n in spectrum["nodes"])
    grid, density = H.density_from_record(spectrum)
    assert np.all(density >= 0) and grid[0] < spectrum["min"] < spectrum["max"] < grid[-1]
