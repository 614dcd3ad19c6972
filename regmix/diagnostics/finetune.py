"""Does fine-tuning at other RegMix weights help? A question with a control:

from the trained weights, `steps` batches of RegMix at the chosen (alpha, beta, gamma, temperature),
and the same budget at the run's own weights (the control: what the budget alone does), with the
robust accuracy (PGD on a fixed subset of the validation split) of the trained model, of the
fine-tune and of the control. Both fine-tunes see the same batches in the same order."""
from __future__ import annotations

from ..attacks import create_attack
from ..attacks.flags import robust_flags
from ..methods import resolved_options
from ..training.finetune import regmix_options, finetune
from .compute import fixed_subset


def robust_accuracy(model, config, x, y, *, attack: str = "pgd10") -> dict:
    """{'clean': acc, attack: acc} in [0, 1] of model on (x, y) under the run's threat."""
    device = next(model.parameters()).device
    threat = config.eval_threat()
    flags = robust_flags(model, x, y, {attack: lambda m: create_attack(attack, m, threat)}, device=device)
    return {name: f.float().mean().item() for name, f in flags.items()}


def finetune_comparison(model, config, weights: dict, *, steps: int, n: int = 256, attack: str = "pgd10",
                        seed: int = 0, optimizer: str = "run", lr: float | None = None, batch_size: int = 128,
                        on_step=None, check=None, before=None) -> dict:
    """The trained model, its fine-tune at `weights` and the control at the run's own weights, each
    with its robust accuracy on the same validation points. on_step(step, total, loss) counts over
    both fine-tunes (total = 2 * steps); before: the trained model's accuracy if already measured.

    Returns {'weights', 'own', 'steps', 'n', 'attack', 'before', 'after', 'control', 'model',
    'losses', 'control_losses', 'optimizer'}."""
    own = resolved_options("regmix", regmix_options(config), config.training_threat())
    own = {k: own[k] for k in weights}
    x, y = fixed_subset(config, "val", n)
    if before is None:
        before = robust_accuracy(model, config, x, y, attack=attack)
    options = dict(steps=steps, seed=seed, optimizer=optimizer, lr=lr, batch_size=batch_size, check=check)
    first = (lambda s, total, loss: on_step(s, 2 * steps, loss)) if on_step is not None else None
    shifted = (lambda s, total, loss: on_step(steps + s, 2 * steps, loss)) if on_step is not None else None
    tuned, losses, opt = finetune(model, config, weights, on_step=first, **options)
    try:
        control, control_losses, _ = finetune(model, config, own, on_step=shifted, **options)
    except Exception as err:   # stopped during the control: what is kept is the fine-tune at `weights`
        err.partial = (tuned, losses, opt)
        raise
    return {"weights": dict(weights), "own": own, "steps": int(steps), "n": len(y), "attack": attack,
            "before": before, "after": robust_accuracy(tuned, config, x, y, attack=attack),
            "control": robust_accuracy(control, config, x, y, attack=attack), "model": tuned,
            "losses": losses, "control_losses": control_losses, "optimizer": opt}
