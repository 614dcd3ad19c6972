"""How the explorers make plotly FigureWidgets: from plain Python lists only, with the toolbar kept off
the titles.

A FigureWidget sends a 1-D float numpy array to the browser as a binary buffer. Put into the widget's
first state (a figure constructed from arrays), that buffer raced the widget's model on a cold first
run: the browser logged "widget model not found" and the figure stayed blank until its cell was run
again. Lists travel as JSON in the same message as the model, so there is nothing to race.
"""
from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go

# the explorers save figures with their own export buttons; plotly's toolbar only covered the titles
CONFIG = {"displayModeBar": False, "displaylogo": False}


def plain(value):
    """value with every numpy array, numpy number and plotly typed-array spec ({'dtype', 'bdata'},
    what Figure.to_dict() makes of an array) turned into Python lists and numbers."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if "bdata" in value and "dtype" in value:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            shape = value.get("shape")
            if isinstance(shape, str):
                shape = [int(n) for n in shape.split(",")]
            return (array.reshape(shape) if shape else array).tolist()
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class PlainFigureWidget(go.FigureWidget):
    """A FigureWidget that sends the browser lists, never binary buffers: at construction and in
    every later update (trace.update(y=array), add_scatter(x=array), relayout)."""

    def __init__(self, data=None, layout=None, **kwargs):
        grid = None
        if hasattr(data, "to_dict"):   # a go.Figure: its subplot grid (row=, col= in add_*) comes along
            grid = (getattr(data, "_grid_ref", None), getattr(data, "_grid_str", None))
            data = data.to_dict()
        super().__init__(plain(data), plain(layout), **kwargs)
        if grid is not None and grid[0] is not None:
            self._grid_ref, self._grid_str = grid

    def _send_restyle_msg(self, restyle_data, *args, **kwargs):
        super()._send_restyle_msg(plain(restyle_data), *args, **kwargs)

    def _send_relayout_msg(self, layout_data, *args, **kwargs):
        super()._send_relayout_msg(plain(layout_data), *args, **kwargs)

    def _send_addTraces_msg(self, new_traces_data):
        super()._send_addTraces_msg(plain(new_traces_data))

    def _send_update_msg(self, restyle_data, relayout_data, *args, **kwargs):
        super()._send_update_msg(plain(restyle_data), plain(relayout_data), *args, **kwargs)


def figure_widget(figure=None, *, toolbar: bool = False, **layout) -> go.FigureWidget:
    """A PlainFigureWidget of a go.Figure (or of an empty one with this layout); toolbar=True keeps
    plotly's toolbar (the 3D surface: its camera buttons), else it is hidden."""
    widget = PlainFigureWidget(figure, layout=layout or None)
    if not toolbar:
        widget._config = dict(CONFIG)
    return widget


def handles(widget) -> dict:
    """meta -> trace, for every trace of the widget given a `meta` key: the explorers address their traces
    by these keys, never by position in widget.data, so a trace added anywhere moves no other one."""
    found = {}
    for trace in widget.data:
        if trace.meta is not None:
            if trace.meta in found:
                raise ValueError(f"two traces carry the handle {trace.meta!r}")
            found[trace.meta] = trace
    return found


def sent_arrays(widget) -> bool:
    """Whether the widget's state holds a numpy array (what would go to the browser as a buffer)."""
    return has_arrays(widget._widget_data) or has_arrays(widget._widget_layout)


def has_arrays(value) -> bool:
    """Whether any numpy array is left in value."""
    if isinstance(value, np.ndarray):
        return True
    if isinstance(value, dict):
        return any(has_arrays(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_arrays(v) for v in value)
    return False
