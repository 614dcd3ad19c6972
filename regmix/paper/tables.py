"""DIR/tables.md of the RegMix paper's study: the setting, the main table of every method over seeds
(best and last checkpoint), PGD-20 against APGD and AutoAttack on the same points, how the defaults
were chosen (defaults.py), the masking monitor's threshold checked (threshold.py) and one table per
sweep, each read against its method in the main table."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from ..files import atomic_write_text
from ..study.metrics import accuracy, mean_std, median_range, number, points
from .claims import METRICS, values
from .defaults import defaults_section, gamma_section
from .threshold import apgd_drop, choose_masking_threshold, flagged_at, masked, monitor_twins, threshold_section


def _sweep_rows(results, sweep: str, metrics) -> List[str]:
    """One row per variant of the sweep: its seeds and each metric's mean ± std over them."""
    runs = [e for e in results["runs"] if e["sweep"] == sweep]
    rows = []
    for variant in dict.fromkeys(e["variant"] for e in runs):
        method = next(e["method"] for e in runs if e["variant"] == variant)
        seeds = len([e for e in runs if e["variant"] == variant])
        cells = [mean_std(values(results, method, m, (sweep, variant))) for m in metrics]
        rows.append(f"| {variant} | {seeds} | " + " | ".join(cells) + " |")
    return rows


def _same_points_table(results: dict) -> List[str]:
    """PGD-20 against APGD-CE+T and AutoAttack on the same test points (each entry's same_points,
    regmix.study.results), per method of the main table, then per swept variant that has them: how much of
    PGD-20's robustness the stronger attacks take away."""
    def column(runs, name):
        pairs = [e["same_points"][name] for e in runs if name in e.get("same_points", {})]
        pgd, att = [100 * p["pgd20"] for p in pairs], [100 * p["attack"] for p in pairs]
        drop = [a - b for a, b in zip(pgd, att)]
        return [str(len(pairs)) if pairs else "0", mean_std(pgd, 1), mean_std(att, 1), mean_std(drop, 1)]

    def row(label, runs):
        return f"| {label} | " + " | ".join(column(runs, "apgd") + column(runs, "autoattack")) + " |"
    lines = ["## PGD-20 against APGD and AutoAttack on the same points", "",
             "PGD-20 measured on exactly the test points of the stronger evaluation (its first n digits, from the "
             "per-point flags of both records), so the drop is the stronger attack's alone, not a change of points. "
             "A drop of more than a few points means PGD-20 overstated the robustness (a masked gradient).", "",
             "| method | seeds | PGD-20 | APGD-CE+APGD-T | drop | seeds | PGD-20 | AutoAttack | drop |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(e["method"] for e in results["runs"] if not e["sweep"]):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"]]
        lines.append(row(method, runs))
    swept = [e for e in results["runs"] if e["sweep"] and e.get("same_points")]
    for sweep, variant in dict.fromkeys((e["sweep"], e["variant"]) for e in swept):
        lines.append(row(f"sweep `{sweep}`, {variant}",
                         [e for e in swept if (e["sweep"], e["variant"]) == (sweep, variant)]))
    return lines


def _epochs(epochs) -> str:
    return ", ".join(map(str, epochs)) if epochs else "-"


def _monitor_table(results: dict) -> List[str]:
    """What the masking monitor flagged while each run trained (its entry's `monitor`, regmix.study.results)
    beside what the kept checkpoint's evaluations found afterwards: PGD-20 against APGD on the same points.
    One row per main-table run, then per sweep the runs it flagged. Empty when no run has a monitor."""
    runs = [e for e in results["runs"] if e.get("monitor")]
    if not runs:
        return []
    threshold = 100 * runs[0]["monitor"]["threshold"]
    lines = ["## Masking caught while training", "",
             f"The monitor (regmix/training/monitor.py) on the first validation points of every evaluation epoch, "
             f"once the eps is at its full value, read with today's rule from the logged accuracies: masking = "
             f"validation PGD-10 more than {threshold:.0f} points above the strong attack (PGD-10, PGD-CE with "
             f"restarts and PGD-CW); overfitting = FGSM more than {threshold:.0f} points above PGD-10 while PGD-10 "
             "fell more than as much below its best. 'kept' is the epoch best.pt holds (selected on PGD-10), "
             "'strong' the epoch eval.select=strong would keep; the last column is PGD-20 minus APGD-CE+T of the "
             "kept checkpoint on the same test points (what masking hid); a sweep's row counts its flagged runs and, of "
             "those with APGD, the masked ones (a drop above 10 points).", "",
             "| run | kept | strong | masking epochs | overfitting epochs | max PGD-10 - strong | max FGSM - PGD-10 "
             "| PGD-20 - APGD (test) |", "|---|---|---|---|---|---|---|---|"]
    for e in (e for e in runs if not e["sweep"]):
        m = e["monitor"]
        lines.append(f"| {e['name']} | {m['select_pgd_epoch']} | {m['select_strong_epoch']} | "
                     f"{_epochs(m['masking_epochs'])} | {_epochs(m['overfit_epochs'])} | {points(m['max_pgd_gap'])} | "
                     f"{points(m['max_fgsm_gap'])} | {points(apgd_drop(e))} |")
    for sweep in dict.fromkeys(e["sweep"] for e in runs if e["sweep"]):
        swept = [e for e in runs if e["sweep"] == sweep]
        flagged = [e["name"] for e in swept if e["monitor"]["masking_epochs"] or e["monitor"]["overfit_epochs"]]
        judged = [e for e in swept if masked(e) is not None]
        hidden = [e["name"] for e in judged if masked(e)]
        lines.append(f"| sweep `{sweep}`: {len(flagged)} of {len(swept)} runs flagged"
                     f"{' (' + ', '.join(flagged) + ')' if flagged else ''}"
                     + (f"; {len(hidden)} of {len(judged)} with APGD masked"
                        f"{' (' + ', '.join(hidden) + ')' if hidden else ''}" if judged else "") + " | | | | | | | |")
    return lines


