"""KL-weighting figures: what the AMR weight alpha/(alpha+beta) changes (kl_toy.kl_weighting), the
AMR loss along the simplex flow, alpha x beta accuracy heatmaps, loss terms over training."""
from __future__ import annotations

import math

import numpy as np

from .style import PALETTE, figure, integer_ticks, method_color, plain_log_ticks, styled


def _triangle(ax):
    corners = np.array([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2], [0, 0]])
    ax.plot(corners[:, 0], corners[:, 1], color="black", lw=0.6)
    for (x, y), text, ha in zip(corners[:3], ("class 0", "class 1", "class 2"), ("right", "left", "center")):
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, -9 if y == 0 else 3), ha=ha, fontsize=6)
    ax.set_xlim(-0.12, 1.12)
    ax.set_ylim(-0.1, 0.95)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():   # the frame off, the axis labels kept (the layout makes room for them)
        spine.set_visible(False)


# the weight share's colour ramp: blue at 0 (β only), green halfway, vermillion at 1 (α only)
RAMP = [PALETTE[0], PALETTE[2], PALETTE[3]]
R_LABEL = "AMR weight α/(α+β)   (0: β only, 1: α only)"


def _r_axis(ax):
    ax.set_xlim(0, 1)
    ax.set_xlabel(R_LABEL)


@styled
def plot_kl_weighting(record, preset="double"):
    """What moving AMR weight from β·KL(Q‖P) to α·KL(P‖Q) does (record: kl_toy.kl_weighting()).
    (a) one output P fitted to a fixed two-peaked Q within a unimodal family, at three weightings;
    (b) that fit's mass on the true class and on the second peak, and its entropy, against the weight;
    (c) both outputs moving: the share of the way to the meeting point that P travels, with gradients
        through both KL arguments (regmix's default, solid) and with the target side detached (dashed);
    (d) the logit-gradient each direction puts on a confident and on a flat output."""
    fit, r = record["fit"], record["fit"]["r"]
    fig, axes = figure(preset, aspect=0.62, nrows=2, ncols=2)
    (ax_fit, ax_trace), (ax_share, ax_grad) = axes

    classes = np.arange(len(fit["target"]))
    ax_fit.bar(classes, fit["target"], color="0.8", width=0.8, label="Q: fixed two-peaked output")
    shown = [0.0, 0.5, 1.0]
    for k, value in enumerate(shown):
        i = int(np.argmin(np.abs(r - value)))
        ax_fit.plot(classes, fit["q"][i], marker="o", color=RAMP[k], label=f"fitted P at α/(α+β) = {r[i]:.2g}")
    ax_fit.set_xticks(classes)
    ax_fit.set_xlabel(f"class (true class {fit['true_class']})")
    ax_fit.set_ylabel("probability")
    ax_fit.set_title(f"(a) unimodal P ({fit['family']}) fitted to a fixed Q", loc="left")
    ax_fit.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6)

    ax_trace.plot(r, fit["p_true"], color=PALETTE[4], label="P(true class)")
    ax_trace.plot(r, fit["p_other"], color=PALETTE[1], label="P(second peak's class)")
    ax_trace.plot(r, fit["entropy"] / np.log(len(classes)), color="black", ls="--",
                  label=f"entropy of P / ln {len(classes)}")
    if "fit_alt" in record:
        alt = record["fit_alt"]
        ax_trace.plot(alt["r"], alt["p_true"], color=PALETTE[4], ls=":", lw=0.9,
                      label=f"P(true class), {alt['family']} family")
    _r_axis(ax_trace)
    ax_trace.set_ylim(0, 1.02)
    ax_trace.set_title("(b) β spreads P over both peaks,\nα locks it onto one", loc="left")
    ax_trace.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6)

    for k, (name, runs) in enumerate(record["meetings"].items()):
        color = PALETTE[[2, 4, 1, 5, 0, 3, 6, 7][k % 8]]
        ax_share.plot(runs["both"]["r"], runs["both"]["share_p"], color=color, label=name)
        ax_share.plot(runs["detached"]["r"], runs["detached"]["share_p"], color=color, ls="--")
    ax_share.plot([], [], color="0.4", label="gradients through both (default)")
    ax_share.plot([], [], color="0.4", ls="--", label="target side detached")
    _r_axis(ax_share)
    ax_share.set_ylim(-0.02, 1.02)
    ax_share.set_ylabel("share of the way to the\nmeeting point travelled by P")
    ax_share.set_title("(c) both move: the weight decides who\nmoves only when the target is detached", loc="left")
    ax_share.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6)

    name = next(iter(record["gradients"]))
    grads = record["gradients"][name]
    terms = list(grads)
    x = np.arange(len(terms))
    p0, q0 = (", ".join(f"{v:g}" for v in record["meetings"][name]["both"][k]) for k in ("p0", "q0"))
    ax_grad.bar(x - 0.2, [grads[t]["P"] for t in terms], width=0.4, color=PALETTE[3], label=f"on P = ({p0})")
    ax_grad.bar(x + 0.2, [grads[t]["Q"] for t in terms], width=0.4, color=PALETTE[0], label=f"on Q = ({q0})")
    ax_grad.set_xticks(x, ["α-term\nKL(P‖Q)", "β-term\nKL(Q‖P)"])
    ax_grad.set_ylabel("‖∂ term / ∂ logits‖ (unit weight)")
    ax_grad.set_title("(d) the flatter output gets the larger\ngradient from both terms", loc="left")
    ax_grad.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6)
    return fig


