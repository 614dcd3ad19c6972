import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import tiny_config
from regmix.cli import main
from regmix.trainer import train

PNG_SIZE = re.compile(rb"IHDR(.{4})(.{4})", re.S)


def png_size(path):
    width, height = PNG_SIZE.search(path.read_bytes()[:40]).groups()
    return int.from_bytes(width, "big"), int.from_bytes(height, "big")


def pdf_size(path):
    box = re.search(rb"MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", path.read_bytes())
    return float(box.group(3)), float(box.group(4))


def check_formats(paths):
    heads = {p.suffix: p.read_bytes()[:400] for p in paths}
    assert heads[".pdf"].startswith(b"%PDF") and heads[".png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert b"<svg" in heads[".svg"]


def test_regmix_never_imports_plotting_libraries():
    code = ("import sys, regmix, regmix.cli, regmix.sweep, regmix.diagnostics.compute, regmix.diagnostics.kl_toy;"
            "regmix.cli.build_parser();"
            "bad = [m for m in ('matplotlib', 'plotly', 'ipywidgets', 'viz') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("preset,width_in", [("single", 3.3), ("double", 6.9)])
def test_matplotlib_export_has_the_presets_exact_size(tmp_path, preset, width_in):
    import viz
    from viz.style import figure
    fig, axes = figure(preset, aspect=0.5)
    axes[0, 0].plot([0, 1], [1, 0], label="a line")
    axes[0, 0].set_xlabel("a long x label that must not be clipped")
    axes[0, 0].legend()
    paths = viz.save_figure(fig, tmp_path / "f", preset=preset, dpi=200)
    check_formats(paths)
    assert png_size(tmp_path / "f.png") == (round(width_in * 200), round(width_in * 0.5 * 200))
    assert pdf_size(tmp_path / "f.pdf") == pytest.approx((width_in * 72, width_in * 0.5 * 72), abs=0.5)
    assert b"FontFile2" in (tmp_path / "f.pdf").read_bytes()  # TrueType fonts embedded
    with pytest.raises(ValueError, match="preset"):
        viz.save_figure(fig, tmp_path / "g", preset="triple")


def test_plotly_export_gives_pdf_svg_png_of_the_requested_size(tmp_path):
    import viz
    from viz.export import plotly_export_available
    if not plotly_export_available():
        pytest.skip("no Chromium for kaleido (apt-get install chromium)")
    import plotly.graph_objects as go
    fig = go.Figure(go.Surface(z=np.arange(12.0).reshape(3, 4)))
    paths = viz.save_figure(fig, tmp_path / "p", preset="single", aspect=0.75, dpi=192)
    check_formats(paths)
    assert png_size(tmp_path / "p.png") == (634, 476)  # 317 x 238 px (3.3 in x 2.475 in) at scale 2
    assert pdf_size(tmp_path / "p.pdf") == pytest.approx((237.75, 178.5), abs=1)


def test_method_colours_are_fixed_distinct_and_colour_blind_safe():
    from viz.style import METHOD_COLORS, PALETTE, method_color
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)
    assert set(METHOD_COLORS.values()) <= set(PALETTE)
    assert method_color("regmix") == METHOD_COLORS["regmix"]
    assert method_color("new_method") == method_color("new_method") in PALETTE
    # no name draws the yellow, which a thin line on white paper does not show
    assert "#F0E442" not in {method_color(f"method_{i}") for i in range(200)}


def test_figures_command_writes_every_figure_for_tiny_runs(tmp_path, capsys, monkeypatch):
    runs = [train(tiny_config(tmp_path, m, train={"epochs": 1}, model={"options": {"width": 4}},
                              eval={"steps": 2, "max_points": 64})) for m in ("pgk", "regmix")]
    out = tmp_path / "figs"
    # drawing runs in a child process: it must import the installed viz, not a viz folder of the user's
    project = tmp_path / "project"
    (project / "viz").mkdir(parents=True)
    (project / "viz" / "__init__.py").write_text("raise ImportError('the working directory's own viz')\n")
    monkeypatch.chdir(project)
    code = main(["figures", *map(str, runs), "--out", str(out), "--grid", "3", "--n", "32", "--attack", "pgd2",
                 "--examples", "2", "--hessian-iters", "3", "--formats", "png,pdf,svg", "--check"])
    assert code == 0, capsys.readouterr().err
    names = {p.stem for p in out.glob("*.png")}
    expected = {"kl_toy_simplex", "kl_toy_loss", "loss_terms", "val_accuracy", "landscape_weight",
                "landscape_weight_slices", "landscape_smoothness", "landscape_hessian_density", "landscape_input",
                "landscape_interpolation",
                "softmax_distances", "softmax_reliability", "softmax_true_class_hist", "softmax_class_means",
                "softmax_examples"}
    assert expected <= names
    for name in names:
        check_formats([out / f"{name}.{fmt}" for fmt in ("pdf", "svg", "png")])
    assert (runs[0] / "diagnostics" / "landscape_weight.npz").exists()
    assert (runs[0] / "diagnostics" / f"interp_{runs[1].name}.npz").exists()
    assert main(["figures", str(runs[0]), "--out", str(out), "--formats", "jpg"]) == 2


@pytest.mark.parametrize("value,expected", [("abc", "--grid: must be an integer, got 'abc'"),
                                            ("1", "--grid: must be an integer >= 2, got 1")])
def test_a_bad_landscape_grid_is_one_line_naming_the_flag(tmp_path, capsys, value, expected):
    code = main(["landscape", str(tmp_path / "not_read"), "--grid", value])
    assert code == 2
    assert capsys.readouterr().err == f"regmix: error: {expected}\n"


def test_library_errors_name_the_argument_not_a_flag(tmp_path):
    from regmix.diagnostics import compute, ensure_records
    from regmix.registry import ConfigError
    with pytest.raises(ConfigError, match=r"^grid: must be an integer >= 2"):
        compute.weight_landscape_record(tmp_path, grid=1)
    with pytest.raises(ConfigError, match=r"^n: must be an integer >= 1"):
        ensure_records([tmp_path], n=0)
    with pytest.raises(ConfigError, match=r"^other: "):
        compute.interp_record(tmp_path, None)


def fake_run(folder, method="regmix"):
    """What record_paths looks at: a config naming the method and a best checkpoint (never loaded)."""
    import yaml
    from regmix.rundir import RunDir
    run = RunDir(folder)
    folder.mkdir(parents=True)
    run.config_path.write_text(yaml.safe_dump({"method": {"name": method}}))
    run.checkpoint("best").write_bytes(b"")
    return folder


def test_viz_draws_only_records_that_exist(tmp_path, capsys):
    from regmix.diagnostics import record_paths
    from viz.cli import main as viz_main
    a, b = fake_run(tmp_path / "a", "pgk"), fake_run(tmp_path / "b", "regmix")
    records = record_paths([a, b])
    assert records.interp == [a / "diagnostics" / "interp_b.npz"] and len(records.missing()) == 7
    code = viz_main(["figures", str(a), str(b), "--out", str(tmp_path / "figs")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("viz: error: RUN: no record ") and "ensure_records" in err
    assert err.count("\n") == 1 and not (tmp_path / "figs").exists()   # nothing drawn, nothing computed
    assert not (a / "diagnostics").exists()
    assert viz_main(["figures", str(a), "--formats", "gif"]) == 2
    assert "--formats: each must be one of pdf, svg, png" in capsys.readouterr().err
    sweep = tmp_path / "sweep"                       # a folder of runs (no sweep.json): a sweep, no records
    fake_run(sweep / "alpha1_seed0")
    assert record_paths([sweep]).sweeps == [sweep] and record_paths([sweep, a]).all() == record_paths([a]).all()


def test_a_malformed_figures_flag_is_one_line_before_any_work(tmp_path, capsys):
    assert main(["figures", str(tmp_path), "--n", "many"]) == 2
    assert capsys.readouterr().err == "regmix: error: --n: must be an integer, got 'many'\n"
    assert main(["figures", str(tmp_path / "missing"), "--grid", "2"]) == 2
    assert capsys.readouterr().err == "regmix: error: --grid: must be an integer >= 3, got 2\n"
    assert main(["figures", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("regmix: error: RUN: ")


def test_landscape_checks_its_flags_before_loading_the_run(tmp_path, capsys):
    missing = str(tmp_path / "not_a_run")   # loading it would fail: every line below must come first
    assert main(["landscape", missing, "--attack", "pgdx"]) == 2
    assert capsys.readouterr().err.startswith("regmix: error: --attack: unknown name 'pgdx'")
    assert main(["landscape", missing, "--checkpoint", "middle"]) == 2
    assert capsys.readouterr().err == "regmix: error: --checkpoint: must be best or last, got 'middle'\n"
    assert main(["landscape", missing, "--kind", "interp"]) == 2
    assert capsys.readouterr().err.startswith("regmix: error: --other: ")
