"""The tests behind every "wins" / "loses" of a study: Welch's t and the bootstrap interval over seeds."""
import math

import pytest

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
    from regmix.study.claims import fill_readme
    (tmp_path / "tables.md").write_text("# Study tables\n\nintro\n\n## Main table\n\n| a |\n|---|\n| 1 |\n")
    (tmp_path / "README.md").write_text("Prose before.\n<!-- generated: Main table -->\nstale 0\n"
                                        "<!-- end: Main table -->\nProse after.\n")
    fill_readme(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "stale" not in text and "| 1 |" in text
    assert text.startswith("Prose before.") and text.endswith("Prose after.\n")
