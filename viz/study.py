"""The figures of a study's results folder (`regmix study SUITE --results DIR`), drawn from
DIR/results.json and the records copied beside it; nothing is computed here.

    claims          each claim's subject minus each baseline per primary metric, with its bootstrap interval
    convergence     robust validation accuracy per epoch, mean and min-max band over seeds
    alpha_beta      the alpha x beta sweep as heatmaps (clean, PGD-20)
    sweeps          robust accuracy against gamma and temperature
    landscapes      weight-space loss of the first seed of each method, one colour scale per panel
    softmax_truth   p(true), cross-entropy to the one-hot truth and ECE per method, mean +- std over
                    seeds, label smoothing as trained and switched off
    softmax_hist    the true-class probability histograms of the first seed of each method
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files here, never windows

import numpy as np  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from regmix.diagnostics import load_record  # noqa: E402
from regmix.paper.claims import METRICS, NO_SMOOTHING, values  # noqa: E402

from . import kl as K  # noqa: E402
from . import landscape as LV  # noqa: E402
from . import softmax as SV  # noqa: E402
from .export import save_figure  # noqa: E402
from .style import PRESETS, figure, method_color, styled  # noqa: E402

ORDER = ["standard", "fgsm_rs", "pgd_at", "trades", "mart", "pgk", "regmix"]


def _main_methods(results):
    found = list(dict.fromkeys(e["method"] for e in results["runs"] if not e["sweep"]))
    return [m for m in ORDER if m in found] + [m for m in found if m not in ORDER]


VERDICT_MARKERS = {"holds": ("o", True), "reversed": ("X", True)}   # anything else: hollow circle (unclear)


def _claim_label(claim: dict, against: str) -> str:
    """A forest-plot row: who is compared with whom, and where (the claim's tag: LS off, both 5-step, width
    32), short enough for a panel; the subject is RegMix unless the claim names another."""
    tag = claim.get("tag") or ("LS off" if claim["id"].endswith("_no_smoothing") else "")
    subject = claim.get("subject", "RegMix")
    text = f"{'' if subject == 'RegMix' else subject + ' '}vs {against}{f' ({tag})' if tag else ''}"
    return text.replace(" + ", "+").replace("smoothing", "LS")


@styled
def plot_claims(results, preset="double"):
    """A forest plot per primary metric, in the metric's own units: each claim's subject (RegMix unless
    the claim names another, e.g. a PGD-AT control) minus each baseline with its
    95% bootstrap interval over seeds, one row per (claim, baseline). Colour: the baseline's; filled
    circle: the claim holds, cross: reversed, hollow: unclear. Two panels side by side whose rows are the
    same (PGD-20 and APGD, the two eps, clean and final) name them once, on the left."""
    panels = {}
    for claim in results["claims"]:
        for r in claim["rows"]:
            if r["metric"] in claim["primary"] and r["verdict"] != "no data":
                panels.setdefault(r["metric"], []).append((_claim_label(claim, r["against"]), r))
    ncols = 2
    items = list(panels.items())
    nrows = max(-(-len(items) // ncols), 1)
    height = sum(0.6 + 0.17 * max(len(rows) for _, rows in items[i:i + ncols])
                 for i in range(0, len(items), ncols)) + 0.45
    fig, axes = figure(preset, aspect=height / PRESETS[preset]["width"], nrows=nrows, ncols=ncols)
    for ax in axes.ravel()[len(items):]:
        ax.axis("off")
    for k, (ax, (metric, rows)) in enumerate(zip(axes.ravel(), items)):
        for i, (label, r) in enumerate(rows):
            color = method_color(r["against"])
            marker, filled = VERDICT_MARKERS.get(r["verdict"], ("o", False))
            low, high = sorted(r["ci"])
            ax.plot([low, high], [i, i], color=color, lw=1.4, solid_capstyle="butt")
            ax.plot(r["diff"], i, marker=marker, color=color, mfc=color if filled else "white", ms=4.5, ls="none")
        ax.axvline(0, color="0.3", lw=0.6, ls=":")
        left = items[k - 1][1] if k % ncols else None
        same_rows = left is not None and [lab for lab, _ in left] == [lab for lab, _ in rows]
        ax.set_yticks(range(len(rows)), [] if same_rows else [label for label, _ in rows], fontsize=6)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        unit = _unit(metric)
        ax.set_title(metric, fontsize=7)
        ax.set_xlabel(f"{unit + ', ' if unit else ''}subject better {'→' if _higher(metric) else '←'}", fontsize=6)
    fig.suptitle("Subject (RegMix unless a row names another) minus baseline: mean over seeds, 95% bootstrap\n"
                 "interval; filled: the claim holds, cross: reversed, hollow: unclear; LS: label smoothing", fontsize=7)
    return fig


def _unit(metric: str) -> str:
    unit = METRICS[metric][2]
    return "points" if unit == "%" else unit


def _higher(metric: str) -> bool:
    return METRICS[metric][1]


@styled
def plot_convergence(results, preset="single"):
    """Robust (solid) and clean (dotted) validation accuracy per epoch: mean over seeds, min-max band."""
    fig, axes = figure(preset, aspect=1.0)
    ax = axes[0, 0]
    for method in _main_methods(results):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"]]
        length = min(len(e["curve"]["epoch"]) for e in runs)
        epochs = runs[0]["curve"]["epoch"][:length]
        for key, style in (("val_pgd", "-"), ("val_clean", ":")):
            vals = 100 * np.array([e["curve"][key][:length] for e in runs])
            color = method_color(method)
            ax.plot(epochs, vals.mean(0), ls=style, color=color, label=f"{method} ({len(runs)} seeds)" if key == "val_pgd" else None)
            if key == "val_pgd" and len(runs) > 1:
                ax.fill_between(epochs, vals.min(0), vals.max(0), color=color, alpha=0.15, lw=0)
    ax.plot([], [], color="0.3", ls="-", label="PGD (band: min-max)")
    ax.plot([], [], color="0.3", ls=":", label="clean")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=5.5)
    return fig


def _regmix_seed_std(results):
    """{heatmap metric: std over seeds (points)} of the main table's RegMix runs on the whole test split."""
    out = {}
    for key, metric in (("clean", "clean"), ("pgd20", "PGD-20")):
        vals = values(results, "regmix", metric)
        if len(vals) > 1:
            out[key] = statistics.stdev(vals)
    return out


