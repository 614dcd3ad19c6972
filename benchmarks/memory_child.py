"""One memory case, run in a child process so that its peak resident memory is its own:
python -m benchmarks.memory_child CASE WORKDIR SCALE [-- REGMIX ARGS] (called by benchmarks.memory).

The child prints its peak as the last line, `peak_rss_kib N`, from /proc/self/status (VmHWM): the
high-water mark of this process image alone. (wait4's ru_maxrss would not do: Linux carries a
forked child's maximum across exec, so every child would report at least the parent's size.)"""
from __future__ import annotations

import sys
from pathlib import Path

import torch


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource  # not Linux: the closest figure there is
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main(case: str, workdir: str, scale_name: str, *rest):
    try:
        run_case(case, workdir, scale_name, *rest)
    finally:
        print(f"peak_rss_kib {peak_rss_kib()}", flush=True)


def run_case(case: str, workdir: str, scale_name: str, *rest):
    if case == "demo":  # `regmix demo ...` in this process
        from regmix.cli import main as regmix_main
        code = regmix_main(list(rest[1:] if rest and rest[0] == "--" else rest))
        if code:
            raise SystemExit(code)
        return
    from . import scale as scales
    from .fixtures import demo_model, digits
    scale = scales.FULL if scale_name == "full" else scales.SMOKE
    workdir = Path(workdir)
    if case == "baseline":  # python + torch + regmix + the model: what every case pays anyway
        x, y, ds = digits("test", 8)
        demo_model(ds)(x)
        return
    saved = torch.load(workdir / "model.pt")
    x, y, ds = digits("test", saved["points"])
    model = demo_model(ds)
    model.load_state_dict(saved["state"])
    model.eval()
    if case == "landscape":
        from regmix.diagnostics.landscape import weight_landscape
        n = 512 if scale.name == "full" else scale.landscape_points  # `regmix landscape`'s default n
        weight_landscape(model, x[:n], y[:n], grid=scale.memory_grid)
    elif case == "autoattack":
        from .autoattack import adapter_class, shrink
        import regmix
        runner = adapter_class()(model, regmix.ThreatModel("linf", saved["eps"]), seed=0, batch_size=250)
        shrink(runner.aa, scale.memory_aa_iters, scale.aa_square_queries or 100)
        n = scale.memory_aa_points
        with torch.no_grad():
            clean = model(x[:n]).argmax(1) == y[:n]
        runner.run(x[:n], y[:n], clean)
    else:
        raise SystemExit(f"case: one of baseline, landscape, autoattack, got {case!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
