"""Tables from evaluation records: mean +- std over seeds, as Markdown, LaTeX or CSV.

A row is one setting: every field of what was evaluated except the seed (method and its options,
model, dataset/split/n, threat, checkpoint and EMA, the attack set). Its records are the seeds: one per
run (a run is its run id, else its resolved path), the newest where a run was evaluated more than
once in that setting. So one model at two eps, or at best and last, is two rows, never two seeds.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from typing import Dict, List

from ..config import dotted_get
from ..registry import ConfigError
from .records import run_identity

FORMATS = ("md", "latex", "csv")


def _options(r):
    options = r.get("method_options") or {}
    return ", ".join(f"{k}={options[k]}" for k in sorted(options)) or "-"


def _threat(r):
    t = r.get("threat") or {}
    return f"{t.get('norm', 'linf')} {t.get('eps', 0):.4g}"


def _checkpoint(r):
    return f"{r.get('checkpoint', '?')}{' ema' if r.get('ema') else ''}"


def _attacks(r):
    names = r.get("attack_list") or sorted(k for k in r["accuracy"] if k != "worst")
    extra = []
    if r.get("step") is not None:
        extra.append(f"step {r['step']:.4g}")
    if (r.get("restarts") or 1) != 1:
        extra.append(f"{r['restarts']} restarts")
    return ",".join(names) + (f" ({', '.join(extra)})" if extra else "")


# (column, how a record gives it): what a row is grouped by besides the --group-by field
SETTING = [("method", lambda r: r.get("method")), ("options", _options), ("model", lambda r: r.get("model")),
           ("data", lambda r: f"{r.get('dataset')}/{r.get('split')}"), ("n", lambda r: r.get("n")),
           ("threat", _threat), ("checkpoint", _checkpoint), ("attacks", _attacks)]


def setting(r) -> Dict[str, object]:
    return {name: get(r) for name, get in SETTING}


def latest_per_evaluation(records: List[dict]) -> List[dict]:
    """One record per run and setting: the newest. The same model reached through a relative, an
    absolute and a symlinked path, or evaluated twice the same way, counts once."""
    newest: Dict[tuple, dict] = {}
    for r in records:
        key = (run_identity(r), json.dumps(setting(r), sort_keys=True, default=str))
        if key not in newest or r.get("created", "") > newest[key].get("created", ""):
            newest[key] = r
    return list(newest.values())


def build_table(records: List[dict], group_by: str = "method") -> dict:
    """{'group_by', 'columns' (accuracies), 'keys' (the setting columns that differ between rows),
    'common' (those that do not), 'rows': [{'group', 'count', 'n', key: value, col: (mean, std) or None,
    'warnings': AutoAttack's check warnings}]}, accuracies in percent."""
    records = latest_per_evaluation(records)
    columns: List[str] = []
    for r in records:
        columns += [c for c in r["accuracy"] if c not in columns]
    groups: Dict[str, List[dict]] = {}
    for r in records:
        value = dotted_get(r, group_by)
        if value is None:
            raise ConfigError(f"group_by: records have no field {group_by!r} (try method, model, dataset, "
                              f"checkpoint, method_options.alpha)")
        key = json.dumps([str(value), setting(r)], sort_keys=True, default=str)
        groups.setdefault(key, []).append(r)
    rows = []
    for key, members in groups.items():
        group, values = json.loads(key)
        row = {"group": group, "count": len(members), **values,  # n is part of the setting: one per row
               "warnings": list(dict.fromkeys(w for m in members for w in m.get("autoattack_warnings") or []))}
        for c in columns:
            accs = [100 * m["accuracy"][c] for m in members if c in m["accuracy"]]
            row[c] = None if not accs else (statistics.fmean(accs), statistics.stdev(accs) if len(accs) > 1 else 0.0)
        rows.append(row)
    # the group_by field is the first column already; "n" has its own column
    names = [name for name, _ in SETTING if name not in (group_by, "n")]
    keys = [k for k in names if len({json.dumps(r[k], default=str) for r in rows}) > 1]
    common = {k: rows[0][k] for k in names if k not in keys} if rows else {}
    return {"group_by": group_by, "columns": columns, "keys": keys, "common": common, "rows": rows}


def _cell(v, pm):
    if v is None:
        return "-"
    mean, std = v
    return f"{mean:.2f}" if std == 0 else f"{mean:.2f} {pm} {std:.2f}"


def _notes(table) -> List[str]:
    """What every row shares, and AutoAttack's warnings per row."""
    common = "; ".join(f"{k}: {v}" for k, v in table["common"].items())
    notes = [f"all rows: {common}"] if common else []
    for r in table["rows"]:
        label = " / ".join([r["group"], *[str(r[k]) for k in table["keys"]]])
        notes += [f"AutoAttack warning ({label}): {w}" for w in r["warnings"]]
    return notes


def format_table(table: dict, fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"fmt: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    cols, keys = table["columns"], table["keys"]
    if fmt == "csv":  # every setting field, so a script can filter without guessing
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        fields = [name for name, _ in SETTING if name not in (table["group_by"], "n")]
        writer.writerow([table["group_by"], "seeds", "n", *fields, *[f"{c}_{s}" for c in cols for s in ("mean", "std")],
                         "autoattack_warnings"])
        for r in table["rows"]:
            vals = [f"{r[c][i]:.4f}" if r[c] else "" for c in cols for i in (0, 1)]
            writer.writerow([r["group"], r["count"], r["n"], *[r[f] for f in fields], *vals,
                             " | ".join(r["warnings"])])
        return out.getvalue().rstrip("\n")
    header = [table["group_by"], "seeds", "n", *keys, *cols]
    body = [[r["group"], str(r["count"]), str(r["n"]), *[str(r[k]) for k in keys]] for r in table["rows"]]
    if fmt == "latex":
        esc = lambda s: s.replace("_", r"\_").replace("%", r"\%")
        lines = [r"\begin{tabular}{l" + "l" * len(keys) + "r" * (len(header) - 1 - len(keys)) + "}", r"\toprule",
                 " & ".join(esc(h) for h in header) + r" \\", r"\midrule"]
        for r, cells in zip(table["rows"], body):
            lines.append(" & ".join([*map(esc, cells), *[_cell(r[c], r"$\pm$") for c in cols]]) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"] + [f"% {esc(note)}" for note in _notes(table)]
        return "\n".join(lines)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r, cells in zip(table["rows"], body):
        lines.append("| " + " | ".join([*cells, *[_cell(r[c], "±") for c in cols]]) + " |")
    notes = _notes(table)
    return "\n".join(lines + ([""] + notes if notes else []))
