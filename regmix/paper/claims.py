"""The RegMix paper's claims, each tested over seeds against the runs of a study (the engine's results
dict, regmix.study.results.collect), and DIR/claims.md; METRICS, the numbers they are decided on.

Each claim names the methods RegMix is compared with and the metrics that decide it (the first ones
listed, `primary`); every metric is compared with stats.compare (Welch's t and a bootstrap interval
over seeds). A claim "holds" when every primary comparison holds, "does not hold" when any primary
comparison is reversed, and is "unclear" otherwise; the other metrics are shown beside it.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

from ..files import atomic_write_text
from ..study.metrics import accuracy, diagnostic, epochs_to_90, mean_std, number, per_seed, robust_auc
from ..study.stats import compare

# name -> (getter, higher_is_better, unit); the evaluations named are those of the suites (configs/study/)
METRICS = {
    "PGD-20": (accuracy("whole", "pgd20"), True, "%"),
    "CW-20": (accuracy("whole", "cw20"), True, "%"),
    "APGD-CE+APGD-T": (accuracy("apgd", "aa:apgd-ce+apgd-t"), True, "%"),
    "AutoAttack": (accuracy("autoattack", "aa"), True, "%"),
    "clean": (accuracy("whole", "clean"), True, "%"),
    "PGD-20 at 1.5x eps": (accuracy("wide15", "pgd20"), True, "%"),
    "PGD-20 at 2x eps": (accuracy("wide2", "pgd20"), True, "%"),
    "robust val. acc., mean over epochs": (robust_auc, True, "%"),
    "epochs to 90% of best robust val. acc.": (epochs_to_90, False, "epochs"),
    "Hessian top eigenvalue (adv.)": (diagnostic("weight", "hessian", "adv"), False, ""),
    "Hessian top eigenvalue (clean)": (diagnostic("weight", "hessian", "clean"), False, ""),
    "sharpness (adv.)": (diagnostic("weight", "sharpness", "adv", "max_rise"), False, ""),
    "sharpness (clean)": (diagnostic("weight", "sharpness", "clean", "max_rise"), False, ""),
}
for _view in ("clean", "final"):
    METRICS[f"p(true), {_view}"] = (diagnostic("softmax", "summary", _view, "true_prob"), True, "")
    METRICS[f"CE to one-hot, {_view}"] = (diagnostic("softmax", "summary", _view, "ce"), False, "")
    METRICS[f"ECE, {_view}"] = (diagnostic("softmax", "summary", _view, "ece"), False, "")

SOFTMAX = [f"{k}, {v}" for v in ("clean", "final") for k in ("p(true)", "CE to one-hot", "ECE")]
MAIN = ("", "")   # (sweep, variant) of the main table
NO_SMOOTHING = {"regmix": ("regmix_no_smoothing", "no_label_smoothing"), "pgk": ("pgk_no_smoothing", "no_label_smoothing"),
                "pgd_at": MAIN}
FIVE_STEP = {"regmix": ("regmix_5step", "multistep_attack"), "pgk": ("pgk_5step", "multistep_attack")}
WIDTH32 = {m: (f"{m}_width32", "width32") for m in ("regmix", "pgk", "pgd_at")}
LANDSCAPE = ("Hessian top eigenvalue (adv.)", "Hessian top eigenvalue (clean)", "sharpness (adv.)", "sharpness (clean)")
ROBUSTNESS = ("PGD-20", "CW-20", "APGD-CE+APGD-T", "AutoAttack", "clean")   # the metrics of a robustness claim
CONTROLLED_PGD_AT = ("PGD-AT + EMA + smoothing", "pgd_at", ("pgd_at_ema_ls", "ema_ls"))   # PGD-AT with their EMA and smoothing

CLAIMS = [
    {"id": "robustness", "claim": "RegMix is more robust than FGSM-PGK and PGD-AT",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ROBUSTNESS},
    {"id": "robustness_no_smoothing", "claim": "RegMix is more robust, label smoothing off in RegMix and FGSM-PGK",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ["PGD-20", "CW-20", "APGD-CE+APGD-T", "clean"], "groups": NO_SMOOTHING, "tag": "LS off"},
    {"id": "wider_eps", "claim": "RegMix stays more robust beyond the training eps",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20 at 1.5x eps", "PGD-20 at 2x eps"],
     "metrics": ["PGD-20 at 1.5x eps", "PGD-20 at 2x eps"]},
    {"id": "convergence", "claim": "RegMix converges faster",
     "against": ["pgk", "pgd_at"], "primary": ["robust val. acc., mean over epochs"],
     "metrics": ["robust val. acc., mean over epochs", "epochs to 90% of best robust val. acc."]},
    {"id": "landscape", "claim": "RegMix has a smoother loss landscape",
     "against": ["pgk", "pgd_at"], "primary": ["Hessian top eigenvalue (adv.)"],
     "metrics": LANDSCAPE},
    {"id": "landscape_no_smoothing", "claim": "RegMix has a smoother loss landscape, label smoothing off",
     "against": ["pgk", "pgd_at"], "primary": ["Hessian top eigenvalue (adv.)"],
     "metrics": LANDSCAPE, "groups": NO_SMOOTHING, "tag": "LS off"},
    {"id": "softmax", "claim": "RegMix's softmax is closer to the ground truth (each as trained)",
     "against": ["pgk", "pgd_at"], "primary": ["CE to one-hot, clean", "CE to one-hot, final"], "metrics": SOFTMAX},
    {"id": "softmax_no_smoothing", "claim": "RegMix's softmax is closer to the ground truth, label smoothing off",
     "against": ["pgk", "pgd_at"], "primary": ["CE to one-hot, clean", "CE to one-hot, final"], "metrics": SOFTMAX,
     "groups": NO_SMOOTHING, "tag": "LS off"},
    # issue 20's controls: the attack, the EMA and the smoothing held equal
    {"id": "equal_attack", "claim": "RegMix's gain over FGSM-PGK at equal attack strength (both with the 5-step "
                                    "final attack)",
     "against": ["pgk"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ROBUSTNESS, "groups": FIVE_STEP,
     "tag": "both 5-step"},
    {"id": "pgd_at_ema_ls", "claim": "EMA and label smoothing make PGD-AT more robust",
     "subject": CONTROLLED_PGD_AT,
     "against": [("PGD-AT", "pgd_at", MAIN)], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ROBUSTNESS},
    {"id": "pgd_at_ema", "claim": "EMA alone makes PGD-AT more robust",
     "subject": ("PGD-AT + EMA", "pgd_at", ("pgd_at_ema", "ema")),
     "against": [("PGD-AT", "pgd_at", MAIN)], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ROBUSTNESS},
    {"id": "regmix_vs_controlled_pgd_at", "claim": "RegMix (5-step attack) is more robust than PGD-AT with the same "
                                                   "EMA and smoothing",
     "subject": ("RegMix, 5-step", "regmix", FIVE_STEP["regmix"]),
     "against": [CONTROLLED_PGD_AT],
     "primary": ["PGD-20", "APGD-CE+APGD-T"], "metrics": ROBUSTNESS},
    # added 2026-12-06, after regmix_vs_controlled_pgd_at was read (it held): its control, the same comparison
    # with FGSM-PGK's 5-step runs, so that a gain of the 5-step pipeline is not read as RegMix's
    {"id": "pgk_vs_controlled_pgd_at", "claim": "FGSM-PGK (5-step attack) is more robust than PGD-AT with the same "
                                                "EMA and smoothing",
     "subject": ("FGSM-PGK, 5-step", "pgk", FIVE_STEP["pgk"]),
     "against": [CONTROLLED_PGD_AT],
     "primary": ["PGD-20", "APGD-CE+APGD-T"], "metrics": ROBUSTNESS},
    # added 2026-12-06, after landscape_no_smoothing was read (RegMix and PGK sharper without the smoothing): the
    # smoothing's share of the landscape on PGD-AT, against PGD-AT with the same EMA (the EMA's share apart)
    {"id": "pgd_at_smoothing_landscape", "claim": "Label smoothing gives PGD-AT (with the EMA) a smoother loss "
                                                  "landscape",
     "subject": CONTROLLED_PGD_AT,
     "against": [("PGD-AT + EMA", "pgd_at", ("pgd_at_ema", "ema")), ("PGD-AT", "pgd_at", MAIN)],
     "primary": ["Hessian top eigenvalue (adv.)"], "metrics": LANDSCAPE},
    {"id": "architecture", "claim": "RegMix is more robust than FGSM-PGK and PGD-AT on another architecture "
                                    "(small_cnn width 32)",
     "against": ["pgk", "pgd_at"], "primary": ["PGD-20", "APGD-CE+APGD-T"],
     "metrics": ROBUSTNESS, "groups": WIDTH32,
     "tag": "width 32"},
]


def values(results: dict, method: str, metric: str, where=MAIN) -> List[float]:
    """One value per seed of `metric` (a name of METRICS) for the runs of `method` in (sweep, variant) `where`."""
    return per_seed(results, METRICS[metric][0], method, where)


def _sides(claim: dict):
    """(subject, [against...]) of a claim, each (label, method, (sweep, variant)). By default the subject is
    RegMix and each name in `against` a method, in the group `groups` gives it (else the main table)."""
    groups = claim.get("groups") or {}
    subject = claim.get("subject") or ("RegMix", "regmix", groups.get("regmix", MAIN))
    against = [o if isinstance(o, tuple) else (o, o, groups.get(o, MAIN)) for o in claim["against"]]
    return subject, against


def evaluate_claims(results: dict, claims=None) -> List[dict]:
    """Each claim (default: CLAIMS) decided on `results`: {id, claim, primary, answer, subject, tag (where the
    comparison was made, for a figure's row: LS off, both 5-step, width 32; "" for the main table), rows}."""
    out = []
    for claim in CLAIMS if claims is None else claims:
        (subject, method, where), rows = _sides(claim)[0], []
        for label, other, other_where in _sides(claim)[1]:
            for metric in claim["metrics"]:
                a = values(results, method, metric, where)
                b = values(results, other, metric, other_where)
                if not a or not b:
                    rows.append({"against": label, "metric": metric, "verdict": "no data", "a": a, "b": b})
                    continue
                row = compare(a, b, higher_is_better=METRICS[metric][1])
                rows.append({"against": label, "metric": metric, "a": a, "b": b, **row})
        primary = [r for r in rows if r["metric"] in claim["primary"]]
        verdicts = {r["verdict"] for r in primary}
        answer = ("no data" if not primary or verdicts == {"no data"} else
                  "does not hold" if "reversed" in verdicts else
                  "holds" if verdicts == {"holds"} else "unclear")
        out.append({"id": claim["id"], "claim": claim["claim"], "primary": claim["primary"], "answer": answer,
                    "subject": subject, "tag": claim.get("tag", ""), "rows": rows})
    return out


def write_claims(results: dict, dest: Path) -> Path:
    """DEST/claims.md from results['claims'] (evaluate_claims): each claim's answer, then its comparisons."""
    lines = ["# The paper's claims on this study", "",
             f"Suite `{results['suite']}`; regenerate with `{results.get('command') or 'regmix study ... --results'}`.",
             "Per-seed values (one per trained model) compared with Welch's t-test (p) and a 95% bootstrap "
             "interval of the difference (the subject, RegMix unless a claim names another, minus the other; 10,000 "
             "resamples of the seeds). A comparison "
             "holds or is reversed only when p < 0.05 and the interval excludes 0; otherwise it is unclear. "
             "A claim holds when every primary comparison holds and does not hold when one is reversed.", "",
             "| claim | answer | decided by |", "|---|---|---|"]
    for c in results["claims"]:
        lines.append(f"| {c['claim']} | **{c['answer']}** | {', '.join(c['primary'])} |")
    for c in results["claims"]:
        who = c.get("subject", "RegMix")
        lines += ["", f"## {c['claim']}: {c['answer']}", "",
                  f"| against | metric | {who} | other | {who} - other | 95% interval | Welch p | seeds | verdict |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in c["rows"]:
            head = f"| {r['against']} | {r['metric']}{' (primary)' if r['metric'] in c['primary'] else ''} | " \
                   f"{mean_std(r['a'])} | {mean_std(r['b'])} |"
            if r["verdict"] == "no data":
                lines.append(f"{head} - | - | - | {len(r['a'])}/{len(r['b'])} | no data |")
                continue
            ci = f"[{number(r['ci'][0])}, {number(r['ci'][1])}]"
            lines.append(f"{head} {number(r['diff'])} | {ci} | {number(r['p'], 3)} | {r['n_a']}/{r['n_b']} | "
                         f"{r['verdict']} |")
    path = dest / "claims.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
