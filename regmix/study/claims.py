"""The paper's claims, each tested over seeds against the runs of a study (results.py's dict), and
the tables of DIR/tables.md and DIR/claims.md.

Each claim names the methods RegMix is compared with and the metrics that decide it (the first ones
listed, `primary`); every metric is compared with stats.compare (Welch's t and a bootstrap interval
over seeds). A claim "holds" when every primary comparison holds, "does not hold" when any primary
comparison is reversed, and is "unclear" otherwise; the other metrics are shown beside it.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Callable, List, Optional

from ..files import atomic_write_text
from .stats import compare


def _acc(spec: str, attack: str) -> Callable:
    def get(entry):
        value = entry["evals"].get(spec, {}).get("accuracy", {}).get(attack)
        return None if value is None else 100 * value
    return get


def _auc(entry):
    """Mean robust validation accuracy over all epochs (%): higher means robust sooner (or higher)."""
    curve = entry["curve"]["val_pgd"]
    return 100 * statistics.fmean(curve) if curve else None


def _epochs_to_90(entry):
    """First epoch at which robust validation accuracy reaches 90% of the run's own best."""
    curve = entry["curve"]["val_pgd"]
    if not curve or max(curve) <= 0:
        return None
    return next(e for e, v in zip(entry["curve"]["epoch"], curve) if v >= 0.9 * max(curve))


def _diag(kind: str, *keys) -> Callable:
    def get(entry):
        value = entry["summaries"].get(kind)
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return None if value is None else float(value)
    return get


# name -> (getter, higher_is_better, unit)
METRICS = {
    "PGD-20": (_acc("whole", "pgd20"), True, "%"),
    "CW-20": (_acc("whole", "cw20"), True, "%"),
    "APGD-CE+APGD-T": (_acc("apgd", "aa:apgd-ce+apgd-t"), True, "%"),
    "AutoAttack": (_acc("autoattack", "aa"), True, "%"),
    "clean": (_acc("whole", "clean"), True, "%"),
    "PGD-20 at 1.5x eps": (_acc("wide15", "pgd20"), True, "%"),
    "PGD-20 at 2x eps": (_acc("wide2", "pgd20"), True, "%"),
    "robust val. acc., mean over epochs": (_auc, True, "%"),
    "epochs to 90% of best robust val. acc.": (_epochs_to_90, False, "epochs"),
    "Hessian top eigenvalue (adv.)": (_diag("weight", "hessian", "adv"), False, ""),
    "Hessian top eigenvalue (clean)": (_diag("weight", "hessian", "clean"), False, ""),
    "sharpness (adv.)": (_diag("weight", "sharpness", "adv", "max_rise"), False, ""),
    "sharpness (clean)": (_diag("weight", "sharpness", "clean", "max_rise"), False, ""),
}
for _view in ("clean", "final"):
    METRICS[f"p(true), {_view}"] = (_diag("softmax", "summary", _view, "true_prob"), True, "")
    METRICS[f"CE to one-hot, {_view}"] = (_diag("softmax", "summary", _view, "ce"), False, "")
    METRICS[f"ECE, {_view}"] = (_diag("softmax", "summary", _view, "ece"), False, "")

SOFTMAX = [f"{k}, {v}" for v in ("clean", "final") for k in ("p(true)", "CE to one-hot", "ECE")]
MAIN = ("", "")   # (sweep, variant) of the main table
NO_SMOOTHING = {"regmix": ("regmix_no_smoothing", "no_label_smoothing"), "pgk": ("pgk_no_smoothing", "no_label_smoothing"),
                "pgd_at": MAIN}
FIVE_STEP = {"regmix": ("regmix_5step", "multistep_attack"), "pgk": ("pgk_5step", "multistep_attack")}
WIDTH32 = {m: (f"{m}_width32", "width32") for m in ("regmix", "pgk", "pgd_at")}

