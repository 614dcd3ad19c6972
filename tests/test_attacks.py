import pytest
import torch

import regmix
from regmix.attacks import APGD, APGDT, ATTACKS, PGD, PriorGuidedPerturbation, create_attack
from regmix.attacks.apgd import checkpoints, dlr_loss, targeted_dlr_loss
from regmix.attacks.base import attack_still_robust
from regmix.attacks.flags import robust_accuracy
from regmix.registry import ConfigError

NORMS = {"linf": 0.1, "l2": 1.0}


def small_model():
    torch.manual_seed(0)
    return regmix.create_model("small_cnn", 10, 1, width=8)


def in_ball(x_adv, x, norm, eps):
    delta = (x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    return bool((size <= eps + 1e-5).all())


@pytest.mark.parametrize("name", ATTACKS.names())
@pytest.mark.parametrize("norm", sorted(NORMS))
def test_every_attack_stays_in_the_ball_and_the_box(name, norm, mnist_batch):
    x, y = mnist_batch
    threat = regmix.ThreatModel(norm, NORMS[norm], steps=3)
    x_adv = create_attack(name, small_model(), threat)(x, y)
    assert x_adv.shape == x.shape
    assert in_ball(x_adv, x, norm, threat.eps)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not torch.equal(x_adv, x)


@pytest.mark.parametrize("name", ATTACKS.names())
def test_every_attack_returns_x_for_eps_zero(name, mnist_batch):
    x, y = mnist_batch
    x_adv = create_attack(name, small_model(), regmix.ThreatModel("linf", 0.0, steps=3))(x, y)
    assert torch.equal(x_adv, x)


@pytest.mark.parametrize("name", ATTACKS.names())
@pytest.mark.parametrize("start_mode", [True, False])
def test_every_attack_restores_the_model_mode(name, start_mode, mnist_batch):
    x, y = mnist_batch
    model = small_model().train(start_mode)
    attack = create_attack(name, model, regmix.ThreatModel("linf", 0.1, steps=2))
    attack(x, y)
    assert model.training is start_mode
    assert all(p.grad is None for p in model.parameters()), "attacks must not touch weight gradients"
    assert name.split("_")[0].upper() in repr(attack).upper() or "PGD" in repr(attack)


def test_pgd_beats_fgsm_on_a_trained_model(trained_mnist_model):
    test = regmix.create_dataset("mnist5k", "test")
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test, range(300)), batch_size=150)
    threat = regmix.ThreatModel("linf", 0.1, step=0.025, steps=10)
    acc = robust_accuracy(trained_mnist_model, loader, {
        "fgsm": lambda m: create_attack("fgsm", m, threat),
        "pgd": lambda m: create_attack("pgd", m, threat)}, device="cpu")
    assert acc["clean"] > 0.8
    assert acc["pgd"] < acc["fgsm"] - 0.05


def test_restarts_only_make_the_attack_stronger(trained_mnist_model, mnist_batch):
    x, y = mnist_batch
    threat = regmix.ThreatModel("linf", 0.08, step=0.02, steps=5)
    torch.manual_seed(1)
    one = (trained_mnist_model(PGD(trained_mnist_model, threat, restarts=1)(x, y)).argmax(1) == y).sum()
    torch.manual_seed(1)
    three = (trained_mnist_model(PGD(trained_mnist_model, threat, restarts=3)(x, y)).argmax(1) == y).sum()
    assert three <= one


def test_attack_still_robust_runs_on_the_robust_points_only_and_keeps_what_fooled():
    robust = torch.tensor([True, False, True, True, False])
    x_adv = torch.zeros(5, 2)
    asked = []

    def run(idx):  # the examples for idx: each point's index, twice
        asked.append(idx.tolist())
        return idx.float().repeat(2, 1).t() + 10

    def still_right(found, idx):  # the attack fools point 2 only
        return idx != 2
    assert attack_still_robust(robust, run, still_right, x_adv)
    assert asked == [[0, 2, 3]]
    assert robust.tolist() == [True, False, False, True, False]
    assert x_adv[2].tolist() == [12.0, 12.0] and x_adv[[0, 1, 3, 4]].abs().sum() == 0  # fooled: its example
    assert attack_still_robust(robust, run, lambda found, idx: torch.zeros_like(idx, dtype=torch.bool))
    assert asked[-1] == [0, 3] and not robust.any()  # without x_adv: only the mask
    assert not attack_still_robust(robust, run, still_right, x_adv) and len(asked) == 2  # none left: no run


