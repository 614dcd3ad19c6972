import pytest
import torch

import regmix
from regmix.losses import agr, amr_terms
from regmix.methods import METHODS
from regmix.registry import ConfigError

THREAT = regmix.ThreatModel("linf", 0.1, step=0.05, steps=2)


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_runs_a_training_step(name, mnist_batch):
    x, y = mnist_batch
    torch.manual_seed(0)
    model = regmix.create_model("small_cnn", 10, 1, width=8).train()
    method = regmix.create_method(name, THREAT)
    method.setup(len(x), x.shape[1:], "cpu")
    method.start_epoch(0)
    loss, terms = method.loss(model, x, y, torch.arange(len(x)))
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert terms and all(not t.requires_grad for t in terms.values())
    # the named terms add up to the total
    assert loss.item() == pytest.approx(sum(t.item() for t in terms.values()), rel=1e-5)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.training


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_refuses_unknown_options(name):
    with pytest.raises(ConfigError, match="unknown option"):
        regmix.create_method(name, THREAT, not_an_option=1)


@pytest.mark.parametrize("option", ["alpha", "beta", "gamma"])
def test_regmix_refuses_negative_weights(option):
    with pytest.raises(ConfigError, match=f"method.options.{option}"):
        regmix.create_method("regmix", THREAT, **{option: -0.5})


def test_unknown_option_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        regmix.create_method("regmix", THREAT, alpah=1.0)


class RecordingModel(torch.nn.Module):
    """Wraps a model and keeps the logits of each forward pass, to recompute a loss by hand."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.outputs = []

    def forward(self, x):
        out = self.model(x)
        self.outputs.append(out)
        return out


def test_regmix_loss_is_ce_plus_amr_plus_agr(mnist_batch):
    x, y = mnist_batch
    torch.manual_seed(0)
    model = RecordingModel(regmix.create_model("small_cnn", 10, 1, width=8))
    method = regmix.create_method("regmix", THREAT, alpha=0.8, beta=0.3, gamma=0.6, label_smoothing=0.2)
    loss, terms = method.loss(model, x, y)
    init, final, clean = model.outputs  # the pipeline's three forward passes, in order
    fi, if_ = amr_terms(final, init, 0.8, 0.3)
    expected = torch.nn.functional.cross_entropy(final, y, label_smoothing=0.2) + fi + if_ + agr(clean, final, 0.6)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms["amr_final_init"].item() == pytest.approx(fi.item(), rel=1e-5)
    assert terms["amr_init_final"].item() == pytest.approx(if_.item(), rel=1e-5)


def test_pgk_loss_is_ce_plus_lambda_mse(mnist_batch):
    x, y = mnist_batch
    torch.manual_seed(0)
    model = RecordingModel(regmix.create_model("small_cnn", 10, 1, width=8))
    loss, terms = regmix.create_method("pgk", THREAT, lam=2.0).loss(model, x, y)
    init, final = model.outputs
    expected = torch.nn.functional.cross_entropy(final, y, label_smoothing=0.5) + 2.0 * ((final - init) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_prior_guided_methods_keep_per_example_state(mnist_batch):
    x, y = mnist_batch
    model = regmix.create_model("small_cnn", 10, 1, width=8).train()
    method = regmix.create_method("regmix", THREAT)
    method.setup(100, x.shape[1:], "cpu")
    method.start_epoch(0)
    before = method.prior.eta.clone()
    index = torch.arange(10, 10 + len(x))
    method.loss(model, x, y, index)
    changed = (method.prior.eta != before).flatten(1).any(1)
    assert changed[index].all() and not changed[:10].any() and not changed[10 + len(x):].any()
    state = method.state_dict()
    fresh = regmix.create_method("regmix", THREAT)
    fresh.setup(100, x.shape[1:], "cpu")
    fresh.load_state_dict(state)
    assert torch.equal(fresh.prior.eta, method.prior.eta) and torch.equal(fresh.prior.m, method.prior.m)


@pytest.mark.parametrize("name", METHODS.names())
def test_resolved_options_fill_every_default(name):
    from regmix.methods import resolved_options
    cls = METHODS.get(name)
    resolved = resolved_options(name, {})
    assert set(resolved) == set(cls.common) | set(cls.defaults)
    assert resolved == {**cls.common, **cls.defaults}


def test_resolved_options_keep_what_was_given_and_validate():
    from regmix.methods import resolved_options
    assert resolved_options("regmix", {"alpha": 2.0})["alpha"] == 2.0
    assert resolved_options("regmix", {"alpha": 2.0})["beta"] == METHODS.get("regmix").defaults["beta"]
    with pytest.raises(ConfigError, match="did you mean 'alpha'"):
        resolved_options("regmix", {"alpah": 1.0})
    with pytest.raises(ConfigError, match="method.options.alpha"):
        resolved_options("regmix", {"alpha": -1.0})
