"""python -m benchmarks.graph_check [--device cuda] [--out DIR]: does the captured training step compute
what the eager one does? (issue 22; only a GPU can capture, so only a GPU can answer.)

For pgd_at and regmix (gated EMA with averaged buffers) on a ResNet-18, float32 with TF32 off and cuDNN
deterministic, the train.fast step (benchmarks/gpu.DeviceDataStep: the whole step, fused SGD and the
EMA inside) runs `--steps` steps eagerly, then again from the same seed captured as a CUDA graph and
replayed, the learning rate changed at every step (so a rate frozen into the graph would show). Compared
after the last step: the weights, the momentum buffers, the EMA's weights and buffers, its update count,
the running loss sums. Written to DIR/graph_check.json; the exit status is 1 where a comparison fails.
On a CPU there is nothing to capture: the record says so and the exit status is 0.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from regmix.files import atomic_write_text

from .gpu import DeviceDataStep

TOLERANCE = 1e-5  # relative to each tensor's largest magnitude; replays run the eager kernels, expected 0


def _snapshot(step) -> dict:
    opt_state = [step.opt.state[p]["momentum_buffer"] for p in step.model.parameters()]
    return {"weights": [p.detach().clone() for p in step.model.parameters()],
            "momentum": [b.clone() for b in opt_state],
            "ema": [t.detach().clone() for t in [*step.ema.model.parameters(), *step.ema.model.buffers()]],
            "ema_updates": [step.ema.count.clone()],
            "sums": [step.step.sums.clone()]}


def _run(method, captured, steps, device, batch, model_name, image) -> tuple[dict, bool]:
    step = DeviceDataStep(method, "fp32", captured, False, batch, device, model_name, image)
    for k in range(steps):
        step.opt.param_groups[0]["lr"] = 0.01 * (1 + k % 4)  # a new rate at every step, read by the replay
        step()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
    return _snapshot(step), step.step.graph is not None


def compare(a: dict, b: dict) -> dict:
    """Per part: the largest difference relative to the tensor's largest magnitude, and whether all are equal."""
    out = {}
    for part in a:
        worst, equal = 0.0, True
        for x, y in zip(a[part], b[part]):
            x, y = x.double(), y.double()
            equal = equal and torch.equal(x, y)
            worst = max(worst, float((x - y).abs().max() / x.abs().max().clamp(min=1e-30)) if x.numel() else 0.0)
        out[part] = {"max_relative_difference": worst, "bitwise_equal": equal}
    return out


def check(device, steps=12, batch=128, model_name="resnet18", image=32, methods=("pgd_at", "regmix")) -> dict:
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return {"skipped": "no CUDA device: nothing to capture"}
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    rows = []
    for method in methods:
        eager, _ = _run(method, False, steps, device, batch, model_name, image)
        replayed, captured = _run(method, True, steps, device, batch, model_name, image)
        parts = compare(eager, replayed)
        ok = captured and all(p["max_relative_difference"] <= TOLERANCE for p in parts.values())
        rows.append({"method": method, "steps": steps, "captured": captured, "parts": parts, "ok": ok})
    return {"device": torch.cuda.get_device_name(torch.device(device)), "torch": torch.__version__,
            "model": model_name, "batch": batch, "tolerance": TOLERANCE, "rows": rows,
            "ok": all(r["ok"] for r in rows)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.graph_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=12, help="steps of each run (3 eager warm-up steps, then the capture)")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    if args.steps < 5:
        p.exit(2, "python -m benchmarks.graph_check: error: --steps: must be >= 5 (3 warm-up steps, the capture, "
                  "a replay)\n")
    record = check(args.device, args.steps)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out) / "graph_check.json", json.dumps(record, indent=1))
    print(json.dumps(record, indent=1))
    return 0 if record.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
