"""The widget explorers (viz.explorers) driven from Python, on a run trained in seconds."""
import json

import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from regmix.trainer import train  # noqa: E402
from conftest import tiny_config  # noqa: E402
from viz.explorers import AMRWeightExplorer, DistributionExplorer, ExportBar, LandscapeExplorer  # noqa: E402
from viz.explorers import sweep_lookup  # noqa: E402
from viz.explorers.widgets import figure_widget, handles  # noqa: E402
from viz.export import plotly_export_available  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("explorer_runs")
    return {m: train(tiny_config(root, m, train={"epochs": 1, "progress": False}, eval={"max_points": 64})) for m in ("standard", "regmix")}


def fake_sweep(folder, points):
    """A sweep folder as regmix sweep leaves it: sweep.json, and per run config.yaml + an eval record."""
    grid = {"method.options.alpha": sorted({a for a, _, _ in points}),
            "method.options.beta": sorted({b for _, b, _ in points})}
    (folder / "sweep.json").parent.mkdir(parents=True, exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps({"kind": "sweep", "grid": grid}))
    for alpha, beta, acc in points:
        run = folder / f"alpha{alpha}_beta{beta}_seed0"
        (run / "eval").mkdir(parents=True)
        (run / "config.yaml").write_text(yaml.safe_dump({"method": {"name": "regmix",
                                                                    "options": {"alpha": alpha, "beta": beta}}}))
        (run / "eval" / "best.json").write_text(json.dumps(
            {"kind": "eval", "version": 2, "checkpoint": "best", "n": 100, "accuracy": {"clean": 0.9, "pgd20": acc},
             "method": "regmix", "model": "small_cnn", "dataset": "digits", "split": "test",
             "threat": {"norm": "linf", "eps": 0.1}, "method_options": {"alpha": alpha, "beta": beta}}))
    return folder


def test_sliders_change_the_figures_and_the_terms(runs, tmp_path):
    ex = AMRWeightExplorer(runs["regmix"], examples=3, export_dir=tmp_path)
    ex.alpha.value, ex.beta.value = 1.0, 1.0
    terms = ex.loss_terms()
    path_before = np.array(ex.simplex_traces["P"].x)
    bars_before = np.array(ex.term_bars.y)
    ex.alpha.value = 3.0
    assert not np.allclose(np.array(ex.simplex_traces["P"].x), path_before)      # the flow moved
    assert np.array(ex.term_bars.y)[1] == pytest.approx(3 * bars_before[1], rel=1e-6)
    assert ex.loss_terms()["amr_init_final"] == pytest.approx(terms["amr_init_final"])
    soft_before = np.array(ex.softmax_bars[(0, "clean")].y)
    ex.temperature.value = 4.0
    soft_after = np.array(ex.softmax_bars[(0, "clean")].y)
    assert soft_after.sum() == pytest.approx(1.0)
    assert soft_after.max() < soft_before.max()                                  # T flattens


def test_nearest_sweep_point_reports_its_accuracy(runs, tmp_path):
    sweep = fake_sweep(tmp_path / "sweep", [(0.0, 0.5, 0.30), (1.0, 0.5, 0.55), (2.0, 0.5, 0.40)])
    ex = AMRWeightExplorer(runs["regmix"], examples=2, sweep_dir=sweep, export_dir=tmp_path)
    ex.alpha.value, ex.beta.value = 1.2, 0.7
    point = ex.nearest_accuracy()
    assert point["weights"]["alpha"] == 1.0 and point["accuracy"]["pgd20"] == pytest.approx(0.55)
    assert "55.0%" in ex.accuracy.value and "pgd20" in ex.accuracy.value
    ex.alpha.value = 1.9
    assert "40.0%" in ex.accuracy.value
    assert sweep_lookup.swept_keys(sweep) == ["alpha", "beta"]


