"""viz.check: each defect it looks for is found on a figure made to have it, a clean figure passes,
and every figure the project writes passes it."""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402

from viz.check import Checker, FigureCheckError, check_figure, check_pdf, check_plotly, require  # noqa: E402
from viz.style import figure  # noqa: E402
from viz.study import plot_claims  # noqa: E402
from regmix.paper.claims import CLAIMS, _sides  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def kinds(problems):
    return sorted({p.split(":")[0] for p in problems})


def clean_figure():
    fig, axes = figure("single", aspect=0.7)
    ax = axes[0, 0]
    ax.plot(np.arange(10), np.arange(10) ** 0.5, label="sqrt")
    ax.set_xticks(range(0, 10, 3))
    ax.set_xlabel("epoch")
    ax.set_ylabel("value")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def test_a_clean_figure_passes():
    fig = clean_figure()
    assert check_figure(fig) == []
    plt.close(fig)


def test_overlapping_text_is_found():
    fig = clean_figure()
    ax = fig.axes[0]
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
    problems = check_figure(fig)
    assert kinds(problems) == ["overlap"] and "'first label' and 'second label'" in problems[0]
    plt.close(fig)


def test_text_outside_the_figure_is_cropped():
    fig = clean_figure()
    fig.axes[0].text(1.5, 0.5, "far to the right", transform=fig.axes[0].transAxes)
    assert kinds(check_figure(fig)) == ["cropped"]
    plt.close(fig)


def test_a_legend_over_data_is_found_and_one_beside_it_is_not():
    fig, axes = figure("single", aspect=0.7)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.bar([0.2, 0.8], [0.9, 0.9], width=0.1, label="bars")
    ax.legend(loc="center")          # the diagonal runs through the middle
    assert kinds(check_figure(fig)) == ["legend"]
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    assert check_figure(fig) == []
    plt.close(fig)


def test_a_legend_in_an_empty_corner_passes():
    fig, axes = figure("single", aspect=0.7)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 0.3], label="low line")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    assert check_figure(fig) == []
    plt.close(fig)


def test_class_and_epoch_ticks_must_be_whole_numbers():
    fig, axes = figure("single", aspect=0.7)
    ax = axes[0, 0]
    ax.plot(np.arange(10), np.arange(10))
    ax.set_xticks([0, 2.5, 5, 7.5])
    ax.set_xlabel("class")
    problems = check_figure(fig)
    # 2.5 and 7.5 are no class; the formatter also writes the whole ones as 0.0 and 5.0
    assert kinds(problems) == ["ticks"] and len(problems) == 4 and "tick '2.5' at 2.5" in problems[1]
    ax.set_xticks([0, 3, 6, 9])
    assert check_figure(fig) == []
    plt.close(fig)


def test_a_log_tick_like_6_times_ten_to_the_zero_is_found():
    fig, axes = figure("single", aspect=0.7)
    ax = axes[0, 0]
    ax.plot([3, 9], [1, 2])
    ax.set_xscale("log")
    ax.set_xlim(3, 9)               # inside one decade: matplotlib labels the minor ticks "6x10^0"
    problems = check_figure(fig)
    assert kinds(problems) == ["ticks"], problems
    plt.close(fig)


def test_a_width_that_is_no_preset_is_found():
    fig = clean_figure()
    fig.set_size_inches(5, 3)
    problems = check_figure(fig)
    assert kinds(problems) == ["size"] and "5.00 in" in problems[0]
    assert check_figure(fig, size=False) == []
    plt.close(fig)


def test_pdf_fonts_must_be_embedded_truetype(tmp_path):
    fig = clean_figure()
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig.savefig(tmp_path / "ok.pdf")
        fig.savefig(tmp_path / "tight.pdf", bbox_inches="tight")   # cropped to content: no preset's width
    with matplotlib.rc_context({"pdf.fonttype": 3}):
        fig.savefig(tmp_path / "type3.pdf")
    assert check_pdf(tmp_path / "ok.pdf") == []
    assert kinds(check_pdf(tmp_path / "type3.pdf")) == ["fonts"]
    assert kinds(check_pdf(tmp_path / "tight.pdf")) == ["size"]
    plt.close(fig)


