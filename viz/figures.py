"""Every figure for a set of runs: computes the records that are missing (regmix.diagnostics),
renders them, and exports each as PDF, SVG and PNG. This is what `regmix figures` runs."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files here, never windows

import matplotlib.pyplot as plt  # noqa: E402

from regmix.diagnostics import compute, kl_toy, load_record  # noqa: E402

from . import kl as K  # noqa: E402
from . import landscape as LV  # noqa: E402
from . import softmax as SV  # noqa: E402
from .export import ExportUnavailable, export_session, plotly_export_available, save_figure  # noqa: E402


def _is_sweep(path: Path) -> bool:
    return (path / "sweep.json").exists() or (not (path / "config.yaml").exists()
                                                and any((p / "config.yaml").exists() for p in path.iterdir()))


def _method(run_dir: Path) -> str:
    import yaml
    return yaml.safe_load((run_dir / "config.yaml").read_text())["method"]["name"]


def _record(path, make, recompute, log):
    path = Path(path)
    if recompute or not path.exists():
        log(f"computing {path}")
        make(out=path)
    return load_record(path)


def interp_pairs(runs):
    """(A, B) pairs to interpolate: pgk -> regmix when both are there (the paper's comparison),
    else the first run to each other one."""
    methods = {r: _method(r) for r in runs}
    pgk = [r for r in runs if methods[r] == "pgk"]
    reg = [r for r in runs if methods[r] == "regmix"]
    if pgk and reg:
        return [(pgk[0], r) for r in reg]
    return [(runs[0], r) for r in runs[1:]]


def render_all(paths, out, *, grid=11, n=256, attack="pgd10", examples=8, hessian_iters=20, recompute=False,
               device="auto", formats=("pdf", "svg", "png"), log=print) -> list:
    """Returns the files written. Records are cached in each RUN/diagnostics/."""
    out = Path(out)
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.is_dir():
            from regmix.registry import ConfigError
            raise ConfigError(f"RUN: {p} is not a directory (a run directory or a sweep folder)")
    sweeps = [p for p in paths if _is_sweep(p)]
    runs = [p for p in paths if p not in sweeps]
    for r in runs:
        if not (r / "best.pt").exists():
            from regmix.registry import ConfigError
            raise ConfigError(f"RUN: {r} has no best.pt (not a finished run directory)")
    written = []

    def save(fig, name, **kw):
        written.extend(save_figure(fig, out / name, formats=formats, **kw))
        if hasattr(fig, "savefig"):
            plt.close(fig)
        log(f"wrote {out / name}.{{{','.join(formats)}}}")

    with export_session():
        arrays, meta = kl_toy.kl_toy_record()
        save(K.plot_kl_toy(arrays, meta), "kl_toy_simplex")
        save(K.plot_kl_toy_loss(arrays, meta), "kl_toy_loss")
        from regmix.sweep import collect
        for sweep_dir in sweeps:
            rows = [r for r in collect(sweep_dir) if r["accuracy"]]
            if rows:
                save(K.plot_alpha_beta_heatmaps(rows, title=sweep_dir.name), f"alpha_beta_{sweep_dir.name}")
        if not runs:
            return written
        save(K.plot_loss_terms_grid(runs), "loss_terms")
        save(K.plot_accuracy_curves(runs), "val_accuracy")

        common = dict(device=device)
        weight = [_record(compute.default_path(r, "weight"), lambda out, r=r: compute.weight_landscape_record(
            r, grid=grid, n=n, attack=attack, hessian_iters=hessian_iters, out=out, **common), recompute, log)
            for r in runs]
        save(LV.plot_weight_contours(weight), "landscape_weight")
        save(LV.plot_weight_slices(weight), "landscape_weight_slices")
        save(LV.plot_smoothness(weight), "landscape_smoothness")
        if plotly_export_available():
            try:
                save(LV.plot_weight_surface_3d(weight), "landscape_weight_3d")
            except ExportUnavailable as err:
                log(f"skipped landscape_weight_3d: {err}")
        else:
            log("skipped landscape_weight_3d: plotly export needs Chromium (see docs/figures.md)")

        inputs = [_record(compute.default_path(r, "input"), lambda out, r=r: compute.input_landscape_record(
            r, grid=max(grid, 11), examples=examples, out=out, **common), recompute, log) for r in runs]
        save(LV.plot_input_surfaces(inputs), "landscape_input")

        if len(runs) > 1:
            lines = [_record(compute.default_path(a, "interp", b), lambda out, a=a, b=b: compute.interp_record(
                a, b, steps=grid + 4, n=n, attack=attack, out=out, **common), recompute, log)
                for a, b in interp_pairs(runs)]
            save(LV.plot_interpolation(lines), "landscape_interpolation")

        soft = [_record(compute.default_path(r, "softmax"), lambda out, r=r: compute.softmax_run_record(
            r, n=max(n, 512), out=out, **common), recompute, log) for r in runs]
        save(SV.plot_distances(soft), "softmax_distances")
        save(SV.plot_reliability(soft), "softmax_reliability")
        save(SV.plot_true_class_hist(soft), "softmax_true_class_hist")
        save(SV.plot_class_means(soft), "softmax_class_means")
        save(SV.plot_example_bars(soft, examples=2), "softmax_examples")
    return written
