"""`regmix eval`: a trained model against the evaluation attacks, sanity checks, one JSON record.

Every argument is checked, and every attack built, before the first forward pass: a bad value costs
one line, not a clean pass. Errors name the argument (`n`, `eps`, `step`, `restarts`, `attacks`, ...);
the command maps them to its flags.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Optional

import numpy as np
import torch

from ..attacks.flags import attack_flags, clean_flags
from ..attacks.specs import parse_attacks
from ..checks import MAX_BATCH, MAX_POINTS, MAX_RESTARTS, check_number
from ..data import create_dataset
from ..files import atomic_write
from ..methods import resolved_options
from ..registry import ConfigError
from ..rundir import RunDir
from ..sources import check_fits, load_source
from ..threat import parse_number
from .records import VERSION, environment, flags_key, record_stem, save_record
from .sanity import check_accuracies, probe

SPLITS = ("test", "val")


def _whole(value, name, low=1, high=MAX_POINTS):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}: must be an integer >= {low}, got {value!r}")
    return check_number(name, value, low, high, integer=True)


def check_arguments(*, n, eps, step, restarts, batch_size, which, split, seed, sanity_n):
    """The checks that need no model or data; (eps, step) parsed to numbers or None. Every count is
    bounded (checks.py): a typo never starts an evaluation that cannot end."""
    if n is not None:
        _whole(n, "n")
    _whole(restarts, "restarts", high=MAX_RESTARTS)
    _whole(batch_size, "batch_size", high=MAX_BATCH)
    _whole(sanity_n, "sanity_n")
    _whole(seed, "seed", low=0, high=2 ** 31 - 1)
    if which not in ("best", "last"):
        raise ConfigError(f"which: must be 'best' or 'last', got {which!r}")
    if split not in SPLITS:
        raise ConfigError(f"split: must be one of {', '.join(SPLITS)}, got {split!r}")
    eps = None if eps is None else parse_number(eps, "eps")
    if eps is not None and eps < 0:
        raise ConfigError(f"eps: must be >= 0, got {eps:g}")
    step = None if step is None else parse_number(step, "step")
    if step is not None and step <= 0:
        raise ConfigError(f"step: must be a number > 0, got {step:g}")
    return eps, step


def _threat(config, eps, step):
    """Config.eval_threat (eval.eps, else the training eps; `eps` overrides), checked under the names
    of this function's arguments."""
    limit = 1.0 if config.threat.norm == "linf" else 100.0
    if eps is not None and eps > limit:
        raise ConfigError(f"eps: must be in [0, {limit:g}] for {config.threat.norm} on [0,1] images, got {eps:g}")
    threat = config.eval_threat(eps)
    if step is not None and threat.eps > 0 and step > 4 * threat.eps:
        raise ConfigError(f"step: must be in (0, 4*eps] = (0, {4 * threat.eps:g}], got {step:g}")
    return threat


def _first_points(dataset, n):
    n = len(dataset) if n is None else n
    if not 1 <= n <= len(dataset):
        raise ConfigError(f"n: must be in [1, {len(dataset)}] for this split, got {n}")
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=1000)
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    if x.min() < 0 or x.max() > 1:
        raise ConfigError(f"data: images must be in [0,1], found values in [{x.min():.3g}, {x.max():.3g}]")
    return x, y


def _method_options(run: RunDir, config) -> dict:
    """The run's method options with every default filled in (config.yaml holds them so; older runs
    and bare checkpoints get the method registry's defaults)."""
    options = dict(config.method.options)
    if run.config_path.exists():
        stored = (run.read_config().get("method") or {})
        if stored.get("name") == config.method.name:
            options = {**options, **(stored.get("options") or {})}
    return resolved_options(config.method.name, options, config.training_threat())


