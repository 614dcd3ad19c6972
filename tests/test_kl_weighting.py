"""What the AMR weighting alpha : beta changes (regmix.diagnostics.kl_toy), its figure (viz.kl) and
its live view in the AMR explorer."""
import numpy as np
import pytest
import torch

import regmix.losses
from regmix.diagnostics import kl_toy


R = np.linspace(0, 1, 21)


@pytest.mark.parametrize("family", kl_toy.FAMILIES)
def test_fit_directions_are_monotone_in_the_weight(family):
    # the grid minimum is the global one on the grid, so r KL(P||Q) + (1-r) KL(Q||P) at larger r can
    # only trade KL(Q||P) for KL(P||Q): a property of exact minimisers that a wrong argmin breaks
    fit = kl_toy.mode_seeking_trace(ratios=R, family=family)
    assert np.all(np.diff(fit["kl_pq"]) <= 1e-12)
    assert np.all(np.diff(fit["kl_qp"]) >= -1e-12)
    assert fit["kl_pq"][0] > fit["kl_pq"][-1] + 0.1
    # the mode-seeking end (alpha only) is far more confident than the mass-covering end (beta only)
    assert fit["entropy"][-1] < 0.2 * fit["entropy"][0]
    assert fit["p_true"][-1] > 0.9 > 0.3 > fit["p_true"][0]
    assert fit["p_other"][-1] < 1e-3 < fit["p_other"][0]
    np.testing.assert_allclose(fit["q"].sum(1), 1.0)


def test_laplace_fit_moves_smoothly_and_monotonically():
    fit = kl_toy.mode_seeking_trace(ratios=R)
    assert np.all(np.diff(fit["p_true"]) >= -1e-9)
    assert np.all(np.diff(fit["entropy"]) <= 1e-9)
    assert np.abs(np.diff(fit["p_true"])).max() < 0.15          # no jump between neighbouring weights
    half = fit["p_true"][np.searchsorted(R, 0.5)]
    assert fit["p_true"][0] + 0.1 < half < fit["p_true"][-1] - 0.1  # it changes mid-range too


def test_fit_is_the_minimum_of_the_weighted_objective():
    target = kl_toy.two_peaked_target()
    fit = kl_toy.mode_seeking_trace(target, ratios=[0.0, 0.7, 1.0])
    rng = np.random.default_rng(0)
    for i, r in enumerate(fit["r"]):
        best = r * fit["kl_pq"][i] + (1 - r) * fit["kl_qp"][i]
        centre = fit["centre"][i] + rng.uniform(-0.5, 0.5, 200)
        sharp = fit["sharpness"][i] * np.exp(rng.uniform(-0.3, 0.3, 200))
        logq = kl_toy.unimodal_log_probs(centre, sharp, len(target))
        q = np.exp(logq)
        other = r * (q * (logq - np.log(target))).sum(1) + (1 - r) * (target * (np.log(target) - logq)).sum(1)
        assert other.min() >= best - 1e-3


@pytest.mark.parametrize("detach", [False, True])
def test_batched_gradients_equal_autograd_through_regmix_losses(detach):
    rng = np.random.default_rng(3 + detach)
    u, v = rng.normal(size=(4, 5)) * 2, rng.normal(size=(4, 5))
    alpha, beta = 0.7, 1.9
    zu = torch.tensor(u, requires_grad=True)
    zv = torch.tensor(v, requires_grad=True)
    loss = sum(regmix.losses.amr(zu[i:i + 1], zv[i:i + 1], alpha, beta, detach_target=detach) for i in range(4))
    gu_auto, gv_auto = torch.autograd.grad(loss, (zu, zv))
    gu, gv = kl_toy._batched_gradients(u, v, alpha, beta, detach)
    np.testing.assert_allclose(gu, gu_auto.numpy(), atol=2e-6)
    np.testing.assert_allclose(gv, gv_auto.numpy(), atol=2e-6)