CLAIMS = [
    {"id": "robustness", "claim": "RegMix is more robust than FGSM-PGK and PGD-AT",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean"]},
    {"id": "robustness_no_smoothing", "claim": "RegMix is more robust, label smoothing off in RegMix and FGSM-PGK",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "clean"], "groups": NO_SMOOTHING},
    {"id": "wider_eps", "claim": "RegMix stays more robust beyond the training eps",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20 at 1.5x eps", "PGD-20 at 2x eps"],
     "metrics": ["PGD-20 at 1.5x eps", "PGD-20 at 2x eps"]},
    {"id": "convergence", "claim": "RegMix converges faster",
     "against": ["pgk", "pgd_at"], "primary": ["robust val. acc., mean over epochs"],
     "metrics": ["robust val. acc., mean over epochs", "epochs to 90% of best robust val. acc."]},
    {"id": "landscape", "claim": "RegMix has a smoother loss landscape",
     "against": ["pgk", "pgd_at"], "primary": ["Hessian top eigenvalue (adv.)"],
     "metrics": ["Hessian top eigenvalue (adv.)", "Hessian top eigenvalue (clean)", "sharpness (adv.)",
                 "sharpness (clean)"]},
    {"id": "landscape_no_smoothing", "claim": "RegMix has a smoother loss landscape, label smoothing off",
     "against": ["pgk", "pgd_at"], "primary": ["Hessian top eigenvalue (adv.)"],
     "metrics": ["Hessian top eigenvalue (adv.)", "Hessian top eigenvalue (clean)", "sharpness (adv.)",
                 "sharpness (clean)"], "groups": NO_SMOOTHING},
    {"id": "softmax", "claim": "RegMix's softmax is closer to the ground truth (each as trained)",
     "against": ["pgk", "pgd_at"], "primary": ["CE to one-hot, clean", "CE to one-hot, final"], "metrics": SOFTMAX},
    {"id": "softmax_no_smoothing", "claim": "RegMix's softmax is closer to the ground truth, label smoothing off",
     "against": ["pgk", "pgd_at"], "primary": ["CE to one-hot, clean", "CE to one-hot, final"], "metrics": SOFTMAX,
     "groups": NO_SMOOTHING},
    # issue 20's controls: the attack, the EMA and the smoothing held equal
    {"id": "equal_attack", "claim": "RegMix's gain over FGSM-PGK at equal attack strength (both with the 5-step "
                                    "final attack)",
     "against": ["pgk"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean"], "groups": FIVE_STEP},
    {"id": "pgd_at_ema_ls", "claim": "EMA and label smoothing make PGD-AT more robust",
     "subject": ("PGD-AT + EMA + smoothing", "pgd_at", ("pgd_at_ema_ls", "ema_ls")),
     "against": [("PGD-AT", "pgd_at", MAIN)], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean"]},
    {"id": "pgd_at_ema", "claim": "EMA alone makes PGD-AT more robust",
     "subject": ("PGD-AT + EMA", "pgd_at", ("pgd_at_ema", "ema")),
     "against": [("PGD-AT", "pgd_at", MAIN)], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean"]},
    {"id": "regmix_vs_controlled_pgd_at", "claim": "RegMix (5-step attack) is more robust than PGD-AT with the same "
                                                   "EMA and smoothing",
     "subject": ("RegMix, 5-step", "regmix", FIVE_STEP["regmix"]),
     "against": [("PGD-AT + EMA + smoothing", "pgd_at", ("pgd_at_ema_ls", "ema_ls"))],
     "primary": ["PGD-20", "APGD-CE+APGD-T"], "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean"]},
    {"id": "architecture", "claim": "RegMix is more robust than FGSM-PGK and PGD-AT on another architecture "
                                    "(small_cnn width 32)",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean"], "groups": WIDTH32},
]


def values(results: dict, method: str, metric: str, where=MAIN) -> List[float]:
    """One value per seed of `metric` for the runs of `method` in (sweep, variant) `where`."""
    getter = METRICS[metric][0]
    found = [getter(e) for e in results["runs"]
             if e["method"] == method and (e["sweep"], e["variant"]) == tuple(where)]
    return [v for v in found if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _sides(claim: dict):
    """(subject, [against...]) of a claim, each (label, method, (sweep, variant)). By default the subject is
    RegMix and each name in `against` a method, in the group `groups` gives it (else the main table)."""
    groups = claim.get("groups") or {}
    subject = claim.get("subject") or ("RegMix", "regmix", groups.get("regmix", MAIN))
    against = [o if isinstance(o, tuple) else (o, o, groups.get(o, MAIN)) for o in claim["against"]]
    return subject, against


def evaluate_claims(results: dict, claims=None) -> List[dict]:
    out = []
    for claim in CLAIMS if claims is None else claims:
        (subject, method, where), rows = _sides(claim)[0], []
        for label, other, other_where in _sides(claim)[1]:
            for metric in claim["metrics"]:
                a = values(results, method, metric, where)
                b = values(results, other, metric, other_where)
                if not a or not b:
                    rows.append({"against": label, "metric": metric, "verdict": "no data", "a": a, "b": b})
                    continue
                row = compare(a, b, higher_is_better=METRICS[metric][1])
                rows.append({"against": label, "metric": metric, "a": a, "b": b, **row})
        primary = [r for r in rows if r["metric"] in claim["primary"]]
        verdicts = {r["verdict"] for r in primary}
        answer = ("no data" if not primary or verdicts == {"no data"} else
                  "does not hold" if "reversed" in verdicts else
                  "holds" if verdicts == {"holds"} else "unclear")
        out.append({"id": claim["id"], "claim": claim["claim"], "primary": claim["primary"], "answer": answer,
                    "subject": subject, "rows": rows})
    return out


def _ms(vals, digits=2) -> str:
    if not vals:
        return "-"
    mean = statistics.fmean(vals)
    return f"{mean:.{digits}f}" if len(vals) == 1 else f"{mean:.{digits}f} ± {statistics.stdev(vals):.{digits}f}"


def _median_range(vals) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.0f}"
    return f"{statistics.median(vals):.0f} ({min(vals):.0f}-{max(vals):.0f})"


def _fmt(x, digits=2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def write_claims(results: dict, dest: Path) -> Path:
    lines = ["# The paper's claims on this study", "",
             f"Suite `{results['suite']}`; regenerate with `{results.get('command') or 'regmix study ... --results'}`.",
             "Per-seed values (one per trained model) compared with Welch's t-test (p) and a 95% bootstrap "
             "interval of the difference (the subject, RegMix unless a claim names another, minus the other; 10,000 "
             "resamples of the seeds). A comparison "
             "holds or is reversed only when p < 0.05 and the interval excludes 0; otherwise it is unclear. "
             "A claim holds when every primary comparison holds and does not hold when one is reversed.", "",
             "| claim | answer | decided by |", "|---|---|---|"]
    for c in results["claims"]:
        lines.append(f"| {c['claim']} | **{c['answer']}** | {', '.join(c['primary'])} |")
    for c in results["claims"]:
        who = c.get("subject", "RegMix")
        lines += ["", f"## {c['claim']}: {c['answer']}", "",
                  f"| against | metric | {who} | other | {who} - other | 95% interval | Welch p | seeds | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            mark = " (primary)" if r["metric"] in c["primary"] else ""
            if r["verdict"] == "no data":
                lines.append(f"| {r['against']} | {r['metric']}{mark} | {_ms(r['a'])} | {_ms(r['b'])} | - | - | - | "
                             f"{len(r['a'])}/{len(r['b'])} | no data |")
                continue
            ci = f"[{_fmt(r['ci'][0])}, {_fmt(r['ci'][1])}]"
            lines.append(f"| {r['against']} | {r['metric']}{mark} | {_ms(r['a'])} | {_ms(r['b'])} | {_fmt(r['diff'])} "
                         f"| {ci} | {_fmt(r['p'], 3)} | {r['n_a']}/{r['n_b']} | {r['verdict']} |")
    path = dest / "claims.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _sweep_rows(results, sweep: str, metrics, label: Optional[Callable] = None) -> List[str]:
    runs = [e for e in results["runs"] if e["sweep"] == sweep]
    rows = []
    for variant in dict.fromkeys(e["variant"] for e in runs):
        method = next(e["method"] for e in runs if e["variant"] == variant)
        seeds = len([e for e in runs if e["variant"] == variant])
        cells = [_ms(values(results, method, m, (sweep, variant))) for m in metrics]
        rows.append(f"| {label(variant) if label else variant} | {seeds} | " + " | ".join(cells) + " |")
    return rows


def _same_points_table(results: dict) -> List[str]:
    """PGD-20 against APGD-CE+T and AutoAttack on the same test points (results.py's same_points), per
    method: how much of PGD-20's robustness the stronger attacks take away."""
    def column(runs, name):
        pairs = [e["same_points"][name] for e in runs if name in e.get("same_points", {})]
        pgd, att = [100 * p["pgd20"] for p in pairs], [100 * p["attack"] for p in pairs]
        return [str(len(pairs)) if pairs else "0", _ms(pgd, 1), _ms(att, 1), _ms([a - b for a, b in zip(pgd, att)], 1)]
    lines = ["## PGD-20 against APGD and AutoAttack on the same points", "",
             "PGD-20 measured on exactly the test points of the stronger evaluation (its first n digits, from the "
             "per-point flags of both records), so the drop is the stronger attack's alone, not a change of points. "
             "A drop of more than a few points means PGD-20 overstated the robustness (a masked gradient).", "",
             "| method | seeds | PGD-20 | APGD-CE+APGD-T | drop | seeds | PGD-20 | AutoAttack | drop |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(e["method"] for e in results["runs"] if not e["sweep"]):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"]]
        lines.append(f"| {method} | " + " | ".join(column(runs, "apgd") + column(runs, "autoattack")) + " |")
    return lines


def _reference_row(results, sweep: str, metrics) -> List[str]:
    """The sweep's method in the main table (its recipe, no override) on the sweep's seeds, first in the
    sweep's table, so that each variant reads against what it changes."""
    runs = [e for e in results["runs"] if e["sweep"] == sweep]
    seeds = {e["seed"] for e in runs}
    ref = [e for e in results["runs"] if not e["sweep"] and e["method"] == runs[0]["method"] and e["seed"] in seeds]
    if not ref:
        return []
    cells = [_ms([v for v in (METRICS[m][0](e) for e in ref) if v is not None]) for m in metrics]
    return [f"| *{runs[0]['method']}, main table (seeds {', '.join(map(str, sorted(seeds)))})* | {len(ref)} | "
            + " | ".join(cells) + " |"]


def write_tables(results: dict, dest: Path) -> Path:
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
        cells = [_ms(values(results, method, m)) for m in main]
        lines.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + f" | {_median_range([e['train_s'] for e in runs])} |")
    last = [("clean", _acc("whole_last", "clean")), ("PGD-20", _acc("whole_last", "pgd20")),
            ("CW-20", _acc("whole_last", "cw20"))]
    lines += ["", "## Last checkpoint (end of training)", "", "| method | seeds | clean | PGD-20 | CW-20 |", "|---|---|---|---|---|"]
    for method in dict.fromkeys(e["method"] for e in results["runs"] if not e["sweep"]):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"]]
        cells = [_ms([v for v in (g(e) for e in runs) if v is not None]) for _, g in last]
        lines.append(f"| {method} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += ["", *_same_points_table(results)]
    from .defaults import defaults_section, gamma_section
    for choice in (defaults_section(results), gamma_section(results)):
        if choice:
            lines += ["", *choice]
    sweep_metrics = ["clean", "PGD-20", "CW-20", "APGD-CE+APGD-T"]
    for sweep in dict.fromkeys(e["sweep"] for e in results["runs"] if e["sweep"]):
        metrics = sweep_metrics + ["AutoAttack"] * any("autoattack" in e["evals"] for e in results["runs"]
                                                       if e["sweep"] == sweep)
        lines += ["", f"## Sweep `{sweep}`", "", "| variant | seeds | " + " | ".join(metrics) + " |",
                  "|---" * (len(metrics) + 2) + "|"]
        lines += _reference_row(results, sweep, metrics) + _sweep_rows(results, sweep, metrics)
    path = dest / "tables.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def fill_readme(dest: Path) -> None:
    """Replace each `<!-- generated: NAME -->` ... `<!-- end: NAME -->` block of DEST/README.md with the
    section of tables.md or claims.md that NAME names (a heading's text), so the prose stays and every
    number in it is regenerated with the tables."""
    import re
    readme = dest / "README.md"
    if not readme.exists():
        return
    sections = {}
    for source in ("tables.md", "claims.md"):
        text = (dest / source).read_text() if (dest / source).exists() else ""
        for block in re.split(r"\n(?=#+ )", text):
            heading, _, body = block.partition("\n")
            sections[heading.lstrip("# ").strip()] = body.strip()
        sections[source] = text.strip()

    def replace(match):
        name = match.group(1)
        body = sections.get(name, f"(no section {name!r} in tables.md or claims.md yet)")
        return f"<!-- generated: {name} -->\n{body}\n<!-- end: {name} -->"
    text = re.sub(r"<!-- generated: (.+?) -->.*?<!-- end: \1 -->", replace, readme.read_text(), flags=re.S)
    atomic_write_text(readme, text)
