"""Predicted distributions against the one-hot truth, for clean, initial-adversarial and
final-adversarial inputs.

The initial perturbation is the training pipeline's d_init: uniform in the eps-ball, no gradient
(a test example has no prior from earlier epochs). The final one is d_init plus one sign step of the
threat's step (FGSM-PGK / RegMix), or K PGD steps from d_init.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..methods.views import perturbation_views, random_start
from ..modes import model_mode
from ..threat import ThreatModel

VIEWS = ("clean", "init", "final")


def adversarial_views(model, x, y, threat: ThreatModel, *, final_steps: int = 1, seed: int = 0,
                      batch_size: int = 256, start: str = "uniform") -> dict:
    """{'clean', 'init', 'final'} -> softmax probabilities (N, C) as numpy arrays.

    start: how d_init is drawn (methods.views.random_start): 'sign' (FGSM-PGK's corners of the ball,
    what pgk and regmix train from by default) or 'uniform' in the ball."""
    device = next(model.parameters()).device
    out = {v: [] for v in VIEWS}
    with model_mode(model, training=False), \
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for first in range(0, len(y), batch_size):
            xb, yb = x[first:first + batch_size].to(device), y[first:first + batch_size].to(device)
            views = perturbation_views(model, xb, yb, random_start(xb, threat, kind=start), threat,
                                       steps=final_steps, logits=True)
            for view in VIEWS:
                out[view].append(F.softmax(views.logits[view].float(), 1).cpu())
    return {v: torch.cat(t).numpy().astype(np.float64) for v, t in out.items()}


def reliability(probs, y, bins: int = 15) -> dict:
    """Equal-width confidence bins: count, mean confidence and accuracy per bin, and the expected
    calibration error sum_b (n_b / N) |acc_b - conf_b| (Guo et al. 2017)."""
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    conf, pred = probs.max(1), probs.argmax(1)
    right = pred == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    acc_sum = np.bincount(which, weights=right.astype(float), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, conf_sum / np.maximum(count, 1), np.nan)
        mean_acc = np.where(count > 0, acc_sum / np.maximum(count, 1), np.nan)
    ece = float(np.abs(acc_sum - conf_sum).sum() / max(len(y), 1))
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": mean_acc, "ece": ece}


def distances_to_truth(probs, y) -> dict:
    """Per-example distances between the predicted distribution and the one-hot truth.

    ce: -log p_y (the cross-entropy to the one-hot); tv: total variation 0.5 * ||p - e_y||_1, which
    equals 1 - p_y; brier: ||p - e_y||_2^2.
    """
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    true = probs[np.arange(len(y)), y]
    onehot = np.eye(probs.shape[1])[y]
    return {"ce": -np.log(np.clip(true, 1e-12, None)), "tv": 0.5 * np.abs(probs - onehot).sum(1),
            "brier": ((probs - onehot) ** 2).sum(1), "true_prob": true}


def class_means(probs, y, num_classes: int) -> np.ndarray:
    """(C, C): row c is the mean predicted distribution over the examples of class c (NaN if none)."""
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    out = np.full((num_classes, probs.shape[1]), np.nan)
    for c in range(num_classes):
        if (y == c).any():
            out[c] = probs[y == c].mean(0)
    return out


def softmax_record(model, x, y, threat: ThreatModel, *, final_steps: int = 1, seed: int = 0,
                   bins: int = 15, hist_bins: int = 20, start: str = "uniform") -> tuple[dict, dict]:
    """Arrays and a summary (meta) of every view: per-example probabilities, reliability bins,
    class means and the true-class probability histogram."""
    views = adversarial_views(model, x, y, threat, final_steps=final_steps, seed=seed, start=start)
    labels = y.cpu().numpy()
    num_classes = views["clean"].shape[1]
    arrays = {"labels": labels, "hist_edges": np.linspace(0, 1, hist_bins + 1)}
    summary = {}
    for view, probs in views.items():
        rel = reliability(probs, labels, bins)
        dist = distances_to_truth(probs, labels)
        arrays[f"probs_{view}"] = probs
        arrays[f"rel_count_{view}"] = rel["count"]
        arrays[f"rel_conf_{view}"] = rel["confidence"]
        arrays[f"rel_acc_{view}"] = rel["accuracy"]
        arrays[f"class_mean_{view}"] = class_means(probs, labels, num_classes)
        arrays[f"true_hist_{view}"] = np.histogram(dist["true_prob"], bins=arrays["hist_edges"])[0]
        summary[view] = {"acc": float((probs.argmax(1) == labels).mean()), "ce": float(dist["ce"].mean()),
                         "tv": float(dist["tv"].mean()), "brier": float(dist["brier"].mean()),
                         "ece": rel["ece"], "true_prob": float(dist["true_prob"].mean())}
    arrays["rel_edges"] = np.linspace(0, 1, bins + 1)
    meta = {"views": list(VIEWS), "summary": summary, "n": int(len(labels)), "num_classes": num_classes,
            "threat": {"norm": threat.norm, "eps": threat.eps, "step": threat.step}, "final_steps": final_steps,
            "seed": seed, "start": start}
    return arrays, meta
