"""Loss-landscape figures from the records of regmix.diagnostics (landscape_*.npz, interp_*.npz)."""
from __future__ import annotations

import numpy as np

from .style import PRESETS, figure, method_color, plain_log_ticks, styled


def _label(meta):
    return f"{meta['run']} ({meta['method']})" if meta["run"] != meta["method"] else meta["method"]


def _sharp_text(meta, key):
    """The smoothness numbers of one panel, one per line (short enough for a panel a seventh of a page)."""
    s = meta.get("sharpness", {}).get(key)
    h = meta.get("hessian", {}).get(key)
    parts = []
    if h:
        parts.append(f"$\\lambda_{{max}}$ {h['eigenvalue']:.3g}")
    if s:
        parts.append(f"rise {s['max_rise']:.3g}")
    return "\n".join(parts)


ROW_NAMES = {"clean": "clean loss", "adv": "adversarial loss"}


@styled
def plot_weight_contours(records, preset="double", scale="log"):
    """One column per run, rows clean / adversarial loss over the (d1, d2) plane, shared axes and
    one colour bar per row; under each panel its Hessian top eigenvalue and loss rise over the plane.
    scale: 'log' (one logarithmic scale per row: runs whose losses differ tenfold still show their
    shape, and heights compare), 'shared' (one linear scale per row) or 'per_panel' (each panel its
    own linear scale and colour bar; for a few runs only)."""
    if scale not in ("shared", "per_panel", "log"):
        raise ValueError(f"scale: must be shared, per_panel or log, got {scale!r}")
    rows = [("loss", "clean")] + ([("adv_loss", "adv")] if all("adv_loss" in a for a, _ in records) else [])
    n = len(records)
    panel = PRESETS[preset]["width"] / (n + 0.6)          # room for the colour bars
    height = len(rows) * (panel + 0.55) + 0.35            # a panel, its two lines of numbers, the x label
    fig, axes = figure(preset, aspect=height / PRESETS[preset]["width"], nrows=len(rows), ncols=n,
                       sharex=True, sharey=True)
    for r, (key, tag) in enumerate(rows):
        values = np.concatenate([a[key].ravel() for a, _ in records])
        levels = _levels(values, scale)
        for c, (arrays, meta) in enumerate(records):
            ax = axes[r, c]
            coords = arrays["coords"]
            if scale == "per_panel":
                levels = _levels(arrays[key].ravel(), scale)
            z = np.clip(arrays[key], levels[0], levels[-1]).T
            cs = ax.contourf(coords, coords, z, levels=levels, cmap="viridis", norm=_norm(scale))
            if scale == "per_panel":
                fig.colorbar(cs, ax=ax, shrink=0.8).ax.tick_params(labelsize=5)
            ax.contour(coords, coords, z, levels=levels[::3], colors="white", linewidths=0.3, norm=_norm(scale))
            ax.plot(0, 0, marker="+", color="red", ms=5)
            if r == 0:
                ax.set_title(_label(meta), fontsize=7)
            ax.set_xlabel(_sharp_text(meta, tag), fontsize=6)
            ax.set_aspect("equal")
            ax.set_xticks([coords[0], 0, coords[-1]], [f"{coords[0]:g}", "0", f"{coords[-1]:g}"])
            ax.set_yticks([coords[0], 0, coords[-1]], [f"{coords[0]:g}", "0", f"{coords[-1]:g}"])
            ax.tick_params(labelsize=5)
            if c == 0:
                ax.set_ylabel(f"{ROW_NAMES[tag]}\nalong $d_2$")
        if scale != "per_panel":
            bar = fig.colorbar(cs, ax=axes[r, :].tolist(), shrink=0.9, pad=0.01)
            bar.set_label(f"{tag} loss" + (" (log)" if scale == "log" else ""), fontsize=6)
            if scale == "log":
                ticks = _log_ticks(levels[0], levels[-1])
                bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
                bar.ax.minorticks_off()
            bar.ax.tick_params(labelsize=5)
    fig.supxlabel("along $d_1$ (each panel); under it: Hessian top eigenvalue, loss rise over the plane",
                  fontsize=6)
    return fig


def _levels(values, scale):
    top = np.percentile(values, 98)
    if scale == "log":
        low = max(values.min(), 1e-6)
        return np.geomspace(low, max(values.max(), low * 1.01), 15)
    return np.linspace(values.min(), max(top, values.min() + 1e-9), 15)


