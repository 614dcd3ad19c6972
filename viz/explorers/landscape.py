"""The landscape explorer: a run's weight-space loss surface (clean or adversarial) at a chosen
resolution, as a contour and a 3D surface, with its smoothness numbers beside it. Surfaces are the
records of regmix.diagnostics (RUN/diagnostics/), computed on first request and reused after.

A missing surface is computed in a background thread (background.BackgroundJob, as the AMR explorer's
fine-tune), so the notebook stays responsive: a progress bar follows the grid points and Cancel stops
at the next one, before the record is written (no record, not half of one)."""
from __future__ import annotations

from pathlib import Path

import ipywidgets as W
from IPython.display import display
import numpy as np

from regmix.diagnostics import compute, load_record
from regmix.runtime import resolve_device
from regmix.sources import source_label

from .background import BackgroundJob, Cancelled
from .export_bar import ExportBar
from .widgets import figure_widget, handles

SURFACES = {"clean": "loss", "adversarial": "adv_loss"}


def record_path(run_dir, grid: int) -> Path:
    """The default record when it has this resolution, else a per-resolution one beside it."""
    default = compute.default_path(run_dir, "weight")
    if default.exists() and load_record(default)[1].get("grid") == grid:
        return default
    return default.with_name(f"landscape_weight_g{grid}.npz")


class SurfaceJob(BackgroundJob):
    """Computes one weight-landscape record (compute.weight_landscape_record) into `out`; the record is
    written only once every grid point is done, so a cancel (checked at each grid point) leaves none."""

    name = "regmix-landscape"

    def __init__(self, run_dir, out, *, on_progress=None, on_done=None, **options):
        super().__init__(on_progress=on_progress, on_done=on_done)
        self.run_dir, self.out, self.options = run_dir, out, options

    def _point(self, done, total):
        self.check()  # raises Cancelled: the surface is dropped before save_record
        self.progress(done, total)

    def work(self):
        return compute.weight_landscape_record(self.run_dir, out=self.out, progress=self._point, **self.options)


