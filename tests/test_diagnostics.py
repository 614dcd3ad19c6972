import numpy as np
import pytest
import torch

import regmix
from regmix.diagnostics import kl_toy, load_record, save_record
from regmix.diagnostics.softmax import (adversarial_views, class_means, distances_to_truth, reliability,
                                        softmax_record)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.0, 1.0), (1.0, 0.5), (0.3, 2.0)])
def test_kl_toy_gradients_equal_autograd(alpha, beta):
    rng = np.random.default_rng(int(10 * alpha + beta))
    for _ in range(5):
        u0, v0 = rng.normal(size=3) * 2, rng.normal(size=3) * 2
        u = torch.tensor(u0, requires_grad=True, dtype=torch.float64)
        v = torch.tensor(v0, requires_grad=True, dtype=torch.float64)
        lp, lq = torch.log_softmax(u, 0), torch.log_softmax(v, 0)
        loss = alpha * (lp.exp() * (lp - lq)).sum() + beta * (lq.exp() * (lq - lp)).sum()
        gu, gv = torch.autograd.grad(loss, (u, v))
        au, av = kl_toy.amr_gradients(u0, v0, alpha, beta)
        np.testing.assert_allclose(au, gu.numpy(), atol=1e-10)
        np.testing.assert_allclose(av, gv.numpy(), atol=1e-10)
        assert kl_toy.amr(u0, v0, alpha, beta) == pytest.approx(float(loss.detach()))


def test_the_loss_module_and_the_toy_agree():
    u, v = np.array([1.0, -0.5, 0.2]), np.array([-0.3, 0.8, 0.1])
    value = regmix.losses.amr(torch.tensor(u[None]), torch.tensor(v[None]), 0.7, 1.3)
    assert float(value) == pytest.approx(kl_toy.amr(u, v, 0.7, 1.3), rel=1e-6)


def test_gradient_flow_decreases_the_loss_and_the_weights_decide_who_moves():
    p0, q0 = (0.7, 0.2, 0.1), (0.2, 0.3, 0.5)
    flow = kl_toy.gradient_flow(p0, q0, 1.0, 0.5, steps=300)
    assert np.all(np.diff(flow["loss"]) <= 1e-12)
    np.testing.assert_allclose(flow["P"][-1], flow["Q"][-1], atol=1e-3)  # they meet
    fixed_q = kl_toy.gradient_flow(p0, q0, 1.0, 0.5, steps=300, move="p")
    np.testing.assert_allclose(fixed_q["Q"][-1], q0)
    np.testing.assert_allclose(fixed_q["P"][-1], q0, atol=1e-3)  # P is pulled onto the target
    # with alpha alone, Q moves towards P by (q - p) while P mode-seeks: the meeting point differs
    meet_alpha = kl_toy.gradient_flow(p0, q0, 1.0, 0.0, steps=400)["P"][-1]
    meet_beta = kl_toy.gradient_flow(p0, q0, 0.0, 1.0, steps=400)["P"][-1]
    assert np.abs(meet_alpha - meet_beta).sum() > 1e-2
    with pytest.raises(ValueError, match="move"):
        kl_toy.gradient_flow(p0, q0, 1, 1, move="x")


def test_velocity_field_stays_on_the_simplex_and_vanishes_at_the_target():
    q = np.array([0.2, 0.3, 0.5])
    field = kl_toy.velocity_field(q, 1.0, 0.5, resolution=6)
    np.testing.assert_allclose(field["velocity"].sum(1), 0, atol=1e-12)
    assert np.all(field["P"] > 0) and np.allclose(field["P"].sum(1), 1)
    gu, _ = kl_toy.amr_gradients(kl_toy.logits_of(q), kl_toy.logits_of(q), 1.0, 0.5)
    np.testing.assert_allclose(gu, 0, atol=1e-12)
    corners = kl_toy.to_plane(np.eye(3))
    np.testing.assert_allclose(corners, [[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]])


def test_distances_and_calibration_on_known_values():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0])
    d = distances_to_truth(probs, y)
    np.testing.assert_allclose(d["tv"], 1 - probs[np.arange(4), y])
    np.testing.assert_allclose(d["ce"], -np.log([0.9, 0.4, 0.7, 0.5]))
    rel = reliability(probs, y, bins=2)
    # bin [0, 0.5]: conf 0.5 (right); bin (0.5, 1]: conf 0.9, 0.6, 0.7, right 2 of 3
    assert rel["count"].tolist() == [1, 3]
    expected = (abs(1 - 0.5) * 1 + abs(2 - (0.9 + 0.6 + 0.7))) / 4
    assert rel["ece"] == pytest.approx(expected)
    means = class_means(probs, y, 3)
    np.testing.assert_allclose(means[0], [0.7, 0.3])
    assert np.isnan(means[2]).all()


def test_a_perfectly_calibrated_predictor_has_zero_ece():
    rng = np.random.default_rng(0)
    conf = np.repeat([0.6, 0.8], 500)
    right = np.concatenate([rng.permutation(500) < 300, rng.permutation(500) < 400])
    probs = np.stack([conf, 1 - conf], 1)
    y = np.where(right, 0, 1)
    assert reliability(probs, y, bins=10)["ece"] == pytest.approx(0.0, abs=1e-12)