def test_sweep_points_read_the_recorded_options_and_fill_an_old_runs_defaults(tmp_path):
    from regmix.methods import METHODS
    sweep = fake_sweep(tmp_path / "sweep", [(0.5, 0.25, 0.3)])
    # a run written before config.yaml recorded every option: beta (and gamma) left to the defaults
    old = sweep / "old_run"
    (old / "eval").mkdir(parents=True)
    (old / "config.yaml").write_text(yaml.safe_dump({"method": {"name": "regmix", "options": {"alpha": 2.0}}}))
    (old / "eval" / "best.json").write_text(json.dumps({"kind": "eval", "version": 1, "checkpoint": "best", "n": 100,
                                                        "accuracy": {"clean": 0.9, "pgd20": 0.5}, "method": "regmix",
                                                        "model": "small_cnn", "dataset": "digits", "split": "test",
                                                        "threat": {"norm": "linf", "eps": 0.1}}))
    points = {p["weights"]["alpha"]: p for p in sweep_lookup.load_points(sweep)}
    defaults = METHODS.get("regmix").defaults
    assert points[0.5]["weights"]["beta"] == 0.25                       # recorded value, as trained
    assert points[2.0]["weights"]["beta"] == defaults["beta"] != 0.25   # filled from the method
    assert points[2.0]["weights"]["gamma"] == defaults["gamma"]


def test_explorers_run_where_the_device_is(runs, tmp_path):
    import torch
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    ex = DistributionExplorer(runs, n=8, export_dir=tmp_path)
    assert ex.device.type == expected
    land = LandscapeExplorer({"regmix": runs["regmix"]}, grids=(4,), n=8, attack="none", hessian_iters=0,
                             export_dir=tmp_path)
    meta = land.record("regmix", 4)[1]
    assert land.device.type == expected and meta["device"].startswith(expected)
    from regmix.methods import METHODS
    assert meta["method_options"]["beta"] == METHODS.get("regmix").defaults["beta"]  # effective options recorded
    assert DistributionExplorer(runs, n=8, device="cpu", export_dir=tmp_path).device.type == "cpu"


def test_fine_tune_runs_in_the_background_and_updates_the_distributions(runs, tmp_path):
    ex = AMRWeightExplorer(runs["regmix"], examples=2, finetune_steps=3, finetune_points=16, export_dir=tmp_path)
    original = {k: v.clone() for k, v in ex.model.state_dict().items()}
    before = np.array(ex.softmax_bars[(0, "clean")].y)
    assert "the trained model" in ex.softmax.layout.title.text
    ex.alpha.value, ex.beta.value, ex.gamma.value = 2.0, 0.5, 0.0
    job = ex.fine_tune()
    assert job.thread is not None and job.thread.daemon
    job.join(timeout=300)
    assert not job.running and job.error is None
    assert ex.progress.value == 6 and len(job.losses) == 3        # 3 steps, then 3 of the control
    assert not np.allclose(np.array(ex.softmax_bars[(0, "clean")].y), before)
    assert all(np.allclose(original[k], v) for k, v in job.source.state_dict().items())  # a copy was trained
    assert "fine-tuned 3 steps at α=2, β=0.5, γ=0 from the trained weights" in ex.softmax.layout.title.text
    c = job.comparison
    assert c["n"] == 16 and c["own"] == {k: ex.options[k] for k in ("alpha", "beta", "gamma", "temperature")}
    assert {"clean", "pgd10"} <= set(c["before"]) == set(c["after"]) == set(c["control"])
    assert "control" in ex.fine_result.value and f"{100 * c['after']['pgd10']:.1f}%" in ex.fine_result.value
    # a second fine-tune starts from the trained weights again, not from the first one's
    second = ex.fine_tune(steps=1).join(timeout=300)
    assert second.source is ex.trained and second.comparison["before"] == c["before"]
    assert "fine-tuned 1 steps" in ex.softmax.layout.title.text
    ex.reset()
    assert ex.model is ex.trained and np.allclose(np.array(ex.softmax_bars[(0, "clean")].y), before)
    assert "the trained model" in ex.softmax.layout.title.text
    # the widget's default: the run's own optimiser at the run's own learning rate (not Adam at half of it)
    assert ex.fine_optimizer.value == "run"
    assert type(job.optimizer) is torch.optim.Adam and job.optimizer.param_groups[0]["lr"] == ex.config.optim.lr


