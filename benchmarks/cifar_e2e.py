"""The whole CIFAR path end to end in one command, each stage in its own process with a time limit:

    python -m benchmarks.cifar_e2e --device {cpu,cuda} --out DIR [--tiny]

1. CIFAR-10 files in the published pickle layout, of random pixels (DIR/data/cifar-10-batches-py);
2. a study suite (DIR/suite.yaml; everything in its smoke section): the seven methods from the
   configs/cifar10 ResNet-18 recipes (bf16, channels_last; train.fast on CUDA), one seed, one epoch;
   clean/PGD-20/CW-20 on every run, APGD-CE+APGD-T and standard AutoAttack (skipped, saying so, where
   AutoAttack is not installed), the weight landscape with its Hessian and the softmax record;
   --tiny: small_cnn of width 4, a few hundred images, 1-2 step attacks (the CI test, on a CPU);
3. `regmix study` (all methods in one process; where that fails, the unfinished methods one by one, and
   without train.fast when nothing trained with it), `regmix study --results` (tables and figures),
   `regmix report`, the three explorers driven headless on the study's runs, and last the AutoAttack
   evaluations (their cost depends on what the one-epoch models resist).

Every stage runs even after another failed (a stage that needs a trained run finds none and says so).
DIR/cifar_e2e.json (rewritten after each stage, so a kill leaves what was done) holds each stage's
name, seconds, status (ok, error with its first line, skipped with the reason) and its key numbers;
DIR/cifar_e2e.log the same in words, DIR/logs/<stage>.log each stage's output. Exit 1 when a stage
failed. The explorers stage is this module run with --explorers STUDY (a child process as the others).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from regmix.files import atomic_write_text
from regmix.rundir import RunDir
from regmix.study import read_ledger

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "regmix" / "configs" / "cifar10"
METHODS = ("standard", "fgsm_rs", "pgd_at", "trades", "mart", "pgk", "regmix")
# per mode: images written, points evaluated, attack steps, diagnostics sizes, limits (s) of the training stage
# (all seven methods) and of an AutoAttack stage
MODES = {
    "tiny": dict(train_images=200, test_images=100, val=40, n=32, n_aa=8, attacks="clean,pgd2,cw2",
                 overrides=["model.name=small_cnn", "model.options.width=4", "threat.steps=1", "eval.steps=2",
                            "data.batch_size=64", "data.num_workers=0", "train.amp=none",
                            "train.channels_last=false"],
                 weight={"grid": 3, "n": 16, "attack": "none", "hessian_iters": 2}, softmax={"n": 16},
                 explorer=dict(n=8, grid=3, attack="none", hessian_iters=2), limit=600, aa_limit=240),
    "full": dict(train_images=10000, test_images=2000, val=1000, n=500, n_aa=128, attacks="clean,pgd20,cw20",
                 overrides=[], weight={"grid": 5, "n": 128, "attack": "fgsm", "hessian_iters": 5},
                 softmax={"n": 256}, explorer=dict(n=64, grid=5, attack="fgsm", hessian_iters=5),
                 limit=240, aa_limit=90),
}


def write_cifar(root: Path, train_images: int, test_images: int, seed: int = 0) -> dict:
    """CIFAR-10 in the published layout: data_batch_1..5 (train_images split over them), test_batch,
    batches.meta; each batch a dict of 'data' (uint8, n x 3072) and 'labels' (a list of ints)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [train_images // 5 + (i < train_images % 5) for i in range(5)]
    files = [(f"data_batch_{i + 1}", n) for i, n in enumerate(sizes)] + [("test_batch", test_images)]
    for name, n in files:
        batch = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "filenames": [f"random_{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
            "num_cases_per_batch": sizes[0], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return {"train_images": train_images, "test_images": test_images,
            "megabytes": round(sum(p.stat().st_size for p in folder.iterdir()) / 2 ** 20, 1)}


def suite_yaml(args, mode: dict, data_dir: Path, fast: bool) -> str:
    """The suite: every setting in its smoke section (the variant `regmix study --smoke` runs)."""
    overrides = [f"data.data_dir={data_dir}", f"data.val_size={mode['val']}", "train.epochs=1",
                 "schedule.milestones=[]", f"eval.max_points={min(mode['val'], 256)}", "train.log_every=10",
                 *mode["overrides"], f"train.fast={str(fast).lower()}"]
    n, n_aa = mode["n"], mode["n_aa"]
    evals = {"whole": {"attacks": mode["attacks"], "n": n, "seeds": "all", "sanity": False},
             "apgd": {"attacks": "clean,aa:apgd-ce+apgd-t", "n": n_aa, "seeds": "all", "sanity": False},
             "autoattack": {"attacks": "clean,aa", "n": n_aa, "seeds": "first", "sanity": False}}
    smoke = {"seeds": [0], "overrides": overrides, "evals": evals,
             "diagnostics": {"weight": mode["weight"], "softmax": mode["softmax"]},
             "cost": {"train": {m: 1 for m in METHODS}, "eval": {e: 1 for e in evals},
                      "diagnostics": {"weight": 1, "softmax": 1}}}
    suite = {"suite": "cifar_e2e", "description": "the CIFAR path end to end (benchmarks/cifar_e2e.py)",
             "device": args.device, "recipes": {m: str(RECIPES / f"resnet18_{m}.yaml") for m in METHODS},
             "seeds": [0], "evals": evals, "cost": smoke["cost"], "smoke": smoke}
    return json.dumps(suite, indent=1)  # JSON is YAML


class Log:
    """The stage records: DIR/cifar_e2e.json rewritten after each stage, DIR/cifar_e2e.log appended."""

    def __init__(self, out: Path, meta: dict):
        self.out, self.stages, self.meta = out, [], meta
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.text = out / "cifar_e2e.log"
        self.text.write_text(f"cifar_e2e {json.dumps(meta)}\n")
        self.save()

    def add(self, name, seconds, status, error=None, numbers=None, log=None):
        entry = {"name": name, "seconds": round(seconds, 2), "status": status, "error": error,
                 "numbers": numbers or {}, "log": log}
        self.stages.append(entry)
        line = f"[{status:7s}] {name:22s} {seconds:7.1f} s  " + (error or json.dumps(numbers or {}))
        print(line, flush=True)
        with self.text.open("a") as f:
            f.write(line + "\n")
        self.save()
        return entry

    def save(self):
        failed = [s["name"] for s in self.stages if s["status"] == "error"]
        body = json.dumps({"kind": "cifar_e2e", **self.meta, "stages": self.stages, "failed": failed,
                           "ok": not failed}, indent=1)
        atomic_write_text(self.out / "cifar_e2e.json", body)


def first_error_line(output: str, code) -> str:
    """The line that says what went wrong: the last 'error'/exception line of the output, else its last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith("error") or (":" in ln and ln.split(":")[0].endswith(("Error", "Exception"))):
            return f"exit {code}: {ln[:300]}"
    return f"exit {code}: {lines[-1][:300] if lines else 'no output'}"


def run_child(cmd, log_path: Path, limit: float, cwd: Path, env: dict):
    """Run cmd in its own process group with a time limit; (exit code or 'timeout', its output)."""
    with log_path.open("w") as f:
        f.write(" ".join(map(str, cmd)) + "\n")
        f.flush()
        child = subprocess.Popen(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                 start_new_session=True)
        try:
            code = child.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            code = "timeout"
        except BaseException:  # stopped from outside (SIGTERM, Ctrl-C): the stage's processes go too
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        if code == "timeout":
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return code, log_path.read_text(errors="replace")


def run_numbers(study: Path, methods, evals=("whole", "apgd", "autoattack")) -> dict:
    """Key numbers of the study's runs of these methods: epoch time, accuracies, diagnostics present."""
    try:  # the study's own reader: each record where it belongs, OUT/runs/<run>/eval/<file>
        ledger = read_ledger(study)
    except Exception:  # a damaged ledger: no evaluation counts as done
        ledger = {}
    out = {}
    for method in methods:
        run = RunDir(study / "runs" / f"{method}-seed0")
        numbers = {"state": run.state()}
        epochs = [r["epoch_time_s"] for r in run.metrics("epoch") if isinstance(r.get("epoch_time_s"), (int, float))]
        if epochs:
            numbers["epoch_s"] = round(epochs[-1], 2)
        for name in evals:
            path = (ledger.get("evals_done") or {}).get(f"{method}-seed0/{name}")
            if path and Path(path).is_file():
                record = json.loads(Path(path).read_text())
                numbers[name] = {k: round(v, 4) for k, v in (record.get("accuracy") or {}).items()
                                 if isinstance(v, (int, float))}
        diag = run.diagnostics_dir
        if diag.is_dir():
            numbers["diagnostics"] = sorted(p.name for p in diag.iterdir())
        out[method] = numbers
    return out


def explorers(study: Path, device: str, out: Path, tiny: bool) -> dict:
    """The three explorers built on the study's trained runs, each made to compute once (no browser)."""
    from viz.explorers import AMRWeightExplorer, DistributionExplorer, LandscapeExplorer
    opts = MODES["tiny" if tiny else "full"]["explorer"]
    runs = {p.name: p for p in sorted((study / "runs").iterdir()) if RunDir(p).is_complete()}
    if "regmix-seed0" not in runs:
        raise RuntimeError(f"no trained regmix run under {study / 'runs'}")
    export = out / "explorers"
    numbers = {}
    dist = DistributionExplorer(runs, n=opts["n"], device=device, export_dir=export)
    probs = dist.distributions()
    numbers["distribution"] = {"runs": len(probs), "device": str(dist.device),
                               "max_sum_error": float(max(abs(v.sum() - 1) for p in probs.values() for v in p.values()))}
    land = LandscapeExplorer({"regmix": runs["regmix-seed0"]}, grids=(opts["grid"],), n=opts["n"],
                             attack=opts["attack"], hessian_iters=opts["hessian_iters"], device=device,
                             export_dir=export, autocompute=False)
    arrays, meta = land.record("regmix", opts["grid"])
    centre = opts["grid"] // 2
    numbers["landscape"] = {"grid": meta["grid"], "device": meta.get("device"),
                            "centre_loss": float(arrays["loss"][centre, centre])}
    amr = AMRWeightExplorer(runs["regmix-seed0"], examples=2, finetune_steps=2, export_dir=export)
    before = amr.loss_terms()
    amr.alpha.value = amr.alpha.value * 2 + 0.5
    job = amr.fine_tune().join(timeout=300)
    if job.error is not None:
        raise job.error
    numbers["amr"] = {"terms": {k: float(v) for k, v in before.items()}, "finetune_steps": len(job.losses),
                      "finetune_loss": float(job.losses[-1])}
    for name, value in numbers.items():
        if not all(np.isfinite(v) for v in _floats(value)):
            raise RuntimeError(f"{name} explorer: a number is not finite: {value}")
    return numbers


def _floats(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, float):
        yield value


class Stopped(BaseException):
    """SIGTERM (the caller's time limit) while a stage ran."""


def missing(*modules) -> list:
    return [m for m in modules if importlib.util.find_spec(m) is None]


# what the stages import beyond torch and numpy (a bare GPU image may lack some): recorded, never imported here
PACKAGES = ("yaml", "tqdm", "torchvision", "matplotlib", "plotly", "ipywidgets", "anywidget", "pyautoattack",
            "loss_landscapes")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cifar_e2e", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], required=True)
    p.add_argument("--out", required=True, type=Path, help="folder for the data, the study and the logs (new or empty)")
    p.add_argument("--tiny", action="store_true", help="small_cnn width 4, a few hundred images, 1-2 step attacks (CI)")
    p.add_argument("--train-images", type=int, default=None,
                   help="training images written (default: 200 with --tiny, else 10,000; the real set has 50,000)")
    p.add_argument("--test-images", type=int, default=None, help="test images written (default: 100 / 2,000)")
    p.add_argument("--fast", action=argparse.BooleanOptionalAction, default=None,
                   help="train.fast=true (data on the device, captured CUDA step); default: on with cuda")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for the whole command (default: none with --tiny, else 225, under gpu_lease.sh's 240 s "
                        "limit); a stage gets at most what is left, and one that cannot start is an error")
    p.add_argument("--explorers", type=Path, default=None, help=argparse.SUPPRESS)  # the explorers stage's child
    args = p.parse_args(argv)
    if args.explorers is not None:
        print("EXPLORERS " + json.dumps(explorers(args.explorers, args.device, args.out, args.tiny)))
        return 0
    mode = dict(MODES["tiny" if args.tiny else "full"])
    train_images = args.train_images or mode["train_images"]
    test_images = args.test_images or mode["test_images"]
    if train_images < mode["val"] + 10 or test_images < mode["n"]:
        print(f"error: --train-images must be at least {mode['val'] + 10} (the validation split holds {mode['val']}) "
              f"and --test-images at least {mode['n']}", file=sys.stderr)
        return 2
    if args.fast is None:
        args.fast = args.device == "cuda"
    budget = args.budget if args.budget is not None else (None if args.tiny else 225.0)
    out = args.out.resolve()
    if out.exists() and any(out.iterdir()):
        print(f"error: --out: {out} is not empty; give a new folder", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    log = Log(out, {"device": args.device, "tiny": args.tiny, "fast": args.fast, "train_images": train_images,
                    "test_images": test_images, "budget_s": budget, "python": platform.python_version(),
                    "torch": torch.__version__, "missing_packages": missing(*PACKAGES),
                    "command": " ".join(["python -m benchmarks.cifar_e2e", *(argv if argv is not None else sys.argv[1:])])})

    def stage(name, cmd, limit, numbers=None, skip=None):
        if skip:
            return log.add(name, 0.0, "skipped", error=skip)
        left = None if budget is None else budget - (time.time() - start)
        if left is not None and left < 5:
            return log.add(name, 0.0, "error", error=f"not run: the --budget of {budget:.0f} s was spent")
        limit = limit if left is None else min(limit, left)
        path = out / "logs" / f"{re.sub(r'[^A-Za-z0-9_.=-]+', '_', name)}.log"
        t0 = time.time()
        try:
            code, output = run_child(cmd, path, limit, out, env)
        except Stopped as stop:
            log.add(name, time.time() - t0, "error", error=f"stopped from outside ({stop}), its processes killed",
                    log=str(path))
            raise
        seconds = time.time() - t0
        try:
            found = numbers(output) if numbers else {}
        except Exception as err:  # the numbers of a failed stage may be missing: the stage's error says why
            found = {"numbers_error": f"{type(err).__name__}: {err}"[:200]}
        if code == 0:
            return log.add(name, seconds, "ok", numbers=found, log=str(path))
        error = f"timed out after {limit:.0f} s" if code == "timeout" else first_error_line(output, code)
        return log.add(name, seconds, "error", error=error, numbers=found, log=str(path))

    def stop(signum, frame):
        raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop)  # `timeout` sends it: the stage running is recorded, its processes killed
    try:
        stages(args, mode, log, stage, out, train_images, test_images)
    except (Stopped, KeyboardInterrupt) as err:
        log.add("stopped", time.time() - start, "error",
                error=f"stopped from outside ({err or 'Ctrl-C'}); the stages after it did not run")
    total = time.time() - start
    failed = [s["name"] for s in log.stages if s["status"] == "error"]
    log.meta["total_s"] = round(total, 1)
    log.save()
    summary = f"cifar_e2e: {len(log.stages)} stages in {total:.0f} s; " + \
        (f"FAILED: {', '.join(failed)}" if failed else "all ok or skipped (reasons above)")
    print(summary, flush=True)
    with log.text.open("a") as f:
        f.write(summary + "\n")
    return 1 if failed else 0


def stages(args, mode, log, stage, out, train_images, test_images):
    regmix = [sys.executable, "-m", "regmix"]

    def study_of(study, suite):
        return study, [*regmix, "study", str(suite), "--smoke", "--out", str(study)]

    def unfinished(study):
        return [m for m, v in run_numbers(study, METHODS).items()
                if v["state"] != "complete" or "whole" not in v or len(v.get("diagnostics", [])) < 2]

    # 1. the data set's files
    t0 = time.time()
    try:
        numbers = write_cifar(out / "data", train_images, test_images)
        log.add("data", time.time() - t0, "ok", numbers=numbers)
    except Exception as err:
        log.add("data", time.time() - t0, "error", error=f"{type(err).__name__}: {err}".splitlines()[0])
    # 2. the suite (the study checks it, and every run's config, before any work)
    (out / "suite.yaml").write_text(suite_yaml(args, mode, out / "data", args.fast))
    study, smoke = study_of(out / "study", out / "suite.yaml")
    # 3. every method trained, evaluated (clean, PGD, CW) and diagnosed (landscape + Hessian, softmax) in one
    # process (seven start-ups of torch and CUDA cost more than seven 1-epoch trainings)
    trained = stage("train", [*smoke, "--evals", "whole"], mode["limit"], numbers=lambda o: run_numbers(study, METHODS))
    if args.fast and trained["status"] == "error" and trained["error"].startswith("exit") and \
            len(unfinished(study)) == len(METHODS):
        # train.fast failed (not slow) before any method finished: the same study once more without it, in
        # a folder of its own
        (out / "suite_plain.yaml").write_text(suite_yaml(args, mode, out / "data", False))
        study, smoke = study_of(out / "study_plain", out / "suite_plain.yaml")
        log.meta["fallback"] = f"train.fast failed for every method; the study without it is {study}"
        stage("train (train.fast=false)", [*smoke, "--evals", "whole"], mode["limit"],
              numbers=lambda o: run_numbers(study, METHODS))
    # where a method is still unfinished, it gets a stage of its own (the study resumes: finished work is kept)
    for method in unfinished(study):
        stage(f"train:{method}", [*smoke, "--methods", method, "--evals", "whole"], mode["limit"] / 2,
              numbers=lambda o, m=method: run_numbers(study, [m])[m])
    # 4. tables, claims and figures; the evaluation table; the explorers
    results = out / "results"
    no_plots = missing("matplotlib")
    stage("results", [*smoke, "--results", str(results)], 180,
          numbers=lambda o: {"figures": sorted(p.name for p in (results / "figures").rglob("*") if p.is_file())[:40],
                             "tables": (results / "tables.md").is_file()},
          skip=f"{', '.join(no_plots)} not installed" if no_plots else None)
    stage("report", [*regmix, "report", str(study / "runs")], 60,
          numbers=lambda o: {"rows": sum(1 for ln in o.splitlines() if ln.startswith("| ") and "---" not in ln) - 1})
    no_widgets = missing("ipywidgets", "plotly", "anywidget")
    stage("explorers", [sys.executable, "-m", "benchmarks.cifar_e2e", "--device", args.device, "--out", str(out),
                        *(["--tiny"] if args.tiny else []), "--explorers", str(study)], 240,
          numbers=lambda o: json.loads(o.split("EXPLORERS ", 1)[1].splitlines()[0]),
          skip=f"{', '.join(no_widgets)} not installed" if no_widgets else None)
    # 5. AutoAttack last (its cost grows with the points no attack breaks: square's 5,000 queries on each):
    # APGD-CE + APGD-T on the baseline and ours, standard AutoAttack on ours (all of AutoAttack's queries are
    # spent where a one-epoch model on random labels predicts one class and no attack moves it; on this CPU
    # 20 such points took over 45 s a run with small_cnn); --tiny: on standard
    # training only (no robustness: APGD-CE breaks every point and the other attacks have nothing left)
    aa_missing = missing("pyautoattack") and missing("autoattack")
    reason = "pyautoattack not installed (nor fra31's autoattack)" if aa_missing else None
    for name, methods in (("apgd", ["standard"] if args.tiny else ["pgd_at", "regmix"]),
                          ("autoattack", ["standard"] if args.tiny else ["regmix"])):
        stage(name, [*smoke, "--methods", ",".join(methods), "--evals", name, "--no-train"], mode["aa_limit"],
              numbers=lambda o, e=name, ms=methods: {m: v.get(e) for m, v in run_numbers(study, ms, [e]).items()},
              skip=reason)


if __name__ == "__main__":
    sys.exit(main())