def test_term_gradients_equal_autograd_and_spare_the_confident_output():
    final, init = kl_toy.PAIRS["P confident, Q flat"]
    norms = kl_toy.term_gradients(final, init)
    for term, (a, b) in {"KL(P||Q)": (1.0, 0.0), "KL(Q||P)": (0.0, 1.0)}.items():
        zu = torch.tensor(kl_toy.logits_of(final)[None], requires_grad=True)
        zv = torch.tensor(kl_toy.logits_of(init)[None], requires_grad=True)
        gu, gv = torch.autograd.grad(regmix.losses.amr(zu, zv, a, b), (zu, zv))
        assert norms[term]["P"] == pytest.approx(float(gu.norm()), rel=1e-5)
        assert norms[term]["Q"] == pytest.approx(float(gv.norm()), rel=1e-5)
        assert norms[term]["P"] < norms[term]["Q"]  # the confident P gets the smaller push from either term


def test_meeting_point_is_the_flows_not_the_step_size():
    p0, q0 = kl_toy.PAIRS["P, Q confident, disagree"]
    for detach in (False, True):
        a = kl_toy.meeting_trace(p0, q0, R, detach_target=detach, lr=0.1)
        b = kl_toy.meeting_trace(p0, q0, R, detach_target=detach, lr=0.04)
        assert a["converged"] and b["converged"]
        np.testing.assert_allclose(a["meeting"], b["meeting"], atol=5e-3)


@pytest.mark.parametrize("name", list(kl_toy.PAIRS))
def test_who_moves(name):
    p0, q0 = kl_toy.PAIRS[name]
    both = kl_toy.meeting_trace(p0, q0, R)
    detached = kl_toy.meeting_trace(p0, q0, R, detach_target=True)
    # target side detached: alpha moves only Q, beta only P, so the weight decides who moves
    assert detached["share_p"][0] == pytest.approx(1.0, abs=1e-3)
    assert detached["share_p"][-1] == pytest.approx(0.0, abs=1e-3)
    assert np.all(np.diff(detached["share_p"]) < 0)
    # gradients through both arguments (regmix's default): more alpha still moves P less, but the
    # weight barely decides it; which output is more confident does
    assert np.all(np.diff(both["share_p"]) < 0)
    assert np.ptp(both["share_p"]) < 0.2
    # swapping the roles of P and Q mirrors the weight: AMR(P, Q; a, b) = AMR(Q, P; b, a)
    swapped = kl_toy.meeting_trace(q0, p0, R[::-1])
    np.testing.assert_allclose(both["share_p"], 1 - swapped["share_p"], atol=2e-3)


