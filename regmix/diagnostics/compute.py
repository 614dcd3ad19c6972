"""Run directory in, record out: what `regmix landscape` and `regmix figures` compute.

Records go to RUN_DIR/diagnostics/ by default:
  landscape_weight.npz   2D weight-space surface (clean and adversarial), sharpness, Hessian eigenvalue
  landscape_input.npz    per-example input-space surfaces
  interp_<OTHER>.npz     1D interpolation from this run's checkpoint to OTHER's
  softmax.npz            clean / initial / final adversarial distributions against the truth
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..attacks.specs import attack_factory, parse_attack
from ..checks import MAX_GRID, MAX_ITERS, MAX_POINTS, check_number
from ..data import create_dataset
from ..methods import METHODS, prior_start, resolved_options
from ..registry import ConfigError
from ..rundir import RunDir
from ..runtime import resolve_device
from ..sources import check_fits, load_source, source_home
from . import landscape as L
from .hessian import hessian_spectrum
from .records import save_record
from .softmax import softmax_record

KINDS = ("weight", "input", "interp")


def default_path(run_dir, kind: str, other=None) -> Path:
    """Where the record of `kind` (weight, input, interp with `other`, softmax) of a run is cached: its
    diagnostics folder (for a model that has no run, that of runs/external/<name>: sources.source_home)."""
    run = RunDir(source_home(run_dir))
    if kind == "interp":
        return run.diagnostic(f"interp_{source_home(other).name}")
    if kind == "softmax":
        return run.diagnostic("softmax")
    return run.diagnostic(f"landscape_{kind}")


def fixed_subset(config, split: str = "test", n: int = 512, *, data_dir=None, model=None):
    """The first n points of a split (a fixed subset: the same points for every run and every call).
    model: checked against them (classes, input shape: sources.check_fits) before any work."""
    if n < 1:
        raise ConfigError(f"n: must be an integer >= 1, got {n}")
    ds = create_dataset(config.data.name, split, data_dir or config.data.data_dir, augment=False,
                        val_size=config.data.val_size)
    n = min(n, len(ds))
    xs, ys = zip(*(ds[i] for i in range(n)))
    x, y = torch.stack(xs), torch.as_tensor([int(v) for v in ys])
    if model is not None:
        check_fits(model, x, ds.num_classes)
    return x, y


# the largest value of each size argument: every grid, subset and iteration count is bounded work
LIMITS = {"grid": MAX_GRID, "steps": MAX_GRID, "n": MAX_POINTS, "examples": MAX_POINTS, "hessian_iters": MAX_ITERS}


def check_int(name: str, value, minimum: int) -> None:
    """An integer argument `name` in [minimum, LIMITS[name]], or one line naming the argument (the CLI
    maps it to its flag)."""
    maximum = LIMITS.get(name, MAX_ITERS)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    check_number(name, value, minimum, maximum, integer=True)


def check_span(span) -> None:
    """A landscape's half-width: a finite number in (0, 1000]."""
    check_number("span", span, 0, 1000, lo_open=True)


