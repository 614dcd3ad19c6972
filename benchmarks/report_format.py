"""The cells and small tables every section of docs/benchmarks.md shares: timings, ratio targets, profiles."""
from __future__ import annotations


def fmt_ms(t):
    return f"{1000 * t['median_s']:.1f} ms (spread {100 * t['spread']:.0f}%, n={t['repeats']})"


def fmt_s(t):
    return f"{t['median_s']:.3f} s (spread {100 * t['spread']:.0f}%, n={t['repeats']})"


def targets_table(rows):
    lines = ["| ratio | value | target | met | note |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['value']:.3f} | {r['target']} | {'yes' if r['met'] else '**no**'} | {r.get('note', '')} |")
    return lines


def profile_table(profiles: dict):
    """Shares of self CPU time by kind of operation, one column per contender."""
    kinds = sorted({k for p in profiles.values() for k in p}, key=lambda k: -max(p.get(k, 0) for p in profiles.values()))
    lines = ["| kind | " + " | ".join(profiles) + " |", "|---|" + "---|" * len(profiles)]
    for k in kinds:
        lines.append(f"| {k} | " + " | ".join(f"{100 * p.get(k, 0):.1f}%" for p in profiles.values()) + " |")
    return lines
