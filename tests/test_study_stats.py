"""The tests behind every "wins" / "loses" of a study: Welch's t and the bootstrap interval over seeds
(regmix.study.stats); the results folder's README blocks and same-points numbers (regmix.study.results);
and what the RegMix paper's study reads from them: the rules that chose the defaults
(regmix.paper.defaults) and its tables (regmix.paper.tables)."""
import math

import numpy as np
import pytest

from regmix.evaluation.records import flags_key
from regmix.paper.defaults import (check_against_default, check_gamma, choose_amr_weights, choose_gamma,
                                   defaults_section, gamma_section)
from regmix.paper.tables import _reference_row, _same_points_table
from regmix.study.results import _same_points, fill_readme
from regmix.study.stats import bootstrap_interval, compare, welch_p


def test_a_clear_consistent_difference_holds_and_its_reverse_is_reversed():
    better, worse = [90.1, 90.4, 89.9], [85.0, 85.3, 84.8]
    result = compare(better, worse)
    assert result["verdict"] == "holds" and result["p"] < 0.001
    assert result["ci"][0] > 0 and result["diff"] == pytest.approx(5.1, abs=1e-9)
    assert compare(worse, better)["verdict"] == "reversed"
    # lower is better (a Hessian eigenvalue): the smaller values win
    assert compare(worse, better, higher_is_better=False)["verdict"] == "holds"


def test_a_difference_inside_the_seed_noise_is_unclear():
    result = compare([88.0, 91.0, 86.0], [87.0, 89.5, 88.0])
    assert result["verdict"] == "unclear" and result["p"] > 0.05
    assert result["ci"][0] < 0 < result["ci"][1]


def test_one_seed_is_never_a_win():
    assert compare([95.0], [10.0])["verdict"] == "unclear (one seed)"
    assert math.isnan(welch_p([95.0], [10.0, 11.0]))


def test_welch_p_matches_the_textbook_value_and_the_bootstrap_is_reproducible():
    # means 2 and 4, variances 1: t = 2 / sqrt(1/3 + 1/3) = 2.449 on df = 4, two-sided p = 0.0705
    assert welch_p([1.0, 2.0, 3.0], [3.0, 4.0, 5.0]) == pytest.approx(0.0705, abs=2e-4)
    assert bootstrap_interval([1, 2, 3], [3, 4, 5]) == bootstrap_interval([1, 2, 3], [3, 4, 5])
    low, high = bootstrap_interval([1, 2, 3], [3, 4, 5])
    assert -10 / 3 - 1e-9 <= low < -2.0 < high <= -2 / 3 + 1e-9  # resampled means lie in [1, 3] and [3, 5]


def test_readme_blocks_are_regenerated_and_the_prose_around_them_kept(tmp_path):
    (tmp_path / "tables.md").write_text("# Study tables\n\nintro\n\n## Main table\n\n| a |\n|---|\n| 1 |\n")
    (tmp_path / "README.md").write_text("Prose before.\n<!-- generated: Main table -->\nstale 0\n"
                                        "<!-- end: Main table -->\nProse after.\n")
    fill_readme(tmp_path, ("tables.md", "claims.md"))
    text = (tmp_path / "README.md").read_text()
    assert "stale" not in text and "| 1 |" in text
    assert text.startswith("Prose before.") and text.endswith("Prose after.\n")


def _grid_results(scores, main=(80.0, 84.0, 76.0)):
    """A results dict with an alpha x beta sweep whose cell (i, j) scores scores[i][j] (PGD-20 = CW-20)."""
    grid = [0.25, 1.0, 16.0]
    runs = [{"method": "regmix", "sweep": "", "variant": "", "options": {"alpha": 1.0, "beta": 0.5}, "seed": seed,
             "evals": {"whole": {"accuracy": {"pgd20": s / 100, "cw20": s / 100}}}} for seed, s in enumerate(main)]
    for i, a in enumerate(grid):
        for j, b in enumerate(grid):
            runs.append({"method": "regmix", "sweep": "alpha_beta", "variant": f"alpha{a}_beta{b}", "seed": 0,
                         "options": {"alpha": a, "beta": b},
                         "evals": {"whole": {"accuracy": {"pgd20": scores[i][j] / 100, "cw20": scores[i][j] / 100}}}})
    return {"runs": runs}