def evaluate_run(path, *, attacks="clean,pgd20,cw20,aa", n: Optional[int] = None, eps=None, step=None,
                 batch_size=256, which="best", ema=True, split="test", seed=0, restarts=1, device="cpu",
                 data_dir=None, sanity=True, sanity_n=200, log=print, progress: Optional[bool] = None,
                 dataset=None, threat=None, model_dir="./models") -> dict:
    """Evaluate any model source (regmix.sources.load_source: a run directory or checkpoint file, a
    TorchScript file, 'robustbench:<dataset>/<threat>/<name>', an nn.Module); write HOME/eval/<stem>.json
    and <stem>.flags.npz (HOME: the run directory, else runs/external/<name>); return the record.

    dataset/threat/model_dir: what load_source needs for a model that is not a regmix run.

    eps: default eval.eps of the run's config, else its training eps. step: PGD/CW step of pgdN/cwN
    (default eps/4). progress: a bar per attack (None: in a terminal or notebook only).
    """
    specs = parse_attacks(attacks)
    eps, step = check_arguments(n=n, eps=eps, step=step, restarts=restarts, batch_size=batch_size,
                                which=which, split=split, seed=seed, sanity_n=sanity_n)
    source = load_source(path, dataset=dataset, threat=threat, model_dir=model_dir, which=which, ema=ema,
                         device=device)
    config, model, info = source.config, source.model, source.info
    run = RunDir(source.home)
    threat = _threat(config, eps, step)
    specs = [s.at(threat) for s in specs]
    dataset = create_dataset(config.data.name, split, data_dir or config.data.data_dir, augment=False)
    x, y = _first_points(dataset, n)
    check_fits(model, x, dataset.num_classes)  # classes and input shape, before any attack
    # every attack built before any work: a bad option or a missing AutoAttack fails here
    built = {s.name: s.build(model, threat, step=step, restarts=restarts, seed=seed, device=device,
                             batch_size=batch_size) for s in specs[1:]}

    record = {
        "kind": "eval", "version": VERSION, "run_dir": str(run.path), **run.identity(),
        "source": source.kind, "checkpoint": info["checkpoint"], "checkpoint_file": info["checkpoint_file"],
        "ema": info["ema"], "epoch": info["epoch"], "model": config.model.name, "method": config.method.name,
        "method_options": _method_options(run, config) if source.kind in ("run", "checkpoint") else {},
        "dataset": config.data.name, "split": split,
        "n": len(y), "train_seed": config.train.seed, "seed": seed,
        "threat": {"norm": threat.norm, "eps": threat.eps}, "step": step, "restarts": restarts,
        "attack_list": [s.name for s in specs], "attacks": {}, "autoattack": None, "autoattack_warnings": [],
    }
    stem = record_stem(record)
    eval_dir = run.eval_dir
    eval_dir.mkdir(parents=True, exist_ok=True)

    start = time.time()
    state_files = []  # resume points of AutoAttack runs, removed once the record is written
    flags = {"clean": clean_flags(model, x, y, device=device, batch_size=batch_size)}
    accuracy = {"clean": flags["clean"].float().mean().item()}
    log(f"[eval] {run.path.name}: clean {accuracy['clean']:.4f} on {len(y)} {split} points")
    for spec in specs[1:]:
        t0 = time.time()
        attack = built[spec.name]
        if spec.white_box:
            torch.manual_seed(seed)
            record["attacks"][spec.name] = repr(attack)
            flags[spec.name] = attack_flags(model, attack, x, y, flags["clean"], device=device,
                                            batch_size=batch_size, progress=progress, desc=spec.name)
        else:
            state_path = eval_dir / f"{stem}.{spec.name.replace(':', '_')}.aa-state"
            state_files.append(state_path)
            result = attack.run(x, y, flags["clean"].clone(), state_path=state_path, progress=progress,
                                on_attack=lambda a, acc: log(f"[eval]   {spec.name} after {a}: {acc:.4f}"))
            flags[spec.name] = result["robust"]
            record["attacks"][spec.name] = {**attack.describe(), "after": result["after"],
                                            "warnings": result["warnings"]}
            record["autoattack_warnings"] += [w for w in result["warnings"] if w not in record["autoattack_warnings"]]
            if spec.name != "square":
                record["autoattack"] = record["attacks"][spec.name]
        accuracy[spec.name] = flags[spec.name].float().mean().item()
        log(f"[eval] {run.path.name}: {spec.name} {accuracy[spec.name]:.4f} ({time.time() - t0:.1f} s)")
    if len(specs) > 2:
        accuracy["worst"] = torch.stack([flags[s.name] for s in specs[1:]]).all(0).float().mean().item()

    warnings = check_accuracies(accuracy, specs, len(y))
    sanity_result = None
    if sanity:
        m = min(sanity_n, len(y))
        sanity_result = probe(model, x[:m], y[:m], threat, device=device, batch_size=batch_size, seed=seed)
        warnings += sanity_result.pop("warnings")
    for w in record["autoattack_warnings"]:
        log(f"[eval] AutoAttack warning: {w}")
    for w in warnings:
        log(f"[eval] WARNING: {w}")

    flags_file = eval_dir / f"{stem}.flags.npz"
    arrays = {flags_key(k): v.numpy() for k, v in flags.items()}
    atomic_write(flags_file, lambda f: np.savez_compressed(f, **arrays))
    record.update({"accuracy": accuracy, "sanity": sanity_result, "warnings": warnings,
                   "flags_file": flags_file.name, **environment(device),
                   "wall_s": round(time.time() - start, 2),
                   "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    record["_path"] = str(save_record(record, eval_dir))
    for f in state_files:
        f.unlink(missing_ok=True)
    return record