def test_cw_attack_maximises_the_margin(trained_mnist_model, mnist_batch):
    x, y = mnist_batch
    threat = regmix.ThreatModel("linf", 0.1, step=0.025, steps=10)
    x_adv = create_attack("cw", trained_mnist_model, threat)(x, y)
    with torch.no_grad():
        before = regmix.losses.cw_margin(trained_mnist_model(x), y).mean()
        after = regmix.losses.cw_margin(trained_mnist_model(x_adv), y).mean()
    assert after > before + 1.0


def test_bad_attack_settings_are_refused():
    model = small_model()
    with pytest.raises(ConfigError, match="attack.loss"):
        PGD(model, regmix.ThreatModel(), loss="hinge")
    with pytest.raises(ConfigError, match="restarts"):
        PGD(model, regmix.ThreatModel(), restarts=0)
    with pytest.raises(ConfigError, match="unknown name 'pgdd'.*did you mean 'pgd'"):
        create_attack("pgdd", model, regmix.ThreatModel())


@pytest.mark.parametrize("bad", [dict(eps=-0.1), dict(eps=2.0), dict(norm="l1"), dict(eps=0.1, step=1.0),
                                 dict(steps=-1), dict(eps="eight/255")])
def test_threat_model_validates(bad):
    with pytest.raises(ConfigError, match="threat"):
        regmix.ThreatModel(**bad)


def test_threat_model_reads_fractions():
    t = regmix.ThreatModel(eps="8/255")
    assert t.eps == pytest.approx(8 / 255) and t.step == pytest.approx(2 / 255)


class TestPriorGuidedPerturbation:
    def make(self, **kw):
        threat = regmix.ThreatModel("linf", 0.1, step=0.1)
        return PriorGuidedPerturbation(threat, 20, (1, 4, 4), **kw)

    def test_draws_in_the_ball_and_resets_on_schedule(self):
        prior = self.make(reset_every=3)
        prior.start_epoch(0)
        first = prior.eta.clone()
        assert first.abs().max() <= 0.1 and first.abs().max() > 0.05
        prior.start_epoch(1)
        assert torch.equal(prior.eta, first)
        prior.start_epoch(3)
        assert not torch.equal(prior.eta, first)

    def test_update_moves_only_the_given_examples_and_stays_in_ball_and_box(self):
        prior = self.make()
        prior.start_epoch(0)
        before = prior.eta.clone()
        index = torch.tensor([2, 5, 7])
        x = torch.rand(3, 1, 4, 4)
        eta = prior.initial(x, index)
        assert ((x + eta) >= 0).all() and ((x + eta) <= 1).all()
        prior.update(x, index, eta, torch.randn(3, 1, 4, 4), acc_final=0.5, acc_init=0.8)
        others = torch.ones(20, dtype=torch.bool)
        others[index] = False
        assert torch.equal(prior.eta[others], before[others])
        assert not torch.equal(prior.eta[index], before[index])
        assert prior.eta.abs().max() <= 0.1 + 1e-7
        moved = x + prior.eta[index]
        assert (moved >= -1e-7).all() and (moved <= 1 + 1e-7).all()

    def test_momentum_follows_the_formula(self):
        prior = self.make(momentum=0.5)
        prior.start_epoch(0)
        index = torch.tensor([0, 1])
        x = torch.full((2, 1, 4, 4), 0.5)
        g = torch.randn(2, 1, 4, 4)
        prior.m[index] = m_old = torch.randn(2, 1, 4, 4)
        eta = prior.initial(x, index)
        prior.update(x, index, eta, g, acc_final=0.3, acc_init=0.6)
        expected = g / g.abs().sum() * (2 - 0.5) + 0.5 * m_old
        torch.testing.assert_close(prior.m[index], expected)
        torch.testing.assert_close(prior.eta[index], (eta + 0.1 * expected.sign()).clamp(-0.1, 0.1))