def test_amr_weights_are_chosen_by_neighbourhood_not_by_one_lucky_cell():
    scores = [[70, 70, 90],   # a lone spike at (0.25, 16) among poor neighbours
              [80, 84, 70],
              [82, 85, 83]]   # a good region around (16, 1)
    c = choose_amr_weights(_grid_results(scores))
    assert (c["alpha"], c["beta"]) == (16.0, 1.0)
    assert c["raw_best"] == {"alpha": 0.25, "beta": 16.0, "score": pytest.approx(90)}
    assert c["seed_std"] == pytest.approx(4.0)
    text = "\n".join(defaults_section(_grid_results(scores)))
    assert "Chosen: alpha = 16, beta = 1 " in text and "| 16 | 82.0 | **85.0** | 83.0 |" in text


def test_no_choice_until_every_cell_is_measured():
    results = _grid_results([[70, 70, 90], [80, 84, 70], [82, 85, 83]])
    del results["runs"][-1]["evals"]["whole"]
    assert choose_amr_weights(results) is None and defaults_section(results) == []


def test_the_chosen_cell_is_adopted_only_if_it_matches_the_default_over_the_same_seeds():
    scores = [[70, 70, 90], [80, 84, 70], [82, 85, 83]]  # chosen: alpha 16, beta 1 (seed 0 scores 85)
    results = _grid_results(scores, main=(80.0, 84.0, 76.0))
    assert check_against_default(results) is None  # no check runs yet: one seed is no check
    check = lambda seed, s: {"method": "regmix", "sweep": "amr_defaults_check", "variant": "chosen", "seed": seed,  # noqa: E731
                             "options": {"alpha": 16.0, "beta": 1.0},
                             "evals": {"whole": {"accuracy": {"pgd20": s / 100, "cw20": s / 100}}}}
    good = {"runs": results["runs"] + [check(1, 83.0), check(2, 80.0)]}
    chk = check_against_default(good)
    assert chk["seeds"] == [0, 1, 2] and chk["rows"]["score"]["mean_a"] == pytest.approx(82.667, abs=1e-3)
    assert chk["adopt"] and "adopted, as the named recipe" in "\n".join(defaults_section(good))
    bad = {"runs": results["runs"] + [check(1, 70.0), check(2, 70.0)]}
    assert not check_against_default(bad)["adopt"]
    assert "the defaults stay" in "\n".join(defaults_section(bad))


def _gamma_results(scores, gammas=(0.0, 0.25, 1.0, 4.0, 16.0)):
    """A results dict with a gamma sweep scoring scores[i] at gammas[i] (PGD-20 = CW-20), one seed."""
    main = {"method": "regmix", "sweep": "", "variant": "", "seed": 0, "options": {"alpha": 1.0, "beta": 0.5, "gamma": 1.0},
            "evals": {"whole": {"accuracy": {"pgd20": 0.8, "cw20": 0.8}}}}
    return {"runs": [main] + [{"method": "regmix", "sweep": "gamma", "variant": f"gamma{g}", "seed": 0,
                               "options": {"alpha": 1.0, "beta": 0.5, "gamma": g},
                               "evals": {"whole": {"accuracy": {"pgd20": s / 100, "cw20": s / 100}}}}
                              for g, s in zip(gammas, scores)]}


def _runs(sweep, gamma, scores):
    return [{"method": "regmix", "sweep": sweep, "variant": "v", "seed": seed,
             "options": {"alpha": 16.0, "beta": 16.0, "gamma": gamma},
             "evals": {"whole": {"accuracy": {"pgd20": s / 100, "cw20": s / 100}}}} for seed, s in enumerate(scores)]


def test_gamma_is_chosen_by_neighbourhood_and_kept_when_the_rule_picks_the_default():
    # a lone spike at gamma 0.25 next to a poor gamma 0 loses to the good region around gamma 1
    c = choose_gamma(_gamma_results([70, 95, 84, 86, 75]))
    assert c["gamma"] == 1.0 and c["default"] == 1.0
    assert c["smoothed"] == pytest.approx([82.5, 83, 88.333, 81.667, 80.5], abs=1e-3)
    text = "\n".join(gamma_section(_gamma_results([70, 95, 84, 86, 75])))
    assert "Chosen: gamma = 1 " in text and "the default stays (the rule picks it" in text
    incomplete = _gamma_results([70, 95, 84, 86, 75])
    del incomplete["runs"][3]["evals"]["whole"]
    assert choose_gamma(incomplete) is None and gamma_section(incomplete) == []