def test_softmax_views_get_worse_with_the_attack_and_the_record_round_trips(trained_mnist_model, mnist_batch, tmp_path):
    x, y = mnist_batch
    threat = regmix.ThreatModel("linf", eps=0.2, step=0.2)
    views = adversarial_views(trained_mnist_model, x, y, threat)
    assert set(views) == {"clean", "init", "final"}
    assert all(np.allclose(v.sum(1), 1, atol=1e-5) for v in views.values())
    arrays, meta = softmax_record(trained_mnist_model, x, y, threat)
    s = meta["summary"]
    assert s["final"]["ce"] > s["clean"]["ce"] and s["final"]["acc"] < s["clean"]["acc"]
    assert arrays["rel_count_clean"].sum() == len(y) and arrays["true_hist_final"].sum() == len(y)
    again = softmax_record(trained_mnist_model, x, y, threat)[0]
    np.testing.assert_array_equal(again["probs_init"], arrays["probs_init"])  # seeded
    path = save_record(tmp_path / "s.npz", "softmax", arrays, meta)
    loaded, loaded_meta = load_record(path)
    assert loaded_meta["kind"] == "softmax" and loaded_meta["summary"] == meta["summary"]
    np.testing.assert_array_equal(loaded["probs_final"], arrays["probs_final"])


def test_a_failed_record_write_keeps_the_previous_record_whole(tmp_path, monkeypatch):
    import regmix.files
    path = save_record(tmp_path / "r.npz", "test", {"a": np.arange(3)}, {"note": "first"})

    def refuse(*_):
        raise OSError("disk full")
    monkeypatch.setattr(regmix.files.os, "replace", refuse)   # the write fails at the rename
    with pytest.raises(OSError, match="r.npz"):
        save_record(path, "test", {"a": np.arange(5)}, {"note": "second"})
    arrays, meta = load_record(path)
    assert meta["note"] == "first" and arrays["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]                # no temporary file left


def test_ensure_records_reuses_what_exists_and_computes_nothing_else(tmp_path):
    import yaml
    from regmix.diagnostics import ensure_records, record_paths
    from regmix.registry import ConfigError
    from regmix.rundir import RunDir
    runs = []
    for name, method in (("a", "pgk"), ("b", "regmix")):
        run = RunDir(tmp_path / name)
        run.path.mkdir()
        run.config_path.write_text(yaml.safe_dump({"method": {"name": method}}))
        run.checkpoint("best").write_bytes(b"not a checkpoint: loading it would fail")
        runs.append(run.path)
    with pytest.raises(ConfigError, match="^runs: no record"):
        record_paths(runs).require()
    for path in record_paths(runs).all():
        save_record(path, "cached", {"x": np.zeros(1)}, {})
    log = []
    records = ensure_records(runs, grid=3, n=4, device="cpu", log=log.append)
    assert log == [] and records.missing() == [] and len(records.all()) == 7   # 2 x (weight, input, softmax) + interp
    assert records.interp == [RunDir(runs[0]).diagnostic("interp_b")]        # pgk -> regmix
    with pytest.raises(ConfigError, match="^attack: "):
        ensure_records(runs, attack="pgd-ten")
    unfinished = RunDir(tmp_path / "c")
    unfinished.path.mkdir()
    unfinished.config_path.write_text(yaml.safe_dump({"method": {"name": "regmix"}}))
    with pytest.raises(ConfigError, match="^runs: .* has no best checkpoint"):
        ensure_records([unfinished.path])


def test_flows_at_large_weights_stay_bounded_and_end_where_the_share_says():
    """Fixed steps of 0.5 at alpha = beta = 16 zig-zagged P and Q into a corner neither started near;
    the bounded, backtracking step follows the flow, whose end depends on alpha/(alpha+beta) alone."""
    p0, q0 = kl_toy.PAIRS["P, Q confident, disagree"]
    small, large = kl_toy.gradient_flow(p0, q0, 1.0, 1.0), kl_toy.gradient_flow(p0, q0, 16.0, 16.0)
    for flow in (small, large):
        assert np.all(np.diff(flow["loss"]) <= 0)                      # never climbs
        assert np.all(flow["P"] > 0) and np.allclose(flow["P"].sum(1), 1)
    np.testing.assert_allclose(large["P"][-1], small["P"][-1], atol=1e-9)  # alpha + beta: only the speed
    np.testing.assert_allclose(large["P"][-1], large["Q"][-1], atol=1e-6)
    assert large["P"][-1].max() < 0.6                                      # in no corner
    # alpha 11.55, beta 0.5 used to end on class 2; it ends where the finely stepped flow meets
    flow = kl_toy.gradient_flow(p0, q0, 11.55, 0.5, lr=0.05, steps=3000)
    meeting = kl_toy.meeting_trace(p0, q0, [11.55 / 12.05], lr=0.02, max_steps=200000)
    assert meeting["converged"]
    np.testing.assert_allclose(flow["P"][-1], meeting["meeting"][0], atol=2e-3)
    # Q fixed: P ends on Q, the minimiser of either KL, at any weights
    np.testing.assert_allclose(kl_toy.gradient_flow(p0, q0, 16.0, 16.0, move="p")["P"][-1], q0, atol=1e-4)
    with pytest.raises(ValueError, match="lr"):
        kl_toy.gradient_flow(p0, q0, 1, 1, lr=0)


@pytest.mark.parametrize("r", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_the_detached_flow_meets_at_the_analytic_point(r):
    p0, q0 = kl_toy.PAIRS["P, Q confident, disagree"]
    trace = kl_toy.meeting_trace(p0, q0, [r], detach_target=True)
    assert trace["converged"]
    np.testing.assert_allclose(trace["meeting"][0], kl_toy.detached_meeting_point(p0, q0, r, 1 - r), atol=1e-5)
