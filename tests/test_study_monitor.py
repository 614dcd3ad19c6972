"""The study's reading of the masking monitor: each run's epoch records re-judged with today's rule
(regmix.study.results._monitor) and the table that sets them beside the APGD gap (regmix.paper.tables)."""
import json

from regmix.paper.tables import _monitor_table
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
    assert m["select_pgd_epoch"] == 3 and m["select_strong_epoch"] == 4
    assert abs(m["max_pgd_gap"] - 0.30) < 1e-9 and abs(m["max_fgsm_gap"] - 0.70) < 1e-9  # armed epochs only


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
            {"name": "regmix-select_strong-seed1", "sweep": "regmix_select_strong", "monitor": m}]
    table = "\n".join(_monitor_table({"runs": runs}))
    assert "| regmix-seed1 | 2 | 1 | 2 | - | 30.0 | 5.0 | 16.0 |" in table
    assert "sweep `regmix_select_strong`: 1 of 1 runs flagged (regmix-select_strong-seed1)" in table
