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