def test_the_flatter_output_moves_most_when_both_move():
    confident_p = kl_toy.meeting_trace(*kl_toy.PAIRS["P confident, Q flat"], R)
    flat_p = kl_toy.meeting_trace(*kl_toy.PAIRS["P flat, Q confident"], R)
    assert confident_p["share_p"].max() < 0.4 and flat_p["share_p"].min() > 0.6


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match="ratios"):
        kl_toy.meeting_trace((0.5, 0.5), (0.4, 0.6), [0.2, 1.5])
    with pytest.raises(ValueError, match="family"):
        kl_toy.mode_seeking_trace(family="cauchy")
    with pytest.raises(ValueError, match="target"):
        kl_toy.mode_seeking_trace(target=[0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="p0, q0"):
        kl_toy.meeting_trace((0.5, 0.5), (0.2, 0.3, 0.5))
    with pytest.raises(ValueError, match="alpha, beta"):
        kl_toy.weight_share(-1, 1)
    assert kl_toy.weight_share(0, 0) is None and kl_toy.weight_share(3, 1) == 0.75


def test_regmix_side_draws_nothing():
    import subprocess
    import sys
    code = ("import sys, regmix.diagnostics.kl_toy as k; k.kl_weighting([0, 1]);"
            "sys.exit(any(m in sys.modules for m in ('matplotlib', 'plotly', 'ipywidgets', 'viz')))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------------------------------- figures

@pytest.fixture(scope="module")
def record():
    return kl_toy.kl_weighting(np.linspace(0, 1, 11))


def _overlaps(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_weighting_figure_exports_with_legends_outside_the_data(record, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import viz
    from viz import kl as K
    for name, draw in (("weighting", K.plot_kl_weighting), ("simplex", K.plot_kl_meeting_simplex)):
        fig = draw(record)
        paths = viz.save_figure(fig, tmp_path / name, formats=("pdf", "svg", "png"))
        assert sorted(p.suffix for p in paths) == [".pdf", ".png", ".svg"]
        assert all(p.stat().st_size > 1000 for p in paths)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            legend = ax.get_legend()
            if legend is not None:
                assert not _overlaps(legend.get_window_extent(renderer), ax.get_window_extent(renderer)), name
        labels = [ax.get_xlabel() for ax in fig.axes] + [ax.get_ylabel() for ax in fig.axes]
        assert any("AMR weight α" in label for label in labels), name
        plt.close(fig)


def test_weighting_figure_draws_the_record(record):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from viz import kl as K
    fig = K.plot_kl_weighting(record)
    ax_share = fig.axes[2]
    lines = {tuple(np.round(line.get_ydata(), 6)) for line in ax_share.get_lines() if len(line.get_ydata())}
    for runs in record["meetings"].values():
        assert tuple(np.round(runs["both"]["share_p"], 6)) in lines
        assert tuple(np.round(runs["detached"]["share_p"], 6)) in lines
    plt.close(fig)


# ---------------------------------------------------------------------------------------- explorer

def test_explorer_marks_the_current_weight(tmp_path):
    pytest.importorskip("ipywidgets")
    from conftest import tiny_config
    from regmix.trainer import train
    from viz.explorers import AMRWeightExplorer
    run = train(tiny_config(tmp_path, "regmix", train={"epochs": 1, "progress": False}, eval={"max_points": 32}))
    ex = AMRWeightExplorer(run, examples=2, export_dir=tmp_path)
    fit = ex.traces["fit"]
    now_line, now, fitted = (ex.weighting_traces[k] for k in ("now_line", "now", "fit"))
    meeting = ex.simplex_traces["meeting"]
    ex.alpha.value, ex.beta.value = 0.0, 1.0
    assert list(now_line.x) == [0.0, 0.0]
    np.testing.assert_allclose(fitted.y, fit["q"][0])
    star_beta = np.array([meeting.x[0], meeting.y[0]])
    ex.alpha.value = 3.0  # r = 0.75
    assert list(now_line.x) == [0.75, 0.75]
    np.testing.assert_allclose(fitted.y, fit["q"][75])
    assert now.y[0] == pytest.approx(fit["p_true"][75])
    assert "0.75" in ex.weighting.layout.title.text
    assert np.linalg.norm(np.array([meeting.x[0], meeting.y[0]]) - star_beta) > 0.1
    ex.alpha.value, ex.beta.value = 0.0, 0.0
    assert "AMR is off" in ex.weighting.layout.title.text and len(now_line.x) == 0
    assert "kl_weighting" in ex.export.figures


def test_the_alpha_beta_heatmap_states_the_seed_noise_beside_the_cells_range():
    """A colour scale stretched over a 2-point range makes seed noise look like structure: the panel says
    how far the cells spread and how much one seed varies."""
    import matplotlib
    matplotlib.use("Agg")
    from viz.kl import plot_alpha_beta_heatmaps
    rows = [{"method.options.alpha": a, "method.options.beta": b, "source": "eval",
             "accuracy": {"pgd20": 0.85 + 0.01 * i + 0.005 * j}}
            for i, a in enumerate((0.5, 2.0)) for j, b in enumerate((0.5, 2.0))]
    fig = plot_alpha_beta_heatmaps(rows, metrics=["pgd20"], seed_std={"pgd20": 4.4})
    # in the x label, where the layout makes room for it (a free text under the axes was cropped)
    labels = [ax.get_xlabel().replace("\n", " ") for ax in fig.axes]
    assert any("cells span 1.5 points; one seed varies by 4.4 (std over seeds)" in label for label in labels)
    plain = plot_alpha_beta_heatmaps(rows, metrics=["pgd20"])
    assert not [ax for ax in plain.axes if "one seed varies" in ax.get_xlabel()]
