"""Fast paths against the plain paths they replace: the same results."""
import pytest
import torch

import regmix
from benchmarks.early_stop import EarlyStopPGD
from regmix.attacks import PGD


def robust(model, x_adv, y):
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


@pytest.fixture(scope="module")
def model_and_points():
    torch.manual_seed(0)
    ds = regmix.create_dataset("digits", "train")
    model = regmix.create_model("small_cnn", 10, 1, mean=ds.mean, std=ds.std, width=8)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x = torch.stack([ds[i][0] for i in range(256)])
    y = torch.stack([ds[i][1] for i in range(256)])
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), x, y


def test_compacted_early_stop_pgd_equals_the_masked_one(model_and_points):
    model, x, y = model_and_points
    threat = regmix.ThreatModel("linf", 0.08, steps=10)
    runs = {}
    for compact in (True, False):
        torch.manual_seed(5)
        runs[compact] = EarlyStopPGD(model, threat, compact=compact)(x, y)
    flags = {k: robust(model, v, y) for k, v in runs.items()}
    assert 0.1 < flags[True].float().mean() < 0.9  # some fooled, some not: the paths part ways
    assert torch.equal(flags[True], flags[False])
    torch.testing.assert_close(runs[True], runs[False], rtol=0, atol=1e-6)
    assert (runs[True] - x).abs().max() <= threat.eps + 1e-6


def test_early_stop_is_never_weaker_than_plain_pgd_point_by_point(model_and_points):
    model, x, y = model_and_points
    threat = regmix.ThreatModel("linf", 0.08, steps=10)
    torch.manual_seed(5)
    plain = robust(model, PGD(model, threat)(x, y), y)
    torch.manual_seed(5)
    early = robust(model, EarlyStopPGD(model, threat)(x, y), y)
    assert not (early & ~plain).any()  # robust under early stop implies robust under plain PGD
    assert EarlyStopPGD(model, threat).settings()["stop_on_success"] is True
    assert "stop_on_success" not in PGD(model, threat).settings()  # records of plain PGD unchanged
