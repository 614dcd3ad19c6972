"""A whole training step (the method's attack and loss, the backward pass, the optimiser's step and the
EMA's) with nothing read back to the host, optionally captured once as a CUDA graph and replayed.

A step of adversarial training launches thousands of small kernels (a 10-step PGD attack on a ResNet-18
is ten forward and backward passes); on a fast GPU the host's Python and launches, and every `.item()`
that waits for the device, set the pace, not the arithmetic. Here:
- the loss and every named term are added to running sums on the device (float64, the same arithmetic
  as adding `.item()` values on the host), and the number of non-finite losses is counted there; the
  trainer reads them once per log interval;
- the optimiser is a fused one (`make_optimizer(..., fused=True)`) and reads its learning rate from a
  tensor on the device, which each call fills from the scheduler's number (a fill, not a read): the
  param groups keep numbers, so the schedule, the checkpoint and the log are those of the loader path;
- the EMA counts its updates and computes its decay on the device (regmix/ema.py);
- on CUDA, after a few eager steps (on a side stream, as CUDA graphs require), all of it is captured as
  one CUDA graph: each later step copies its batch into the graph's inputs, fills the learning rate and
  replays it, one launch from the host. A batch of another size (an epoch's last) or a new threat (the
  eps warm-up) runs eagerly or captures again.

Gradients are zeroed in place (not set to None) so that the captured backward writes into the same
tensors the optimiser reads; adding a gradient to zero is exact. With the same fused optimiser the
eager form of this step gives the loader path's weights bit for bit; against the loader path's
multi-tensor SGD the fused kernel differs in the last bits (tests/test_fast_step.py).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

WARMUP_STEPS = 3  # eager steps on a side stream before a capture (lazy initialisation, cuDNN's choices)


class DeviceStep:
    """Runs `method.loss(net, x, y, index)`, its backward, the optimiser's step and `after_update` (the
    EMA's); keeps the sums on the device.

    Arguments:
        net (nn.Module): what the method calls (the model, or its DDP wrapper).
        method (Method): the training objective.
        optimizer (Optimizer): a fused optimiser over the parameters (its learning rate is set here as a
            tensor for each step; the param groups hold numbers between steps).
        after_update (callable or None): run after the optimiser's step, inside the step (the EMA's update).
        amp (bool): bf16 autocast (CUDA).
        graph (bool): capture the step as a CUDA graph once warm (CUDA only).
    """

    def __init__(self, net, method, optimizer, *, after_update=None, amp: bool = False, graph: bool = False):
        if not optimizer.defaults.get("fused"):
            raise ValueError("optimizer: the device step needs a fused optimiser (make_optimizer(..., fused=True)): "
                             "it reads its learning rate from a tensor on the device")
        self.net, self.method, self.optimizer, self.after_update = net, method, optimizer, after_update
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.lrs = [torch.zeros((), dtype=torch.float32, device=self.params[0].device) for _ in optimizer.param_groups]
        self.amp, self.graph_wanted = amp, graph
        self.keys = None           # "loss" and the method's term names, fixed by the first step
        self.sums = None           # float64 on the device: seen examples, then one sum per key
        self.last = None           # the latest step's values (float64)
        self.nonfinite = None      # count of non-finite losses since the last read
        self.graph = None
        self.captured_for = None   # (batch shape, threat) of the captured graph
        self.eager_left = WARMUP_STEPS

    # -------------------------------------------------------------- running sums

    def reset(self, sums: dict, seen: int, device):
        """Start an epoch's sums (from a checkpoint's partial sums where resumed)."""
        self.device = torch.device(device)
        self._partial = (dict(sums), seen)
        if self.keys is not None:
            self._load_partial()

    def _load_partial(self):
        sums, seen = self._partial
        values = [float(seen)] + [float(sums.get(k, 0.0)) for k in self.keys]
        if self.sums is None:
            self.sums = torch.tensor(values, dtype=torch.float64, device=self.device)
            self.last = torch.zeros(len(self.keys), dtype=torch.float64, device=self.device)
            self.nonfinite = torch.zeros((), dtype=torch.int64, device=self.device)
        else:  # in place: a captured graph holds these tensors
            self.sums.copy_(torch.tensor(values, dtype=torch.float64))
            self.nonfinite.zero_()

    def read(self) -> tuple[dict, int, int]:
        """(sums by key, examples seen, non-finite losses since the last read): one read of the device."""
        if self.keys is None:
            return dict(self._partial[0]), int(self._partial[1]), 0
        values = torch.cat([self.sums, self.nonfinite.view(1).double()]).tolist()
        bad = int(values[-1])
        self.nonfinite.zero_()
        return dict(zip(self.keys, values[1:-1])), int(values[0]), bad

    def last_values(self) -> dict:
        return dict(zip(self.keys, self.last.tolist()))

    # -------------------------------------------------------------- the step

    def _body(self, x, y, index):
        for p in self.params:
            if p.grad is not None:
                p.grad.zero_()
        autocast = (torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=self.graph is None and not self._capturing)
                    if self.amp else nullcontext())
        with autocast:
            loss, terms = self.method.loss(self.net, x, y, index)
        loss.backward()
        if self.keys is None:
            self.keys = ["loss", *terms]
            self._load_partial()
        values = torch.stack([loss.detach(), *(terms[k] for k in self.keys[1:])]).double()
        self.last.copy_(values)
        finite = torch.isfinite(loss.detach())
        counted = torch.cat([values.new_ones(1), values]) * len(y)
        self.sums.add_(torch.where(finite, counted, torch.zeros_like(counted)))
        self.nonfinite.add_((~finite).long())
        self._update()

    def _update(self):
        """The optimiser's step with the learning rate as a device tensor, then `after_update`."""
        groups = self.optimizer.param_groups
        numbers = [group["lr"] for group in groups]
        for group, lr in zip(groups, self.lrs):
            group["lr"] = lr
        try:
            self.optimizer.step()
        finally:
            for group, number in zip(groups, numbers):
                group["lr"] = number
        if self.after_update is not None:
            self.after_update()

    _capturing = False

    def __call__(self, x, y, index):
        """One training step on (x, y, index), eager or replayed."""
        shape, threat = tuple(x.shape), self.method.threat
        for group, lr in zip(self.optimizer.param_groups, self.lrs):
            lr.fill_(group["lr"])  # the scheduler's number, written to the device (no read)
        if not (self.graph_wanted and x.is_cuda):
            return self._body(x, y, index)
        if self.graph is not None and threat is self.captured_for[1]:
            if shape != self.captured_for[0]:
                return self._body(x, y, index)  # a short last batch: eager, the graph stays
            for static, new in zip(self.static, (x, y, index)):
                static.copy_(new)
            self.graph.replay()
            return None
        if self.eager_left > 0:
            self.eager_left -= 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._body(x, y, index)
            torch.cuda.current_stream().wait_stream(side)
            return None
        self._capture(x, y, index, (shape, threat))
        return None

    def _capture(self, x, y, index, key):
        self.graph = None
        torch.cuda.synchronize()
        self.static = (x.clone(), y.clone(), index.clone())
        graph = torch.cuda.CUDAGraph()
        self._capturing = True
        try:
            with torch.cuda.graph(graph):
                self._body(*self.static)
        finally:
            self._capturing = False
        self.graph, self.captured_for = graph, key
        graph.replay()  # the capture recorded the step; this runs it for this batch
        self.eager_left = 1  # a later re-capture (new threat) needs only one eager step first