def _alpha_beta_rows(results):
    rows = []
    for e in results["runs"]:
        if e["sweep"] == "alpha_beta" and "whole" in e["evals"]:
            rows.append({"method.options.alpha": e["options"].get("alpha"), "method.options.beta": e["options"].get("beta"),
                         "accuracy": {k: v for k, v in e["evals"]["whole"]["accuracy"].items() if k != "worst"},
                         "source": "eval"})
    return rows


@styled
def plot_sweep_lines(results, preset="double"):
    """PGD-20 and clean accuracy against each one-dimensional sweep's value (gamma, temperature)."""
    sweeps = [s for s in ("gamma", "temperature") if any(e["sweep"] == s for e in results["runs"])]
    fig, axes = figure(preset, aspect=0.3, ncols=max(len(sweeps), 1))
    for ax, sweep in zip(axes[0], sweeps):
        points = sorted((e["options"].get(sweep), e["evals"]["whole"]["accuracy"]) for e in results["runs"]
                        if e["sweep"] == sweep and "whole" in e["evals"])
        xs = [p[0] for p in points]
        for key, style in (("pgd20", "-o"), ("clean", ":o")):
            ax.plot(range(len(xs)), [100 * p[1][key] for p in points], style, color=method_color("regmix"), ms=3,
                    label="PGD-20" if key == "pgd20" else key)
        ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
        ax.set_xlabel(f"RegMix {sweep}")
        ax.set_ylabel("test accuracy (%)")
    if sweeps:
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right upper", fontsize=6)
    return fig


@styled
def plot_softmax_truth(results, preset="double"):
    """p(true), cross-entropy to the one-hot truth and ECE, clean and final-adversarial view, per
    method (mean +- std over seeds); hollow markers: label smoothing switched off in RegMix and PGK."""
    metrics = ["p(true)", "CE to one-hot", "ECE"]
    fig, axes = figure(preset, aspect=0.55, nrows=2, ncols=3)
    methods = _main_methods(results)
    for r, view in enumerate(("clean", "final")):
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            name = f"{metric}, {view}"
            for i, method in enumerate(methods):
                for where, hollow in ((("", ""), False), (NO_SMOOTHING.get(method), True)):
                    if where is None or (hollow and tuple(where) == ("", "")):
                        continue
                    vals = values(results, method, name, where)
                    if not vals:
                        continue
                    sd = statistics.stdev(vals) if len(vals) > 1 else 0
                    color = method_color(method)
                    ax.errorbar(i + (0.2 if hollow else 0), statistics.fmean(vals), yerr=sd, fmt="o", ms=3.5,
                                color=color, mfc="white" if hollow else color, capsize=2)
            ax.set_xticks(range(len(methods)), methods, rotation=45, fontsize=6)
            ax.set_title(f"{metric} ({view})", fontsize=7)
    fig.suptitle("filled: as trained; hollow: label smoothing off (RegMix, PGK); bars: std over seeds", fontsize=7)
    return fig


def _first_seed_records(results, dest, kind):
    records = []
    for method in _main_methods(results):
        runs = [e for e in results["runs"] if e["method"] == method and not e["sweep"] and kind in e["summaries"]]
        if runs:
            arrays, meta = load_record(dest / runs[0]["summaries"][kind]["record"])
            records.append((arrays, {**meta, "run": method, "method": method}))
    return records


def render_study(dest, *, formats=("png",), log=print, check=None) -> list:
    """Draws the figures of DEST/results.json into DEST/figures; returns the files written.
    check: a viz.check.Checker that sees every figure before it is saved and its files after."""
    dest = Path(dest)
    results = json.loads((dest / "results.json").read_text())
    out = dest / "figures"
    written = []

    def save(fig, name):
        if check is not None:
            check.figure(fig, name)
        paths = save_figure(fig, out / name, formats=formats)
        if check is not None:
            check.written(paths, name)
        written.extend(paths)
        plt.close(fig)
        log(f"wrote {out / name}.{{{','.join(formats)}}}")

    if not any(not e["sweep"] for e in results["runs"]):
        log("no finished main runs yet: nothing to draw")
        return written
    save(plot_claims(results), "claims")
    save(plot_convergence(results), "convergence")
    rows = _alpha_beta_rows(results)
    if rows:
        save(K.plot_alpha_beta_heatmaps(rows, metrics=["clean", "pgd20"], title=f"{results['suite']} alpha x beta",
                                        seed_std=_regmix_seed_std(results)), "alpha_beta")
    if any(e["sweep"] in ("gamma", "temperature") for e in results["runs"]):
        save(plot_sweep_lines(results), "sweeps")
    weight = _first_seed_records(results, dest, "weight")
    if weight:
        save(LV.plot_weight_contours(weight), "landscapes")
    softmax = _first_seed_records(results, dest, "softmax")
    if softmax:
        save(plot_softmax_truth(results), "softmax_truth")
        save(SV.plot_true_class_hist(softmax), "softmax_hist")
    return written
