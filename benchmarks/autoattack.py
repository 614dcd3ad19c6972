"""(5) AutoAttack through regmix's adapter against pyautoattack called directly, same model, points,
eps, seed and attack settings."""
from __future__ import annotations

import torch

import regmix

from .fixtures import digits
from .timing import alternate, ratio, target


def adapter_class():
    try:
        from regmix.attacks.autoattack import AutoAttackRunner
    except ImportError:  # before the evaluation package existed
        from regmix.autoattack_adapter import AutoAttackRunner
    return AutoAttackRunner


def shrink(aa, iters: int, square_queries: int):
    """The smoke run's iteration budgets (0 keeps the standard version's)."""
    if iters:
        for name in ("apgd", "apgd_targeted", "fab"):
            getattr(aa, name).n_iter = iters
    if square_queries:
        aa.square.n_queries = square_queries


def run(model, eps, scale, device="cpu", log=print) -> dict:
    import logging

    import pyautoattack
    x, y, _ = digits("test", scale.aa_points)
    x, y = x.to(device), y.to(device)
    threat = regmix.ThreatModel("linf", eps)
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    flags = {}

    def via_adapter():
        runner = adapter_class()(model, threat, seed=0, device=device, batch_size=250)
        shrink(runner.aa, scale.aa_iters, scale.aa_square_queries)
        with torch.no_grad():
            clean = (model(x).argmax(1) == y).cpu()
        flags["adapter"] = runner.run(x.cpu(), y.cpu(), clean)["robust"]

    def direct():
        aa = pyautoattack.AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=0, device=str(device))
        shrink(aa, scale.aa_iters, scale.aa_square_queries)
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=250)
        with torch.no_grad():
            flags["direct"] = (model(x_adv).argmax(1) == y).cpu()

    model.eval()
    timings = alternate({"adapter": via_adapter, "direct": direct}, repeats=max(1, scale.repeats - 2),
                        warmup=0, device=device)
    acc = {k: f.float().mean().item() for k, f in flags.items()}
    log(f"[autoattack] adapter {timings['adapter']['median_s']:.2f}s, direct {timings['direct']['median_s']:.2f}s, accuracy {acc}")
    return {"points": len(y), "eps": eps, "version": "standard",
            "iterations": scale.aa_iters or "standard", "square_queries": scale.aa_square_queries or "standard",
            "timings": timings, "accuracy_under_attack": acc,
            "targets": [target("adapter time / direct time", ratio(timings, "adapter", "direct"), "<=", 1.05)],
            "agree": bool(torch.equal(flags["adapter"], flags["direct"]))}
