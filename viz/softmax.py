"""Softmax-versus-truth figures from softmax.npz records (regmix.diagnostics.softmax)."""
from __future__ import annotations

import numpy as np

from .style import styled, VIEW_LABELS, figure, method_color

VIEWS = ("clean", "init", "final")


def _name(meta):
    return meta["run"] if meta["run"] == meta["method"] else f"{meta['run']} ({meta['method']})"


@styled
def plot_example_bars(records, examples=3, preset="double"):
    """Rows: runs x examples; columns: views. Bars of the predicted distribution; the true class's
    bar outlined, the one-hot truth as a black tick at 1."""
    k = examples
    n = len(records)
    fig, axes = figure(preset, aspect=0.16 * n * k, nrows=n * k, ncols=3, sharex=True, sharey=True)
    for r, (arrays, meta) in enumerate(records):
        color = method_color(meta["method"])
        for e in range(k):
            row = r * k + e
            y = int(arrays["labels"][e])
            for c, view in enumerate(VIEWS):
                ax = axes[row, c]
                p = arrays[f"probs_{view}"][e]
                bars = ax.bar(np.arange(len(p)), p, color=color, alpha=0.8)
                bars[y].set_edgecolor("black")
                bars[y].set_linewidth(1.0)
                ax.plot([y], [1.0], marker="_", color="black", ms=8)
                ax.set_ylim(0, 1.05)
                if row == 0:
                    ax.set_title(VIEW_LABELS[view])
                if c == 0:
                    ax.set_ylabel(f"{_name(meta)}\nex. {e} (y={y})", fontsize=6)
                if row == n * k - 1:
                    ax.set_xlabel("class")
                    ax.set_xticks(np.arange(len(p)))
    return fig


@styled
def plot_class_means(records, preset="double"):
    """Per-class mean predicted distribution (rows: true class, columns: predicted class): the
    ground truth is the identity."""
    n = len(records)
    fig, axes = figure(preset, aspect=0.3 * n, nrows=n, ncols=3, sharex=True, sharey=True)
    for r, (arrays, meta) in enumerate(records):
        for c, view in enumerate(VIEWS):
            ax = axes[r, c]
            im = ax.imshow(arrays[f"class_mean_{view}"], vmin=0, vmax=1, cmap="Blues")
            classes = len(arrays[f"class_mean_{view}"])
            ax.set_xticks(range(0, classes, 3 if classes > 5 else 1))
            ax.set_yticks(range(0, classes, 3 if classes > 5 else 1))
            if r == 0:
                ax.set_title(VIEW_LABELS[view])
            if c == 0:
                ax.set_ylabel(f"{_name(meta)}\ntrue class")
            if r == n - 1:
                ax.set_xlabel("predicted class")
    fig.colorbar(im, ax=axes.ravel().tolist(), label="mean probability", shrink=0.8)
    return fig


@styled
def plot_true_class_hist(records, preset="double"):
    """Histogram of the true class's probability (1 is the truth), one panel per view."""
    fig, axes = figure(preset, aspect=0.3, ncols=3, sharey=True)
    for c, view in enumerate(VIEWS):
        ax = axes[0, c]
        for arrays, meta in records:
            edges = arrays["hist_edges"]
            frac = arrays[f"true_hist_{view}"] / max(arrays[f"true_hist_{view}"].sum(), 1)
            ax.stairs(frac, edges, color=method_color(meta["method"]), label=_name(meta), lw=1.2)
        ax.set_title(VIEW_LABELS[view])
        ax.set_xlabel("probability of the true class")
        ax.set_yscale("log")
    axes[0, 0].set_ylabel("fraction of examples")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right upper", fontsize=6)
    return fig


@styled
def plot_reliability(records, preset="double"):
    """Reliability diagrams: accuracy against confidence per bin, ECE in the legend."""
    fig, axes = figure(preset, aspect=0.5, ncols=3, sharey=True)
    for c, view in enumerate(VIEWS):
        ax = axes[0, c]
        ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":", label="calibrated")
        for arrays, meta in records:
            ok = arrays[f"rel_count_{view}"] > 0
            ece = meta["summary"][view]["ece"]
            ax.plot(arrays[f"rel_conf_{view}"][ok], arrays[f"rel_acc_{view}"][ok], marker="o",
                    color=method_color(meta["method"]), label=f"{_name(meta)} (ECE {ece:.3f})")
        ax.set_title(VIEW_LABELS[view])
        ax.set_xlabel("confidence")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1)
    axes[0, 0].set_ylabel("accuracy")
    return fig


@styled
def plot_distances(records, preset="double"):
    """Grouped bars: cross-entropy and total variation to the one-hot truth, and ECE, per view."""
    metrics = (("ce", "cross-entropy to truth"), ("tv", "total variation to truth"), ("ece", "ECE"))
    fig, axes = figure(preset, aspect=0.3, ncols=3)
    x = np.arange(len(VIEWS))
    width = 0.8 / len(records)
    for ax, (key, title) in zip(axes[0], metrics):
        for i, (_, meta) in enumerate(records):
            vals = [meta["summary"][v][key] for v in VIEWS]
            ax.bar(x - 0.4 + width * (i + 0.5), vals, width, color=method_color(meta["method"]), label=_name(meta))
        ax.set_xticks(x, ["clean", "initial", "final"])
        ax.set_title(title + "\n(lower is better)")
    axes[0, 0].set_ylabel("mean over examples")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside right upper", fontsize=6)
    return fig