@styled
def plot_kl_meeting_simplex(record, preset="double"):
    """One simplex per starting pair: P (final) and Q (initial) start at the dots; the coloured curve
    is where they meet as α/(α+β) goes 0 -> 1, with gradients through both KL arguments (top row,
    regmix's default) and with the target side detached (bottom row)."""
    from regmix.diagnostics.kl_toy import to_plane
    meetings = record["meetings"]
    fig, axes = figure(preset, aspect=0.5, nrows=2, ncols=len(meetings))
    cmap = matplotlib_colormap()
    for row, (kind, label) in enumerate((("both", "gradients through both\n(regmix default)"),
                                         ("detached", "target side\ndetached"))):
        for ax, (name, runs) in zip(axes[row], meetings.items()):
            _triangle(ax)
            pts = to_plane(runs[kind]["meeting"])
            ax.plot(pts[:, 0], pts[:, 1], color="0.6", lw=0.6, zorder=1)
            sc = ax.scatter(pts[:, 0], pts[:, 1], c=runs[kind]["r"], cmap=cmap, vmin=0, vmax=1, s=7, zorder=2)
            ax.plot(*to_plane(runs[kind]["p0"]), "o", mfc="none", mec="black", ms=6, label="P start (final)")
            ax.plot(*to_plane(runs[kind]["q0"]), "s", mfc="none", mec="black", ms=6, label="Q start (initial)")
            if row == 0:
                ax.set_title(name, fontsize=7)
        axes[row, 0].set_ylabel(label, fontsize=7, labelpad=16)  # clear of the "class 0" corner label
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=6)
    fig.colorbar(sc, ax=axes[:, -1], shrink=0.7, label="AMR weight α/(α+β): where P and Q meet")
    return fig


def matplotlib_colormap():
    from matplotlib.colors import LinearSegmentedColormap
    return LinearSegmentedColormap.from_list("amr_weight", RAMP)


LOSS_FLOOR = 1e-10   # below this a KL of float64 probabilities is round-off, not a distance


@styled
def plot_kl_toy_loss(arrays, meta, preset="single"):
    """AMR along the flow for each (alpha, beta), both arguments free (solid) or Q fixed (dashed).
    Values under LOSS_FLOOR are round-off (they jump between 1e-15 and 1e-33): each curve stops there."""
    fig, axes = figure(preset, aspect=0.9)
    ax = axes[0, 0]
    for i, run in enumerate(meta["runs"]):
        color = PALETTE[i % len(PALETTE)]
        n = run["index"]
        for key, ls, label in ((f"loss_{n}_both", "-", f"α={run['alpha']:g}, β={run['beta']:g}"),
                               (f"loss_{n}_p", "--", None)):
            vals = np.asarray(arrays[key], dtype=float)
            ax.plot(np.where(vals >= LOSS_FLOOR, vals, np.nan), color=color, ls=ls, label=label)
    ax.set_yscale("log")
    ax.set_ylim(bottom=LOSS_FLOOR)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("gradient-flow step")
    ax.set_ylabel(f"αKL(P||Q) + βKL(Q||P)  (to {LOSS_FLOOR:g})")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=6,
               title="solid: P and Q move; dashed: Q fixed", title_fontsize=6)
    return fig


