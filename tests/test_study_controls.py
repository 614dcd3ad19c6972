"""Issue 20's controls in the mnist5k suite: the claims that hold the attack, the EMA and the smoothing
equal (on synthetic records), and the sweeps that produce them (plan, order, --sweeps)."""
import pytest

from regmix.registry import ConfigError
from regmix.paper.claims import CLAIMS, evaluate_claims, write_claims
from regmix.study import load_suite, plan


def _entry(method, sweep, variant, seed, pgd, apgd):
    return {"method": method, "sweep": sweep, "variant": variant, "seed": seed, "options": {},
            "evals": {"whole": {"accuracy": {"pgd20": pgd / 100, "cw20": pgd / 100, "clean": 0.98}},
                      "apgd": {"accuracy": {"aa:apgd-ce+apgd-t": apgd / 100}}}}


def _group(method, sweep, variant, pgd, apgd, seeds=range(5)):
    """Five seeds around (pgd, apgd), a little seed noise."""
    noise = [0.0, 0.4, -0.3, 0.2, -0.4]
    return [_entry(method, sweep, variant, s, pgd + noise[s], apgd - noise[s]) for s in seeds]


def _claim(results, claim_id):
    return next(c for c in evaluate_claims(results, [c for c in CLAIMS if c["id"] == claim_id]))


def test_equal_attack_compares_the_5_step_runs_not_the_main_table():
    runs = (_group("regmix", "", "", 80, 70) + _group("pgk", "", "", 90, 85)       # main: PGK far ahead
            + _group("regmix", "regmix_5step", "multistep_attack", 90, 86)
            + _group("pgk", "pgk_5step", "multistep_attack", 85, 80))
    claim = _claim({"runs": runs}, "equal_attack")
    assert claim["answer"] == "holds"
    primary = [r for r in claim["rows"] if r["metric"] in claim["primary"]]
    assert {r["against"] for r in primary} == {"pgk"} and all(r["diff"] > 4 for r in primary)
    # the same runs with PGK's 5-step runs ahead: reversed, so the claim does not hold
    runs = runs[:10] + _group("regmix", "regmix_5step", "multistep_attack", 80, 75) + \
        _group("pgk", "pgk_5step", "multistep_attack", 88, 84)
    assert _claim({"runs": runs}, "equal_attack")["answer"] == "does not hold"


def test_the_gain_ema_and_smoothing_give_pgd_at_is_against_plain_pgd_at():
    runs = (_group("pgd_at", "", "", 84, 80) + _group("pgd_at", "pgd_at_ema", "ema", 84.2, 80.1)
            + _group("pgd_at", "pgd_at_ema_ls", "ema_ls", 89, 85))
    both = _claim({"runs": runs}, "pgd_at_ema_ls")
    assert both["answer"] == "holds" and both["subject"] == "PGD-AT + EMA + smoothing"
    assert {r["against"] for r in both["rows"]} == {"PGD-AT"}
    row = next(r for r in both["rows"] if r["metric"] == "PGD-20")
    assert row["diff"] == pytest.approx(5.0, abs=1e-9) and row["n_a"] == row["n_b"] == 5
    assert _claim({"runs": runs}, "pgd_at_ema")["answer"] == "unclear"  # EMA alone: inside the noise
    # no control runs yet: no data, never a verdict
    assert _claim({"runs": runs[:5]}, "pgd_at_ema_ls")["answer"] == "no data"


def test_regmix_against_the_controlled_pgd_at_and_the_architecture_repeat():
    runs = (_group("regmix", "regmix_5step", "multistep_attack", 86, 82)
            + _group("pgd_at", "pgd_at_ema_ls", "ema_ls", 89, 85)
            + _group("regmix", "regmix_width32", "width32", 92, 88, seeds=range(3))
            + _group("pgk", "pgk_width32", "width32", 88, 84, seeds=range(3))
            + _group("pgd_at", "pgd_at_width32", "width32", 87, 83, seeds=range(3))
            + _group("regmix", "", "", 70, 60) + _group("pgk", "", "", 90, 88) + _group("pgd_at", "", "", 90, 88))
    assert _claim({"runs": runs}, "regmix_vs_controlled_pgd_at")["answer"] == "does not hold"
    # its control reads FGSM-PGK's 5-step runs against the same PGD-AT runs (none yet: no data, then a verdict)
    assert _claim({"runs": runs}, "pgk_vs_controlled_pgd_at")["answer"] == "no data"
    runs += _group("pgk", "pgk_5step", "multistep_attack", 93, 89)
    control = _claim({"runs": runs}, "pgk_vs_controlled_pgd_at")
    assert control["answer"] == "holds" and control["subject"] == "FGSM-PGK, 5-step"
    assert {r["against"] for r in control["rows"]} == {"PGD-AT + EMA + smoothing"}
    arch = _claim({"runs": runs}, "architecture")
    assert arch["answer"] == "holds"  # read from the width-32 runs, not the main table's
    assert all(r["n_a"] == 3 for r in arch["rows"] if r["verdict"] != "no data")


def test_claims_md_names_the_subject_of_each_claim(tmp_path):
    runs = _group("pgd_at", "", "", 84, 80) + _group("pgd_at", "pgd_at_ema_ls", "ema_ls", 89, 85)
    results = {"suite": "mnist5k", "runs": runs,
               "claims": evaluate_claims({"runs": runs}, [c for c in CLAIMS if c["id"] in ("pgd_at_ema_ls", "robustness")])}
    text = write_claims(results, tmp_path).read_text()
    assert "| against | metric | PGD-AT + EMA + smoothing | other | PGD-AT + EMA + smoothing - other |" in text
    assert "| against | metric | RegMix | other | RegMix - other |" in text


def test_the_control_sweeps_are_planned_in_the_order_asked(tmp_path):
    suite = load_suite("mnist5k")
    order = ["pgk_5step", "regmix_5step", "pgd_at_ema", "pgd_at_ema_ls"]
    runs, evals = plan(suite, tmp_path, part="sweeps", sweeps=order)
    assert list(dict.fromkeys(r.sweep for r in runs)) == order
    assert all(len([r for r in runs if r.sweep == w]) == 5 for w in order)
    by_name = {r.name: r for r in runs}
    assert "method.options.attack_steps=5" in by_name["pgk-pgk_5step-multistep_attack-seed3"].overrides
    ls = by_name["pgd_at-pgd_at_ema_ls-ema_ls-seed0"].overrides
    assert {"train.ema=true", "train.ema_buffers=average", "method.options.true_class_target=0.5"} <= set(ls)
    # the main table's evaluations: APGD for every seed, AutoAttack for the first
    kinds = [e.spec.name for e in evals if e.run.sweep == "pgd_at_ema"]
    assert kinds.count("apgd") == 5 and kinds.count("autoattack") == 1
    width = plan(suite, tmp_path, part="sweeps", sweeps=["pgd_at_width32", "pgk_width32", "regmix_width32"])[0]
    assert [r.seed for r in width] == [0, 1, 2] * 3
    assert all("model.options.width=32" in r.overrides for r in width)
    with pytest.raises(ConfigError, match=r"^sweeps: 'pgk_5stp' is not a sweep of suite mnist5k \(did you mean 'pgk_5step'\?\)"):
        plan(suite, tmp_path, part="sweeps", sweeps=["pgk_5stp"])
