import copy

import torch

import regmix
from regmix.ema import EMA


def reference_update(avg_model, model, updates, decay):
    """The per-tensor loop the multi-tensor update replaced."""
    d = min(decay, (1 + updates) / (10 + updates))
    with torch.no_grad():
        for avg, new in zip(avg_model.parameters(), model.parameters()):
            avg.lerp_(new.detach(), 1 - d)
        for avg, new in zip(avg_model.buffers(), model.buffers()):
            avg.copy_(new)


def test_multi_tensor_update_is_bitwise_the_per_tensor_loop():
    torch.manual_seed(0)
    model = regmix.create_model("resnet18", 10, 3)  # BatchNorm: float and integer buffers as well
    ema = EMA(model, decay=0.99)
    reference = copy.deepcopy(ema.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    shape = (2, 3, 8, 8)
    for step in range(1, 6):
        model.train()
        loss = model(torch.rand(shape)).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model)
        reference_update(reference, model, step, 0.99)
    ours, theirs = ema.model.state_dict(), reference.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert any(not torch.equal(ours[k], model.state_dict()[k]) for k in ours)  # an average, not a copy
    assert ema.updates == 5


# ---------------------------------------------------------------- FGSM-PGK's gated EMA

import math  # noqa: E402

import pytest  # noqa: E402

from regmix.config import load_config  # noqa: E402
from regmix.registry import ConfigError  # noqa: E402

from conftest import tiny_config  # noqa: E402
from same_run import assert_resumes_exactly  # noqa: E402


def bn_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


# (updates t after this update, r, decay) by hand from d_t = min(a, (t+1)/(t+10)), a = 0.999 while r < 0.82,
# else min(1, 0.99999 r / 0.82)
GATED = [
    (5, 0.5, 6 / 15),                              # warm-up: (t+1)/(t+10) whatever r
    (5, 0.95, 6 / 15),
    (10 ** 6, 0.5, 0.999),                         # r below the gate: 0.999
    (10 ** 6, 0.81, 0.999),
    (10 ** 6, 0.82, 0.99999),                      # at the gate: 0.99999 * 0.82 / 0.82
    (10 ** 6, 0.9, (10 ** 6 + 1) / (10 ** 6 + 10)),  # 0.99999 * 0.9 / 0.82 > 1: a = 1, the warm-up binds
    (10 ** 7, 0.820004, 0.99999 * 0.820004 / 0.82),   # just above the gate: the ratio form, below 1
]


