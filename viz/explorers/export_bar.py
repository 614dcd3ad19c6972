"""Export buttons under an explorer: the chosen figure as PDF, SVG or PNG through viz.save_figure."""
from __future__ import annotations

from pathlib import Path

import ipywidgets as W

from ..export import FORMATS, save_figure


class ExportBar:
    """figures: name -> figure (a plotly FigureWidget or a matplotlib figure). Files go to
    directory/<name>.<format>; the status line names them, or says why nothing was written."""

    def __init__(self, figures: dict, directory="figures/explorers", prefix: str = ""):
        self.figures = dict(figures)
        self.directory = Path(directory)
        self.choice = W.Dropdown(options=list(self.figures), description="figure",
                                 layout=W.Layout(width="230px"))
        self.name = W.Text(value=f"{prefix}{next(iter(self.figures))}", description="file",
                           layout=W.Layout(width="260px"))
        self.choice.observe(lambda change: setattr(self.name, "value", f"{prefix}{change['new']}"), names="value")
        self.buttons = [W.Button(description=fmt.upper(), tooltip=f"save as {fmt}", icon="download",
                                 layout=W.Layout(width="80px")) for fmt in FORMATS]
        for button, fmt in zip(self.buttons, FORMATS):
            button.on_click(lambda _, fmt=fmt: self.export(fmt))
        self.status = W.HTML()
        self.widget = W.VBox([W.HBox([self.choice, self.name, *self.buttons]), self.status])

    def export(self, fmt: str, name: str | None = None) -> list:
        """Write the chosen figure (or `name`) in one format; returns the paths written."""
        key = name or self.choice.value
        stem = self.directory / (self.name.value if name is None else key)
        try:
            paths = save_figure(self.figures[key], stem, formats=(fmt,))
        except Exception as err:  # shown to the user: an export must never kill the explorer
            self.status.value = f"<span style='color:#D55E00'>not saved: {err}</span>"
            return []
        self.status.value = "saved " + ", ".join(f"<code>{p}</code>" for p in paths)
        return paths
