"""The AMR weight explorer: sliders for alpha, beta, gamma and the temperature, and at once what
they change — the gradient flow on the 3-class simplex, what the share alpha/(alpha+beta) does
(a unimodal output fitted to a two-peaked one; who moves towards whom when both move), the four loss
terms on the current model's outputs for a few test examples, the distributions those terms compare,
the robust accuracy of the nearest point of a sweep — plus a short fine-tune at the chosen weights,
in the background."""
from __future__ import annotations

import math
from pathlib import Path

import ipywidgets as W
from IPython.display import display
import numpy as np
import torch
from plotly.subplots import make_subplots

from regmix import losses
from regmix.diagnostics import kl_toy
from regmix.methods import prior_start, resolved_options
from regmix.runtime import resolve_device
from regmix.sources import ExternalModel, load_source

from ..style import PALETTE
from . import sweep_lookup
from .export_bar import ExportBar
from .finetune import FineTune
from .views import LABELS, VIEWS, softmax, spread_subset, view_logits
from .widgets import figure_widget, handles

VIEW_COLORS = {"clean": PALETTE[2], "init": PALETTE[0], "final": PALETTE[3]}
TERM_LABELS = {"ce": "CE(final)", "amr_final_init": "α·KL(final‖init)", "amr_init_final": "β·KL(init‖final)",
               "agr": "γ·KL(clean‖final)"}
CORNERS = np.array([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2], [0, 0]])
# the default toy pair: the final adversarial output flipped to class 1, the initial one still on class 0
DEFAULT_PAIR = kl_toy.PAIRS["P, Q confident, disagree"]
RATIOS = np.linspace(0.0, 1.0, 101)  # alpha/(alpha+beta) grid of the precomputed traces
TERM_FLOOR = 1e-6                    # where a zero loss term is drawn on the log axis


def _slider(name, value, low, high, step, description):
    return W.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         continuous_update=True, readout_format=".2f", layout=W.Layout(width="420px"),
                         style={"description_width": "140px"})