def _log_ticks(low, high):
    """1-3-10 ticks inside [low, high] (at least the two ends when the range is under a factor 3)."""
    ticks = [m * 10.0 ** e for e in range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
             for m in (1, 3)]
    inside = [t for t in ticks if low <= t <= high]
    return inside if len(inside) >= 2 else [float(f"{low:.2g}"), float(f"{high:.2g}")]


def _norm(scale):
    from matplotlib.colors import LogNorm
    return LogNorm() if scale == "log" else None


@styled
def plot_weight_slices(records, preset="single"):
    """The loss along direction 1 through the centre (clean solid, adversarial dashed), every run on
    one axis: a direct comparison of width and height."""
    fig, axes = figure(preset, aspect=0.75)
    ax = axes[0, 0]
    for arrays, meta in records:
        coords = arrays["coords"]
        c = int(np.argmin(np.abs(coords)))
        color = method_color(meta["method"])
        ax.plot(coords, arrays["loss"][:, c], color=color, label=f"{_label(meta)} clean")
        if "adv_loss" in arrays:
            ax.plot(coords, arrays["adv_loss"][:, c], color=color, ls="--", label=f"{_label(meta)} {meta['attack']}")
    ax.set_xlabel("step along direction 1 (filter-normalised)")
    ax.set_ylabel("cross-entropy loss")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=6)
    return fig


@styled
def plot_smoothness(records, preset="single"):
    """Bars of the two smoothness numbers per run: Hessian top eigenvalue and surface max rise."""
    from matplotlib.patches import Patch
    panels = [("Hessian top\neigenvalue", lambda m, k: m.get("hessian", {}).get(k, {}).get("eigenvalue", np.nan)),
              ("loss rise\nover the plane", lambda m, k: m.get("sharpness", {}).get(k, {}).get("max_rise", np.nan))]
    if any("trace" in m.get("hessian_spectrum", {}).get(k, {}) for _, m in records for k in ("clean", "adv")):
        panels.insert(1, ("Hessian trace\n(Hutchinson)",
                          lambda m, k: m.get("hessian_spectrum", {}).get(k, {}).get("trace", np.nan)))
    fig, axes = figure(preset if len(panels) == 2 else "double", aspect=0.6 if len(panels) == 2 else 0.3,
                       ncols=len(panels))
    labels = [_label(m) for _, m in records]
    x = np.arange(len(records))
    for ax, (title, get) in zip(axes[0], panels):
        for offset, key, hatch in ((-0.2, "clean", None), (0.2, "adv", "///")):
            vals = [get(m, key) for _, m in records]
            ax.bar(x + offset, vals, width=0.4, color=[method_color(m["method"]) for _, m in records],
                   hatch=hatch, edgecolor="white")
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_title(title)
    axes[0, 0].set_ylabel("value (lower is smoother)")
    fig.legend([Patch(facecolor="0.5", edgecolor="white"), Patch(facecolor="0.5", edgecolor="white", hatch="///")],
               ["clean loss", "adversarial loss"], loc="outside lower center", ncol=2, fontsize=6)
    return fig


@styled
def plot_hessian_density(records, preset="double"):
    """The Hessian's eigenvalue density (stochastic Lanczos quadrature, regmix.diagnostics.hessian),
    clean and adversarial loss side by side, one line per run; the legend gives each run's trace
    (Hutchinson) and top eigenvalue (power iteration) beside the density's edges."""
    from regmix.diagnostics.hessian import density_from_record
    keys = [k for k in ("clean", "adv") if any(k in m.get("hessian_spectrum", {}) for _, m in records)]
    fig, axes = figure(preset, aspect=0.36, ncols=max(len(keys), 1), sharey=True)
    for ax, key in zip(axes[0], keys):
        for _, meta in records:
            spectrum = meta.get("hessian_spectrum", {}).get(key)
            if not spectrum:
                continue
            grid, density = density_from_record(spectrum)
            top = meta.get("hessian", {}).get(key, {}).get("eigenvalue")
            label = f"{_label(meta)}, {'clean' if key == 'clean' else 'adv.'}: trace {spectrum['trace']:.3g}" + (f", $\\lambda_{{max}}$ {top:.3g}" if top else "")
            ax.plot(grid, np.maximum(density, 1e-6), color=method_color(meta["method"]), label=label)
        ax.set_yscale("log")
        ax.set_ylim(bottom=1e-5)
        plain_log_ticks(ax.yaxis)
        ax.set_title(f"{'clean' if key == 'clean' else 'adversarial'} loss")
        ax.set_xlabel("Hessian eigenvalue")
    axes[0, 0].set_ylabel("density (SLQ, smoothed)")
    handles = {}
    for ax in axes[0]:
        handles.update({label: h for h, label in zip(*ax.get_legend_handles_labels())})
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=2, fontsize=6)
    return fig


