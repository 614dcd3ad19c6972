"""`regmix study SUITE`: a suite file read and checked (suite.py), its runs trained, evaluated and
diagnosed (runner.py), evaluations made elsewhere merged (merge.py), tables written (report.py), the paper's claims tested over seeds (claims.py)."""
from .merge import merge_evals
from .runner import PARTS, StudyStopped, plan, read_ledger, run_dir, run_study
from .suite import EvalSpec, Suite, load_suite, suite_path

__all__ = ["PARTS", "EvalSpec", "Suite", "StudyStopped", "load_suite", "merge_evals", "plan", "read_ledger", "run_dir",
           "run_study", "suite_path"]
