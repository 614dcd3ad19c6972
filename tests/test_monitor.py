"""The masking monitor (regmix/training/monitor.py): a model engineered to mask is flagged and a healthy
one is not; eval.select = strong and train.stop_on_overfit follow what the epoch records say."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import regmix
from regmix.attacks import PGD
from regmix.attacks.flags import robust_flags, stack
from regmix.rundir import RunDir
from regmix.trainer import Trainer, train
from regmix.config import MONITOR_ATTACKS
from regmix.training.monitor import masking_history, monitor_flags, monitor_record, overfit, strong_attacks

from conftest import tiny_config
from same_run import assert_resumes_exactly


class Linear(torch.nn.Module):
    """A linear classifier; `scale` multiplies its logits. At scale 1e4 the softmax saturates: the
    cross-entropy's gradient is exactly 0 at every confidently classified point (PGD-CE and FGSM cannot
    move), while the CW margin's is not."""

    def __init__(self, scale=1.0):
        super().__init__()
        self.fc, self.scale = torch.nn.Linear(64, 10), scale

    def forward(self, x):
        return self.scale * self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def digits_linear():
    x, y = stack(DataLoader(regmix.create_dataset("digits", "train"), batch_size=2000))
    xv, yv = stack(DataLoader(regmix.create_dataset("digits", "val"), batch_size=2000))
    torch.manual_seed(0)
    model = Linear()
    optimizer = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(100):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, xv, yv


def monitor(model, x, y, eps=0.05, attack="pgd"):
    threat = regmix.ThreatModel("linf", eps, steps=10)
    torch.manual_seed(1)
    flags = robust_flags(model, x, y, {"pgd": lambda m: PGD(m, threat)})
    mon = monitor_flags(model, x, y, flags["clean"], flags["pgd"], threat, steps=20, restarts=1, device="cpu",
                        batch_size=500, attack=attack)
    return monitor_record({k: v.float().mean().item() for k, v in mon.items()}, threshold=0.1)


def test_the_strong_attack_is_the_pair_eval_monitor_attack_names():
    threat = regmix.ThreatModel("linf", 0.1, steps=10)
    pairs = {name: [(type(a).__name__, a.loss, a.threat.steps, a.restarts)
                    for a in strong_attacks(Linear(), threat, name, steps=20, restarts=2)] for name in MONITOR_ATTACKS}
    assert pairs == {"pgd": [("PGD", "ce", 20, 2), ("PGD", "cw", 20, 2)],
                     "apgd": [("APGD", "ce", 20, 2), ("APGD", "dlr", 20, 2)],
                     "apgd_t": [("APGD", "ce", 20, 2), ("APGDT", "dlr", 20, 2)]}
    assert strong_attacks(Linear(), threat, "apgd_t", steps=20, restarts=2)[1].targets == 3


@pytest.mark.parametrize("attack", MONITOR_ATTACKS)
def test_a_saturated_model_is_flagged_and_a_healthy_one_is_not(digits_linear, attack):
    """Either strong attack (eval.monitor_attack) has a loss whose gradient survives the saturation: the
    CW margin (pgd) or the DLR loss (apgd, and its targeted form in apgd_t)."""
    model, x, y = digits_linear
    healthy = monitor(model, x, y, attack=attack)
    assert healthy["val_monitor_flagged"] == 0.0 and "masking_warning" not in healthy
    assert healthy["val_monitor_pgd_gap"] < 0.05 and healthy["val_monitor_pgd"] < 0.9  # a real attack bites
    model.scale = 1e4  # same decisions, same true robustness: only the gradients of the CE vanish
    try:
        masked = monitor(model, x, y, attack=attack)
    finally:
        model.scale = 1.0
    assert masked["val_monitor_flagged"] == 1.0 and "gradient masking" in masked["masking_warning"]
    assert masked["val_monitor_pgd"] > healthy["val_monitor_pgd"] + 0.1        # PGD-10 is fooled ...
    assert masked["val_monitor_strong"] == pytest.approx(healthy["val_monitor_strong"], abs=0.03)  # ... the margin is not


