"""FGSM-PGK's prior: its (re)initialisation and its storage."""
import pytest
import torch

import regmix
from regmix.attacks import prior as prior_module
from regmix.attacks.prior import PriorGuidedPerturbation, fresh_prior
from regmix.registry import ConfigError

THREAT = regmix.ThreatModel("linf", 0.1, step=0.1, steps=1)


def test_sign_init_puts_every_pixel_at_plus_or_minus_eps_and_uniform_fills_the_ball():
    sign = PriorGuidedPerturbation(THREAT, 64, (1, 8, 8), seed=3)
    uniform = PriorGuidedPerturbation(THREAT, 64, (1, 8, 8), seed=3, init="uniform")
    for p in (sign, uniform):
        p.m.fill_(1.0)
        p.start_epoch(0)
        assert p.eta.dtype == torch.float32 and p.m.dtype == torch.float32
        assert torch.count_nonzero(p.m) == 0
    assert sign.init == "sign"  # FGSM-PGK's default
    assert torch.all(sign.eta.abs() == THREAT.eps)
    assert 0.4 < (sign.eta > 0).float().mean() < 0.6
    assert uniform.eta.abs().max() < THREAT.eps and uniform.eta.abs().min() < THREAT.eps / 10
    # the same draws: switching the option changes nothing but the magnitude
    assert torch.equal(uniform.eta.sign() * THREAT.eps, sign.eta)


def test_reset_happens_every_reset_every_epochs_and_is_reproducible():
    a = PriorGuidedPerturbation(THREAT, 16, (1, 4, 4), seed=1, reset_every=2)
    b = PriorGuidedPerturbation(THREAT, 16, (1, 4, 4), seed=1, reset_every=2)
    a.start_epoch(0)
    b.start_epoch(0)
    assert torch.equal(a.eta, b.eta)
    first = a.eta.clone()
    a.start_epoch(1)  # not a reset epoch
    assert torch.equal(a.eta, first)
    a.start_epoch(2)
    assert not torch.equal(a.eta, first)


def test_chunked_reset_draws_what_one_full_size_draw_would(monkeypatch):
    monkeypatch.setattr(prior_module, "_RESET_CHUNK", 7)  # many chunks, the last one partial
    for init in ("sign", "uniform"):
        p = PriorGuidedPerturbation(THREAT, 50, (3, 5, 5), seed=4, init=init)
        p.start_epoch(10)
        g = torch.Generator().manual_seed(4 * 7919 + 10)
        assert torch.equal(p.eta, fresh_prior(torch.rand(p.eta.shape, generator=g), THREAT.eps, init))


def test_pgk_and_regmix_default_to_sign_init_and_refuse_unknown_ones():
    for name in ("pgk", "regmix"):
        method = regmix.create_method(name, THREAT)
        assert method.prior_init == "sign"
        method.setup(8, (1, 8, 8), "cpu")
        assert method.prior.init == "sign"
        assert regmix.create_method(name, THREAT, prior_init="uniform").prior_init == "uniform"
        with pytest.raises(ConfigError, match="method.options.prior_init: must be one of sign, uniform"):
            regmix.create_method(name, THREAT, prior_init="gaussian")
    with pytest.raises(ConfigError, match="method.options.prior_init"):
        PriorGuidedPerturbation(THREAT, 4, (1, 2, 2), init="zeros")


class FirstInput(torch.nn.Module):
    """Records the input of the first forward pass (x + eta)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.model(x)


@pytest.mark.parametrize("init", ["sign", "uniform"])
def test_stateless_start_follows_prior_init(init, mnist_batch):
    x, y = mnist_batch
    torch.manual_seed(0)
    model = FirstInput(regmix.create_model("small_cnn", 10, 1, width=8))
    regmix.create_method("pgk", THREAT, prior_init=init).loss(model, x, y)
    eta = model.seen[0] - x
    inside = (x > THREAT.eps + 1e-6) & (x < 1 - THREAT.eps - 1e-6)  # where the [0, 1] box does not clip
    assert inside.any()
    at_eps = (eta[inside].abs() - THREAT.eps).abs() < 1e-6
    assert at_eps.all() if init == "sign" else at_eps.float().mean() < 0.01