@pytest.mark.parametrize("t, r, expected", GATED)
def test_gated_decay_matches_the_formula(t, r, expected):
    ema = EMA(bn_model(), gate=0.82)
    d = ema.gated_decay(torch.tensor(r), t)
    assert isinstance(d, torch.Tensor)
    assert d.item() == pytest.approx(expected, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("buffers", ["average", "copy"])
def test_gated_update_averages_weights_and_float_buffers_with_the_same_decay(buffers):
    model = bn_model()
    ema = EMA(model, gate=0.9, buffers=buffers)
    old = copy.deepcopy(ema.model.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()
    model(torch.randn(8, 4))  # moves running_mean / running_var, num_batches_tracked 0 -> 1
    ema.updates = 10 ** 6 - 1
    ema.update(model, torch.tensor(0.5))  # below the gate: d = 0.999
    new, avg = model.state_dict(), ema.model.state_dict()
    d = 0.999
    for key in ("0.weight", "0.bias", "1.weight", "1.bias"):
        assert torch.allclose(avg[key], d * old[key] + (1 - d) * new[key], atol=1e-6)
    for key in ("1.running_mean", "1.running_var"):
        want = d * old[key] + (1 - d) * new[key] if buffers == "average" else new[key]
        assert torch.allclose(avg[key], want, atol=1e-6)
        assert not torch.allclose(avg[key], old[key] if buffers == "copy" else new[key])
    assert avg["1.num_batches_tracked"].item() == 1  # integer buffers are copied either way


def test_plain_decay_with_averaged_buffers_follows_the_warm_up():
    model = bn_model()
    ema = EMA(model, decay=0.999, buffers="average")
    old = copy.deepcopy(ema.model.state_dict())
    model.train()
    model(torch.randn(8, 4))
    ema.update(model)  # t = 1: d = 2/11
    d = 2 / 11
    key = "1.running_mean"
    assert torch.allclose(ema.model.state_dict()[key], d * old[key] + (1 - d) * model.state_dict()[key])


def test_the_gated_update_never_asks_the_host_for_a_tensor_value(monkeypatch):
    """No .item(), float(), int() or bool() of a tensor: the update can run without a host sync."""
    model, ema = bn_model(), None
    ema = EMA(model, gate=0.82, buffers="average")

    def refuse(*args, **kwargs):
        raise AssertionError("the gated EMA synchronised with the host")
    for name in ("item", "__bool__", "__float__", "__int__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    ema.update(model, torch.tensor(0.9))
    monkeypatch.undo()
    assert ema.updates == 1


def test_gated_ema_needs_a_ratio():
    ema = EMA(bn_model(), gate=0.82)
    with pytest.raises(ValueError, match="ratio"):
        ema.update(bn_model())


def test_prior_guided_methods_report_their_attack_success(mnist_batch):
    x, y = mnist_batch
    torch.manual_seed(0)
    model = regmix.create_model("small_cnn", 10, 1, width=4)
    threat = regmix.ThreatModel("linf", 0.2, step=0.2)
    for name in ("pgk", "regmix"):
        method = regmix.create_method(name, threat)
        assert method.reports_attack_ratio and method.attack_ratio is None
        method.loss(model, x, y)
        r = method.attack_ratio
        assert isinstance(r, torch.Tensor) and r.dim() == 0 and 0 <= r.item() and math.isfinite(r.item())
    assert regmix.create_method("pgd_at", threat).attack_ratio is None


@pytest.mark.parametrize("override, message", [
    ({"ema_gate": -0.1}, "train.ema_gate: must be null (the plain EMA) or a number in (0, 1]"),
    ({"ema_gate": float("nan")}, "train.ema_gate: must be"),
    ({"ema_gate": 1.5}, "train.ema_gate: must be null"),
    ({"ema_buffers": "mean"}, "train.ema_buffers: must be one of copy, average"),
])
def test_ema_options_are_checked(override, message):
    with pytest.raises(ConfigError, match=f"^{message.replace('(', '[(]').replace(')', '[)]')}"):
        load_config(data={"method": {"name": "pgk"}, "train": {"ema": True, **override}})


def test_the_gate_is_refused_for_a_method_without_an_attack_ratio():
    with pytest.raises(ConfigError, match="^train.ema_gate: must be null for pgd_at"):
        load_config(data={"method": {"name": "pgd_at"}, "train": {"ema": True, "ema_gate": 0.82}})
    load_config(data={"method": {"name": "pgd_at"}, "train": {"ema": True, "ema_buffers": "average"}})


def test_a_gated_run_resumes_exactly(tmp_path, monkeypatch):
    def config(root):
        return tiny_config(root, "pgk", data={"batch_size": 128}, threat={"eps": 0.1, "step": 0.1},
                           eval={"steps": 2, "max_points": 64},
                           train={"epochs": 2, "ema": True, "ema_gate": 0.82, "ema_buffers": "average",
                                  "checkpoint_every": 3})
    assert_resumes_exactly(config, tmp_path, monkeypatch, step=12)


def test_before_8991_updates_the_gate_never_binds():
    """The study recipes' claim (configs/study/mnist5k/pgk.yaml, suite sweep pgd_at_ema): below 8,991
    updates the warm-up (t+1)/(t+10) < 0.999 is the decay whatever r, gated or plain."""
    ema = EMA(bn_model(), gate=0.82)
    ratios = torch.tensor([0.0, 0.5, 0.81, 0.82, 0.9, 1.0, 1.3])
    for t in (1, 100, 840, 1260, 8990):
        warm = (t + 1) / (t + 10)
        assert torch.allclose(ema.gated_decay(ratios, t), torch.full_like(ratios, warm))
        assert min(0.999, warm) == warm
    assert ema.gated_decay(torch.tensor(0.5), 9000).item() == pytest.approx(0.999)
