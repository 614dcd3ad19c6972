"""Every figure for a set of runs, drawn from their records and exported as PDF, SVG and PNG.

Nothing is computed here: `regmix.diagnostics.ensure_records` makes the records (what `regmix figures`
does before it draws with `python -m viz figures`); a missing record is an error naming it."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files here, never windows

import matplotlib.pyplot as plt  # noqa: E402

from regmix.diagnostics import kl_toy, load_record, record_paths  # noqa: E402
from regmix.rundir import RunDir  # noqa: E402

from . import kl as K  # noqa: E402
from . import landscape as LV  # noqa: E402
from . import softmax as SV  # noqa: E402
from .export import ExportUnavailable, export_session, plotly_export_available, save_figure  # noqa: E402


def render_all(paths, out, *, formats=("pdf", "svg", "png"), log=print, check=None) -> list:
    """Draws the figures of the given run directories and sweep folders into OUT; returns the files
    written. Every record must exist (regmix.diagnostics.ensure_records(paths) makes them).
    check: a viz.check.Checker that sees every figure before it is saved and its files after."""
    out = Path(out)
    records = record_paths(paths).require()
    runs, sweeps = records.runs, records.sweeps
    written = []

    def save(fig, name, **kw):
        if check is not None:
            check.figure(fig, name)
        paths = save_figure(fig, out / name, formats=formats, **kw)
        if check is not None and hasattr(fig, "savefig"):
            check.written(paths, name)
        written.extend(paths)
        if hasattr(fig, "savefig"):
            plt.close(fig)
        log(f"wrote {out / name}.{{{','.join(formats)}}}")

    with export_session():
        weighting = kl_toy.kl_weighting()
        save(K.plot_kl_weighting(weighting), "kl_weighting")
        save(K.plot_kl_meeting_simplex(weighting), "kl_toy_simplex")
        arrays, meta = kl_toy.kl_toy_record()
        save(K.plot_kl_toy_loss(arrays, meta), "kl_toy_loss")
        from regmix.sweep import collect
        for sweep_dir in sweeps:
            rows = [r for r in collect(sweep_dir) if r["accuracy"]]
            if rows:
                save(K.plot_alpha_beta_heatmaps(rows, title=sweep_dir.name), f"alpha_beta_{sweep_dir.name}")
        if not runs:
            return written
        trained = [r for r in runs if RunDir(r).metrics_path.exists()]  # a model regmix did not train has no curves
        if trained:
            save(K.plot_loss_terms_grid(trained), "loss_terms")
            save(K.plot_accuracy_curves(trained), "val_accuracy")

        weight = [load_record(p) for p in records.weight]
        save(LV.plot_weight_contours(weight), "landscape_weight")
        save(LV.plot_weight_slices(weight), "landscape_weight_slices")
        save(LV.plot_smoothness(weight), "landscape_smoothness")
        if any(m.get("hessian_spectrum") for _, m in weight):
            save(LV.plot_hessian_density(weight), "landscape_hessian_density")
        if plotly_export_available():
            try:
                save(LV.plot_weight_surface_3d(weight), "landscape_weight_3d")
            except ExportUnavailable as err:
                log(f"skipped landscape_weight_3d: {err}")
        else:
            log("skipped landscape_weight_3d: plotly export needs Chromium (see docs/figures.md)")
        save(LV.plot_input_surfaces([load_record(p) for p in records.input]), "landscape_input")
        if records.interp:
            save(LV.plot_interpolation([load_record(p) for p in records.interp]), "landscape_interpolation")
        soft = [load_record(p) for p in records.softmax]
        save(SV.plot_distances(soft), "softmax_distances")
        save(SV.plot_reliability(soft), "softmax_reliability")
        save(SV.plot_true_class_hist(soft), "softmax_true_class_hist")
        save(SV.plot_class_means(soft), "softmax_class_means")
        save(SV.plot_example_bars(soft, examples=2), "softmax_examples")
    return written
