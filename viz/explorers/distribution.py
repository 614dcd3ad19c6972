"""The distribution explorer: for one test example (or the mean over a class), the clean, initial and
final adversarial softmax of every chosen run side by side, against the one-hot ground truth."""
from __future__ import annotations

import ipywidgets as W
from IPython.display import display
import numpy as np
from plotly.subplots import make_subplots

from regmix.methods import prior_start
from regmix.runtime import resolve_device
from regmix.sources import load_source, source_label

from ..style import method_color
from .export_bar import ExportBar
from .widgets import figure_widget
from .views import LABELS, VIEWS, softmax, spread_subset, view_logits


GROUP = "border-left:1px solid #bbb;padding-left:6px"   # the first column of a view's group


class DistributionExplorer:
    """runs: {name: source} or a list of sources (run directories, or any model regmix.sources.load_source
    returns, such as an nn.Module with its dataset and threat). Every run is shown the same n test
    points with the same d_init (one seed), each attacked at its own training threat. device: where the
    models run ('auto': CUDA when there is one)."""

    def __init__(self, runs, *, n: int = 64, seed: int = 0, device="auto", export_dir="figures/explorers"):
        runs = runs if isinstance(runs, dict) else {source_label(r): r for r in runs}
        self.runs, self.methods, self.probs = {}, {}, {}
        self.device = resolve_device(device)
        for name, run_dir in runs.items():
            source = load_source(run_dir, device=self.device)
            model, config = source.model, source.config
            if not self.runs:
                self.x, self.y = spread_subset(config, n)
            logits = view_logits(model, self.x, self.y, config.training_threat(), seed=seed,
                                 start=prior_start(config))
            self.runs[name], self.methods[name] = run_dir, config.method.name
            self.probs[name] = {v: softmax(logits[v]) for v in VIEWS}
        self.labels = self.y.numpy()
        self.num_classes = next(iter(self.probs.values()))["clean"].shape[1]

        self.chosen = W.SelectMultiple(options=list(self.runs), value=tuple(self.runs), description="runs",
                                       rows=min(len(self.runs), 6))
        self.mode = W.ToggleButtons(options=["example", "class"], description="show")
        self.example = W.IntSlider(value=0, min=0, max=len(self.labels) - 1, description="example")
        self.klass = W.Dropdown(options=list(range(self.num_classes)), description="class")
        self.figure = figure_widget(make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.04,
                                                  subplot_titles=[LABELS[v] for v in VIEWS]))
        self.figure.update_layout(width=1000, height=340, barmode="group", template="plotly_white",
                                  margin=dict(l=50, r=10, t=70, b=40), legend=dict(orientation="h", y=1.22))
        self.figure.update_yaxes(range=[0, 1.05])
        self.figure.update_yaxes(title_text="probability", col=1)
        self.figure.update_xaxes(dtick=1, title_text="class")
        self.table = W.HTML()
        self.export = ExportBar({"distributions": self.figure}, export_dir, prefix="softmax_")
        for control in (self.chosen, self.mode, self.example, self.klass):
            control.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.chosen, W.VBox([self.mode, self.example, self.klass])]),
                              self.figure, self.table, self.export.widget])
        self.update()

    def selection(self) -> tuple[np.ndarray, int, str]:
        """(mask over the n points, true class, caption) of what is shown."""
        if self.mode.value == "example":
            i = self.example.value
            mask = np.zeros(len(self.labels), bool)
            mask[i] = True
            return mask, int(self.labels[i]), f"test example {i} (label {self.labels[i]})"
        c = self.klass.value
        mask = self.labels == c
        return mask, c, f"mean over the {mask.sum()} test examples of class {c}"

    def distributions(self) -> dict:
        """{run: {view: mean distribution over the selection}}."""
        mask, _, _ = self.selection()
        if not mask.any():
            return {}
        return {r: {v: self.probs[r][v][mask].mean(0) for v in VIEWS} for r in self.chosen.value}

    def update(self):
        self.example.layout.display = None if self.mode.value == "example" else "none"
        self.klass.layout.display = None if self.mode.value == "class" else "none"
        mask, truth, caption = self.selection()
        dists = self.distributions()
        classes = list(range(self.num_classes))
        onehot = [1.0 if c == truth else 0.0 for c in classes]
        with self.figure.batch_update():
            self.figure.data = []
            for col, view in enumerate(VIEWS, start=1):
                for run, by_view in dists.items():
                    self.figure.add_bar(x=classes, y=by_view[view], name=run, legendgroup=run, showlegend=col == 1,
                                        marker_color=method_color(self.methods[run]), row=1, col=col)
                self.figure.add_scatter(x=classes, y=onehot, mode="markers", name="ground truth", legendgroup="truth",
                                        marker=dict(symbol="line-ew-open", size=16, color="black", line=dict(width=3)),
                                        showlegend=col == 1, row=1, col=col)
            self.figure.layout.title = dict(text=caption, y=0.98, font=dict(size=13))
        rows = []
        for run, by_view in dists.items():
            cells = []
            for view in VIEWS:
                p = self.probs[run][view][mask]
                true_p = p[:, truth].mean()
                acc = (p.argmax(1) == truth).mean()
                ce = -np.log(np.clip(p[:, truth], 1e-12, None)).mean()
                cells.append(f"<td style='{GROUP}'>{true_p:.3f}</td><td>{ce:.3f}</td><td>{100 * acc:.0f}%</td>")
            rows.append(f"<tr><td style='text-align:left'>{run} ({self.methods[run]})</td>{''.join(cells)}</tr>")
        # explicit alignment and a rule per group: JupyterLab's own table style set the group headers
        # off the columns they head
        head = "".join(f"<th colspan=3 style='{GROUP};text-align:center'>{LABELS[v]}</th>" for v in VIEWS)
        sub = f"<th style='{GROUP}'>p(true)</th><th>CE to truth</th><th>correct</th>" * 3
        self.table.value = (f"<table style='font-size:12px;border-collapse:collapse;text-align:right'>"
                            f"<tr><th rowspan=2 style='text-align:left'>run</th>{head}</tr><tr>{sub}</tr>"
                            f"{''.join(rows)}</table>")

    def _ipython_display_(self):
        display(self.widget)