class LandscapeExplorer:
    """runs: {name: run_dir} or a list; grids: the resolutions offered (the first is shown first);
    device: where a missing surface is computed ('auto': CUDA when there is one); autocompute: start
    computing a missing surface as soon as it is selected (False: on the compute button)."""

    def __init__(self, runs, *, grids=(11, 21), n: int = 256, attack: str = "pgd10", hessian_iters: int = 20,
                 device="auto", export_dir="figures/explorers", autocompute: bool = True):
        self.runs = runs if isinstance(runs, dict) else {source_label(r): r for r in runs}
        self.n, self.attack, self.hessian_iters = n, attack, hessian_iters
        self.device = resolve_device(device)
        self.autocompute = autocompute
        self.cache, self.job, self.job_key, self.cancelled = {}, None, None, set()
        self.shown = None  # (run, grid) whose surface the views show; None while they are empty
        self.run = W.Dropdown(options=list(self.runs), description="run")
        self.surface = W.ToggleButtons(options=list(SURFACES), description="loss")
        self.grid = W.Dropdown(options=list(grids), value=grids[0], description="resolution")
        self.status = W.HTML()
        self.bar = W.IntProgress(value=0, min=0, max=1, description="grid points", layout=W.Layout(width="330px"))
        self.compute_button = W.Button(description="compute", icon="play", button_style="warning",
                                       tooltip="compute this surface in the background")
        self.compute_button.on_click(lambda _: self.compute())
        self.cancel_button = W.Button(description="cancel", icon="stop",
                                      tooltip="stop at the next grid point; nothing is written")
        self.cancel_button.on_click(lambda _: self.cancel())
        self.numbers = W.HTML(layout=W.Layout(width="260px"))
        common = dict(template="plotly_white", height=400, margin=dict(l=50, r=10, t=70, b=40))
        self.contour = figure_widget(width=430, xaxis_title="along d1", yaxis_title="along d2",
                                     yaxis_scaleanchor="x", **common)
        self.contour.add_contour(colorscale="Viridis", contours_coloring="heatmap", colorbar=dict(title="loss"),
                                 name="surface", meta="surface")
        self.contour.add_scatter(x=[0], y=[0], mode="markers", marker=dict(symbol="cross", color="red", size=9),
                                 name="trained weights", showlegend=False, meta="origin")
        self.contour_surface = handles(self.contour)["surface"]
        # the 3D view keeps plotly's toolbar (its camera buttons), with a top margin that clears the title
        self.surface3d = figure_widget(width=430, scene=dict(xaxis_title="d1", yaxis_title="d2", zaxis_title="loss"),
                                       toolbar=True, **common)
        self.surface3d.add_surface(colorscale="Viridis", showscale=False, name="surface", meta="surface")
        self.surface3d_surface = handles(self.surface3d)["surface"]
        self.export = ExportBar({"contour": self.contour, "surface": self.surface3d}, export_dir, prefix="landscape_")
        for control in (self.run, self.surface, self.grid):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.run, self.surface, self.grid]),
                              W.HBox([self.status, self.bar, self.compute_button, self.cancel_button]),
                              W.HBox([self.contour, self.surface3d, self.numbers]), self.export.widget])
        self.update()

    # ------------------------------------------------------------------ records

    def _cached(self, run: str, grid: int):
        """(arrays, meta) when the surface is in memory or on disk, else None."""
        key = (run, grid)
        if key not in self.cache:
            path = record_path(self.runs[run], grid)
            if not path.exists():
                return None
            self.cache[key] = load_record(path)
        return self.cache[key]

    def record(self, run: str, grid: int):
        """(arrays, meta) of the run's surface at this resolution; a missing one is computed (in the
        background job, waited for here). Raises the job's error, or background.Cancelled."""
        key = (run, grid)
        while True:
            found = self._cached(run, grid)
            if found is not None:
                return found
            if self.job is not None and self.job.running and self.job_key != key:
                self.job.join()  # one surface at a time: the machine's cores are already busy
                continue
            job = self.job if self.job is not None and self.job.running else self.compute(run, grid)
            if self.job_key == key:
                break
        job.join()
        if job.error is not None:
            raise job.error
        if job.cancelled:
            raise Cancelled(f"the {grid}x{grid} surface of {run} was cancelled")
        return self._cached(run, grid)

    def compute(self, run: str | None = None, grid: int | None = None) -> SurfaceJob:
        """Start computing a surface (default: the selected one) in the background; returns the job
        (join() it to wait). While another surface is computing, that job is returned instead."""
        if self.job is not None and self.job.running:
            return self.job
        run, grid = run or self.run.value, grid or self.grid.value
        key = (run, grid)
        self.cancelled.discard(key)
        self.bar.value, self.bar.max = 0, 1
        self.status.value = f"computing a {grid}x{grid} surface of {run} ({self.attack}, {self.n} points)..."

        def progress(done, total):
            self.bar.max = total
            self.bar.value = done

        def done(job):
            if job.error is not None:
                self.cancelled.add(key)  # not retried on its own: the compute button tries again
                self.status.value = f"<span style='color:#D55E00'>failed: {job.error}</span>"
            elif job.cancelled:
                self.cancelled.add(key)
                self.status.value = f"cancelled: no {grid}x{grid} surface of {run} was written"
            if job.error is None and not job.cancelled or key != (self.run.value, self.grid.value):
                self.update()  # the new surface, or the selection made while this one computed
            else:
                self._show_buttons()

        self.job_key = key
        self.job = SurfaceJob(self.runs[run], record_path(self.runs[run], grid), grid=grid, n=self.n,
                              attack=self.attack, hessian_iters=self.hessian_iters, device=self.device,
                              on_progress=progress, on_done=done)
        self.job.start()
        self._show_buttons()
        return self.job

    def cancel(self):
        """Stop the running computation at its next grid point; nothing is written."""
        if self.job is not None and self.job.running:
            self.job.stop()
            self.status.value = "cancelling at the next grid point..."

    def _show_buttons(self):
        running = self.job is not None and self.job.running
        missing = self._cached(self.run.value, self.grid.value) is None
        self.cancel_button.layout.display = None if running else "none"
        self.bar.layout.display = None if running else "none"
        self.compute_button.layout.display = None if missing and not running else "none"

    # ------------------------------------------------------------------ view

    def update(self):
        run, grid = self.run.value, self.grid.value
        found = self._cached(run, grid)
        if found is None:
            if self.job is not None and self.job.running:
                if self.job_key != (run, grid):
                    self.status.value = (f"{run} at {grid}x{grid} follows once the {self.job_key[1]}x{self.job_key[1]} "
                                         f"surface of {self.job_key[0]} is done (cancel to stop it)")
            elif self.autocompute and (run, grid) not in self.cancelled:
                self.compute(run, grid)
            else:
                self.status.value = f"no {grid}x{grid} surface of {run} yet: press compute"
            # never another run's surface under this run's name: the views are emptied until this one is in
            self._clear(f"{run}, {grid}x{grid}: " + ("computing..." if self.job is not None and self.job.running
                                                      else "no surface yet"))
            self._show_buttons()
            return
        self._show_buttons()
        arrays, meta = found
        key = SURFACES[self.surface.value]
        if key not in arrays:
            self.status.value = f"<i>{run}'s record has no adversarial surface (attack none)</i>"
            key = "loss"
        else:
            self.status.value = (f"{meta['run']} ({meta['method']}): {meta['grid']}x{meta['grid']} grid, "
                                 f"{meta['n']} {meta['split']} points, attack {meta['attack']}")
        coords, z = arrays["coords"], np.asarray(arrays[key])
        title = f"{run}, {self.surface.value} loss"
        with self.contour.batch_update():
            self.contour_surface.update(x=coords, y=coords, z=z.T, visible=True)
            self.contour.layout.title = title
        with self.surface3d.batch_update():
            self.surface3d_surface.update(x=coords, y=coords, z=z.T, visible=True)
            self.surface3d.layout.title = title
        self.numbers.value = smoothness_html(meta, run)
        self.shown = (run, grid)

    def _clear(self, message: str):
        """Empty both views and the numbers, titled with what is awaited."""
        for fig, trace in ((self.contour, self.contour_surface), (self.surface3d, self.surface3d_surface)):
            with fig.batch_update():
                trace.update(x=None, y=None, z=None, visible=False)
                fig.layout.title = message
        self.numbers.value = f"<i>smoothness of {message}</i>"
        self.shown = None

    def _ipython_display_(self):
        display(self.widget)