def test_apgd_checkpoints_follow_the_paper():
    """Croce & Hein 2020, sec. 3.2: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [3, 5, 6, 7, 8, 9]  # ceil(2.2), ceil(4.1), ... without repeats
    assert checkpoints(1) == []


def test_dlr_loss_follows_its_formula_and_ignores_the_logits_scale():
    z = torch.tensor([[3.0, 1.0, 2.0, 0.0], [3.0, 1.0, 2.0, 0.0]])
    y = torch.tensor([0, 2])
    # -(z_y - max_{j != y} z_j) / (z_(1) - z_(3)): right with margin 1 -> -0.5; wrong by 1 -> +0.5
    assert torch.allclose(dlr_loss(z, y), torch.tensor([-0.5, 0.5]))
    assert torch.allclose(dlr_loss(5 * z + 7, y), dlr_loss(z, y))


@pytest.mark.parametrize("kind", ["ce", "dlr", "targeted"])
def test_apgd_finds_what_the_reference_apgd_finds(trained_mnist_model, kind):
    """regmix's APGD (CE, DLR) and APGD-T (3 target classes) against fra31's (pyautoattack), 20 iterations
    on the same 200 test digits: the robust accuracies agree within 4 points, and ours finds at least what
    a weaker attack finds (PGD-20 with step eps/4 on the same loss; for APGD-T, untargeted APGD-DLR)."""
    from pyautoattack.autopgd_base import APGDAttack, APGDAttack_targeted
    test = regmix.create_dataset("mnist5k", "test")
    x = torch.stack([test[i][0] for i in range(200)])
    y = torch.stack([test[i][1] for i in range(200)])
    model, threat = trained_mnist_model, regmix.ThreatModel("linf", 0.03, steps=20)

    def accuracy(attack):
        with torch.no_grad():
            return (model(attack(x, y)).argmax(1) == y).float().mean().item()
    if kind == "targeted":
        attack, weaker = APGDT(model, threat, targets=3), APGD(model, threat, loss="dlr")
        reference = APGDAttack_targeted(model, n_iter=20, eps=0.03, n_target_classes=3, seed=0, device="cpu")
    else:
        attack, weaker = APGD(model, threat, loss=kind), PGD(model, threat, loss="ce" if kind == "ce" else "cw")
        reference = APGDAttack(model, n_iter=20, eps=0.03, loss=kind, seed=0, device="cpu")
    torch.manual_seed(0)
    ours = accuracy(attack)
    theirs = accuracy(lambda a, b: reference.perturb(a, b))
    assert 0.05 < theirs < 0.9  # a setting where the attacks differ at all
    assert abs(ours - theirs) <= 0.04
    assert ours <= accuracy(weaker) + 0.02


def test_targeted_dlr_loss_follows_its_formula_and_ignores_the_logits_scale():
    z = torch.tensor([[4.0, 1.0, 3.0, 0.0, 2.0], [4.0, 1.0, 3.0, 0.0, 2.0]])
    y, target = torch.tensor([0, 2]), torch.tensor([2, 1])
    # -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2), here z_(1) - (2 + 1) / 2 = 2.5: -(4 - 3) / 2.5, -(3 - 1) / 2.5
    assert torch.allclose(targeted_dlr_loss(z, y, target), torch.tensor([-0.4, -0.8]))
    assert torch.allclose(targeted_dlr_loss(3 * z - 2, y, target), targeted_dlr_loss(z, y, target))


def test_apgd_t_aims_at_the_classes_the_clean_point_ranks_next():
    """Each run aims at the next-ranked class of the clean logits, on the still-robust points only."""
    model = small_model()
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        ranked = model(x).argsort(1, descending=True)
    y = ranked[:, 0]  # every point correctly classified to begin with
    attack = APGDT(model, regmix.ThreatModel("linf", 1e-4, steps=2), targets=3)
    aimed = []
    run_once = attack.run_once
    attack.run_once = lambda xs, ys: (aimed.append(attack._aimed.clone()), run_once(xs, ys))[1]
    x_adv = attack(x, y)
    assert [a.tolist() for a in aimed] == [ranked[:, k].tolist() for k in (1, 2, 3)]  # eps too small to fool any
    assert in_ball(x_adv, x, "linf", 1e-4) and attack._aimed is None


def test_apgd_refuses_what_it_cannot_do():
    model = small_model()
    threat = regmix.ThreatModel("linf", 0.1, steps=2)
    for kwargs in ({"loss": "cw"}, {"restarts": 0}, {"rho": 0.0}):
        with pytest.raises(ConfigError, match="attack\\."):
            APGD(model, threat, **kwargs)
    two = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 2))
    with pytest.raises(ConfigError, match="3 classes"):
        APGD(two, threat, loss="dlr")(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="attack.targets"):
        APGDT(model, threat, targets=0)
    x, y = torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ConfigError, match="attack.targets: .*got 10 targets for 10 classes"):
        APGDT(model, threat, targets=10)(x, y)
    three = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 3))
    with pytest.raises(ConfigError, match="4 classes"):
        APGDT(three, threat, targets=2)(x, y)
