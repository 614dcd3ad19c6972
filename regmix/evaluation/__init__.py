"""Evaluation: `regmix eval`, sanity checks, records and tables.

    run.py         `regmix eval`: one run directory or checkpoint in, one JSON record out
    sanity.py      checks that a robustness number is one a reviewer would accept
    records.py     the eval record format: save, load, find
    report.py      tables (mean +- std over seeds) from records

Accuracy under attack (per-point flags, compacted batches) is regmix.attacks.flags, the AutoAttack adapter
regmix.attacks.autoattack; attack names are parsed in one place, `regmix.attacks.specs.parse_attack`.
"""
from .records import find_records, load_record, save_record
from .report import build_table, format_table
from .run import evaluate_run

__all__ = ["build_table", "evaluate_run", "find_records", "format_table", "load_record", "save_record"]
