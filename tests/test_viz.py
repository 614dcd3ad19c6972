import pytest

from conftest import tiny_config
from regmix.trainer import train


def test_loss_term_curves_export_as_pdf_svg_png(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import viz
    config = tiny_config(tmp_path, "regmix", train={"epochs": 2})
    config.method.options = {"gamma": 1.0}  # AGR on (the default; pinned): every term drawn
    run_dir = train(config)
    fig = viz.plot_loss_terms(run_dir)
    labels = {line.get_label() for line in fig.axes[0].get_lines()}
    assert labels == {"loss", "ce", "amr_final_init", "amr_init_final", "agr"}
    written = viz.save_figure(fig, tmp_path / "fig" / "terms")
    heads = {p.suffix: p.read_bytes()[:8] for p in written}
    assert heads[".pdf"].startswith(b"%PDF") and heads[".png"].startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "fig" / "terms.svg").read_bytes()[:500]
    with pytest.raises(ValueError, match="formats"):
        viz.save_figure(fig, tmp_path / "x", formats=("jpg",))
