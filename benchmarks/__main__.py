"""python -m benchmarks [--smoke] [--device cpu|cuda] [--only ...]: every comparison of docs/benchmarks.md,
side by side in one process; writes benchmarks/results/<machine>-<date>.json and regenerates the page."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("train_step", "attack", "eval", "landscape", "autoattack", "memory", "gpu")


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks that everything runs (CI)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda: the GPU section runs on cuda only")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per contender (default: 5; smoke 2)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: every CPU)")
    p.add_argument("--machine", default=None, help="name of this machine in the record's file name")
    p.add_argument("--out", default=None, help="folder of the JSON record (default: benchmarks/results)")
    p.add_argument("--doc", default=None, help="page to regenerate (default: docs/benchmarks.md; with --smoke: "
                                               "benchmarks-smoke.md next to the record)")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        p.exit(2, f"python -m benchmarks: error: --only: unknown section {bad[0]!r}; allowed: {', '.join(SECTIONS)}\n")
    if args.device not in ("cpu", "cuda") and not re.fullmatch(r"cuda:\d+", args.device):
        p.exit(2, f"python -m benchmarks: error: --device: must be cpu, cuda or cuda:N, got {args.device!r}\n")
    if args.repeats is not None and args.repeats < 1:
        p.exit(2, "python -m benchmarks: error: --repeats: must be an integer >= 1\n")
    args.only = only
    return args


def machine_info(device: str) -> dict:
    import torch

    from regmix.runtime import cpu_name
    cpu = cpu_name()
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") and torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "device": device, "gpu": gpu,
            "load_start": [round(v, 2) for v in os.getloadavg()]}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60]


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    import torch
    from dataclasses import replace

    from . import attacks, autoattack, evaluation, gpu, landscape, memory, report, train_step
    from .fixtures import digits, eps_for_half_robust, trained_model
    from .scale import FULL, SMOKE

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    scale = SMOKE if args.smoke else FULL
    if args.repeats:
        scale = replace(scale, repeats=args.repeats)
    device = args.device
    info = machine_info(device)
    machine = args.machine or slug(f"{info['cpu_count']}cpu-{info['cpu']}" + (f"-{info['gpu']}" if info["gpu"] else ""))
    now = datetime.datetime.now(datetime.timezone.utc)
    out_dir = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = out_dir / f"{machine}-{now:%Y%m%d-%H%M}{'-smoke' if args.smoke else ''}.json"
    doc = Path(args.doc) if args.doc else (out_dir / "benchmarks-smoke.md" if args.smoke else ROOT / "docs" / "benchmarks.md")
    command = "python -m benchmarks" + ("" if argv is None and not sys.argv[1:] else " " + " ".join(sys.argv[1:] if argv is None else argv))

    def log(text):
        print(text, flush=True)

    results = {}
    model = eps = None
    needs_model = {"attack", "eval", "landscape", "autoattack", "memory"} & set(args.only)
    if needs_model:
        model = trained_model(scale).to(device)
        x, y, _ = digits("test", 200 if scale.name == "full" else 32)
        eps, acc = eps_for_half_robust(model, x.to(device), y.to(device), rounds=7 if scale.name == "full" else 3)
        log(f"[setup] small_cnn trained on {scale.train_points} digits; eps {eps} leaves PGD-20 accuracy {acc:.2f}")
        results["setup"] = {"model": "small_cnn width 16, standard training", "train_points": scale.train_points,
                            "epochs": scale.train_epochs, "eps_half_robust": eps, "pgd20_accuracy_at_eps": acc}
    runners = {
        "train_step": lambda: train_step.run(scale, device, log),
        "attack": lambda: attacks.run(model, eps, scale, device, log),
        "eval": lambda: evaluation.run(model, eps, scale, device, log),
        "landscape": lambda: landscape.run(model, scale, device, log),
        "autoattack": lambda: autoattack.run(model, eps, scale, device, log),
        "memory": lambda: memory.run(model.cpu(), eps, scale, Path(tempfile.mkdtemp(prefix="regmix-bench-mem-")), log),
        "gpu": lambda: gpu.run(scale, device, log),
    }
    failed = []
    for name in SECTIONS:
        if name not in args.only:
            continue
        try:
            results[name] = runners[name]()
        except Exception as exc:  # one broken comparison must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        if name == "memory" and model is not None:
            model.to(device)
    info["load_end"] = [round(v, 2) for v in os.getloadavg()]
    record = {"command": command, "date": f"{now:%Y-%m-%d %H:%M} UTC", "machine": info, "scale": scale.to_dict(),
              "record_path": os.path.relpath(record_path, ROOT) if record_path.is_relative_to(ROOT) else str(record_path),
              "results": results}
    record_path.write_text(json.dumps(record, indent=1, default=float))
    # a full run's page: every full-scale record of the folder (the latest run of each section, CPU and GPU);
    # a smoke run's page: this record alone
    report.write(report.full_records(out_dir) if scale.name == "full" else [record], doc)
    log(f"record: {record_path}\npage: {doc}")
    if failed:
        log(f"failed sections: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
