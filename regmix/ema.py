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
    0.82 on CIFAR-10 and 0.9 on CIFAR-100 / Tiny ImageNet.

    On the device: the update count t is a tensor on the model's device and the decay, plain or gated,
    is computed there with tensor ops (no .item(), no branch on a tensor's value, no Python number that
    a captured CUDA graph would freeze), so an update never waits for the host and can be part of a
    captured training step (training/step.py). `updates` reads the count (a host read: checkpoints).

    Buffers: 'copy' takes the model's buffers as they are; 'average' averages floating buffers
    (BatchNorm running statistics) with the same decay as the weights, as FGSM-PGK's buffer_ema=True,
    and copies integer ones (num_batches_tracked).

    The update is one multi-tensor call per kind (torch._foreach_lerp_ with the weight as a tensor,
    _foreach_copy_): the same lerp per element as a per-tensor loop with a number for the weight
    (bitwise equal, tests/test_ema.py). On a GPU a tensor weight takes foreach's per-tensor route (a
    ResNet-18 has 62 parameter and 60 buffer tensors: ~120 small launches), which costs host time only
    where the step is not captured; a number would be a host read, or frozen into a captured graph.

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
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._params = list(self.model.parameters())
        self._buffers = list(self.model.buffers())
        average = buffers == "average"
        self._averaged = [i for i, b in enumerate(self._buffers) if average and b.is_floating_point()]
        self._copied = [i for i in range(len(self._buffers)) if i not in set(self._averaged)]
        device = next(iter(self._params + self._buffers), torch.empty(0)).device
        self.count = torch.zeros((), dtype=torch.float64, device=device)  # t, the updates so far

    @property
    def updates(self) -> int:
        return int(self.count.item())

    @updates.setter
    def updates(self, value: int):
        self.count.fill_(value)

    def gated_decay(self, ratio: torch.Tensor, updates) -> torch.Tensor:
        """FGSM-PGK's decay for attack success `ratio` (a tensor) after `updates` updates (a number or a
        tensor), as a float32 tensor."""
        r = ratio.float()
        a = torch.where(r < self.gate, torch.full_like(r, self.decay), (r * 0.99999 / self.gate).clamp(max=1.0))
        return torch.minimum(a, _warm_up(torch.as_tensor(updates, dtype=torch.float64, device=r.device)).float())

    @torch.no_grad()
    def update(self, model: torch.nn.Module, ratio: Optional[torch.Tensor] = None):
        """One step of the average; `ratio` (the batch's acc_final / acc_init, a tensor) is needed when gated."""
        new_params = [p.detach() for p in model.parameters()]
        if len(new_params) != len(self._params):
            raise ValueError(f"model: has {len(new_params)} parameter tensors, the average {len(self._params)}")
        if self.gate is not None and ratio is None:
            raise ValueError("ratio: the gated EMA needs the batch's attack success acc_final / acc_init")
        self.count.add_(1)
        if self.gate is None:  # in float64, as min() of Python numbers, then float32 as lerp's weight
            weight = (1 - _warm_up(self.count).clamp(max=self.decay)).float()
        else:
            weight = 1 - self.gated_decay(ratio, self.count)
        # the weight as a tensor (lerp's list-of-weights form: the same lerp, bit for bit, as a number)
        if self._params:
            torch._foreach_lerp_(self._params, new_params, [weight.to(p.dtype) for p in self._params])
        new_buffers = list(model.buffers())
        if self._averaged:
            averaged = [self._buffers[i] for i in self._averaged]
            torch._foreach_lerp_(averaged, [new_buffers[i].detach() for i in self._averaged],
                                 [weight.to(b.dtype) for b in averaged])
        if self._copied:
            torch._foreach_copy_([self._buffers[i] for i in self._copied], [new_buffers[i] for i in self._copied])

    def state_dict(self):
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state):
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


def _warm_up(t: torch.Tensor) -> torch.Tensor:
    """(1 + t) / (10 + t): the decay's ceiling after t updates, so that the first updates follow the model."""
    return (1 + t) / (10 + t)