def test_fine_tune_stop_button_stops_after_the_current_step(runs, tmp_path):
    ex = AMRWeightExplorer(runs["regmix"], examples=2, finetune_steps=6, finetune_points=8, export_dir=tmp_path)
    # the event: the progress bar reaching step 2 presses stop (never a sleep)
    ex.progress.observe(lambda change: ex.fine_stop.click() if change.new == 2 else None, names="value")
    job = ex.fine_tune().join(timeout=120)
    assert job.error is None and len(job.losses) == 2 and ex.progress.value == 2
    assert job.model is not None and ex.model is job.model and "done: 2 steps" in ex.fine_status.value


def test_fine_tune_uses_the_runs_optimiser_and_lr_or_adam_at_half_as_an_option(runs):
    import copy
    from regmix.sources import load_source
    from regmix.registry import ConfigError
    from viz.explorers.finetune import FineTune
    source = load_source(runs["regmix"], device="cpu")
    model, config = source.model, source.config
    sgd = copy.deepcopy(config)  # as if the run had been trained with SGD (the tiny runs use Adam)
    sgd.optim.name, sgd.optim.lr, sgd.optim.momentum, sgd.optim.weight_decay = "sgd", 0.02, 0.8, 1e-4
    job = FineTune(model, sgd, {"alpha": 1.0}, steps=1, batch_size=16).start().join(timeout=120)
    assert job.error is None and len(job.losses) == 1
    group = job.optimizer.param_groups[0]
    assert type(job.optimizer) is torch.optim.SGD
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.02, 0.8, 1e-4)
    half = FineTune(model, sgd, {"alpha": 1.0}, steps=1, batch_size=16, optimizer="adam-half").start().join(timeout=120)
    assert half.error is None
    assert type(half.optimizer) is torch.optim.Adam and half.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="optimizer"):
        FineTune(model, sgd, {"alpha": 1.0}, optimizer="lion")


def test_landscape_explorer_cancels_at_a_grid_point_and_writes_nothing(runs, tmp_path):
    from viz.explorers.landscape import record_path
    ex = LandscapeExplorer({"regmix": runs["regmix"]}, grids=(6,), n=8, attack="none", hessian_iters=0,
                           export_dir=tmp_path, autocompute=False)
    path = record_path(runs["regmix"], 6)
    assert ex.job is None and not path.exists() and "press compute" in ex.status.value
    before = sorted(p.name for p in path.parent.glob("*")) if path.parent.exists() else []
    stopped_at = []

    def cancel_at_point_4(change):  # the event: the progress bar reaching grid point 4
        if change.new >= 4 and not stopped_at:
            stopped_at.append(change.new)
            ex.cancel()

    ex.bar.observe(cancel_at_point_4, names="value")
    job = ex.compute().join(timeout=300)
    assert job.cancelled and job.error is None and not job.running
    assert ex.bar.value == stopped_at[0] < ex.bar.max == 36          # no point reported after the cancel
    after = sorted(p.name for p in path.parent.glob("*")) if path.parent.exists() else []
    assert not path.exists() and after == before                      # no record, no half-written file
    assert "cancelled" in ex.status.value and ex.compute_button.layout.display != "none"
    ex.update()  # a cancelled surface is not restarted on its own
    assert ex.job is job
    ex.bar.unobserve(cancel_at_point_4, names="value")
    job = ex.compute().join(timeout=300)
    assert job.error is None and not job.cancelled and job.result == path and path.exists()
    assert np.allclose(np.array(ex.contour_surface.z), ex.record("regmix", 6)[0]["loss"].T)


def test_distribution_explorer_example_and_class(runs, tmp_path):
    ex = DistributionExplorer(runs, n=40, export_dir=tmp_path)
    ex.example.value = 5
    dists = ex.distributions()
    assert set(dists) == {"standard", "regmix"}
    assert np.allclose(dists["regmix"]["clean"], ex.probs["regmix"]["clean"][5])
    ex.mode.value, ex.klass.value = "class", int(ex.labels[0])
    mask = ex.labels == ex.labels[0]
    assert np.allclose(ex.distributions()["standard"]["final"], ex.probs["standard"]["final"][mask].mean(0))
    truth = [t for t in ex.figure.data if t.name == "ground truth"][0]
    assert list(truth.y).index(1.0) == int(ex.labels[0])
    ex.chosen.value = ("regmix",)
    assert {t.name for t in ex.figure.data} == {"regmix", "ground truth"}


