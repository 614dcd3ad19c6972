import copy
from typing import Optional

import torch

EMA_BUFFERS = ("copy", "average")


class EMA:
    """An exponential moving average of a model's weights, plain or gated as FGSM-PGK's.

    Plain (gate=None): decay d_t = min(decay, (1 + t) / (10 + t)), t the number of updates so far, so
    the average is not dominated by the random initialisation in short runs.

    Gated (FGSM-PGK, Jia et al. 2024, docs/method.md step 7): each update takes the batch's attack
    success r = acc_final / acc_init (a method's `attack_ratio`) and uses
    d_t = min(a, (1 + t) / (10 + t)) with a = 0.999 while r < gate, else a = min(1, 0.99999 r / gate):
    the average nearly stops following the model while the one-step attack is weak. FGSM-PGK's gate is
    0.82 on CIFAR-10 and 0.9 on CIFAR-100 / Tiny ImageNet. The gated decay is computed with tensor ops
    on r's device (no .item(), no branch on a tensor's value), so an update never waits for the host.

    Buffers: 'copy' takes the model's buffers as they are; 'average' averages floating buffers
    (BatchNorm running statistics) with the same decay as the weights, as FGSM-PGK's buffer_ema=True,
    and copies integer ones (num_batches_tracked).

    The update is one multi-tensor call per kind (torch._foreach_lerp_ / _foreach_copy_) rather than
    one call per tensor: the same lerp per element (bitwise equal, tests/test_ema.py), far fewer
    kernel launches on a GPU (a ResNet-18 has 62 parameter and 60 buffer tensors).

    Arguments:
        model (nn.Module): the model to average (deep-copied, in eval mode).
        decay (float): the plain decay's ceiling a. (Default: 0.999)
        gate (float or None): FGSM-PGK's EMA_value; None is the plain EMA. (Default: None)
        buffers ('copy' | 'average'): what happens to buffers. (Default: 'copy')

    Examples::
        >>> ema = EMA(model, gate=0.82, buffers="average")
        >>> loss.backward(); optimizer.step(); ema.update(model, method.attack_ratio)
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999, gate: Optional[float] = None,
                 buffers: str = "copy"):
        if buffers not in EMA_BUFFERS:
            raise ValueError(f"buffers: must be one of {', '.join(EMA_BUFFERS)}, got {buffers!r}")
        self.decay, self.gate, self.buffers = decay, gate, buffers
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())
        average = buffers == "average"
        self._averaged = [i for i, b in enumerate(self._buffers) if average and b.is_floating_point()]
        self._copied = [i for i in range(len(self._buffers)) if i not in set(self._averaged)]

    def gated_decay(self, ratio: torch.Tensor, updates: int) -> torch.Tensor:
        """FGSM-PGK's decay for attack success `ratio` (a tensor) after `updates` updates, as a tensor."""
        r = ratio.float()
        a = torch.where(r < self.gate, torch.full_like(r, self.decay), (r * 0.99999 / self.gate).clamp(max=1.0))
        return a.clamp(max=(1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, ratio: Optional[torch.Tensor] = None):
        """One step of the average; `ratio` (the batch's acc_final / acc_init, a tensor) is needed when gated."""
        self.updates += 1
        new_params = [p.detach() for p in model.parameters()]
        if len(new_params) != len(self._params):
            raise ValueError(f"model: has {len(new_params)} parameter tensors, the average {len(self._params)}")
        if self.gate is None:
            weight = 1 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        else:
            if ratio is None:
                raise ValueError("ratio: the gated EMA needs the batch's attack success acc_final / acc_init")
            weight = 1 - self.gated_decay(torch.as_tensor(ratio), self.updates)
        if self._params:
            torch._foreach_lerp_(self._params, new_params, weight)
        new_buffers = list(model.buffers())
        if self._averaged:
            torch._foreach_lerp_([self._buffers[i] for i in self._averaged],
                                 [new_buffers[i].detach() for i in self._averaged], weight)
        if self._copied:
            torch._foreach_copy_([self._buffers[i] for i in self._copied], [new_buffers[i] for i in self._copied])

    def state_dict(self):
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