def test_another_gamma_needs_the_check_at_the_current_alpha_and_beta_and_must_match_it():
    results = _gamma_results([70, 72, 75, 84, 86])  # the rule picks gamma 16 (averaged 85 vs 80.3)
    assert check_gamma(results) is None
    assert "Not yet checked over seeds: sweep `gamma_defaults_check` (gamma = 16" in "\n".join(gamma_section(results))
    baseline = _runs("amr_defaults_check", 1.0, [83, 80, 86])
    better = {"runs": results["runs"] + baseline + _runs("gamma_defaults_check", 16.0, [84, 82, 85])}
    chk = check_gamma(better)
    assert chk["gamma"] == 16.0 and chk["seeds"] == [0, 1, 2] and chk["adopt"]
    worse = {"runs": results["runs"] + baseline + _runs("gamma_defaults_check", 16.0, [80, 80, 85])}
    assert not check_gamma(worse)["adopt"]
    assert "the defaults stay" in "\n".join(gamma_section(worse))


def test_pgd_is_compared_with_the_stronger_attacks_on_exactly_their_points(tmp_path):
    """PGD-20 on the first n points of `whole` (from its flags) beside APGD's n points; refused where the
    points or the model differ (clean flags, eps)."""

    def record(name, flags, eps=0.2):  # flags by attack name, saved as evaluate_run saves them
        np.savez(tmp_path / f"{name}.flags.npz", **{flags_key(a): v for a, v in flags.items()})
        return {"_path": str(tmp_path / f"{name}.json"), "flags_file": f"{name}.flags.npz", "checkpoint": "best",
                "ema": False, "threat": {"norm": "linf", "eps": eps}, "accuracy": {"pgd20": 0.0},
                "attack_list": list(flags)}
    clean = np.array([1, 1, 1, 1, 0, 1, 1, 1], bool)
    pgd = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)   # 3 of the first 4 robust, 3 of all 8
    whole = record("whole", {"clean": clean, "pgd20": pgd})
    apgd = record("apgd", {"clean": clean[:4], "aa:apgd-ce+apgd-t": np.array([1, 0, 0, 1], bool)})
    found = _same_points({"whole": whole, "apgd": apgd})
    assert found == {"apgd": {"n": 4, "pgd20": 0.75, "attack": 0.5}}
    other_points = record("aa", {"clean": np.array([0, 1, 1, 1], bool), "aa": np.zeros(4, bool)})
    other_eps = record("aa2", {"clean": clean[:4], "aa": np.zeros(4, bool)}, eps=0.3)
    assert _same_points({"whole": whole, "autoattack": other_points}) == {}
    assert _same_points({"whole": whole, "autoattack": other_eps}) == {}
    table = "\n".join(_same_points_table({"runs": [{"method": "pgk", "sweep": "", "same_points": found}]}))
    assert "| pgk | 1 | 75.0 | 50.0 | 25.0 | 0 | - | - | - |" in table
    # a swept variant with the stronger evaluations gets its own row; one without them none
    swept = [{"method": "pgk", "sweep": "pgk_5step", "variant": "multistep_attack", "same_points": found},
             {"method": "pgk", "sweep": "gamma", "variant": "gamma=0", "same_points": {}}]
    table = "\n".join(_same_points_table({"runs": [{"method": "pgk", "sweep": "", "same_points": {}}, *swept]}))
    assert "| sweep `pgk_5step`, multistep_attack | 1 | 75.0 | 50.0 | 25.0 | 0 | - | - | - |" in table
    assert "gamma" not in table


def test_each_sweep_table_starts_with_its_method_from_the_main_table_on_the_same_seeds():
    run = lambda sweep, seed, s: {"method": "regmix", "sweep": sweep, "variant": "v" if sweep else "", "seed": seed,  # noqa: E731
                                  "evals": {"whole": {"accuracy": {"clean": 0.9, "pgd20": s / 100, "cw20": s / 100}}}}
    results = {"runs": [run("", 0, 80), run("", 1, 70), run("", 2, 60), run("ablations", 0, 85)]}
    row = _reference_row(results, "ablations", ["PGD-20"])
    assert row == ["| *regmix, main table (seeds 0)* | 1 | 80.00 |"]  # seed 0 only, as the sweep
