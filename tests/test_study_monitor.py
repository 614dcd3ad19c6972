"""The study's reading of the masking monitor: each run's epoch records re-judged with today's rule
(regmix.study.results._monitor) and the table that sets them beside the APGD gap (regmix.paper.tables)."""
import json

from regmix.paper.tables import _monitor_table, write_tables
from regmix.paper.threshold import CURRENT, choose_masking_threshold, monitor_twins, threshold_section
from regmix.rundir import RunDir
from regmix.study.results import _monitor

CONFIG = {"eval": {"masking_threshold": 0.1}, "train": {"eps_warmup_epochs": 2}}


def run_with(tmp_path, epochs):
    """A run folder whose metrics.jsonl holds epoch records (clean, pgd, strong, fgsm) as the trainer logs them."""
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    lines = [{"kind": "epoch", "epoch": i, "step": i, "val_clean": clean, "val_pgd": pgd, "val_monitor_pgd": pgd,
              "val_monitor_strong": strong, "val_monitor_fgsm": fgsm, "val_monitor_flagged": 1.0}
             for i, (clean, pgd, strong, fgsm) in enumerate(epochs)]
    rd.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return rd


def test_a_run_is_rejudged_with_todays_rule_and_both_selections_are_named(tmp_path):
    rd = run_with(tmp_path, [(0.9, 0.05, 0.01, 0.60),   # eps warm-up: not armed, whatever the gaps
                             (0.9, 0.60, 0.55, 0.75),   # healthy: a 15-point FGSM gap alone is no flag
                             (0.9, 0.80, 0.50, 0.85),   # masked: PGD-10 30 points over the strong attack
                             (0.9, 0.70, 0.62, 0.72),   # the best under the strong attack
                             (0.9, 0.10, 0.08, 0.80)])  # overfitting: PGD-10 fell 70 points, FGSM stayed
    m = _monitor(rd, CONFIG)
    assert m["masking_epochs"] == [3] and m["overfit_epochs"] == [5]
    assert abs(m["max_overfit_gap"] - 0.70) < 1e-9  # epoch 5: FGSM 70 points above PGD-10, 70 below its best
    assert m["select_pgd_epoch"] == 3 and m["select_strong_epoch"] == 4
    assert abs(m["max_pgd_gap"] - 0.30) < 1e-9 and abs(m["max_fgsm_gap"] - 0.70) < 1e-9  # armed epochs only
    assert m["attack"] == "pgd"  # a config written before eval.monitor_attack: the pair it was measured with
    assert _monitor(rd, {**CONFIG, "eval": {**CONFIG["eval"], "monitor_attack": "apgd"}})["attack"] == "apgd"


def test_a_run_monitored_every_few_epochs_selects_on_pgd_among_all_its_epochs(tmp_path):
    """eval.monitor_every: the epochs without monitor fields still count for best.pt on PGD-10."""
    rd = run_with(tmp_path, [(0.9, 0.60, 0.55, 0.7), (0.9, 0.80, 0.5, 0.85), (0.9, 0.7, 0.65, 0.75)])
    lines = rd.metrics_path.read_text().splitlines()
    second = {k: v for k, v in json.loads(lines[1]).items() if not k.startswith("val_monitor_")}
    rd.metrics_path.write_text("\n".join([lines[0], json.dumps(second), lines[2]]) + "\n")
    m = _monitor(rd, {**CONFIG, "eval": {**CONFIG["eval"], "monitor_every": 2}})
    assert m["select_pgd_epoch"] == 2 and m["select_strong_epoch"] == 3 and m["every"] == 2
    assert m["masking_epochs"] == [] and abs(m["max_pgd_gap"] - 0.05) < 1e-9  # epoch 2 was not monitored


