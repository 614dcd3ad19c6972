"""Evaluation: accuracy under attack, `regmix eval`, sanity checks, AutoAttack, records and tables.

    flags.py       per-point correctness, clean and under an attack (attacks run compacted)
    run.py         `regmix eval`: one run directory or checkpoint in, one JSON record out
    sanity.py      checks that a robustness number is one a reviewer would accept
    autoattack.py  the adapter over fra31's AutoAttack (either install), resumable
    records.py     the eval record format: save, load, find
    report.py      tables (mean +- std over seeds) from records

Attack names are parsed in one place, `regmix.attacks.specs.parse_attack`.
"""
from ..attacks.flags import attack_flags, clean_flags, make_loader, robust_accuracy, robust_flags, stack
from .records import find_records, load_record, save_record
from .report import build_table, format_table
from .run import evaluate_run

__all__ = ["attack_flags", "build_table", "clean_flags", "evaluate_run", "find_records", "format_table",
           "load_record", "make_loader", "robust_accuracy", "robust_flags", "save_record", "stack"]