def test_a_gap_of_exactly_the_threshold_is_not_above_it_whatever_the_float_subtraction_gives():
    # on 200 points, 0.14 - 0.06 is 16 points' shares, exactly 0.08; the float subtraction gives 0.0800...01
    assert 0.14 - 0.06 > 0.08 and 0.275 - 0.175 > 0.1  # the noise this guards against
    at = monitor_record({"pgd": 0.14, "strong": 0.06, "fgsm": 0.14}, threshold=0.08)
    assert at["val_monitor_pgd_gap"] == 0.08 and at["val_monitor_flagged"] == 0.0
    assert monitor_record({"pgd": 0.14, "strong": 0.055, "fgsm": 0.14}, threshold=0.08)["val_monitor_flagged"] == 1.0
    # the overfitting rule's two gaps alike: FGSM 10 points above PGD-10, PGD-10 10 points below its best
    edge = monitor_record({"pgd": 0.175, "strong": 0.175, "fgsm": 0.275}, threshold=0.1, peak=0.275)
    assert edge["val_monitor_fgsm_gap"] == 0.1 and edge["val_monitor_pgd_drop"] == 0.1 and not overfit(edge)
    assert overfit(monitor_record({"pgd": 0.175, "strong": 0.175, "fgsm": 0.28}, threshold=0.1, peak=0.28))


def test_the_fgsm_gap_with_a_pgd_collapse_is_the_overfitting_signature():
    record = monitor_record({"pgd": 0.05, "strong": 0.04, "fgsm": 0.80}, threshold=0.1, peak=0.60)
    assert record["val_monitor_fgsm_gap"] == pytest.approx(0.75) and record["val_monitor_pgd_drop"] == pytest.approx(0.55)
    assert overfit(record) and record["val_monitor_flagged"] == 1.0
    assert "catastrophic overfitting" in record["masking_warning"] and "gradient masking" not in record["masking_warning"]
    # the same gap in a model that never was robust (PGD never higher): nothing collapsed, nothing flagged
    never = monitor_record({"pgd": 0.05, "strong": 0.04, "fgsm": 0.80}, threshold=0.1, peak=0.05)
    assert not overfit(never) and never["val_monitor_flagged"] == 0.0
    # a healthy robust model's FGSM gap (the mnist5k study's RegMix seed 0, epoch 15: 92.0 vs 81.5, PGD-10 at
    # its best so far) is not a flag: the first form of the monitor, which flagged the gap alone, cried wolf
    healthy = monitor_record({"pgd": 0.815, "strong": 0.775, "fgsm": 0.92}, threshold=0.1, peak=0.815)
    assert healthy["val_monitor_fgsm_gap"] > 0.1 and healthy["val_monitor_flagged"] == 0.0
    calm = monitor_record({"pgd": 0.60, "strong": 0.55, "fgsm": 0.65}, threshold=0.1, peak=0.9)
    assert not overfit(calm) and calm["val_monitor_flagged"] == 0.0  # a drop without the FGSM gap
    # during the eps warm-up the numbers are recorded but nothing is flagged
    early = monitor_record({"pgd": 0.05, "strong": 0.04, "fgsm": 0.80}, threshold=0.1, armed=False, peak=0.6)
    assert early["val_monitor_fgsm_gap"] == pytest.approx(0.75) and early["val_monitor_flagged"] == 0.0
    assert "masking_warning" not in early and not overfit(early)
    assert masking_history([{"epoch": 0, **calm}, {"epoch": 3, **record}]) == [
        {"epoch": 4, "warning": record["masking_warning"]}]


# scripted validation records, one per epoch: (clean, pgd, strong, fgsm)
SCRIPT = [(0.9, 0.50, 0.45, 0.55),
          (0.9, 0.70, 0.40, 0.72),   # PGD-10 at its best, but masked: the strong attack finds 0.40
          (0.9, 0.60, 0.55, 0.62),   # the best under the strong attack
          (0.9, 0.10, 0.08, 0.80),   # catastrophic overfitting: FGSM high, PGD collapsed
          (0.9, 0.65, 0.60, 0.66)]


def scripted(self, epoch):
    clean, pgd, strong, fgsm = SCRIPT[epoch]
    armed = epoch + 1 >= self.config.train.eps_warmup_epochs
    return {"val_clean": clean, "val_pgd": pgd,
            **monitor_record({"pgd": pgd, "strong": strong, "fgsm": fgsm}, self.config.eval.masking_threshold, armed,
                             peak=self.best.get("monitor_pgd_peak"))}


def scripted_run(tmp_path, monkeypatch, name, select="pgd", **train_options):
    monkeypatch.setattr(Trainer, "validate", scripted)
    config = tiny_config(tmp_path, "standard", name=name, data={"batch_size": 512}, eval={"select": select},
                         train={"epochs": len(SCRIPT), **train_options})
    return config, train(config)