def _twin_monitor_table(sweep: str, twins: List[dict], threshold=None) -> List[str]:
    """A sweep that trains only, to watch the main runs' trainings with another monitor pair (its runs'
    monitor_twins): each run beside its main-table twin, both monitors' flagged epochs and largest gaps,
    and whether the twin's kept checkpoint was masked on the test split. The test columns read for a run
    only when it is the twin's training (validation PGD-10 equal epoch for epoch)."""
    def where(m):
        every = m.get("every") or 1
        return f"{m.get('points') or '-'} points, every {'epoch' if every == 1 else f'{every} epochs and the last'}"
    attack = twins[0]["attack"]
    lines = [f"## Sweep `{sweep}`", "",
             f"Training only: each run is its main-table twin's training watched by the `{attack}` monitor pair "
             f"({where(twins[0][attack])}), beside the twin's own `pgd` pair ({where(twins[0]['pgd'])}): flagged "
             "epochs and the largest PGD-10 - strong gap once the eps is at its full value (and the epochs flagged "
             "for catastrophic overfitting: FGSM far above a falling PGD-10, on the monitor's points); the last two "
             "columns are the twin's kept checkpoint on the test split (PGD-20 - APGD-CE+T on the same points). "
             "Validation: seconds of validation with its monitor, summed over the run's epochs, beside the run's "
             "training seconds.", "",
             f"| run | twin | same training | {attack}: masking epochs | {attack}: max gap | {attack}: overfitting "
             f"epochs | pgd: masking epochs | pgd: max gap | validation (s), {attack} / pgd | training (s) "
             "| PGD-20 - APGD (test) | masked |", "|---" * 12 + "|"]
    for r in twins:
        same = r["same_training"]
        drop = points(r["test_drop"]) if same and r["test_drop"] is not None else "-"
        was = "-" if not same or r["masked"] is None else ("yes" if r["masked"] else "no")
        lines.append(f"| {r['name']} | {r['twin']} | {'yes' if same else 'no'} "
                     f"| {_epochs(r[attack]['masking_epochs'])} | {points(r[attack]['max_pgd_gap'])} "
                     f"| {_epochs(r[attack]['overfit_epochs'])} "
                     f"| {_epochs(r['pgd']['masking_epochs'])} "
                     f"| {points(r['pgd']['max_pgd_gap'])} | {number(r['validation_s'][attack], 0)} / "
                     f"{number(r['validation_s']['pgd'], 0)} | {number(r['train_s'], 0)} | {drop} | {was} |")
    if threshold is not None:  # both pairs re-read at the threshold the study's rule chose
        judged = [r for r in twins if r["same_training"] and r["masked"] is not None]
        counts = []
        for pair in (attack, "pgd"):
            flags = [(r, flagged_at(r[pair], threshold)) for r in judged]
            if any(f is None for _, f in flags):
                return lines
            hit = [r["name"] for r, f in flags if f and r["masked"]]
            wrong = [r["name"] for r, f in flags if f and not r["masked"]]
            counts.append(f"`{pair}` flags {len(hit)} of {sum(bool(r['masked']) for r in judged)} masked runs and "
                          f"{len(wrong)} of {sum(not r['masked'] for r in judged)} unmasked"
                          + (f" ({', '.join(wrong)})" if wrong else ""))
        lines += ["", f"At the threshold the study's rule chose ({points(threshold)} points; either rule, masking or "
                      f"catastrophic overfitting, over the armed epochs): " + "; ".join(counts) + "."]
    return lines


def _reference_row(results, sweep: str, metrics) -> List[str]:
    """The sweep's method in the main table (its recipe, no override) on the sweep's seeds, first in the
    sweep's table, so that each variant reads against what it changes."""
    runs = [e for e in results["runs"] if e["sweep"] == sweep]
    seeds = {e["seed"] for e in runs}
    ref = [e for e in results["runs"] if not e["sweep"] and e["method"] == runs[0]["method"] and e["seed"] in seeds]
    if not ref:
        return []
    cells = [mean_std([v for v in (METRICS[m][0](e) for e in ref) if v is not None]) for m in metrics]
    return [f"| *{runs[0]['method']}, main table (seeds {', '.join(map(str, sorted(seeds)))})* | {len(ref)} | "
            + " | ".join(cells) + " |"]


