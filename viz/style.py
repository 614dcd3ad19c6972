"""Paper presets: sizes for single- and double-column figures, a colour-blind-safe palette
(Okabe & Ito 2008), and one colour per method that every figure shares."""
from __future__ import annotations

import zlib
from contextlib import contextmanager

# Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale order
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
METHOD_COLORS = {
    "regmix": "#D55E00", "pgk": "#0072B2", "pgd_at": "#009E73", "trades": "#CC79A7",
    "mart": "#E69F00", "fgsm_rs": "#56B4E9", "standard": "#000000",
}
VIEW_STYLES = {"clean": "-", "init": "--", "final": ":"}
VIEW_LABELS = {"clean": "clean", "init": "initial adv. (d_init)", "final": "final adv. (d_final)"}

# widths in inches that fit the common two-column venues (column 3.25-3.5 in, text 6.75-7.16 in:
# ICML, ACM, IEEE); a figure this wide is placed at 100% everywhere
PRESETS = {
    "single": {"width": 3.3, "font": 8},
    "double": {"width": 6.9, "font": 8},
}


# the palette less its yellow, which a thin line or a small marker on white paper does not show
LINE_COLORS = [c for c in PALETTE if c != "#F0E442"]


def method_color(method: str) -> str:
    """The method's colour; an unknown name gets a palette colour chosen from its name (never the yellow),
    so it is the same in every figure and every session."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return LINE_COLORS[zlib.crc32(method.encode()) % len(LINE_COLORS)]


def preset_size(preset: str = "single", aspect: float = 0.75) -> tuple[float, float]:
    if preset not in PRESETS:
        raise ValueError(f"preset: must be one of {', '.join(PRESETS)}, got {preset!r}")
    width = PRESETS[preset]["width"]
    return width, width * aspect


def rc(preset: str = "single") -> dict:
    """matplotlib settings of a preset: small serif-free fonts, TrueType (embedded) fonts in PDF,
    text kept as text in SVG, the palette as the colour cycle."""
    from cycler import cycler
    font = PRESETS[preset]["font"]
    return {"font.size": font, "axes.titlesize": font, "axes.labelsize": font, "legend.fontsize": font - 1,
            "xtick.labelsize": font - 1, "ytick.labelsize": font - 1, "lines.linewidth": 1.2,
            "lines.markersize": 3, "axes.linewidth": 0.6, "legend.frameon": False,
            "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
            "axes.prop_cycle": cycler(color=PALETTE), "figure.dpi": 100, "savefig.dpi": 300}


@contextmanager
def paper_style(preset: str = "single"):
    import matplotlib
    with matplotlib.rc_context(rc(preset)):
        yield


def figure(preset: str = "single", aspect: float = 0.75, nrows: int = 1, ncols: int = 1, **kwargs):
    """plt.subplots at the preset's width with constrained layout (labels never clipped)."""
    import matplotlib.pyplot as plt
    with paper_style(preset):
        fig, axes = plt.subplots(nrows, ncols, figsize=preset_size(preset, aspect), layout="constrained",
                                 squeeze=False, **kwargs)
    fig._regmix_preset = preset
    return fig, axes


def styled(plot):
    """Run a plotting function inside its preset's style: matplotlib reads rcParams when each
    artist is made, so the style must hold for the whole drawing, not only for plt.subplots."""
    import functools
    import inspect
    default = inspect.signature(plot).parameters.get("preset")
    default = default.default if default is not None else "single"

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with paper_style(kwargs.get("preset", default)):
            return plot(*args, **kwargs)
    return wrapper


def integer_ticks(axis) -> None:
    """Ticks on whole numbers only (classes, epochs): matplotlib would put 2.5 or 0.98 there."""
    from matplotlib.ticker import MaxNLocator
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plain_log_ticks(axis) -> None:
    """A log axis labelled with plain numbers (0.1, 1, 2.3), never '6x10^0'; inside one decade the
    ticks are spaced evenly (there is no power of ten to label). Call it after the data are drawn."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
    low, high = sorted(axis.get_view_interval())
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if low > 0 and high / low < 10:
        axis.set_major_locator(MaxNLocator(nbins=4))
    else:
        axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(NullFormatter())