def test_a_run_without_a_monitor_keeps_its_entry_as_it_was(tmp_path):
    rd = RunDir(tmp_path / "old")
    rd.path.mkdir()
    rd.metrics_path.write_text(json.dumps({"kind": "epoch", "epoch": 0, "step": 0, "val_clean": 0.9, "val_pgd": 0.5}) + "\n")
    assert _monitor(rd, CONFIG) == {}
    assert _monitor_table({"runs": [{"name": "old-seed0", "sweep": None}]}) == []


def test_the_table_sets_the_flags_beside_the_apgd_gap(tmp_path):
    m = _monitor(run_with(tmp_path, [(0.9, 0.6, 0.55, 0.7), (0.9, 0.8, 0.5, 0.85)]), CONFIG)
    runs = [{"name": "regmix-seed1", "sweep": None, "monitor": m,
             "same_points": {"apgd": {"n": 500, "pgd20": 0.80, "attack": 0.64}}},
            {"name": "regmix-select_strong-seed1", "sweep": "regmix_select_strong", "monitor": m},
            {"name": "pgk-pgk_5step-multistep_attack-seed0", "sweep": "pgk_5step", "monitor": {
                **m, "masking_epochs": [], "overfit_epochs": []},
             "same_points": {"apgd": {"n": 500, "pgd20": 0.90, "attack": 0.78}}},
            {"name": "pgk-pgk_5step-multistep_attack-seed1", "sweep": "pgk_5step", "monitor": {
                **m, "masking_epochs": [], "overfit_epochs": []},
             "same_points": {"apgd": {"n": 500, "pgd20": 0.90, "attack": 0.85}}}]
    table = "\n".join(_monitor_table({"runs": runs}))
    assert "| regmix-seed1 | 2 | 1 | 2 | - | 30.0 | 5.0 | 16.0 |" in table
    assert "| sweep `regmix_select_strong`: 1 of 1 runs flagged (regmix-select_strong-seed1) |" in table  # no APGD
    # unflagged while training, yet one of the two masked on the test split (a 12-point drop)
    assert ("| sweep `pgk_5step`: 0 of 2 runs flagged; 1 of 2 with APGD masked "
            "(pgk-pgk_5step-multistep_attack-seed0) |") in table


# ---------------------------------------------------------------- the threshold rule (regmix/paper/threshold.py)

def entry(name, method, gap, drop, sweep="", seed=0, overfit=None):
    """A results entry: its monitor's largest PGD-10 - strong gap (and overfitting level, where given) and
    PGD-20 - APGD on the same points."""
    same = {} if drop is None else {"apgd": {"n": 500, "pgd20": 0.80, "attack": 0.80 - drop}}
    monitor = {"max_pgd_gap": gap, **({} if overfit is None else {"max_overfit_gap": overfit})}
    return {"name": name, "method": method, "seed": seed, "sweep": sweep, "monitor": monitor, "same_points": same}


def calibration(gaps_drops):
    return [entry(f"{m}-seed{i}", m, g, d, seed=i) for m in ("pgk", "regmix") for i, (g, d) in enumerate(gaps_drops[m])]


def test_the_threshold_waits_for_every_calibration_run():
    runs = calibration({"pgk": [(0.05, 0.04)], "regmix": [(0.09, 0.16), (0.06, None)]})
    assert choose_masking_threshold({"runs": runs}) is None
    assert threshold_section({"runs": runs}) == []


def test_the_threshold_stays_without_masking_or_when_it_is_already_caught():
    plain = calibration({"pgk": [(0.05, 0.04)], "regmix": [(0.09, 0.07)]})
    assert choose_masking_threshold({"runs": plain})["threshold"] == CURRENT
    caught = calibration({"pgk": [(0.05, 0.04)], "regmix": [(0.12, 0.16)]})
    c = choose_masking_threshold({"runs": caught})
    assert c["threshold"] == CURRENT and "flagged at the current threshold" in c["reason"]