def plot_weight_surface_3d(records):
    """Interactive (plotly) surfaces of the clean and adversarial loss, one scene per run."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    n = len(records)
    rows = 2 if all("adv_loss" in a for a, _ in records) else 1
    fig = make_subplots(rows=rows, cols=n, specs=[[{"type": "surface"}] * n] * rows,
                        subplot_titles=[f"{_label(m)} {tag}" for tag in ("clean", "adv")[:rows] for _, m in records],
                        horizontal_spacing=0.02, vertical_spacing=0.05)
    for c, (arrays, meta) in enumerate(records, start=1):
        for r, key in enumerate(("loss", "adv_loss")[:rows], start=1):
            fig.add_trace(go.Surface(x=arrays["coords"], y=arrays["coords"], z=arrays[key].T, colorscale="Viridis",
                                     showscale=False), row=r, col=c)
    # one camera and a cube for every scene: left to plotly, a scene whose loss range differs was drawn
    # zoomed in and cropped at its edges
    fig.update_scenes(xaxis_title="d1", yaxis_title="d2", zaxis_title="loss", aspectmode="cube",
                      camera=dict(eye=dict(x=2.0, y=2.0, z=1.4)))
    # a page wide (the double preset at plotly's 96 px per inch); titles below the toolbar's strip
    width = round(PRESETS["double"]["width"] * 96)
    fig.update_layout(width=width, height=round(width / n * 1.1) * rows + 60, margin=dict(l=0, r=0, t=60, b=0),
                      font=dict(size=10))
    return fig


@styled
def plot_interpolation(records, preset="single"):
    """Loss (log) and accuracy along (1-t) A + t B, clean solid and adversarial dashed."""
    fig, axes = figure(preset, aspect=0.9, nrows=2, sharex=True)
    for arrays, meta in records:
        t = arrays["t"]
        label = f"{meta['run']} → {meta['other_run']}"
        color = method_color(meta["other_method"])
        axes[0, 0].plot(t, arrays["loss"], color=color, label=f"{label}, clean")
        axes[1, 0].plot(t, arrays["acc"], color=color)
        if "adv_loss" in arrays:
            axes[0, 0].plot(t, arrays["adv_loss"], color=color, ls="--", label=f"{label}, {meta['attack']}")
            axes[1, 0].plot(t, arrays["adv_acc"], color=color, ls="--")
    for ax in axes[:, 0]:
        for x in (0, 1):
            ax.axvline(x, color="grey", lw=0.5, ls=":")
    axes[0, 0].set_yscale("log")
    axes[0, 0].set_ylabel("loss")
    axes[1, 0].set_ylabel("accuracy")
    axes[1, 0].set_xlabel("t  (0: first checkpoint, 1: second)")
    plain_log_ticks(axes[0, 0].yaxis)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=6)
    return fig


@styled
def plot_input_surfaces(records, examples=4, preset="double"):
    """Rows: runs; columns: examples. Loss over (FGSM direction, random direction) in units of eps,
    the eps-ball's Linf box drawn; shared colour levels."""
    n = len(records)
    k = min(examples, min(len(a["loss"]) for a, _ in records))
    fig, axes = figure(preset, aspect=0.22 * n + 0.04, nrows=n, ncols=k, sharex=True, sharey=True)
    values = np.concatenate([a["loss"][:k].ravel() for a, _ in records])
    levels = np.linspace(values.min(), np.percentile(values, 98), 15)
    for r, (arrays, meta) in enumerate(records):
        coords = arrays["coords"]
        for c in range(k):
            ax = axes[r, c]
            cs = ax.contourf(coords, coords, np.clip(arrays["loss"][c], None, levels[-1]).T, levels=levels,
                             cmap="magma", extend="max")
            ax.contour(coords, coords, arrays["correct"][c].T.astype(float), levels=[0.5], colors="cyan",
                       linewidths=0.6)
            ax.plot([-1, 1, 1, -1, -1], [-1, -1, 1, 1, -1], color="white", lw=0.5, ls="--")
            ax.set_aspect("equal")
            if r == 0:
                ax.set_title(f"example {c} (label {int(arrays['labels'][c])})")
            if c == 0:
                ax.set_ylabel(f"{_label(meta)}\nrandom dir. (eps)")
            if r == n - 1:
                ax.set_xlabel("FGSM dir. (eps)")
    fig.colorbar(cs, ax=axes.ravel().tolist(), label="loss (cyan: decision boundary)", shrink=0.8)
    return fig
