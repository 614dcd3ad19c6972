"""Checks that a robustness number is one a reviewer would accept (Carlini et al. 2019, "On
evaluating adversarial robustness"; Athalye et al. 2018). Each failed check is a warning string.

- a very large eps must break (almost) every point;
- accuracy must not increase as the attack gets more steps or a larger eps;
- AutoAttack must not be above the white-box attacks, nor FGSM below PGD;
- PGD/CW must not overstate AutoAttack or APGD by more than MASKED_DROP: where they do, the gradients are
  masked and the PGD number is no robustness claim (the mnist5k study's RegMix seeds 1 and 4: 10.8 and
  16.4 points over APGD-CE + APGD-T, which the default masking monitor while training did not flag);
- a black-box attack (Square) must not be far stronger than the white-box ones: if it is, the
  gradients are masked and the white-box numbers mean little.
"""
from __future__ import annotations

from typing import Dict, List

import torch

from ..attacks import PGD
from ..attacks.specs import parse_attack
from ..attacks.flags import attack_flags, clean_flags

LARGE_EPS = {"linf": 0.5, "l2": None}  # l2: half the norm of a mid-grey image, set per input size
TOLERANCE = 0.01
MASKED_DROP = 0.10  # PGD/CW above AutoAttack or APGD by more than this on the same points: gradient masking
STRONG_KINDS = ("autoattack", "apgd", "apgd_dlr", "apgd_t")


def _acc(flags):
    return flags.float().mean().item()


def check_accuracies(accuracy: Dict[str, float], specs, n: int) -> List[str]:
    """Checks that need no extra attack, only the accuracies already measured."""
    warnings = []
    tol = TOLERANCE + 1.0 / max(n, 1)
    for kind in ("pgd", "cw"):
        runs = sorted((s.steps, s.name) for s in specs if s.kind == kind)
        for (_, a), (_, b) in zip(runs, runs[1:]):
            if accuracy[b] > accuracy[a] + tol:
                warnings.append(f"accuracy rose with more steps: {a} {accuracy[a]:.3f} < {b} {accuracy[b]:.3f}")
    white = {s.name: accuracy[s.name] for s in specs if s.kind in ("pgd", "cw")}
    if "fgsm" in accuracy and white and accuracy["fgsm"] < min(white.values()) - tol:
        weakest = min(white, key=white.get)
        warnings.append(f"FGSM ({accuracy['fgsm']:.3f}) is stronger than {weakest} ({white[weakest]:.3f}): "
                        "the multi-step attack is failing, a sign of gradient masking")
    for s in specs:
        if s.kind == "autoattack" and s.name != "square" and white and accuracy[s.name] > min(white.values()) + tol:
            weakest = min(white, key=white.get)
            warnings.append(f"{s.name} ({accuracy[s.name]:.3f}) is above {weakest} ({white[weakest]:.3f}): "
                            "AutoAttack should be at least as strong")
    strong = {s.name: accuracy[s.name] for s in specs if s.kind in STRONG_KINDS}
    if white and strong:
        best, found = min(white, key=white.get), min(strong, key=strong.get)
        if white[best] > strong[found] + MASKED_DROP:
            warnings.append(f"{best} ({white[best]:.3f}) overstates {found} ({strong[found]:.3f}) by "
                            f"{100 * (white[best] - strong[found]):.1f} points: gradient masking; report {found}, "
                            f"not {best}")
    return warnings


def probe(model, x, y, threat, *, device="cpu", batch_size=256, seed=0, square=True) -> dict:
    """Extra attacks on a subset (x, y): PGD-20 at eps/2, eps, 2*eps and at a very large eps, and
    Square (1,000 queries). Returns accuracies and warnings."""
    results, warnings = {}, []
    right = clean_flags(model, x, y, device=device, batch_size=batch_size)

    def pgd_acc(eps, steps=20):
        torch.manual_seed(seed)
        t = threat.with_(eps=min(eps, 1.0 if threat.norm == "linf" else 1e4), step=None, steps=steps)
        return _acc(attack_flags(model, PGD(model, t), x, y, right, device=device, batch_size=batch_size))

    for scale in (0.5, 1.0, 2.0):
        results[f"pgd20_eps_x{scale:g}"] = pgd_acc(threat.eps * scale)
    series = [results[f"pgd20_eps_x{s:g}"] for s in (0.5, 1.0, 2.0)]
    tol = TOLERANCE + 1.0 / len(y)
    if any(b > a + tol for a, b in zip(series, series[1:])):
        warnings.append(f"accuracy rose with eps: PGD-20 at eps x0.5, x1, x2 = "
                        f"{', '.join(f'{v:.3f}' for v in series)}")

    large = LARGE_EPS[threat.norm] or 0.5 * x[0].numel() ** 0.5
    results["pgd20_large_eps"] = pgd_acc(large, steps=50)
    if results["pgd20_large_eps"] > 0.1:
        warnings.append(f"accuracy stays at {results['pgd20_large_eps']:.3f} under PGD at eps {large:.3g} "
                        "(should be near 0): the attack cannot reach points it should, a sign of gradient masking")

    if square:
        try:
            runner = parse_attack("square").build(model, threat, seed=seed, device=device,
                                                  batch_size=batch_size, square_queries=1000)
        except Exception as err:  # AutoAttack missing: say so instead of failing the evaluation
            warnings.append(f"Square check skipped: {err}")
        else:
            results["square1000"] = _acc(runner.run(x, y, right.clone())["robust"])
            results["pgd20_same_points"] = results["pgd20_eps_x1"]
            if results["square1000"] < results["pgd20_eps_x1"] - 0.05:
                warnings.append(f"black-box Square ({results['square1000']:.3f}) is far stronger than white-box "
                                f"PGD-20 ({results['pgd20_eps_x1']:.3f}) on the same points: gradients are masked")
    return {"n": len(y), "accuracy": results, "warnings": warnings}
