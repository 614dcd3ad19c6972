"""Numbers read from a study's results (results.py's dict, one entry per finished run), and how a set
of per-seed values is written in a table.

A metric is a getter: it takes one run's entry and returns a number, or None where the run has no such
number (an evaluation not made, a record not computed). The makers below build the getters a study's
tables need; which metrics a study reads, and what decides a claim, is the study's own (regmix.paper
names the RegMix paper's).
"""
from __future__ import annotations

import math
import statistics
from typing import Callable, List


def accuracy(spec: str, attack: str) -> Callable:
    """Accuracy (%) under `attack` in the run's evaluation `spec` (a name of the suite's evals)."""
    def get(entry):
        value = entry["evals"].get(spec, {}).get("accuracy", {}).get(attack)
        return None if value is None else 100 * value
    return get


def robust_auc(entry):
    """Mean robust validation accuracy over all epochs (%): higher means robust sooner (or higher)."""
    curve = entry["curve"]["val_pgd"]
    return 100 * statistics.fmean(curve) if curve else None


def epochs_to_90(entry):
    """First epoch at which robust validation accuracy reaches 90% of the run's own best."""
    curve = entry["curve"]["val_pgd"]
    if not curve or max(curve) <= 0:
        return None
    return next(e for e, v in zip(entry["curve"]["epoch"], curve) if v >= 0.9 * max(curve))


def diagnostic(kind: str, *keys) -> Callable:
    """A number of the run's diagnostics summary `kind` (weight, softmax), found by its keys in turn."""
    def get(entry):
        value = entry["summaries"].get(kind)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return None if value is None else float(value)
    return get


def per_seed(results: dict, getter: Callable, method: str, where: tuple) -> List[float]:
    """One value per seed (per run) of `getter` for the runs of `method` in (sweep, variant) `where`
    (("", "") for the main table); runs without the number are left out."""
    found = [getter(e) for e in results["runs"]
             if e["method"] == method and (e["sweep"], e["variant"]) == tuple(where)]
    return [v for v in found if v is not None and not (isinstance(v, float) and math.isnan(v))]


def mean_std(vals, digits=2) -> str:
    """'mean ± std' over seeds ('mean' for one value, '-' for none)."""
    if not vals:
        return "-"
    mean = statistics.fmean(vals)
    return f"{mean:.{digits}f}" if len(vals) == 1 else f"{mean:.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def median_range(vals) -> str:
    """'median (min-max)' over seeds, as whole numbers: an outlier shows as one, not as a shifted mean."""
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.0f}"
    return f"{statistics.median(vals):.0f} ({min(vals):.0f}-{max(vals):.0f})"


def number(x, digits=2) -> str:
    """x with `digits` decimals, '-' for None or nan."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def points(fraction, digits=1) -> str:
    """An accuracy or a gap given as a fraction, in percentage points; '-' for None or nan."""
    return number(None if fraction is None else 100 * fraction, digits)