@styled
def plot_alpha_beta_heatmaps(rows, metrics=None, preset="double", title=None, seed_std=None):
    """Accuracy over the alpha x beta grid (mean over seeds; the number of seeds in brackets when
    more than one). rows: regmix.sweep.collect(...). The source (eval records or validation) is
    stated in the title. seed_std ({metric: points}, optional): how much one seed varies, stated under
    each panel beside the cells' range, since a colour scale stretched over a small range makes seed
    noise look like structure."""
    ka, kb = "method.options.alpha", "method.options.beta"
    alphas = sorted({r[ka] for r in rows if r[ka] is not None})
    betas = sorted({r[kb] for r in rows if r[kb] is not None})
    if metrics is None:
        keys = set.intersection(*[set(r["accuracy"]) for r in rows]) if rows else set()
        order = ["clean", "pgd", "pgd10", "pgd20", "pgd50", "cw20", "aa"]
        metrics = [k for k in order if k in keys] + sorted(keys - set(order))
    sources = sorted({r["source"] for r in rows})
    fig, axes = figure(preset, aspect=0.32, ncols=max(len(metrics), 1))
    for ax, metric in zip(axes[0], metrics):
        grid = np.full((len(alphas), len(betas)), np.nan)
        count = np.zeros_like(grid)
        for r in rows:
            if r[ka] in alphas and r[kb] in betas and metric in r["accuracy"]:
                i, j = alphas.index(r[ka]), betas.index(r[kb])
                grid[i, j] = np.nansum([grid[i, j] * count[i, j], 100 * r["accuracy"][metric]]) / (count[i, j] + 1)
                count[i, j] += 1
        im = ax.imshow(grid, origin="lower", cmap="cividis", aspect="auto")
        for i in range(len(alphas)):
            for j in range(len(betas)):
                if not np.isnan(grid[i, j]):
                    text = f"{grid[i, j]:.1f}" + (f"\n({int(count[i, j])})" if count[i, j] > 1 else "")
                    ax.text(j, i, text, ha="center", va="center", fontsize=6,
                            color="white" if grid[i, j] < np.nanmean(grid) else "black")
        ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        xlabel = "β  (KL(Q||P) weight)"
        if seed_std and metric in seed_std and np.isfinite(grid).any():
            # in the label, so that the layout makes room for it
            xlabel += (f"\ncells span {np.nanmax(grid) - np.nanmin(grid):.1f} points;\none seed varies by "
                       f"{seed_std[metric]:.1f} (std over seeds)")
        ax.set_xlabel(xlabel)
        ax.set_title(f"{metric} accuracy (%)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    axes[0, 0].set_ylabel("α  (KL(P||Q) weight)")
    note = ("from evaluation records" if sources == ["eval"] else
            "best validation accuracy (no evaluation records yet)" if sources == ["validation"] else
            f"mixed sources: {', '.join(sources)}")
    fig.suptitle((title + ": " if title else "") + note, fontsize=7)
    return fig


@styled
def plot_loss_terms_grid(run_dirs, preset="double"):
    """Each training loss term per epoch, one panel per run, log scale (the KL terms are orders of
    magnitude below the cross-entropy)."""
    from .curves import read_metrics
    n = len(run_dirs)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = figure(preset, aspect=0.3 * nrows, nrows=nrows, ncols=ncols, sharex=True)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    every = list(dict.fromkeys(k for run_dir in run_dirs for r in read_metrics(run_dir)[:1] for k in r
                               if k.startswith("train_") and k != "train_loss"))   # one colour per term
    for ax, run_dir in zip(axes.ravel(), run_dirs):
        records = read_metrics(run_dir)
        epochs = [r["epoch"] + 1 for r in records]
        terms = [k for k in records[0] if k.startswith("train_") and k not in ("train_loss",)] if records else []
        for key in ["train_loss", *terms]:
            i = every.index(key) + 1 if key in every else 0
            vals = np.array([r[key] for r in records], dtype=float)
            total = key == "train_loss"  # drawn on top, dashed: it coincides with ce when there is no regulariser
            ax.plot(epochs, np.clip(vals, 1e-8, None), marker=None if total else "o", ls="--" if total else "-",
                    color="black" if total else PALETTE[i % len(PALETTE)], zorder=3 if total else 2,
                    label=key.removeprefix("train_"))
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
        integer_ticks(ax.xaxis)
        ax.set_title(run_dir.name if hasattr(run_dir, "name") else str(run_dir))
        ax.set_xlabel("epoch")
    for row in axes:
        row[0].set_ylabel("training mean (log)")
    handles = {}
    for ax in axes.ravel()[:n]:
        handles.update(zip(ax.get_legend_handles_labels()[1], ax.get_legend_handles_labels()[0]))
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=6)
    return fig


@styled
def plot_accuracy_curves(run_dirs, preset="single"):
    """Validation clean (solid) and PGD (dashed) accuracy per epoch, one colour per method."""
    from regmix.rundir import RunDir

    from .curves import read_metrics
    fig, axes = figure(preset, aspect=0.7)
    ax = axes[0, 0]
    for run_dir in run_dirs:
        method = RunDir(run_dir).read_config()["method"]["name"]
        records = [r for r in read_metrics(run_dir) if "val_pgd" in r]
        epochs = [r["epoch"] + 1 for r in records]
        color = method_color(method)
        ax.plot(epochs, [100 * r["val_clean"] for r in records], color=color, label=f"{run_dir.name} clean")
        ax.plot(epochs, [100 * r["val_pgd"] for r in records], color=color, ls="--", label=f"{run_dir.name} PGD")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    integer_ticks(ax.xaxis)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=5.5)
    return fig
