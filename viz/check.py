"""A figure check: what a reviewer would reject, found by the renderer instead of by eye.

check_figure(fig) draws a matplotlib figure and returns its problems (an empty list when it passes):

    overlap     two pieces of text whose boxes overlap (titles, labels, tick labels, legend entries)
    cropped     text or an axes outside the figure (it would be cut off in the file)
    legend      a legend that covers plotted data (lines, markers, bars, bands, images) of any axes
    ticks       a class or epoch axis with a tick that is not a whole number; a log tick like 6x10^0
    size        a width that is none of the presets' (viz.style.PRESETS)

check_pdf(path) reads a written PDF: every font embedded as TrueType (no Type 3 bitmaps).
check_plotly(fig) checks what can be checked without drawing: the size, and that the toolbar keeps
off the titles (hidden, or a top margin that leaves it room).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .style import PRESETS

TOLERANCE_PX = 1.0          # overlaps thinner than this are antialiasing, not a defect
WIDTH_TOLERANCE = 0.03      # a preset's width within 3%
INTEGER_AXIS = re.compile(r"^\s*(?:true |predicted )?(class|classes|epoch|epochs)\b", re.I)  # the axis counts them
TIMES_TEN_TO_ZERO = re.compile(r"times\s*10\^\{?0\}?|×\s*10\^\{?0\}?")
MODEBAR_PX = 40             # plotly's toolbar: about 30 px tall at the top right, plus a gap


class FigureCheckError(AssertionError):
    """A figure failed the check: the message lists every problem."""


def _renderer(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _plain(text: str) -> str:
    return text.replace("$", "").replace("\\mathdefault", "").replace("{", "").replace("}", "") \
        .replace("\N{MINUS SIGN}", "-").replace("\\minus", "-").strip()


def _tick_texts(ax):
    """(text artist, location) of every tick label drawn: visible, non-empty, inside the view."""
    out = []
    if not ax.axison:
        return out
    for axis in (ax.xaxis, ax.yaxis):
        low, high = sorted(axis.get_view_interval())
        span = max(high - low, 1e-300)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks():
            loc = tick.get_loc()
            if loc is None or not (low - 1e-9 * span <= loc <= high + 1e-9 * span):
                continue
            for label in (tick.label1, tick.label2):
                if label.get_visible() and label.get_text().strip():
                    out.append((axis, label, loc))
    return out


def _texts(fig, renderer):
    """[(description, bbox)] of every piece of text drawn."""
    tick_labels = set()
    found = []
    for ax in fig.axes:
        if not ax.get_visible() or ax.name == "3d":
            continue
        for _, label, _ in _tick_texts(ax):
            tick_labels.add(id(label))
            found.append(label)
    for ax in fig.axes:
        if ax.name == "3d":
            continue
        if not ax.axison:   # axis("off"): neither its labels nor its ticks are drawn
            tick_labels.update((id(ax.xaxis.label), id(ax.yaxis.label), id(ax.xaxis.offsetText),
                                id(ax.yaxis.offsetText)))
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_labels.update((id(tick.label1), id(tick.label2)))
    from matplotlib.text import Text
    for text in fig.findobj(Text):
        if id(text) in tick_labels or not text.get_visible() or not text.get_text().strip():
            continue
        if text.axes is not None and (not text.axes.get_visible() or text.axes.name == "3d"):
            continue
        found.append(text)
    out = []
    for text in found:
        box = text.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            out.append((text, box))
    return out


def _overlap(a, b) -> bool:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w > TOLERANCE_PX and h > TOLERANCE_PX


def _quote(text) -> str:
    s = text.get_text().replace("\n", " / ")
    return repr(s if len(s) <= 40 else s[:37] + "...")


def _check_overlaps(texts, problems):
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            (ta, a), (tb, b) = texts[i], texts[j]
            if _overlap(a, b):
                problems.append(f"overlap: {_quote(ta)} and {_quote(tb)}")


def _check_cropped(fig, texts, renderer, problems):
    w, h = fig.bbox.width, fig.bbox.height
    inside = lambda b: b.x0 >= -TOLERANCE_PX and b.y0 >= -TOLERANCE_PX and b.x1 <= w + TOLERANCE_PX \
        and b.y1 <= h + TOLERANCE_PX  # noqa: E731
    for text, box in texts:
        if not inside(box):
            problems.append(f"cropped: text {_quote(text)} reaches outside the figure")
    for ax in fig.axes:
        if ax.get_visible() and not inside(ax.get_window_extent(renderer)):
            problems.append(f"cropped: axes {ax.get_title() or ax.get_label()!r} reaches outside the figure")


def _data_hits(ax, box, renderer) -> list:
    """Names of the data artists of ax drawn inside the display box."""
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage
    from matplotlib.transforms import Bbox
    area = Bbox.intersection(box, ax.bbox)
    if area is None or area.width <= TOLERANCE_PX or area.height <= TOLERANCE_PX:
        return []
    area = area.padded(-TOLERANCE_PX)
    hits = []
    for line in ax.lines:
        if not line.get_visible() or len(line.get_xdata()) == 0:
            continue
        path = line.get_transform().transform_path(line.get_path())
        drawn_line = line.get_linestyle() not in ("None", "none", "", " ")
        if drawn_line and path.intersects_bbox(area, filled=False):
            hits.append(line)
        elif line.get_marker() not in (None, "None", "none", "", " ") and \
                _inside(area, path.vertices).any():
            hits.append(line)
    for patch in ax.patches:
        if patch.get_visible():
            path = patch.get_transform().transform_path(patch.get_path())
            if path.intersects_bbox(area, filled=patch.get_fill()):
                hits.append(patch)
    for coll in ax.collections:
        if not isinstance(coll, Collection) or not coll.get_visible():
            continue
        offsets = coll.get_offsets()
        if len(offsets) and len(coll.get_paths()) and coll.get_offset_transform() is not None \
                and not np.allclose(offsets, 0):
            points = coll.get_offset_transform().transform(offsets)
            if _inside(area.padded(3), points).any():
                hits.append(coll)
            continue
        transform = coll.get_transform()
        filled = len(coll.get_facecolors()) > 0
        if any(transform.transform_path(p).intersects_bbox(area, filled=filled) for p in coll.get_paths()):
            hits.append(coll)
    for image in ax.images:
        if isinstance(image, AxesImage) and image.get_visible() and \
                Bbox.intersection(image.get_window_extent(renderer), area) is not None:
            hits.append(image)
    return hits


def _inside(box, points):
    points = np.asarray(points, dtype=float).reshape(-1, 2)
    return (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)


def _check_legends(fig, renderer, problems):
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    for legend in legends:
        if not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.get_visible() and ax.name != "3d":
                hits = _data_hits(ax, box, renderer)
                if hits:
                    names = sorted({type(h).__name__ + (f" {h.get_label()!r}" if not h.get_label().startswith("_")
                                                        else "") for h in hits})
                    problems.append(f"legend: the legend {_legend_name(legend)} covers data of axes "
                                    f"{ax.get_title() or ax.get_label() or '?'!r}: {', '.join(names[:3])}")


def _legend_name(legend) -> str:
    texts = [t.get_text() for t in legend.get_texts()]
    return repr(texts[0] + (", ..." if len(texts) > 1 else "")) if texts else "(empty)"


def _check_ticks(fig, problems):
    for ax in fig.axes:
        if not ax.get_visible() or ax.name == "3d":
            continue
        for axis, label, loc in _tick_texts(ax):
            name = axis.get_label_text()
            text = label.get_text()
            if TIMES_TEN_TO_ZERO.search(text):
                problems.append(f"ticks: log tick {text!r} on {name or 'an axis'!r} (write the number, e.g. 6)")
            if INTEGER_AXIS.search(name) and axis.get_scale() == "linear" and not _categorical(axis):
                plain = _plain(text)
                if abs(loc - round(loc)) > 1e-9 or not re.fullmatch(r"-?\d+", plain):
                    problems.append(f"ticks: {name!r} counts in whole numbers but has a tick {plain!r} at {loc:g}")


def _categorical(axis) -> bool:
    return axis.get_converter() is not None if hasattr(axis, "get_converter") else False


def _check_size(width_in, problems, what="figure"):
    widths = [p["width"] for p in PRESETS.values()]
    if not any(abs(width_in - w) <= WIDTH_TOLERANCE * w for w in widths):
        problems.append(f"size: {what} is {width_in:.2f} in wide; the presets are "
                        + ", ".join(f"{name} {p['width']} in" for name, p in PRESETS.items()))


def check_figure(fig, *, size: bool = True) -> list:
    """The problems of a matplotlib figure as drawn (an empty list when it passes). size=False skips
    the preset-width check (a figure made for the screen, not for print)."""
    renderer = _renderer(fig)
    problems = []
    texts = _texts(fig, renderer)
    _check_overlaps(texts, problems)
    _check_cropped(fig, texts, renderer, problems)
    _check_legends(fig, renderer, problems)
    _check_ticks(fig, problems)
    if size:
        _check_size(fig.get_size_inches()[0], problems)
    return problems


def check_pdf(path) -> list:
    """Problems of a written PDF: fonts not embedded as TrueType, a page of no preset's width."""
    data = Path(path).read_bytes()
    problems = []
    if b"/Type3" in data:
        problems.append(f"fonts: {Path(path).name} has Type 3 fonts (set pdf.fonttype 42 for TrueType)")
    if b"/Font" in data and b"/FontFile2" not in data:
        problems.append(f"fonts: {Path(path).name} does not embed its fonts as TrueType")
    box = re.search(rb"MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", data)
    if box:
        _check_size((float(box.group(3)) - float(box.group(1))) / 72, problems, what=f"{Path(path).name}'s page")
    return problems