def _base_meta(run_dir, config, which, split, n, device, attack):
    # method options with every default filled in: the effective values, also for a run written before
    # config.yaml recorded them
    external = config.method.name not in METHODS  # a model regmix did not train (sources.py)
    options = {} if external else resolved_options(config.method.name, config.method.options,
                                                   config.training_threat())
    home = source_home(run_dir)
    return {"run_dir": str(home), "run": home.name, "method": config.method.name,
            "method_options": options, "model": config.model.name,
            "dataset": config.data.name,
            "checkpoint": which, "split": split, "n": n, "device": str(device), "attack": attack,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


def weight_landscape_record(run_dir, *, grid=21, span=1.0, n=512, attack="pgd10", seed=0, split="test",
                            which="best", include_bias_bn=False, hessian_iters=20, eps=None, device="auto",
                            out=None, data_dir=None, progress=None) -> Path:
    check_int("grid", grid, 2)
    check_int("hessian_iters", hessian_iters, 0)
    check_span(span)
    parse_attack(attack, "attack")  # a bad name fails before the model is loaded
    start = time.time()
    device = resolve_device(device)
    source = load_source(run_dir, which=which, device=device)
    model, config = source.model, source.config
    x, y = fixed_subset(config, split, n, data_dir=data_dir, model=model)
    threat = config.eval_threat(eps)
    factory = attack_factory(attack, threat)
    surface = L.weight_landscape(model, x, y, grid=grid, span=span, seed=seed, include_bias_bn=include_bias_bn,
                                 attack=factory, progress=progress)
    meta = _base_meta(run_dir, config, which, split, len(y), device, attack)
    meta.update(kind_detail="weight", grid=grid, span=span, seed=seed, include_bias_bn=include_bias_bn,
                eps=threat.eps, directions="gaussian, filter-normalised (Li et al. 2018)",
                sharpness={"clean": L.surface_sharpness(surface["coords"], surface["loss"])})
    if factory is not None:
        meta["sharpness"]["adv"] = L.surface_sharpness(surface["coords"], surface["adv_loss"])
    if hessian_iters:
        # beside the top eigenvalue: the trace (Hutchinson, hessian_iters samples) and the eigenvalue
        # density (stochastic Lanczos quadrature, hessian_iters steps from two vectors)
        spectrum = dict(samples=hessian_iters, steps=hessian_iters, runs=2, seed=seed)
        meta["hessian"] = {"clean": L.hessian_top_eigenvalue(model, x, y, iters=hessian_iters, seed=seed)}
        meta["hessian_spectrum"] = {"clean": hessian_spectrum(model, x, y, **spectrum)}
        if factory is not None:
            x_adv = factory(model)(x.to(device), y.to(device))
            meta["hessian"]["adv"] = L.hessian_top_eigenvalue(model, x_adv, y, iters=hessian_iters, seed=seed)
            meta["hessian_spectrum"]["adv"] = hessian_spectrum(model, x_adv, y, **spectrum)
    meta["wall_s"] = round(time.time() - start, 2)
    return save_record(out or default_path(run_dir, "weight"), "landscape_weight", surface, meta)


def input_landscape_record(run_dir, *, grid=21, span=2.0, examples=8, seed=0, split="test", which="best",
                           eps=None, device="auto", out=None, data_dir=None) -> Path:
    check_int("grid", grid, 2)
    check_int("examples", examples, 1)
    check_span(span)
    start = time.time()
    device = resolve_device(device)
    source = load_source(run_dir, which=which, device=device)
    model, config = source.model, source.config
    x, y = fixed_subset(config, split, examples, data_dir=data_dir, model=model)
    threat = config.eval_threat(eps)
    surface = L.input_landscape(model, x, y, eps=threat.eps, grid=grid, span=span, seed=seed)
    meta = _base_meta(run_dir, config, which, split, len(y), device, "fgsm-direction")
    sharp = [L.surface_sharpness(surface["coords"], s) for s in surface["loss"]]
    meta.update(grid=grid, span=span, seed=seed, eps=threat.eps, sharpness=sharp,
                sharpness_mean={k: float(sum(s[k] for s in sharp) / len(sharp))
                                for k in ("max_rise", "mean_rise", "curvature", "basin")},
                wall_s=round(time.time() - start, 2))
    return save_record(out or default_path(run_dir, "input"), "landscape_input", surface, meta)


def interp_record(run_dir, other, *, steps=21, t_min=-0.5, t_max=1.5, n=512, attack="pgd10", seed=0,
                  split="test", which="best", eps=None, device="auto", out=None, data_dir=None,
                  progress=None) -> Path:
    if other is None:
        raise ConfigError("other: interpolation needs a second run directory")
    check_int("steps", steps, 2)
    parse_attack(attack, "attack")
    start = time.time()
    device = resolve_device(device)
    source_a = load_source(run_dir, which=which, device=device)
    source_b = load_source(other, which=which, device=device)
    model_a, config, model_b, config_b = source_a.model, source_a.config, source_b.model, source_b.config
    if config_b.data.name != config.data.name:
        raise ConfigError(f"other: {other} was trained on {config_b.data.name}, {run_dir} on {config.data.name}")
    x, y = fixed_subset(config, split, n, data_dir=data_dir, model=model_a)
    fixed_subset(config, split, 1, data_dir=data_dir, model=model_b)
    threat = config.eval_threat(eps)
    line = L.interpolate_models(model_a, model_b, x, y, steps=steps, t_min=t_min, t_max=t_max,
                                attack=attack_factory(attack, threat), seed=seed, progress=progress)
    meta = _base_meta(run_dir, config, which, split, len(y), device, attack)
    meta.update(other=str(other), other_run=Path(other).name, other_method=config_b.method.name, eps=threat.eps,
                steps=steps, wall_s=round(time.time() - start, 2))
    return save_record(out or default_path(run_dir, "interp", other), "interp", line, meta)


def softmax_run_record(run_dir, *, n=512, final_steps=1, seed=0, split="test", which="best", eps=None,
                       device="auto", out=None, data_dir=None) -> Path:
    """The run's training attack shape: d_init drawn as the run's prior starts (method option
    prior_init: FGSM-PGK's +-eps corners by default for pgk and regmix; uniform in the ball for methods
    without a prior), then final_steps sign steps of the training step (scaled to eps when eps is
    overridden)."""
    device = resolve_device(device)
    source = load_source(run_dir, which=which, device=device)
    model, config = source.model, source.config
    x, y = fixed_subset(config, split, n, data_dir=data_dir, model=model)
    threat = config.training_threat()
    if eps is not None:
        threat = threat.with_(eps=eps, step=threat.step * eps / threat.eps if threat.eps else eps)
    start = prior_start(config)
    arrays, meta = softmax_record(model, x, y, threat, final_steps=final_steps, seed=seed, start=start)
    meta.update(_base_meta(run_dir, config, which, split, len(y), device,
                           f"d_init ({start}) + {final_steps} sign step(s)"))
    return save_record(out or default_path(run_dir, "softmax"), "softmax", arrays, meta)
