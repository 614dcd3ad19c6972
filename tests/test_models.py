import pytest
import torch

import regmix
from regmix.models import MODELS


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = regmix.create_model(name, num_classes=7, in_channels=3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_normalisation_lives_inside_the_model():
    model = regmix.create_model("small_cnn", 10, 1, mean=(0.5,), std=(0.25,), width=4)
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(model(x), model.backbone((x - 0.5) / 0.25))


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18"])
def test_resnets_take_tiny_imagenet_sizes(name):
    model = regmix.create_model(name, 200, 3).eval()
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 200)


def test_parameter_counts_match_the_literature():
    count = lambda name: sum(p.numel() for p in regmix.create_model(name, 10, 3).parameters())
    assert round(count("resnet18") / 1e6, 1) == 11.2
    assert round(count("wrn34_10") / 1e6, 1) == 46.2
