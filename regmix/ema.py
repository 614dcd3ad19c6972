import copy

import torch


class EMA:
    """An exponential moving average of a model's weights (buffers are copied as they are).

    The decay warms up as min(decay, (1 + t) / (10 + t)) so the average is not dominated by the
    random initialisation in short runs.

    The update is one multi-tensor call per kind (torch._foreach_lerp_ / _foreach_copy_) rather than
    one call per tensor: the same lerp per element (bitwise equal, tests/test_ema.py), far fewer
    kernel launches on a GPU (a ResNet-18 has 62 parameter and 60 buffer tensors).
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        new_params = [p.detach() for p in model.parameters()]
        if len(new_params) != len(self._params):
            raise ValueError(f"model: has {len(new_params)} parameter tensors, the average {len(self._params)}")
        if self._params:
            torch._foreach_lerp_(self._params, new_params, 1 - d)
        new_buffers = list(model.buffers())
        if self._buffers:
            torch._foreach_copy_(self._buffers, new_buffers)

    def state_dict(self):
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
