"""OUT/report.md of `regmix study`: the report module's tables (mean +- std over seeds) per evaluation
of the main table, one table per sweep (a row per grid point or variant), training wall times."""
from __future__ import annotations

from pathlib import Path

from ..evaluation.records import load_record
from ..evaluation.report import build_table, format_table
from ..files import atomic_write_text
from .ledger import epoch_times, run_dir, train_machines


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _cell(value) -> str:
    if value is None:
        return "-"
    mean, std = value
    return f"{mean:.2f}" if std == 0 else f"{mean:.2f} +- {std:.2f}"


def _sweep_table(name, runs, evals, done, spec) -> list:
    """One row per variant of sweep `name` for evaluation `spec`, aggregated by build_table."""
    variants = list(dict.fromkeys(r.variant for r in runs if r.sweep == name))
    rows, columns = [], []
    for variant in variants:
        records = [load_record(done[t.key]) for t in evals
                   if t.run.sweep == name and t.run.variant == variant and t.spec.name == spec.name and t.key in done]
        if not records:
            continue
        table = build_table(records)
        columns += [c for c in table["columns"] if c not in columns]
        rows += [(variant, row) for row in table["rows"]]
    if not rows:
        return []
    lines = [f"### {name}: {spec.name} ({spec.attacks}, n = {spec.n or 'whole test split'})", "",
             "| variant | seeds | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    lines += [f"| {variant} | {row['count']} | " + " | ".join(_cell(row.get(c)) for c in columns) + " |"
              for variant, row in rows]
    return lines + [""]


def write_report(out: Path, suite, runs, evals, ledger) -> Path:
    """OUT/report.md from the suite, its planned runs and evaluations (runner.plan) and the ledger."""
    done = ledger.get("evals_done") or {}
    main = [r for r in runs if not r.sweep]
    lines = [f"# Study {suite.name}{' (smoke)' if suite.smoke else ''}", "",
             f"Suite file: `{suite.file.name}`; seeds {', '.join(str(s) for s in dict.fromkeys(r.seed for r in main))}. "
             "Accuracies in percent, mean +- std over seeds.", ""]
    for spec in suite.evals:
        records = [load_record(done[t.key]) for t in evals
                   if not t.run.sweep and t.spec.name == spec.name and t.key in done]
        radius = f", eps x{spec.eps_scale:g}" if spec.eps_scale != 1 else ""
        lines += [f"## {spec.name}: {spec.attacks}, n = {spec.n or 'whole test split'}, {spec.checkpoint} checkpoint{radius}", ""]
        lines += [format_table(build_table(records), "md") if records else "(no records yet)", ""]
    sweeps = list(dict.fromkeys(r.sweep for r in runs if r.sweep))
    if sweeps:
        lines += ["## Sweeps and ablations", ""]
        for name in sweeps:
            for spec in suite.evals:
                lines += _sweep_table(name, runs, evals, done, spec)
    lines += ["## Training wall time (s, sum of epoch times)", "", "| method | seeds | mean | runs | measured on |",
              "|---|---|---|---|---|"]
    for method in dict.fromkeys(r.method for r in main):
        folders = [run_dir(out, r) for r in main if r.method == method]
        times = [t for t in (sum(epoch_times(rd)) for rd in folders) if t > 0]
        machines = "; ".join(dict.fromkeys(m for rd in folders for m in train_machines(rd))) or "-"
        mean = f"{sum(times) / len(times):.1f}" if times else "-"
        lines.append(f"| {method} | {len(times)} | {mean} | {', '.join(f'{t:.1f}' for t in times)} | {machines} |")
    path = Path(out) / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
