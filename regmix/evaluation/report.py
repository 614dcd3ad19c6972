"""Tables from evaluation records: mean +- std over seeds, as Markdown, LaTeX or CSV."""
from __future__ import annotations

import statistics
from typing import Dict, List

from ..config import dotted_get
from ..registry import ConfigError

FORMATS = ("md", "latex", "csv")


def latest_per_evaluation(records: List[dict]) -> List[dict]:
    """One record per evaluated model (run, checkpoint, EMA, split, eps): the newest. A run evaluated
    twice (say PGD-20 on 1,000 points by the demo, then AutoAttack on 500) is one row, not two seeds."""
    newest: Dict[tuple, dict] = {}
    for r in records:
        key = (r.get("run_dir") or r.get("_path"), r.get("checkpoint"), r.get("ema"), r["split"], r["threat"]["eps"])
        if key not in newest or r.get("created", "") > newest[key].get("created", ""):
            newest[key] = r
    return list(newest.values())


def build_table(records: List[dict], group_by: str = "method") -> dict:
    """{'columns': [...], 'rows': [{'group': g, 'count': k, col: (mean, std) or None}]} in percent."""
    records = latest_per_evaluation(records)
    columns: List[str] = []
    for r in records:
        columns += [c for c in r["accuracy"] if c not in columns]
    groups: Dict[str, List[dict]] = {}
    for r in records:
        value = dotted_get(r, group_by)
        if value is None:
            raise ConfigError(f"--group-by: records have no field {group_by!r} (try method, model, dataset, "
                              f"checkpoint, method_options.alpha)")
        groups.setdefault(str(value), []).append(r)
    rows = []
    for group, members in groups.items():
        row = {"group": group, "count": len(members), "n": sorted({m["n"] for m in members})}
        for c in columns:
            values = [100 * m["accuracy"][c] for m in members if c in m["accuracy"]]
            row[c] = None if not values else (statistics.fmean(values),
                                              statistics.stdev(values) if len(values) > 1 else 0.0)
        rows.append(row)
    return {"group_by": group_by, "columns": columns, "rows": rows}


def format_table(table: dict, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    cols = table["columns"]

    def cell(v, pm):
        if v is None:
            return "-"
        mean, std = v
        return f"{mean:.2f}" if std == 0 else f"{mean:.2f} {pm} {std:.2f}"

    header = [table["group_by"], "seeds", "n", *cols]
    if fmt == "csv":
        lines = [",".join([table["group_by"], "seeds", "n", *[f"{c}_mean,{c}_std" for c in cols]])]
        for r in table["rows"]:
            vals = [f"{r[c][0]:.4f},{r[c][1]:.4f}" if r[c] else "," for c in cols]
            lines.append(",".join([r["group"], str(r["count"]), "/".join(map(str, r["n"])), *vals]))
        return "\n".join(lines)
    if fmt == "latex":
        lines = [r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
                 " & ".join(h.replace("_", r"\_") for h in header) + r" \\", r"\midrule"]
        for r in table["rows"]:
            lines.append(" & ".join([r["group"].replace("_", r"\_"), str(r["count"]), "/".join(map(str, r["n"])),
                                     *[cell(r[c], r"$\pm$") for c in cols]]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in table["rows"]:
        lines.append("| " + " | ".join([r["group"], str(r["count"]), "/".join(map(str, r["n"])),
                                        *[cell(r[c], "±") for c in cols]]) + " |")
    return "\n".join(lines)
