"""`regmix eval`: a trained model against the evaluation attacks, sanity checks, one JSON record."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..attacks.specs import parse_attacks
from ..checkpoint import atomic_write, load_checkpoint, model_from_checkpoint, resolve_checkpoint
from ..data import create_dataset
from .flags import attack_flags, clean_flags
from .records import environment, record_stem, save_record
from ..registry import ConfigError
from .sanity import check_accuracies, probe
from ..threat import ThreatModel, parse_number


def _first_points(dataset, n):
    n = len(dataset) if n is None else n
    if not 1 <= n <= len(dataset):
        raise ConfigError(f"--n: must be in [1, {len(dataset)}] for this split, got {n}")
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=1000)
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    if x.min() < 0 or x.max() > 1:
        raise ConfigError(f"data: images must be in [0,1], found values in [{x.min():.3g}, {x.max():.3g}]")
    return x, y


def evaluate_run(path, *, attacks="clean,pgd20,cw20,aa", n: Optional[int] = None, eps=None, step=None,
                 batch_size=256, which="best", ema=True, split="test", seed=0, restarts=1, device="cpu",
                 data_dir=None, sanity=True, sanity_n=200, log=print) -> dict:
    specs = parse_attacks(attacks)
    checkpoint_file = resolve_checkpoint(path, which)
    state = load_checkpoint(checkpoint_file, map_location="cpu")
    config = state["config"]
    run_dir = checkpoint_file.parent
    model = model_from_checkpoint(state, device=device, ema=ema)
    used_ema = bool(ema and state.get("ema") is not None)

    train_threat = config["threat"]
    threat = ThreatModel(train_threat["norm"], train_threat["eps"] if eps is None else eps, steps=0)
    step = None if step is None else parse_number(step, "--step")
    dataset = create_dataset(config["data"]["name"], split, data_dir or config["data"]["data_dir"], augment=False)
    x, y = _first_points(dataset, n)
    record = {
        "kind": "eval", "version": 1, "run_dir": str(run_dir), "checkpoint": checkpoint_file.stem,
        "checkpoint_file": checkpoint_file.name, "ema": used_ema, "epoch": state.get("epoch"),
        "model": config["model"]["name"], "method": config["method"]["name"],
        "method_options": config["method"]["options"], "dataset": config["data"]["name"], "split": split,
        "n": len(y), "train_seed": config["train"]["seed"], "seed": seed,
        "threat": {"norm": threat.norm, "eps": threat.eps}, "step": step, "restarts": restarts,
        "attack_list": [s.name for s in specs], "attacks": {}, "autoattack": None,
    }
    stem = record_stem(record)
    eval_dir = run_dir / "eval"
    eval_dir.mkdir(exist_ok=True)

    start = time.time()
    state_files = []  # resume points of AutoAttack runs, removed once the record is written
    flags = {"clean": clean_flags(model, x, y, device=device, batch_size=batch_size)}
    accuracy = {"clean": flags["clean"].float().mean().item()}
    log(f"[eval] {run_dir.name}: clean {accuracy['clean']:.4f} on {len(y)} {split} points")
    for spec in specs[1:]:
        t0 = time.time()
        if spec.white_box:
            torch.manual_seed(seed)
            attack = spec.build(model, threat, step=step, restarts=restarts)
            record["attacks"][spec.name] = repr(attack)
            flags[spec.name] = attack_flags(model, attack, x, y, flags["clean"], device=device, batch_size=batch_size)
        else:
            from .autoattack import AutoAttackRunner
            runner = AutoAttackRunner(model, threat, version=spec.aa_version, attacks=spec.aa_attacks or None,
                                      seed=seed, device=device, batch_size=batch_size)
            state_path = eval_dir / f"{stem}.{spec.name.replace(':', '_')}.aa-state"
            state_files.append(state_path)
            result = runner.run(x, y, flags["clean"].clone(), state_path=state_path,
                                on_attack=lambda a, acc: log(f"[eval]   {spec.name} after {a}: {acc:.4f}"))
            flags[spec.name] = result["robust"]
            record["attacks"][spec.name] = {**runner.describe(), "after": result["after"]}
            if spec.name != "square":
                record["autoattack"] = record["attacks"][spec.name]
        accuracy[spec.name] = flags[spec.name].float().mean().item()
        log(f"[eval] {run_dir.name}: {spec.name} {accuracy[spec.name]:.4f} ({time.time() - t0:.1f} s)")
    if len(specs) > 2:
        accuracy["worst"] = torch.stack([flags[s.name] for s in specs[1:]]).all(0).float().mean().item()

    warnings = check_accuracies(accuracy, specs, len(y))
    sanity_result = None
    if sanity:
        m = min(sanity_n, len(y))
        sanity_result = probe(model, x[:m], y[:m], threat, device=device, batch_size=batch_size, seed=seed)
        warnings += sanity_result.pop("warnings")
    for w in warnings:
        log(f"[eval] WARNING: {w}")

    flags_file = eval_dir / f"{stem}.flags.npz"
    arrays = {k.replace(":", "_"): v.numpy() for k, v in flags.items()}
    atomic_write(flags_file, lambda f: np.savez_compressed(f, **arrays))
    record.update({"accuracy": accuracy, "sanity": sanity_result, "warnings": warnings,
                   "flags_file": flags_file.name, **environment(device),
                   "wall_s": round(time.time() - start, 2),
                   "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    record["_path"] = str(save_record(record, eval_dir))
    for f in state_files:
        f.unlink(missing_ok=True)
    return record
