"""The robust accuracy of the sweep's grid point nearest to a set of weights."""
from __future__ import annotations

import json
import math
from pathlib import Path

from regmix.methods import resolved_options
from regmix.sweep import collect

WEIGHTS = ("alpha", "beta", "gamma", "temperature")
ROBUST_ORDER = ("aa", "worst", "pgd50", "pgd20", "cw20", "pgd10", "pgd", "fgsm")


def swept_keys(sweep_dir) -> list:
    """The weights the sweep varied (from sweep.json; every weight when it is missing)."""
    spec = Path(sweep_dir) / "sweep.json"
    if spec.exists():
        grid = json.loads(spec.read_text()).get("grid", {})
        keys = [k.split(".")[-1] for k in grid if k.split(".")[-1] in WEIGHTS]
        if keys:
            return keys
    return list(WEIGHTS)


def effective_weights(config: dict) -> dict:
    """The weights a run trained with, from its config.yaml, which records every option of the method;
    resolved_options fills what a run written before that left to the method's defaults."""
    method = config.get("method") or {}
    options = resolved_options(method["name"], method.get("options"))
    return {k: options.get(k) for k in WEIGHTS}


def load_points(sweep_dir) -> list:
    """One row per grid point: its weights and its accuracies, averaged over seeds."""
    points = {}
    for row in collect(sweep_dir):
        if not row["accuracy"]:
            continue
        weights = effective_weights(row["config"])
        where = tuple(weights[k] for k in WEIGHTS)
        point = points.setdefault(where, {"weights": weights, "runs": [], "source": set()})
        point["runs"].append(row["accuracy"])
        point["source"].add(row["source"])
    out = []
    for point in points.values():
        names = set.intersection(*(set(a) for a in point["runs"]))
        out.append({"weights": point["weights"], "seeds": len(point["runs"]),
                    "source": "+".join(sorted(point["source"])),
                    "accuracy": {k: sum(a[k] for a in point["runs"]) / len(point["runs"]) for k in names}})
    return out


def robust_metric(accuracy: dict):
    """The strongest attack the record holds (AutoAttack before PGD before FGSM)."""
    for name in ROBUST_ORDER:
        if name in accuracy:
            return name
    return next((k for k in accuracy if k != "clean"), None)


def nearest(points: list, weights: dict, keys) -> dict | None:
    """The point with the smallest Euclidean distance over the swept keys (a weight left at its
    default in the sweep counts as that value)."""
    def distance(point):
        return math.sqrt(sum((float(point["weights"][k] or 0) - float(weights[k])) ** 2 for k in keys))
    if not points:
        return None
    best = min(points, key=distance)
    return {**best, "distance": distance(best)}