def smoothness_html(meta, run: str | None = None) -> str:
    """The record's smoothness numbers, clean and adversarial (lower is smoother), headed by the run
    they belong to; the Hessian's trace and spectrum edges when the record has them."""
    def entry(group, key):
        return lambda k: meta.get(group, {}).get(k, {}).get(key)
    names = [("Hessian λ_max", entry("hessian", "eigenvalue")),
             ("Hessian trace", entry("hessian_spectrum", "trace")),
             ("Hessian λ_min (SLQ)", entry("hessian_spectrum", "min")),
             ("max rise", entry("sharpness", "max_rise")),
             ("mean rise", entry("sharpness", "mean_rise")),
             ("curvature at 0", entry("sharpness", "curvature")),
             ("basin fraction", entry("sharpness", "basin"))]
    if not meta.get("hessian_spectrum"):
        names = [n for n in names if "trace" not in n[0] and "SLQ" not in n[0]]
    rows = "".join(f"<tr><td>{label}</td>" + "".join(
        f"<td>{get(k):.4g}</td>" if isinstance(get(k), (int, float)) else "<td>-</td>" for k in ("clean", "adv"))
        + "</tr>" for label, get in names)
    who = run or meta.get("run", "?")
    grid = f", {meta['grid']}x{meta['grid']}" if "grid" in meta else ""
    return (f"<b>smoothness of {who}</b>{grid} (lower is smoother; basin: higher is flatter)"
            "<table style='font-size:12px'>"
            f"<tr><th></th><th>clean</th><th>adv.</th></tr>{rows}</table>")
