import math

import numpy as np
import pytest
import torch

from regmix import losses

LOGITS_FINAL = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
LOGITS_INIT = torch.tensor([[1.0, 1.0, 0.0], [-0.5, 1.5, 0.5]])


def softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def hand_kl(p_logits, q_logits):
    """Mean over rows of sum_c p_c log(p_c / q_c), written out with plain floats."""
    total = 0.0
    for a, b in zip(p_logits.tolist(), q_logits.tolist()):
        p, q = softmax(a), softmax(b)
        total += sum(pc * math.log(pc / qc) for pc, qc in zip(p, q))
    return total / len(p_logits)


def test_amr_equals_hand_computed_weighted_kl_sum():
    alpha, beta = 0.7, 0.2
    expected = alpha * hand_kl(LOGITS_FINAL, LOGITS_INIT) + beta * hand_kl(LOGITS_INIT, LOGITS_FINAL)
    assert losses.amr(LOGITS_FINAL, LOGITS_INIT, alpha, beta).item() == pytest.approx(expected, rel=1e-5)


def test_agr_equals_hand_computed_kl_from_clean():
    clean = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    expected = 0.4 * hand_kl(clean, LOGITS_FINAL)
    assert losses.agr(clean, LOGITS_FINAL, 0.4).item() == pytest.approx(expected, rel=1e-5)


def test_kl_is_asymmetric_on_these_logits():
    # Otherwise the swap test below would pass trivially.
    assert abs(hand_kl(LOGITS_FINAL, LOGITS_INIT) - hand_kl(LOGITS_INIT, LOGITS_FINAL)) > 1e-2


def test_amr_swaps_roles_when_alpha_and_beta_swap():
    a = losses.amr(LOGITS_FINAL, LOGITS_INIT, 0.9, 0.1)
    b = losses.amr(LOGITS_INIT, LOGITS_FINAL, 0.1, 0.9)
    c = losses.amr(LOGITS_FINAL, LOGITS_INIT, 0.1, 0.9)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    assert abs(a.item() - c.item()) > 1e-3


def test_zero_for_identical_outputs():
    z = torch.randn(16, 10)
    assert losses.amr(z, z.clone(), 1.3, 0.4).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.agr(z, z.clone(), 2.0).item() == pytest.approx(0.0, abs=1e-6)


def test_non_negative_on_random_logits():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        a, b = torch.randn(8, 10, generator=g) * 5, torch.randn(8, 10, generator=g) * 5
        w = torch.rand(3, generator=g).tolist()
        assert losses.amr(a, b, w[0], w[1]).item() >= 0
        assert losses.agr(a, b, w[2]).item() >= 0


def test_mean_reduction_is_num_classes_times_smaller():
    batchmean = losses.kl(LOGITS_FINAL, LOGITS_INIT)
    mean = losses.kl(LOGITS_FINAL, LOGITS_INIT, reduction="mean")
    assert mean.item() == pytest.approx(batchmean.item() / 3, rel=1e-6)


def test_temperature_softens_and_rescales():
    t = 4.0
    expected = t ** 2 * hand_kl(LOGITS_FINAL / t, LOGITS_INIT / t)
    assert losses.kl(LOGITS_FINAL, LOGITS_INIT, temperature=t).item() == pytest.approx(expected, rel=1e-5)


def test_gradients_flow_into_both_sides_unless_the_target_is_detached():
    a = LOGITS_FINAL.clone().requires_grad_(True)
    b = LOGITS_INIT.clone().requires_grad_(True)
    losses.amr(a, b, 1.0, 0.0).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0
    a.grad = b.grad = None
    losses.amr(a, b, 1.0, 0.0, detach_target=True).backward()
    assert (a.grad is None or a.grad.abs().sum() == 0) and b.grad.abs().sum() > 0


@pytest.mark.parametrize("call", [
    lambda: losses.amr(LOGITS_FINAL, LOGITS_INIT, -0.1, 1.0),
    lambda: losses.amr(LOGITS_FINAL, LOGITS_INIT, 1.0, -1.0),
    lambda: losses.agr(LOGITS_FINAL, LOGITS_INIT, -2.0),
    lambda: losses.kl(LOGITS_FINAL, LOGITS_INIT, temperature=0.0),
])
def test_bad_weights_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_cw_margin_sign():
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    margin = losses.cw_margin(logits, torch.tensor([0, 0]))
    np.testing.assert_allclose(margin.numpy(), [-2.0, 2.0])


def pgk_target(y, num_classes, f):
    """FGSM-PGK's reference formula: one_hot * f + (1 - one_hot) * (1 - f) / (C - 1)."""
    onehot = torch.nn.functional.one_hot(y, num_classes).float()
    return onehot * f + (1 - onehot) * (1 - f) / (num_classes - 1)


@pytest.mark.parametrize("num_classes,f", [(10, 0.5), (100, 0.8), (10, 0.9), (100, 0.5)])
def test_smoothed_target_is_fgsm_pgk_formula(num_classes, f):
    y = torch.tensor([0, 3, num_classes - 1, 3])
    target = losses.smoothed_targets(y, num_classes, f)
    torch.testing.assert_close(target, pgk_target(y, num_classes, f))
    assert target[torch.arange(4), y].tolist() == pytest.approx([f] * 4)   # the true class gets f itself
    torch.testing.assert_close(target.sum(1), torch.ones(4))


@pytest.mark.parametrize("num_classes,f", [(10, 0.5), (100, 0.8)])
def test_smoothed_cross_entropy_is_fgsm_pgk_formula(num_classes, f):
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(16, num_classes, generator=g) * 3, torch.randint(0, num_classes, (16,), generator=g)
    expected = -(pgk_target(y, num_classes, f) * logits.log_softmax(1)).sum(1).mean()
    assert losses.cross_entropy(logits, y, f).item() == pytest.approx(expected.item(), rel=1e-6)
    # PyTorch's label_smoothing=e is the same target once e = (1 - f) C / (C - 1) ...
    e = (1 - f) * num_classes / (num_classes - 1)
    torch_ce = torch.nn.functional.cross_entropy(logits, y, label_smoothing=e)
    assert torch_ce.item() == pytest.approx(expected.item(), rel=1e-5)
    # ... and passing f itself as e (what the recipes did) is a different, much flatter target
    wrong = torch.nn.functional.cross_entropy(logits, y, label_smoothing=f)
    assert abs(wrong.item() - expected.item()) > 1e-2


def test_factor_passed_as_pytorch_epsilon_left_cifar100_true_class_near_0_21():
    # The bug the option's rename fixes: PyTorch's e = 0.8 with C = 100 gives the true class 1 - e + e/C.
    assert 1 - 0.8 + 0.8 / 100 == pytest.approx(0.208)
    assert losses.smoothed_targets(torch.tensor([5]), 100, 0.8)[0, 5].item() == pytest.approx(0.8)


def test_no_smoothing_is_exactly_plain_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(8, 10, generator=g), torch.randint(0, 10, (8,), generator=g)
    assert torch.equal(losses.cross_entropy(logits, y), torch.nn.functional.cross_entropy(logits, y))
    assert torch.equal(losses.cross_entropy(logits, y, 1.0), torch.nn.functional.cross_entropy(logits, y))


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.01, True, "0.5"])
def test_bad_true_class_target_is_refused(bad):
    with pytest.raises(ValueError, match="true_class_target"):
        losses.cross_entropy(LOGITS_FINAL, torch.tensor([0, 1]), bad)
