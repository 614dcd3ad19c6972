import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import regmix
from benchmarks.landscape_paths import plain_weight_landscape
from regmix.diagnostics.landscape import (filter_normalized_direction, hessian_top_eigenvalue,
                                          input_landscape, interpolate_models, random_plane,
                                          surface_sharpness, weight_landscape)
from regmix.attacks.specs import attack_factory
from regmix.registry import ConfigError


def tiny_model(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Conv2d(1, 4, 3, padding=1)]
    if bn:
        layers.append(torch.nn.BatchNorm2d(4))
    layers += [torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 10)]
    return torch.nn.Sequential(*layers).eval()


@pytest.fixture(scope="module")
def digits():
    ds = regmix.create_dataset("digits", "test")
    x = torch.stack([ds[i][0] for i in range(48)])
    y = torch.stack([ds[i][1] for i in range(48)])
    return x, y


def direct_loss(model, x, y):
    with torch.no_grad():
        logits = model.eval()(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def test_filter_normalisation_matches_each_filters_norm_and_zeroes_bias_bn():
    model = tiny_model(bn=True)
    with torch.no_grad():
        model[1].weight.uniform_(0.5, 2.0)
        model[1].bias.fill_(0.0)  # an exact zero, which breaks loss-landscapes' own normalisation
    d = filter_normalized_direction(model, generator=torch.Generator().manual_seed(1))
    for p, t in zip(model.parameters(), d):
        if p.dim() > 1:
            assert torch.allclose(t.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5)
            assert not torch.allclose(t, p.detach())
        else:
            assert torch.count_nonzero(t) == 0
    included = filter_normalized_direction(model, generator=torch.Generator().manual_seed(1), include_bias_bn=True)
    bn_scale = included[2]
    assert torch.allclose(bn_scale.abs(), model[1].weight.detach().abs())
    assert torch.isfinite(torch.cat([t.flatten() for t in included])).all()


def test_grid_points_equal_direct_losses_and_weights_are_restored(digits):
    x, y = digits
    model = tiny_model(bn=True)
    model.train()  # the landscape must evaluate in eval mode and restore train mode
    before = copy.deepcopy(model.state_dict())
    d1, d2 = random_plane(model, seed=3)
    coords = np.array([-0.5, 0.0, 0.25, 1.0])
    surface = weight_landscape(model, x, y, coords=coords, directions=(d1, d2), batch_size=20)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the origin is the model itself
    assert surface["loss"][1, 1] == pytest.approx(direct_loss(copy.deepcopy(model), x, y)[0], rel=1e-5)
    # an off-centre point equals a model built by hand with those weights
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p, u, v in zip(other.parameters(), d1, d2):
            p.add_(-0.5 * u + 1.0 * v)
    loss, acc = direct_loss(other, x, y)
    assert surface["loss"][0, 3] == pytest.approx(loss, rel=1e-5)
    assert surface["acc"][0, 3] == pytest.approx(acc)
    assert surface["loss"][0, 3] != pytest.approx(surface["loss"][3, 0], rel=1e-3)  # axes not swapped


def test_adversarial_surface_is_above_the_clean_one_and_restores_weights(digits):
    x, y = digits
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    threat = regmix.ThreatModel("linf", eps=0.1)
    surface = weight_landscape(model, x, y, grid=3, span=0.5, attack=attack_factory("pgd3", threat))
    assert (surface["adv_loss"] >= surface["loss"] - 1e-6).all()
    assert (surface["adv_acc"] <= surface["acc"] + 1e-9).all()
    assert surface["adv_loss"].mean() > surface["loss"].mean()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_weights_restored_when_the_evaluation_fails(digits):
    x, y = digits
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]

    def boom(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        weight_landscape(model, x, y, grid=3, progress=boom)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_loss_landscapes_planar_interpolation_agrees_on_the_same_directions(digits):
    loss_landscapes = pytest.importorskip("loss_landscapes")
    from loss_landscapes.metrics import Loss
    x, y = digits
    model = tiny_model()
    d1, d2 = random_plane(model, seed=5)
    steps = 6
    end_one, end_two = copy.deepcopy(model), copy.deepcopy(model)
    with torch.no_grad():
        for p1, p2, u, v in zip(end_one.parameters(), end_two.parameters(), d1, d2):
            p1.add_(u)
            p2.add_(v)
    theirs = loss_landscapes.planar_interpolation(model, end_one, end_two, Loss(F.cross_entropy, x, y),
                                                  steps=steps, deepcopy_model=True)
    ours = weight_landscape(model, x, y, coords=np.arange(steps + 1) / steps, directions=(d1, d2))["loss"]
    # their row i is at i/steps along d1; even rows step before evaluating (j = 1..steps), odd rows
    # evaluate j = 0..steps-1
    for i in range(steps):
        shift = 1 if i % 2 == 0 else 0
        np.testing.assert_allclose(theirs[i], ours[i, shift:shift + steps], rtol=1e-5, atol=1e-6)
    assert not np.allclose(theirs[0], ours[0, :steps], rtol=1e-3)  # the offset matters


def test_interpolation_ends_are_the_two_models_and_neither_changes(digits):
    x, y = digits
    a, b = tiny_model(0, bn=True), tiny_model(1, bn=True)
    with torch.no_grad():
        b[1].running_mean.fill_(0.3)
    sa, sb = copy.deepcopy(a.state_dict()), copy.deepcopy(b.state_dict())
    line = interpolate_models(a, b, x, y, steps=5, t_min=0.0, t_max=1.0)
    assert line["loss"][0] == pytest.approx(direct_loss(a, x, y)[0], rel=1e-5)
    assert line["loss"][-1] == pytest.approx(direct_loss(b, x, y)[0], rel=1e-5)
    assert all(torch.equal(sa[k], a.state_dict()[k]) and torch.equal(sb[k], b.state_dict()[k]) for k in sa)
    with pytest.raises(ConfigError, match="architectures"):
        interpolate_models(a, tiny_model(bn=False), x, y, steps=3)


def test_input_landscape_centre_is_the_clean_loss_and_gradient_side_rises(digits):
    x, y = digits
    model = tiny_model()
    surface = input_landscape(model, x[:4], y[:4], eps=0.1, grid=5, span=1.0)
    assert surface["loss"].shape == (4, 5, 5)
    per_example = F.cross_entropy(model(x[:4]), y[:4], reduction="none").detach().numpy()
    np.testing.assert_allclose(surface["loss"][:, 2, 2], per_example, rtol=1e-5)
    # the FGSM direction increases the loss to first order
    assert (surface["loss"][:, 3, 2] >= surface["loss"][:, 2, 2] - 1e-6).all()
    assert surface["correct"].dtype == bool


def test_hessian_power_iteration_finds_the_exact_top_eigenvalue(digits):
    x, y = digits
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    y3 = y % 3
    params = list(model.parameters())
    shapes = [p.shape for p in params]

    def loss_of(flat):
        w, b = flat[:192].view(shapes[0]), flat[192:].view(shapes[1])
        return F.cross_entropy(x.flatten(1) @ w.T + b, y3)

    flat = torch.cat([p.detach().flatten() for p in params])
    exact = torch.linalg.eigvalsh(torch.autograd.functional.hessian(loss_of, flat)).abs().max()
    found = hessian_top_eigenvalue(model, x, y3, iters=200, tol=1e-7, batch_size=20)
    assert found["converged"]
    assert found["eigenvalue"] == pytest.approx(float(exact), rel=1e-3)


def test_sharpness_orders_a_sharp_and_a_flat_bowl():
    coords = np.linspace(-1, 1, 11)
    a, b = np.meshgrid(coords, coords, indexing="ij")
    flat, sharp = surface_sharpness(coords, 0.5 * (a ** 2 + b ** 2)), surface_sharpness(coords, 4 * (a ** 2 + b ** 2))
    assert sharp["max_rise"] == pytest.approx(8.0) and flat["max_rise"] == pytest.approx(1.0)
    assert sharp["curvature"] == pytest.approx(8.0) and flat["curvature"] == pytest.approx(1.0)
    assert sharp["basin"] < flat["basin"]


def test_attack_spec_is_validated():
    threat = regmix.ThreatModel("linf", eps=0.1)
    assert attack_factory("none", threat) is None
    assert attack_factory("pgd7", threat)(tiny_model()).threat.steps == 7
    with pytest.raises(ConfigError, match="attack"):
        attack_factory("pgdx", threat)


@pytest.mark.parametrize("points_per_batch", [1, 3, 16])
def test_fast_surface_equals_the_plain_one_point_at_a_time_path(digits, points_per_batch):
    """Tolerance: float32 rounding (the fast path sums per-example losses in another order and runs
    channels-last convolutions on a CPU): loss within 1e-5 relative; accuracy identical here."""
    x, y = digits
    model = tiny_model(bn=True)
    with torch.no_grad():  # BatchNorm statistics that differ from a batch's own: eval mode must be used
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    model.train()
    before = copy.deepcopy(model.state_dict())
    d1, d2 = random_plane(model, seed=2, include_bias_bn=True)
    coords = np.linspace(-0.8, 0.8, 4)
    plain = plain_weight_landscape(model, x, y, coords=coords, directions=(d1, d2), batch_size=20)
    seen = []
    fast = weight_landscape(model, x, y, coords=coords, directions=(d1, d2), batch_size=20,
                            points_per_batch=points_per_batch, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_allclose(fast["loss"], plain["loss"], rtol=1e-5, atol=0)
    np.testing.assert_array_equal(fast["acc"], plain["acc"])
    assert np.ptp(plain["loss"]) > 0.1  # the surface is not flat, so agreement means something
    assert seen[-1] == (16, 16)
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_fast_path_refuses_a_bad_points_per_batch(digits):
    x, y = digits
    with pytest.raises(ConfigError, match="points_per_batch"):
        weight_landscape(tiny_model(), x, y, grid=3, points_per_batch=0)


def test_a_torchscript_model_is_taken_point_by_point_to_the_same_surface(digits):
    """torch.func cannot call a TorchScript module functionally: its clean surface is evaluated with the
    weights written into it, and comes out as the fast path's on the same module in Python."""
    x, y = digits
    model = tiny_model(bn=True)
    d1, d2 = random_plane(model, seed=4, include_bias_bn=True)
    coords = np.linspace(-1.0, 1.0, 3)
    scripted = torch.jit.script(copy.deepcopy(model))
    before = copy.deepcopy(scripted.state_dict())
    script_surface = weight_landscape(scripted, x, y, coords=coords, directions=(d1, d2), batch_size=20)
    fast = weight_landscape(model, x, y, coords=coords, directions=(d1, d2), batch_size=20)
    np.testing.assert_allclose(script_surface["loss"], fast["loss"], rtol=1e-5, atol=0)
    np.testing.assert_array_equal(script_surface["acc"], fast["acc"])
    assert np.ptp(fast["loss"]) > 0.1
    assert all(torch.equal(before[k], v) for k, v in scripted.state_dict().items())
