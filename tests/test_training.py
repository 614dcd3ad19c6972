import json

import pytest
import torch
import yaml

import regmix
from regmix.attacks import PGD
from regmix.attacks.flags import make_loader, robust_accuracy
from regmix.registry import ConfigError
from regmix.runtime import machine
from regmix.trainer import Trainer, train

from conftest import tiny_config

TIMING = ("images_per_s", "epoch_time_s", "validation_time_s")


def metrics(run_dir):
    records = [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_run_directory_holds_everything(tmp_path):
    # AGR on (gamma 1, the default; pinned) so that every term of the method is logged
    config = tiny_config(tmp_path, "regmix", train={"epochs": 2, "ema": True})
    config.method.options = {"gamma": 1.0}
    run_dir = train(config)
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "metrics.jsonl", "best.pt", "last.pt", "status.json"}
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved == config.resolved().to_dict()  # resolved: every method default written out
    assert saved["method"]["options"]["alpha"] == regmix.methods.METHODS.get("regmix").defaults["alpha"]
    assert len(json.loads((run_dir / "run.json").read_text())["run_id"]) == 32
    records = metrics(run_dir)
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 2 and len(steps) == 2 * -(-len(regmix.create_dataset("digits", "train")) // 64)
    assert {"loss", "ce", "amr_final_init", "amr_init_final", "agr", "lr"} <= set(steps[0])
    assert {"val_clean", "val_pgd", "train_loss", "train_agr"} <= set(epochs[0])
    assert all(e["machine"] == machine("cpu") for e in epochs)  # what the epoch times were measured on
    timed = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # what an epoch costs: its training and, apart, its validation with the masking monitor (both validated)
    assert all(r["epoch_time_s"] > 0 and r["validation_time_s"] > 0 for r in timed if r["kind"] == "epoch")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"


def test_load_model_returns_the_ema_weights_in_eval_mode(tmp_path):
    run_dir = train(tiny_config(tmp_path, "pgk", train={"epochs": 1, "ema": True}))
    model = regmix.load_model(run_dir, which="last")
    state = torch.load(run_dir / "last.pt", weights_only=True)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["ema"][key])
    raw = regmix.load_model(run_dir / "last.pt", ema=False)
    assert any(not torch.equal(raw.state_dict()[k], state["ema"][k]) for k in state["ema"])


def test_adversarial_training_beats_standard_under_attack(tmp_path):
    """Four epochs on the 8x8 digits: RegMix is more robust under PGD than standard training."""
    threat = {"eps": 0.15, "step": 0.15, "steps": 5}
    results = {}
    for method in ("standard", "regmix"):
        config = tiny_config(tmp_path, method, threat=threat, train={"epochs": 4, "seed": 0})
        model = regmix.load_model(train(config), which="last")
        test = regmix.create_dataset("digits", "test")
        eval_threat = regmix.ThreatModel("linf", 0.15, step=0.015, steps=20)
        results[method] = robust_accuracy(model, make_loader(test, 400), {"pgd": lambda m: PGD(m, eval_threat)})
    assert results["standard"]["clean"] > 0.8
    assert results["regmix"]["pgd"] > results["standard"]["pgd"] + 0.15, results


class Interrupted(Exception):
    pass


def interrupt_after(trainer, steps):
    calls = {"n": 0}
    original = trainer.method.loss

    def loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > steps:
            raise Interrupted
        return original(*args, **kwargs)

    trainer.method.loss = loss