def check_plotly(fig, *, size: bool = True) -> list:
    """What can be checked of a plotly figure without a browser: its width against the presets
    (at 96 px per inch, as it is exported) and the toolbar's room above the titles."""
    from .export import PLOTLY_PX_PER_INCH
    layout = fig.layout
    problems = []
    if size:
        _check_size((layout.width or 700) / PLOTLY_PX_PER_INCH, problems)
    titled = bool(layout.title.text) or any(
        a.yref == "paper" and (a.y or 0) >= 0.95 for a in (layout.annotations or ()))
    hidden = getattr(fig, "_config", {}).get("displayModeBar") is False or layout.modebar.orientation == "v"
    top = layout.margin.t if layout.margin.t is not None else 100
    if titled and not hidden and top < MODEBAR_PX + 20:
        problems.append(f"toolbar: titles in a top margin of {top} px sit under plotly's toolbar "
                        f"(hide it, turn it vertical, or give the top {MODEBAR_PX + 20} px)")
    return problems


def require(problems, name: str = "figure") -> None:
    """Raise FigureCheckError listing every problem, if any."""
    if problems:
        raise FigureCheckError(f"{name}: {len(problems)} problem(s)\n  " + "\n  ".join(problems))


class Checker:
    """Collects the problems of every figure a render writes: call it with (fig, name) before the
    figure is saved and with the written paths after; raise_if_any() at the end names them all."""

    def __init__(self):
        self.problems = {}

    def figure(self, fig, name: str) -> None:
        found = check_plotly(fig) if hasattr(fig, "to_plotly_json") else check_figure(fig)
        self.problems.setdefault(name, []).extend(found)

    def written(self, paths, name: str) -> None:
        for path in paths:
            if Path(path).suffix == ".pdf" and not hasattr(path, "to_plotly_json"):
                self.problems.setdefault(name, []).extend(check_pdf(path))

    def failed(self) -> dict:
        return {name: found for name, found in self.problems.items() if found}

    def raise_if_any(self) -> None:
        failed = self.failed()
        if failed:
            raise FigureCheckError("figure check failed:\n" + "\n".join(
                f"{name}:\n  " + "\n  ".join(found) for name, found in failed.items()))
