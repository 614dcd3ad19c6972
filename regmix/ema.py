import copy

import torch


class EMA:
    """An exponential moving average of a model's weights (buffers are copied as they are).

    The decay warms up as min(decay, (1 + t) / (10 + t)) so the average is not dominated by the
    random initialisation in short runs.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, new in zip(self.model.parameters(), model.parameters()):
            avg.lerp_(new.detach(), 1 - d)
        for avg, new in zip(self.model.buffers(), model.buffers()):
            avg.copy_(new)

    def state_dict(self):
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
