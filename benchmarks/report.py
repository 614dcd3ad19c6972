"""docs/benchmarks.md from benchmark records (JSON): every number in the page comes from a record, and each
section names its record. Sections run at different times or on a GPU come from different records.
Regenerate by hand: python -m benchmarks.report [RECORD ...] [--doc docs/benchmarks.md]
(no RECORD: every full-scale record in benchmarks/results, the latest that ran each section)"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.report_format import fmt_ms, fmt_s, profile_table, targets_table
from benchmarks.report_gpu import gpu_section

ROOT = Path(__file__).resolve().parent.parent


def _skipped_or_error(section):
    if not section:
        return ["Not run in this record (see --only)."]
    if "error" in section:
        return [f"Failed: `{section['error']}`"]
    if "skipped" in section:
        return [section["skipped"][0].upper() + section["skipped"][1:] + "."]
    return None


def _train_step(t: dict, on_gpu: bool = False) -> list:
    out = []
    out += [f"{t['model']}, {t['data']}, eps {t['eps']}; {t['steps_per_round']} steps per round; EMA in {t['ema']}. "
            "Forward passes and FLOP-equivalents (conv + linear FLOPs of one step over those of one forward pass "
            "of the batch, torch.utils.flop_counter) do not depend on the machine's load.", "",
            "| method | threat | time per step | forward passes | FLOP-equivalents | time / pgd_at | FLOPs / pgd_at |",
            "|---|---|---|---|---|---|---|"]
    pgd = t["seconds_per_step"]["pgd_at"]
    fpgd = t["work"]["pgd_at"]["flop_equivalents"]
    for name, sec in t["seconds_per_step"].items():
        w = t["work"][name]
        out.append(f"| {name} | {t['threats'][name]} | {1000 * sec:.1f} ms | {w['forward_passes']} | "
                   f"{w['flop_equivalents']:.2f} | {sec / pgd:.3f} | {w['flop_equivalents'] / fpgd:.3f} |")
    out += ["", *targets_table(t["targets"]), "",
            "Where the time goes (share of self CPU time by kind of operation, torch profiler):", ""]
    out += profile_table(t["profile"])
    out += ["", "EMA update, before (one lerp_/copy_ per tensor) and after (torch._foreach_lerp_ / _foreach_copy_):", "",
            "| model | tensors | before | after | speed-up | bitwise equal |", "|---|---|---|---|---|---|"]
    for name, e in t["ema_update"].items():
        out.append(f"| {name} | {e['tensors']} | {fmt_ms(e['timings']['per_tensor_loop'])} | {fmt_ms(e['timings']['foreach'])} | "
                   f"{e['speedup']:.2f}x | {e['bitwise_equal']} |")
    out += ["", NOTES["train_step"], ""]
    return out


def _attack(a: dict, on_gpu: bool = False) -> list:
    out = []
    out += [f"{a['points']} clean-correct test digits in one batch, Linf eps {a['eps']}, {a['steps']} steps of {a['step']:.4g}, "
            f"random start; torchattacks: {a['torchattacks']}.", "",
            "| attack | time | images/s | accuracy under attack |", "|---|---|---|---|"]
    for k, tm in a["timings"].items():
        out.append(f"| {k} | {fmt_s(tm)} | {a['images_per_s'][k]:.0f} | {100 * a['accuracy_under_attack'][k]:.1f}% |")
    apgd = a.get("apgd_ce_time_per_iteration_vs_regmix_pgd_step")
    out += ["", *targets_table(a["targets"]), "",
            (f"APGD-CE time per iteration / regmix PGD time per step: {apgd:.3f} (both one forward and one "
             "input-gradient pass per iteration; APGD adds its step-size schedule and keeps the best point)."
             if apgd is not None else "APGD-CE not measured here (pyautoattack absent)."),
            "", "Where the time goes (share of self CPU time by kind of operation):", "", *profile_table(a["profile"]), ""]
    return out


def _eval(e: dict, on_gpu: bool = False) -> list:
    out = []
    repeated = e.get("repeated", 1)
    points = (f"{e['points']} points ({e['points'] // repeated} test digits repeated {repeated} times, so that the "
              "card and not the host sets the pace)" if repeated > 1 else f"{e['points']} test digits")
    out += [f"{points}; the benchmark's model at eps {e['eps']} (chosen by bisection so that PGD-20 "
            f"leaves about 50% robust); clean accuracy {100 * e['clean_accuracy']:.1f}%. Both paths stop attacking "
            "a point at its first fooling iterate (`EarlyStopPGD`, benchmarks/early_stop.py); plain PGD-20 (every point, all steps, "
            "the final iterate) is shown for reference.", "",
            "| path | time | accuracy under attack |", "|---|---|---|"]
    for k, tm in e["timings"].items():
        out.append(f"| {k} | {fmt_s(tm)} | {100 * e['accuracy_under_attack'][k]:.1f}% |")
    out += ["", *targets_table(e["targets"]), "", f"Plain PGD-20 / compacted: {e['plain_pgd20_vs_compacted']:.2f}x.", ""]
    if e.get("gpu_busy_share"):
        out += ["Share of the wall time the card spends in kernels (torch profiler): "
                + ", ".join(f"{k} {v}" for k, v in e["gpu_busy_share"].items()) + ".", ""]
    return out


def _landscape(ls: dict, on_gpu: bool = False) -> list:
    out = []
    out += [f"{ls['grid']} grid, {ls['points']} test digits in one batch, the same two filter-normalised directions "
            "and end points for both tools (loss-landscapes' row offset accounted for when comparing values).", "",
            "| path | time |", "|---|---|"]
    for k, tm in ls["timings"].items():
        out.append(f"| {k} | {fmt_s(tm)} |")
    out += ["", *targets_table(ls["targets"]), "",
            f"Fast / plain regmix path: {ls['fast_vs_plain_speedup']:.2f}x; largest loss gap to loss-landscapes "
            f"{ls['max_abs_gap_vs_loss_landscapes']:.2g}, fast vs plain {ls['max_abs_gap_fast_vs_plain']:.2g}"
            + (f" (TF32 off; at default precision {ls['max_abs_gap_fast_vs_plain_default_precision']:.2g})"
               if on_gpu and "max_abs_gap_fast_vs_plain_default_precision" in ls else "")
            + ".", "",
            "Where the time goes (share of self CPU time by kind of operation, one whole surface each):", "",
            *profile_table(ls["profile"]), "", NOTES["landscape"], "",
            # on a GPU the profile's shares are the host's launch time, not the arithmetic: no ceiling from them
            *([] if on_gpu else _landscape_ceiling(ls))]
    return out


def _landscape_ceiling(ls: dict) -> list:
    """How far the fast path could go: its convolutions are arithmetic both tools must do, so loss-landscapes'
    time over the fast path's convolution time bounds the ratio from above."""
    fast, theirs = ls["timings"]["regmix_fast"]["median_s"], ls["timings"]["loss_landscapes"]["median_s"]
    shares = ls["profile"]["regmix_fast"]
    conv = fast * shares.get("convolution", 0.0)
    if conv <= 0:
        return []
    rest = sorted(((k, fast * v) for k, v in shares.items() if k != "convolution"), key=lambda kv: -kv[1])[:3]
    return [f"Ceiling: the fast path's convolutions alone take {conv:.2f} s of its {fast:.2f} s; with every other "
            f"operation removed the ratio could reach {theirs / conv:.2f}, no more. The rest of its time: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in rest) + "."]


def _autoattack(aa: dict, on_gpu: bool = False) -> list:
    out = []
    out += [f"{aa['points']} test digits, eps {aa['eps']}, version {aa['version']}, iterations {aa['iterations']}, "
            f"Square queries {aa['square_queries']}; same robust flags: {aa['agree']}.", "",
            "| path | time | accuracy under attack |", "|---|---|---|"]
    for k, tm in aa["timings"].items():
        out.append(f"| {k} | {fmt_s(tm)} | {100 * aa['accuracy_under_attack'][k]:.1f}% |")
    out += ["", *targets_table(aa["targets"]), ""]
    return out


def _memory(mem: dict, on_gpu: bool = False) -> list:
    out = []
    out += ["Peak resident memory of each case in a child process of its own (its VmHWM from /proc/self/status; wall time includes the start-up).", "",
            "| case | what | peak RSS | wall time |", "|---|---|---|---|"]
    for k, c in mem["cases"].items():
        out.append(f"| {k} | {mem['descriptions'][k]} | {c['peak_rss_mib']:.0f} MiB | {c['seconds']:.0f} s |")
    ps = mem["prior_storage"]
    out += ["", "FGSM-PGK's per-example prior (pgk, regmix):", "",
            "| data | examples | eta + m (float32) | if float16 | reset draw, before | reset draw, now |", "|---|---|---|---|---|---|"]
    for name in ("cifar10", "tinyimagenet"):
        d = ps[name]
        out.append(f"| {name} | {d['examples']:,} x {d['values_per_example']:,} | {d['float32_bytes'] / 1e9:.2f} GB | "
                   f"{d['float16_bytes_if_it_were_exact'] / 1e9:.2f} GB | {d['reset_temporary_bytes_before'] / 1e9:.2f} GB | "
                   f"{d['reset_temporary_bytes_now'] / 1e9:.3f} GB |")
    md = ps["measured_on_digits"]
    out += ["", f"Measured on a real prior (256 mnist5k training digits, three epochs of pgk steps, step = eps): {100 * md['eta_on_step_grid']:.1f}% of eta on "
            f"{{-eps, 0, eps}}, {100 * md['eta_exact_in_float16']:.1f}% exact in float16, {100 * md['eta_exact_in_bfloat16']:.1f}% "
            f"in bfloat16; m exact in float16: {100 * md['m_exact_in_float16']:.4f}%. Decision: {ps['decision']}.", "",
            NOTES["prior"], ""]
    return out


# section -> (heading, renderer); the page shows them in this order, CPU records first, then the GPU ones
SECTIONS = {"train_step": ("1. Training step", _train_step),
            "attack": ("2. Attack throughput", _attack),
            "eval": ("3. PGD-20 evaluation: compacted batch vs masking", _eval),
            "landscape": ("4. Weight landscape", _landscape),
            "autoattack": ("5. AutoAttack: regmix's adapter vs pyautoattack direct", _autoattack),
            "memory": ("6. Memory", _memory),
            "gpu": ("GPU", gpu_section)}


def _ran(section) -> bool:
    return isinstance(section, dict) and _skipped_or_error(section) is None


def _on_gpu(record) -> bool:
    return str(record["machine"]["device"]).startswith("cuda")


def merge(records: list) -> dict:
    """(on_gpu, section) -> (the section's results, its record): per section and kind of device, the latest
    record in which it ran; where it never ran, the latest record that tried it (its error or reason)."""
    chosen = {}
    for record in sorted(records, key=lambda r: r["date"]):
        for name, section in record["results"].items():
            if name not in SECTIONS:
                continue
            key = (_on_gpu(record), name)
            if _ran(section) or key not in chosen or not _ran(chosen[key][0]):
                chosen[key] = (section, record)
    return chosen


def earlier(records: list, chosen: dict) -> dict:
    """(on_gpu, section) -> the older records in which that section also ran, newest first: a page drawn
    from the latest record still names what the earlier ones measured (another machine, another load)."""
    out = {}
    for record in sorted(records, key=lambda r: r["date"], reverse=True):
        for name, section in record["results"].items():
            key = (_on_gpu(record), name)
            if key in chosen and chosen[key][1] is not record and _ran(section) and section.get("targets"):
                out.setdefault(key, []).append((section, record))
    return out


def _earlier_lines(older: list) -> list:
    if not older:
        return []
    return ["Earlier records of this section (superseded by the one above, kept in benchmarks/results): " + "; ".join(
        f"`{rec['record_path']}` ({rec['date']}, {rec['machine']['cpu']}, load average {rec['machine']['load_start']} "
        "at the start): " + ", ".join(f"{t['name']} {t['value']:.3f} ({'met' if t['met'] else 'not met'})"
                                      for t in section["targets"])
        for section, rec in older) + ".", ""]


def _machine(record) -> str:
    m = record["machine"]
    return (f"{m['cpu']}, {m['cpu_count']} logical CPUs, torch {m['torch']} with {m['torch_threads']} threads, "
            f"device `{m['device']}`{' (' + m['gpu'] + ')' if m.get('gpu') else ''}; load average "
            f"{m['load_start']} at the start and {m['load_end']} at the end; scale {record['scale']['name']}")


def render(records) -> str:
    """The page from one record or several (CPU and GPU runs, sections run at different times): each
    section from the latest record that ran it, each record listed with its command and machine."""
    records = [records] if isinstance(records, dict) else list(records)
    chosen = merge(records)
    older = earlier(records, chosen)
    used = sorted({id(rec): rec for _, rec in chosen.values()}.values(), key=lambda r: r["date"])
    label = {id(rec): f"R{i + 1}" for i, rec in enumerate(used)}
    out = ["# Benchmarks", "",
           "Generated from the records below; do not edit by hand (rerun a command, or `python -m benchmarks.report` "
           "to redraw this page from every record in benchmarks/results).", "",
           "| record | command | date | machine |", "|---|---|---|---|"]
    for rec in used:
        out.append(f"| {label[id(rec)]}: `{rec['record_path']}` | `{rec['command']}` | {rec['date']} | {_machine(rec)} |")
    out += ["", "Every comparison runs its contenders alternately in one process (A B C, C B A, ...), several rounds "
            "each, after a warm-up round; the tables give medians and the spread (max - min) / median. "
            "A ratio is of two medians.", ""]
    if any(rec["scale"]["name"] != "full" for rec in used):
        out += ["**Smoke run: tiny sizes, the timings mean nothing.**", ""]
    order = [(gpu, name) for gpu in (False, True) for name in SECTIONS if (gpu, name) in chosen]
    where = {key: f"{label[id(chosen[key][1])]}, {'GPU' if key[0] else 'CPU'}" for key in order}
    lines = ["| ratio | value | target | met | record | note |", "|---|---|---|---|---|---|"]
    for key in order:
        for r in chosen[key][0].get("targets", []) if _ran(chosen[key][0]) else []:
            lines.append(f"| {r['name']} | {r['value']:.3f} | {r['target']} | {'yes' if r['met'] else '**no**'} | "
                         f"{where[key]} | {r.get('note', '')} |")
    out += ["## Targets", "", *lines, ""]
    checks = [f"{name} ({where[(gpu, name)]}): {k} {'holds' if v else '**FAILS**'}" for gpu, name in order
              for k, v in (chosen[(gpu, name)][0].get("checks", {}) if _ran(chosen[(gpu, name)][0]) else {}).items()]
    out += ["Equal-result checks: " + ", ".join(checks) + ".", ""]
    gpu_names = [name for gpu, name in order if gpu]
    for name in SECTIONS:
        heading, draw = SECTIONS[name]
        # the GPU section from a GPU record; a CPU record only says why it was skipped
        key = (True, name) if name == "gpu" and (True, name) in chosen else (False, name)
        if name == "gpu":
            out += ["## GPU", ""]
        else:
            out += [f"## {heading}", ""]
        if key not in chosen:
            out += ["Not run in any record (see --only).", ""]
            if name == "gpu":
                out += ["No GPU was available for these records: the ratios above are CPU ratios.", ""]
            continue
        section, rec = chosen[key]
        out += [f"Record {where[key]}.", ""]
        body = _skipped_or_error(section) or draw(section, on_gpu=key[0])
        while body and body[-1] == "":
            body = body[:-1]
        out += body + [""] + _earlier_lines(older.get(key, []))
        if name == "gpu" and not _ran(section):
            out += ["No GPU was available for this run: the ratios above are CPU ratios.", ""]
    compared = [name for name in gpu_names if name != "gpu"]
    if compared:
        out += ["### The CPU comparisons, run on the GPU", "", NOTES["gpu_comparisons"], ""]
    for name in compared:
        section, rec = chosen[(True, name)]
        out += [f"### On the GPU: {SECTIONS[name][0].split('. ', 1)[1]}", "", f"Record {where[(True, name)]}.", ""]
        out += (_skipped_or_error(section) or SECTIONS[name][1](section, on_gpu=True)) + [""]
        out += _earlier_lines(older.get((True, name), []))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


NOTES = {
    "gpu_comparisons": (
        "These are the CPU sections' own sizes (the small digits model, a few hundred to a thousand points): on a "
        "GPU a whole attack or landscape of that size takes a fraction of a second, every kernel is tiny, and the "
        "host's launches and Python set the time, not the card. The ratios below therefore compare host overhead; "
        "their profiles (self CPU time by kind of operation) say where it goes; the compaction comparison repeats "
        "its 1,000 digits 32 times on a GPU so that the card, not the host, sets the pace (its busy share is given). "
        "In the landscape, regmix's fast path makes a pass's grid-point weights by one matrix product over the "
        "flattened parameters (base + coords @ directions) and evaluates as many points per pass as 32,768 images' "
        "activations allow (vmap over the stacked weights: the 11 x 11 grid in two passes); one point per pass, "
        "eager (regmix_fast_loop) and captured as a CUDA graph replayed per point (regmix_fast_graph), are timed "
        "beside it (records from 2026-12-04 on). With PyTorch's default TF32 cuDNN convolutions the fast and plain "
        "landscapes differ at TF32's rounding (\"at default precision\" below; each path moves about as much from "
        "its fp32 value), so the fast-equals-plain check is made with TF32 off, where they agree to float rounding: "
        "TF32 is the whole difference (records before 2026-11-26 03:49 made the check at default precision and read FAILS)."),
    "train_step": (
        "Reading the profile: the methods differ in how many forward and backward passes they make, and the FLOP "
        "count says how much of a PGD-10 AT step each should cost (pgk 7/23, regmix 10/23, regmix/pgk 10/7). "
        "The issue's measured shares (pgk 0.50, regmix 0.73 of pgd_at) came from the demo recipes, whose pgd_at "
        "makes 5 PGD steps, not 10 (configs/demo/base.yaml: threat.steps 5): against PGD-5 AT (13 "
        "FLOP-equivalents) the FLOP shares are 0.54 and 0.77, so those epochs were at their floating-point "
        "share already. The rest of a step is in the profile table: the prior's gather/scatter, the optimizer "
        "and EMA (the EMA is now one multi-tensor call, see above), softmax/loss and elementwise work. Host syncs: "
        "the batch accuracies made two .item() calls per pgk/regmix step and the trainer several per step for every "
        "method (loss checks, logging); free on a CPU, a stall per step on a GPU. BatchNorm mode switches cost "
        "a module walk per attack (small_cnn has no BatchNorm). No forward pass can be dropped or merged without changing results: z_init's graph feeds "
        "both the attack gradient and the regulariser, and concatenating the final and clean batches would change "
        "BatchNorm's batch statistics and the floating-point sums."),
    "landscape": (
        "Both tools make the same forward passes; the fast path saves what is not arithmetic: no autograd graph "
        "(inference mode; loss-landscapes' Loss metric records one), weights passed to a functional call instead "
        "of being written into the model, and channels-last tensors for oneDNN's convolutions and pooling on a "
        "CPU. Several grid points per pass (vmap over stacked weights, points_per_batch) measured slower on a "
        "CPU, so the CPU default is one point per pass; on a GPU as many points as 32,768 images' activations "
        "allow (see the GPU part of this page). The small model's first convolution has a single input channel, "
        "a poor shape for oneDNN, and stays in both. On a one-channel tensor contiguous(memory_format="
        "channels_last) changes nothing (its layout satisfies both formats), so in records up to 2026-12-04 18:12 "
        "the first convolution's output came out in the plain layout and was copied to channels-last before the "
        "second, once per grid point (then most of the fast path's 'elementwise' share, 14.8%); since then the "
        "fast path gives inputs and weights channels-last strides (to(memory_format=...), diagnostics/plane.py) "
        "and that copy is gone. After the convolutions, max pooling takes the largest share in both tools."),
    "prior": (
        "Why not half precision: a run stores eta after projecting into the [0, 1] box, (x + eta).clamp(0, 1) - x, "
        "and float rounding of x + eta leaves values that are neither multiples of the step nor representable in "
        "16 bits (even eps = 0.1 itself is not a float16); m accumulates normalised gradients. Storing either "
        "narrower changes the next epoch's starting points, so it would change results; float32 stays. What "
        "shrank instead is the reset: the fresh draw used to be a second full-size float32 buffer (on the CPU) and is "
        "now drawn in chunks of 4,096 examples, bit for bit the same numbers (tests/test_prior.py)."),
}


def write(records, doc: Path):
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(records))


def full_records(folder: Path) -> list:
    """Every full-scale record of a results folder (smoke records are CI's and mean nothing)."""
    records = []
    for f in sorted(Path(folder).glob("*.json")):
        record = json.loads(f.read_text())
        # where the record lies now (a GPU machine's record names the folder it was written to there)
        record["record_path"] = os.path.relpath(f.resolve(), ROOT) if f.resolve().is_relative_to(ROOT) else str(f)
        records.append(record)
    return [r for r in records if r.get("scale", {}).get("name") == "full"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("records", nargs="*", help="benchmark records (default: every full-scale record in "
                                                   "benchmarks/results)")
    parser.add_argument("--doc", default="docs/benchmarks.md", help="page to write (default: docs/benchmarks.md)")
    args = parser.parse_args(argv)
    if args.records:
        records = [json.loads(Path(r).read_text()) for r in args.records]
    else:
        records = full_records(Path(__file__).resolve().parent / "results")
    if not records:
        parser.exit(2, "python -m benchmarks.report: error: records: no full-scale record found\n")
    write(records, Path(args.doc))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