def _machines_line(runs: List[dict]) -> List[str]:
    """Under the main table: the machines its train times were measured on, with how many runs each (a
    run resumed on another machine counts under both and is named), so that times of two machines are
    not compared as one. Results written before the field have no line."""
    if not any("train_machines" in e for e in runs):
        return []
    counts: Dict[str, int] = {}
    for e in runs:
        for name in e.get("train_machines") or ["not recorded"]:
            counts[name] = counts.get(name, 0) + 1
    mixed = [e["name"] for e in runs if len(e.get("train_machines") or []) > 1]
    line = "Train times measured on: " + "; ".join(f"{name if name == 'not recorded' else f'`{name}`'} ({n} run{'s' * (n != 1)})"
                                                 for name, n in counts.items())
    if len(counts) > 1:
        line += ". Times of different machines are not comparable"
    if mixed:
        line += f"; resumed on another machine: {', '.join(mixed)}"
    return ["", line + "."]


def write_tables(results: dict, dest: Path) -> Path:
    """DEST/tables.md: the setting, the main table (best and last checkpoint), PGD-20 against the stronger
    attacks on the same points, the choice of the defaults (defaults.py) and a table per sweep."""
    s = results["setting"]
    lines = ["# Study tables", "", f"Suite `{results['suite']}`; regenerate with "
             f"`{results.get('command') or 'regmix study ... --results'}`. Accuracies in percent on the test split, "
             "mean ± std over seeds."]
    if s:
        lines += ["", f"Setting: {s['dataset']}, {s['model']['name']} {s['model'].get('options') or ''}, "
                      f"{s['threat']['norm']} eps {s['threat']['eps']}, {s['epochs']} epochs (eps warm-up "
                      f"{s['eps_warmup_epochs']}), batch {s['batch_size']}, {s['optim']['name']} lr {s['optim']['lr']}."]
    evals = results["evals"]
    main = ["clean", "PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "PGD-20 at 1.5x eps", "PGD-20 at 2x eps"]
    points = lambda name: f"{evals[name]['n'] or 'all'} test points" if name in evals else "-"  # noqa: E731
    lines += ["", "## Main table (best checkpoint)", "",
              f"PGD-20 / CW-20: {points('whole')}; APGD-CE + APGD-T: {points('apgd')}; standard AutoAttack: "
              f"{points('autoattack')}, first seed only. Train time: sum of a run's epoch times (s), median "
              "(min-max) over seeds: a run that shared the CPU with other work shows as an outlier, not as a "
              "shifted mean.", "",
              "| method | seeds | " + " | ".join(main) + " | train time (s) |", "|---" * (len(main) + 3) + "|"]
    for method in dict.fromkeys(e["method"] for e in results["runs"] if not e["sweep"]):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"]]
        cells = [mean_std(values(results, method, m)) for m in main]
        train_time = median_range([e["train_s"] for e in runs])
        lines.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + f" | {train_time} |")
    lines += _machines_line([e for e in results["runs"] if not e["sweep"]])
    last = [("clean", accuracy("whole_last", "clean")), ("PGD-20", accuracy("whole_last", "pgd20")),
            ("CW-20", accuracy("whole_last", "cw20"))]
    lines += ["", "## Last checkpoint (end of training)", "", "| method | seeds | clean | PGD-20 | CW-20 |", "|---|---|---|---|---|"]
    for method in dict.fromkeys(e["method"] for e in results["runs"] if not e["sweep"]):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"]]
        cells = [mean_std([v for v in (g(e) for e in runs) if v is not None]) for _, g in last]
        lines.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += ["", *_same_points_table(results)]
    for section in (_monitor_table(results), threshold_section(results)):
        if section:
            lines += ["", *section]
    for choice in (defaults_section(results), gamma_section(results)):
        if choice:
            lines += ["", *choice]
    sweep_metrics = ["clean", "PGD-20", "CW-20", "APGD-CE+APGD-T"]
    twins = {r["name"]: r for r in monitor_twins(results)}
    chosen = choose_masking_threshold(results)  # the threshold the twin tables re-read both pairs at
    for sweep in dict.fromkeys(e["sweep"] for e in results["runs"] if e["sweep"]):
        runs = [e for e in results["runs"] if e["sweep"] == sweep]
        if not any(e["evals"] for e in runs) and all(e["name"] in twins for e in runs):
            lines += ["", *_twin_monitor_table(sweep, [twins[e["name"]] for e in runs],
                                               chosen and chosen["threshold"])]
            continue
        metrics = sweep_metrics + ["AutoAttack"] * any("autoattack" in e["evals"] for e in runs)
        lines += ["", f"## Sweep `{sweep}`", "", "| variant | seeds | " + " | ".join(metrics) + " |",
                  "|---" * (len(metrics) + 2) + "|"]
        lines += _reference_row(results, sweep, metrics) + _sweep_rows(results, sweep, metrics)
    path = dest / "tables.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