def test_the_threshold_falls_below_the_smallest_masked_gap_when_no_clean_held_out_run_is_flagged():
    runs = calibration({"pgk": [(0.05, 0.04), (0.065, 0.07)], "regmix": [(0.09, 0.16), (0.07, 0.108)]})
    runs += [entry("pgd_at-seed0", "pgd_at", 0.06, 0.02), entry("pgk-pgk_5step-multistep_attack-seed0", "pgk", 0.065,
                                                                0.03, sweep="pgk_5step")]
    c = choose_masking_threshold({"runs": runs})
    # masked calibration gaps 0.09 and 0.07: flagged only below 0.07; clean held-out gaps reach 0.065
    assert c["threshold"] == 0.065 and len(c["held_out"]) == 2
    text = "\n".join(threshold_section({"runs": runs}))
    assert "Decision by the rule: threshold 6.5 points (the largest threshold on the 0.5-point grid" in text
    assert "nothing has tested it" not in text
    calibration_only = [e for e in runs if not e["sweep"] and e["method"] in ("pgk", "regmix")]
    assert "no held-out run has APGD yet" in choose_masking_threshold({"runs": calibration_only})["reason"]
    assert "| regmix-seed1 | 10.8 | yes | 7.0 | no | yes |" in text


def test_the_threshold_section_shows_the_overfitting_rule_at_the_chosen_threshold_beside_the_rule():
    runs = calibration({"pgk": [(0.05, 0.04)], "regmix": [(0.08, 0.16)]})
    runs += [entry("fgsm_rs-seed2", "fgsm_rs", 0.045, 0.102, overfit=0.08),   # masked; its gap is small
             entry("fgsm_rs-seed1", "fgsm_rs", 0.055, 0.064, overfit=0.075)]  # at the threshold: not above it
    c = choose_masking_threshold({"runs": runs})
    assert c["threshold"] == 0.075  # decided by the masking gap alone: the overfitting level does not move it
    text = "\n".join(threshold_section({"runs": runs}))
    assert "| overfitting flagged at 7.5 |" in text
    assert "| fgsm_rs-seed2 | 10.2 | yes | 4.5 | no | no | yes |" in text
    assert "| fgsm_rs-seed1 | 6.4 | no | 5.5 | no | no | no |" in text
    assert "| pgk-seed0 | 4.0 | no | 5.0 | no | no | - |" in text  # a run read before the level was recorded
    assert "Held out: 0 of 1 masked runs flagged, 0 unmasked runs flagged." in text
    assert "over all 4 runs: 2 of 2 masked runs flagged, 0 unmasked runs flagged." in text


def test_the_threshold_stays_when_no_value_separates_and_shared_training_is_not_held_out():
    runs = calibration({"pgk": [(0.05, 0.04)], "regmix": [(0.08, 0.16)]})
    # the select_strong run shares the masked run's training (its gap) but keeps an unmasked checkpoint:
    # it is not held-out evidence, or no threshold could ever catch the masked run
    runs.append(entry("regmix-regmix_select_strong-select_strong-seed0", "regmix", 0.08, 0.03,
                      sweep="regmix_select_strong"))
    assert choose_masking_threshold({"runs": runs})["threshold"] == 0.075
    runs.append(entry("mart-seed0", "mart", 0.085, 0.01))  # a clean held-out run with a larger gap
    c = choose_masking_threshold({"runs": runs})
    assert c["threshold"] == CURRENT and "does not separate" in c["reason"]
    # the reason names the lowest threshold that would catch the calibration runs and the run it would wrongly flag
    assert c["lowest"] == 0.075
    assert c["reason"].startswith("7.5, the largest threshold that flags every masked calibration run, also flags "
                                  "1 unmasked held-out run (mart-seed0)")
    text = "\n".join(threshold_section({"runs": runs}))
    assert "| mart-seed0 | 1.0 | no | 8.5 | no | yes |" in text  # flagged at 10.0 and at 7.5
    assert text.count("| flagged at 10.0 |") == 2  # one column per threshold, in both tables