def test_plotly_titles_need_room_above_them_for_the_toolbar():
    import plotly.graph_objects as go
    fig = go.Figure(layout=dict(width=317, title="a title", margin=dict(t=30)))
    assert kinds(check_plotly(fig)) == ["toolbar"]
    fig.update_layout(margin=dict(t=70))
    assert check_plotly(fig) == []
    fig.update_layout(margin=dict(t=30), modebar=dict(orientation="v"))
    assert check_plotly(fig) == []
    fig.update_layout(width=500)
    assert kinds(check_plotly(fig)) == ["size"]


def test_require_and_checker_name_every_problem(tmp_path):
    with pytest.raises(FigureCheckError, match="two: 1 problem"):
        require(["overlap: a and b"], "two")
    require([], "fine")
    checker = Checker()
    checker.figure(clean_figure(), "good")
    bad = clean_figure()
    bad.set_size_inches(5, 3)
    checker.figure(bad, "bad")
    assert list(checker.failed()) == ["bad"]
    with pytest.raises(FigureCheckError, match="bad:\n  size"):
        checker.raise_if_any()
    plt.close("all")


# every committed study results folder: docs/results once the running study is written, and each dated
# earlier study kept under it (docs/results/2026-11-26)
STUDIES = sorted(p.parent for p in RESULTS.glob("**/results.json") if (p.parent / "records").is_dir())


def test_the_committed_studies_are_found():
    assert RESULTS / "2026-11-26" in STUDIES


@pytest.mark.parametrize("study", STUDIES, ids=[str(s.relative_to(RESULTS)) for s in STUDIES])
def test_every_study_figure_passes(tmp_path, study):
    """`python -m viz study` over each committed study's results: every figure it writes passes the check."""
    import shutil

    from viz.study import render_study
    dest = tmp_path / "results"
    dest.mkdir()
    shutil.copy(study / "results.json", dest / "results.json")
    shutil.copytree(study / "records", dest / "records")
    checker = Checker()
    written = render_study(dest, formats=("pdf",), log=lambda *_: None, check=checker)
    names = {Path(p).stem for p in written}
    results = json.loads((dest / "results.json").read_text())
    assert {"claims", "convergence", "landscapes", "softmax_hist"} <= names, names
    assert set(checker.problems) == names and results["runs"]
    checker.raise_if_any()


def test_the_claims_figure_of_every_claim_passes_and_names_where_each_comparison_was_made():
    """Every claim of regmix.paper.claims with a row per baseline and primary metric (the second study has
    14 claims, 11 rows on the robustness panels): no overlapping or cropped text, each row says which
    comparison it is, and two panels with the same rows name them once."""
    verdicts = ["holds", "unclear", "reversed"]
    claims = []
    for k, claim in enumerate(CLAIMS):
        subject, against = _sides(claim)
        rows = [{"against": label, "metric": m, "diff": 1.0 - j, "ci": [-0.5 - j, 2.0 - j],
                 "verdict": verdicts[(k + j) % 3]} for j, (label, _, _) in enumerate(against) for m in claim["primary"]]
        claims.append({"id": claim["id"], "primary": claim["primary"], "subject": subject[0],
                       "tag": claim.get("tag", ""), "rows": rows})
    fig = plot_claims({"claims": claims})
    assert check_figure(fig) == []
    pgd, apgd = fig.axes[0], fig.axes[1]
    labels = [t.get_text() for t in pgd.get_yticklabels()]
    assert "vs pgk (both 5-step)" in labels and "vs pgd_at (width 32)" in labels and "vs pgk (LS off)" in labels
    assert "RegMix, 5-step vs PGD-AT+EMA+LS" in labels and "FGSM-PGK, 5-step vs PGD-AT+EMA+LS" in labels
    assert len(labels) == len(set(labels))
    assert [t.get_text() for t in apgd.get_yticklabels()] == [""] * len(labels)  # the same rows: named once
    plt.close(fig)
