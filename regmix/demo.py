"""`regmix demo`: every demo recipe trained on the embedded digits, then compared on the test split."""
from __future__ import annotations

import json
import time
from pathlib import Path

from .config import load_config
from .evaluation.run import evaluate_run
from .files import atomic_write_text
from .recipes import recipe_dir
from .registry import ConfigError
from .rundir import RunDir
from .trainer import train

# Test-time attack: PGD-20 at the training eps, step eps/4, one random start (`regmix eval`'s defaults).
TEST_ATTACK = "pgd20"


def default_config_dir() -> Path:
    return recipe_dir("demo")


def run_demo(out: Path, methods=("standard", "pgd_at", "pgk", "regmix"), epochs=None, progress=True,
             config_dir=None) -> dict:
    config_dir = Path(config_dir) if config_dir else default_config_dir()
    configs = []
    for method in methods:
        path = config_dir / f"{method}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in config_dir.glob("*.yaml") if p.stem != "base")
            raise ConfigError(f"--methods: no demo recipe {path}; known: {', '.join(known) or 'none'} "
                              f"(or pass --config-dir)")
        overrides = [f"out_dir={out}", f"name={method}", f"train.progress={str(progress).lower()}"]
        if epochs is not None:
            overrides.append(f"train.epochs={epochs}")
        configs.append(load_config(path, overrides))  # every recipe validated before any training

    rows = []
    for config in configs:
        start = time.time()
        run_dir = config.run_dir
        run = RunDir(run_dir)
        if not run.is_complete():  # finished runs are reused; anything else of a run is resumed
            train(config, resume=run.is_run())
        train_s = time.time() - start
        rows.append(evaluate(config, run_dir, train_s))
        print(f"[demo] {config.name}: clean {rows[-1]['clean']:.3f}, {TEST_ATTACK} {rows[-1]['pgd']:.3f}", flush=True)

    summary = {"dataset": configs[0].data.name, "split": "test", "rows": rows}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    table = format_table(rows)
    atomic_write_text(out / "summary.md", table + "\n")
    print("\n" + table)
    print(f"\noutputs: {out}/<method>/ (config.yaml, metrics.jsonl, best.pt, last.pt, eval/) and {out}/summary.md")
    print(f"stronger evaluation (CW, AutoAttack): regmix eval {out}/regmix --n 500; table: regmix report {out}")
    return summary


def evaluate(config, run_dir: Path, train_s: float) -> dict:
    record = evaluate_run(run_dir, attacks=f"clean,{TEST_ATTACK}", sanity=False, log=lambda *_: None)
    return {"method": config.method.name, "run_dir": str(run_dir), "n": record["n"], "eps": record["threat"]["eps"],
            "attack": TEST_ATTACK, "clean": record["accuracy"]["clean"], "pgd": record["accuracy"][TEST_ATTACK],
            "train_s": round(train_s, 1), "record": record["_path"]}


def format_table(rows) -> str:
    lines = ["| method | clean acc | PGD-20 acc | train time (s) |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {100 * r['clean']:.1f} | {100 * r['pgd']:.1f} | {r['train_s']:.0f} |")
    return "\n".join(lines)
