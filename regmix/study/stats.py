"""Is a difference between two methods larger than the spread over seeds? Welch's t-test and a
bootstrap interval of the difference in means, and the verdict drawn from both.

Both are computed on the per-seed values (one number per trained model), never on per-example
values: the seeds are the replicates, so with three seeds only a large, consistent difference is
called a win. A verdict is "holds" or "reversed" only when Welch's p < 0.05 and the 95% bootstrap
interval excludes zero; anything else is "unclear".
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); nan when it is undefined (fewer than
    two values in a group, or no spread in either)."""
    from scipy import stats  # slow to import (it comes with scikit-learn); only Welch's p needs it
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:
        return 0.0 if a.mean() != b.mean() else 1.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def bootstrap_interval(a: Sequence[float], b: Sequence[float], *, level: float = 0.95,
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple:
    """Percentile interval of mean(a) - mean(b), resampling each group's values with replacement
    (a fixed generator: the same values give the same interval)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    da = a[rng.integers(0, len(a), (resamples, len(a)))].mean(1)
    db = b[rng.integers(0, len(b), (resamples, len(b)))].mean(1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(da - db, [tail, 100 - tail])
    return (float(low), float(high))


def compare(a: Sequence[float], b: Sequence[float], *, higher_is_better: bool = True) -> dict:
    """a (the claimed better method) against b, one value per seed each.

    Returns {'mean_a', 'mean_b', 'diff' (a - b), 'p' (Welch), 'ci' (bootstrap 95% of a - b),
    'n_a', 'n_b', 'verdict'}: 'holds' (a significantly better), 'reversed' (b significantly better),
    'unclear' (within seed noise), 'unclear (one seed)' where a group has a single value."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    result = {"n_a": len(a), "n_b": len(b), "mean_a": float(np.mean(a)) if a else math.nan,
              "mean_b": float(np.mean(b)) if b else math.nan}
    result["diff"] = result["mean_a"] - result["mean_b"]
    result["p"] = welch_p(a, b)
    result["ci"] = list(bootstrap_interval(a, b))
    if len(a) < 2 or len(b) < 2:
        result["verdict"] = "unclear (one seed)"
        return result
    better = result["diff"] > 0 if higher_is_better else result["diff"] < 0
    low, high = result["ci"]
    excludes_zero = low > 0 or high < 0
    significant = result["p"] < ALPHA and excludes_zero
    result["verdict"] = ("holds" if better else "reversed") if significant else "unclear"
    return result
