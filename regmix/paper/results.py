"""`regmix study SUITE --results DIR` for the RegMix paper's study: the engine's numbers and records
(regmix.study.results), the paper's claims decided on them (claims.py, saved in results.json, which the
claims figure reads) and its tables (tables.py), then the generated blocks of DIR/README.md."""
from __future__ import annotations

from pathlib import Path

from ..study.results import collect, copy_records, fill_readme, save_results
from ..study.suite import Suite
from .claims import evaluate_claims, write_claims
from .tables import write_tables


def write_results(suite: Suite, out, dest, *, command: str = "") -> Path:
    """DEST/results.json, DEST/records/, DEST/tables.md and DEST/claims.md from study folder OUT, and
    the generated blocks of DEST/README.md when it exists. command: the command line that regenerates
    DEST, written under its tables. Returns the path of results.json."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    results = collect(suite, out)
    results["command"] = command
    copy_records(results, dest)
    results["claims"] = evaluate_claims(results)
    path = save_results(results, dest)
    write_tables(results, dest)
    write_claims(results, dest)
    fill_readme(dest, ("tables.md", "claims.md"))
    return path