def test_the_threshold_table_has_one_column_when_the_threshold_stays_without_a_lower_try():
    runs = calibration({"pgk": [(0.05, 0.04)], "regmix": [(0.09, 0.07)]})  # nothing masked: nothing tried
    text = "\n".join(threshold_section({"runs": runs}))
    heads = [line for line in text.splitlines() if line.startswith("| run |")]
    assert len(heads) == 2 and all(h.count("| flagged at") == 1 and
                                   h.endswith("| flagged at 10.0 | overfitting flagged at 10.0 |") for h in heads)
    assert "| pgk-seed0 | 4.0 | no | 5.0 | no |" in text


def test_a_training_only_sweep_is_read_against_its_twins_training_and_test_split(tmp_path):
    """The *_monitor_apgd_t sweeps: each run beside its main-table twin (monitor_twins), the test columns
    only where the validation curve shows the same training."""
    pgd = _monitor(run_with(tmp_path, [(0.9, 0.6, 0.55, 0.7), (0.9, 0.8, 0.72, 0.85)]), CONFIG)
    strong = {**pgd, "attack": "apgd_t", "points": 500, "every": 5, "masking_epochs": [2], "max_pgd_gap": 0.14,
              "overfit_epochs": [2]}
    curve = {"val_pgd": [0.6, 0.8]}
    main = [{"name": f"regmix-seed{s}", "method": "regmix", "seed": s, "sweep": None, "variant": None, "monitor": pgd,
             "curve": curve, "evals": {}, "train_s": 86.0, "validation_s": 73.6,
             "same_points": {"apgd": {"n": 500, "pgd20": 0.80, "attack": 0.80 - drop}}}
            for s, drop in ((0, 0.16), (1, 0.04))]
    swept = [{"name": f"regmix-w-apgd_t-seed{s}", "method": "regmix", "seed": s, "sweep": "w", "variant": "apgd_t",
              "monitor": strong, "curve": {"val_pgd": [0.6, 0.8 if s == 0 else 0.7]}, "evals": {}, "train_s": 63.0,
              **({"validation_s": 45.4} if s == 0 else {})}
             for s in (0, 1)]
    results = {"runs": main + swept, "setting": {}, "evals": {}, "suite": "mnist5k"}
    twins = monitor_twins(results)
    assert [(r["twin"], r["same_training"], r["masked"]) for r in twins] == [("regmix-seed0", True, True),
                                                                             ("regmix-seed1", False, False)]
    assert twins[0]["pgd"]["max_pgd_gap"] == pgd["max_pgd_gap"] and twins[0]["apgd_t"]["masking_epochs"] == [2]
    text = write_tables(results, tmp_path).read_text()
    section = text[text.index("## Sweep `w`"):]
    assert "`apgd_t` monitor pair (500 points, every 5 epochs and the last)" in section
    assert "| regmix-w-apgd_t-seed0 | regmix-seed0 | yes | 2 | 14.0 | 2 | - | 8.0 | 45 / 74 | 63 | 16.0 | yes |" in section
    # another training (its validation curve differs): the twin's test split says nothing about it
    assert "| regmix-w-apgd_t-seed1 | regmix-seed1 | no | 2 | 14.0 | 2 | - | 8.0 | - / 74 | 63 | - | - |" in section
    assert "| variant | seeds |" not in section  # not the empty table of a sweep's evaluations
    # both pairs re-read at the rule's threshold (7.5: the masked calibration run's pgd gap is 8.0), the
    # runs of another training left out
    assert ("At the threshold the study's rule chose (7.5 points; either rule, masking or catastrophic overfitting, "
            "over the armed epochs): `apgd_t` flags 1 of 1 masked runs and 0 of 0 unmasked; `pgd` flags 1 of 1 "
            "masked runs and 0 of 0 unmasked.") in section