@pytest.mark.parametrize("method", ["regmix", "pgd_at"])
def test_interrupted_then_resumed_run_equals_an_uninterrupted_one(tmp_path, method):
    options = dict(train={"epochs": 3, "ema": True}, data={"augment": True},
                   schedule={"name": "cosine"}, optim={"name": "sgd", "lr": 0.05})
    whole = train(tiny_config(tmp_path / "whole", method, **options))

    config = tiny_config(tmp_path / "parts", method, **options)
    trainer = Trainer(config)
    interrupt_after(trainer, steps=int(1.5 * trainer.steps_per_epoch))  # mid-way through epoch 2
    with pytest.raises(Interrupted):
        trainer.fit()
    assert torch.load(config.run_dir / "last.pt", weights_only=True)["epoch"] == 1
    resumed = Trainer(config, resume=True)
    assert resumed.start_epoch == 1
    resumed.fit()

    a = torch.load(whole / "last.pt", weights_only=True)
    b = torch.load(config.run_dir / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"
    for key in a["method"].get("prior", {}):
        assert torch.equal(a["method"]["prior"][key], b["method"]["prior"][key])
    assert metrics(whole) == metrics(config.run_dir)


def test_a_run_directory_is_never_overwritten(tmp_path):
    config = tiny_config(tmp_path, "standard", train={"epochs": 1})
    train(config)
    with pytest.raises(ConfigError, match="pass --resume"):
        Trainer(config)
    changed = tiny_config(tmp_path, "standard", train={"epochs": 1, "seed": 5})
    with pytest.raises(ConfigError, match="different config.*seed"):
        Trainer(changed, resume=True)


def test_lr_schedules():
    from regmix.config import load_config
    from regmix.training.schedule import lr_factor
    cfg = lambda **s: load_config(data={"train": {"epochs": 10}, "schedule": s})
    assert lr_factor(cfg(name="multistep", milestones=[5, 8]), 4.9) == 1.0
    assert lr_factor(cfg(name="multistep", milestones=[5, 8]), 5.0) == pytest.approx(0.1)
    assert lr_factor(cfg(name="multistep", milestones=[5, 8]), 9.0) == pytest.approx(0.01)
    assert lr_factor(cfg(name="cosine"), 0) == pytest.approx(1.0)
    assert lr_factor(cfg(name="cosine"), 5) == pytest.approx(0.5)
    assert lr_factor(cfg(name="cyclic"), 5) == pytest.approx(1.0)
    assert lr_factor(cfg(name="cyclic"), 2.5) == pytest.approx(0.5)
    assert lr_factor(cfg(name="constant", warmup_epochs=2), 1.0) == pytest.approx(0.5)


def test_every_metrics_record_also_goes_to_the_configured_loggers(tmp_path, monkeypatch):
    seen = {"records": [], "closed": 0, "names": None}

    class Fake:
        def log(self, record):
            seen["records"].append(record)

        def close(self):
            seen["closed"] += 1

    def create_loggers(names, run_dir, start_step=None):
        seen["names"] = (list(names), run_dir)
        return [Fake()]

    # the trainer's two uses of regmix.loggers, where they are imported (no TensorBoard needed)
    monkeypatch.setattr("regmix.training.metrics_log.create_loggers", create_loggers)
    monkeypatch.setattr("regmix.training.claim.start_check", lambda names: list(names))
    config = tiny_config(tmp_path, "standard", train={"epochs": 1, "loggers": ["tensorboard"]})
    run_dir = train(config)
    assert seen["names"] == (["tensorboard"], run_dir)
    assert seen["records"] == [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert seen["closed"] == 1


def test_finetune_trains_a_copy_and_the_comparison_has_its_control(tmp_path):
    """regmix.training.finetune: the given model untouched, the same batches for the same seed;
    regmix.diagnostics.finetune_comparison: the chosen weights beside the run's own, accuracy before
    and after on the same fixed validation points."""
    from regmix.diagnostics.compute import fixed_subset
    from regmix.diagnostics.finetune import finetune_comparison
    from regmix.sources import load_source
    from regmix.registry import ConfigError
    from regmix.training.finetune import finetune
    run = train(tiny_config(tmp_path, "regmix", train={"epochs": 1, "progress": False}, eval={"max_points": 32}))
    source = load_source(run, device="cpu")
    model, config = source.model, source.config
    original = {k: v.clone() for k, v in model.state_dict().items()}
    a, losses_a, _ = finetune(model, config, {"alpha": 2.0}, steps=2, batch_size=16)
    b, losses_b, _ = finetune(model, config, {"alpha": 2.0}, steps=2, batch_size=16)
    assert len(losses_a) == 2 and losses_a == losses_b                     # same seed: same batches
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
    assert any(not torch.equal(original[k], v) for k, v in a.state_dict().items())
    with pytest.raises(ConfigError, match="steps"):
        finetune(model, config, {}, steps=0)
    x1, _ = fixed_subset(config, "val", 8)
    x2, _ = fixed_subset(config, "val", 8)
    assert torch.equal(x1, x2)
    seen = []
    c = finetune_comparison(model, config, {"alpha": 2.0, "beta": 0.5}, steps=2, n=8, attack="pgd2", batch_size=16,
                            on_step=lambda s, total, loss: seen.append((s, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert len(c["losses"]) == len(c["control_losses"]) == 2
    assert c["own"] == {"alpha": config.method.options["alpha"], "beta": config.method.options["beta"]}
    for key in ("before", "after", "control"):
        assert set(c[key]) == {"clean", "pgd2"} and all(0 <= v <= 1 for v in c[key].values())
