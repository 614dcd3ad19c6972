"""The one way figures leave viz: save_figure(fig, path) writes path.pdf, .svg and .png, for
matplotlib and plotly figures alike."""
from __future__ import annotations

import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path

from .style import PRESETS, preset_size, rc

FORMATS = ("pdf", "svg", "png")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
PLOTLY_PX_PER_INCH = 96  # kaleido lays pages out at CSS pixels


class ExportUnavailable(RuntimeError):
    """Plotly static export needs a Chromium that kaleido can drive."""


def _is_plotly(fig) -> bool:
    return hasattr(fig, "to_plotly_json") and hasattr(fig, "write_image")


def find_browser():
    """The Chromium that kaleido will use: BROWSER_PATH, else one on PATH (never a download)."""
    if os.environ.get("BROWSER_PATH") and Path(os.environ["BROWSER_PATH"]).exists():
        return os.environ["BROWSER_PATH"]
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def plotly_export_available() -> bool:
    try:
        import kaleido  # noqa: F401
        import plotly  # noqa: F401
    except ImportError:
        return False
    return find_browser() is not None


@contextmanager
def export_session():
    """Keep one Chromium open for every plotly export inside the block (each export otherwise starts
    its own browser, seconds apiece). A no-op without plotly export."""
    started = False
    if plotly_export_available():
        import kaleido
        os.environ.setdefault("BROWSER_PATH", find_browser())
        try:
            kaleido.start_sync_server(silence_warnings=True)
            started = True
        except Exception:  # an already running server, or an older kaleido: export still works per file
            started = False
    try:
        yield
    finally:
        if started:
            import kaleido
            kaleido.stop_sync_server(silence_warnings=True)


def _check(formats):
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"formats: each must be one of {', '.join(FORMATS)}, got {fmt!r}")


def save_figure(fig, path, formats=FORMATS, dpi=300, preset=None, aspect=None):
    """Save fig as path.<fmt> for each format; returns the paths written.

    preset ('single' or 'double') fixes the figure's size to the paper column (aspect: height/width,
    default the figure's own) and writes exactly that size; without one a figure of viz.style.figure
    keeps its preset's size, any other matplotlib figure is cropped to its content, and a plotly figure
    is laid out at the preset nearest its width. PDF fonts are embedded (TrueType), SVG text stays text. Plotly figures go through
    kaleido and a local Chromium (ExportUnavailable when there is none).
    """
    _check(formats)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset: must be one of {', '.join(PRESETS)}, got {preset!r}")
    targets = [path.with_suffix(f".{fmt}") for fmt in formats]
    if _is_plotly(fig):
        _save_plotly(fig, targets, dpi, preset, aspect)
    else:
        _save_matplotlib(fig, targets, dpi, preset, aspect)
    return targets


def _save_matplotlib(fig, targets, dpi, preset, aspect):
    import matplotlib
    style = rc(preset or getattr(fig, "_regmix_preset", None) or "single")
    keep = {k: style[k] for k in ("pdf.fonttype", "ps.fonttype", "svg.fonttype")}
    if preset is not None:
        w, h = fig.get_size_inches()
        fig.set_size_inches(*preset_size(preset, aspect or h / w))
    # a figure drawn at a preset (viz.style.figure) keeps its size: constrained layout fits it, and
    # viz.check finds what does not fit instead of a crop hiding it
    exact = preset is not None or getattr(fig, "_regmix_preset", None) is not None
    if fig.stale:
        # constrained layout settles over two draws: a figure is saved after the same number of them
        # whether viz.check drew it first or not (the file does not depend on --check)
        fig.canvas.draw()
    with matplotlib.rc_context(keep):
        for target in targets:
            # no creation date in a PDF: regenerating a figure from the same records gives the same file
            dated = {"metadata": {"CreationDate": None}} if target.suffix == ".pdf" else {}
            if exact:
                fig.savefig(target, dpi=dpi, **dated)
            else:
                fig.savefig(target, dpi=dpi, bbox_inches="tight", pad_inches=0.02, **dated)


def _save_plotly(fig, targets, dpi, preset, aspect):
    if not plotly_export_available():
        raise ExportUnavailable("plotly static export needs kaleido and a Chromium on PATH (Debian: "
                                "apt-get install -y chromium; see docs/figures.md); matplotlib figures "
                                "export without it")
    import plotly.io as pio
    browser = find_browser()
    os.environ.setdefault("BROWSER_PATH", browser)
    layout = fig.layout
    width = layout.width or 700
    height = layout.height or 500
    if preset is None:  # a screen-sized figure prints at the preset nearest its width
        preset = min(PRESETS, key=lambda p: abs(PRESETS[p]["width"] * PLOTLY_PX_PER_INCH - width))
    if preset is not None:
        w_in, h_in = preset_size(preset, aspect or height / width)
        width, height = round(w_in * PLOTLY_PX_PER_INCH), round(h_in * PLOTLY_PX_PER_INCH)
    scales = [dpi / PLOTLY_PX_PER_INCH if t.suffix == ".png" else 1 for t in targets]
    # one browser for all formats: starting one per file costs seconds each
    for scale in sorted(set(scales)):
        chosen = [t for t, s in zip(targets, scales) if s == scale]
        with warnings.catch_warnings():
            # plotly passes its default browser options even to the session export_session keeps open,
            # and kaleido warns that it ignores them (a red box under every export in a notebook)
            warnings.filterwarnings("ignore", message="The kopts argument is ignored", category=UserWarning)
            pio.write_images([fig] * len(chosen), [str(t) for t in chosen], width=width, height=height, scale=scale)