@pytest.mark.parametrize("select, epoch", [("pgd", 2), ("strong", 5)])
def test_select_chooses_best_on_pgd_or_on_the_strong_attack(tmp_path, monkeypatch, select, epoch):
    _, run = scripted_run(tmp_path, monkeypatch, select, select=select)
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["epoch"] == epoch
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "complete" and status["best"]["epoch"] == epoch
    assert [m["epoch"] for m in status["masking"]] == [2, 4]  # every flagged epoch, with its warning


def test_stop_on_overfit_ends_the_run_at_the_flagged_epoch_and_stays_stopped(tmp_path, monkeypatch, capsys):
    config, run = scripted_run(tmp_path, monkeypatch, "stop", stop_on_overfit=True)
    epochs = [r["epoch"] for r in RunDir(run).metrics("epoch")]
    assert epochs == [0, 1, 2, 3]  # epoch 4 (index 3) flagged, epoch 5 never trained
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "complete" and status["best"]["stopped_on_overfit"] == 4
    assert status["best"]["epoch"] == 2
    assert "stopped after epoch 4 (train.stop_on_overfit)" in capsys.readouterr().out
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["complete"] and last["epoch"] == 4
    Trainer(config, resume=True).fit()  # a resumed stopped run trains nothing more
    assert [r["epoch"] for r in RunDir(run).metrics("epoch")] == [0, 1, 2, 3]


def test_nothing_is_flagged_or_stopped_during_the_eps_warm_up(tmp_path, monkeypatch):
    # warm-up over 4 epochs: epochs 1-3 trained below the full eps; epoch 4 (the collapse) is at full eps
    _, run = scripted_run(tmp_path, monkeypatch, "warm", stop_on_overfit=True, eps_warmup_epochs=5)
    status = json.loads((run / "status.json").read_text())
    assert "masking" not in status and "stopped_on_overfit" not in status["best"]
    assert len(RunDir(run).metrics("epoch")) == len(SCRIPT)


def test_without_the_option_training_goes_on_through_the_flag(tmp_path, monkeypatch):
    _, run = scripted_run(tmp_path, monkeypatch, "go_on")
    assert [r["epoch"] for r in RunDir(run).metrics("epoch")] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("attack", MONITOR_ATTACKS)
def test_the_monitor_runs_in_training_and_resumes_exactly(tmp_path, monkeypatch, attack):
    def config(root):
        return tiny_config(root, "fgsm_rs", data={"batch_size": 256}, eval={"steps": 2, "monitor_points": 64,
                                                                             "monitor_steps": 3,
                                                                             "monitor_attack": attack},
                           train={"epochs": 2, "checkpoint_every": 3})
    whole = assert_resumes_exactly(config, tmp_path, monkeypatch, step=5)
    record = RunDir(whole).metrics("epoch")[-1]
    assert {"val_monitor_pgd", "val_monitor_strong", "val_monitor_fgsm", "val_monitor_pgd_gap",
            "val_monitor_fgsm_gap", "val_monitor_flagged"} <= set(record)
    assert record["val_monitor_strong"] <= record["val_monitor_pgd"]


def test_monitor_every_runs_the_monitor_at_its_epochs_and_the_last_leaving_validation_as_it_was(tmp_path):
    """eval.monitor_every = 2 over 3 epochs: the monitor at epochs 2 and 3 (the last) only; validation
    PGD-10 and the weights are those of a run monitored every epoch (the monitor draws after PGD-10)."""
    def run(name, every):
        return train(tiny_config(tmp_path, "fgsm_rs", name=name, data={"batch_size": 256},
                                 eval={"steps": 2, "monitor_points": 64, "monitor_steps": 3, "monitor_every": every},
                                 train={"epochs": 3}))
    every, sparse = RunDir(run("every", 1)).metrics("epoch"), RunDir(run("sparse", 2)).metrics("epoch")
    assert [("val_monitor_pgd" in r) for r in sparse] == [False, True, True]
    assert [r["val_pgd"] for r in sparse] == [r["val_pgd"] for r in every]
    assert [r["val_monitor_pgd_gap"] for r in sparse[1:]] == [r["val_monitor_pgd_gap"] for r in every[1:]]
    a, b = (torch.load(tmp_path / n / "last.pt", weights_only=True)["model"] for n in ("every", "sparse"))
    assert all(torch.equal(a[k], b[k]) for k in a)
