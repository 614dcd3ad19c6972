"""train.fast (data on the device, a whole step with no host read; on CUDA a captured step) against the
DataLoader path, on the CPU in float32: the same losses, weights, EMA and metrics, step for step."""
import pytest
import torch

from regmix.data.base import random_crop_flip
from regmix.registry import ConfigError
from regmix.trainer import Trainer, train
from regmix.training.errors import TrainingDiverged
from regmix.training.device_data import crop_flip
from regmix.training.schedule import make_optimizer
from regmix.training.step import DeviceStep

from conftest import tiny_config
from same_run import assert_resumes_exactly, assert_same_tensors, metrics_without_timing

METHODS = ["standard", "pgd_at", "fgsm_rs", "trades", "mart", "pgk", "regmix"]


def _options(**train_options):  # noqa: D103
    return dict(train={"epochs": 1, "ema": True, "log_every": 1, **train_options},
                optim={"name": "sgd", "lr": 0.05}, schedule={"name": "cosine"})


def _loader_run(config, fused):
    """The DataLoader path; `fused`: with the fused optimiser train.fast's step uses (and its schedule)."""
    trainer = Trainer(config)
    if fused:
        trainer.optimizer = make_optimizer(config, trainer.model.parameters(), fused=True)
        trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, trainer.scheduler.lr_lambdas[0])
    trainer.fit()
    return config.run_dir


def _gated(method):
    return dict(ema_gate=0.82, ema_buffers="average") if method in ("pgk", "regmix") else {}


@pytest.mark.parametrize("method", METHODS)
def test_fast_step_gives_the_loader_paths_losses_and_weights(tmp_path, method):
    """With the same (fused) optimiser: bit for bit. The step's learning rate is a device tensor filled
    from the schedule, the EMA's decay is computed on the device, both inside the step."""
    loader = _loader_run(tiny_config(tmp_path / "loader", method, **_options(**_gated(method))), fused=True)
    fast = train(tiny_config(tmp_path / "fast", method, **_options(fast=True, **_gated(method))))
    a = torch.load(loader / "last.pt", weights_only=True)
    b = torch.load(fast / "last.pt", weights_only=True)
    for part in ("model", "ema", "ema_updates", "optimizer", "scheduler", "method", "step"):
        assert_same_tensors(a[part], b[part], part)
    steps = [r for r in metrics_without_timing(loader) if r["kind"] == "step"]
    assert len(steps) > 10 and {"loss", "lr"} <= set(steps[0]) and isinstance(steps[0]["lr"], float)
    assert metrics_without_timing(loader) == metrics_without_timing(fast)


@pytest.mark.parametrize("method, optim", [("regmix", "sgd"), ("regmix", "adam")])
def test_fast_step_stays_within_float32_rounding_of_the_multi_tensor_optimiser(tmp_path, method, optim):
    """Against today's loader path (torch's foreach SGD / Adam) the fused kernel rounds differently in the
    last bits; over an epoch of steps the weights and losses stay together to float32 rounding."""
    options = _options(**_gated(method))
    options["optim"] = {"name": optim, "lr": 0.05 if optim == "sgd" else 0.002}
    loader = _loader_run(tiny_config(tmp_path / "loader", method, **options), fused=False)
    options["train"]["fast"] = True
    fast = train(tiny_config(tmp_path / "fast", method, **options))
    a = torch.load(loader / "last.pt", weights_only=True)
    b = torch.load(fast / "last.pt", weights_only=True)
    for part in ("model", "ema"):
        for key, value in a[part].items():
            if value.is_floating_point():
                assert torch.allclose(value, b[part][key], rtol=1e-4, atol=1e-5), (part, key)
    assert a["ema_updates"] == b["ema_updates"] == b["step"] > 10
    assert not a["optimizer"]["param_groups"][0]["fused"] and b["optimizer"]["param_groups"][0]["fused"]
    losses = lambda d: [r["loss"] for r in metrics_without_timing(d) if r["kind"] == "step"]  # noqa: E731
    assert losses(loader) == pytest.approx(losses(fast), rel=1e-4, abs=1e-5)


def test_the_device_step_refuses_an_optimiser_that_reads_a_number():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="^optimizer: the device step needs a fused optimiser"):
        DeviceStep(model, None, torch.optim.SGD(model.parameters(), lr=0.1))


def test_a_fast_run_interrupted_and_resumed_equals_one_never_stopped(tmp_path, monkeypatch):
    """With the augmentation on the device (its draws seeded by the epoch alone), killed in the middle of
    the second epoch, resumed from the checkpoint before it (one every 3 steps)."""
    options = _options(fast=True, epochs=3, checkpoint_every=3, ema_gate=0.82, ema_buffers="average")
    options["data"] = {"augment": True}
    config = lambda root: tiny_config(root, "regmix", **options)  # noqa: E731
    probe = Trainer(config(tmp_path / "probe"))
    stop_at = int(1.5 * probe.steps_per_epoch) + 1
    probe.close()
    assert stop_at % 3  # the kill falls between two checkpoints: the resumed run repeats steps
    assert_resumes_exactly(config, tmp_path, monkeypatch, step=stop_at)


