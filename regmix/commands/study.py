"""`regmix study SUITE`: the flags of regmix.study.run_study; with --results, the RegMix paper's results
folder (regmix.paper.results.write_results: the engine's numbers, the paper's claims and tables).

This command is where the study engine (regmix.study) and the paper (regmix.paper) meet: the engine
never imports the paper."""
from __future__ import annotations

import os
import sys

from ..paper.results import write_results
from ..registry import ConfigError
from ..study import load_suite, merge_evals, read_ledger, run_study
from ..sweep import parse_seeds
from .figures import draw, viz_home
from .flags import flag_names

# run_study's argument names -> this command's flags, for its error messages
FLAGS = {"out": "--out", "methods": "--methods", "seeds": "--seeds", "suite": "SUITE", "part": "--part",
         "evals": "--evals", "eval_device": "--eval-device", "merge": "--merge", "sweeps": "--sweeps"}


def add_parser(sub):
    p = sub.add_parser("study", help="train, evaluate and report every method x seed of a suite",
                       description="Train every method of SUITE (configs/study/SUITE.yaml, or a path to a "
                                   "suite file) over its seeds from the paper recipes, evaluate each run as the "
                                   "suite says, and write OUT/report.md. The plan and an estimate of its cost "
                                   "are printed first. Finished runs and evaluations are skipped and "
                                   "interrupted runs resumed, so the command can be stopped (Ctrl-C) and "
                                   "started again at any moment. Suites: mnist5k (CPU), cifar10, cifar100, "
                                   "tinyimagenet (GPU).")
    p.add_argument("suite", metavar="SUITE")
    p.add_argument("--out", default=None, help="study folder (default: runs/study-SUITE, runs/study-SUITE-smoke)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the suite's)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: all of the suite's)")
    p.add_argument("--part", choices=["main", "sweeps", "all"], default="main",
                   help="main: the methods x seeds table (default); sweeps: the suite's sweeps and ablations; all: both")
    p.add_argument("--sweeps", default=None,
                   help="comma-separated sweeps of the suite to run, in this order (with --part sweeps or all; "
                        "default: all of them, in the suite's order)")
    p.add_argument("--evals", default=None,
                   help="comma-separated evaluations of the suite to run now (default: all), e.g. the cheap ones "
                        "first; a later run without it does the rest")
    p.add_argument("--eval-device", default=None, metavar="DEVICE",
                   help="run the evaluations and diagnostics on DEVICE (cpu, cuda, cuda:1); training stays on the "
                        "suite's device. Each record states where it ran")
    p.add_argument("--no-train", action="store_true",
                   help="train nothing: evaluate the runs that are complete and skip the others (with --eval-device, "
                        "on a copy of the folder that holds only some runs)")
    p.add_argument("--merge", default=None, metavar="DIR",
                   help="train and evaluate nothing: copy into the study folder the evaluation records of DIR, a "
                        "copy of it evaluated elsewhere (e.g. on a GPU with --eval-device cuda), for runs that "
                        "are the same runs here (same run id)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its expected cost only; write nothing")
    p.add_argument("--smoke", action="store_true",
                   help="the suite's tiny variant (one epoch, few points, cheap attacks), as CI runs it")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="train nothing: write DIR/results.json, tables.md, claims.md, records/ and figures/ "
                        "from what the study folder holds now (e.g. docs/results)")
    p.set_defaults(func=run)


def run(args):
    with flag_names(FLAGS):
        suite = load_suite(args.suite, smoke=args.smoke)
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods is not None else None
        if methods is not None and not methods:
            raise ConfigError("methods: give at least one method")
        out = args.out or os.path.join("runs", f"study-{suite.name}{'-smoke' if args.smoke else ''}")
        if args.results is not None:
            return write_results_folder(suite, out, args)
        if args.merge is not None:
            outcomes = merge_evals(suite, out, args.merge)
            print(f"merged {sum(v == 'merged' for v in outcomes.values())} evaluations, "
                  f"{sum(v == 'present' for v in outcomes.values())} already here, "
                  f"{sum(v == 'refused' for v in outcomes.values())} refused")
            refused = [k for k, v in outcomes.items() if v == "refused"]
            if refused:
                raise ConfigError(f"merge: {len(refused)} records are not of the same finished runs here "
                                  f"(first: {refused[0]}); they were not copied")
            return None
        evals = [e.strip() for e in args.evals.split(",") if e.strip()] if args.evals is not None else None
        sweeps = [w.strip() for w in args.sweeps.split(",") if w.strip()] if args.sweeps is not None else None
        if sweeps is not None and not sweeps:
            raise ConfigError("sweeps: give at least one sweep")
        run_study(suite, out, methods=methods, seeds=seeds, part=args.part, evals=evals, dry_run=args.dry_run,
                  eval_device=args.eval_device, train=not args.no_train, sweeps=sweeps)


def write_results_folder(suite, out, args):
    """--results DIR: the study's numbers, records, claims and tables, then its figures (viz, in a child
    process)."""
    if not read_ledger(out):
        raise ConfigError(f"out: {out} holds no study yet; run `regmix study {args.suite}` first")
    viz_home()
    command = " ".join(["regmix", "study", args.suite, *(["--smoke"] if args.smoke else []),
                        *(["--out", args.out] if args.out else []), "--results", args.results])
    path = write_results(suite, out, args.results, command=command)
    print(f"results: {path}, {os.path.join(args.results, 'tables.md')}, {os.path.join(args.results, 'claims.md')}",
          file=sys.stdout)
    draw(["study", args.results])
