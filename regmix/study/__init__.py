"""The study engine of `regmix study SUITE`: any suite of runs trained, evaluated, diagnosed and tabulated.

    suite.py    the suite file (configs/study/<suite>.yaml) read and checked before any work
    runner.py   its runs trained, evaluated and diagnosed, resumable at any point (run_study)
    ledger.py   what the study folder holds and what is done in it (study.json, runs/<run>/)
    report.py   OUT/report.md: a table per evaluation and per sweep, training wall times
    merge.py    evaluations made in a copy of the folder elsewhere (a GPU) brought home
    results.py  the results folder: every number with its record (results.json, records/)
    metrics.py  the numbers read from results.json, and their mean ± std over seeds
    stats.py    is a difference larger than the spread over seeds? (Welch's t, bootstrap interval)

Nothing here is about one paper: the RegMix paper's claims and the rules that chose its defaults are
in regmix.paper, which sits above this package and uses it (the `regmix study` command joins them).
"""
from .ledger import read_ledger, run_dir
from .merge import merge_evals
from .runner import PARTS, plan, run_study
from .suite import EvalSpec, Suite, load_suite, suite_path

__all__ = ["PARTS", "EvalSpec", "Suite", "load_suite", "merge_evals", "plan", "read_ledger", "run_dir",
           "run_study", "suite_path"]