class AMRWeightExplorer:
    """run_dir: the model whose outputs the loss terms are computed on (any method's run);
    sweep_dir: an alpha x beta sweep folder (regmix sweep) for the robust accuracy, optional."""

    def __init__(self, run_dir, *, examples: int = 4, sweep_dir=None, finetune_steps: int = 50,
                 finetune_points: int = 256, export_dir="figures/explorers", p0=DEFAULT_PAIR[0],
                 q0=DEFAULT_PAIR[1], seed: int = 0, device="auto"):
        # a run directory, or any model source (regmix.sources: an ExternalModel, a TorchScript file)
        self.run_dir = run_dir if isinstance(run_dir, ExternalModel) else Path(run_dir)
        self.device = resolve_device(device)  # auto: CUDA when there is one
        source = load_source(self.run_dir, device=self.device)
        self.model, self.config = source.model, source.config
        self.trained = self.model  # every fine-tune starts here; reset() comes back here
        self.x, self.y = spread_subset(self.config, examples)
        self.threat = self.config.training_threat()
        self.seed, self.p0, self.q0 = seed, p0, q0
        # the sliders start at the run's effective weights (a non-regmix run starts at regmix's defaults)
        own = self.config.method.options if self.config.method.name == "regmix" else {}
        self.options = resolved_options("regmix", own, self.threat)
        self.logits = view_logits(self.model, self.x, self.y, self.threat, seed=seed,
                                  start=prior_start(self.config))
        self.finetune_steps, self.finetune_points, self.job, self.tuned_with = finetune_steps, finetune_points, None, None
        self.before = None  # the trained model's accuracy on the fine-tune's validation points, once measured
        self.sweep_dir = Path(sweep_dir) if sweep_dir else None
        self.sweep_points = sweep_lookup.load_points(self.sweep_dir) if self.sweep_dir else []
        self.sweep_keys = sweep_lookup.swept_keys(self.sweep_dir) if self.sweep_dir else []

        # the study's sweeps span 0.25 to 16 and the defaults are alpha = beta = 16; a slider clamps a value
        # above its max silently, so the range always holds the run's own weights
        top = max(16.0, *(float(self.options[k]) for k in ("alpha", "beta", "gamma")))
        self.alpha = _slider("alpha", float(self.options["alpha"]), 0, top, 0.05, "α  KL(final‖init)")
        self.beta = _slider("beta", float(self.options["beta"]), 0, top, 0.05, "β  KL(init‖final)")
        self.gamma = _slider("gamma", float(self.options["gamma"]), 0, top, 0.05, "γ  KL(clean‖final)")
        self.temperature = _slider("temperature", float(self.options["temperature"]), 0.25, 8, 0.25, "temperature T")
        self.simplex = self._simplex_figure()
        # only alpha/(alpha+beta) decides where these end (alpha + beta sets the speed): computed once
        self.traces = kl_toy.kl_weighting(RATIOS, pairs={"explorer": (p0, q0)})
        self.weighting = self._weighting_figure()
        # the KL terms are ~0.5% of the cross-entropy: on a linear axis they are one-pixel slivers
        self.terms = figure_widget(width=420, height=330, margin=dict(l=60, r=10, t=50, b=40),
                                   title=dict(text="loss terms on the shown examples", font=dict(size=13)),
                                   yaxis=dict(title="value (batchmean, log scale)", type="log"),
                                   template="plotly_white")
        self.terms.add_bar(x=list(TERM_LABELS.values()), y=[1e-12] * 4, text=[""] * 4, textposition="outside",
                           marker_color=[PALETTE[7], PALETTE[3], PALETTE[0], PALETTE[2]], name="terms",
                           meta="terms")
        self.term_bars = handles(self.terms)["terms"]
        self.softmax = self._softmax_figure()
        self.accuracy = W.HTML()
        self.term_table = W.HTML()
        self.fine_button = W.Button(description="fine-tune", icon="play", button_style="warning",
                                    tooltip="from the trained weights: the budget at these weights and the same "
                                            "budget at the run's own (control), PGD accuracy before and after")
        self.fine_button.on_click(lambda _: self.fine_tune())
        self.fine_steps = W.BoundedIntText(value=finetune_steps, min=1, max=100000, description="steps",
                                           layout=W.Layout(width="160px"))
        self.reset_button = W.Button(description="reset", icon="undo", tooltip="back to the trained model")
        self.reset_button.on_click(lambda _: self.reset())
        self.fine_result = W.HTML()
        self.fine_optimizer = W.Dropdown(options=[("run's optimiser and lr", "run"), ("Adam, half the lr", "adam-half")],
                                         value="run", layout=W.Layout(width="190px"))
        self.fine_stop = W.Button(description="stop", icon="stop", tooltip="stop after the current step")
        self.fine_stop.on_click(lambda _: self.job.stop() if self.job is not None else None)
        self.progress = W.IntProgress(value=0, min=0, max=max(finetune_steps, 1), description="fine-tune",
                                      layout=W.Layout(width="330px"))
        self.fine_status = W.HTML()
        self.export = ExportBar({"simplex": self.simplex, "kl_weighting": self.weighting, "loss_terms": self.terms,
                                 "softmax": self.softmax},
                                export_dir, prefix="amr_")
        for slider in self.sliders:
            slider.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([
            W.HBox([W.VBox(self.sliders), W.VBox([self.accuracy, self.term_table])]),
            W.HBox([self.simplex, self.terms]),
            self.weighting,
            self.softmax,
            W.HBox([self.fine_steps, self.fine_button, self.fine_optimizer, self.fine_stop, self.reset_button,
                    self.progress, self.fine_status]),
            self.fine_result,
            self.export.widget,
        ])
        self.update()

    @property
    def sliders(self):
        return [self.alpha, self.beta, self.gamma, self.temperature]

    def weights(self) -> dict:
        return {"alpha": self.alpha.value, "beta": self.beta.value, "gamma": self.gamma.value,
                "temperature": self.temperature.value}

    # ------------------------------------------------------------------ numbers

    def loss_terms(self) -> dict:
        """The RegMix objective's terms at the slider weights, on the current model's logits."""
        w = self.weights()
        z = {v: torch.as_tensor(self.logits[v]) for v in VIEWS}
        options = dict(temperature=w["temperature"], reduction=self.options.get("kl_reduction", "batchmean"))
        forward, backward = losses.amr_terms(z["final"], z["init"], w["alpha"], w["beta"], **options)
        return {"ce": float(losses.cross_entropy(z["final"], self.y, self.options.get("true_class_target", 1.0))),
                "amr_final_init": float(forward), "amr_init_final": float(backward),
                "agr": float(losses.agr(z["clean"], z["final"], w["gamma"], **options))}

    def nearest_accuracy(self):
        if not self.sweep_points:
            return None
        return sweep_lookup.nearest(self.sweep_points, self.weights(), self.sweep_keys)

    # ------------------------------------------------------------------ drawing

    def _simplex_figure(self):
        fig = figure_widget(width=420, height=330, margin=dict(l=10, r=10, t=40, b=10),
                            template="plotly_white", showlegend=True,
                            legend=dict(orientation="h", y=-0.02, font=dict(size=10)),
                            xaxis=dict(visible=False, range=[-0.08, 1.08]),
                            yaxis=dict(visible=False, scaleanchor="x", range=[-0.08, 0.95]))
        fig.add_scatter(x=CORNERS[:, 0].tolist(), y=CORNERS[:, 1].tolist(), mode="lines+text",
                        line=dict(color="black", width=1), text=["class 0", "class 1", "class 2", ""],
                        textposition="bottom center", showlegend=False, hoverinfo="skip", name="simplex",
                        meta="outline")
        fig.add_scatter(mode="lines", line=dict(color="#999", width=1), name="push on P (Q fixed)", hoverinfo="skip",
                        meta="field")
        fig.add_scatter(mode="lines", line=dict(color=PALETTE[3], width=2), name="P = f(x+d_final)", meta="P")
        fig.add_scatter(mode="lines", line=dict(color=PALETTE[0], width=2, dash="dash"), name="Q = f(x+d_init)",
                        meta="Q")
        fig.add_scatter(mode="markers", marker=dict(symbol="star", size=12, color="black"), name="meeting point",
                        meta="meeting")
        fig.add_scatter(mode="markers", marker=dict(symbol="star-open", size=12, color="black"),
                        name="meeting point, target detached", meta="detached")
        self.simplex_traces = handles(fig)
        return fig

    def _weighting_figure(self):
        """Left: a unimodal P fitted to a fixed two-peaked Q at the current alpha/(alpha+beta); right:
        the traces against alpha/(alpha+beta) with the current value marked."""
        fit, runs = self.traces["fit"], self.traces["meetings"]["explorer"]
        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, column_widths=[0.42, 0.58],
                            subplot_titles=["unimodal P fitted to a fixed two-peaked Q",
                                            "against the AMR weight α/(α+β)"])
        classes = list(range(len(fit["target"])))
        fig.add_bar(x=classes, y=fit["target"], marker_color="#bbb", name="Q: fixed two-peaked output",
                    meta="target", row=1, col=1)
        fig.add_scatter(x=classes, y=fit["q"][0], mode="lines+markers", line=dict(color=PALETTE[3], width=2),
                        name="fitted P at the current weight", meta="fit", row=1, col=1)
        curves = [("p_true", "P(true class) of the fit", fit["p_true"], PALETTE[4], "solid"),
                  ("entropy", f"entropy of the fit / ln {len(classes)}", fit["entropy"] / np.log(len(classes)),
                   "black", "dash"),
                  ("share_both", "share of the way P travels, both move", runs["both"]["share_p"], PALETTE[2],
                   "solid"),
                  ("share_detached", "same, target side detached", runs["detached"]["share_p"], PALETTE[2], "dot")]
        for key, name, y, color, dash in curves:
            fig.add_scatter(x=RATIOS, y=y, mode="lines", line=dict(color=color, dash=dash, width=2), name=name,
                            meta=key, row=1, col=2)
        fig.add_scatter(x=[0, 0], y=[0, 1.02], mode="lines", line=dict(color="#888", width=1), showlegend=False,
                        hoverinfo="skip", meta="now_line", row=1, col=2)
        fig.add_scatter(x=[0] * 4, y=[0] * 4, mode="markers", marker=dict(size=9, color="black"),
                        name="current α/(α+β)", meta="now", row=1, col=2)
        fig.update_yaxes(range=[0, 1.02])
        fig.update_xaxes(title_text="class", dtick=1, row=1, col=1)
        fig.update_xaxes(title_text="AMR weight α/(α+β)  (0: β only, 1: α only)", range=[0, 1], row=1, col=2)
        fig.update_layout(width=900, height=330, template="plotly_white", margin=dict(l=40, r=10, t=70, b=40),
                          legend=dict(orientation="v", x=1.02, y=1, font=dict(size=10)),
                          title=dict(text="what α/(α+β) changes", y=0.98, font=dict(size=13)))
        widget = figure_widget(fig)
        self.weighting_traces = handles(widget)
        return widget

    def _softmax_figure(self):
        n = len(self.y)
        fig = make_subplots(rows=1, cols=n, shared_yaxes=True, horizontal_spacing=0.03,
                            subplot_titles=[f"example {i}, label {int(c)}" for i, c in enumerate(self.y)])
        classes = list(range(self.logits["clean"].shape[1]))
        for i in range(n):
            for view in VIEWS:
                fig.add_bar(x=classes, y=[0] * len(classes), name=LABELS[view], marker_color=VIEW_COLORS[view],
                            legendgroup=view, showlegend=i == 0, meta=f"{view} {i}", row=1, col=i + 1)
            truth = [1.0 if c == int(self.y[i]) else None for c in classes]
            fig.add_scatter(x=classes, y=truth, mode="markers", marker=dict(symbol="line-ew-open", size=18,
                            color="black", line=dict(width=3)), name="ground truth", legendgroup="truth",
                            showlegend=i == 0, meta=f"truth {i}", row=1, col=i + 1)
        fig.update_yaxes(range=[0, 1.05])
        fig.update_xaxes(dtick=1)
        fig.update_layout(width=min(260 * n + 120, 1100), height=340, barmode="group", template="plotly_white",
                          margin=dict(l=40, r=10, t=100, b=30), legend=dict(orientation="h", y=1.14, yanchor="bottom"),
                          title=dict(text="softmax(z / T) that the KL terms compare", y=0.98, yanchor="top",
                                     font=dict(size=13)))
        widget = figure_widget(fig)
        bars = handles(widget)  # (example, view) -> its bar trace
        self.softmax_bars = {(i, view): bars[f"{view} {i}"] for i in range(n) for view in VIEWS}
        return widget

    def _draw_simplex(self, w):
        # small steps: the drawn path is the flow, not its discretisation (numpy on 3-vectors: milliseconds)
        flow = kl_toy.gradient_flow(self.p0, self.q0, w["alpha"], w["beta"], lr=0.1, steps=800)
        field = kl_toy.velocity_field(self.q0, w["alpha"], w["beta"], resolution=8)
        base = kl_toy.to_plane(field["P"])
        tip = kl_toy.to_plane(field["P"] + field["velocity"])
        step = tip - base
        scale = 0.045 / np.maximum(np.linalg.norm(step, axis=1, keepdims=True), 1e-12)
        ends = base + step * scale
        xs = np.column_stack([base[:, 0], ends[:, 0], np.full(len(base), np.nan)]).ravel()
        ys = np.column_stack([base[:, 1], ends[:, 1], np.full(len(base), np.nan)]).ravel()
        P, Q = kl_toy.to_plane(flow["P"]), kl_toy.to_plane(flow["Q"])
        t = self.simplex_traces
        with self.simplex.batch_update():
            t["field"].update(x=xs, y=ys)
            t["P"].update(x=P[:, 0], y=P[:, 1])
            t["Q"].update(x=Q[:, 0], y=Q[:, 1])
            t["meeting"].update(x=[P[-1, 0]], y=[P[-1, 1]])
            r = kl_toy.weight_share(w["alpha"], w["beta"])
            if r is None:
                t["detached"].update(x=[], y=[])
            else:
                detached = self.traces["meetings"]["explorer"]["detached"]["meeting"]
                point = kl_toy.to_plane(detached[int(np.argmin(np.abs(RATIOS - r)))])
                t["detached"].update(x=[point[0]], y=[point[1]])
            self.simplex.layout.title = f"AMR toy on the simplex: α={w['alpha']:.2f}, β={w['beta']:.2f}"

    def _draw_softmax(self, w):
        probs = {v: softmax(self.logits[v], w["temperature"]) for v in VIEWS}
        with self.softmax.batch_update():
            for (i, view), bars in self.softmax_bars.items():
                bars.y = probs[view][i]
            self.softmax.layout.title.text = f"softmax(z / T) at T={w['temperature']:.2f}: {self.model_label()}"

    def _draw_weighting(self, w):
        r = kl_toy.weight_share(w["alpha"], w["beta"])
        t = self.weighting_traces
        with self.weighting.batch_update():
            if r is None:  # alpha = beta = 0: no AMR, nothing to mark
                t["fit"].y = [0] * len(self.traces["fit"]["target"])
                t["now_line"].update(x=[], y=[])
                t["now"].update(x=[], y=[])
                self.weighting.layout.title.text = "what α/(α+β) changes: α = β = 0, AMR is off"
                return
            i = int(np.argmin(np.abs(RATIOS - r)))
            t["fit"].y = self.traces["fit"]["q"][i]
            t["now_line"].update(x=[r, r], y=[0, 1.02])
            curves = ("p_true", "entropy", "share_both", "share_detached")
            t["now"].update(x=[RATIOS[i]] * 4, y=[t[k].y[i] for k in curves])
            self.weighting.layout.title.text = (f"what α/(α+β) changes: now {r:.2f} "
                                                f"(α={w['alpha']:.2f}, β={w['beta']:.2f})")

    def update(self):
        w = self.weights()
        terms = self.loss_terms()
        self._draw_simplex(w)
        self._draw_weighting(w)
        self._draw_softmax(w)
        with self.terms.batch_update():
            # a log axis cannot show 0 (gamma = 0): such a term sits at the floor, its label says 0
            self.term_bars.y = [max(terms[k], TERM_FLOOR) for k in TERM_LABELS]
            self.term_bars.text = [f"{terms[k]:.2g}" for k in TERM_LABELS]
        total = sum(terms.values())
        self.term_table.value = ("<b>loss on the shown examples</b><br>" + "<br>".join(
            f"{TERM_LABELS[k]}: {v:.4f}" for k, v in terms.items()) + f"<br>total: {total:.4f}")
        self.accuracy.value = self._accuracy_html()

    def _accuracy_html(self) -> str:
        if self.sweep_dir is None:
            return "<i>no sweep given: robust accuracy unavailable (regmix sweep ... writes one)</i>"
        point = self.nearest_accuracy()
        if point is None:
            return f"<i>no finished runs in {self.sweep_dir} yet</i>"
        metric = sweep_lookup.robust_metric(point["accuracy"])
        where = ", ".join(f"{k}={point['weights'][k]:g}" for k in self.sweep_keys if point["weights"][k] is not None)
        value = f"{100 * point['accuracy'][metric]:.1f}%" if metric else "n/a"
        clean = f", clean {100 * point['accuracy']['clean']:.1f}%" if "clean" in point["accuracy"] else ""
        return (f"<b>nearest sweep point</b> ({where}; distance {point['distance']:.2f})<br>"
                f"robust accuracy ({metric}): <b>{value}</b>{clean}<br>"
                f"<small>source: {point['source']}, {point['seeds']} seed(s)</small>")

    # ------------------------------------------------------------------ fine-tune

    def model_label(self) -> str:
        """What the shown outputs come from: the trained model, or what was fine-tuned from it."""
        if not self.tuned_with:
            return "the trained model"
        t = self.tuned_with
        return (f"fine-tuned {t['steps']} steps at α={t['alpha']:g}, β={t['beta']:g}, γ={t['gamma']:g} "
                "from the trained weights")

    def fine_tune(self, steps: int | None = None, weights: dict | None = None) -> FineTune:
        """From the trained weights (never on top of an earlier fine-tune): `steps` batches (default:
        the steps box) at the slider weights (or at `weights` over them, the sliders left where they
        are) and, as the control, the same budget at the run's own weights; PGD accuracy on fixed
        validation points before and after. Runs in the background; returns the job (join() to wait)."""
        if self.job is not None and self.job.running:
            self.fine_status.value = "already running"
            return self.job
        steps = int(steps or self.fine_steps.value)
        self.progress.max, self.progress.value = 2 * steps, 0
        self.fine_button.disabled = True
        weights = {**self.weights(), **(weights or {})}
        self.fine_status.value = "training " + ", ".join(f"{k}={v:g}" for k, v in weights.items())
        self.fine_result.value = ""

        def progress(step, total, loss):
            self.progress.value = step
            phase = "chosen weights" if step <= steps else "run's own weights (control)"
            self.fine_status.value = f"step {step}/{total} ({phase}), loss {loss:.3f}"

        def done(job):
            self.fine_button.disabled = False
            if job.error is not None:
                self.fine_status.value = f"<span style='color:#D55E00'>failed: {job.error}</span>"
                return
            self.model = job.model
            self.logits = view_logits(self.model, self.x, self.y, self.threat, seed=self.seed,
                                      start=prior_start(self.config))
            self.tuned_with = {"steps": len(job.losses), **weights}
            if job.comparison is not None:
                self.before = job.comparison["before"]
                self.fine_result.value = comparison_html(job.comparison)
            self.fine_status.value = (f"done: {len(job.losses)} steps, last loss {job.losses[-1]:.3f}"
                                      if job.losses else "stopped")
            self.update()

        self.job = FineTune(self.trained, self.config, weights, steps=steps, seed=self.seed,
                            optimizer=self.fine_optimizer.value, control=True, n=self.finetune_points,
                            before=self.before, on_progress=progress, on_done=done).start()
        return self.job

    def reset(self):
        """Back to the trained model."""
        if self.job is not None and self.job.running:
            self.fine_status.value = "stop the fine-tune first"
            return
        self.model, self.tuned_with = self.trained, None
        self.logits = view_logits(self.model, self.x, self.y, self.threat, seed=self.seed,
                                  start=prior_start(self.config))
        self.fine_status.value = "reset to the trained model (the table below is the last fine-tune's answer)"
        self.update()

    def _ipython_display_(self):
        display(self.widget)


def comparison_html(c: dict) -> str:
    """The fine-tune's answer: accuracy of the trained model, after the budget at the chosen weights
    and after the same budget at the run's own weights."""
    def row(name, acc):
        return (f"<tr><td>{name}</td><td>{100 * acc['clean']:.1f}%</td>"
                f"<td><b>{100 * acc[c['attack']]:.1f}%</b></td></tr>")
    chosen = ", ".join(f"{k}={v:g}" for k, v in c["weights"].items())
    own = ", ".join(f"{k}={v:g}" for k, v in c["own"].items())
    return (f"<b>{c['steps']} fine-tune steps from the trained weights</b> "
            f"({c['n']} fixed validation points, {c['attack']})"
            "<table style='font-size:12px'><tr><th></th><th>clean</th><th>robust</th></tr>"
            + row("trained model", c["before"]) + row(f"fine-tuned at {chosen}", c["after"])
            + row(f"control: same budget at the run's own {own}", c["control"]) + "</table>")