def test_device_crop_and_flip_equal_the_per_example_augmentation():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8, 8)
    top, left = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([4, 3, 2, 1, 0, 2])
    flip = torch.tensor([True, False, True, False, True, False])
    out = crop_flip(x, top, left, flip, padding=2)

    def one(i):  # random_crop_flip with its draws fixed to (top, left, flip)
        draws = iter([torch.tensor([int(top[i]), int(left[i])]), torch.tensor(0.0 if flip[i] else 0.9)])
        original_randint, original_rand = torch.randint, torch.rand
        torch.randint, torch.rand = (lambda *a, **k: next(draws)), (lambda *a, **k: next(draws))
        try:
            return random_crop_flip(x[i], 2, True)
        finally:
            torch.randint, torch.rand = original_randint, original_rand

    for i in range(len(x)):
        assert torch.equal(out[i], one(i)), i


def test_device_augmentation_draws_every_offset_and_both_flips():
    from regmix.data.base import ImageTensorDataset
    from regmix.data.sampler import EpochSampler
    from regmix.training.device_data import DeviceBatches
    images = torch.randint(0, 256, (400, 3, 8, 8), dtype=torch.uint8)
    ds = ImageTensorDataset(images, torch.arange(400) % 10, name="fake", num_classes=10, mean=(0.5,) * 3,
                            std=(0.25,) * 3, augment=True, crop_padding=2, flip=True)
    batches = DeviceBatches(ds, EpochSampler(len(ds), 64, seed=0), "cpu", seed=0)
    batches.set_epoch(0)
    top, left, flip = batches.draws
    assert set(top.tolist()) == set(range(5)) == set(left.tolist())
    assert 0.4 < flip.float().mean() < 0.6
    x, y, index = batches.batch(1)
    assert x.shape == (64, 3, 8, 8) and x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(y, ds.labels[index])
    first = batches.draws
    batches.set_epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(first, batches.draws))  # seeded by the epoch alone
    batches.set_epoch(1)
    assert not torch.equal(first[0], batches.draws[0])


def test_fast_refuses_skipping_non_finite_steps(tmp_path):
    with pytest.raises(ConfigError, match="train.on_nonfinite"):
        tiny_config(tmp_path, "standard", train={"fast": True, "on_nonfinite": "skip"})


def test_a_non_finite_loss_stops_a_fast_run_at_the_next_read(tmp_path):
    config = tiny_config(tmp_path, "standard", train={"fast": True, "log_every": 4, "epochs": 1})
    trainer = Trainer(config)
    original = trainer.method.loss
    calls = {"n": 0}

    def loss(*args, **kwargs):
        calls["n"] += 1
        total, terms = original(*args, **kwargs)
        return (total * float("nan"), terms) if calls["n"] == 2 else (total, terms)

    trainer.method.loss = loss
    with pytest.raises(TrainingDiverged, match=r"not finite at 3 step\(s\) up to step 4"):  # steps 2-4: NaN weights after 2
        trainer.fit()
    assert calls["n"] == 4  # read at the log interval, not at the bad step
    assert not (config.run_dir / "best.pt").exists()


class HostRead(AssertionError):
    pass


def _refuse_host_reads(monkeypatch):
    """Every Python-level way of reading a tensor's value back to the host raises: what a CUDA graph
    capture refuses (and what makes an eager GPU step wait)."""
    def refuse(name):
        def read(self, *args, **kwargs):
            raise HostRead(f"Tensor.{name} inside the step")
        return read
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "nonzero", "numpy", "cpu",
                 "new_tensor"):
        monkeypatch.setattr(torch.Tensor, name, refuse(name))
    # nor is a tensor made from host data (on a GPU a copy from pageable memory, which a capture refuses)
    as_tensor = torch.as_tensor

    def from_tensor_only(data, *args, **kwargs):
        if not isinstance(data, torch.Tensor):
            raise HostRead("torch.as_tensor of host data inside the step")
        return as_tensor(data, *args, **kwargs)
    def made_from_host(name):
        def make(*args, **kwargs):
            raise HostRead(f"{name} inside the step")
        return make
    monkeypatch.setattr(torch, "tensor", made_from_host("torch.tensor"))
    monkeypatch.setattr(torch, "as_tensor", from_tensor_only)
    monkeypatch.setattr(torch, "from_numpy", made_from_host("torch.from_numpy"))


@pytest.mark.parametrize("method", METHODS)
def test_the_fast_step_never_reads_the_device(tmp_path, monkeypatch, method):
    """The whole step of every method (attack, loss, backward, fused optimiser, EMA, the prior's update)
    runs with every host read refused, so on CUDA it can be captured as a graph."""
    config = tiny_config(tmp_path, method, **_options(fast=True, ema_gate=0.82 if method in ("pgk", "regmix") else None,
                                                      ema_buffers="average"))
    trainer = Trainer(config)
    trainer.method.start_epoch(0)
    trainer.device_batches.set_epoch(0)
    trainer.device_step.reset({}, 0, "cpu")
    batches = [trainer.device_batches.batch(b) for b in range(3)]
    trainer.device_step(*batches[0])  # the first step learns the terms' names (on CUDA: an eager warm-up step)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    with monkeypatch.context() as m:
        _refuse_host_reads(m)
        for x, y, index in batches[1:]:
            trainer.device_step(x, y, index)
    assert trainer.ema.updates == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))  # the optimiser stepped
    sums, seen, bad = trainer.device_step.read()
    assert seen == sum(len(y) for _, y, _ in batches) and bad == 0 and sums["loss"] > 0
    trainer.close()
