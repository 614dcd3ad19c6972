"""(2) Attack throughput: regmix's PGD against torchattacks' PGD (same model, batch, steps, eps, step;
both from a random start), and per iteration against fra31's APGD-CE (pyautoattack)."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

import regmix
from regmix.attacks import PGD

from .fixtures import accuracy, digits
from .profiling import profile_shares
from .timing import alternate, ratio, target

DEPS = Path(__file__).resolve().parent / ".deps"
STEPS = 10


def import_torchattacks():
    """torchattacks from benchmarks/.deps (benchmarks/setup.sh) or the environment; None if absent."""
    if DEPS.is_dir() and str(DEPS) not in sys.path:
        sys.path.append(str(DEPS))
    try:
        import torchattacks
    except ImportError:
        return None
    return torchattacks


def run(model, eps, scale, device="cpu", log=print) -> dict:
    x, y, _ = digits("test", scale.attack_points)
    x, y = x.to(device), y.to(device)
    with torch.no_grad():
        right = model(x).argmax(1) == y
    x, y = x[right], y[right]  # APGD attacks only clean-correct points: give all the same
    threat = regmix.ThreatModel("linf", eps, step=eps / 4, steps=STEPS)
    ours = PGD(model, threat)
    results = {}

    def run_ours():
        torch.manual_seed(0)
        results["regmix_pgd"] = ours(x, y)

    contenders = {"regmix_pgd": run_ours}
    out = {"points": len(y), "eps": eps, "steps": STEPS, "step": threat.step, "batch": len(y)}
    torchattacks = import_torchattacks()
    if torchattacks is None:
        out["torchattacks"] = "skipped: torchattacks is not installed; run benchmarks/setup.sh"
        log(f"[attack] {out['torchattacks']}")
    else:
        theirs = torchattacks.PGD(model, eps=eps, alpha=threat.step, steps=STEPS, random_start=True)

        def run_theirs():
            torch.manual_seed(0)
            results["torchattacks_pgd"] = theirs(x, y)
        contenders["torchattacks_pgd"] = run_theirs
        out["torchattacks"] = getattr(torchattacks, "__version__", "installed")

    try:  # a regmix dependency, but absent from a bare GPU image (benchmarks/gpu_lease.sh)
        from pyautoattack.autopgd_base import APGDAttack
    except ImportError:
        APGDAttack = None
        log("[attack] APGD-CE skipped: pyautoattack is not installed")
    if APGDAttack is not None:
        apgd = APGDAttack(model, n_iter=STEPS, norm="Linf", n_restarts=1, eps=eps, seed=0, loss="ce",
                          device=str(device))

        def run_apgd():
            results["apgd_ce"] = apgd.perturb(x, y)
        contenders["apgd_ce"] = run_apgd

    model.eval()
    timings = alternate(contenders, repeats=scale.repeats, warmup=scale.warmup, device=device)
    out["timings"] = timings
    out["profile"] = {k: profile_shares(fn) for k, fn in contenders.items()}
    out["images_per_s"] = {k: len(y) / t["median_s"] for k, t in timings.items()}
    out["accuracy_under_attack"] = {k: accuracy(model, v, y) for k, v in results.items()}
    out["targets"] = []
    if "torchattacks_pgd" in timings:
        out["targets"].append(target("regmix PGD speed / torchattacks PGD speed",
                                     ratio(timings, "torchattacks_pgd", "regmix_pgd"), ">=", 1.0))
    # per iteration: both make one forward and one input-gradient pass per iteration
    if "apgd_ce" in timings:
        out["apgd_ce_time_per_iteration_vs_regmix_pgd_step"] = ratio(timings, "apgd_ce", "regmix_pgd")
    acc = out["accuracy_under_attack"]
    if "torchattacks_pgd" in acc:
        # same attack, same random-start law: accuracies agree up to the random start's noise
        out["checks"] = {"same_accuracy_as_torchattacks": abs(acc["regmix_pgd"] - acc["torchattacks_pgd"]) <= 2.0 / len(y) + 0.02}
    log(f"[attack] images/s {{{', '.join(f'{k}: {v:.0f}' for k, v in out['images_per_s'].items())}}}, "
        f"accuracy {acc}")
    return out
