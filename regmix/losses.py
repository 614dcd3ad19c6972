"""The paper's loss terms as plain functions of logits.

KL(P||Q) = sum_c P_c (log P_c - log Q_c), from log-softmax for stability. `batchmean` sums over
classes and averages over the batch; `mean` averages over batch x classes (C times smaller).
With a temperature T != 1 the softmax uses logits / T and the term is scaled by T^2, so that its
gradient keeps the size it has at T = 1 (Hinton et al. 2015).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

KL_REDUCTIONS = ("batchmean", "mean")


def _check_weight(name, value):
    if value < 0:
        raise ValueError(f"{name}: must be >= 0, got {value}")


def kl(logits_p: torch.Tensor, logits_q: torch.Tensor, *, temperature: float = 1.0,
       reduction: str = "batchmean", detach_p: bool = False) -> torch.Tensor:
    """KL(P || Q) with P = softmax(logits_p / T), Q = softmax(logits_q / T).

    Gradients flow into both arguments unless detach_p (which makes P a fixed target).
    """
    if temperature <= 0:
        raise ValueError(f"temperature: must be > 0, got {temperature}")
    if reduction not in KL_REDUCTIONS:
        raise ValueError(f"reduction: must be one of {KL_REDUCTIONS}, got {reduction!r}")
    if detach_p:
        logits_p = logits_p.detach()
    log_p = F.log_softmax(logits_p.float() / temperature, dim=1)
    log_q = F.log_softmax(logits_q.float() / temperature, dim=1)
    pointwise = log_p.exp() * (log_p - log_q)
    value = pointwise.sum() / logits_p.shape[0] if reduction == "batchmean" else pointwise.mean()
    return value * temperature ** 2


def amr_terms(logits_final, logits_init, alpha, beta, *, temperature=1.0, reduction="batchmean",
              detach_target=False):
    """(alpha * KL(f_final || f_init), beta * KL(f_init || f_final)): AMR's two weighted directions."""
    _check_weight("alpha", alpha)
    _check_weight("beta", beta)
    options = dict(temperature=temperature, reduction=reduction, detach_p=detach_target)
    return (alpha * kl(logits_final, logits_init, **options),
            beta * kl(logits_init, logits_final, **options))


def amr(logits_final, logits_init, alpha, beta, temperature=1.0, *, reduction="batchmean",
        detach_target=False) -> torch.Tensor:
    """Adversarial Mutual Regularization:
    alpha * KL(f(x + d_final) || f(x + d_init)) + beta * KL(f(x + d_init) || f(x + d_final))."""
    forward, backward = amr_terms(logits_final, logits_init, alpha, beta, temperature=temperature,
                                  reduction=reduction, detach_target=detach_target)
    return forward + backward


def agr(logits_clean, logits_final, gamma, temperature=1.0, *, reduction="batchmean",
        detach_target=False) -> torch.Tensor:
    """Adversarial Generalization Regularization: gamma * KL(f(x) || f(x + d_final)), the clean output
    as the target distribution of the adversarial one."""
    _check_weight("gamma", gamma)
    return gamma * kl(logits_clean, logits_final, temperature=temperature, reduction=reduction,
                      detach_p=detach_target)


def smoothed_targets(y: torch.Tensor, num_classes: int, true_class_target: float = 1.0) -> torch.Tensor:
    """FGSM-PGK's label smoothing: probability `true_class_target` (its factor f) on the true class and
    (1 - f) / (C - 1) on each other class, as float32 (N, C) rows that sum to 1.

    This is not PyTorch's `label_smoothing=e`, whose true class gets 1 - e + e/C: f = 0.8 with C = 100
    is e = (1 - f) C / (C - 1) = 0.202, and 0.8 passed as e would leave the true class about 0.21.
    """
    check_true_class_target(true_class_target)
    if num_classes < 2:
        raise ValueError(f"num_classes: smoothing needs at least 2 classes, got {num_classes}")
    onehot = F.one_hot(y, num_classes).float()
    return onehot * true_class_target + (1 - onehot) * ((1 - true_class_target) / (num_classes - 1))


def check_true_class_target(value, name: str = "true_class_target"):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name}: must be a number in (0, 1] (1 = no smoothing), got {value!r}")


def cross_entropy(logits, y, true_class_target: float = 1.0):
    """Mean cross-entropy against FGSM-PGK's smoothed target (see smoothed_targets), computed as its
    reference code does: -(target * log_softmax(logits)).sum(1).mean().

    true_class_target = 1 is the plain one-hot cross-entropy, taken by F.cross_entropy so that the
    methods without smoothing compute exactly what they always did.
    """
    check_true_class_target(true_class_target)
    logits = logits.float()
    if true_class_target == 1:
        return F.cross_entropy(logits, y)
    target = smoothed_targets(y, logits.shape[1], true_class_target)
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def cw_margin(logits, y):
    """Per-example margin max_{j != y} z_j - z_y (Carlini & Wagner): positive means misclassified."""
    logits = logits.float()
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return other - true