def test_landscape_explorer_computes_once_and_shows_the_record(runs, tmp_path):
    ex = LandscapeExplorer(runs, grids=(3,), n=16, attack="fgsm", hessian_iters=2, export_dir=tmp_path)
    arrays, meta = ex.record(ex.run.value, 3)
    assert meta["grid"] == 3
    assert np.allclose(np.array(ex.contour_surface.z), arrays["loss"].T)
    ex.surface.value = "adversarial"
    assert np.allclose(np.array(ex.surface3d_surface.z), arrays["adv_loss"].T)
    assert "Hessian" in ex.numbers.value and f"{meta['hessian']['adv']['eigenvalue']:.4g}" in ex.numbers.value
    # beside the top eigenvalue: the trace (Hutchinson) and the spectrum's lower edge (Lanczos)
    assert f"{meta['hessian_spectrum']['adv']['trace']:.4g}" in ex.numbers.value
    assert f"{meta['hessian_spectrum']['clean']['min']:.4g}" in ex.numbers.value


def test_export_bar_writes_the_chosen_format(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    bar = ExportBar({"line": fig}, tmp_path)
    assert [p.name for p in bar.export("svg")] == ["line.svg"] and (tmp_path / "line.svg").stat().st_size > 0
    bad = ExportBar({"broken": object()}, tmp_path)
    assert bad.export("pdf") == [] and "not saved" in bad.status.value


@pytest.mark.skipif(not plotly_export_available(), reason="plotly export needs kaleido and a Chromium on PATH")
def test_export_bar_exports_a_figure_widget(runs, tmp_path):
    ex = AMRWeightExplorer(runs["regmix"], examples=2, export_dir=tmp_path)
    ex.export.choice.value = "loss_terms"
    paths = ex.export.export("svg")
    assert paths == [tmp_path / "amr_loss_terms.svg"] and "α·KL" in paths[0].read_text()
    # every figure the explorer exports: a preset's width, fonts embedded as TrueType (viz.check)
    from viz.check import check_pdf
    for name in ex.export.figures:
        [pdf] = ex.export.export("pdf", name)
        assert check_pdf(pdf) == [], name


def test_explorers_take_a_model_regmix_did_not_train(tmp_path, monkeypatch):
    """Any model source (here an nn.Module with its dataset and threat stated) in the distribution and
    landscape explorers; its records go to runs/external/<name> under the working directory."""
    import regmix
    from regmix.sources import load_source
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    module = regmix.create_model("small_cnn", 10, 1, width=4, mean=(0.3,), std=(0.38,)).eval()
    source = load_source(module, dataset="digits", threat="linf:0.1", name="mine")
    dist = DistributionExplorer([source], n=8, device="cpu", export_dir=tmp_path)
    assert list(dist.runs) == ["mine"] and dist.methods["mine"] == "external"
    land = LandscapeExplorer([source], grids=(3,), n=8, attack="none", hessian_iters=0, device="cpu",
                             export_dir=tmp_path)
    arrays, meta = land.record("mine", 3)
    assert arrays["loss"].shape == (3, 3) and meta["run"] == "mine"
    assert (tmp_path / "runs" / "external" / "mine" / "diagnostics").is_dir()


def test_the_sliders_start_at_the_runs_weights_and_hold_the_method_defaults(runs, tmp_path):
    """A slider clamps a value above its max without a word: the range must hold the run's weights and
    regmix's defaults (alpha = beta = 16, chosen from the study's sweep)."""
    from regmix.config import load_config
    from regmix.methods.prior_guided import RegMix
    ex = AMRWeightExplorer(runs["regmix"], examples=2, export_dir=tmp_path)
    own = load_config(runs["regmix"] / "config.yaml").method.options
    for name in ("alpha", "beta", "gamma"):
        assert getattr(ex, name).value == pytest.approx(own.get(name, RegMix.defaults[name]))
        assert getattr(ex, name).max >= max(16.0, RegMix.defaults[name])
    ex.alpha.value = RegMix.defaults["alpha"]
    assert ex.alpha.value == RegMix.defaults["alpha"]


def test_explorer_figures_send_the_browser_lists_never_buffers(runs, tmp_path):
    """A numpy array in a FigureWidget goes to the browser as a binary buffer; in a figure's first
    state that raced the widget model on a cold run (blank simplex and weighting figures). Every
    explorer figure is built and updated from lists, and keeps plotly's toolbar off its titles."""
    from viz.check import check_plotly
    from viz.explorers.widgets import has_arrays, sent_arrays
    amr = AMRWeightExplorer(runs["regmix"], examples=2, export_dir=tmp_path)
    land = LandscapeExplorer(runs, grids=(3,), n=8, attack="none", hessian_iters=0, export_dir=tmp_path,
                             autocompute=False)
    dist = DistributionExplorer(runs, n=8, export_dir=tmp_path)
    figures = [amr.simplex, amr.weighting, amr.terms, amr.softmax, land.contour, land.surface3d, dist.figure]
    messages = []
    for fig in figures:
        assert not sent_arrays(fig)
        fig.observe(lambda change: messages.append(has_arrays(change.new)),
                    names=["_py2js_restyle", "_py2js_relayout", "_py2js_update", "_py2js_addTraces"])
    amr.alpha.value, amr.beta.value, amr.temperature.value = 3.0, 0.5, 2.0
    land.compute("regmix", 3).join(timeout=300)
    land.run.value = "regmix"
    dist.example.value = 1
    assert messages and not any(messages)                 # every update went out as lists
    for fig in figures:
        assert check_plotly(fig, size=False) == [], fig.layout.title.text


def test_amr_loss_terms_are_on_a_log_axis_with_their_values_written(runs, tmp_path):
    ex = AMRWeightExplorer(runs["regmix"], examples=2, export_dir=tmp_path)
    ex.alpha.value, ex.beta.value, ex.gamma.value = 1.0, 1.0, 0.0
    terms = ex.loss_terms()
    assert ex.terms.layout.yaxis.type == "log"
    assert list(ex.term_bars.text) == [f"{terms[k]:.2g}" for k in ("ce", "amr_final_init", "amr_init_final", "agr")]
    assert min(ex.term_bars.y) > 0                        # gamma = 0 sits at the floor, labelled 0


def test_landscape_explorer_never_shows_another_runs_surface(runs, tmp_path):
    # grid 4: no other test computes it, so the standard run has no surface at it
    ex = LandscapeExplorer(runs, grids=(4,), n=8, attack="none", hessian_iters=0, export_dir=tmp_path,
                           autocompute=False)
    ex.compute("regmix", 4).join(timeout=300)
    ex.run.value = "regmix"
    assert ex.shown == ("regmix", 4) and ex.contour_surface.z is not None
    assert "regmix" in ex.contour.layout.title.text and "smoothness of regmix" in ex.numbers.value
    ex.run.value = "standard"                            # no surface of this run yet
    assert ex.shown is None and ex.contour_surface.z is None and ex.surface3d_surface.z is None
    assert ex.contour.layout.title.text.startswith("standard") and "regmix" not in ex.numbers.value


def test_traces_are_found_by_their_handle_wherever_they_sit():
    """widgets.handles: a trace is reached by its meta key, wherever it sits in the figure's data; two
    traces under one key are refused."""
    widgets = []
    for first in (None, "new"):
        widget = figure_widget(width=300)
        if first:
            widget.add_scatter(x=[9], y=[9], meta=first)
        widget.add_scatter(x=[0], y=[1], meta="P")
        widget.add_bar(x=[0], y=[2], meta="terms")
        widgets.append(widget)
    widgets[1].data = widgets[1].data[::-1]
    for widget in widgets:
        found = handles(widget)
        assert list(found["P"].y) == [1] and list(found["terms"].y) == [2]
    widgets[0].add_scatter(meta="P")
    with pytest.raises(ValueError, match="'P'"):
        handles(widgets[0])
