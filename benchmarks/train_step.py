"""(1) Training step cost: standard, pgd_at (10 steps), trades (10 steps), pgk and regmix on the same
model, data and batch; their FLOP-equivalents and forward passes (independent of machine load); where
the time goes (torch profiler, by kind of operation); the EMA update before and after."""
from __future__ import annotations

import copy

import torch

import regmix
from regmix.ema import EMA

from .fixtures import demo_model, digits
from .profiling import profile_shares
from .timing import alternate, ratio, target

METHODS = ("standard", "pgd_at", "trades", "pgk", "regmix")
# the paper's RegMix, with AGR (its clean pass), as its defaults and every recipe have it (gamma 1.0)
# since the mnist5k study (docs/results), which would time a cheaper method than the recipes train
OPTIONS = {"regmix": {"gamma": 1.0}}
EPS = 0.1  # the demo recipes' Linf eps


def threat_for(method: str) -> regmix.ThreatModel:
    if method in ("pgk", "regmix"):
        return regmix.ThreatModel("linf", EPS, step=EPS, steps=1)  # FGSM-PGK steps by eps
    return regmix.ThreatModel("linf", EPS, step=EPS / 4, steps=10)  # PGD-10 / TRADES-10


class StepRunner:
    """One method's training step as the trainer runs it: loss, backward, optimizer step, EMA
    update where the recipe keeps one (pgk, regmix). Batches cycle through the same data."""

    def __init__(self, method: str, model, x, y, batch: int, steps: int):
        self.model, self.x, self.y, self.batch, self.steps = model, x, y, batch, steps
        self.method = regmix.create_method(method, threat_for(method), **OPTIONS.get(method, {}))
        self.method.setup(len(y), tuple(x.shape[1:]), "cpu", seed=0)
        self.method.start_epoch(0)
        self.optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        self.ema = EMA(model, 0.999) if method in ("pgk", "regmix") else None
        self.starts = list(range(0, len(y) - batch + 1, batch))
        self.k = 0

    def one(self):
        start = self.starts[self.k % len(self.starts)]
        self.k += 1
        index = torch.arange(start, start + self.batch, device=self.x.device)
        self.model.train()
        loss, _ = self.method.loss(self.model, self.x[index], self.y[index], index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)

    def __call__(self):
        for _ in range(self.steps):
            self.one()


def count_work(runner: StepRunner) -> dict:
    """Forward passes of the whole model and conv/linear FLOPs of one step, in forward-pass
    equivalents (one forward of the batch = 1)."""
    from torch.utils.flop_counter import FlopCounterMode
    xb = runner.x[:runner.batch]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        runner.model.eval()
        runner.model(xb)
    forward_flops = counter.get_total_flops()
    calls = []
    handle = runner.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        with FlopCounterMode(display=False) as counter:
            runner.one()
    finally:
        handle.remove()
    total = counter.get_total_flops()
    return {"forward_passes": len(calls), "flop_equivalents": round(total / forward_flops, 3),
            "backward_flop_equivalents": round(total / forward_flops - len(calls), 3),
            "forward_gflops": round(forward_flops / 1e9, 4)}


def profile_step(runner: StepRunner, steps: int) -> dict:
    """Share of self CPU time by kind of operation over `steps` training steps."""
    def go():
        for _ in range(steps):
            runner.one()
    return profile_shares(go)


def _ema_loop(avg_model, model, d):
    """The EMA update before the multi-tensor version: one lerp_ / copy_ per tensor."""
    with torch.no_grad():
        for avg, new in zip(avg_model.parameters(), model.parameters()):
            avg.lerp_(new.detach(), 1 - d)
        for avg, new in zip(avg_model.buffers(), model.buffers()):
            avg.copy_(new)


def ema_before_after(model, repeats: int, warmup: int = 1, updates: int = 20) -> dict:
    ema = EMA(model, 0.999)
    loop_avg = copy.deepcopy(ema.model)

    def foreach():
        for _ in range(updates):
            ema.update(model)

    def loop():
        for _ in range(updates):
            _ema_loop(loop_avg, model, min(0.999, 2 / 11))

    equal_check = EMA(model, 0.999)
    reference = copy.deepcopy(equal_check.model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    equal_check.update(model)
    _ema_loop(reference, model, min(0.999, 2 / 11))
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(0.01)
    equal = all(torch.equal(a, b) for a, b in zip(equal_check.model.state_dict().values(),
                                                   reference.state_dict().values()))
    timings = alternate({"per_tensor_loop": loop, "foreach": foreach}, repeats=repeats, warmup=warmup)
    return {"tensors": len(list(model.parameters())) + len(list(model.buffers())), "updates_per_round": updates,
            "timings": timings, "speedup": ratio(timings, "per_tensor_loop", "foreach"), "bitwise_equal": equal}


def run(scale, device="cpu", log=print) -> dict:
    x, y, ds = digits("train", max(scale.train_points, scale.batch * 4))
    base = demo_model(ds)
    runners = {m: StepRunner(m, copy.deepcopy(base), x, y, scale.batch, scale.steps_per_round) for m in METHODS}
    work = {m: count_work(StepRunner(m, copy.deepcopy(base), x, y, scale.batch, 1)) for m in METHODS}
    log(f"[train] forward-pass equivalents per step: { {m: w['flop_equivalents'] for m, w in work.items()} }")
    timings = alternate(runners, repeats=scale.repeats, warmup=scale.warmup, device=device)
    per_step = {m: t["median_s"] / scale.steps_per_round for m, t in timings.items()}
    log(f"[train] median s/step: { {m: round(v, 4) for m, v in per_step.items()} }")
    fe = {m: w["flop_equivalents"] for m, w in work.items()}
    targets = [
        target("regmix / pgd_at", ratio(timings, "regmix", "pgd_at"), "<=", 0.48, f"FLOP share {fe['regmix'] / fe['pgd_at']:.3f}"),
        target("pgk / pgd_at", ratio(timings, "pgk", "pgd_at"), "<=", 0.33, f"FLOP share {fe['pgk'] / fe['pgd_at']:.3f}"),
        target("regmix / pgk", ratio(timings, "regmix", "pgk"), "<=", 1.55, f"FLOP share {fe['regmix'] / fe['pgk']:.3f}"),
    ]
    profiles = {m: profile_step(StepRunner(m, copy.deepcopy(base), x, y, scale.batch, 1), max(1, scale.steps_per_round))
                for m in ("pgd_at", "pgk", "regmix")}
    ema = {"demo_model": ema_before_after(copy.deepcopy(base), scale.repeats, scale.warmup)}
    if scale.name == "full":
        ema["resnet18"] = ema_before_after(regmix.create_model("resnet18", 10, 3), scale.repeats, scale.warmup)
    return {"model": "small_cnn width 16 (configs/demo)", "data": f"mnist5k train, batch {scale.batch}",
            "eps": EPS, "threats": {m: str(threat_for(m)) for m in METHODS},
            "ema": "pgk and regmix (as their recipes)", "steps_per_round": scale.steps_per_round,
            "timings": timings, "seconds_per_step": per_step, "work": work, "targets": targets,
            "profile": profiles, "ema_update": ema,
            "checks": {"ema_foreach_bitwise_equal": all(e["bitwise_equal"] for e in ema.values())}}
