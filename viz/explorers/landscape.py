"""The landscape explorer: a run's weight-space loss surface (clean or adversarial) at a chosen
resolution, as a contour and a 3D surface, with its smoothness numbers beside it. Surfaces are the
records of regmix.diagnostics (RUN/diagnostics/), computed on first request and reused after."""
from __future__ import annotations

from pathlib import Path

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from regmix.diagnostics import compute, load_record
from regmix.diagnostics.runs import resolve_device

from .export_bar import ExportBar

SURFACES = {"clean": "loss", "adversarial": "adv_loss"}


def record_path(run_dir, grid: int) -> Path:
    """The default record when it has this resolution, else a per-resolution one beside it."""
    default = compute.default_path(run_dir, "weight")
    if default.exists() and load_record(default)[1].get("grid") == grid:
        return default
    return default.with_name(f"landscape_weight_g{grid}.npz")


class LandscapeExplorer:
    """runs: {name: run_dir} or a list; grids: the resolutions offered (the first is shown first);
    device: where a missing surface is computed ('auto': CUDA when there is one)."""

    def __init__(self, runs, *, grids=(11, 21), n: int = 256, attack: str = "pgd10", hessian_iters: int = 20,
                 device="auto", export_dir="figures/explorers"):
        self.runs = runs if isinstance(runs, dict) else {Path(r).name: Path(r) for r in runs}
        self.n, self.attack, self.hessian_iters = n, attack, hessian_iters
        self.device = resolve_device(device)
        self.cache = {}
        self.run = W.Dropdown(options=list(self.runs), description="run")
        self.surface = W.ToggleButtons(options=list(SURFACES), description="loss")
        self.grid = W.Dropdown(options=list(grids), value=grids[0], description="resolution")
        self.status = W.HTML()
        self.numbers = W.HTML(layout=W.Layout(width="260px"))
        common = dict(template="plotly_white", height=400, margin=dict(l=50, r=10, t=40, b=40))
        self.contour = go.FigureWidget(layout=dict(width=430, xaxis_title="along d1", yaxis_title="along d2",
                                                   yaxis_scaleanchor="x", **common))
        self.contour.add_contour(colorscale="Viridis", contours_coloring="heatmap", colorbar=dict(title="loss"))
        self.contour.add_scatter(x=[0], y=[0], mode="markers", marker=dict(symbol="cross", color="red", size=9),
                                 name="trained weights", showlegend=False)
        self.surface3d = go.FigureWidget(layout=dict(width=430, scene=dict(xaxis_title="d1", yaxis_title="d2",
                                                                            zaxis_title="loss"), **common))
        self.surface3d.add_surface(colorscale="Viridis", showscale=False)
        self.export = ExportBar({"contour": self.contour, "surface": self.surface3d}, export_dir, prefix="landscape_")
        for control in (self.run, self.surface, self.grid):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.run, self.surface, self.grid]), self.status,
                              W.HBox([self.contour, self.surface3d, self.numbers]), self.export.widget])
        self.update()

    def record(self, run: str, grid: int):
        """(arrays, meta) of the run's surface at this resolution, computed when missing."""
        key = (run, grid)
        if key not in self.cache:
            path = record_path(self.runs[run], grid)
            if not path.exists():
                self.status.value = f"computing a {grid}x{grid} surface of {run} ({self.attack}, {self.n} points)..."
                compute.weight_landscape_record(self.runs[run], grid=grid, n=self.n, attack=self.attack,
                                                hessian_iters=self.hessian_iters, device=self.device, out=path)
            self.cache[key] = load_record(path)
        return self.cache[key]

    def update(self):
        arrays, meta = self.record(self.run.value, self.grid.value)
        key = SURFACES[self.surface.value]
        if key not in arrays:
            self.status.value = f"<i>{self.run.value}'s record has no adversarial surface (attack none)</i>"
            key = "loss"
        else:
            self.status.value = (f"{meta['run']} ({meta['method']}): {meta['grid']}x{meta['grid']} grid, "
                                 f"{meta['n']} {meta['split']} points, attack {meta['attack']}")
        coords, z = arrays["coords"], np.asarray(arrays[key])
        title = f"{self.run.value}, {self.surface.value} loss"
        with self.contour.batch_update():
            self.contour.data[0].update(x=coords, y=coords, z=z.T)
            self.contour.layout.title = title
        with self.surface3d.batch_update():
            self.surface3d.data[0].update(x=coords, y=coords, z=z.T)
            self.surface3d.layout.title = title
        self.numbers.value = smoothness_html(meta)

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def smoothness_html(meta) -> str:
    """The record's smoothness numbers, clean and adversarial (lower is smoother)."""
    names = [("Hessian λ_max", lambda k: meta.get("hessian", {}).get(k, {}).get("eigenvalue")),
             ("max rise", lambda k: meta.get("sharpness", {}).get(k, {}).get("max_rise")),
             ("mean rise", lambda k: meta.get("sharpness", {}).get(k, {}).get("mean_rise")),
             ("curvature at 0", lambda k: meta.get("sharpness", {}).get(k, {}).get("curvature")),
             ("basin fraction", lambda k: meta.get("sharpness", {}).get(k, {}).get("basin"))]
    rows = "".join(f"<tr><td>{label}</td>" + "".join(
        f"<td>{get(k):.4g}</td>" if isinstance(get(k), (int, float)) else "<td>-</td>" for k in ("clean", "adv"))
        + "</tr>" for label, get in names)
    return ("<b>smoothness</b> (lower is smoother; basin: higher is flatter)<table style='font-size:12px'>"
            f"<tr><th></th><th>clean</th><th>adv.</th></tr>{rows}</table>")
